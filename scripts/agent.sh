#!/usr/bin/env bash
# Run the agent from this checkout with zero configuration (listens on 127.0.0.1:10130 only).
# On a fresh Debian machine it first installs python3-venv (as root), then a virtualenv in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    else
        echo "需要 python3-venv: sudo apt-get install python3-venv (python3-venv is required)" >&2
        exit 1
    fi
fi
if [ ! -x .venv/bin/shaobing ]; then
    "$PY" -m venv .venv
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q .
fi
exec .venv/bin/shaobing agent run "$@"
