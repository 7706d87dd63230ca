#!/usr/bin/env bash
# Removes what scripts/install.sh installed (the venv, the commands in
# /usr/local/sbin, the units); /etc/keepalived is left as it was.
exec "$(dirname "$0")/install.sh" --uninstall "$@"
