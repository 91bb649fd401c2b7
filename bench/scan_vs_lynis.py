#!/usr/bin/env python3
"""`shaobing scan` beside `lynis audit system --quick` on the same planted host: what each finds, wall time.

    sudo .venv/bin/python bench/scan_vs_lynis.py [--keep]

Plants, on this machine (root needed; everything is removed again at the end unless --keep): weak passwords
township attackers try first (Abc@1234, huawei@123, a Pinyin name zhangsan123 on another account, the site's
own name Chengguan@123), an empty password, a second UID 0 account, a NOPASSWD sudo rule, a world-writable
file in /etc/cron.d and directory in /etc, a SUID binary no package owns, an authorized_keys others can write,
PermitRootLogin yes in an sshd drop-in, a password-less Redis renamed ``cache-daemon`` on 0.0.0.0:16379, an
anonymous vsftpd renamed ``file-daemon`` on 0.0.0.0:16021, a MariaDB started with its own --defaults-file
that includes skip-grant-tables, a hand-copied nginx 1.22 (end of life) under /opt and a Python 3.7 conda
environment under /opt. Then runs both tools (Lynis 3.x from Debian's ``lynis`` package) and prints, per
weakness, whether each tool reported it (a finding/warning/suggestion naming it), with the line that did.
Loopback and this host only.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.crypt import load  # noqa: E402

BENCH = Path("/opt/sbt-bench")
USERS = {  # name -> (uid, hash prefix, password)
    "sbt_ops": (41001, "$y$", "Abc@1234"),
    "sbt_net": (41002, "$6$", "huawei@123"),
    "sbt_clerk": (41003, "$6$", "zhangsan123"),
    "sbt_town": (41004, "$y$", "Chengguan@123"),
    "sbt_empty": (41005, "", ""),
}
ROOT0 = "sbt_root0"
FILES = {
    "sudoers": Path("/etc/sudoers.d/sbt-bench"),
    "cron": Path("/etc/cron.d/sbt-bench"),
    "etcdir": Path("/etc/sbt-bench.d"),
    "suid": Path("/usr/local/bin/sbt-bench-suid"),
    "sshd": Path("/etc/ssh/sshd_config.d/sbt-bench.conf"),
}
REDIS_PORT, FTP_PORT, DB_PORT = 16379, 16021, 16306


def sh(*argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), check=check, capture_output=True, text=True, timeout=timeout)


def wait_port(port: int, timeout: float = 20.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


def plant(procs: list[subprocess.Popen[bytes]]) -> dict[str, str]:
    lib = load()
    for name, (uid, prefix, password) in USERS.items():
        sh("useradd", "-m", "-u", str(uid), "-s", "/bin/bash", name)
        stored = lib.crypt(password, lib.gensalt(prefix)) if prefix else ""
        sh("usermod", "-p", stored or "", name)
    sh("useradd", "-o", "-u", "0", "-g", "0", "-M", "-d", "/root", "-s", "/bin/bash", ROOT0)
    sh("usermod", "-p", lib.crypt("Zq-" + os.urandom(12).hex(), lib.gensalt("$y$")) or "!", ROOT0)
    FILES["sudoers"].write_text("sbt_ops ALL=(ALL) NOPASSWD: ALL\n")
    FILES["sudoers"].chmod(0o440)
    FILES["cron"].write_text("*/5 * * * * root /usr/bin/true\n")
    FILES["cron"].chmod(0o666)
    FILES["etcdir"].mkdir()
    FILES["etcdir"].chmod(0o777)
    shutil.copy("/usr/bin/true", FILES["suid"])
    FILES["suid"].chmod(0o4755)
    ssh = Path("/home/sbt_clerk/.ssh")
    ssh.mkdir(mode=0o700)
    (ssh / "authorized_keys").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchBenchBenchBenchBench x\n")
    (ssh / "authorized_keys").chmod(0o666)
    shutil.chown(ssh, "sbt_clerk")
    if FILES["sshd"].parent.is_dir():
        FILES["sshd"].write_text("PermitRootLogin yes\nPasswordAuthentication yes\n")

    (BENCH / "bin").mkdir(parents=True, mode=0o755)
    (BENCH / "run").mkdir(mode=0o755)
    shutil.copy(shutil.which("redis-server") or "/usr/bin/redis-server", BENCH / "bin" / "cache-daemon")
    procs.append(subprocess.Popen([str(BENCH / "bin" / "cache-daemon"), "--port", str(REDIS_PORT), "--bind", "0.0.0.0",
                                   "--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir", str(BENCH)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    shutil.copy("/usr/sbin/vsftpd", BENCH / "bin" / "file-daemon")
    for d in ("ftproot", "ftpempty"):
        (BENCH / d).mkdir(mode=0o755)
    (BENCH / "ftp.conf").write_text(
        f"listen=YES\nlisten_ipv6=NO\nlisten_port={FTP_PORT}\nanonymous_enable=YES\nanon_root={BENCH / 'ftproot'}\n"
        f"local_enable=NO\nwrite_enable=NO\nsecure_chroot_dir={BENCH / 'ftpempty'}\nseccomp_sandbox=NO\n"
        "isolate=NO\nisolate_network=NO\nbackground=NO\nxferlog_enable=NO\npasv_enable=NO\n")
    procs.append(subprocess.Popen([str(BENCH / "bin" / "file-daemon"), str(BENCH / "ftp.conf")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    data = BENCH / "db"
    sh("mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root", "--skip-test-db",
       "--auth-root-authentication-method=normal")
    (BENCH / "db.conf.d").mkdir()
    (BENCH / "db.conf.d" / "50-reset.cnf").write_text("[mariadb]\nskip-grant-tables\n")
    (BENCH / "db.cnf").write_text(
        f"[mysqld]\ndatadir={data}\nsocket={BENCH / 'run' / 'db.sock'}\nport={DB_PORT}\nbind-address=127.0.0.1\n"
        f"user=root\nlog-error={BENCH / 'db.err'}\npid-file={BENCH / 'db.pid'}\ninnodb_buffer_pool_size=16M\n"
        f"skip-log-bin\n!includedir {BENCH / 'db.conf.d'}\n")
    procs.append(subprocess.Popen(["/usr/sbin/mariadbd", f"--defaults-file={BENCH / 'db.cnf'}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    if Path("/usr/sbin/nginx").exists():
        (BENCH / "nginx" / "sbin").mkdir(parents=True)
        shutil.copy("/usr/sbin/nginx", BENCH / "nginx" / "sbin" / "nginx")
    py37 = Path("/root/.pyenv/versions/3.7.16/bin/python3.7")
    if py37.exists():
        sh(str(py37), "-m", "venv", "--copies", "--without-pip", "/opt/miniconda3-sbt/envs/legacy")
    for port in (REDIS_PORT, FTP_PORT, DB_PORT):
        wait_port(port)
    return {"lynis": shutil.which("lynis") or ""}


def cleanup(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
    for name in [*USERS, ROOT0]:
        sh("userdel", "-f", *(["-r"] if name != ROOT0 else []), name, check=False)
    for path in FILES.values():
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    shutil.rmtree(BENCH, ignore_errors=True)
    shutil.rmtree("/opt/miniconda3-sbt", ignore_errors=True)


# weakness -> (predicate on shaobing's report lines, predicate on Lynis' warning/suggestion lines)
Pred = Callable[[str], bool]


def has(*words: str) -> Pred:
    return lambda line: all(w.lower() in line.lower() for w in words)


WEAKNESSES: list[tuple[str, Pred, Pred]] = [
    ("weak password Abc@1234 (yescrypt)", has("sbt_ops", "弱口令"), has("sbt_ops")),
    ("weak password huawei@123", has("sbt_net", "弱口令"), has("sbt_net")),
    ("Pinyin name zhangsan123 on another account", has("sbt_clerk", "弱口令"), has("sbt_clerk")),
    ("site name Chengguan@123 (township 城关镇)", has("sbt_town", "弱口令"), has("sbt_town")),
    ("empty password", has("sbt_empty", "空口令"), lambda s: "sbt_empty" in s or "without password" in s.lower()),
    ("second UID 0 account", has(ROOT0, "UID 为 0"), lambda s: "uid 0" in s.lower() or ROOT0 in s),
    ("NOPASSWD sudo rule", has("NOPASSWD"), has("NOPASSWD")),
    ("world-writable file in /etc/cron.d", has(str(FILES["cron"])), lambda s: "cron" in s.lower() and
     ("writ" in s.lower() or "permission" in s.lower())),
    ("world-writable directory in /etc", has(str(FILES["etcdir"])), has(str(FILES["etcdir"]))),
    ("SUID binary owned by no package", has(str(FILES["suid"])), has(str(FILES["suid"]))),
    ("authorized_keys writable by others", has("authorized_keys"), has("authorized_keys")),
    ("PermitRootLogin yes", has("PermitRootLogin yes"), has("PermitRootLogin")),
    ("Redis without password, renamed, 0.0.0.0:16379", has("redis", str(REDIS_PORT)),
     lambda s: "redis" in s.lower()),
    ("anonymous FTP, renamed, 0.0.0.0:16021", has("ftp", str(FTP_PORT)), lambda s: "ftp" in s.lower()),
    ("MariaDB with skip-grant-tables (own --defaults-file)", has("skip-grant-tables"),
     lambda s: "mysql" in s.lower() or "mariadb" in s.lower()),
    ("hand-copied nginx 1.22 (end of life)", has("nginx", "停止"), has("nginx")),
    ("Python 3.7 conda env under /opt (end of life)", has("/opt/miniconda3-sbt", "3.7"), has("python")),
]


def run_scan(tmp: Path) -> tuple[float, list[str]]:
    conf = tmp / "agent.yml"
    conf.write_text(f"state_dir: {tmp / 'state'}\nlabels:\n  township: 城关镇\n")
    t0 = time.perf_counter()
    res = subprocess.run([str(REPO / ".venv" / "bin" / "shaobing"), "scan", "--config", str(conf)],
                         capture_output=True, text=True, timeout=1200)
    wall = time.perf_counter() - t0
    lines = [ln.strip() for ln in res.stdout.splitlines() if ln.strip().startswith("[")]
    # A finding is a "[级别] title" line; the next lines (原因/处理) belong to it.
    return wall, lines


def run_lynis(tmp: Path) -> tuple[float, list[str]]:
    report, log = tmp / "lynis-report.dat", tmp / "lynis.log"
    t0 = time.perf_counter()
    subprocess.run(["lynis", "audit", "system", "--quick", "--no-colors", "--report-file", str(report),
                    "--logfile", str(log)], capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - t0
    lines = [ln for ln in report.read_text(errors="replace").splitlines()
             if ln.startswith(("warning[]=", "suggestion[]="))]
    return wall, lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", action="store_true", help="leave the planted weaknesses in place")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the bench plants accounts and files on this host")
    if shutil.which("lynis") is None:
        raise SystemExit("lynis is not installed (apt-get install lynis)")
    if BENCH.exists() or Path("/home/sbt_ops").exists():
        raise SystemExit(f"{BENCH} or sbt_* accounts exist: an earlier run was kept; remove them first")
    procs: list[subprocess.Popen[bytes]] = []
    tmp = Path(tempfile.mkdtemp(prefix="sbt-lynis-"))
    try:
        plant(procs)
        scan_wall, scan_lines = run_scan(tmp)
        lynis_wall, lynis_lines = run_lynis(tmp)
        version = sh("lynis", "--version", check=False).stdout.strip()
        print(f"shaobing scan: {scan_wall:.1f} s, {len(scan_lines)} findings; lynis {version} --quick: "
              f"{lynis_wall:.1f} s, {len(lynis_lines)} warnings+suggestions")
        print(f"{'weakness':<55} {'shaobing':<9} {'lynis':<6}")
        totals = [0, 0]
        for name, ours, theirs in WEAKNESSES:
            a = next((ln for ln in scan_lines if ours(ln)), None)
            b = next((ln for ln in lynis_lines if theirs(ln)), None)
            totals[0] += a is not None
            totals[1] += b is not None
            print(f"{name:<55} {'yes' if a else 'NO':<9} {'yes' if b else 'no':<6}")
            for who, line in (("  shaobing:", a), ("  lynis:   ", b)):
                if line:
                    print(who, re.sub(r"\s+", " ", line)[:150])
        print(f"found: shaobing {totals[0]}/{len(WEAKNESSES)}, lynis {totals[1]}/{len(WEAKNESSES)}; "
              f"wall time shaobing/lynis = {scan_wall / lynis_wall:.2f}")
        return 0
    finally:
        if not args.keep:
            cleanup(procs)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
