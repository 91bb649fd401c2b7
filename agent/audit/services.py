"""Local services open without a password or with a default one: configuration first, then a few logins.

Configuration inspection reads Redis (requirepass, bind, protected-mode), MySQL/MariaDB option files
(skip-grant-tables; the socket and port they name), pg_hba.conf (trust), vsftpd (anonymous_enable) and
tomcat-users.xml (default users). Login tries go only to loopback or the host's own
addresses (agent.audit.logins.check_target), at most ``daily_limit`` credentials per service endpoint per
day (counted in a 0600 state file that holds endpoints and counts only), stopping at the first success.
"""

from __future__ import annotations

import glob
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from agent.report import Severity
from agent.state import write_private_json

__all__ = [
    "ServiceFinding",
    "inspect_redis",
    "MysqlOptions",
    "inspect_mysql_options",
    "inspect_pg_hba",
    "inspect_vsftpd",
    "inspect_tomcat_users",
    "mysql_findings",
    "AttemptBudget",
    "REDIS_PASSWORDS",
    "MYSQL_CREDENTIALS",
    "POSTGRES_CREDENTIALS",
    "TOMCAT_CREDENTIALS",
]

# Few and likeliest first: the daily limit allows ~10 per service endpoint (weak_password_sources.md).
MYSQL_CREDENTIALS = [("root", ""), ("root", "root"), ("root", "123456")]
REDIS_PASSWORDS = ["123456", "redis", "admin", "password", "root", "admin123", "foobared", "12345678"]
POSTGRES_CREDENTIALS = [("postgres", "postgres"), ("postgres", "123456"), ("postgres", "")]
TOMCAT_CREDENTIALS = [
    ("tomcat", "tomcat"),
    ("admin", "admin"),
    ("admin", ""),
    ("tomcat", "s3cret"),
    ("admin", "123456"),
    ("root", "root"),
    ("manager", "manager"),
    ("admin", "tomcat"),
    ("tomcat", ""),
]
TOMCAT_WEAK_PASSWORDS = frozenset(
    {"", "tomcat", "admin", "123456", "root", "manager", "s3cret", "password", "<must-be-changed>"}
)


