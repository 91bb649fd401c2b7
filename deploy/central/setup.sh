#!/usr/bin/env bash
# 哨兵 Shaobing county centre in one command, on Debian 12/13 (root):
#
#   deploy/central/setup.sh [--inventory FILE] [--external-url URL] [--relay-config FILE] [--relay-env FILE]
#                           [--agent-ca FILE] [--grafana-deb FILE] [--no-apt] [--no-start]
#
#   --inventory FILE     the county's host list (CSV: host,address,township,role[,site,scheme]) -> scrape targets
#   --external-url URL   how people reach this machine (http://10.20.0.5): the links in alerts point there
#   --relay-config FILE  your relay.yml (default: keep /etc/shaobing/relay.yml, else the shipped example)
#   --relay-env FILE     KEY=VALUE lines for the relay's {secret_env: ...} (chat tokens), kept 0600
#   --agent-ca FILE      the CA that signed the agents' TLS certificates (default: keep, else create a county CA)
#   --grafana-deb FILE   Grafana's own .deb, copied in from a machine with internet: installed and provisioned
#   --no-apt             do not run apt-get: prometheus, prometheus-alertmanager, python3-venv, openssl are there
#   --no-start           install and enable, start nothing (an image that boots later)
#
# Prometheus and Alertmanager come from Debian's packages (apt-get: a Debian mirror, or the county's local one), the
# relay from the centre bundle's wheelhouse (deploy/build-bundle.sh --centre; offline) or, in a git checkout, from
# PyPI. Run it again at any time (new inventory, upgrade): secrets that exist are kept, the shipped configs are
# laid down again (a differing file is kept once as *.before-shaobing), your relay.yml and relay.env stay.
# Exit status: 0 everything running; 2 bad option; 3 not root, not Debian, or a package is missing;
# 4 a configuration check failed (named on stderr); 5 the relay's configuration is incomplete (the rest runs).
set -euo pipefail
umask 022

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
inventory="" external_url="" relay_config="" relay_env="" agent_ca="" grafana_deb="" use_apt=1 start=1

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }
die() { local code=$1; shift; echo "错误 error: $*" >&2; exit "$code"; }
say() { echo "== $*"; }
need_file() { [ -f "$2" ] && [ -r "$2" ] || die 2 "$1: $2 is not a readable file"; }

while [ $# -gt 0 ]; do
    case $1 in
        --inventory|--external-url|--relay-config|--relay-env|--agent-ca|--grafana-deb)
            [ $# -ge 2 ] && [ -n "$2" ] || die 2 "$1 needs a value"
            case $1 in
                --inventory) need_file "$1" "$2"; inventory=$(realpath "$2") ;;
                --external-url) external_url=${2%/} ;;
                --relay-config) need_file "$1" "$2"; relay_config=$(realpath "$2") ;;
                --relay-env) need_file "$1" "$2"; relay_env=$(realpath "$2") ;;
                --agent-ca) need_file "$1" "$2"; agent_ca=$(realpath "$2") ;;
                --grafana-deb) need_file "$1" "$2"; grafana_deb=$(realpath "$2") ;;
            esac
            shift 2 ;;
        --no-apt) use_apt=0; shift ;;
        --no-start) start=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die 2 "unknown option: $1" ;;
    esac
done
url_re='^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])$'
if [ -n "$external_url" ] && ! [[ $external_url =~ $url_re ]]; then
    die 2 "--external-url: '$external_url' is not http(s)://host (no port, no path: :9090 and :9093 are added)"
fi
[ "$(id -u)" = 0 ] || die 3 "run as root (it installs packages, users and units)"
[ -f /etc/debian_version ] && command -v dpkg >/dev/null || die 3 "this script is for Debian (12 or 13)"
for f in alert_rules/health.yml deploy/central/prometheus.yml deploy/central/alertmanager.yml \
         deploy/central/relay.example.yml deploy/systemd/shaobing-relay.service; do
    [ -f "$top/$f" ] || die 3 "$top/$f is missing: run this from a checkout or an unpacked centre bundle"
