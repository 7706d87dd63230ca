#!/usr/bin/env bash
# The README's second command: install the test dependencies and run the whole
# suite (lint, types, unit, simulator, and as root the netns and interop tests).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
    echo "test: run as root (the netns tests need network namespaces and raw sockets)" >&2
    exit 2
fi
scripts/setup.sh --test
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"
ruff check pyvrrpd tests bench
ruff format --check pyvrrpd tests bench
echo "== mypy --strict"
mypy
echo "== pytest"
exec pytest -q "$@"
