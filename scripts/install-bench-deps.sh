#!/usr/bin/env bash
# The benchmark's load generator (wrk, from Debian) and the project's `bench` extra (its dlt
# baseline, from PyPI). Safe to run repeatedly: installs only what is missing.
# Usage: scripts/install-bench-deps.sh [python]
set -euo pipefail
PYTHON=${1:-python}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

if ! command -v wrk >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "wrk: installing with apt-get"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi
echo "wrk: $(command -v wrk)"

if ! "$PYTHON" -c "import dlt, psycopg2" >/dev/null 2>&1; then
    echo "bench extra (dlt[postgres]): installing with pip"
    "$PYTHON" -m pip install -q -e "${ROOT}[bench]"
fi
echo "dlt: $("$PYTHON" -c 'import dlt; print(dlt.__version__)')"
