"""Local services without a password or with a default one (configuration, then a few loopback logins)::

shaobing_service_weak_credentials{port="6379",service="redis"} 1
shaobing_service_weak_credentials{port="3306",service="mysql"} 0
shaobing_service_weak_credentials{port="socket",service="mysql"} 0
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Optional
from urllib.parse import urlsplit

from agent.audit import fingerprint, logins
from agent.audit.dictionary import shipped_candidates
from agent.audit.exposure import WILDCARDS
from agent.audit.runs import expect_run, record_run, run_finished
from agent.audit.services import (
    MYSQL_CREDENTIALS,
    POSTGRES_CREDENTIALS,
    REDIS_PASSWORDS,
    TOMCAT_CREDENTIALS,
    AttemptBudget,
    ServiceFinding,
    inspect_mysql_options,
    inspect_pg_hba,
    inspect_redis,
    inspect_tomcat_users,
    inspect_vsftpd,
    mysql_findings,
)
from agent.audit.trust import untrusted_reason
from agent.catalog import MetricSet, MetricSpec
from agent.collector import AgentContext, Collector, CollectorOptions
from agent.optional import psutil
from agent.platform.sockets import listening_uids
from agent.report import Finding, Section

if TYPE_CHECKING:
    from typing import TypeAlias  # Python 3.10+; aliases are strings so that 3.6-3.8 never evaluate them

__all__ = ["ServiceCredentialsOptions", "ServiceCredentialsCollector"]

log = logging.getLogger(__name__)

# (what is tried, as the report names it; the try itself).
Attempt: TypeAlias = "tuple[str, Callable[[], logins.LoginOutcome]]"
SERVICES = ("mysql", "redis", "ftp", "postgresql", "tomcat")
_PROCESS_SERVICE = {
    "mysqld": "mysql",
    "mariadbd": "mysql",
    "redis-server": "redis",
    "vsftpd": "ftp",
    "proftpd": "ftp",
    "pure-ftpd": "ftp",
    "postgres": "postgresql",
}
_PORT_SERVICE = {3306: "mysql", 6379: "redis", 21: "ftp", 5432: "postgresql"}


@dataclass
class ServiceCredentialsOptions(CollectorOptions):
    redis_configs: list[str] = field(default_factory=lambda: ["/etc/redis/redis.conf", "/etc/redis.conf"])
    pg_hba_files: list[str] = field(
        default_factory=lambda: ["/etc/postgresql/*/*/pg_hba.conf", "/var/lib/pgsql/data/pg_hba.conf"]
    )
    vsftpd_configs: list[str] = field(default_factory=lambda: ["/etc/vsftpd.conf", "/etc/vsftpd/vsftpd.conf"])
    tomcat_users_files: list[str] = field(
        default_factory=lambda: ["/etc/tomcat*/tomcat-users.xml", "/opt/tomcat*/conf/tomcat-users.xml"]
    )
    mysql_sockets: list[str] = field(
        default_factory=lambda: ["/run/mysqld/mysqld.sock", "/var/lib/mysql/mysql.sock", "/tmp/mysql.sock"]
    )
    # Option files a server reads when its command line names none (--defaults-file replaces them).
    mysql_configs: list[str] = field(default_factory=lambda: ["/etc/my.cnf", "/etc/mysql/my.cnf"])
    postgres_port: int = 5432
    tomcat_port: int = 8080
    # Login tries against services found listening (and the targets below); False: configuration only.
    login_tries: bool = True
    discover: bool = True
    # Extra endpoints, loopback or this host's own addresses only: "redis://127.0.0.1:6380".
    targets: list[str] = field(default_factory=list)
    # Credentials tried per endpoint per day (the agent must never act as a password guesser).
    daily_limit: int = 10
    # Executables to trust although not root-owned (a vendor JRE under /opt owned by its service user).
    trusted_executables: list[str] = field(default_factory=list)

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if not 1 <= self.daily_limit <= 20:
            out.append(("daily_limit", "must be between 1 and 20"))
        own: Optional[set[str]] = None
        for i, target in enumerate(self.targets):
            parsed = urlsplit(target)
            if parsed.scheme not in SERVICES or not parsed.hostname or parsed.port is None:
                out.append((f"targets[{i}]", f"expected <service>://<address>:<port> with service one of {SERVICES}"))
                continue
            if own is None:
                own = logins.own_addresses()
            try:
                logins.check_target(parsed.hostname, own)
            except logins.TargetRefused as exc:
                out.append((f"targets[{i}]", str(exc)))
        return out


class _Unchecked(Exception):
    """A login check that could not finish: its result is unknown."""


# Today's verdict for an endpoint whose last try failed (kept in the attempt budget's state file).
_COULD_NOT_CHECK = "?"


# Process names (and, for Tomcat, a command-line mark) that show a service is running.
_RUNNING_NAMES = {"redis-server": "redis", "vsftpd": "ftp", "postgres": "postgresql", "postmaster": "postgresql",
                  "mysqld": "mysql", "mariadbd": "mysql"}


def running_services(max_processes: int = 20_000) -> dict[str, list[list[str]]]:
    """Service -> the command lines of its running processes (world-readable /proc, no privilege needed)."""
    out: dict[str, list[list[str]]] = {}
    for i, proc in enumerate(psutil.process_iter(["name", "cmdline"])):
        if i >= max_processes:
            break
        name = proc.info.get("name") or ""
        argv = [str(a) for a in (proc.info.get("cmdline") or [])]
        service = _RUNNING_NAMES.get(name)
        if service is None and name == "java" and any("catalina" in a.lower() for a in argv):
            service = "tomcat"
        if service is not None:
            out.setdefault(service, []).append(argv)
    return out


def configs_from_command_lines(running: dict[str, list[list[str]]]) -> dict[str, list[str]]:
    """Config files named on running command lines: ``redis-server /etc/redis/b.conf``, ``vsftpd
    /etc/vsftpd/b.conf``, ``postgres -D /data`` (its pg_hba.conf) or ``-c hba_file=...``. MySQL's
    ``--defaults-file`` is read with the rest of its command line (:func:`inspect_mysql_options`)."""
    out: dict[str, list[str]] = {}
    for argv in running.get("redis", []):
        out.setdefault("redis", []).extend(a for a in argv[1:] if a.endswith(".conf"))
    for argv in running.get("ftp", []):
        out.setdefault("ftp", []).extend(a for a in argv[1:] if a.endswith(".conf"))
    for argv in running.get("postgresql", []):
        for i, a in enumerate(argv):
            if a == "-D" and i + 1 < len(argv):
                out.setdefault("postgresql", []).append(str(Path(argv[i + 1]) / "pg_hba.conf"))
            if a.startswith("hba_file="):
                out.setdefault("postgresql", []).append(a.split("=", 1)[1])
            if a == "-c" and i + 1 < len(argv) and argv[i + 1].startswith("hba_file="):
                out.setdefault("postgresql", []).append(argv[i + 1].split("=", 1)[1])
    return out


def _expand(patterns: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in patterns:
        out += [Path(m) for m in sorted(glob.glob(p)) if Path(m) not in out]
    return out


class ServiceCredentialsCollector(Collector):
    name = "service_credentials"
    title = "本机服务口令 (Local service credentials)"
    options_class = ServiceCredentialsOptions
    default_interval = 86400.0
    default_timeout = 120.0
    default_jitter = 1800.0
    metrics = (
        MetricSpec(
            "shaobing_service_weak_credentials",
            "gauge",
            "1 when a local service accepts an empty/default credential or its configuration allows "
            "unauthenticated access; 0 when checked and fine.",
            ("service", "port"),
        ),
        MetricSpec(
            "shaobing_service_credentials_unchecked",
            "gauge",
            "Local services found but not checked (untrusted listener, or the check could not finish); their "
            "shaobing_service_weak_credentials is absent, not 0. The scan report says why.",
        ),
    )

    def __init__(
        self,
        options: ServiceCredentialsOptions,
        context: AgentContext,
        *,
        listeners: Optional[Callable[[], list[tuple[str, str, int, str]]]] = None,
        running: Optional[Callable[[], dict[str, list[list[str]]]]] = None,
    ) -> None:
        super().__init__(options, context)
        expect_run(context.state_dir, "services")
        self.opts = options
        self._listeners = listeners or self._discover
        self._running = running or running_services
        self.last: Optional[tuple[dict[tuple[str, str], bool], list[ServiceFinding], list[str]]] = None
        self.unchecked = 0

    def _discover(self) -> list[tuple[str, str, int, str]]:
        """(service, address to connect to, port, why not to try it or '') for known services listening here."""
        out: list[tuple[str, str, int, str]] = []
        owners = listening_uids()
        prober = fingerprint.Prober()
        for c in psutil.net_connections(kind="tcp"):
            if c.status != psutil.CONN_LISTEN or not c.laddr:
                continue
            ip, port = c.laddr[0], c.laddr[1]
            name, exe = "", None
            if c.pid:
                try:
                    proc = psutil.Process(c.pid)
                    name = proc.name()
                    exe = proc.exe() or None
                except psutil.Error:
                    pass
            service = _PROCESS_SERVICE.get(name) or _PORT_SERVICE.get(port)
            if service is None and port == self.opts.tomcat_port and name == "java":
                service = "tomcat"
            host = ("::1" if ":" in ip else "127.0.0.1") if ip in WILDCARDS else ip
            if service is None and c.pid != os.getpid():  # never probe the agent's own endpoint
                # A renamed binary on a moved port: what it answers says what it is.
                answer = prober(host, port)
                service = answer if answer in ("ftp", "mysql", "redis", "postgresql") else None
            if service is None:
                continue
            why = untrusted_reason(service, owners.get(port, set()), exe, self.opts.trusted_executables)
            out.append((service, host, port, why))
        return sorted(set(out))

    def _endpoints(self) -> list[tuple[str, str, int, str]]:
        eps = list(self._listeners()) if self.opts.discover else []
        owners: Optional[dict[int, set[int]]] = None
        for t in self.opts.targets:
            parsed = urlsplit(t)
            if parsed.hostname and parsed.port:
                # Checked again here, before any connection, even though the configuration was validated.
                host = logins.check_target(parsed.hostname)
                if owners is None:
                    owners = listening_uids()
                why = untrusted_reason(parsed.scheme, owners.get(parsed.port, set()), None,
                                       self.opts.trusted_executables)
                eps.append((parsed.scheme, host, parsed.port, why))
        return sorted(set(eps))

    def _attempts(self, service: str, host: str, port: int) -> Sequence[Attempt]:
        """(what is tried, in Chinese for the report; the try), likeliest first; never the password itself."""
        addr: logins.Address = (host, port)
        if service == "mysql":
            return [(f"{u} 账户{'空口令' if not p else '默认口令'}", partial(logins.mysql_login, addr, u, p))
                    for u, p in MYSQL_CREDENTIALS]  # fmt: skip
        if service == "redis":
            return [("无口令 (no AUTH)", partial(logins.redis_login, addr, None))] + [
                ("默认口令", partial(logins.redis_login, addr, p)) for p in REDIS_PASSWORDS
            ]
        if service == "ftp":
            return [("匿名 (anonymous)", partial(logins.ftp_anonymous, host, port))]
        if service == "postgresql":
            return [(f"{u} 默认口令", partial(logins.postgres_login, addr, u, p)) for u, p in POSTGRES_CREDENTIALS]
        if service == "tomcat":
            return [("无认证 (no auth)", partial(logins.tomcat_login, host, port, None, ""))] + [
                (f"{u} 默认口令", partial(logins.tomcat_login, host, port, u, p)) for u, p in TOMCAT_CREDENTIALS
            ]
        return []

    def _run_attempts(
        self,
        endpoint: str,
        where: str,
        finding: tuple[str, int, str],
        attempts: Sequence[Attempt],
        budget: AttemptBudget,
        notes: list[str],
    ) -> Optional[ServiceFinding]:
        """Try until the first success, a non-password answer, an error, or the daily limit."""
        service, port, how = finding
        for what, attempt in attempts:
            if not budget.take(endpoint):
                notes.append(f"{endpoint}: 今日登录尝试次数已达上限 {budget.limit} (daily limit reached)")
                # Keep today's earlier verdict rather than dropping a finding because the limit was hit.
                last = budget.last.get(endpoint, "")
                if last == _COULD_NOT_CHECK:
                    raise _Unchecked
                return (
                    ServiceFinding(service, port, how, f"{last} (今日较早的检查结果)", _LOGIN_FIX[service])
                    if last
                    else None
                )
            try:
                outcome = attempt()
            except Exception as exc:  # noqa: BLE001 - refused, timed out or a protocol surprise: this endpoint only
                # No retries: an unreachable service is noted and left alone until the next run. Not checked
                # is not "fine": the caller leaves this endpoint's metric out.
                why = str(exc) if isinstance(exc, logins.AnswerRefused) else type(exc).__name__
                notes.append(f"{endpoint}: 无法完成登录检查, 结果未知 (could not check: {why})")
                budget.last[endpoint] = _COULD_NOT_CHECK
                raise _Unchecked from None
            if outcome == "ok":
                title = f"{where} 可用{what}登录"
                budget.last[endpoint] = title
                return ServiceFinding(service, port, how, title, _LOGIN_FIX[service])
            if outcome == "other" or service == "ftp":
                break  # not a password question (unix_socket, client certificates), or FTP's single try
        budget.last[endpoint] = ""
        return None

    def _evaluate(self) -> tuple[dict[tuple[str, str], bool], list[ServiceFinding], list[str]]:
        o = self.opts
        status: dict[tuple[str, str], bool] = {}
        findings: list[ServiceFinding] = []
        notes: list[str] = []
        weak = frozenset(shipped_candidates()) | frozenset(REDIS_PASSWORDS)
        running = self._running() if o.discover else {}
        named = configs_from_command_lines(running)

        def live(service: str, path: Path) -> bool:
            """Configuration of a service that is not running is context, not a live finding."""
            if not o.discover or service in running:
                return True
            notes.append(f"{path}: {_NAMES[service]} 未在运行, 其配置问题仅供参考, 未计入指标 "
                         f"(not running: an info line, not a live finding)")
            return False

        for path in _expand([*o.redis_configs, *named.get("redis", [])]):
            port, found = inspect_redis(path, weak)
            if port is not None and live("redis", path):
                status.setdefault(("redis", str(port)), False)
                findings += found
        for path in _expand([*o.pg_hba_files, *named.get("postgresql", [])]):
            if live("postgresql", path):
                status.setdefault(("postgresql", str(o.postgres_port)), False)
                findings += inspect_pg_hba(path, o.postgres_port)
        for path in _expand([*o.vsftpd_configs, *named.get("ftp", [])]):
            port, found = inspect_vsftpd(path)
            if port is not None and live("ftp", path):
                status.setdefault(("ftp", str(port)), False)
                findings += found
        sockets = list(o.mysql_sockets)
        mysql_files = _expand(o.mysql_configs)
        argvs: list[Optional[list[str]]] = [*running.get("mysql", [])] or ([None] if mysql_files else [])
        for argv in argvs:
            options = inspect_mysql_options(mysql_files, argv)
            found = mysql_findings(options)
            if found and live("mysql", Path(options.files[0] if options.files else "mysqld")):
                findings += found
            if argv is not None and options.socket and options.socket not in sockets:
                sockets.append(options.socket)  # the running server's own socket, wherever its files put it
        for path in _expand(o.tomcat_users_files):
            if live("tomcat", path):
                status.setdefault(("tomcat", str(o.tomcat_port)), False)
                findings += inspect_tomcat_users(path, o.tomcat_port)
        complete = True
        unchecked: set[tuple[str, str]] = set()
        if o.login_tries:
            budget = AttemptBudget(self.context.state_dir, o.daily_limit, self.context.clock)
            try:
                for sock in sockets:
                    if Path(sock).is_socket():
                        status.setdefault(("mysql", "socket"), False)
                        # As root, MariaDB's default unix_socket auth lets us in with any password; the
                        # control try tells that apart from a real empty password.
                        attempts: Sequence[Attempt] = [
                            ("", partial(logins.mysql_socket_control, sock, "root")),
                            *[
                                (
                                    f"{u} 账户{'空口令' if not p else '默认口令'}",
                                    partial(logins.mysql_login, sock, u, p),
                                )
                                for u, p in MYSQL_CREDENTIALS
                            ],
                        ]
                        where = f"MySQL/MariaDB 本机 socket {sock}"
                        try:
                            f = self._run_attempts(
                                f"mysql:unix:{sock}", where, ("mysql", 0, "socket"), attempts, budget, notes
                            )
                        except _Unchecked:
                            unchecked.add(("mysql", "socket"))
                            continue
                        if f:
                            findings.append(f)
                for service, host, port, why in self._endpoints():
                    if why:
                        notes.append(f"{service}:{host}:{port}: {why}")
                        unchecked.add((service, str(port)))
                        continue
                    status.setdefault((service, str(port)), False)
                    where = f"{_NAMES[service]} 服务 {host}:{port}"
                    attempts = self._attempts(service, host, port)
                    try:
                        f = self._run_attempts(
                            f"{service}:{host}:{port}", where, (service, port, "login"), attempts, budget, notes
                        )
                    except _Unchecked:
                        unchecked.add((service, str(port)))
                        continue
                    if f:
                        findings.append(f)
            finally:
                budget.save()
            complete = not any("daily limit" in n for n in notes)
        for f in findings:
            status[(f.service, "socket" if f.how == "socket" else str(f.port))] = True
        for key in unchecked:
            # A configuration finding stays a finding; a login check that could not run is not "fine".
            if not status.get(key):
                status.pop(key, None)
        self.unchecked = len(unchecked - {k for k, v in status.items() if v})
        record_run(self.context.state_dir, "services", self.context.clock(), complete)
        self.last = (status, findings, notes)
        return status, findings, notes

    def collect(self, out: MetricSet) -> None:
        try:
            status, _, notes = self._evaluate()
            for note in notes:
                log.info("service credentials: %s", note)
            for (service, port), weak in sorted(status.items()):
                out.add("shaobing_service_weak_credentials", 1 if weak else 0, {"service": service, "port": port})
            out.add("shaobing_service_credentials_unchecked", self.unchecked)
        finally:
            run_finished(self.context.state_dir, "services")

    def report(self) -> Optional[Section]:
        if self.last is None:
            return None
        _, findings, notes = self.last
        section = Section(self.title)
        for f in findings:
            section.findings.append(Finding(f.severity, f.title, _WHY[f.service], f.fix))
        section.notes.extend(notes)
        return section


_NAMES = {
    "mysql": "MySQL/MariaDB",
    "redis": "Redis",
    "ftp": "FTP",
    "postgresql": "PostgreSQL",
    "tomcat": "Tomcat 管理页面",
}
_WHY = {
    "mysql": "数据库可被无口令或默认口令登录, 数据可被读取、篡改或删除.",
    "redis": "未认证的 Redis 可被写入 SSH 公钥或计划任务, 是服务器被入侵的常见途径.",
    "ftp": "匿名用户可列出和下载文件, 如目录可写还可上传恶意文件.",
    "postgresql": "数据库接受不验证口令的连接, 数据可被读取或篡改.",
    "tomcat": "Tomcat 管理页面可上传 WAR 包, 默认口令等于把服务器交给攻击者.",
}
_LOGIN_FIX = {
    "mysql": "为该账户设置强口令: ALTER USER 'root'@'localhost' IDENTIFIED BY '<强口令>'; 或改用 unix_socket 认证.",
    "redis": "设置 requirepass <随机长口令>, bind 127.0.0.1 -::1, protected-mode yes; 重启 redis.",
    "ftp": "在 vsftpd.conf 设置 anonymous_enable=NO 并重启 vsftpd.",
    "postgresql": "为 postgres 设置强口令 (\\password postgres), pg_hba.conf 使用 scram-sha-256.",
    "tomcat": "修改 tomcat-users.xml 中的默认口令或删除该用户, /manager 只允许本机访问.",
}
