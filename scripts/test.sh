#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs what the tests need
# (Debian packages as root, a virtualenv in .venv), then lint, type-check, tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && [ "${SHAOBING_SKIP_APT:-0}" != 1 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # A temporary policy-rc.d keeps package scripts from starting services
    # (tests start their own on loopback); it is removed again right after.
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        made_policy=1
    fi
    grep -v '^\s*#' .ci/apt-packages | xargs apt-get install -y -qq --no-install-recommends >/dev/null
    [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[relay,dashboards,report,dev]'

echo "== ruff"
.venv/bin/ruff check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
# Everything, slow end-to-end cases included, on two workers (tests/conftest.py keeps each file on one
# worker); then, alone, the cases that measure latency under a load they make themselves (marker `serial`).
rc=0
.venv/bin/pytest -q -p no:cacheprovider -m "not serial" -n "${SHAOBING_TEST_WORKERS:-2}" "$@" || rc=$?
serial=0
.venv/bin/pytest -q -p no:cacheprovider -m serial "$@" || serial=$?
# 5 is pytest's "no test selected": a path given on the command line without (or with only) serial cases.
for code in "$rc" "$serial"; do
    [ "$code" = 0 ] || [ "$code" = 5 ] || exit "$code"
done
