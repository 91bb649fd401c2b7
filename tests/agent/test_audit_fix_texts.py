"""The fix texts say what works on the host: checked against real shadow-utils in a fresh Debian root.

An extra UID 0 account ("toor") cannot be removed with plain `userdel toor` — it shares root's UID, so userdel
always finds "processes" of it and exits 8 — which is why the audit's fix text says vipw / vipw -s (or userdel -f).
Both ways are followed here, and root must be untouched afterwards.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from agent.collectors.passwords import _REASON_TEXT
from tests.deploy.rootfs import DebianRoot

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare"),
]

ADD_TOOR = (
    "echo 'toor:x:0:0:backdoor:/root:/bin/bash' >> /etc/passwd && "
    "echo 'toor:$6$salt$abc:19000:0:99999:7:::' >> /etc/shadow"
)


def test_uid0_alias_fix_text_matches_what_shadow_utils_does(tmp_path: Path) -> None:
    fix = _REASON_TEXT["uid0_extra"][2]
    assert "vipw" in fix and "vipw -s" in fix and "userdel -f" in fix
    root = DebianRoot("bullseye", tmp_path / "root")
    plain = root.run(f"{ADD_TOOR} && userdel toor; echo rc=$?")
    assert "rc=8" in plain.output, plain.output  # what the old fix text told people to run
    # vipw's edit, as a script: the passwd and shadow lines of the alias go, root stays.
    edited = root.run(
        "sed -i '/^toor:/d' /etc/passwd && sed -i '/^toor:/d' /etc/shadow; "
        "getent passwd toor; echo gone=$?; getent passwd root; grep -c '^root:' /etc/shadow"
    )
    assert "gone=2" in edited.output and "root:x:0:0:" in edited.output and edited.stdout.strip().endswith("1")
    forced = root.run(
        f"{ADD_TOOR} && userdel -f toor; echo rc=$?; getent passwd toor; echo gone=$?; "
        "getent passwd root; grep -c '^root:' /etc/shadow; test -d /root && echo home-kept"
    )
    assert "rc=0" in forced.output and "gone=2" in forced.output, forced.output
    assert "root:x:0:0:" in forced.output and "home-kept" in forced.output
