"""Curvature and spectral density of my Hugging Face classifier on my data.

    python examples/curvature_of_my_classifier.py                       # the tiny test model, offline, seconds
    python examples/curvature_of_my_classifier.py --model path/to/my-finetuned-checkpoint --data my.tsv \\
        --group encoder --probes 4 --steps 60

Prints λ_max (Lanczos, with its residual), the trace (Hutchinson, ± standard error), the per-group λ_max and trace
of the low/high thirds, and saves the SLQ eigenvalue density (top eigenvalues deflated) as JSON and PNG. Every
number comes with the Hessian-vector products it cost. The model loads with eager attention: exact Hessian products
need a double backward, which SDPA does not have (``--finite-difference`` uses gradients only).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import make_batches, read_examples, run  # noqa: E402

from repro.curvature import (  # noqa: E402
    HessianOperator,
    group_curvature,
    hutchinson_trace,
    lanczos,
    spectral_density,
)
from repro.models import load_model, load_tokenizer, parameter_groups  # noqa: E402
from repro.plots import figure_png, plot_spectral_density  # noqa: E402
from repro.preflight import check_model  # noqa: E402
from repro.storage import to_json_dict, write_json  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny-random", help="named model, HF hub id or local checkpoint directory")
    p.add_argument("--num-labels", type=int, default=2)
    p.add_argument("--data", default=None, help="TSV of 'label<TAB>text' lines (default: 8 built-in sentences)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--group", default="encoder", help="parameter group (encoder, all, head, low, high, layer.0, ...)")
    p.add_argument("--probes", type=int, default=2, help="SLQ probes (more for a smoother density)")
    p.add_argument("--steps", type=int, default=20, help="Lanczos steps per SLQ probe (60-100 for a real model)")
    p.add_argument("--deflate", type=int, default=2, help="top eigenpairs projected out of the density")
    p.add_argument("--trace-samples", type=int, default=6)
    p.add_argument("--finite-difference", action="store_true", help="gradient differences instead of autograd")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/examples/curvature", help="directory for density.json and density.png")
    args = p.parse_args(argv)
    for name in filter(None, (args.model, getattr(args, "start", None))):
        check_model(name)  # offline first: a hub id with no network fails in seconds, not after minutes of retries

    model = load_model(args.model, "pretrained", args.num_labels, args.seed,
                       attn_implementation="sdpa" if args.finite_difference else "eager").eval()
    batches = make_batches(load_tokenizer(args.model), read_examples(args.data), args.batch_size)
    names = parameter_groups(model)[args.group]
    method = "finite_difference" if args.finite_difference else "autograd"
    op = HessianOperator(model, batches, names, reuse_graph=len(batches) == 1 and method == "autograd",
                         method=method)
    top = lanczos(op, max(1, args.deflate), tol=1e-3, max_iter=40, seed=args.seed, return_vectors=True)
    print(f"{args.group}: {op.size} parameters, {sum(int(b['labels'].numel()) for b in batches)} examples")
    print(f"λ_max = {top.eigenvalues[0]:.4g} (residual {top.residuals[0]:.1e}, converged {top.converged}, "
          f"{top.num_matvecs} products)")
    tr = hutchinson_trace(op, args.trace_samples, seed=args.seed)
    print(f"trace = {tr.estimate:.4g} ± {2 * tr.stderr:.2g} (2 se, {tr.num_matvecs} products)")
    dens = spectral_density(op, num_probes=args.probes, num_steps=args.steps, seed=args.seed,
                            deflate=top if args.deflate else None)
    print(f"SLQ: trace {dens.trace:.4g} ± {2 * dens.trace_stderr:.2g}, density change {dens.density_change:.2f} "
          f"(converged {dens.converged}), {dens.num_matvecs} products")
    depth = [g for g in ("low", "high") if parameter_groups(model).get(g)]
    if depth:
        gc = group_curvature(model, batches, depth, tol=1e-2, max_iter=20, trace_samples=5, seed=args.seed,
                             method=method)
        for g in gc.groups:
            print(f"  {g.name}: λ_max {g.lambda_max:.4g}, trace {g.trace:.4g} ± {2 * g.trace_stderr:.2g} "
                  f"({g.num_matvecs} products)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"model": args.model, "group": args.group, "lambda_max": to_json_dict(top.without_vectors()),
              "trace": to_json_dict(tr), "density": to_json_dict(dens)}
    write_json(out / "density.json", record)
    (out / "density.png").write_bytes(figure_png(plot_spectral_density({args.model: dens})))
    print(f"saved {out / 'density.json'} and {out / 'density.png'}")
    return 0


if __name__ == "__main__":
    run(main)
