#!/usr/bin/env bash
# Start a local Ray cluster on 127.0.0.1: a head plus N worker nodes (default 2), token auth on.
#   clusters/local/up.sh [N] [more `negmargin cluster up` options, e.g. --worker-cpus 2 --dashboard-port 8266]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
[ -x "$python" ] || python=python3
workers="${1:-2}"
shift $(( $# > 0 ? 1 : 0 ))
cd "$root" && exec "$python" -m sweep cluster up --local --workers "$workers" "$@"
