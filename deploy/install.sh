#!/usr/bin/env bash
# 哨兵 Shaobing agent installer — run as root from the unpacked offline bundle; never uses the network.
#
#   bash install.sh [--township 城关镇] [--site 镇政府机房] [--listen 0.0.0.0:10130] [--python /path/python3]
#                   [--tls-cert agent.crt --tls-key agent.key] [--password-file agent_scrape_password]
#                   [--insecure-plain-http] [--unit auto|modern|legacy]
#   bash install.sh --uninstall [--purge]
#
# Install:   venv /opt/shaobing/venv from ./wheelhouse only (no venv module, e.g. python3-venv not installed:
#            the bundled pip wheel into /opt/shaobing/venv/lib/site plus launchers); /etc/shaobing/{agent.yml,web.yml} (first install
#            only); user "shaobing"; systemd unit; start; verify that /metrics answers; print the scrape snippet.
#            Scrape password: --password-file FILE = the fleet's one password (the county's
#            secrets/agent_scrape_password; not world-readable; never shown), bcrypt-hashed into web.yml;
#            without it a random one, shown once. A fleet password on a host without TLS is refused
#            (it would travel in cleartext, and it opens every HTTPS agent) unless --insecure-plain-http.
#            Unit: the hardened one (seccomp, ambient CAP_DAC_READ_SEARCH); below systemd 229 or Linux 4.3
#            (CentOS 7) the legacy one, whose capability comes from a private copy of the interpreter.
# Re-run:    upgrades the agent; configuration and state are kept (--password-file replaces the hash).
# Uninstall: removes everything the installer added; /etc/shaobing is kept unless --purge.
#
# Exit codes: 0 done, 1 failed (this run's changes rolled back), 2 bad usage, 3 not root, 4 bundle damaged,
#             5 no usable Python, 6 port in use, 7 the agent did not answer (rolled back).
set -euo pipefail
umask 022
export PYTHONDONTWRITEBYTECODE=1 PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 LC_ALL=C.UTF-8

PREFIX=/opt/shaobing
VENV=$PREFIX/venv
MANIFEST=$PREFIX/installed-by-shaobing
CONF_DIR=/etc/shaobing
STATE_DIR=/var/lib/shaobing
UNIT_DIR=/etc/systemd/system
UNIT=$UNIT_DIR/shaobing-agent.service
SVC_USER=shaobing
SCRAPE_USER=prometheus
BUNDLE=$(cd "$(dirname "$0")" && pwd)

township="" site="" listen="0.0.0.0:10130" python_arg="" action=install purge=0 tls_cert="" tls_key=""
password_file="" insecure_plain=0 unit_kind=auto

say()  { printf '%s\n' "$*"; }
warn() { printf '警告 (warning): %s\n' "$*" >&2; }
die()  { local code=$1; shift; printf '错误 (error): %s\n' "$*" >&2; exit "$code"; }

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case $1 in
        --township) township=${2-}; shift 2 || die 2 "--township needs a value" ;;
        --site) site=${2-}; shift 2 || die 2 "--site needs a value" ;;
        --listen) listen=${2-}; shift 2 || die 2 "--listen needs a value" ;;
        --python) python_arg=${2-}; shift 2 || die 2 "--python needs a value" ;;
        --tls-cert) tls_cert=${2-}; shift 2 || die 2 "--tls-cert needs a file" ;;
        --tls-key) tls_key=${2-}; shift 2 || die 2 "--tls-key needs a file" ;;
        --password-file) password_file=${2-}; shift 2 || die 2 "--password-file needs a file" ;;
        --insecure-plain-http) insecure_plain=1; shift ;;
        --unit) unit_kind=${2-}; shift 2 || die 2 "--unit needs auto, modern or legacy" ;;
        --uninstall) action=uninstall; shift ;;
        --purge) purge=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die 2 "未知参数 (unknown option): $1" ;;
    esac
done

if [ "$(id -u)" != 0 ]; then
    die 3 "请以 root 身份运行 (must run as root): sudo bash $0 $*"
fi

