#!/usr/bin/env bash
# The project's GPU checks in one call (under 8 minutes), on a machine with PyTorch but without network, Ray or our
# package installed (PYTHONPATH = the repository root). Prints a summary table last. Issue 23's figures:
#   cuda_tests        the CUDA-only tests: graphed episode epochs == eager steps == the loop; overlapped augmentation
#                     == sequential (tests/evaluation/test_finetune.py, tests/sweep/test_training_batches.py)
#   trial_startup     a trial's start-up breakdown in a fresh process, cold and warm cache (target: first step <= 5 s)
#   concurrent        N = 1, 4, 12 `negmargin train` processes at once on the GPU: images/s, NVML busy %, memory
#   gpu_packing       the probe's resources.gpu: auto choice for the default preset (conv4) and resnet12-mini
#   episodes_5shot/1  600 episodes of batched fine-tuning with and without CUDA graphs (target 5-shot <= 0.1 s)
#   trial_throughput  resnet12, 84 px, batch 256, bf16: the trial step vs the raw backbone (target >= 0.95)
# FULL=1 adds data_pipeline and dropblock_mask and the PIL DataLoader reference (then over 8 minutes).
#
#   benchmarks/gpu_check.sh            # on a GPU
#   QUICK=1 benchmarks/gpu_check.sh    # smoke test on CPU with tiny settings (a few minutes)
#
# Needs pydantic (specs and trial configs are pydantic models), which the GPU machine lacks. Without network there,
# bring it as wheels: on a machine with pip, in the repository root (keep .whl out of git: .git/info/exclude),
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
#       pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0
# then run this script with WHEELS=.whl: it installs them into a temporary folder on PYTHONPATH (no network used).
# Environment: PYTHON (default python3), LOG_DIR (default $OUT if set, else a temporary folder): at most 8 files,
# gpu_check.log (everything printed) and one JSON per measurement.
set -u -o pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
PYTHON=${PYTHON:-python3}
LOG_DIR=${LOG_DIR:-${OUT:-$(mktemp -d -t negmargin-gpu-check.XXXXXX)}}
mkdir -p "$LOG_DIR"
QUICK=${QUICK:-0}
FULL=${FULL:-0}
LOG="$LOG_DIR/gpu_check.log"
exec > >(tee "$LOG") 2>&1

if [[ -n "${WHEELS:-}" ]]; then
    SITE=$(mktemp -d -t negmargin-site.XXXXXX)
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$WHEELS"/*.whl ||
        { echo "gpu_check: could not install the wheels in $WHEELS"; exit 2; }
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

if [[ "$QUICK" == 1 ]]; then
    DEVICE=cpu
    STARTUP_ARGS=(--device cpu --threads 2)
    CONCURRENT_ARGS=(--device cpu --counts 1,2 --epochs 1)
    PACKING_ARGS=(--preset default --steps 2 --warmup 1)
    EPISODE5_ARGS=(--device cpu --episodes 20 --loop-episodes 2 --dim 64)
    EPISODE1_ARGS=(--device cpu --episodes 20 --loop-episodes 2 --dim 64 --shot 1)
    TRIAL_ARGS=(--device cpu --backbone conv4 --image-size 32 --batch-size 16 --steps 2 --warmup 1 --threads 2
                --images 64 --skip-reference)
    BUDGET=(120 180 240 120 60 60 120)
else
    DEVICE=cuda
    STARTUP_ARGS=(--device cuda)
    CONCURRENT_ARGS=(--device cuda --counts 1,4,12 --epochs 4)
    PACKING_ARGS=()
    EPISODE5_ARGS=(--device cuda --loop-episodes 5)
    EPISODE1_ARGS=(--device cuda --loop-episodes 5 --shot 1)
    TRIAL_ARGS=(--device cuda --backbone resnet12 --image-size 84 --batch-size 256 --steps 30 --warmup 8
                --skip-reference)
    BUDGET=(40 60 150 50 35 25 70)  # seconds per check: 430 s in all, plus start-up
fi
PYTEST=("$PYTHON" -m pytest -q -p no:cacheprovider tests/evaluation/test_finetune.py tests/sweep/test_training_batches.py)

echo "== negmargin gpu_check: device=$DEVICE quick=$QUICK full=$FULL logs=$LOG_DIR"
"$PYTHON" - <<'EOF'
import importlib, sys
missing = []
for name in ("torch", "numpy", "PIL", "yaml", "tqdm", "tensorboard", "pydantic", "pytest"):
    try:
        importlib.import_module(name)
    except ImportError:
        missing.append(name)
import torch
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, GPU: {gpu}")
if missing:
    print(f"MISSING modules: {', '.join(missing)}" + (" (pydantic: see the wheels in this script's header)"
          if "pydantic" in missing else ""))
EOF
if ! "$PYTHON" -c "import pydantic" 2>/dev/null; then
    echo "gpu_check: pydantic is missing; bring it as wheels and run with WHEELS=DIR (see this script's header)" >&2
    exit 2