done
if [ -f "$top/SHA256SUMS" ] && ! (cd "$top" && sha256sum --quiet --strict -c SHA256SUMS >/dev/null 2>&1); then
    die 3 "the centre bundle is damaged (cd $top && sha256sum -c SHA256SUMS names the files): copy it again"
fi
if [ -z "$external_url" ]; then
    ip=$(hostname -I 2>/dev/null | awk '{print $1}')
    external_url=http://${ip:-$(hostname -f 2>/dev/null || hostname)}
fi

# ---------------------------------------------------------------- packages
if [ "$use_apt" = 1 ]; then
    say "Debian packages: prometheus prometheus-alertmanager python3-venv openssl"
    pkgs=(prometheus prometheus-alertmanager python3-venv openssl)
    [ -z "$grafana_deb" ] || pkgs+=("$grafana_deb")
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}" \
            >/tmp/shaobing-setup-apt.log 2>&1; then
        tail -n 15 /tmp/shaobing-setup-apt.log >&2
        die 3 "apt-get install failed (log: /tmp/shaobing-setup-apt.log): this needs a Debian mirror (or the county's
      local one in /etc/apt/sources.list), or install the packages yourself and add --no-apt"
    fi
fi
for bin in prometheus promtool prometheus-alertmanager amtool python3 openssl; do
    command -v "$bin" >/dev/null ||
        die 3 "$bin is not installed (Debian packages prometheus, prometheus-alertmanager, python3, openssl)"
done
python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' ||
    die 3 "the relay needs Python >= 3.9 (this is $(python3 -V 2>&1)); Debian 12 has 3.11"
python3 -c 'import ensurepip, venv' 2>/dev/null || die 3 "python3-venv is not installed (apt-get install python3-venv)"
getent group prometheus >/dev/null || die 3 "no 'prometheus' group: the prometheus package did not install properly"

# ---------------------------------------------------------------- the relay (and the shaobing command)
say "relay: /opt/shaobing-relay/venv"
getent passwd shaobing-relay >/dev/null ||
    useradd --system --user-group --home-dir /var/lib/shaobing-relay --no-create-home --shell /usr/sbin/nologin shaobing-relay
venv=/opt/shaobing-relay/venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input --quiet --timeout 60)
pytag=cp$(python3 -c 'import sys; print("%d%d" % sys.version_info[:2])')-$(uname -m)
if [ -d "$top/wheelhouse" ]; then
    lock=$top/wheelhouse/relay-lock-$pytag.txt
    [ -f "$lock" ] || die 3 "the bundle's wheelhouse has no relay wheels for $pytag (it has: $(cd "$top/wheelhouse" &&
        ls relay-lock-*.txt 2>/dev/null | sed 's/relay-lock-//; s/.txt//' | tr '\n' ' '))"
    install_relay=("${pip[@]}" install --no-index --find-links "$top/wheelhouse" -r "$lock")
else
    install_relay=("${pip[@]}" install --upgrade "$top[relay]")   # a checkout: from PyPI
fi
if ! timeout 900 "${install_relay[@]}" >/tmp/shaobing-setup-pip.log 2>&1; then
    tail -n 15 /tmp/shaobing-setup-pip.log >&2
    die 3 "installing the relay failed (log: /tmp/shaobing-setup-pip.log)"
fi

# The relay's command as its service runs it (user shaobing-relay, the secrets of relay.env): for check-config,
# test-send, review and roster show by hand.
cat > /usr/local/sbin/shaobing-relay <<'EOF'
#!/bin/sh
# shaobing-relay as its service runs it: user shaobing-relay, with /etc/shaobing/relay.env (deploy/central/setup.sh).
[ "$(id -u)" = 0 ] || { echo "run as root (sudo shaobing-relay ...): relay.env is readable by root only" >&2; exit 2; }
set -a
[ ! -r /etc/shaobing/relay.env ] || . /etc/shaobing/relay.env
set +a
cd /var/lib/shaobing-relay 2>/dev/null || cd /
exec runuser -u shaobing-relay -- /opt/shaobing-relay/venv/bin/shaobing-relay "$@"
EOF
chmod 0755 /usr/local/sbin/shaobing-relay

