#!/usr/bin/env bash
# The README's second command: install the test dependencies and run the whole
# suite (lint, types, unit, simulator, and as root the netns and interop tests).
#   scripts/test.sh             everything (about 12 minutes on 2 cores)
#   scripts/test.sh ARGS...     `pytest -q ARGS...` after the same setup and lint
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
if [ "$#" -gt 0 ]; then
    # Arguments (a file, -k, -x ...): one plain pytest run of what was asked.
    echo "== pytest"
    exec pytest -q "$@"
fi
# The suite in two passes (tests/conftest.py): most tests on two workers (the
# netns tests mostly wait on VRRP timers), then the ones that load the machine
# enough to disturb other tests' timing bounds (floods, chaos, realtime
# scheduling, the debootstrap install), one at a time.
echo "== pytest, parallel pass"
pytest -q -n 2 --dist worksteal -m "not serial"
echo "== pytest, serial pass"
exec pytest -q -m serial
