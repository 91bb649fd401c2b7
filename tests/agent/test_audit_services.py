"""Local service credentials against real MariaDB, Redis and vsftpd on loopback, plus config inspection."""

from __future__ import annotations

import base64
import http.server
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.audit import logins
from agent.audit.services import inspect_pg_hba, inspect_redis, inspect_tomcat_users
from agent.collector import AgentContext
from agent.collectors.exposure import ExposureCollector, ExposureOptions
from agent.collectors.service_credentials import ServiceCredentialsCollector, ServiceCredentialsOptions
from tests.support.prometheus import free_port

FIXTURES = Path(__file__).parent / "fixtures" / "audit"
STRONG = "Vq7-xR2m-Lp9w-Tz4k"


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text(errors='replace')[-2000:] if log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server did not listen on 127.0.0.1:{port}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def services(tmp: Path, **kw: object) -> ServiceCredentialsCollector:
    base: dict[str, object] = {
        "redis_configs": [],
        "pg_hba_files": [],
        "vsftpd_configs": [],
        "tomcat_users_files": [],
        "mysql_sockets": [],
        "discover": False,
    }
    base.update(kw)
    opts = ServiceCredentialsOptions(**base)  # type: ignore[arg-type]
    assert opts.problems() == []
    return ServiceCredentialsCollector(opts, AgentContext(state_dir=tmp / "state"))


def weak(col: ServiceCredentialsCollector) -> dict[tuple[str, str], float]:
    out = col.new_metric_set()
    col.collect(out)
    return {
        (dict(s.labels)["service"], dict(s.labels)["port"]): s.value
        for s in out.samples("shaobing_service_weak_credentials")
    }


