#!/usr/bin/env bash
# Installs what pyvrrpd needs on a Debian/Ubuntu host, into ./.venv.
#   scripts/setup.sh            runtime + demo lab dependencies
#   scripts/setup.sh --test     also the test tools (keepalived, tcpdump, tshark, pytest, ...)
# Idempotent: packages already present are not reinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

if [ "$(id -u)" -ne 0 ]; then
    echo "setup: run as root (the lab and the daemon need network namespaces and raw sockets)" >&2
    exit 2
fi

debs=(iproute2 haproxy psmisc procps util-linux curl ca-certificates nftables)
if [ "$want_test" = 1 ]; then
    # systemd: systemd-analyze for the units' `verify` test (tests/unit/test_systemd_units.py).
    debs+=(keepalived tcpdump tshark systemd)
fi

pick_python() {
    for py in python3 python3.13 python3.12 python3.11; do
        if command -v "$py" >/dev/null 2>&1 &&
            "$py" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$py"
            return 0
        fi
    done
    return 1
}

missing=()
for p in "${debs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
PY=$(pick_python || true)
if { [ "${#missing[@]}" -gt 0 ] || [ -z "$PY" ]; } && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    if [ -z "$PY" ]; then
        # Debian 12 ships 3.11 as python3; Ubuntu 22.04 has python3.11 beside 3.10.
        if "$(command -v python3 || echo false)" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            missing+=(python3-venv)
        else
            missing+=(python3.11 python3.11-venv)
        fi
    fi
    echo "setup: installing Debian packages: ${missing[*]}"
    # tshark asks whether non-root users may capture; answer no, quietly.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Packages we just installed are lab material and test peers, not services for
# this host: Debian starts haproxy (and would start keepalived) on install.
if command -v systemctl >/dev/null 2>&1; then
    for svc in haproxy keepalived; do
        case " ${missing[*]:-} " in
            *" $svc "*) systemctl disable --now "$svc" >/dev/null 2>&1 || true ;;
        esac
    done
fi
PY=$(pick_python) || { echo "setup: no Python >= 3.11 with venv available" >&2; exit 2; }

if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
extras=""
[ "$want_test" = 1 ] && extras="[test]"
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
log=$(mktemp)
if ! .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "setup: pip install failed" >&2
    exit 1
fi
rm -f "$log"
echo "setup: ready ($(.venv/bin/python --version), pyvrrpd in .venv)"
