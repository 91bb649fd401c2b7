#!/usr/bin/env bash
# Build (once per machine) a minimal Debian root with python3 + venv, cached as a tarball.
#   make_root.sh SUITE            -> prints the tarball path (/var/cache/shaobing-test/debian-SUITE.tar.gz)
#   make_root.sh SUITE-systemd    -> the same plus systemd as init, for systemd-nspawn -b
# The mirror comes from this machine's apt sources (the only Debian mirror it may reach).
set -euo pipefail
name=$1
suite=${name%-systemd}
include=python3,python3-venv,iproute2
[ "$name" = "$suite" ] || include=$include,systemd,systemd-sysv,dbus
cache=${SHAOBING_ROOT_CACHE:-/var/cache/shaobing-test}
tarball=$cache/debian-$name.tar.gz
mkdir -p "$cache"
# One builder per suite at a time (test workers run in parallel): the others wait, then find the tarball.
exec 9>"$cache/.lock-$name"
flock -w 1500 9
if [ -s "$tarball" ]; then
    echo "$tarball"
    exit 0
fi
mirror=$(grep -rhoE '(https?://[^ ]*debian)/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
         | grep -v security | head -n1 | tr -d ' ' || true)
mirror=${SHAOBING_DEBIAN_MIRROR:-${mirror:-http://deb.debian.org/debian}}
work=$(mktemp -d "$cache/build-$name.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
if ! timeout 1200 debootstrap --variant=minbase --include="$include" \
        "$suite" "$work/root" "$mirror" >"$work/log" 2>&1; then
    # Debian moves old releases to archive.debian.org once their support ends.
    if ! timeout 1200 debootstrap --variant=minbase --include="$include" \
            "$suite" "$work/root2" "http://archive.debian.org/debian" >>"$work/log" 2>&1; then
        tail -n 20 "$work/log" >&2
        exit 1
    fi
    mv "$work/root2" "$work/root"
fi
rm -rf "$work/root/var/cache/apt/archives/"*.deb
tar -C "$work/root" -czf "$work/root.tar.gz" .
mv "$work/root.tar.gz" "$tarball"
echo "built $tarball in $(( $(date +%s) - start )) s" >&2
echo "$tarball"