fi
if [[ "$DEVICE" == cuda ]] && ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA device visible; run with QUICK=1 for the CPU smoke test" >&2
    exit 2
fi

NAMES=(cuda_tests trial_startup concurrent gpu_packing episodes_5shot episodes_1shot trial_throughput)
COMMANDS=(
    "${PYTEST[*]}"
    "$PYTHON benchmarks/trial_startup.py ${STARTUP_ARGS[*]} --json $LOG_DIR/trial_startup.json"
    "$PYTHON benchmarks/concurrent_trials.py ${CONCURRENT_ARGS[*]} --json $LOG_DIR/concurrent.json"
    "$PYTHON benchmarks/gpu_packing_check.py ${PACKING_ARGS[*]} --json $LOG_DIR/gpu_packing.json"
    "$PYTHON benchmarks/episode_eval.py ${EPISODE5_ARGS[*]}"
    "$PYTHON benchmarks/episode_eval.py ${EPISODE1_ARGS[*]}"
    "$PYTHON benchmarks/trial_throughput.py ${TRIAL_ARGS[*]} --json $LOG_DIR/trial_throughput.json"
)
if [[ "$FULL" == 1 ]]; then
    NAMES+=(data_pipeline dropblock_mask trial_reference)
    COMMANDS+=(
        "$PYTHON benchmarks/data_pipeline.py --device $DEVICE --workers 8"
        "$PYTHON benchmarks/dropblock_mask.py --device $DEVICE --draws 100"
        "$PYTHON benchmarks/trial_throughput.py --device $DEVICE --backbone resnet12 --steps 30 --warmup 8 --workers 8"
    )
    BUDGET+=(120 45 180)
fi
STATUS=()
SECONDS_TAKEN=()
LAST_LINES=()
for i in "${!NAMES[@]}"; do
    echo
    echo "== ${NAMES[$i]} (limit ${BUDGET[$i]} s): ${COMMANDS[$i]}"
    start=$(date +%s)
    output=$(mktemp)
    # shellcheck disable=SC2086  # the command line is split on purpose
    timeout --kill-after=10 "${BUDGET[$i]}" ${COMMANDS[$i]} 2>&1 | tee "$output"
    rc=${PIPESTATUS[0]}
    SECONDS_TAKEN+=($(($(date +%s) - start)))
    LAST_LINES+=("$(grep -v '^[[:space:]]*$' "$output" | tail -n 1 | cut -c1-70)")
    rm -f "$output"
    case $rc in
        0) STATUS+=(ok) ;;
        124 | 137) STATUS+=(TIMEOUT) ;;
        *) STATUS+=("FAIL(rc=$rc)") ;;
    esac
done

echo
echo "== summary ($DEVICE)"
printf '%-18s %-12s %8s  %s\n' check status seconds "last line of output"
for i in "${!NAMES[@]}"; do
    printf '%-18s %-12s %8s  %s\n' "${NAMES[$i]}" "${STATUS[$i]}" "${SECONDS_TAKEN[$i]}" "${LAST_LINES[$i]}"
done
"$PYTHON" - "$LOG_DIR" "$DEVICE" <<'EOF'
import json, sys
from pathlib import Path
folder, device = Path(sys.argv[1]), sys.argv[2]


def read(name):
    path = folder / name
    return json.loads(path.read_text()) if path.exists() else None


rows = []
startup = read("trial_startup.json")
if startup:
    rows.append(("first step after start (warm cache), s", startup["process"][-1]["first_step_s"], 5.0, "<="))
throughput = read("trial_throughput.json")
if throughput:
    rows.append(("trial step / raw backbone", throughput.get("trial_vs_raw"), 0.95, ">="))
concurrent = read("concurrent.json")
if concurrent and len(concurrent["rows"]) > 1:
    first, last = concurrent["rows"][0], concurrent["rows"][-1]
    rows.append((f"{last['trials']} trials at once / one, images/s", last["images_per_s"] / first["images_per_s"],
                 None, ""))
packing = read("gpu_packing.json")
for row in packing or []:
    rows.append((f"auto GPUs per trial, {row['preset']}", row["decision"]["gpu"], None, ""))
print(f"\n{'figure':<46} {'value':>8} {'goal':>7}  verdict")
for label, value, goal, sense in rows:
    shown = f"{value:.2f}" if value is not None else "-"
    if goal is None or value is None:
        verdict = ""
    elif device != "cuda":
        verdict = "n/a (cpu)"
    else:
        verdict = "PASS" if (value <= goal if sense == "<=" else value >= goal) else "FAIL"
    print(f"{label:<46} {shown:>8} {'' if goal is None else goal:>7}  {verdict}")
print("episode fine-tuning: see the episodes_5shot / episodes_1shot lines above (CUDA graphs vs eager, target)")
EOF
for s in "${STATUS[@]}"; do
    [[ "$s" == ok ]] || exit 1
done
exit 0
