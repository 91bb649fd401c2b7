"""The password audit end to end: real libcrypt hashes of every method in a test shadow file, the real
low-priority child process, the real state file. Nothing secret may leak into metrics, logs or state."""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.audit.runner import WorkItem, run_child
from agent.audit.runs import read_runs
from agent.catalog import render
from agent.collector import AgentContext
from agent.collectors.passwords import PasswordsCollector, PasswordsOptions
from agent.crypt import Libcrypt, load

# 2026-06-01: {user}@<year> candidates are for 2026, 2025, 2024.
CLOCK = 1780300800.0
CAPS = {"yescrypt": 14, "gost-yescrypt": 14, "bcrypt": 20, "scrypt": 12, "sha512crypt": 120, "sha256crypt": 120}


@dataclass
class Spec:
    name: str
    uid: int
    prefix: str | None  # None: no hash (field given verbatim)
    password: str
    field: str = ""
    shell: str = "/bin/bash"
    in_passwd: bool = False  # non-shadowed hash in /etc/passwd


def strong() -> str:
    return "Zx" + secrets.token_urlsafe(12)


def specs() -> list[Spec]:
    return [
        Spec("root", 0, "$y$", "admin@123"),
        Spec("alice", 1000, "$gy$", strong()),
        Spec("bob", 1001, "$6$", "bob@2026"),
        Spec("carol", 1002, "$5$", strong()),
        Spec("dave", 1003, "$2b$", "dave123"),
        Spec("erin", 1004, "$1$", "5201314"),
        Spec("frank", 1005, "", "woaini"),
        Spec("gina", 1006, None, "", field=""),
        Spec("hank", 1007, None, "", field="!$6$abcdefgh$notahashatall"),
        Spec("toor", 0, "$6$", strong()),
        Spec("daemon", 1, None, "", field="*", shell="/usr/sbin/nologin"),
        Spec("ivan", 1008, "$6$", ""),
        Spec("judy", 1009, None, "", field="!"),
        Spec("oldie", 1010, "$6$", "Aa123456", in_passwd=True),
        Spec("weird", 1011, None, "", field="$9$abcdefgh$zzzz"),
        Spec("backup", 34, "$6$", strong(), shell="/usr/sbin/nologin"),
    ]


EXPECTED = {
    "root": ["dictionary"],
    "alice": [],
    "bob": ["dictionary"],
    "carol": ["legacy_hash"],
    "dave": ["dictionary"],
    "erin": ["dictionary", "legacy_hash"],
    "frank": ["dictionary", "legacy_hash"],
    "gina": ["empty"],
    "hank": ["locked"],
    "toor": ["uid0_extra"],
    "daemon": ["locked"],
    "ivan": ["empty"],
    "judy": ["locked", "nopasswd_sudo"],
    "oldie": ["dictionary"],
    "weird": ["unsupported_hash"],
    "backup": [],
}
CLASSES = {"root": "root", "toor": "root", "daemon": "system", "backup": "system"}


@dataclass
class Host:
    root: Path
    specs: list[Spec]
    hashes: dict[str, str]

    def write(self) -> None:
        passwd, shadow = [], []
        for s in self.specs:
            pw = self.hashes.get(s.name, s.field)
            gid = 100 if s.uid >= 1000 else s.uid
            passwd.append(f"{s.name}:{pw if s.in_passwd else 'x'}:{s.uid}:{gid}::/home/{s.name}:{s.shell}")
            if not s.in_passwd:
                shadow.append(f"{s.name}:{pw}:20000:0:99999:7:::")
        (self.root / "passwd").write_text("\n".join(passwd) + "\n")
        (self.root / "shadow").write_text("\n".join(shadow) + "\n")


