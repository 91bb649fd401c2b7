#!/usr/bin/env bash
# Build the offline installation bundle for township machines.
#
#   deploy/build-bundle.sh [--output DIR] [--pythons "3.6 3.7 3.8 3.9 3.10 3.11 3.12 3.13"] [--arches "x86_64 aarch64"]
#
# Produces DIR/shaobing-agent-<version>.tar.gz containing:
#   install.sh, agent.example.yml, systemd/shaobing-{agent.service,smart.service,smart.timer}, VERSION, SHA256SUMS,
#   wheelhouse/  lock-cpXY-ARCH.txt (exact versions per Python and CPU; lock-cpXY-noarch.txt: the pure-Python part
#                for any other CPU, e.g. loongarch64), the shaobing wheel (agent only: no relay/dashboards extras) + its runtime dependencies as
#                manylinux2014 (glibc 2.17, CentOS 7 and newer) wheels for every CPython x CPU asked for, and pip.
#                The wheel's agent is rewritten for Python 3.6 (deploy/py36_source.py: the same code on every
#                Python); a dependency published only as source is built here when it is pure Python.
#
#   deploy/build-bundle.sh --centre [--output DIR] [--pythons "3.11 3.13"] [--arches "x86_64 aarch64"]
#
# Produces DIR/shaobing-centre-<version>.tar.gz for the county centre (deploy/central/setup.sh inside), laid out as
# this repository: deploy/central/, deploy/systemd/ (relay and report units), alert_rules/*.yml, dashboards/json/,
# wheelhouse/ with the relay's wheels and relay-lock-cpXY-ARCH.txt per Python (default: Debian 12's 3.11 and 13's
# 3.13). Prometheus and Alertmanager are not in it: they come from Debian's packages.
# Downloads come from PyPI (the build machine needs it; the township machine never does) and are cached in
# ${SHAOBING_WHEEL_CACHE:-~/.cache/shaobing-wheelhouse}, keyed by the dependency list, so a rebuild is offline.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
output=$repo/dist
pythons=""
arches="x86_64 aarch64"
centre=0

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case $1 in
        --output) output=$2; shift 2 ;;
        --pythons) pythons=$2; shift 2 ;;
        --arches) arches=$2; shift 2 ;;
        --centre) centre=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done
if [ -z "$pythons" ]; then
    if [ "$centre" = 1 ]; then pythons="3.11 3.13"; else pythons="3.6 3.7 3.8 3.9 3.10 3.11 3.12 3.13"; fi
fi

if [ -x "$repo/.venv/bin/python" ]; then py=$repo/.venv/bin/python; else py=${PYTHON:-python3}; fi
pip=("$py" -m pip --disable-pip-version-check --no-input --timeout 60)
cache=${SHAOBING_WHEEL_CACHE:-$HOME/.cache/shaobing-wheelhouse}

# The runtime dependencies, read from pyproject.toml's [project.dependencies] (the single source of truth); for the
# centre also the relay's extra.
mapfile -t deps < <("$py" - "$repo/pyproject.toml" "$centre" <<'EOF'
import sys
try:
    import tomllib
except ImportError:  # Python < 3.11 on the build machine
    import tomli as tomllib
with open(sys.argv[1], "rb") as fh:
    project = tomllib.load(fh)["project"]
for dep in project["dependencies"] + (project["optional-dependencies"]["relay"] if sys.argv[2] == "1" else []):
    print(dep)
EOF
)
version=$("$py" - "$repo/pyproject.toml" <<'EOF'
import sys
try:
    import tomllib
except ImportError:
    import tomli as tomllib
with open(sys.argv[1], "rb") as fh:
    print(tomllib.load(fh)["project"]["version"])
EOF
)
key=$(printf '%s\n' "${deps[@]}" pip | sha256sum | cut -c1-16)

name=shaobing-agent-$version
[ "$centre" = 0 ] || name=shaobing-centre-$version
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
bundle=$stage/$name
mkdir -p "$bundle/wheelhouse" "$output"
[ "$centre" = 1 ] || mkdir -p "$bundle/systemd"

echo "== agent wheel"
if ! "${pip[@]}" wheel --quiet --no-deps --wheel-dir "$bundle/wheelhouse" "$repo" >"$stage/wheel.log" 2>&1; then
    cat "$stage/wheel.log" >&2
    exit 1
fi
"$py" "$here/py36_source.py" wheel "$bundle"/wheelhouse/shaobing-*.whl

