#!/usr/bin/env bash
# A TLS certificate for one township agent, signed by the county CA that deploy/central/setup.sh created:
#
#   deploy/central/agent-cert.sh HOST ADDRESS [ADDRESS...] [--out DIR] [--days N]
#
#   HOST      the host column of the inventory (zf-web-01): the certificate's CN and a DNS name
#   ADDRESS   what Prometheus connects to (the inventory's address column, without the port): IPs or DNS names;
#             Prometheus checks the certificate against it
#   --out     where HOST.crt and HOST.key go (default: the current directory); the key is 0600
#   --days    validity (default 825)
#
# Then, on that host: install.sh --tls-cert HOST.crt --tls-key HOST.key --password-file agent_scrape_password ...
# (and delete the copies). The CA's key stays in /etc/shaobing/ca (root, 0600).
set -euo pipefail
ca_dir=${SHAOBING_CA_DIR:-/etc/shaobing/ca}
out=. days=825 host="" sans=()

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "错误 error: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
        --out) [ $# -ge 2 ] || die "--out needs a directory"; out=$2; shift 2 ;;
        --days) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--days needs a number"; days=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        -*) usage >&2; die "unknown option: $1" ;;
        *)
            if [ -z "$host" ]; then
                [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "HOST '$1': letters, digits, '.', '_' and '-' only"
                host=$1
            elif [[ $1 =~ ^[0-9.]+$ || $1 =~ : ]]; then
                python3 -c 'import ipaddress, sys; ipaddress.ip_address(sys.argv[1])' "$1" 2>/dev/null ||
                    die "ADDRESS '$1' is not an IP address"
                sans+=("IP:$1")
            else
                [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9.-]*$ ]] || die "ADDRESS '$1' is neither an IP address nor a DNS name"
                sans+=("DNS:$1")
            fi
            shift ;;
    esac
done
[ -n "$host" ] && [ ${#sans[@]} -gt 0 ] || { usage >&2; die "give HOST and at least one ADDRESS"; }
[ -r "$ca_dir/county-ca.key" ] && [ -r "$ca_dir/county-ca.pem" ] ||
    die "no county CA in $ca_dir (deploy/central/setup.sh creates it; run as root)"
printf '%s\n' "${sans[@]}" | grep -qx "DNS:$host" || sans+=("DNS:$host")
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(umask 077; openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$host" \
    -keyout "$work/key.pem" -out "$work/req.csr" 2>/dev/null)
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n' \
    "$(IFS=,; echo "${sans[*]}")" > "$work/ext"
openssl x509 -req -in "$work/req.csr" -CA "$ca_dir/county-ca.pem" -CAkey "$ca_dir/county-ca.key" \
    -CAcreateserial -CAserial "$ca_dir/county-ca.srl" -days "$days" -extfile "$work/ext" -out "$work/cert.pem" 2>/dev/null
install -m 0600 "$work/key.pem" "$out/$host.key"
install -m 0644 "$work/cert.pem" "$out/$host.crt"
echo "$out/$host.crt $out/$host.key ($(IFS=,; echo "${sans[*]}"), $days days)"
