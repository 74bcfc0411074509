"""1D and 2D loss landscape of my fine-tuned model.

    python examples/landscape_of_my_model.py                            # the tiny test model, offline, seconds
    python examples/landscape_of_my_model.py --model path/to/finetuned --start bert-base-uncased --data my.tsv

With ``--start`` (the checkpoint fine-tuning began from, e.g. the pretrained model), the 1D curve runs along the
paper's δ1 = θ1 − θ0 (α = 0 is the start, α = 1 your model) and the surface spans δ1 and a filter-normalised random
direction; without it, both axes are filter-normalised random directions through your model (Li et al. 2018).
Saves curve.json, surface.json and landscape.png (curve and contours).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import make_batches, read_examples, run  # noqa: E402

from repro.landscape import (  # noqa: E402
    compute_curve,
    compute_surface,
    filter_normalized_direction,
    get_params,
    optimization_direction,
    restrict_direction,
)
from repro.models import load_model, load_tokenizer, parameter_groups  # noqa: E402
from repro.plots import figure_png  # noqa: E402
from repro.plots.style import new_figure  # noqa: E402
from repro.preflight import check_model  # noqa: E402
from repro.storage import write_json  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny-random", help="your fine-tuned model: named model, hub id or directory")
    p.add_argument("--start", default=None, help="the checkpoint fine-tuning started from (gives δ1 = θ1 − θ0)")
    p.add_argument("--num-labels", type=int, default=2)
    p.add_argument("--data", default=None, help="TSV of 'label<TAB>text' lines (default: 8 built-in sentences)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--group", default="all", help="parameter group the directions live in (all, encoder, low, ...)")
    p.add_argument("--points", type=int, default=9, help="points per axis")
    p.add_argument("--span", type=float, default=1.0, help="α and β run over [−span, span] (1D: [−span, 1 + span])")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/examples/landscape")
    args = p.parse_args(argv)
    for name in filter(None, (args.model, getattr(args, "start", None))):
        check_model(name)  # offline first: a hub id with no network fails in seconds, not after minutes of retries

    model = load_model(args.model, "pretrained", args.num_labels, args.seed).eval()
    batch_sets = {"train": make_batches(load_tokenizer(args.model), read_examples(args.data), args.batch_size)}
    names = parameter_groups(model)[args.group]
    theta1 = get_params(model)
    rand1 = filter_normalized_direction(theta1, args.seed, names=names)
    rand2 = filter_normalized_direction(theta1, args.seed + 1, names=names)
    if args.start:
        theta0 = get_params(load_model(args.start, "pretrained", args.num_labels, args.seed))
        d1 = restrict_direction(optimization_direction(theta0, theta1), names, args.group)
        base_1d, alphas = theta0, np.linspace(-args.span, 1 + args.span, args.points)
    else:
        d1, base_1d, alphas = rand1, theta1, np.linspace(-args.span, args.span, args.points)
    grid = np.linspace(-args.span, args.span, args.points)
    curve = compute_curve(model, base_1d, d1, alphas, batch_sets, param_group=args.group)
    surface = compute_surface(model, theta1, d1, rand2, grid, grid, batch_sets, param_group=args.group)
    out = Path(args.out)
    write_json(out / "curve.json", curve)
    write_json(out / "surface.json", surface)
    fig, axes = new_figure(2, 1, width=4.6, height=3.6)
    axes[0, 0].plot(curve.alphas, curve.values["train_loss"], marker="o")
    axes[0, 0].set_xlabel("α (along δ1 = θ1 − θ0)" if args.start else "α (filter-normalised random direction)")
    axes[0, 0].set_ylabel("training loss (nats)")
    cs = axes[0, 1].contourf(surface.betas, surface.alphas, surface.array("train_loss"), levels=15)
    fig.colorbar(cs, ax=axes[0, 1], label="training loss (nats)")
    axes[0, 1].plot([0], [0], marker="*", color="white", ms=10)
    axes[0, 1].set_xlabel("β (random direction 2)")
    axes[0, 1].set_ylabel("α (δ1)" if args.start else "α (random direction 1)")
    (out / "landscape.png").write_bytes(figure_png(fig))
    lo = min(curve.values["train_loss"])
    print(f"curve: {len(curve.alphas)} points, training loss {lo:.4f} .. {max(curve.values['train_loss']):.4f}")
    print(f"surface: {len(grid)}x{len(grid)} points around your model; saved to {out}")
    return 0


if __name__ == "__main__":
    run(main)