@dataclass
class ServiceFinding:
    service: str  # mysql, redis, postgresql, ftp, tomcat
    port: int
    how: str  # "config" or "login"
    title: str  # Chinese, names the file/line or the endpoint; never a password
    fix: str
    severity: Severity = "critical"


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def _redis_directives(path: Path, depth: int = 0) -> list[tuple[str, list[str], str]]:
    out: list[tuple[str, list[str], str]] = []
    for lineno, raw in enumerate(_read_lines(path), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        key, args = parts[0].lower(), [a.strip("\"'") for a in parts[1:]]
        if key == "include" and args and depth < 8:
            for inc in sorted(glob.glob(args[0])):
                out.extend(_redis_directives(Path(inc), depth + 1))
            continue
        out.append((key, args, f"{path}:{lineno}"))
    return out


def _local_bind(addr: str) -> bool:
    a = addr.lstrip("-")
    return a.startswith("127.") or a in ("::1", "localhost")


def inspect_redis(path: Path, weak: frozenset[str]) -> tuple[Optional[int], list[ServiceFinding]]:
    """(port, findings) for one redis.conf; (None, []) when the file does not exist."""
    if not path.exists():
        return None, []
    conf: dict[str, tuple[list[str], str]] = {}
    for key, args, where in _redis_directives(path):
        conf[key] = (args, where)  # the last occurrence wins in Redis
    port = int(conf["port"][0][0]) if "port" in conf and conf["port"][0] and conf["port"][0][0].isdigit() else 6379
    findings: list[ServiceFinding] = []
    requirepass = conf.get("requirepass", ([], ""))[0]
    binds = conf.get("bind", (["*"], ""))[0] or ["*"]
    protected = conf.get("protected-mode", (["yes"], ""))[0][:1] != ["no"]
    public = not all(_local_bind(b) for b in binds)
    if not requirepass or requirepass == [""]:
        where = f"{path}: 未设置 requirepass"
        if public and not protected:
            title = f"Redis 端口 {port} 无口令且监听所有网卡, protected-mode 已关闭 ({where}, bind {' '.join(binds)})"
        elif public:
            title = f"Redis 端口 {port} 无口令且监听非本机地址 ({where}, bind {' '.join(binds)})"
        else:
            title = f"Redis 端口 {port} 无口令, 本机任何用户或 SSRF 均可写入数据 ({where})"
        findings.append(
            ServiceFinding(
                "redis",
                port,
                "config",
                title,
                "设置强口令 requirepass <随机 32 位>, bind 127.0.0.1 -::1, protected-mode yes; 重启 redis.",
                "critical" if public else "warning",
            )
        )
    elif requirepass[0] in weak:
        findings.append(
            ServiceFinding(
                "redis",
                port,
                "config",
                f"Redis 端口 {port} 的 requirepass 是常见弱口令 ({conf['requirepass'][1]})",
                "把 requirepass 改为随机长口令并重启 redis.",
            )
        )
    return port, findings


# Option-file groups mysqld and mariadbd read ([mysqld-8.0], [mariadb-10.11] too).
_MYSQL_GROUP_RE = re.compile(r"^(mysqld|mariadb|mariadbd|server)(-[\d.]+)?$")
_MYSQL_MAX_FILES = 64


@dataclass
class MysqlOptions:
    """What one server's option files (and command line) say; where each came from, as file:line."""

    port: Optional[int] = None
    socket: Optional[str] = None
    skip_grant_tables: Optional[str] = None  # where it is set
    files: list[str] = field(default_factory=list)


def _mysql_option_lines(path: Path, files: list[str], depth: int = 0) -> list[tuple[str, str, str, str]]:
    """(group, key, value, file:line) of an option file and its !include / !includedir files (bounded)."""
    if len(files) >= _MYSQL_MAX_FILES or str(path) in files:
        return []
    lines = _read_lines(path)
    if not lines and not path.is_file():
        return []
    files.append(str(path))
    out: list[tuple[str, str, str, str]] = []
    group = ""
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("!include") and depth < 4:
            directive, _, arg = line.partition(" ")
            arg = arg.strip()
            if directive == "!includedir":
                for inc in sorted(glob.glob(str(Path(arg) / "*.cnf")))[:_MYSQL_MAX_FILES]:
                    out += _mysql_option_lines(Path(inc), files, depth + 1)
            elif directive == "!include" and arg:
                out += _mysql_option_lines(Path(arg), files, depth + 1)
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line[1:-1].strip().lower()
            continue
        key, _, value = line.partition("=")
        key = key.strip().lower().replace("_", "-")
        key = key[len("loose-"):] if key.startswith("loose-") else key
        out.append((group, key, value.split("#", 1)[0].strip().strip("\"'"), f"{path}:{lineno}"))
    return out


def inspect_mysql_options(paths: list[Path], argv: Optional[list[str]] = None) -> MysqlOptions:
    """The server's effective options from its option files in read order, then its command line (which wins):
    ``--defaults-file`` replaces the files, ``--defaults-extra-file`` adds one, ``--socket``/``--port`` set."""
    args = list(argv or [])[1:]
    files = list(paths)
    for a in args:
        if a.startswith("--defaults-file="):
            files = [Path(a.split("=", 1)[1])]
        elif a.startswith("--defaults-extra-file="):
            files.append(Path(a.split("=", 1)[1]))
    found = MysqlOptions()
    seen: list[str] = []
    settings: list[tuple[str, str, str]] = []
    for path in files:
        settings += [(k, v, w) for g, k, v, w in _mysql_option_lines(path, seen) if _MYSQL_GROUP_RE.match(g)]
    settings += [(a[2:].partition("=")[0].replace("_", "-"), a.partition("=")[2], "命令行 (command line)")
                 for a in args if a.startswith("--")]
    for key, value, where in settings:
        if key == "port" and value.isdigit():
            found.port = int(value)
        elif key == "socket" and value:
            found.socket = value
        elif key == "skip-grant-tables":
            found.skip_grant_tables = where if value.lower() not in ("0", "off", "false") else None
    found.files = seen
    return found


def mysql_findings(options: MysqlOptions) -> list[ServiceFinding]:
    if options.skip_grant_tables is None:
        return []
    return [
        ServiceFinding(
            "mysql",
            options.port or 3306,
            "config",
            f"MySQL/MariaDB 以 skip-grant-tables 运行, 任何人无需口令即可登录 ({options.skip_grant_tables})",
            "删除 skip-grant-tables 并重启数据库; 如为重置口令临时开启, 重置后立即关闭.",
        )
    ]


def inspect_pg_hba(path: Path, port: int) -> list[ServiceFinding]:
    findings: list[ServiceFinding] = []
    for lineno, raw in enumerate(_read_lines(path), 1):
        fields = raw.split("#", 1)[0].split()
        if len(fields) < 4:
            continue
        kind = fields[0]
        if kind == "local":
            method = fields[3] if len(fields) > 3 else ""
            addr = "local"
        elif kind.startswith("host") and len(fields) >= 5:
            addr = fields[3]
            method_idx = 4
            if "/" not in addr and len(fields) >= 6 and re.match(r"^[\d.]+$", fields[4]):
                method_idx = 5  # address and netmask in two columns
            method = fields[method_idx]
        else:
            continue
        if method != "trust":
            continue
        loopback = addr in ("local", "127.0.0.1/32", "::1/128", "localhost", "samehost")
        findings.append(
            ServiceFinding(
                "postgresql",
                port,
                "config",
                f"PostgreSQL 对 {fields[1]}/{fields[2]} 来自 {addr} 的连接不验证口令 (trust, {path}:{lineno})",
                "把该行的 trust 改为 scram-sha-256 (本机 socket 可用 peer), 然后 reload postgresql.",
                "warning" if loopback else "critical",
            )
        )
    return findings


def inspect_vsftpd(path: Path) -> tuple[Optional[int], list[ServiceFinding]]:
    if not path.exists():
        return None, []
    conf: dict[str, tuple[str, int]] = {}
    for lineno, raw in enumerate(_read_lines(path), 1):
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            conf[k.strip().lower()] = (v.strip().upper(), lineno)
    port = int(conf["listen_port"][0]) if conf.get("listen_port", ("", 0))[0].isdigit() else 21
    # vsftpd's built-in default is anonymous_enable=YES; Debian's shipped file sets NO.
    value, lineno = conf.get("anonymous_enable", ("YES", 0))
    if value != "YES":
        return port, []
    where = f"{path}:{lineno}" if lineno else f"{path} (未设置, 默认 YES)"
    return port, [
        ServiceFinding(
            "ftp",
            port,
            "config",
            f"vsftpd 允许匿名登录 (anonymous_enable=YES, {where})",
            "设置 anonymous_enable=NO 并重启 vsftpd; 如需公开下载, 确认匿名目录只读且不含敏感文件.",
        )
    ]


def inspect_tomcat_users(path: Path, port: int) -> list[ServiceFinding]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        return []  # entity expansion is never needed here; do not feed it to the XML parser
    import xml.etree.ElementTree as ET  # only where a Tomcat is installed

    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return []
    findings: list[ServiceFinding] = []
    for user in root.iter():
        if not user.tag.endswith("user"):
            continue
        name, password = user.get("username") or user.get("name"), user.get("password")
        roles = user.get("roles", "")
        if name is None or password is None:
            continue
        if password in TOMCAT_WEAK_PASSWORDS or password == name:
            risky_roles = [r for r in roles.split(",") if r.strip().startswith(("manager", "admin"))]
            findings.append(
                ServiceFinding(
                    "tomcat",
                    port,
                    "config",
                    f"Tomcat 用户 {name} 使用默认/弱口令, 角色 {','.join(risky_roles) or roles} ({path})",
                    "修改 tomcat-users.xml 中该用户的口令 (或删除该用户), 并限制 /manager 仅本机访问; 重启 tomcat.",
                    "critical" if risky_roles else "warning",
                )
            )
    return findings


class AttemptBudget:
    """Login attempts per endpoint per day, in a 0600 state file of endpoints, counts and finding titles.

    A title names the endpoint and the kind of credential ("root 账户空口令"), never a password.
    """

    def __init__(self, state_dir: Path, limit: int, clock: Callable[[], float]) -> None:
        self.path = state_dir / "service_logins.json"
        self.limit = limit
        self.day = time.strftime("%Y-%m-%d", time.localtime(clock()))
        self.counts: dict[str, int] = {}
        # endpoint -> the last login finding's title ("" = fine), reported again when the limit stops a check.
        self.last: dict[str, str] = {}
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            if raw.get("day") == self.day:
                self.counts = {str(k): int(v) for k, v in raw.get("counts", {}).items()}
            self.last = {str(k): str(v) for k, v in raw.get("last", {}).items()}
        except (OSError, ValueError, AttributeError):
            pass

    def take(self, endpoint: str) -> bool:
        used = self.counts.get(endpoint, 0)
        if used >= self.limit:
            return False
        self.counts[endpoint] = used + 1
        return True

    def save(self) -> None:
        write_private_json(self.path, {"day": self.day, "counts": self.counts, "last": self.last}, sort_keys=True)
