#!/usr/bin/env bash
# The README's first command: install into ./.venv, then walk through the guide's
# section 6 in a lab of network namespaces with pyvrrpd moving the VIP.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
    echo "demo: run as root (the lab builds network namespaces; no sudo needed as root)" >&2
    exit 2
fi
scripts/setup.sh
rc=0
.venv/bin/pyvrrpd demo "$@" || rc=$?
echo "demo: the commands are in $PWD/.venv/bin (pyvrrpd, keepalived);" \
    "to install pyvrrpd as a service: ./scripts/install.sh"
exit "$rc"
