#!/usr/bin/env bash
# Installs pyvrrpd as a system service on Debian/Ubuntu, or removes it again.
#
#   scripts/install.sh               from a checkout: venv in /opt/pyvrrpd, commands in
#                                    /usr/local/sbin, units enabled (not started)
#   scripts/install.sh --compat      also the `keepalived` command and keepalived.service
#                                    when Debian's keepalived package is installed
#   scripts/install.sh --uninstall   removes everything the install made (config stays)
#
# From a wheel (no checkout): the wheel carries this script and the units, so
#   python3 -m venv /opt/pyvrrpd && /opt/pyvrrpd/bin/pip install pyvrrpd-*.whl
#   /opt/pyvrrpd/share/pyvrrpd/install.sh
# finishes the same install around that venv.
#
# What the install made is listed in $PREFIX/install-manifest, which --uninstall
# reads, so it never removes a file it did not put there (Debian's
# /usr/sbin/keepalived and /lib/systemd/system/keepalived.service are never touched).
set -euo pipefail

PREFIX=/opt/pyvrrpd
BINDIR=/usr/local/sbin
UNITDIR=/etc/systemd/system
CONF=/etc/keepalived/keepalived.conf
compat=0
uninstall=0
wheel=""

usage() {
    sed -n '2,16s/^# \{0,1\}//p' "$0"
    echo "options: --compat  --uninstall  --wheel FILE  --prefix DIR (default $PREFIX)  -h"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --compat) compat=1 ;;
        --uninstall) uninstall=1 ;;
        --wheel)
            [ $# -ge 2 ] || { echo "install: --wheel needs a file" >&2; exit 2; }
            wheel=$2
            shift
            ;;
        --prefix)
            [ $# -ge 2 ] || { echo "install: --prefix needs a directory" >&2; exit 2; }
            PREFIX=$2
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "install: unknown argument '$1' (try --help)" >&2
            exit 2
            ;;
    esac
    shift
done

case "$PREFIX" in
    /?*) ;;
    *) echo "install: --prefix must be an absolute directory, not '$PREFIX'" >&2; exit 2 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
    echo "install: run as root (it writes $PREFIX, $BINDIR and $UNITDIR)" >&2
    exit 2
fi

manifest="$PREFIX/install-manifest"
if [ "$uninstall" = 0 ] && dpkg-query -W -f='${Status}' pyvrrpd 2>/dev/null | grep -q "ok installed"; then
    echo "install: the pyvrrpd .deb is installed (apt-get purge pyvrrpd first, or keep it)" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)

# systemd is "running" when /run/systemd/system exists (sd_booted(3)); in a
# chroot or a container without it, units are placed and enabled offline.
systemd_running() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

debian_keepalived() {
    dpkg-query -W -f='${Status}' keepalived 2>/dev/null | grep -q "install ok installed"
}

