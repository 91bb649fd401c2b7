#!/usr/bin/env python3
"""The 等保 self-check beside OpenSCAP (SCAP Security Guide, Debian 11 "standard" profile) and Lynis, on one
planted Debian 11 root: what each finds, and each run's wall and CPU time, in one run.

    sudo .venv/bin/python bench/baseline_vs_peers.py [--keep]

The root is the test suite's cached debootstrap of bullseye plus openssh-server, rsyslog, logrotate, sudo,
cron, telnetd (via openbsd-inetd) and rpcbind, installed once from Debian's archive and cached as
/var/cache/shaobing-test/bench-baseline-bullseye.tar.gz. Planted on a fresh copy: an empty password, a second
UID 0 account, PermitRootLogin yes, a NOPASSWD sudo rule, /etc/shadow readable by all; the rest is what the
packages leave as they are (no password aging or complexity, no lockout, no TMOUT, no auditd, four weeks of
logs, nothing forwarded, no anti-malware, telnet and rpcbind enabled, SSH open to every address).

Runs ``shaobing``'s baseline (level 3) on the root, ``oscap xccdf eval --profile standard`` with
``OSCAP_PROBE_ROOT=ROOT`` (what oscap-chroot does) and ssg-debian11-ds.xml (Debian packages openscap-scanner,
ssg-debian), and ``lynis audit system --quick`` inside the root (chroot, /proc mounted). Prints per weakness
whether each tool reported it, and the timings.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.baseline.engine import run_baseline  # noqa: E402
from agent.baseline.host import HostView  # noqa: E402

CACHE = Path("/var/cache/shaobing-test")
BASE = CACHE / "debian-bullseye.tar.gz"
BUILT = CACHE / "bench-baseline-bullseye.tar.gz"
SSG = Path("/usr/share/xml/scap/ssg/content/ssg-debian11-ds.xml")
PACKAGES = ("openssh-server", "rsyslog", "logrotate", "sudo", "cron", "telnetd", "openbsd-inetd", "rpcbind")
XCCDF = "{http://checklists.nist.gov/xccdf/1.2}"
RULE = "xccdf_org.ssgproject.content_rule_"

# weakness -> (our check ids, oscap rule ids, lynis test ids)
WEAKNESSES: dict[str, tuple[set[str], set[str], set[str]]] = {
    "空口令账户 empty password": ({"no_empty_password"}, set(), {"AUTH-9283"}),
    "第二个 UID 0 账户 second UID 0": ({"no_shared_root"}, set(), {"AUTH-9204"}),
    "root 可远程口令登录 PermitRootLogin yes": ({"root_remote_login"}, {"sshd_disable_root_login"}, {"SSH-7408"}),
    "口令永不过期 no password aging": ({"password_expiry"}, set(), {"AUTH-9286"}),
    "无口令复杂度 no complexity rule": ({"password_complexity"}, set(), {"AUTH-9262"}),
    "无登录失败锁定 no lockout": ({"login_lockout"}, set(), set()),
    "无会话超时 no idle timeout": ({"session_timeout"}, {"sshd_set_idle_timeout"}, {"SHLL-6220"}),
    "telnet 明文远程登录 telnet enabled": ({"remote_admin_encrypted"}, {"package_telnetd_removed"},
                                            {"INSE-8016", "INSE-8002"}),
    "免密 sudo NOPASSWD": ({"sudo_least_privilege"}, set(), set()),
    "shadow 所有人可读 /etc/shadow 0644": ({"key_file_modes"}, {"file_permissions_etc_shadow"}, {"FILE-7524"}),
    "无 auditd no audit daemon": ({"auditd_running"}, {"package_audit_installed", "service_auditd_enabled"},
                                  {"ACCT-9628"}),
    "日志只留 4 周 logs kept 28 days": ({"log_retention"}, set(), set()),
    "日志未转发 no remote logging": ({"remote_log_forwarding"}, set(), {"LOGG-2154"}),
    "无防恶意代码 no anti-malware": ({"anti_malware"}, set(), {"HRDN-7230"}),
    "多余服务 rpcbind enabled": ({"unneeded_services"}, set(), set()),
    "SSH 不限来源 SSH open to all": ({"management_restricted"}, set(), set()),
}


def sh(*argv: str, check: bool = True, timeout: float = 900, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), check=check, capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload]


def build_root() -> None:
    """Once per machine: the cached bullseye root plus the packages above, from Debian's archive."""
    if BUILT.exists():
        return
    if not BASE.exists():
        raise SystemExit(f"{BASE} missing: run tests/deploy/make_root.sh bullseye first")
    work = Path(tempfile.mkdtemp(prefix="sbt-bench-build-"))
    try:
        with tarfile.open(BASE) as tar:
            tar.extractall(work)  # noqa: S202 - our own cache
        shutil.copy("/etc/resolv.conf", work / "etc/resolv.conf")
        script = ("mount -t proc proc /proc; export DEBIAN_FRONTEND=noninteractive; apt-get update -q && "
                  f"apt-get install -y -q --no-install-recommends {' '.join(PACKAGES)}; rc=$?; umount /proc; exit $rc")
        sh("chroot", str(work), "/bin/sh", "-c", script, timeout=900)
        with tarfile.open(BUILT, "w:gz") as tar:
            tar.add(work, arcname=".")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def plant(root: Path) -> None:
    with open(root / "etc/passwd", "a") as fh:
        fh.write("sbt_empty:x:41005:41005::/home/sbt_empty:/bin/bash\ntoor:x:0:0::/root:/bin/bash\n"
                 "zhangsan:x:1000:1000::/home/zhangsan:/bin/bash\n")
    with open(root / "etc/shadow", "a") as fh:
        fh.write("sbt_empty::19700:0:99999:7:::\ntoor:$y$j9T$benchsalt$notarealhash0000000000000000000:19700:0:99999:7:::\n"
                 "zhangsan:$y$j9T$benchsalt$notarealhash0000000000000000000:19700:0:99999:7:::\n")
    os.chmod(root / "etc/shadow", 0o644)
    (root / "etc/ssh/sshd_config.d").mkdir(exist_ok=True)
    (root / "etc/ssh/sshd_config.d/sbt.conf").write_text("PermitRootLogin yes\n")
    (root / "etc/sudoers.d/sbt").write_text("zhangsan ALL=(ALL) NOPASSWD: ALL\n")
    os.chmod(root / "etc/sudoers.d/sbt", 0o440)


