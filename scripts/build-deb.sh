#!/usr/bin/env bash
# Builds build/deb/pyvrrpd_VERSION_ARCH.deb with dpkg-deb from a staged tree.
#
#   scripts/build-deb.sh [OUTDIR]      (after ./scripts/setup.sh, which makes ./.venv)
#
# The package carries pyvrrpd's wheel and its dependencies' wheels (pyroute2,
# psutil, structlog: Debian 12's own python3-pyroute2 and python3-structlog are
# older than pyvrrpd needs) under /usr/share/pyvrrpd/wheels; its postinst builds
# the venv /opt/pyvrrpd from them offline (a venv holds absolute paths and the
# target's Python, so it is made on the target) behind /usr/sbin/pyvrrpd, and
# enables pyvrrpd.service without starting it. Removing the package removes the
# venv; /etc/keepalived is never touched. The keepalived compat command and unit
# are not in the package: it must not clash with Debian's keepalived package
# (scripts/install.sh --compat is the way to get them). Architecture is the build
# host's (psutil's wheel is binary).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/deb}
py=${PYTHON:-.venv/bin/python}
[ -x "$py" ] || { echo "build-deb: no $py (run ./scripts/setup.sh first, or set PYTHON)" >&2; exit 2; }
command -v dpkg-deb >/dev/null 2>&1 || { echo "build-deb: dpkg-deb missing (Debian/Ubuntu only)" >&2; exit 2; }

version=$("$py" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"

mkdir -p "$stage/DEBIAN" "$stage/usr/share/pyvrrpd/wheels" "$stage/lib/systemd/system" \
    "$stage/usr/share/doc/pyvrrpd"
log=$(mktemp)
if ! "$py" -m pip wheel -q --disable-pip-version-check -w "$stage/usr/share/pyvrrpd/wheels" . >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -f "$log"
    echo "build-deb: pip wheel failed" >&2
    exit 1
fi
rm -f "$log"
# Packages own /usr/sbin, never /usr/local (Debian policy 9.1.2).
sed 's#/usr/local/s\?bin/#/usr/sbin/#g' systemd/pyvrrpd.service >"$stage/lib/systemd/system/pyvrrpd.service"
cp conf/*.conf "$stage/usr/share/doc/pyvrrpd/"
cp README.md "$stage/usr/share/doc/pyvrrpd/"
# Owned by the package (dangling until postinst has made the venv).
mkdir -p "$stage/usr/sbin"
ln -s /opt/pyvrrpd/bin/pyvrrpd "$stage/usr/sbin/pyvrrpd"

cat >"$stage/DEBIAN/control" <<EOF
Package: pyvrrpd
Version: $version
Architecture: $arch
Maintainer: pyvrrpd developers <root@localhost>
Depends: python3 (>= 3.11), python3-venv
Section: net
Priority: optional
Installed-Size: $(du -sk "$stage" | cut -f1)
Description: pure-Python VRRPv2 daemon reading keepalived.conf
 Replaces keepalived's VRRP half on HAProxy pairs: reads keepalived.conf
 unchanged, moves the virtual IP as keepalived does. Installs into the
 virtual environment /opt/pyvrrpd, built at install time from bundled wheels.
EOF

cat >"$stage/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    if [ -f /opt/pyvrrpd/install-manifest ]; then
        echo "pyvrrpd: /opt/pyvrrpd was made by scripts/install.sh; run its --uninstall first" >&2
        exit 1
    fi
    rm -rf /opt/pyvrrpd
    python3 -m venv /opt/pyvrrpd
    /opt/pyvrrpd/bin/pip install -q --disable-pip-version-check --no-index \
        --find-links /usr/share/pyvrrpd/wheels pyvrrpd
    if command -v deb-systemd-helper >/dev/null 2>&1; then
        deb-systemd-helper enable pyvrrpd.service >/dev/null || true
    elif command -v systemctl >/dev/null 2>&1; then
        systemctl enable pyvrrpd.service >/dev/null 2>&1 || true
    fi
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload || true
    fi
    echo "pyvrrpd: installed in /opt/pyvrrpd; pyvrrpd.service enabled, not started"
fi
EOF

cat >"$stage/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    systemctl stop pyvrrpd.service >/dev/null 2>&1 || true
fi
EOF

cat >"$stage/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
case "$1" in
    remove | purge)
        rm -rf /opt/pyvrrpd
        if command -v deb-systemd-helper >/dev/null 2>&1; then
            deb-systemd-helper purge pyvrrpd.service >/dev/null || true
        else
            rm -f /etc/systemd/system/multi-user.target.wants/pyvrrpd.service
        fi
        if [ -d /run/systemd/system ]; then
            systemctl daemon-reload || true
        fi
        ;;
esac
EOF
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"
chmod -R u=rwX,go=rX "$stage/usr" "$stage/lib"

mkdir -p "$out"
deb="$out/pyvrrpd_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
echo "build-deb: $deb"