if [ "$uninstall" = 1 ]; then
    if [ ! -f "$manifest" ]; then
        echo "install: nothing to uninstall ($manifest not found)"
        exit 0
    fi
    units=()
    while IFS= read -r f; do
        case "$f" in
            "$UNITDIR"/*.service) units+=("$(basename "$f")") ;;
        esac
    done <"$manifest"
    if [ "${#units[@]}" -gt 0 ] && command -v systemctl >/dev/null 2>&1; then
        if systemd_running; then
            systemctl disable --now "${units[@]}" >/dev/null 2>&1 || true
        else
            systemctl disable "${units[@]}" >/dev/null 2>&1 || true
        fi
    fi
    while IFS= read -r f; do
        case "$f" in
            "$BINDIR"/*)
                # Only our symlink into the venv, never a file someone else put there.
                if [ -L "$f" ] && [ "$(readlink "$f")" = "$PREFIX/bin/$(basename "$f")" ]; then
                    rm -f "$f"
                fi
                ;;
            "$UNITDIR"/*) rm -f "$f" ;;
        esac
    done <"$manifest"
    if systemd_running; then systemctl daemon-reload || true; fi
    rm -rf "$PREFIX"
    echo "install: pyvrrpd removed ($PREFIX, commands, units); $CONF left as it was"
    exit 0
fi

# Where the units come from: a checkout's systemd/, or the wheel's share/pyvrrpd/.
if [ -f "$here/../pyproject.toml" ] && [ -d "$here/../systemd" ]; then
    src=$(cd "$here/.." && pwd)
    unitsrc="$src/systemd"
elif [ -d "$here/systemd" ]; then
    src=""
    unitsrc="$here/systemd"
else
    echo "install: no systemd units next to this script (run it from a checkout)" >&2
    exit 2
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

if [ ! -x "$PREFIX/bin/python" ] || [ -n "$wheel" ] || [ -n "$src" ]; then
    if [ ! -x "$PREFIX/bin/python" ]; then
        PY=$(pick_python || true)
        if [ -z "$PY" ]; then
            # Debian 12 has python3 3.11 without venv/ensurepip (python3-venv);
            # Ubuntu 22.04's python3 is 3.10, with 3.11 beside it.
            command -v apt-get >/dev/null 2>&1 || {
                echo "install: no Python >= 3.11 with venv, and no apt-get to get one" >&2
                exit 1
            }
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq
            if "$(command -v python3 || echo false)" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
                pkgs=(python3-venv)
            else
                pkgs=(python3.11 python3.11-venv)
            fi
            echo "install: installing Debian packages: ${pkgs[*]}"
            apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
            PY=$(pick_python) || { echo "install: no Python >= 3.11 with venv available" >&2; exit 1; }
        fi
        "$PY" -m venv "$PREFIX"
    fi
    what=${wheel:-$src}
    if [ -n "$what" ]; then
        log=$(mktemp)
        # Non-editable: the service must not depend on the checkout staying put.
        if ! "$PREFIX/bin/python" -m pip install -q --disable-pip-version-check --upgrade "$what" >"$log" 2>&1; then
            tail -n 20 "$log" >&2
            rm -f "$log"
            echo "install: pip install of $what into $PREFIX failed" >&2
            exit 1
        fi
        rm -f "$log"
    fi
fi
[ -x "$PREFIX/bin/pyvrrpd" ] || { echo "install: $PREFIX has no pyvrrpd (pip install it there first)" >&2; exit 1; }

# Keep the manifest cumulative so a rerun (say with --compat) still undoes everything.
touch "$manifest"
record() { grep -qxF "$1" "$manifest" || echo "$1" >>"$manifest"; }

cmds=(pyvrrpd)
units=(pyvrrpd.service)
if debian_keepalived && [ "$compat" = 0 ]; then
    echo "install: Debian's keepalived package is installed: leaving the keepalived command and" \
        "keepalived.service to it (--compat installs pyvrrpd's in $BINDIR and $UNITDIR, ahead of it)"
else
    cmds+=(keepalived)
    units+=(keepalived.service)
fi

mkdir -p "$BINDIR" "$UNITDIR"
for c in "${cmds[@]}"; do
    if [ -e "$BINDIR/$c" ] && ! [ -L "$BINDIR/$c" ]; then
        echo "install: $BINDIR/$c exists and is not ours: left alone" >&2
        continue
    fi
    ln -sfn "$PREFIX/bin/$c" "$BINDIR/$c"
    record "$BINDIR/$c"
done
for u in "${units[@]}"; do
    [ -f "$unitsrc/$u" ] || { echo "install: $unitsrc/$u missing" >&2; exit 1; }
    # The units name /usr/local/sbin; a non-default prefix does not change that,
    # since the commands are symlinked there either way.
    sed "s#/usr/local/bin/#$BINDIR/#g" "$unitsrc/$u" >"$UNITDIR/$u.tmp"
    chmod 0644 "$UNITDIR/$u.tmp"
    mv -f "$UNITDIR/$u.tmp" "$UNITDIR/$u"
    record "$UNITDIR/$u"
done

# Only pyvrrpd.service is enabled: keepalived.service runs the same config and
# the two conflict, so the compat unit is there for `systemctl start keepalived`.
if systemd_running; then
    systemctl daemon-reload
    systemctl enable pyvrrpd.service >/dev/null 2>&1
    state="enabled (not started: systemctl start pyvrrpd)"
elif command -v systemctl >/dev/null 2>&1; then
    systemctl enable pyvrrpd.service >/dev/null 2>&1 || true
    state="placed and enabled offline (systemd is not running here)"
else
    state="placed (no systemd here: not enabled)"
fi

echo "install: pyvrrpd $("$PREFIX/bin/python" -c 'import pyvrrpd; print(pyvrrpd.__version__)') in $PREFIX"
echo "install: commands: ${cmds[*]/#/$BINDIR/}"
echo "install: units in $UNITDIR: ${units[*]}; pyvrrpd.service $state"
if [ ! -e "$CONF" ]; then
    echo "install: no $CONF yet: the service starts once it exists (examples: conf/ in the repository)"
else
    echo "install: $CONF left as it was"
fi