def make_host(tmp: Path, lib: Libcrypt, spec_list: list[Spec]) -> Host:
    etc = tmp / "etc"
    etc.mkdir()
    hashes = {}
    for s in spec_list:
        if s.prefix is not None:
            h = lib.crypt(s.password, lib.gensalt(s.prefix, 4 if s.prefix == "$2b$" else 0))
            assert h is not None
            hashes[s.name] = h
    (etc / "group").write_text("root:x:0:\nwheel:x:10:judy\nusers:x:100:\n")
    (etc / "login.defs").write_text("# test\nUID_MIN   1000\nUID_MAX 60000\n")
    (etc / "sudoers.d").mkdir()
    (etc / "sudoers").write_text("root ALL=(ALL:ALL) ALL\n@includedir " + str(etc / "sudoers.d") + "\n")
    (etc / "sudoers.d" / "wheel").write_text("%wheel ALL=(ALL) NOPASSWD: ALL\n")
    (etc / "sudoers.d" / "ignored.bak").write_text("alice ALL=(ALL) NOPASSWD: ALL\n")
    host = Host(etc, spec_list, hashes)
    host.write()
    return host


def collector(host: Host, state: Path, **kw: object) -> PasswordsCollector:
    opts = PasswordsOptions(
        passwd_file=str(host.root / "passwd"),
        shadow_file=str(host.root / "shadow"),
        group_file=str(host.root / "group"),
        login_defs_file=str(host.root / "login.defs"),
        sudoers_file=str(host.root / "sudoers"),
        **{"max_candidates": dict(CAPS), **kw},  # type: ignore[arg-type]
    )
    ctx = AgentContext(state_dir=state, hostname="zhenfu-web01", clock=lambda: CLOCK)
    return PasswordsCollector(opts, ctx)


@pytest.fixture(scope="module")
def lib() -> Libcrypt:
    return load()


