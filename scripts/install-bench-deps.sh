#!/usr/bin/env bash
# The benchmark's load generator (wrk, from Debian) and its dlt baseline (PyPI). Safe to run
# repeatedly: installs only what is missing. Usage: scripts/install-bench-deps.sh [python]
set -euo pipefail
PYTHON=${1:-python}

if ! command -v wrk >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "wrk: installing with apt-get"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi
echo "wrk: $(command -v wrk)"

if ! "$PYTHON" -c "import dlt, psycopg2" >/dev/null 2>&1; then
    echo "dlt[postgres]: installing with pip"
    "$PYTHON" -m pip install -q "dlt[postgres]>=1.0"
fi
echo "dlt: $("$PYTHON" -c 'import dlt; print(dlt.__version__)')"