# ---------------------------------------------------------------- secrets
put_secret() {  # put_secret FILE OWNER:GROUP MODE -> a random secret, unless FILE already has one
    local file=$1 owner=$2 mode=$3
    if [ ! -s "$file" ]; then
        (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > "$file.tmp")
        mv "$file.tmp" "$file"
        echo "   created $file"
    fi
    chown "$owner" "$file" && chmod "$mode" "$file"
}
say "secrets"
install -d -m 0755 /etc/shaobing
install -d -m 0750 -g prometheus /etc/prometheus/secrets /etc/alertmanager/secrets
put_secret /etc/prometheus/secrets/agent_scrape_password root:prometheus 0640
put_secret /etc/shaobing/relay-token shaobing-relay:shaobing-relay 0600
put_secret /etc/shaobing/ack-secret shaobing-relay:shaobing-relay 0600
# Alertmanager presents the relay's token: one secret, two readers (the relay refuses a file others can read).
install -m 0640 -o root -g prometheus /etc/shaobing/relay-token /etc/alertmanager/secrets/relay_token
ca=/etc/prometheus/secrets/agent_ca.pem
if [ -n "$agent_ca" ]; then
    install -m 0644 "$agent_ca" "$ca"
elif [ ! -s "$ca" ]; then
    # A county CA for the agents' certificates (deploy/central/agent-cert.sh issues one per host). keyUsage is
    # set: Python 3.13 and Go refuse a CA certificate without it.
    install -d -m 0700 /etc/shaobing/ca
    (umask 077; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/CN=Shaobing county CA $(hostname)" -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout /etc/shaobing/ca/county-ca.key -out /etc/shaobing/ca/county-ca.pem 2>/dev/null)
    install -m 0644 /etc/shaobing/ca/county-ca.pem "$ca"
    echo "   created the county CA /etc/shaobing/ca/county-ca.pem (key county-ca.key, 0600)"
fi
chmod 0644 "$ca"

# ---------------------------------------------------------------- configs
lay_down() {  # lay_down SRC DEST MODE [GROUP]: the shipped file; a differing one is kept once as DEST.before-shaobing
    local src=$1 dest=$2 mode=$3 group=${4:-root}
    if [ -f "$dest" ] && ! cmp -s "$src" "$dest" && [ ! -e "$dest.before-shaobing" ]; then
        cp -p "$dest" "$dest.before-shaobing"
        echo "   kept the previous $dest as $dest.before-shaobing"
    fi
    install -m "$mode" -g "$group" "$src" "$dest"
}
set_args() {  # set_args /etc/default/FILE "ARGS": the package's start options (its unit reads ARGS from there)
    local file=$1 args=$2
    touch "$file"
    if grep -q '^ARGS=' "$file"; then
        sed -i "s|^ARGS=.*|ARGS=\"$args\"|" "$file"
    else
        echo "ARGS=\"$args\"" >> "$file"
    fi
}
say "Prometheus: /etc/prometheus"
install -d -m 0755 /etc/prometheus/alert_rules /etc/prometheus/targets
lay_down "$top/deploy/central/prometheus.yml" /etc/prometheus/prometheus.yml 0644
for rules in "$top"/alert_rules/*.yml; do
    [ "${rules##*/}" = thresholds.yml ] || install -m 0644 "$rules" /etc/prometheus/alert_rules/
done
if [ -n "$inventory" ]; then
    if ! "$venv/bin/shaobing" targets "$inventory" -o /etc/prometheus/targets/townships.json; then
        die 4 "the inventory $inventory has errors (above, file:line); nothing was changed in targets/"
    fi
    chmod 0644 /etc/prometheus/targets/townships.json