def test_findings_for_every_method_and_nothing_secret_leaks(
    tmp_path: Path, lib: Libcrypt, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    spec_list = specs()
    host = make_host(tmp_path, lib, spec_list)
    state = tmp_path / "state"
    col = collector(host, state, expose_masked_names=True)
    assert col.report() is None  # nothing to say before a run
    out = col.new_metric_set()
    col.collect(out)
    assert col.last is not None
    got = {a.name: sorted(a.reasons) for a in col.last.accounts}
    assert got == EXPECTED
    classes = {a.name: a.klass for a in col.last.accounts}
    assert classes == {s.name: CLASSES.get(s.name, "human") for s in spec_list}

    assert out.get("shaobing_password_accounts", {"reason": "dictionary", "class": "human"}) == 5
    assert out.get("shaobing_password_accounts", {"reason": "dictionary", "class": "root"}) == 1
    assert out.get("shaobing_password_accounts", {"reason": "empty", "class": "human"}) == 2
    assert out.get("shaobing_password_accounts", {"reason": "uid0_extra", "class": "root"}) == 1
    assert out.get("shaobing_password_accounts", {"reason": "locked", "class": "system"}) == 1
    assert out.get("shaobing_password_accounts", {"reason": "legacy_hash", "class": "human"}) == 3
    assert out.get("shaobing_password_accounts", {"reason": "nopasswd_sudo", "class": "human"}) == 1
    assert out.get("shaobing_password_accounts", {"reason": "unsupported_hash", "class": "human"}) == 1
    assert out.get("shaobing_password_accounts", {"reason": "empty", "class": "system"}) == 0
    assert len(out.samples("shaobing_password_accounts")) == 21
    # Hashes: root bob carol dave erin frank toor ivan oldie backup + alice = 11.
    assert out.get("shaobing_password_accounts_checked") == 11
    assert out.get("shaobing_password_audit_pending_accounts") == 0
    assert out.get("shaobing_password_audit_budget_exhausted") == 0
    weak = {(dict(s.labels)["account"], dict(s.labels)["reason"]) for s in out.samples("shaobing_password_weak_account")}
    assert any(a.startswith("r***t~") and r == "dictionary" for a, r in weak)
    assert any(a.startswith("t***r~") and r == "uid0_extra" for a, r in weak)
    # Masked names stay distinct: every risky account has its own series (no two collapse into one label).
    assert len({a for a, _ in weak}) == len({acc.name for acc in col.last.accounts
                                            if set(acc.reasons) & {"empty", "dictionary", "legacy_hash",
                                                                   "uid0_extra", "nopasswd_sudo",
                                                                   "unsupported_hash"}})  # type: ignore[union-attr]

    report = col.report()
    assert report is not None
    titles = "\n".join(f.title for f in report.findings)
    assert "账户 root (UID 0, 超级用户): 使用弱口令" in titles
    assert "账户 judy" in titles and "alice" not in titles

    page = render(out.families()).decode()
    logs = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    state_text = "\n".join(p.read_text(errors="replace") for p in state.iterdir() if p.suffix == ".json")
    secrets_used = [s.password for s in spec_list if s.password] + list(host.hashes.values())
    secrets_used += [h.rsplit("$", 1)[0] for h in host.hashes.values() if h.startswith("$")]  # salts
    names_in_state = [s.name for s in spec_list]
    for text in (page, logs, state_text, str(report)):
        for secret in secrets_used:
            # Pure hex strings could collide with an HMAC key by chance; the state is checked structurally.
            if text is state_text and re.fullmatch(r"[0-9a-f]+", secret):
                continue
            assert secret not in text
    for name in names_in_state:
        assert name not in state_text
    doc = json.loads((state / "password_audit.json").read_text())
    assert set(doc) == {"format", "entries"}
    for key, val in doc["entries"].items():
        assert re.fullmatch(r"[0-9a-f]{64}", key) and set(val) <= {"v", "n"}
        # A position is kept only for accounts not found weak: where to resume, or how far "ok" got.
        assert ("n" in val) == (val["v"] in ("pending", "ok")) and isinstance(val.get("n", 0), int)
    for f in state.iterdir():
        assert f.stat().st_mode & 0o777 == 0o600, f


def test_cache_skips_unchanged_hashes_and_rechecks_only_a_changed_one(tmp_path: Path, lib: Libcrypt) -> None:
    spec_list = [
        Spec("root", 0, "$6$", strong()),
        Spec("alice", 1000, "$6$", strong()),
        Spec("bob", 1001, "$y$", "bob123"),
    ]
    host = make_host(tmp_path, lib, spec_list)
    state = tmp_path / "state"
    col = collector(host, state)
    out = col.new_metric_set()
    col.collect(out)
    first = out.get("shaobing_password_audit_last_hashes_computed")
    assert first is not None and first > 2 * CAPS["sha512crypt"] - 10

    out = col.new_metric_set()
    col.collect(out)
    assert out.get("shaobing_password_audit_last_hashes_computed") == 0
    assert out.get("shaobing_password_accounts_checked") == 3
    assert out.get("shaobing_password_accounts", {"reason": "dictionary", "class": "human"}) == 1

    # A new strong sha512crypt hash for alice: exactly her candidate cap is hashed, nobody else's.
    host.hashes["alice"] = lib.crypt(strong(), lib.gensalt("$6$")) or ""
    host.write()
    out = col.new_metric_set()
    col.collect(out)
    assert out.get("shaobing_password_audit_last_hashes_computed") == CAPS["sha512crypt"]
    # The state holds only current accounts' keys.
    assert len(json.loads((state / "password_audit.json").read_text())["entries"]) == 3


def test_budget_stops_reports_and_resumes(tmp_path: Path, lib: Libcrypt) -> None:
    spec_list = [Spec(f"user{i:02d}", 1000 + i, None, "") for i in range(24)]
    host = make_host(tmp_path, lib, [])
    for s in spec_list:
        pw = "user07@123" if s.name == "user07" else strong()
        host.hashes[s.name] = lib.crypt(pw, lib.gensalt("$6$", 1000)) or ""
    host.specs = spec_list
    host.write()
    col = collector(host, tmp_path / "state", cpu_budget=0.1, max_candidates={"sha512crypt": 100})
    runs = 0
    total_hashes = 0.0
    seen_exhausted = False
    while True:
        runs += 1
        out = col.new_metric_set()
        col.collect(out)
        total_hashes += out.get("shaobing_password_audit_last_hashes_computed") or 0
        pending = out.get("shaobing_password_audit_pending_accounts")
        if out.get("shaobing_password_audit_budget_exhausted") == 1:
            if not seen_exhausted:
                report = col.report()
                assert report is not None and any("CPU 预算用尽" in n for n in report.notes)
                assert "complete" not in read_runs(tmp_path / "state")["passwords"]
            seen_exhausted = True
            assert pending and pending > 0
            assert (out.get("shaobing_password_accounts_checked") or 0) + pending == 24
        else:
            assert pending == 0
            break
        assert runs < 40
    assert seen_exhausted and runs >= 2
    assert "complete" in read_runs(tmp_path / "state")["passwords"]
    assert out.get("shaobing_password_accounts_checked") == 24
    assert out.get("shaobing_password_accounts", {"reason": "dictionary", "class": "human"}) == 1
    # Resuming continues from the next candidate: no candidate is hashed twice for an account. The weak
    # account (user07, found at its 14th candidate) costs its whole cap too: equal work hides where it matched.
    assert total_hashes == 24 * 100


def test_a_budget_spent_during_the_padding_after_a_match_does_not_cut_it_short(lib: Libcrypt) -> None:
    # The match is the first candidate; one 5,000-round hash (~3 ms) spends the 1 ms budget, so the budget is
    # gone for the whole padding. A cut padding would make the hashes summed over the runs say where it matched.
    stored = lib.crypt("bob@2026", lib.gensalt("$6$", 5000)) or ""
    other = lib.crypt(strong(), lib.gensalt("$6$", 5000)) or ""
    weak = WorkItem("k-weak", stored, ["bob@2026"] + [f"x{i}" for i in range(59)], 0, 60)
    rest = WorkItem("k-rest", other, [f"y{i}" for i in range(60)], 0, 60)
    result = run_child([weak, rest], budget=0.001, wall=60)
    assert result.error is None
    assert result.verdicts["k-weak"] == ("weak", 0)
    assert result.hashes == 60  # the whole block (here the cap), and not one hash of the next account
    assert result.budget_exhausted
    assert result.verdicts.get("k-rest", ("pending", 0)) == ("pending", 0)


def test_child_runs_at_lowest_cpu_and_io_priority() -> None:
    code = (
        "import os, subprocess; from agent.audit.runner import lower_priority; lower_priority(); "
        "print(os.nice(0)); print(subprocess.run(['ionice', '-p', str(os.getpid())], capture_output=True, "
        "text=True, timeout=5).stdout.strip())"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    nice, io = res.stdout.split("\n", 1)
    assert nice.strip() == "19"
    assert io.strip() == "idle"


def test_malformed_lines_are_skipped_counted_and_named_and_the_rest_is_audited(tmp_path: Path, lib: Libcrypt) -> None:
    host = make_host(tmp_path, lib, [Spec("root", 0, "$6$", strong()), Spec("bob", 1001, "$6$", "bob123")])
    bob_hash = host.hashes["bob"]
    (host.root / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\nbroken:x:notanumber:0::/:/bin/sh\nbob:x:1001:100::/home/bob:/bin/bash\n"
    )
    shadow = (host.root / "shadow").read_text()
    (host.root / "shadow").write_text("garbage-without-colons-" + bob_hash[:12] + "\n" + shadow)
    col = collector(host, tmp_path / "state")
    out = col.new_metric_set()
    col.collect(out)  # one bad line used to disable the whole audit
    assert out.get("shaobing_password_audit_skipped_lines") == 2
    assert out.get("shaobing_password_accounts", {"reason": "dictionary", "class": "human"}) == 1
    report = col.report()
    assert report is not None
    notes = "\n".join(report.notes)
    assert "passwd:2: UID/GID is not a number" in notes and "shadow:1:" in notes
    assert bob_hash[:12] not in notes and "notanumber" not in notes  # where and what, never the line


def test_unreadable_files_give_clear_errors(tmp_path: Path, lib: Libcrypt) -> None:
    host = make_host(tmp_path, lib, [Spec("root", 0, "$6$", strong())])
    col = collector(host, tmp_path / "state", extra_wordlist=str(tmp_path / "missing.txt"))
    with pytest.raises(RuntimeError, match=r"extra_wordlist: cannot read .*missing.txt"):
        col.collect(col.new_metric_set())


def test_extra_wordlist_finds_site_passwords(tmp_path: Path, lib: Libcrypt) -> None:
    words = tmp_path / "site.txt"
    words.write_text("# site words\nzhenfu2026!\n")
    host = make_host(tmp_path, lib, [Spec("alice", 1000, "$6$", "zhenfu2026!"), Spec("bob", 1001, "$6$", "zhenfu@123")])
    col = collector(host, tmp_path / "state", extra_wordlist=str(words))
    col.collect(col.new_metric_set())
    assert col.last is not None
    assert {a.name: a.reasons for a in col.last.accounts} == {"alice": ["dictionary"], "bob": ["dictionary"]}
    assert os.stat(tmp_path / "state").st_mode & 0o077 == 0
    assert time.time() > 0


def test_unprivileged_agent_with_cap_dac_read_search(tmp_path: Path, lib: Libcrypt) -> None:
    """The hardened systemd unit: user nobody-like, CAP_DAC_READ_SEARCH only, shadow file root:root 0600."""
    import shutil

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop to an unprivileged user with one capability")
    host = make_host(tmp_path, lib, [Spec("alice", 1000, "$6$", "alice@123"), Spec("bob", 1001, "$6$", strong())])
    os.chmod(host.root / "shadow", 0o600)
    state = Path(tempfile.mkdtemp(prefix="shaobing-cap-"))
    try:
        os.chown(state, 65534, 65534)
        code = (
            "from pathlib import Path\n"
            "from agent.collector import AgentContext\n"
            "from agent.collectors.passwords import PasswordsCollector, PasswordsOptions\n"
            f"r = Path({str(host.root)!r})\n"
            "o = PasswordsOptions(passwd_file=str(r / 'passwd'), shadow_file=str(r / 'shadow'),\n"
            "    group_file=str(r / 'group'), login_defs_file=str(r / 'login.defs'), sudoers_file=str(r / 'sudoers'),\n"
            "    max_candidates={'sha512crypt': 40})\n"
            f"c = PasswordsCollector(o, AgentContext(state_dir=Path({str(state)!r}) / 's'))\n"
            "out = c.new_metric_set(); c.collect(out)\n"
            "print(out.get('shaobing_password_accounts', {'reason': 'dictionary', 'class': 'human'}),\n"
            "      out.get('shaobing_password_accounts_checked'))\n"
        )
        res = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=+dac_read_search",
             "--ambient-caps=+dac_read_search", sys.executable, "-c", code],
            capture_output=True, text=True, timeout=120, cwd=str(state),
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == ["1.0", "2.0"]
    finally:
        shutil.rmtree(state, ignore_errors=True)


def _numbers(doc: object) -> set[int]:
    if isinstance(doc, bool):
        return set()
    if isinstance(doc, int):
        return {doc}
    if isinstance(doc, dict):
        return set().union(*(_numbers(v) for v in doc.values())) if doc else set()
    if isinstance(doc, list):
        return set().union(*(_numbers(v) for v in doc)) if doc else set()
    return set()


def test_state_files_and_passwd_cannot_tie_a_dictionary_entry_to_an_account(tmp_path: Path, lib: Libcrypt) -> None:
    """The attack from the security review: read every state file, list each account's candidates from
    /etc/passwd, and try the candidate at every position the files mention. None may be the password."""
    from agent.audit.dictionary import load_dictionary

    planted = {"alice": "alice123", "bob": "123456", "carol": "admin@123", "dave": "Abc@1234"}
    spec_list = [Spec(name, 1000 + i, "$6$", pw) for i, (name, pw) in enumerate(planted.items())]
    host = make_host(tmp_path, lib, spec_list)
    state = tmp_path / "state"
    col = collector(host, state)
    out = col.new_metric_set()
    col.collect(out)
    assert out.get("shaobing_password_accounts", {"reason": "dictionary", "class": "human"}) >= 3
    positions = _numbers(json.loads((state / "password_audit.json").read_text(encoding="utf-8"))["entries"])
    dictionary = load_dictionary(os.uname().nodename, time.gmtime().tm_year)
    for line in (host.root / "passwd").read_text().splitlines():
        user = line.split(":", 1)[0]
        candidates = dictionary.candidates(user)
        tied = [n for n in positions if 0 <= n < len(candidates) and candidates[n] == planted.get(user)]
        assert not tied, (user, tied)
    # Nor does the work count: one account changes to a weak password, and the next run hashes as much as
    # it would for a strong one (its cap), not "position + 1".
    host.hashes["alice"] = lib.crypt("123456", lib.gensalt("$6$")) or ""
    host.write()
    out = col.new_metric_set()
    col.collect(out)
    assert out.get("shaobing_password_accounts", {"reason": "dictionary", "class": "human"}) >= 3
    assert out.get("shaobing_password_audit_last_hashes_computed") == CAPS["sha512crypt"]


def test_an_old_state_file_that_recorded_match_positions_is_rewritten_without_them(tmp_path: Path) -> None:
    from agent.audit.runner import ResultCache

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    old = {"format": 1, "entries": {"k1": {"v": "weak", "n": 17}, "k2": {"v": "pending", "n": 40},
                                    "k3": {"v": "empty", "n": 0}, "k4": {"v": "ok", "n": 120}}}
    (state / "password_audit.json").write_text(json.dumps(old))
    cache = ResultCache(state)
    loaded = cache.load()
    assert loaded["k1"] == ("weak", 0) and loaded["k2"] == ("pending", 40) and loaded["k4"] == ("ok", 120)
    on_disk = json.loads((state / "password_audit.json").read_text())["entries"]
    assert on_disk["k1"] == {"v": "weak"} and "17" not in (state / "password_audit.json").read_text()


def test_the_hashing_child_and_the_agent_write_no_core_dumps(tmp_path: Path) -> None:
    code = (
        "import resource, ctypes; from agent.audit.runner import no_core_dumps; no_core_dumps(undumpable=True); "
        "print(resource.getrlimit(resource.RLIMIT_CORE)); print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.split("\n")[:2] == ["(0, 0)", "0"]  # no core file; PR_GET_DUMPABLE = 0
    from tests.support.agent import AgentProcess

    with AgentProcess(tmp_path, {"collectors": {"health": {"interval": "1s"}}}) as agent:
        assert agent._proc is not None
        limits = Path(f"/proc/{agent._proc.pid}/limits").read_text()
    core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"], core


def test_the_passwords_township_attackers_try_first_are_found_with_the_default_caps(
    tmp_path: Path, lib: Libcrypt
) -> None:
    """What the Lynis comparison found passing: Abc@1234, huawei@123, and a Pinyin name with digits on an
    account with another name. Real yescrypt and sha512crypt hashes, the shipped corpus and default caps."""
    planted = [Spec("ops", 1001, "$y$", "Abc@1234"), Spec("netadmin", 1002, "$6$", "huawei@123"),
               Spec("clerk", 1003, "$6$", "zhangsan123"), Spec("root", 0, "$6$", strong())]
    host = make_host(tmp_path, lib, planted)
    opts = PasswordsOptions(passwd_file=str(host.root / "passwd"), shadow_file=str(host.root / "shadow"),
                            group_file=str(host.root / "group"), login_defs_file=str(host.root / "login.defs"),
                            sudoers_file=str(host.root / "sudoers"), pwquality_file=str(host.root / "pwquality.conf"),
                            cpu_budget=120.0)  # the default caps
    col = PasswordsCollector(opts, AgentContext(state_dir=tmp_path / "state"))
    out = col.new_metric_set()
    col.collect(out)
    assert out.get("shaobing_password_accounts", {"reason": "dictionary", "class": "human"}) == 3
    assert out.get("shaobing_password_accounts", {"reason": "dictionary", "class": "root"}) == 0
    coverage = out.get("shaobing_password_audit_coverage_ratio", {"class": "root"})
    assert coverage is not None and 0 < coverage < 1  # root's strong password: the top of the corpus, not all
    assert out.get("shaobing_password_audit_coverage_ratio", {"class": "human"}) == 1.0  # all three settled


def test_the_corpus_is_large_ranked_and_policy_ordered() -> None:
    from agent.audit.dictionary import Policy, load_dictionary

    d = load_dictionary("zf-web01", 2026)
    assert len(d.shipped) >= 10_000
    ranked = d.candidates("ops")
    for common in ("123456", "admin@123", "Abc@1234", "huawei@123", "zhangsan123", "1qaz@WSX", "Huawei@123"):
        assert common in ranked[:500], common  # within the yescrypt cap: found whatever the hash method
    assert "Admin@2024" in ranked[:2000]
    strict = load_dictionary("zf-web01", 2026, policy=Policy(min_length=8, min_classes=3))
    order = strict.candidates("ops")
    assert sorted(order) == sorted(ranked) and order[0] == ""  # reordered, nothing dropped
    first_refused = next(i for i, c in enumerate(order) if c and not strict.policy.allows(c))
    assert all(strict.policy.allows(c) for c in order[1:first_refused])
    assert order.index("Abc@1234") < order.index("123456")  # what the policy allows comes first
    assert strict.version != d.version  # a changed policy re-checks every account once


def test_policy_is_read_from_pwquality_and_login_defs(tmp_path: Path) -> None:
    from agent.audit.dictionary import read_policy

    (tmp_path / "pwquality.conf").write_text("# minlen = 9\nminlen = 10\nminclass=3\n")
    (tmp_path / "login.defs").write_text("PASS_MIN_LEN 6\n")
    assert read_policy(tmp_path / "pwquality.conf", tmp_path / "login.defs") == \
        __import__("agent.audit.dictionary", fromlist=["Policy"]).Policy(10, 3)
    assert read_policy(tmp_path / "missing", tmp_path / "login.defs").min_length == 6


def test_the_sites_own_names_in_pinyin_are_tried(tmp_path: Path, lib: Libcrypt, monkeypatch: pytest.MonkeyPatch) -> None:
    """Staff build passwords from where they work: with the agent's labels township=城关镇 and county=长安县,
    Chengguan@123 (yescrypt) and changan2026 (sha512crypt, phrase-aware Pinyin: 长安 is chang'an, not zhang'an)
    are found; without the labels the same caps pass them. pypinyin never loads into the agent process."""
    planted = [Spec("ops", 1001, "$y$", "Chengguan@123"), Spec("clerk", 1002, "$6$", "changan2026"),
               Spec("head", 1003, "$6$", "cgz@123")]
    host = make_host(tmp_path, lib, planted)
    caps = {"yescrypt": 90, "sha512crypt": 150}  # the planted ones sit at 75, 131 and 61

    def audit(state: Path, labels: tuple[str, ...], **kw: object) -> tuple[dict[str, list[str]], PasswordsCollector]:
        opts = PasswordsOptions(passwd_file=str(host.root / "passwd"), shadow_file=str(host.root / "shadow"),
                                group_file=str(host.root / "group"), login_defs_file=str(host.root / "login.defs"),
                                sudoers_file=str(host.root / "sudoers"), max_candidates=caps, cpu_budget=120.0,
                                **kw)  # type: ignore[arg-type]
        ctx = AgentContext(state_dir=state, hostname="web01", clock=lambda: CLOCK, site_labels=labels)
        col = PasswordsCollector(opts, ctx)
        col.collect(col.new_metric_set())
        assert col.last is not None
        return {a.name: a.reasons for a in col.last.accounts}, col

    without, _ = audit(tmp_path / "state0", ())
    assert without == {"ops": [], "clerk": [], "head": []}
    found, col = audit(tmp_path / "state1", ("城关镇", "长安县"))
    assert found == {"ops": ["dictionary"], "clerk": ["dictionary"], "head": ["dictionary"]}
    assert "pypinyin" not in sys.modules
    assert col.site_note is None
    # The same names given as the check's site_names instead of labels
    found, _ = audit(tmp_path / "state2", (), site_names=["城关镇", "长安县"])
    assert found["ops"] == ["dictionary"]
    # The cached stems are public place names, no password or hash
    cached = (tmp_path / "state1" / "site-words.json").read_text()
    assert "chengguan" in cached and "changan" in cached
    for secret in ("Chengguan@123", "changan2026", "cgz@123", *host.hashes.values()):
        for path in (tmp_path / "state1").rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path

    # No pypinyin for the converter: ASCII names are still used and the scan report says why.
    from agent.audit import site_words

    monkeypatch.setattr(site_words.sys, "executable", "/usr/bin/python3")
    if subprocess.run(["/usr/bin/python3", "-c", "import pypinyin"], capture_output=True).returncode == 0:
        pytest.skip("the system python3 has pypinyin")
    stems, why = site_words.site_stems(["城关镇", "zhenfu"], tmp_path / "state3")
    assert stems == ["zhenfu"] and why is not None and "pypinyin" in why
