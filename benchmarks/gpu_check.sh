#!/usr/bin/env bash
# The project's GPU checks in one call (under 8 minutes: the stages' limits add up to 450 s), on a machine with
# PyTorch but without network, Ray or our package installed (PYTHONPATH = the repository root). Prints one summary
# table last: every figure, and PASS/FAIL against each target ("not measured: no GPU" on a CPU).
#   cuda_tests        the CUDA-only tests: graphed episode epochs == eager steps == the loop; overlapped augmentation
#                     == sequential (tests/evaluation/test_finetune.py, tests/sweep/trial/test_training_batches.py)
#   trial_startup     a trial's start-up breakdown in a fresh process, cold and warm cache (target: first step <= 5 s)
#   episodes_5shot/1  600 episodes of batched fine-tuning with and without CUDA graphs (target 5-shot <= 0.1 s, and
#                     the graphed accuracies equal the eager ones)
#   trial_throughput  resnet12, 84 px, batch 256, bf16: the trial step vs the raw backbone (target >= 0.95)
#   sweep_conv4       the sweep stage (benchmarks/gpu_sweep_check.py): `negmargin sweep run` end to end through Ray
#   sweep_resnet12    with resources.gpu: auto, (a) the default preset, 12 trials, (b) resnet12 at 84 px, 4 trials:
#                     the packing decision and its probe, trials at once, the card's busy share (nvidia-smi), peak
#                     memory per trial, wall time, the report's first lines
#   packing_check     1, the decided N and 2 N concurrent trials of (a): the decision is right when N gives >= 90 %
#                     of the best throughput of the three without running out of memory
# FULL=1 adds concurrent (1, 4, 12 `negmargin train` at once), gpu_packing (the probe without Ray, conv4 and
# resnet12-mini), data_pipeline, dropblock_mask and the PIL DataLoader reference (then over 8 minutes).
# STAGES=name,name,... runs only those (the groups `checks` and `sweep` name the first five and the last three).
#
#   bash benchmarks/gpu_check.sh                              # on a GPU
#   QUICK=1 bash benchmarks/gpu_check.sh                      # smoke test on CPU with tiny settings (a few minutes)
#   QUICK=1 STAGES=sweep_conv4,packing_check bash benchmarks/gpu_check.sh   # what tests/benchmarks runs
#
# Needs pydantic (every stage) and Ray + Optuna (the sweep stage), which the GPU machine lacks. Without network
# there, they travel as wheels in .whl/, built on a machine with pip by ../shared/device/bring-ray.sh (Ray without
# its Java runtime and dashboard page, Optuna and its SQL stack, pydantic, jsonschema, tensorboardX: about 52 MiB;
# keep .whl out of git: .git/info/exclude). When Ray or pydantic is missing and .whl/ (or WHEELS=DIR) holds wheels,
# this script installs them into a temporary folder on PYTHONPATH (no network used), as the device-run line does:
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
#     && export PYTHONPATH=/tmp/site:$PWD && bash benchmarks/gpu_check.sh
# Environment: PYTHON (default python3), LOG_DIR (default $OUT if set, else a temporary folder): at most 8 files,
# gpu_check.log (everything printed) and one JSON per measurement (sweep.json for the sweep stage).
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

WHEELS=${WHEELS:-}
if [[ -z "$WHEELS" && -d "$REPO/.whl" ]] && ! "$PYTHON" -c "import ray, pydantic" 2>/dev/null; then
    WHEELS="$REPO/.whl"  # the carried wheels (../shared/device/bring-ray.sh), used only where Ray is missing
fi
if [[ -n "$WHEELS" ]]; then
    echo "gpu_check: installing the wheels in $WHEELS into a temporary folder"
    SITE=$(mktemp -d -t negmargin-site.XXXXXX)
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$WHEELS"/*.whl ||
        { echo "gpu_check: could not install the wheels in $WHEELS"; exit 2; }
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

WORK=$(mktemp -d -t negmargin-gpu-work.XXXXXX)  # the sweeps' specs, experiments and logs (not results)
SWEEP="$PYTHON benchmarks/gpu_sweep_check.py --work-dir $WORK --json $LOG_DIR/sweep.json"
if [[ "$QUICK" == 1 ]]; then
    DEVICE=cpu
    SWEEP="$SWEEP --smoke-test"
    STARTUP_ARGS=(--device cpu --threads 2)
    CONCURRENT_ARGS=(--device cpu --counts 1,2 --epochs 1)
    PACKING_ARGS=(--preset default --steps 2 --warmup 1)
    EPISODE5_ARGS=(--device cpu --episodes 20 --loop-episodes 2 --dim 64)
    EPISODE1_ARGS=(--device cpu --episodes 20 --loop-episodes 2 --dim 64 --shot 1)
    TRIAL_ARGS=(--device cpu --backbone conv4 --image-size 32 --batch-size 16 --steps 2 --warmup 1 --threads 2
                --images 64 --skip-reference)
    BUDGET=(120 180 60 60 120 400 600 400)  # generous: a shared CPU can be slow
    FULL_BUDGET=(240 120 120 45 180)
else
    DEVICE=cuda
    STARTUP_ARGS=(--device cuda)
    CONCURRENT_ARGS=(--device cuda --counts 1,4,12 --epochs 4)
    PACKING_ARGS=()
    EPISODE5_ARGS=(--device cuda --loop-episodes 5)
    EPISODE1_ARGS=(--device cuda --loop-episodes 5 --shot 1)
    TRIAL_ARGS=(--device cuda --backbone resnet12 --image-size 84 --batch-size 256 --steps 30 --warmup 8
                --skip-reference)
    BUDGET=(40 50 30 20 60 100 70 80)  # seconds per check: 450 s in all, plus start-up (installing the wheels)
    FULL_BUDGET=(150 50 120 45 180)
