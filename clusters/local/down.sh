#!/usr/bin/env bash
# Stop the local Ray cluster started by up.sh (only its own processes; never `ray stop`).
#   clusters/local/down.sh [--state-dir DIR]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
[ -x "$python" ] || python=python3
cd "$root" && exec "$python" -m sweep cluster down "$@"