fi
set_args /etc/default/prometheus "--web.external-url=$external_url:9090/"
say "Alertmanager: /etc/prometheus/alertmanager.yml"
lay_down "$top/deploy/central/alertmanager.yml" /etc/prometheus/alertmanager.yml 0644
# One Alertmanager: no cluster port (9094) open to the network.
set_args /etc/default/prometheus-alertmanager "--web.external-url=$external_url:9093/ --cluster.listen-address="
# The shipped configs name their peers as compose does (alertmanager, relay): on one machine, both are this one.
# Prometheus scrapes itself as localhost, which Go resolves from /etc/hosts only (a minimal image may have none).
touch /etc/hosts
grep -qE '^[^#]*[[:space:]]localhost([[:space:]]|$)' /etc/hosts ||
    printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' >> /etc/hosts
if ! grep -qE '^[^#]*[[:space:]]alertmanager([[:space:]]|$)' /etc/hosts ||
        ! grep -qE '^[^#]*[[:space:]]relay([[:space:]]|$)' /etc/hosts; then
    echo "127.0.0.1 alertmanager relay   # shaobing centre (deploy/central/setup.sh)" >> /etc/hosts
fi

say "relay: /etc/shaobing/relay.yml"
if [ -n "$relay_config" ]; then
    lay_down "$relay_config" /etc/shaobing/relay.yml 0640 shaobing-relay
elif [ ! -f /etc/shaobing/relay.yml ]; then
    install -m 0640 -g shaobing-relay "$top/deploy/central/relay.example.yml" /etc/shaobing/relay.yml
    echo "   the shipped example: put your people, rosters and providers in it"
fi
chgrp shaobing-relay /etc/shaobing/relay.yml && chmod 0640 /etc/shaobing/relay.yml
if [ -n "$relay_env" ]; then
    install -m 0600 -o root -g root "$relay_env" /etc/shaobing/relay.env
elif [ ! -f /etc/shaobing/relay.env ]; then
    # The names the shipped example reads with {secret_env: ...}; systemd passes them (EnvironmentFile).
    {
        echo "# Secrets for /etc/shaobing/relay.yml's {secret_env: NAME} entries, one NAME=value per line (0600)."
        grep -o 'secret_env: *[A-Z0-9_]*' "$top/deploy/central/relay.example.yml" | sed 's/secret_env: *//; s/$/=/' |
            sort -u | sed 's/^/#/'
    } > /etc/shaobing/relay.env
    chmod 0600 /etc/shaobing/relay.env
fi
lay_down "$top/deploy/systemd/shaobing-relay.service" /etc/systemd/system/shaobing-relay.service 0644

# ---------------------------------------------------------------- checks
say "checks"
promtool check config /etc/prometheus/prometheus.yml >/tmp/shaobing-setup-check.log 2>&1 ||
    { cat /tmp/shaobing-setup-check.log >&2; die 4 "promtool check config /etc/prometheus/prometheus.yml failed"; }
amtool check-config /etc/prometheus/alertmanager.yml >/tmp/shaobing-setup-check.log 2>&1 ||
    { cat /tmp/shaobing-setup-check.log >&2; die 4 "amtool check-config /etc/prometheus/alertmanager.yml failed"; }
relay_ok=1
install -d -m 0700 -o shaobing-relay -g shaobing-relay /var/lib/shaobing-relay
relay_check=$(/usr/local/sbin/shaobing-relay check-config /etc/shaobing/relay.yml 2>&1) || relay_ok=0
if [ "$relay_ok" = 0 ]; then
    echo "$relay_check" | sed 's/^/   /' >&2
fi

# ---------------------------------------------------------------- Grafana (its own .deb; not in Debian)
grafana=0
if [ -n "$grafana_deb" ] && [ "$use_apt" = 0 ]; then
    dpkg -i "$grafana_deb" >/tmp/shaobing-setup-grafana.log 2>&1 ||
        { tail -n 15 /tmp/shaobing-setup-grafana.log >&2; die 3 "dpkg -i $grafana_deb failed (its dependencies?)"; }