def timed(fn: Callable[[], object]) -> tuple[object, float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    out = fn()
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    cpu = sum((a.ru_utime + a.ru_stime) - (b.ru_utime + b.ru_stime) for a, b in zip(after, before))
    return out, wall, cpu


def run_ours(root: Path) -> dict[str, str]:
    result = run_baseline(HostView(root, root / "proc"), 3, hostname="bench")
    return {o.spec.id: o.result.status for c in result.clauses for o in c.checks}


def run_oscap(root: Path, tmp: Path) -> dict[str, str]:
    results = tmp / "oscap-results.xml"
    # What oscap-chroot (openscap-utils) does: every probe reads under OSCAP_PROBE_ROOT.
    env = dict(os.environ, OSCAP_PROBE_ROOT=str(root), OSCAP_EVALUATION_TARGET=f"chroot://{root}")
    sh("oscap", "xccdf", "eval", "--profile", "standard", "--results", str(results), str(SSG),
       check=False, timeout=900, env=env)
    out = {}
    for rr in ET.parse(results).iter(f"{XCCDF}rule-result"):
        out[rr.get("idref", "").replace(RULE, "")] = rr.findtext(f"{XCCDF}result", "")
    return out


def run_lynis(root: Path) -> set[str]:
    for src in ("/usr/sbin/lynis", "/usr/share/lynis", "/etc/lynis"):
        dst = root / src.lstrip("/")
        if Path(src).is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy(src, dst)
    script = ("mount -t proc proc /proc; lynis audit system --quick --no-colors --report-file /tmp/lynis-report.dat"
              " >/tmp/lynis.out 2>&1; umount /proc")
    sh("chroot", str(root), "/bin/sh", "-c", script, check=False, timeout=900)
    found = set()
    for line in (root / "tmp/lynis-report.dat").read_text(errors="replace").splitlines():
        if line.startswith(("warning[]=", "suggestion[]=")):
            found.add(line.split("=", 1)[1].split("|")[0])
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the planted root")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (chroot, oscap-chroot)")
    for tool in ("oscap", "lynis"):
        if shutil.which(tool) is None or not SSG.exists():
            raise SystemExit(f"{tool} or {SSG} missing: apt-get install openscap-scanner ssg-debian lynis")
    build_root()
    tmp = Path(tempfile.mkdtemp(prefix="sbt-baseline-bench-"))
    root = tmp / "root"
    root.mkdir()
    try:
        with tarfile.open(BUILT) as tar:
            tar.extractall(root)  # noqa: S202 - our own cache
        plant(root)
        ours, o_wall, o_cpu = timed(lambda: run_ours(root))
        oscap, s_wall, s_cpu = timed(lambda: run_oscap(root, tmp))
        lynis, l_wall, l_cpu = timed(lambda: run_lynis(root))
        # The whole command on this (live) machine: every collector the checks read runs first.
        shaobing = str(Path(sys.executable).with_name("shaobing"))
        _, f_wall, f_cpu = timed(lambda: sh(shaobing, "scan", "--baseline", "gbt22239-3", check=False, timeout=900))
        assert isinstance(ours, dict) and isinstance(oscap, dict) and isinstance(lynis, set)
        version = sh("oscap", "--version").stdout.splitlines()[0]
        lversion = sh("lynis", "--version", check=False).stdout.strip()
        print(f"root: Debian 11 (bullseye) + {', '.join(PACKAGES)}, planted")
        print(f"{'tool':<44} {'wall s':>7} {'CPU s':>7}  results")
        print(f"{'shaobing baseline gbt22239-3':<44} {o_wall:7.2f} {o_cpu:7.2f}  "
              f"{sum(v == 'fail' for v in ours.values())} fail / {len(ours)} checks")
        print(f"{'shaobing scan --baseline (live host, all)':<44} {f_wall:7.2f} {f_cpu:7.2f}  "
              "every collector, then the baseline")
        selected = {k: v for k, v in oscap.items() if v != "notselected"}
        print(f"{version + ' standard':<44} {s_wall:7.2f} {s_cpu:7.2f}  "
              f"{sum(v == 'fail' for v in selected.values())} fail / {len(selected)} rules in the profile")
        print(f"{'lynis ' + lversion + ' --quick':<44} {l_wall:7.2f} {l_cpu:7.2f}  "
              f"{len(lynis)} tests with a warning or suggestion")
        print()
        print(f"{'weakness':<44} {'shaobing':<9} {'oscap':<6} {'lynis':<6}")
        totals = [0, 0, 0]
        for name, (mine, rules, tests) in WEAKNESSES.items():
            hits = [any(ours.get(c) == "fail" for c in mine), any(oscap.get(r) == "fail" for r in rules),
                    bool(tests & lynis)]
            totals = [t + h for t, h in zip(totals, hits)]
            print(f"{name:<44} " + " ".join(f"{'yes' if h else 'no':<8}" for h in hits))
        n = len(WEAKNESSES)
        print(f"\nfound: shaobing {totals[0]}/{n}, oscap {totals[1]}/{n}, lynis {totals[2]}/{n}")
        planted_rules = set().union(*(r for _, r, _ in WEAKNESSES.values()))
        planted_tests = set().union(*(t for _, _, t in WEAKNESSES.values()))
        print("oscap fails beyond the plants: "
              + ", ".join(sorted(k for k, v in oscap.items() if v == "fail" and k not in planted_rules)))
        print("lynis tests beyond the plants: " + ", ".join(sorted(lynis - planted_tests)))
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