case $unit_kind in auto|modern|legacy) ;; *) die 2 "--unit 应为 auto、modern 或 legacy (got '$unit_kind')" ;; esac
port=${listen##*:}
case $port in ''|*[!0-9]*) die 2 "--listen 应为 host:port (expected host:port), got '$listen'" ;; esac
[ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die 2 "端口超出范围 (port out of range): $port"

if [ -n "$tls_cert$tls_key" ]; then
    [ -n "$tls_cert" ] && [ -n "$tls_key" ] || die 2 "--tls-cert 与 --tls-key 需同时给出 (give both --tls-cert and --tls-key)"
    [ -r "$tls_cert" ] || die 2 "无法读取证书 (cannot read certificate): $tls_cert"
    [ -r "$tls_key" ] || die 2 "无法读取私钥 (cannot read key): $tls_key"
fi
if [ -n "$password_file" ] && [ "$action" = install ]; then
    [ -f "$password_file" ] && [ -r "$password_file" ] || die 2 "无法读取口令文件 (cannot read password file): $password_file"
    # Refused rather than warned: a readable copy on a township machine is the whole fleet's password.
    mode=$(stat -L -c %a "$password_file")
    if (( 8#$mode & 8#006 )); then
        die 2 "口令文件其他用户可读写 (password file is accessible to all users, mode $mode): chmod 600 $password_file"
    fi
fi

have_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

# Which unit: the modern one needs AmbientCapabilities= (systemd 229) and ambient capabilities (Linux 4.3);
# CentOS 7 has systemd 219 and Linux 3.10, where that unit would start the agent without its one capability.
pick_unit() {
    [ "$unit_kind" = auto ] || return 0
    local sd kernel major minor
    sd=$(timeout 20 systemctl --version 2>/dev/null | awk 'NR == 1 {print $2}' | tr -dc '0-9' || true)
    kernel=$(uname -r)
    major=${kernel%%.*}; minor=${kernel#*.}; minor=${minor%%[!0-9]*}
    unit_kind=modern
    if [ -n "$sd" ] && [ "$sd" -lt 229 ]; then unit_kind=legacy; fi
    if [ "$major" -lt 4 ] || { [ "$major" -eq 4 ] && [ "${minor:-0}" -lt 3 ]; }; then unit_kind=legacy; fi
}

# The running agent's PID, from the pid file it writes in its state directory (agent/cli.py), checked against
# /proc so a stale file whose PID now belongs to another program is ignored. Nothing is found by matching
# command lines: an administrator's shell that merely names the venv is not ours to stop.
our_pids() {
    local f=$STATE_DIR/agent.pid pid a0 a1 a2
    [ -r "$f" ] || return 0
    pid=$(tr -dc '0-9' < "$f")
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 0
    { IFS= read -r -d '' a0 && IFS= read -r -d '' a1 && IFS= read -r -d '' a2; } < "/proc/$pid/cmdline" 2>/dev/null \
        || true
    # the venv's shaobing script run by its Python (argv: python shaobing agent ...), or setpriv's exec of it
    case "$a0 $a1 $a2" in
        *"$VENV/bin/shaobing agent"*|"$VENV/bin/shaobing agent"*) echo "$pid" ;;
    esac
}

stop_agent() {
    if have_systemd && systemctl list-unit-files shaobing-agent.service >/dev/null 2>&1; then
        timeout 60 systemctl stop shaobing-agent.service 2>/dev/null || true
    fi
    local pids i
    pids=$(our_pids)
    [ -n "$pids" ] || return 0
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for i in $(seq 1 50); do
        pids=$(our_pids); [ -n "$pids" ] || return 0; sleep 0.2
    done
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------- uninstall
uninstall() {
    local user_created=0
    if [ -f "$MANIFEST" ] && grep -qx 'user_created=1' "$MANIFEST"; then user_created=1; fi
    stop_agent
    if have_systemd; then
        timeout 60 systemctl disable shaobing-agent.service >/dev/null 2>&1 || true
    fi
    if have_systemd; then
        timeout 60 systemctl disable --now shaobing-smart.timer >/dev/null 2>&1 || true
    fi
    rm -f "$UNIT" "$UNIT_DIR/multi-user.target.wants/shaobing-agent.service" "$UNIT_DIR/shaobing-smart.service" \
        "$UNIT_DIR/shaobing-smart.timer" "$UNIT_DIR/timers.target.wants/shaobing-smart.timer"
    have_systemd && timeout 60 systemctl daemon-reload || true
    rm -rf "$PREFIX" "$STATE_DIR" /var/lib/shaobing-smart
    if [ "$purge" = 1 ]; then
        rm -rf "$CONF_DIR"
    elif [ -d "$CONF_DIR" ]; then
        # The group is about to disappear: leave the kept files to root alone.
        chgrp -R root "$CONF_DIR" 2>/dev/null || true
    fi
    if [ "$user_created" = 1 ] && getent passwd "$SVC_USER" >/dev/null; then
        userdel "$SVC_USER" 2>/dev/null || warn "userdel $SVC_USER failed"
        getent group "$SVC_USER" >/dev/null && groupdel "$SVC_USER" 2>/dev/null || true
    fi
    if [ "$purge" = 1 ]; then
        say "哨兵 Shaobing 已卸载, 配置已删除 (uninstalled; configuration purged)."
    else
        say "哨兵 Shaobing 已卸载 (uninstalled). 配置保留在 $CONF_DIR (kept; --purge removes it)."
    fi
}

if [ "$action" = uninstall ]; then
    uninstall
    exit 0
fi

# ------------------------------------------------------------------------------------------- preflight
if [ ! -d "$BUNDLE/wheelhouse" ] || [ ! -f "$BUNDLE/SHA256SUMS" ]; then
    die 4 "安装包不完整 (incomplete bundle): $BUNDLE/wheelhouse or SHA256SUMS missing; unpack the whole tarball"
fi
if ! (cd "$BUNDLE" && sha256sum --quiet --strict -c SHA256SUMS >/dev/null 2>&1); then
    die 4 "安装包校验失败 (bundle checksum mismatch): re-copy the tarball; see: cd $BUNDLE && sha256sum -c SHA256SUMS"
fi
version=$(cat "$BUNDLE/VERSION")

py_version() {  # print "3.11" for a working interpreter, nothing otherwise
    timeout 20 "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true
}

find_python() {
    local cand v found="" seen=" " fallback=""
    local candidates=()
    if [ -n "$python_arg" ]; then
        candidates=("$python_arg")
    else
        candidates=(python3 python3.13 python3.12 python3.11 python3.10 python3.9 python3.8 python3.7 python3.6)
        for cand in /opt/rh/rh-python3*/root/usr/bin/python3 /usr/local/bin/python3.* /opt/python3*/bin/python3; do
            [ -x "$cand" ] && candidates+=("$cand")
        done
    fi
    for cand in "${candidates[@]}"; do
        local path
        path=$(command -v "$cand" 2>/dev/null) || continue
        case $seen in *" $path "*) continue ;; esac
        seen="$seen$path "
        v=$(py_version "$path")
        [ -n "$v" ] || continue
        found="$found $path=$v"
        if [ "${v%%.*}" -eq 3 ] && [ "${v#*.}" -ge 6 ]; then
            if timeout 20 "$path" -c 'import venv, ensurepip' 2>/dev/null; then
                PYTHON=$path PYTHON_VERSION=$v HAS_VENV=1
                return 0
            fi
            # A stock Debian/Ubuntu python3 without python3-venv (which needs the network to get): the bundled
            # pip wheel installs into a private site directory instead. Kept as a fallback candidate.
            [ -n "$fallback" ] || fallback="$path=$v"
            found="$found(no venv/ensurepip)"
        fi
    done
    if [ -n "$fallback" ]; then
        PYTHON=${fallback%=*} PYTHON_VERSION=${fallback##*=} HAS_VENV=0
        return 0
    fi
    {
        echo "错误 (error): 未找到可用的 Python 3.6 或更高版本 (no usable Python >= 3.6)."
        echo "  找到 (found):${found:- none}"
        echo "  解决 (fix): 安装系统自带的 python3 (install the system's own python3 package):"
        echo "    Debian/Ubuntu/UOS:         apt-get install python3"
        echo "    CentOS 7/RHEL/麒麟/openEuler: yum install python3"
        echo "    another Python:            bash $0 --python /path/to/python3 ..."
    } >&2
    exit 5
}

port_holder() {  # describe who listens on $port, or print nothing
    if command -v ss >/dev/null 2>&1; then
        ss -Hltnp "sport = :$port" 2>/dev/null | head -n 3
    else
        "$PYTHON" - "$port" <<'EOF' 2>/dev/null || true
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("", int(sys.argv[1])))
except OSError as exc:
    print(f"port {sys.argv[1]}: {exc.strerror} (install iproute2 'ss' to see which program)")
EOF
    fi
}

find_python
# Checked before any change. Prometheus trims whitespace around a password_file's content, so the same file
# gives the same password on both sides; bcrypt only uses the first 72 bytes, which would silently weaken it.
if [ -n "$password_file" ]; then
    why=$(timeout 20 "$PYTHON" - "$password_file" <<'EOF' 2>&1
import sys
secret = open(sys.argv[1], "rb").read().strip()
if not secret:
    sys.exit("empty")
if len(secret) > 72:
    sys.exit(f"{len(secret)} bytes; bcrypt uses at most 72")
if any(c < 0x20 or c == 0x7f for c in secret):
    sys.exit("contains control characters or line breaks")
EOF
    ) || die 2 "口令文件不可用 (unusable password file) $password_file: ${why:-unreadable}"
fi
# The fleet's one password over plain HTTP travels in cleartext on every scrape, and whoever reads it there can
# log in to every HTTPS agent of the fleet too: refused unless the operator says so. (An existing web.yml keeps
# its TLS settings on re-runs, so it decides; on a first install, --tls-cert does.)
if [ -n "$password_file" ] && [ "$action" = install ] && [ "$insecure_plain" != 1 ]; then
    will_tls=0
    if [ -f "$CONF_DIR/web.yml" ]; then
        grep -q '^tls_server_config:' "$CONF_DIR/web.yml" && will_tls=1
    elif [ -n "$tls_cert" ]; then
        will_tls=1
    fi
    [ "$will_tls" = 1 ] || die 2 "--password-file 是全县统一的抓取口令: 本机没有 TLS, 它会以明文传输, 且能登录所有 HTTPS 代理" \
        "(the fleet password would travel in cleartext and opens every HTTPS agent). 请给出 --tls-cert/--tls-key;" \
        "或不用 --password-file (本机生成单独的随机口令, a per-host password); 确需明文时加 --insecure-plain-http"
fi
lock=$BUNDLE/wheelhouse/lock-cp${PYTHON_VERSION/./}-$(uname -m).txt
pure_only=0
if [ ! -f "$lock" ] && [ -f "$BUNDLE/wheelhouse/lock-cp${PYTHON_VERSION/./}-noarch.txt" ]; then
    # A CPU the wheelhouse has no compiled wheels for (loongarch64): the pure-Python part, and the distribution's
    # python3-psutil / python3-bcrypt where installed (the venv sees the system site-packages). What still
    # lacks a module is reported as not applicable, with the package to install (shaobing scan).
    lock=$BUNDLE/wheelhouse/lock-cp${PYTHON_VERSION/./}-noarch.txt
    pure_only=1
fi
if [ ! -f "$lock" ]; then
    die 5 "此安装包不含 Python $PYTHON_VERSION / $(uname -m) 的软件包 (this bundle has no wheels for Python" \
        "$PYTHON_VERSION on $(uname -m)); rebuild it with: deploy/build-bundle.sh --pythons $PYTHON_VERSION" \
        "--arches $(uname -m), or pick another Python with --python"
fi
upgrading=0
[ -x "$VENV/bin/shaobing" ] && upgrading=1

holder=$(port_holder)
if [ -n "$holder" ]; then
    ours=0
    if [ "$upgrading" = 1 ]; then
        for pid in $(printf '%s\n' "$holder" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
            case " $(our_pids | tr '\n' ' ') " in *" $pid "*) ours=1 ;; esac
        done
    fi
    if [ "$ours" = 0 ]; then
        die 6 "端口 $port 已被占用 (port $port is in use):
  $holder
  解决 (fix): stop that program, or choose another port: bash $0 --listen 0.0.0.0:PORT ..."
    fi
fi

# ---------------------------------------------------------------------------------- changes + rollback
created=()          # paths this run created, removed on failure (reverse order)
user_created=0
old_venv=""
old_unit=""
old_web=""
committed=0

rollback() {
    local rc=$?
    [ "$committed" = 1 ] && return
    trap - EXIT
    [ "$rc" = 0 ] && rc=1
    echo "安装失败, 正在回滚本次更改 (install failed; rolling back this run's changes)" >&2
    stop_agent 2>/dev/null || true
    local i
    if [ -n "$old_web" ] && [ -f "$old_web" ]; then mv -f "$old_web" "$CONF_DIR/web.yml"; fi
    for (( i=${#created[@]}-1; i>=0; i-- )); do rm -rf "${created[$i]}"; done
    if [ -n "$old_venv" ] && [ -d "$old_venv" ]; then rm -rf "$VENV"; mv "$old_venv" "$VENV"; fi
    if [ -n "$old_unit" ] && [ -f "$old_unit" ]; then mv -f "$old_unit" "$UNIT"; fi
    if [ "$user_created" = 1 ]; then
        userdel "$SVC_USER" 2>/dev/null || true
        getent group "$SVC_USER" >/dev/null && groupdel "$SVC_USER" 2>/dev/null || true
    fi
    if have_systemd; then
        timeout 60 systemctl daemon-reload 2>/dev/null || true
        if [ "$upgrading" = 1 ]; then timeout 60 systemctl restart shaobing-agent.service 2>/dev/null || true; fi
    fi
    exit "$rc"
}
trap rollback EXIT
trap 'exit 130' INT TERM

say "哨兵 Shaobing $version: $([ "$upgrading" = 1 ] && echo 升级 upgrade || echo 安装 install) — Python $PYTHON_VERSION ($PYTHON)"

if ! getent passwd "$SVC_USER" >/dev/null; then
    nologin=$(command -v nologin || echo /sbin/nologin)
    useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home --shell "$nologin" \
        --comment "Shaobing monitoring agent" "$SVC_USER"
    user_created=1
fi

if [ ! -d "$PREFIX" ]; then mkdir -p "$PREFIX"; created+=("$PREFIX"); fi
was_running=""
if [ "$upgrading" = 1 ]; then
    was_running=$(our_pids | tr '\n' ' ')
    stop_agent
    old_venv=$PREFIX/venv.previous
    rm -rf "$old_venv"
    mv "$VENV" "$old_venv"
fi
# A venv is not relocatable: it is built at its final path; the previous one waits aside until success.
created+=("$VENV")
if [ "$pure_only" = 1 ]; then
    say "  此 CPU ($(uname -m)) 没有编译好的软件包: 只装纯 Python 部分, 使用系统的 python3-psutil、python3-bcrypt (若已安装)"
    say "  (no compiled wheels for $(uname -m): pure-Python packages; the system's psutil/bcrypt where installed)"
fi
if [ "$HAS_VENV" = 1 ]; then
    venv_opts=()
    [ "$pure_only" = 0 ] || venv_opts=(--system-site-packages)
    timeout 300 "$PYTHON" -m venv ${venv_opts[@]+"${venv_opts[@]}"} "$VENV"
    pip_install() { timeout 600 "$VENV/bin/python" -m pip install -q --no-index --find-links "$BUNDLE/wheelhouse" "$@"; }
    first=("$(grep '^pip==' "$lock")")
else
    # No venv module (python3-venv is not installed): the same wheels into $VENV/lib/site with the bundled pip
    # run from its wheel, and two launchers that put that directory first on sys.path. Nothing leaks into the
    # environment of the commands the agent runs (dnf and firewall-cmd are Python programs too).
    say "  未安装 python3-venv：使用私有 site 目录 (no venv module: private site directory $VENV/lib/site)"
    # The pip this Python's lock names (pip 21.3 for 3.6, 24.0 for 3.7, the newest from 3.8).
    pip_wheel=$(ls "$BUNDLE/wheelhouse/pip-$(sed -n 's/^pip==//p' "$lock")-"*.whl 2>/dev/null | head -n 1)
    [ -n "$pip_wheel" ] || die 4 "安装包缺少 pip (the bundle has no pip wheel)"
    mkdir -p "$VENV/bin" "$VENV/lib/site"
    pip_install() { timeout 600 "$PYTHON" "$pip_wheel/pip" install -q --no-index --find-links "$BUNDLE/wheelhouse" \
                        --target "$VENV/lib/site" "$@"; }
    cat > "$VENV/bin/python" <<LAUNCHER
#!/bin/sh
# Written by install.sh: this host's $PYTHON has no venv module; the agent's packages are in $VENV/lib/site.
PYTHONPATH="$VENV/lib/site\${PYTHONPATH:+:\$PYTHONPATH}" exec "$PYTHON" -s "\$@"
LAUNCHER
    cat > "$VENV/bin/shaobing" <<LAUNCHER
#!$PYTHON -sE
# Written by install.sh: this host's $PYTHON has no venv module; the agent's packages are in $VENV/lib/site.
import sys
sys.path.insert(0, "$VENV/lib/site")
from agent.cli import main
sys.exit(main())
LAUNCHER
    chmod 0755 "$VENV/bin/python" "$VENV/bin/shaobing"
    first=()
fi
# The pure-Python lock lacks the compiled dependencies: install exactly it, and the agent without its own deps.
lock_opts=()
[ "$pure_only" = 0 ] || lock_opts=(--no-deps)
say "  安装 Python 包 (installing from the bundled wheelhouse, offline) ..."
if { [ ${#first[@]} -gt 0 ] && ! pip_install "${first[@]}" >"$PREFIX/pip.log" 2>&1; } ||
   ! pip_install ${lock_opts[@]+"${lock_opts[@]}"} -r "$lock" "shaobing==$version" >>"$PREFIX/pip.log" 2>&1; then
    tail -n 15 "$PREFIX/pip.log" >&2
    die 1 "离线安装 Python 包失败 (offline pip install failed; this bundle may lack wheels for Python" \
        "$PYTHON_VERSION on $(uname -m))"
fi
rm -f "$PREFIX/pip.log"
"$VENV/bin/shaobing" version >/dev/null

pick_unit
if [ "$unit_kind" = legacy ]; then
    # The legacy unit's one capability: a private copy of this interpreter that only user shaobing may run, with
    # the file capability cap_dac_read_search=ep (VFS_CAP_REVISION_2, effective; permitted = bit 2). The agent's
    # audit child runs the same interpreter (sys.executable) and gets it too; nothing else the agent starts does.
    # Without a venv a pyvenv.cfg makes the copy find the system's standard library from /opt.
    install -m 0750 -o root -g "$SVC_USER" "$(readlink -f "$PYTHON")" "$VENV/bin/python3-cap"
    if [ ! -f "$VENV/pyvenv.cfg" ]; then
        printf 'home = %s\ninclude-system-site-packages = false\nversion = %s\n' \
            "$(dirname "$(readlink -f "$PYTHON")")" "$PYTHON_VERSION" > "$VENV/pyvenv.cfg"
    fi
    "$PYTHON" - "$VENV/bin/python3-cap" <<'EOF' || die 1 "无法设置文件能力 (could not set the file capability on $VENV/bin/python3-cap)"
import os, struct, sys
os.setxattr(sys.argv[1], "security.capability", struct.pack("<5I", 0x02000001, 1 << 2, 0, 0, 0))
EOF
fi

if [ ! -d "$STATE_DIR" ]; then mkdir -p "$STATE_DIR"; created+=("$STATE_DIR"); fi
chown "$SVC_USER:$SVC_USER" "$STATE_DIR"
chmod 0700 "$STATE_DIR"

yaml_quote() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }

# The password goes in on stdin, never on a command line another user could read in ps.
# agent.passhash: the bcrypt module, or libcrypt's bcrypt on a CPU the bundle has no bcrypt wheel for.
bcrypt_stdin() {
    "$VENV/bin/python" -m agent.passhash
}

password=""
if [ ! -d "$CONF_DIR" ]; then mkdir -p "$CONF_DIR"; created+=("$CONF_DIR"); fi
chgrp "$SVC_USER" "$CONF_DIR"
chmod 0750 "$CONF_DIR"
if [ ! -f "$CONF_DIR/web.yml" ]; then
    if [ -n "$password_file" ]; then
        hash=$(bcrypt_stdin < "$password_file")
    else
        password=$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(18))')
        hash=$(printf '%s' "$password" | bcrypt_stdin)
    fi
    created+=("$CONF_DIR/web.yml")
    {
        echo "# exporter-toolkit web configuration for the Shaobing agent (written by install.sh)."
        echo "basic_auth_users:"
        echo "  $SCRAPE_USER: '$hash'"
    } > "$CONF_DIR/web.yml"
    if [ -n "$tls_cert" ]; then
        if [ ! -d "$CONF_DIR/tls" ]; then mkdir -p "$CONF_DIR/tls"; created+=("$CONF_DIR/tls"); fi
        install -m 0644 "$tls_cert" "$CONF_DIR/tls/agent.crt"
        install -m 0640 -g "$SVC_USER" "$tls_key" "$CONF_DIR/tls/agent.key"
        printf 'tls_server_config:\n  cert_file: tls/agent.crt\n  key_file: tls/agent.key\n' >> "$CONF_DIR/web.yml"
    fi
    chgrp "$SVC_USER" "$CONF_DIR/web.yml"; chmod 0640 "$CONF_DIR/web.yml"
else
    if [ -n "$password_file" ]; then
        # An explicit operator action: the new hash replaces the old one; TLS and other users stay as they are.
        old_web=$CONF_DIR/web.yml.previous
        cp -p "$CONF_DIR/web.yml" "$old_web"
        hash=$(bcrypt_stdin < "$password_file")
        if ! printf '%s' "$hash" | "$VENV/bin/python" -c '
import sys, yaml
path, user = sys.argv[1], sys.argv[2]
try:
    doc = yaml.safe_load(open(path, encoding="utf-8")) or {}
except (OSError, yaml.YAMLError) as exc:
    sys.exit(f"{path}: {exc}")
if not isinstance(doc, dict) or not isinstance(doc.get("basic_auth_users") or {}, dict):
    sys.exit(f"{path}: expected a mapping with basic_auth_users: {{user: hash}}")
doc["basic_auth_users"] = {**(doc.get("basic_auth_users") or {}), user: sys.stdin.read().strip()}
with open(path + ".new", "w", encoding="utf-8") as out:
    out.write("# exporter-toolkit web configuration for the Shaobing agent (written by install.sh;\n"
              "# scrape password hash replaced from --password-file).\n")
    yaml.safe_dump(doc, out, allow_unicode=True, sort_keys=False)
' "$CONF_DIR/web.yml" "$SCRAPE_USER"; then
            rm -f "$CONF_DIR/web.yml.new"
            die 1 "无法更新 (cannot update) $CONF_DIR/web.yml"
        fi
        chgrp "$SVC_USER" "$CONF_DIR/web.yml.new"; chmod 0640 "$CONF_DIR/web.yml.new"
        mv -f "$CONF_DIR/web.yml.new" "$CONF_DIR/web.yml"
        say "  已用 $password_file 替换 $CONF_DIR/web.yml 中的抓取口令哈希 (scrape password hash replaced)"
    fi
    if [ -n "$tls_cert" ]; then
        warn "保留现有 $CONF_DIR/web.yml 的 TLS 设置 (existing TLS settings kept; --tls-cert/--tls-key ignored): edit it to change TLS"
    fi
fi
scheme=http
if grep -q '^tls_server_config:' "$CONF_DIR/web.yml"; then scheme=https; fi
if [ ! -f "$CONF_DIR/agent.yml" ]; then
    created+=("$CONF_DIR/agent.yml")
    {
        echo "# 哨兵 Shaobing agent configuration (written by install.sh; upgrades keep it)."
        echo "# Reference: /opt/shaobing/agent.example.yml. Check: shaobing config check $CONF_DIR/agent.yml"
        echo "listen_address: $(yaml_quote "$listen")"
        echo "web_config_file: $CONF_DIR/web.yml"
        echo "state_dir: $STATE_DIR"
        if [ -n "$township$site" ]; then
            echo "labels:"
            [ -n "$township" ] && echo "  township: $(yaml_quote "$township")"
            [ -n "$site" ] && echo "  site: $(yaml_quote "$site")"
        fi
        echo "collectors: {}"
    } > "$CONF_DIR/agent.yml"
    chgrp "$SVC_USER" "$CONF_DIR/agent.yml"; chmod 0640 "$CONF_DIR/agent.yml"
elif [ -n "$township$site" ] || [ "$listen" != "0.0.0.0:10130" ]; then
    warn "保留现有配置 $CONF_DIR/agent.yml (existing configuration kept; --township/--site/--listen ignored)"
fi
install -m 0644 "$BUNDLE/agent.example.yml" "$PREFIX/agent.example.yml"
if ! "$VENV/bin/shaobing" config check "$CONF_DIR/agent.yml" >/dev/null; then
    "$VENV/bin/shaobing" config check "$CONF_DIR/agent.yml" >&2 || true
    die 1 "配置无效 (invalid configuration): $CONF_DIR/agent.yml"
fi
# What the agent really listens on (an upgrade keeps the operator's address).
listen=$("$VENV/bin/python" -c 'import sys; from agent.config import load_config
print(load_config(sys.argv[1]).listen_address)' "$CONF_DIR/agent.yml")
port=${listen##*:}

if [ -d "$UNIT_DIR" ] || have_systemd; then
    if [ -f "$UNIT" ]; then old_unit=$PREFIX/unit.previous; cp -p "$UNIT" "$old_unit"; else created+=("$UNIT"); fi
    mkdir -p "$UNIT_DIR"
    if [ "$unit_kind" = legacy ]; then
        install -m 0644 "$BUNDLE/systemd/shaobing-agent.legacy.service" "$UNIT"
    else
        install -m 0644 "$BUNDLE/systemd/shaobing-agent.service" "$UNIT"
    fi
    # The SMART helper (root, every 30 min): the hardened agent cannot open disks itself.
    for smart_unit in shaobing-smart.service shaobing-smart.timer; do
        [ -f "$UNIT_DIR/$smart_unit" ] || created+=("$UNIT_DIR/$smart_unit")
        install -m 0644 "$BUNDLE/systemd/$smart_unit" "$UNIT_DIR/$smart_unit"
    done
fi

# ------------------------------------------------------------------------------------- start + verify
verify() {  # verify PASSWORD -> 0 when /metrics answers (200 with our metrics; 401 from us when no password)
    local host=${listen%:*}
    case $host in ''|0.0.0.0) host=127.0.0.1 ;; '[::]') host='[::1]' ;; esac
    SHAOBING_VERIFY_PASSWORD=$1 SHAOBING_VERIFY_PASSWORD_FILE=$password_file timeout 40 "$VENV/bin/python" - "$scheme://$host:$port/metrics" "$SCRAPE_USER" <<'EOF'
import base64, os, ssl, sys, time, urllib.error, urllib.request
url, user = sys.argv[1], sys.argv[2]
password = os.environ["SHAOBING_VERIFY_PASSWORD"]
if os.environ["SHAOBING_VERIFY_PASSWORD_FILE"]:  # the fleet password: proves the new hash matches it
    password = open(os.environ["SHAOBING_VERIFY_PASSWORD_FILE"], "rb").read().strip().decode("utf-8", "replace")
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    req = urllib.request.Request(url)
    if password:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        # Only "does it answer": the certificate names the host's public name, not 127.0.0.1.
        with urllib.request.urlopen(req, timeout=5, context=ssl._create_unverified_context()) as resp:
            if b"shaobing_" in resp.read():
                sys.exit(0)
    except urllib.error.HTTPError as exc:
        # Upgrade: the password is not known here; a 401 from the agent itself still proves it serves.
        if exc.code == 401 and not password and exc.headers.get("Server", "").startswith("shaobing/"):
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.5)
sys.exit(1)
EOF
}

run_cmd="setpriv --reuid=$SVC_USER --regid=$SVC_USER --init-groups --inh-caps=+dac_read_search \
--ambient-caps=+dac_read_search $VENV/bin/shaobing agent run --config $CONF_DIR/agent.yml"
if [ "$unit_kind" = legacy ]; then
    run_cmd="setpriv --reuid=$SVC_USER --regid=$SVC_USER --init-groups --bounding-set=-all,+dac_read_search \
$VENV/bin/python3-cap $VENV/bin/shaobing agent run --config $CONF_DIR/agent.yml"
fi

# The capability the password audit needs, read from the running agent (a unit this systemd half-understood would
# start it without): said loudly, since the audit would otherwise report its accounts as unchecked for ever.
check_capability() {
    local pid eff
    pid=$(our_pids | head -n 1)
    [ -n "$pid" ] || return 0
    eff=$(sed -n 's/^CapEff:[[:space:]]*//p' "/proc/$pid/status" 2>/dev/null)
    [ -n "$eff" ] || return 0
    if (( (16#$eff >> 2 & 1) == 0 )); then
        warn "代理没有 CAP_DAC_READ_SEARCH, 弱口令检查无法读取 /etc/shadow (the agent runs without CAP_DAC_READ_SEARCH: the password audit cannot read /etc/shadow). 试试 (try): bash $0 --unit legacy"
    fi
}

if have_systemd; then
    timeout 60 systemctl daemon-reload
    timeout 60 systemctl enable shaobing-agent.service >/dev/null 2>&1
    if command -v smartctl >/dev/null 2>&1; then
        timeout 60 systemctl enable --now shaobing-smart.timer >/dev/null 2>&1 ||
            warn "无法启用 shaobing-smart.timer (could not enable the SMART helper): disk health stays unchecked"
    fi
    timeout 60 systemctl restart shaobing-agent.service
    if ! verify "$password"; then
        timeout 30 journalctl -u shaobing-agent.service -n 20 --no-pager >&2 2>/dev/null || true
        die 7 "代理未在 $listen 应答 (the agent did not answer on $listen/metrics)"
    fi
    check_capability
    started="systemd: shaobing-agent.service (enabled, running, $unit_kind unit)"
else
    # No systemd: start the agent the way its unit would, only long enough to prove that it answers.
    log=$PREFIX/verify.log
    # shellcheck disable=SC2086
    setsid $run_cmd >"$log" 2>&1 < /dev/null &
    agent_pid=$!
    ok=0
    verify "$password" && ok=1
    kill -TERM "$agent_pid" 2>/dev/null || true
    wait "$agent_pid" 2>/dev/null || true
    if [ "$ok" = 0 ]; then
        tail -n 20 "$log" >&2 || true
        rm -f "$log"
        die 7 "代理未在 $listen 应答 (the agent did not answer on $listen/metrics)"
    fi
    rm -f "$log"
    [ -n "$was_running" ] && warn "升级时停止了正在运行的代理 (the running agent, PID $was_running, was stopped for the upgrade): start it again"
    started="no systemd here: verified, then stopped. Run it with:
    $run_cmd
  (e.g. from your init system, supervisord, or /etc/rc.local with '&')"
fi

# ------------------------------------------------------------------------------------------- commit
{
    echo "version=$version"
    echo "python=$PYTHON"
    if [ "$user_created" = 1 ] || { [ -f "$MANIFEST" ] && grep -qx 'user_created=1' "$MANIFEST"; }; then
        echo "user_created=1"
    fi
} > "$MANIFEST.new"
mv "$MANIFEST.new" "$MANIFEST"
rm -rf "$PREFIX/venv.previous" "$PREFIX/unit.previous" "$CONF_DIR/web.yml.previous"
committed=1
trap - EXIT

say "完成 (done): 哨兵 Shaobing $version, $started"
say "  配置 (config): $CONF_DIR/agent.yml   状态 (state): $STATE_DIR   卸载 (uninstall): bash $0 --uninstall"
if [ -n "$password$password_file" ]; then
    address=$(hostname -I 2>/dev/null | awk '{print $1}')
    address=${address:-$(hostname)}
    say ""
    if [ -n "$password" ]; then
        say "抓取口令只显示这一次, 请立即保存到县级 Prometheus (the scrape password is shown only once; store it now):"
        say "  user: $SCRAPE_USER   password: $password"
    else
        say "抓取口令取自 $password_file, 不显示 (scrape password taken from that file, not shown):"
        say "  user: $SCRAPE_USER; 县级 secrets/agent_scrape_password 须为同一口令 (the centre's file must match)"
    fi
    say ""
    say "县级清单 inventory.csv 一行 (one line for the county's inventory; then: shaobing targets inventory.csv):"
    say "  host,address,township,role,site,scheme"
    say "  $(hostname),${address}:$port,${township:-<乡镇>},<role>,$site,$scheme"
    say ""
    say "或 Prometheus 抓取配置 (or a scrape snippet for prometheus.yml):"
    say "  - job_name: shaobing"
    if [ "$scheme" = https ]; then
        say "    scheme: https"
        say "    tls_config: {ca_file: secrets/agent_ca.pem}"
    fi
    say "    basic_auth: {username: $SCRAPE_USER, password_file: secrets/agent_scrape_password}"
    say "    static_configs:"
    say "      - targets: ['${address}:$port']"
    labels="host: $(yaml_quote "$(hostname)")"
    [ -n "$township" ] && labels="$labels, township: $(yaml_quote "$township")"
    [ -n "$site" ] && labels="$labels, site: $(yaml_quote "$site")"
    say "        labels: {$labels}"
fi
exit 0
