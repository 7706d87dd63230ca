#!/usr/bin/env bash
# The README's first command: install, then walk through the guide's section 6
# in a lab of network namespaces with pyvrrpd moving the VIP.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/pyvrrpd demo "$@"
