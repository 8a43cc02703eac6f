#!/usr/bin/env bash
# The project's GPU benchmarks in one call, on a machine with PyTorch but without network, Ray or our package
# installed (PYTHONPATH = the repository root). Finishes in under 9 minutes; prints a summary table last.
#
#   benchmarks/gpu_check.sh            # on a GPU: episode_eval, data_pipeline, trial_throughput, dropblock_mask
#   QUICK=1 benchmarks/gpu_check.sh    # smoke test on CPU with tiny settings (a minute or two)
#
# Environment: PYTHON (default: python3), LOG_DIR (default: $OUT if set, else a temporary folder) for the logs and
# trial_throughput.json, WORKERS (reference DataLoader workers, default 8).
# Targets checked on a GPU: a resnet12 trial at 84 px, batch 256, trains at >= 85% of the raw backbone's images/s
# and >= 5x the reference PIL DataLoader with 8 workers.
set -u -o pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
PYTHON=${PYTHON:-python3}
LOG_DIR=${LOG_DIR:-${OUT:-$(mktemp -d -t negmargin-gpu-check.XXXXXX)}}
mkdir -p "$LOG_DIR"
WORKERS=${WORKERS:-8}
QUICK=${QUICK:-0}

if [[ "$QUICK" == 1 ]]; then
    DEVICE=cpu
    EPISODE_ARGS=(--device cpu --episodes 20 --loop-episodes 2 --dim 64)
    PIPELINE_ARGS=(--device cpu --images 96 --classes 4 --image-size 32 --batch-size 32 --epochs 2 --workers 2)
    TRIAL_ARGS=(--device cpu --backbone conv4 --image-size 32 --batch-size 16 --steps 2 --warmup 1 --workers 2
                --threads 2 --images 64)
    DROPBLOCK_ARGS=(--device cpu --draws 3 --batch 16)
    BUDGET=(120 120 180 60)
else
    DEVICE=cuda
    EPISODE_ARGS=(--device cuda)
    PIPELINE_ARGS=(--device cuda --workers "$WORKERS")
    TRIAL_ARGS=(--device cuda --backbone resnet12 --image-size 84 --batch-size 256 --steps 40 --warmup 10
                --workers "$WORKERS")
    DROPBLOCK_ARGS=(--device cuda --draws 100)
    BUDGET=(150 120 180 45)  # seconds per benchmark: 495 s in all, plus start-up
fi

echo "== negmargin gpu_check: device=$DEVICE quick=$QUICK logs=$LOG_DIR"
"$PYTHON" - <<'EOF'
import importlib, sys
missing = []
for name in ("torch", "torchvision", "numpy", "PIL", "tqdm"):
    try:
        importlib.import_module(name)
    except ImportError:
        missing.append(name)
import torch
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, GPU: {gpu}")
if missing:
    print(f"MISSING modules: {', '.join(missing)} (benchmarks that import them will fail)")
EOF
if [[ "$DEVICE" == cuda ]] && ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA device visible; run with QUICK=1 for the CPU smoke test" >&2
    exit 2
fi

NAMES=(episode_eval data_pipeline trial_throughput dropblock_mask)
COMMANDS=(
    "benchmarks/episode_eval.py ${EPISODE_ARGS[*]}"
    "benchmarks/data_pipeline.py ${PIPELINE_ARGS[*]}"
    "benchmarks/trial_throughput.py ${TRIAL_ARGS[*]} --json $LOG_DIR/trial_throughput.json"
    "benchmarks/dropblock_mask.py ${DROPBLOCK_ARGS[*]}"
)
STATUS=()
SECONDS_TAKEN=()
for i in "${!NAMES[@]}"; do
    name=${NAMES[$i]}
    log="$LOG_DIR/$name.log"
    echo
    echo "== $name (limit ${BUDGET[$i]} s): $PYTHON ${COMMANDS[$i]}"
    start=$(date +%s)
    if [[ ! -f "${COMMANDS[$i]%% *}" ]]; then
        echo "missing: ${COMMANDS[$i]%% *}" | tee "$log"
        rc=127
    else
        # shellcheck disable=SC2086  # the command line is split on purpose
        timeout --kill-after=10 "${BUDGET[$i]}" "$PYTHON" ${COMMANDS[$i]} 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
    fi
    SECONDS_TAKEN+=($(($(date +%s) - start)))
    case $rc in
        0) STATUS+=(ok) ;;
        124 | 137) STATUS+=(TIMEOUT) ;;
        127) STATUS+=(MISSING) ;;
        *) STATUS+=("FAIL(rc=$rc)") ;;
    esac
done

echo
echo "== summary ($DEVICE)"
printf '%-18s %-12s %8s  %s\n' benchmark status seconds "last line of output"
for i in "${!NAMES[@]}"; do
    last=$(grep -v '^[[:space:]]*$' "$LOG_DIR/${NAMES[$i]}.log" 2>/dev/null | tail -n 1 | cut -c1-70)
    printf '%-18s %-12s %8s  %s\n' "${NAMES[$i]}" "${STATUS[$i]}" "${SECONDS_TAKEN[$i]}" "$last"
done
"$PYTHON" - "$LOG_DIR/trial_throughput.json" "$DEVICE" <<'EOF'
import json, sys
from pathlib import Path
path, device = Path(sys.argv[1]), sys.argv[2]
if not path.exists():
    print("trial_throughput targets: no result")
    sys.exit(0)
r = json.loads(path.read_text())
ips = r["images_per_s"]
print(f"\ntrial throughput on {r['device_name']} (images/s): raw {ips['raw']:.0f}, trial {ips['trial']:.0f}, "
      f"reference {ips.get('reference', float('nan')):.0f}")
print(f"{'target':<40} {'value':>8} {'goal':>7}  verdict")
for label, key, goal in (("trial / raw backbone", "trial_vs_raw", 0.85),
                         ("trial / reference PIL DataLoader", "trial_vs_reference", 5.0)):
    value = r.get(key)
    verdict = "n/a (cpu)" if device != "cuda" else ("PASS" if value is not None and value >= goal else "FAIL")
    shown = f"{value:.2f}" if value is not None else "-"
    print(f"{label:<40} {shown:>8} {goal:>7}  {verdict}")
EOF
for s in "${STATUS[@]}"; do
    [[ "$s" == ok ]] || exit 1
done
exit 0