fi
if dpkg-query -W -f='${Status}' grafana 2>/dev/null | grep -q 'install ok installed'; then
    say "Grafana: provisioning"
    grafana=1
    install -d -m 0755 /etc/grafana/provisioning/datasources /etc/grafana/provisioning/dashboards \
        /var/lib/grafana/dashboards/shaobing
    sed 's|url: http://prometheus:9090|url: http://127.0.0.1:9090|' \
        "$top/deploy/central/grafana/provisioning/datasources/shaobing.yml" > /etc/grafana/provisioning/datasources/shaobing.yml
    install -m 0644 "$top/deploy/central/grafana/provisioning/dashboards/shaobing.yml" /etc/grafana/provisioning/dashboards/
    chmod 0644 /etc/grafana/provisioning/datasources/shaobing.yml
    install -m 0644 "$top"/dashboards/json/*.json /var/lib/grafana/dashboards/shaobing/
fi

# ---------------------------------------------------------------- services
units=(prometheus prometheus-alertmanager)
[ "$relay_ok" = 0 ] || units+=(shaobing-relay)
[ "$grafana" = 0 ] || units+=(grafana-server)
running=0
[ -d /run/systemd/system ] && running=1
[ "$running" = 0 ] || systemctl daemon-reload
systemctl enable "${units[@]}" >/dev/null 2>&1 || die 3 "systemctl enable ${units[*]} failed"
if [ "$start" = 1 ] && [ "$running" = 1 ]; then
    say "starting: ${units[*]}"
    systemctl restart "${units[@]}" || die 3 "systemctl restart ${units[*]} failed (journalctl -u ...)"
fi

# ---------------------------------------------------------------- where everything is
cat <<EOF

哨兵县级中心已就绪 Shaobing centre is set up.
  Prometheus    $external_url:9090   配置 /etc/prometheus/prometheus.yml, 规则 /etc/prometheus/alert_rules/
  Alertmanager  $external_url:9093   配置 /etc/prometheus/alertmanager.yml
  告警中继 relay 127.0.0.1:10131      配置 /etc/shaobing/relay.yml, 环境 /etc/shaobing/relay.env, 数据 /var/lib/shaobing-relay
EOF
[ "$grafana" = 0 ] || echo "  Grafana       $external_url:3000   看板 /var/lib/grafana/dashboards/shaobing"
cat <<EOF
  抓取目标 targets   /etc/prometheus/targets/*.json   (更新清单: 再次运行 setup.sh --inventory FILE)
  全县抓取口令        /etc/prometheus/secrets/agent_scrape_password
                     带到乡镇: install -m 0600 /etc/prometheus/secrets/agent_scrape_password ./agent_scrape_password
                     然后 install.sh --password-file agent_scrape_password ...
  代理证书 CA         $ca
EOF
[ ! -f /etc/shaobing/ca/county-ca.key ] ||
    echo "  为每台主机签发证书  deploy/central/agent-cert.sh HOST ADDRESS  (county CA: /etc/shaobing/ca/)"
[ "$running" = 1 ] && [ "$start" = 1 ] || echo "  服务已启用, 开机后启动 (systemd is not running here): ${units[*]}"
cat <<EOF

测试告警 test a channel:    shaobing-relay test-send --config /etc/shaobing/relay.yml CHANNEL
                           (/usr/local/sbin/shaobing-relay: 以服务的用户和 relay.env 运行 as the service runs it)
测试全链路 test the path:   amtool --alertmanager.url=http://127.0.0.1:9093 alert add ShaobingCentreTest \\
                              severity=critical township=测试 instance=setup-test summary=测试
EOF
if [ "$grafana" = 0 ]; then
    cat <<EOF
Grafana 不在 Debian 仓库: 在能上网的机器下载 grafana_<版本>_amd64.deb (https://grafana.com/grafana/download),
  拷过来后运行 setup.sh --grafana-deb grafana_<版本>_amd64.deb (安装并配置数据源与看板)
EOF
fi
if [ "$relay_ok" = 0 ]; then
    cat >&2 <<EOF

未完成 NOT DONE: 中继配置检查未通过 (上面列出), 中继没有启动。编辑 /etc/shaobing/relay.yml 与 /etc/shaobing/relay.env
  (值班人员、短信/即时通讯账号), 再运行本脚本。The relay's configuration is incomplete (listed above): edit
  relay.yml / relay.env and run setup.sh again. Until then alerts are not delivered.
EOF
    exit 5
fi