build_pure() {  # build_pure REQ DIR -> a py3-none-any wheel of a source-only dependency, or fail
    local req=$1 dir=$2 out
    out=$(mktemp -d)
    if timeout 900 "${pip[@]}" wheel --quiet --no-deps --no-binary :all: --wheel-dir "$out" "$req" >"$out/log" 2>&1 &&
        compgen -G "$out/*-none-any.whl" >/dev/null; then
        echo "   built $(basename "$out"/*-none-any.whl) from source (pure Python)"
        mv "$out"/*-none-any.whl "$dir/"
        rm -rf "$out"
        return 0
    fi
    echo "error: $req has no wheel for this Python and is not pure Python" >&2
    cat "$out/log" >&2
    rm -rf "$out"
    return 1
}

fetch() {  # fetch PYVER ARCH -> wheels for that combination into the cache, once
    local pyver=$1 arch=$2 abi dir
    abi=cp${pyver/./}
    # Python 3.6 and 3.7 were built with pymalloc's ABI flag: their extension wheels are tagged cp36m/cp37m.
    case $pyver in 3.6|3.7) abi=${abi}m ;; esac
    # pip reads "3.6" as 3.6.0, which anyio 3 (>= 3.6.2) refuses: resolve for CentOS 7's own 3.6.8.
    local full=$pyver
    [ "$pyver" != 3.6 ] || full=3.6.8
    dir=$cache/$key/cp${pyver/./}-$arch
    if [ -f "$dir/.complete" ]; then
        return 0
    fi
    rm -rf "$dir" && mkdir -p "$dir"
    echo "== wheels for CPython $pyver $arch"
    local want=()
    mapfile -t want < <("$py" "$here/wheel_markers.py" --for "$pyver" "$arch" "${deps[@]}")
    # Only manylinux tags up to 2014 (glibc 2.17): newer wheels would not load on the oldest supported OS.
    local download=("${pip[@]}" download --quiet --dest "$dir" --only-binary=:all:
        --implementation cp --python-version "$full" --abi "$abi" --abi abi3 --abi none
        --platform "manylinux2014_$arch" --platform "manylinux_2_17_$arch"
        --platform "manylinux_2_12_$arch" --platform "manylinux2010_$arch"
        --platform "manylinux_2_5_$arch" --platform "manylinux1_$arch" --platform any)
    timeout 900 "${download[@]}" "${want[@]}" pip
    # pip evaluates environment markers (python_version < "3.11") for the interpreter it runs on, not for
    # --python-version: add what the target Python needs, until nothing is missing.
    local round missing
    for round in 1 2 3 4 5 6 7 8; do
        missing=$("$py" "$here/wheel_markers.py" "$dir" "$pyver" "$arch")
        [ -n "$missing" ] || break
        echo "   + for $pyver: $missing"
        local req
        for req in $missing; do
            if ! timeout 900 "${download[@]}" --no-deps "$req" >"$stage/dl.log" 2>&1; then
                # Published as source only (contextvars, for Python 3.6): build it here, if it is pure Python.
                build_pure "$req" "$dir" || { cat "$stage/dl.log" >&2; exit 1; }
            fi
        done
    done
    touch "$dir/.complete"
}

for pyver in $pythons; do
    for arch in $arches; do
        fetch "$pyver" "$arch"
        dir=$cache/$key/cp${pyver/./}-$arch
        cp -n "$dir/"*.whl "$bundle/wheelhouse/"
        # The exact set pip resolved for this Python and CPU. Installing from the lock keeps an old pip (Debian
        # 11 ships 20.3) from picking a newer wheel that does not support its Python: with --find-links it
        # cannot see Requires-Python before it has chosen.
        for whl in "$dir"/*.whl; do
            whl=${whl##*/}
            IFS=- read -r dist ver _ <<< "$whl"
            echo "$dist==$ver"
        done | LC_ALL=C sort > "$stage/lock.txt"
        if [ "$centre" = 1 ]; then
            # The relay and the shaobing command from this bundle's own wheel, with exactly these dependencies.
            { cat "$stage/lock.txt"; echo "shaobing==$version"; } > "$bundle/wheelhouse/relay-lock-cp${pyver/./}-$arch.txt"
        else
            mv "$stage/lock.txt" "$bundle/wheelhouse/lock-cp${pyver/./}-$arch.txt"
        fi
    done
    [ "$centre" = 0 ] || continue
    # Any other CPU (loongarch64): the pure-Python wheels of this Python's set, and PyYAML built without its C
    # extension. psutil, bcrypt and cryptography are left out; the distribution's packages stand in where they
    # are installed (install.sh gives that venv the system site-packages; agent/optional.py says what is missing).
    first_dir=$cache/$key/cp${pyver/./}-${arches%% *}
    # Compiled and optional (agent/optional.py, agent/passhash.py): left out. Any other compiled dependency
    # (immutables, for 3.6's contextvars) has no pure form: then there is no such install for this Python.
    blockers=$(cd "$first_dir" && ls *.whl | grep -v -- '-none-any\.whl$' |
        grep -viE '^(psutil|bcrypt|cryptography|cffi|pyyaml)-' | cut -d- -f1 | tr '\n' ' ' || true)
    if [ -n "$blockers" ]; then
        echo "   no pure-Python install for CPython $pyver on other CPUs: $blockers has no pure-Python form"
        continue
    fi
    pure_lock=$bundle/wheelhouse/lock-cp${pyver/./}-noarch.txt
    : > "$pure_lock"
    for whl in "$first_dir"/*-none-any.whl; do
        whl=${whl##*/}
        IFS=- read -r dist ver _ <<< "$whl"
        echo "$dist==$ver" >> "$pure_lock"
    done
    yaml_ver=$(sed -n 's/^[Pp][Yy][Yy][Aa][Mm][Ll]==//p' "$bundle/wheelhouse/lock-cp${pyver/./}-${arches%% *}.txt")
    if [ -n "$yaml_ver" ]; then
        pure=$cache/$key/pure-pyyaml-$yaml_ver
        if ! compgen -G "$pure/*-none-any.whl" >/dev/null; then
            rm -rf "$pure" && mkdir -p "$pure"
            echo "   PyYAML $yaml_ver without libyaml (pure Python, for CPUs without wheels)"
            PYYAML_FORCE_LIBYAML=0 timeout 900 "${pip[@]}" wheel --quiet --no-deps --no-binary :all: \
                --wheel-dir "$pure" "pyyaml==$yaml_ver" >"$stage/yaml.log" 2>&1 || { cat "$stage/yaml.log" >&2; exit 1; }
        fi
        cp -n "$pure"/*-none-any.whl "$bundle/wheelhouse/"
        echo "pyyaml==$yaml_ver" >> "$pure_lock"
    fi
    LC_ALL=C sort -o "$pure_lock" "$pure_lock"
done

echo "== bundle files"
if [ "$centre" = 1 ]; then
    # The repository's own layout: deploy/central/setup.sh finds everything relative to itself.
    mkdir -p "$bundle/deploy/central/grafana" "$bundle/deploy/systemd" "$bundle/alert_rules" "$bundle/dashboards/json"
    for f in setup.sh agent-cert.sh; do install -m 0755 "$here/central/$f" "$bundle/deploy/central/$f"; done
    for f in README.md prometheus.yml alertmanager.yml relay.example.yml report.example.yml; do
        install -m 0644 "$here/central/$f" "$bundle/deploy/central/$f"
    done
    cp -r "$here/central/grafana/." "$bundle/deploy/central/grafana/"
    for unit in shaobing-relay.service shaobing-report.service shaobing-report.timer; do
        install -m 0644 "$here/systemd/$unit" "$bundle/deploy/systemd/$unit"
    done
    for rules in "$repo"/alert_rules/*.yml; do
        [ "${rules##*/}" = thresholds.yml ] || install -m 0644 "$rules" "$bundle/alert_rules/"
    done
    install -m 0644 "$repo"/dashboards/json/*.json "$bundle/dashboards/json/"
else
    install -m 0755 "$here/install.sh" "$bundle/install.sh"
    install -m 0644 "$here/agent.example.yml" "$bundle/agent.example.yml"
    for unit in shaobing-agent.service shaobing-agent.legacy.service shaobing-smart.service shaobing-smart.timer; do
        install -m 0644 "$here/systemd/$unit" "$bundle/systemd/$unit"
    done
fi
echo "$version" > "$bundle/VERSION"
(cd "$bundle" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort | xargs sha256sum > SHA256SUMS)

tarball=$output/$name.tar.gz
tar -C "$stage" --owner=0 --group=0 --numeric-owner -czf "$tarball.tmp" "$name"
mv "$tarball.tmp" "$tarball"
echo "$tarball ($(du -h "$tarball" | cut -f1), $(ls "$bundle/wheelhouse"/*.whl | wc -l) wheels)"