@pytest.fixture(params=["normal"])
def mariadb(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    if shutil.which("mariadbd", path="/usr/sbin:/usr/bin") is None:
        pytest.skip("mariadb-server is not installed")
    data, sock, port = tmp_path / "mdb", str(tmp_path / "mysqld.sock"), free_port()
    subprocess.run(
        ["mariadb-install-db", "--no-defaults", f"--datadir={data}", f"--auth-root-authentication-method={request.param}",
         "--user=root", "--skip-test-db"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    log = tmp_path / "mariadb.err"
    proc = subprocess.Popen(
        ["/usr/sbin/mariadbd", "--no-defaults", f"--datadir={data}", f"--socket={sock}", f"--port={port}",
         "--bind-address=127.0.0.1", "--user=root", f"--log-error={log}", f"--pid-file={tmp_path / 'mdb.pid'}",
         "--innodb-buffer-pool-size=16M", "--skip-name-resolve", "--skip-log-bin"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_port(port, proc, log)
        yield sock, port
    finally:
        stop(proc)


@pytest.mark.integration
def test_mariadb_root_without_password_then_fixed(tmp_path: Path, mariadb: tuple[str, int]) -> None:
    sock, port = mariadb
    col = services(tmp_path, mysql_sockets=[sock], targets=[f"mysql://127.0.0.1:{port}"])
    assert weak(col) == {("mysql", "socket"): 1, ("mysql", str(port)): 1}
    report = col.report()
    titles = [f.title for f in report.findings] if report else []
    assert f"MySQL/MariaDB 本机 socket {sock} 可用root 账户空口令登录" in titles, titles

    sql = (
        "".join(f"ALTER USER root@'{h}' IDENTIFIED BY '{STRONG}';" for h in ("localhost", "127.0.0.1", "::1"))
        + "DROP USER IF EXISTS root@'"
        + socket.gethostname()
        + "';"
    )
    subprocess.run(["mariadb", "--no-defaults", "-S", sock, "-uroot", "-e", sql], check=True, timeout=30)
    assert weak(col) == {("mysql", "socket"): 0, ("mysql", str(port)): 0}
    assert logins.mysql_login(sock, "root", STRONG) == "ok"  # the client itself is right, the password is not weak


@pytest.mark.integration
@pytest.mark.parametrize("mariadb", ["socket"], indirect=True)
def test_mariadb_default_unix_socket_root_is_not_a_weak_password(tmp_path: Path, mariadb: tuple[str, int]) -> None:
    """Debian's default: root@localhost by unix_socket. As OS root any password gets in; that is not a finding."""
    sock, port = mariadb
    col = services(tmp_path, mysql_sockets=[sock], targets=[f"mysql://127.0.0.1:{port}"])
    assert weak(col) == {("mysql", "socket"): 0, ("mysql", str(port)): 0}
    assert col.last is not None and col.last[2] == []


def start_redis(tmp: Path, conf: str) -> subprocess.Popen[bytes]:
    path = tmp / "redis.conf"
    path.write_text(conf)
    return subprocess.Popen(
        ["redis-server", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


@pytest.mark.integration
def test_redis_open_on_all_interfaces_then_locked_down(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    common = f'port {port}\ndir {tmp_path}\nsave ""\nappendonly no\nlogfile {tmp_path / "redis.log"}\n'
    proc = start_redis(tmp_path, common + "bind 0.0.0.0\nprotected-mode yes\n")
    try:
        wait_port(port, proc, tmp_path / "redis.log")
        col = services(tmp_path, redis_configs=[str(tmp_path / "redis.conf")], targets=[f"redis://127.0.0.1:{port}"])
        assert weak(col) == {("redis", str(port)): 1}
        report = col.report()
        assert report is not None
        titles = [f.title for f in report.findings]
        assert any("无口令且监听非本机地址" in t for t in titles), titles  # configuration
        assert any(f"127.0.0.1:{port} 可用无口令" in t for t in titles), titles  # login try (PING)
        # The daily limit stops further tries but keeps today's verdict: the finding does not flap away.
        limited = services(tmp_path / "limited", targets=[f"redis://127.0.0.1:{port}"], daily_limit=2)
        assert [weak(limited) for _ in range(3)] == [{("redis", str(port)): 1}] * 3
        assert limited.last is not None and any("daily limit reached" in n for n in limited.last[2])
        expo = ExposureCollector(
            ExposureOptions(check_firewall=False), AgentContext(state_dir=tmp_path / "state"),
            catalogue={(port, "tcp"): "redis"},
        )  # fmt: skip
        out = expo.new_metric_set()
        expo.collect(out)
        labels = {"port": str(port), "service": "redis", "bind": "0.0.0.0", "process": "redis-server"}
        assert out.get("shaobing_exposed_port", labels) == 1
    finally:
        stop(proc)

    proc = start_redis(tmp_path, common + f"bind 127.0.0.1\nrequirepass {STRONG}\n")
    try:
        wait_port(port, proc, tmp_path / "redis.log")
        assert weak(col) == {("redis", str(port)): 0}
        assert col.last is not None and col.last[2] == []  # every try was answered (and refused)
        out = expo.new_metric_set()
        expo.collect(out)
        assert out.samples("shaobing_exposed_port") == []
        assert logins.redis_login(("127.0.0.1", port), STRONG) == "ok"
    finally:
        stop(proc)


def start_vsftpd(tmp: Path, port: int, anonymous: bool) -> tuple[subprocess.Popen[bytes], Path]:
    root, empty = tmp / "ftproot", tmp / "ftpempty"
    root.mkdir(mode=0o755, exist_ok=True)
    empty.mkdir(mode=0o755, exist_ok=True)
    conf = tmp / "vsftpd.conf"
    conf.write_text(
        "listen=YES\nlisten_ipv6=NO\nlisten_address=127.0.0.1\n"
        f"listen_port={port}\nanonymous_enable={'YES' if anonymous else 'NO'}\nanon_root={root}\n"
        f"local_enable=NO\nwrite_enable=NO\nsecure_chroot_dir={empty}\nseccomp_sandbox=NO\nisolate=NO\n"
        "isolate_network=NO\nbackground=NO\nxferlog_enable=NO\npasv_enable=NO\n"
    )
    proc = subprocess.Popen(
        ["vsftpd", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    return proc, conf


@pytest.mark.integration
def test_vsftpd_anonymous_then_disabled(tmp_path: Path) -> None:
    if shutil.which("vsftpd", path="/usr/sbin:/usr/bin") is None:
        pytest.skip("vsftpd is not installed")
    port = free_port()
    proc, conf = start_vsftpd(tmp_path, port, anonymous=True)
    try:
        wait_port(port, proc, tmp_path / "none")
        col = services(tmp_path, vsftpd_configs=[str(conf)], targets=[f"ftp://127.0.0.1:{port}"])
        assert weak(col) == {("ftp", str(port)): 1}
        report = col.report()
        assert report is not None and len(report.findings) == 2  # the config line and the login
    finally:
        stop(proc)
    proc, conf = start_vsftpd(tmp_path, port, anonymous=False)
    try:
        wait_port(port, proc, tmp_path / "none")
        assert weak(col) == {("ftp", str(port)): 0}
        assert col.last is not None and col.last[2] == []  # the login was refused, not left unanswered
    finally:
        stop(proc)


def test_non_local_target_is_refused_without_connecting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opts = ServiceCredentialsOptions(targets=["redis://192.0.2.10:6379", "mysql://db.example:3306"], discover=False)
    problems = dict(opts.problems())
    assert "neither loopback nor an address of this host" in problems["targets[0]"]
    assert "not an IP address" in problems["targets[1]"]

    calls: list[object] = []
    real_connect = socket.socket.connect

    def spy(self: socket.socket, address: object) -> None:
        calls.append(address)
        real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", spy)
    bad = ServiceCredentialsOptions(targets=["redis://192.0.2.10:6379"], discover=False, mysql_sockets=[])
    col = ServiceCredentialsCollector(bad, AgentContext(state_dir=tmp_path))
    with pytest.raises(logins.TargetRefused, match="192.0.2.10"):
        col.collect(col.new_metric_set())
    with pytest.raises(logins.TargetRefused):
        logins.redis_login(("192.0.2.10", 6379), None)
    with pytest.raises(logins.TargetRefused):
        logins.tomcat_login("192.0.2.10", 8080, None, "")
    assert calls == []


def test_daily_limit_caps_attempts(tmp_path: Path) -> None:
    # A listener of this (root) test process that hangs up at once: every try ends in an error, each counted.
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop_accepting = threading.Event()

    def hang_up() -> None:
        server.settimeout(0.2)
        while not stop_accepting.is_set():
            try:
                conn, _ = server.accept()
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    try:
        col = services(tmp_path, targets=[f"redis://127.0.0.1:{port}"], daily_limit=2)
        for _ in range(3):
            result = weak(col)
        assert ("redis", str(port)) not in result  # could not check: absent, never 0 ("fine")
    finally:
        stop_accepting.set()
        thread.join(5)
        server.close()
    _, _, notes = col.last or ({}, [], [])
    assert any("daily limit reached" in n for n in notes)


def test_config_inspection_fixtures() -> None:
    found = inspect_pg_hba(FIXTURES / "pg_hba.conf", 5432)
    assert [(f.severity, f.title.split("(trust, ")[1]) for f in found] == [
        ("warning", f"{FIXTURES / 'pg_hba.conf'}:3)"),
        ("critical", f"{FIXTURES / 'pg_hba.conf'}:6)"),
    ]
    tomcat = inspect_tomcat_users(FIXTURES / "tomcat-users.xml", 8080)
    assert [(f.severity, f.title.split(" ")[2]) for f in tomcat] == [("critical", "tomcat"), ("warning", "role1")]
    port, redis = inspect_redis(FIXTURES / "redis-weak.conf", frozenset({"admin123"}))
    assert port == 6390 and len(redis) == 1 and "常见弱口令" in redis[0].title
    assert "admin123" not in redis[0].title


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    return found[-1].parent if found else None


@pytest.mark.integration
def test_postgresql_trust_then_scram(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    import os
    import pwd

    bindir = _pg_bin()
    if bindir is None or os.geteuid() != 0:
        pytest.skip("needs PostgreSQL and root (to run it as the postgres user)")
    pg = pwd.getpwnam("postgres")
    # pytest's tmp_path sits under a 0700 root directory the postgres user cannot enter.
    base = Path(tempfile.mkdtemp(prefix="shaobing-pg-"))
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    os.chown(base, pg.pw_uid, pg.pw_gid)
    data, port = base / "pg", free_port()
    as_pg = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_pg, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    log = base / "pg.log"

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*as_pg, str(bindir / "postgres"), "-D", str(data), "-k", str(base), "-p", str(port),
             "-c", "listen_addresses=127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip

    def wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
        # PostgreSQL accepts connections while it starts up, and refuses them with "starting up".
        wait_port(port, proc, log)
        deadline = time.monotonic() + 30
        while subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)], timeout=10).returncode != 0:
            assert time.monotonic() < deadline, "PostgreSQL did not become ready"
            time.sleep(0.1)

    hba = data / "pg_hba.conf"
    proc = start()
    try:
        wait_ready(port, proc, log)
        col = services(
            tmp_path, pg_hba_files=[str(hba)], postgres_port=port, targets=[f"postgresql://127.0.0.1:{port}"]
        )
        assert weak(col) == {("postgresql", str(port)): 1}
        sql = f"ALTER USER postgres PASSWORD '{STRONG}'"
        subprocess.run(["psql", "-h", str(base), "-p", str(port), "-U", "postgres", "-c", sql],
                       check=True, capture_output=True, timeout=30)  # fmt: skip
    finally:
        stop(proc)
    hba.write_text("local all postgres peer\nhost all all 127.0.0.1/32 scram-sha-256\n")
    proc = start()
    try:
        wait_ready(port, proc, log)
        # First the strong password works (the SCRAM client is right and the server is up), then nothing weak does.
        assert logins.postgres_login(("127.0.0.1", port), "postgres", STRONG) == "ok"
        assert weak(col) == {("postgresql", str(port)): 0}
    finally:
        stop(proc)


class _ManagerStandIn(http.server.BaseHTTPRequestHandler):
    """Tomcat's manager as seen on the wire: 401 with a Basic challenge, 200 for tomcat/tomcat.

    A stand-in because the Debian test image has no tomcat10-admin (the manager webapp); the client code under
    test is the real one, over a real loopback HTTP connection.
    """

    expected = "Basic " + base64.b64encode(b"tomcat:tomcat").decode()
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's handler naming
        auth = self.headers.get("Authorization", "")
        self.seen.append(self.path)
        if self.path == "/manager/html" and auth == self.expected:
            self.send_response(200)
        else:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="Tomcat Manager Application"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_tomcat_manager_default_credentials(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ManagerStandIn)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        col = services(
            tmp_path,
            tomcat_users_files=[str(FIXTURES / "tomcat-users.xml")],
            tomcat_port=port,
            targets=[f"tomcat://127.0.0.1:{port}"],
        )
        assert col.report() is None  # nothing to say before a run
        assert weak(col) == {("tomcat", str(port)): 1}
        # One unauthenticated probe, then the first default pair tomcat/tomcat succeeds: two requests, no more.
        assert _ManagerStandIn.seen == ["/manager/html", "/manager/html"]
        report = col.report()
        assert report is not None and any("可用tomcat 默认口令登录" in f.title for f in report.findings)
    finally:
        server.shutdown()
        server.server_close()


def _run_as(user: str | None, script: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    import os
    import pwd

    from tests.agent.impostors import command

    def drop() -> None:
        if user is not None:
            entry = pwd.getpwnam(user)
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)

    log.parent.mkdir(parents=True, exist_ok=True)
    log.parent.chmod(0o777)
    proc = subprocess.Popen(command(script, port, str(log)), preexec_fn=drop,  # noqa: PLW1509 - tests run as root
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.exists(), "the impostor did not start"
    return proc


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() != 0,
                    reason="needs root to run the impostor as another user")
def test_a_local_users_fake_redis_is_not_logged_in_to(tmp_path: Path) -> None:
    port = free_port()
    # Where the unprivileged impostor can write (pytest's tmp_path is root's, mode 0700).
    shared = Path(tempfile.mkdtemp(prefix="shaobing-impostor-"))
    log = shared / "redis.log"
    from tests.agent.impostors import FAKE_REDIS

    proc = _run_as("nobody", FAKE_REDIS, port, log)
    try:
        col = services(tmp_path, targets=[f"redis://127.0.0.1:{port}"])
        result = weak(col)
        out = col.new_metric_set()
        col.collect(out)
    finally:
        stop(proc)
    text = log.read_text()
    shutil.rmtree(shared, ignore_errors=True)
    assert "connected" not in text  # no password, no connection, to a socket owned by nobody
    assert ("redis", str(port)) not in result  # not checked: absent, never 0
    assert out.get("shaobing_service_credentials_unchecked") == 1
    _, _, notes = col.last or ({}, [], [])
    assert any("nobody" in n and "not tried" in n for n in notes), notes


def test_a_server_chosen_work_factor_or_endless_answer_is_refused_and_unknown(tmp_path: Path) -> None:
    import resource

    from tests.agent.impostors import FAKE_POSTGRES, FAKE_TOMCAT

    pg_port, tc_port = free_port(), free_port()
    pg = _run_as(None, FAKE_POSTGRES, pg_port, tmp_path / "impostor" / "pg.log")
    tc = _run_as(None, FAKE_TOMCAT, tc_port, tmp_path / "impostor" / "tc.log")
    try:
        col = services(tmp_path, targets=[f"postgresql://127.0.0.1:{pg_port}", f"tomcat://127.0.0.1:{tc_port}"])
        cpu0 = time.process_time()
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.monotonic()
        result = weak(col)
        took = time.monotonic() - start
        cpu = time.process_time() - cpu0
        grew_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    finally:
        stop(pg)
        stop(tc)
    assert "challenge sent" in (tmp_path / "impostor" / "pg.log").read_text()
    assert ("postgresql", str(pg_port)) not in result  # refused before computing: unknown, not "fine"
    _, _, notes = col.last or ({}, [], [])
    assert any("10000000 SCRAM iterations" in n for n in notes), notes
    assert cpu < 2.0 and took < 30  # ten million PBKDF2 rounds would be seconds of CPU
    assert grew_mb < 50  # the endless Tomcat body was never read


def test_a_config_of_a_service_that_does_not_run_is_context_not_a_finding(tmp_path: Path) -> None:
    """Debian's stock redis.conf (no requirepass) while no Redis runs: no metric, an info line."""
    stock = Path("/etc/redis/redis.conf")
    if not stock.exists():
        pytest.skip("redis-server's stock configuration is not installed")
    conf = tmp_path / "redis.conf"
    shutil.copy(stock, conf)
    opts = ServiceCredentialsOptions(redis_configs=[str(conf)], pg_hba_files=[], vsftpd_configs=[],
                                     tomcat_users_files=[], mysql_sockets=[], login_tries=False)
    col = ServiceCredentialsCollector(opts, AgentContext(state_dir=tmp_path / "state"), listeners=lambda: [],
                                      running=lambda: {})
    assert weak(col) == {}
    assert col.last is not None and any("未在运行" in n and str(conf) in n for n in col.last[2])
    # The same file named on a running redis-server's command line is read, and judged live.
    second = tmp_path / "b.conf"
    second.write_text("port 16380\nbind 0.0.0.0\nprotected-mode no\n")
    opts = ServiceCredentialsOptions(redis_configs=[], pg_hba_files=[], vsftpd_configs=[], tomcat_users_files=[],
                                     mysql_sockets=[], login_tries=False)
    col = ServiceCredentialsCollector(opts, AgentContext(state_dir=tmp_path / "state"), listeners=lambda: [],
                                      running=lambda: {"redis": [["redis-server", str(second)]]})
    assert weak(col) == {("redis", "16380"): 1}


@pytest.mark.integration
def test_mysqld_defaults_file_names_the_socket_and_skip_grant_tables(tmp_path: Path) -> None:
    """A MariaDB started with --defaults-file=<its own file>: the socket that file names (nowhere near the
    default paths) is found from the running command line and logged in to; skip-grant-tables set in a file the
    option file includes is a configuration finding that names that file and line."""
    if shutil.which("mariadbd", path="/usr/sbin:/usr/bin") is None:
        pytest.skip("mariadb-server is not installed")
    data, port = tmp_path / "mdb", free_port()
    subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root", "--skip-test-db",
                    "--auth-root-authentication-method=normal"], check=True, capture_output=True, timeout=120)
    (tmp_path / "odd").mkdir()
    sock = tmp_path / "odd" / "b.sock"
    (tmp_path / "b.conf.d").mkdir()
    cnf = tmp_path / "b.cnf"
    cnf.write_text(
        "[client]\nsocket=/nonexistent/client.sock\n\n"
        f"[mysqld]\ndatadir={data}\nsocket={sock}\nport={port}\nbind-address=127.0.0.1\nuser=root\n"
        f"log-error={tmp_path / 'b.err'}\npid-file={tmp_path / 'b.pid'}\ninnodb_buffer_pool_size=16M\n"
        f"skip-name-resolve\nskip-log-bin\n!includedir {tmp_path / 'b.conf.d'}\n"
    )

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(["/usr/sbin/mariadbd", f"--defaults-file={cnf}"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        wait_port(port, proc, tmp_path / "b.err")
        return proc

    def evaluate() -> tuple[dict[tuple[str, str], float], list[str]]:
        opts = ServiceCredentialsOptions(redis_configs=[], pg_hba_files=[], vsftpd_configs=[], tomcat_users_files=[],
                                         mysql_sockets=[], mysql_configs=[])
        col = ServiceCredentialsCollector(opts, AgentContext(state_dir=tmp_path / f"state{time.monotonic_ns()}"),
                                          listeners=lambda: [])
        status = weak(col)
        report = col.report()
        return status, [f.title for f in report.findings] if report else []

    proc = start()
    try:
        status, titles = evaluate()
        assert status.get(("mysql", "socket")) == 1, (status, titles)
        assert f"MySQL/MariaDB 本机 socket {sock} 可用root 账户空口令登录" in titles, titles
    finally:
        stop(proc)

    (tmp_path / "b.conf.d" / "50-reset.cnf").write_text("# left from a password reset\n[mariadb]\nskip_grant_tables\n")
    proc = start()
    try:
        status, titles = evaluate()
        where = f"{tmp_path / 'b.conf.d' / '50-reset.cnf'}:3"
        assert any("skip-grant-tables" in t and where in t for t in titles), titles
        assert status.get(("mysql", str(port))) == 1, status
    finally:
        stop(proc)

    # Not running: the same file is context only.
    opts = ServiceCredentialsOptions(redis_configs=[], pg_hba_files=[], vsftpd_configs=[], tomcat_users_files=[],
                                     mysql_sockets=[], mysql_configs=[str(cnf)], login_tries=False)
    col = ServiceCredentialsCollector(opts, AgentContext(state_dir=tmp_path / "state-off"), listeners=lambda: [],
                                      running=lambda: {})
    assert weak(col) == {}
    assert col.last is not None and any("未在运行" in n for n in col.last[2])