fi
PYTEST=("$PYTHON" -m pytest -q -p no:cacheprovider tests/evaluation/test_finetune.py
        tests/sweep/trial/test_training_batches.py)

echo "== negmargin gpu_check: device=$DEVICE quick=$QUICK full=$FULL logs=$LOG_DIR"
"$PYTHON" - <<'EOF'
import importlib, sys
missing = []
for name in ("torch", "numpy", "PIL", "yaml", "tqdm", "tensorboard", "pydantic", "pytest", "ray", "optuna"):
    try:
        importlib.import_module(name)
    except ImportError:
        missing.append(name)
import torch
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, GPU: {gpu}")
if missing:
    print(f"MISSING modules: {', '.join(missing)}" + (" (see the wheels in this script's header)"
          if {"pydantic", "ray", "optuna"} & set(missing) else ""))
EOF
if ! "$PYTHON" -c "import pydantic" 2>/dev/null; then
    echo "gpu_check: pydantic is missing; bring it as wheels and run with WHEELS=DIR (see this script's header)" >&2
    exit 2
fi
if [[ "$DEVICE" == cuda ]] && ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA device visible; run with QUICK=1 for the CPU smoke test" >&2
    exit 2
fi

NAMES=(cuda_tests trial_startup episodes_5shot episodes_1shot trial_throughput sweep_conv4 sweep_resnet12 packing_check)
COMMANDS=(
    "${PYTEST[*]}"
    "$PYTHON benchmarks/trial_startup.py ${STARTUP_ARGS[*]} --json $LOG_DIR/trial_startup.json"
    "$PYTHON benchmarks/episode_eval.py ${EPISODE5_ARGS[*]} --json $LOG_DIR/episodes.json"
    "$PYTHON benchmarks/episode_eval.py ${EPISODE1_ARGS[*]}"
    "$PYTHON benchmarks/trial_throughput.py ${TRIAL_ARGS[*]} --json $LOG_DIR/trial_throughput.json"
    "$SWEEP conv4"
    "$SWEEP resnet12"
    "$SWEEP packing"
)
if [[ "$FULL" == 1 ]]; then
    NAMES+=(concurrent gpu_packing data_pipeline dropblock_mask trial_reference)
    COMMANDS+=(
        "$PYTHON benchmarks/concurrent_trials.py ${CONCURRENT_ARGS[*]} --json $LOG_DIR/concurrent.json"
        "$PYTHON benchmarks/gpu_packing_check.py ${PACKING_ARGS[*]} --json $LOG_DIR/gpu_packing.json"
        "$PYTHON benchmarks/data_pipeline.py --device $DEVICE --workers 8"
        "$PYTHON benchmarks/dropblock_mask.py --device $DEVICE --draws 100"
        "$PYTHON benchmarks/trial_throughput.py --device $DEVICE --backbone resnet12 --steps 30 --warmup 8 --workers 8"
    )
    BUDGET+=("${FULL_BUDGET[@]}")
fi
SELECTED=()
IFS=, read -r -a REQUESTED <<<"${STAGES:-}"
for name in "${REQUESTED[@]}"; do
    case $name in
        checks) SELECTED+=("${NAMES[@]:0:5}") ;;
        sweep) SELECTED+=(sweep_conv4 sweep_resnet12 packing_check) ;;
        *)
            [[ " ${NAMES[*]} " == *" $name "* ]] || { echo "gpu_check: no stage '$name' (${NAMES[*]})" >&2; exit 2; }
            SELECTED+=("$name")
            ;;
    esac
done
HAVE_RAY=$("$PYTHON" -c "import ray, optuna; print(1)" 2>/dev/null || echo 0)
RAN=()
STATUS=()
SECONDS_TAKEN=()
LAST_LINES=()
for i in "${!NAMES[@]}"; do
    if [[ ${#SELECTED[@]} -gt 0 && " ${SELECTED[*]} " != *" ${NAMES[$i]} "* ]]; then
        continue
    fi
    RAN+=("${NAMES[$i]}")
    echo
    echo "== ${NAMES[$i]} (limit ${BUDGET[$i]} s): ${COMMANDS[$i]}"
    if [[ "${COMMANDS[$i]}" == "$SWEEP"* && "$HAVE_RAY" != 1 ]]; then
        echo "gpu_check: Ray or Optuna is missing: carry .whl/ (see this script's header)"
        STATUS+=("FAIL(no Ray)") SECONDS_TAKEN+=(0) LAST_LINES+=("Ray or Optuna is missing: carry .whl/")
        continue
    fi
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
rm -rf "$WORK"

echo
echo "== summary ($DEVICE)"
printf '%-18s %-12s %8s  %s\n' check status seconds "last line of output"
for i in "${!RAN[@]}"; do
    printf '%-18s %-12s %8s  %s\n' "${RAN[$i]}" "${STATUS[$i]}" "${SECONDS_TAKEN[$i]}" "${LAST_LINES[$i]}"
done
"$PYTHON" benchmarks/gpu_check_summary.py "$LOG_DIR" "$DEVICE"
for s in "${STATUS[@]}"; do
    [[ "$s" == ok ]] || exit 1
done
exit 0
