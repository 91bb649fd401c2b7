"""Account files, sudoers and the dictionary: the parsing the password audit builds on."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.audit.dictionary import load_dictionary
from agent.audit.shadow import AccountFileError, mask_name, parse_login_defs, read_accounts, read_groups
from agent.audit.sudoers import nopasswd_accounts


def test_account_states_classes_and_sources(tmp_path: Path) -> None:
    (tmp_path / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\n"
        "bin:x:2:2:bin:/bin:/usr/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        "svc:x:1500:1500::/srv:/usr/sbin/nologin\n"
        "ann:x:5000:5000::/home/ann:/bin/zsh\n"
        "rhel:x:5001:5001::/home/rhel:/bin/bash\n"
        "ghost:x:5002:5002::/home/ghost:/bin/bash\n"
        "legacy:$1$abc$defghijklmnopqrstuv:5003:5003::/home/legacy:/bin/sh\n"
        "+nisuser::::::\n"
        "root:x:0:0:duplicate:/root:/bin/sh\n"
    )
    (tmp_path / "shadow").write_text(
        "root:$6$salt$hash:20000::::::\nbin:*:20000::::::\nnobody:*:20000::::::\nsvc:$y$j9T$s$h:1::::::\n"
        "ann::20000::::::\nrhel:!!:20000::::::\n"
    )
    (tmp_path / "login.defs").write_text("UID_MIN 2000 # site policy\nUID_MAX 0x2710\n")
    accs = {a.name: a for a in read_accounts(tmp_path / "passwd", tmp_path / "shadow", tmp_path / "login.defs")}
    assert list(accs) == ["root", "bin", "nobody", "svc", "ann", "rhel", "ghost", "legacy"]
    assert {n: (a.klass, a.state) for n, a in accs.items()} == {
        "root": ("root", "hash"),
        "bin": ("system", "locked"),
        "nobody": ("system", "locked"),
        "svc": ("system", "hash"),  # UID below this site's UID_MIN 2000
        "ann": ("human", "empty"),
        "rhel": ("human", "locked"),
        "ghost": ("human", "locked"),  # shadowed, no shadow line: cannot log in with a password
        "legacy": ("human", "hash"),
    }
    assert accs["legacy"].source.endswith("passwd") and accs["root"].source.endswith("shadow")
    assert "$6$" not in repr(accs["root"])  # the hash never shows up in a repr (logs, tracebacks)
    assert parse_login_defs("UID_MIN x\n") == parse_login_defs("")


def test_bad_lines_name_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\nshort:x:1\n")
    with pytest.raises(AccountFileError, match=r"passwd:2: expected at least 7"):
        read_accounts(tmp_path / "passwd", None)
    with pytest.raises(AccountFileError, match="cannot read"):
        read_accounts(tmp_path / "missing", None)
    (tmp_path / "group").write_text("wheel:x:ten:\n")
    with pytest.raises(AccountFileError, match=r"group:1: GID of 'wheel'"):
        read_groups(tmp_path / "group")


def test_nopasswd_rules_with_aliases_groups_includes_and_defaults(tmp_path: Path) -> None:
    d = tmp_path / "sudoers.d"
    d.mkdir()
    (tmp_path / "sudoers").write_text(
        "Defaults env_reset\n"
        "User_Alias OPS = carol, %ops\n"
        "root ALL=(ALL:ALL) ALL\n"
        "alice, bob ALL = (ALL) ALL\n"
        "OPS ALL=(root) NOPASSWD: /usr/bin/systemctl restart nginx\n"
        "#1001 ALL=(ALL) \\\n    NOPASSWD: ALL\n"
        f"#includedir {d}\n"
        "# eve ALL=(ALL) NOPASSWD: ALL\n"
    )
    (d / "90-deploy").write_text("Defaults:deploy !authenticate\n")
    (d / "README.dpkg-dist").write_text("mallory ALL=(ALL) NOPASSWD: ALL\n")  # names with "." are skipped
    accounts = [("alice", 1000, 100), ("bob", 1001, 100), ("carol", 1002, 100), ("dan", 1003, 300),
                ("deploy", 1004, 100), ("eve", 1005, 100), ("mallory", 1006, 100)]  # fmt: skip
    groups = {"ops": (300, []), "users": (100, [])}
    found = nopasswd_accounts(tmp_path / "sudoers", accounts, groups)
    assert sorted(found) == ["bob", "carol", "dan", "deploy"]
    assert found["bob"].endswith("sudoers:6") and found["deploy"].endswith("90-deploy:1")


def test_defaults_not_authenticate_covers_everyone(tmp_path: Path) -> None:
    (tmp_path / "sudoers").write_text("Defaults !authenticate\n")
    assert sorted(nopasswd_accounts(tmp_path / "sudoers", [("a", 1, 1), ("b", 2, 2)], {})) == ["a", "b"]
    assert nopasswd_accounts(tmp_path / "missing", [("a", 1, 1)], {}) == {}


def test_candidates_order_and_version() -> None:
    d = load_dictionary("zhenfu-web01.example", 2026)
    c = d.candidates("wang")
    assert c[0] == "" and c[1] == "123456"
    assert c.index("wang") < c.index("wang@2026") < c.index("zhenfu@123") < c.index("woaini1314")
    assert len(c) == len(set(c))
    assert load_dictionary("zhenfu-web01.example", 2027).version != d.version
    assert load_dictionary("zhenfu-web01.example", 2026).version == d.version
    assert mask_name("root") == "r***t" and mask_name("ab") == "a***"
    key = b"k" * 32
    # Two accounts that mask alike stay apart with the host key; the same account keeps its suffix.
    assert mask_name("sbt_a", key) != mask_name("sectest_alpha", key)
    assert mask_name("sbt_a", key).startswith("s***a~") and mask_name("sbt_a", key) == mask_name("sbt_a", key)
    assert mask_name("sbt_a", key) != mask_name("sbt_a", b"x" * 32)  # keyed: not the same on another host


def test_shipped_dictionary_cites_sources_and_has_no_blank_entries() -> None:
    text = (Path(__file__).resolve().parents[2] / "agent" / "data" / "weak_passwords.txt").read_text()
    assert "USENIX Security 2019" in text
    assert "USENIX" not in "".join(load_dictionary("h", 2026).shipped)  # the header is not read as candidates
    words = list(load_dictionary("h", 2026).shipped)
    assert words[:3] == ["123456", "admin", "root"] and len(words) == len(set(words))
