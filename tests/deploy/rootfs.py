"""Fresh Debian roots for installer tests: unpack a cached debootstrap tarball, run commands in it offline.

``make_root.sh SUITE`` builds each root at most once per machine (about 75 s each, cached as
``/var/cache/shaobing-test/debian-SUITE.tar.gz``); a test unpacks its own copy (about 2 s). ``DebianRoot.run``
executes a shell script inside the root in fresh network, mount and PID namespaces: only a loopback
interface exists (the network is cut), and every process started there dies with the namespace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

# Paths that are not the installer's business: kernel filesystems, scratch space, the bundle we copied in,
# and the shadow-utils backups (passwd-, group-, ...) that useradd/userdel rewrite on every change.
_IGNORED_TOP = {"proc", "dev", "tmp", "run", "bundle", "sys"}
_IGNORED_FILES = {"etc/passwd-", "etc/group-", "etc/shadow-", "etc/gshadow-", "etc/subuid-", "etc/subgid-"}


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def root_tarball(suite: str) -> Path:
    proc = subprocess.run(["bash", str(HERE / "make_root.sh"), suite], capture_output=True, text=True,
                          timeout=1500, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"cannot build the Debian {suite} root:\n{proc.stderr[-3000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


def unpack_bundle(tarball: Path, into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-C", str(into), "--strip-components=1", "-xzf", str(tarball)], check=True, timeout=120)


class DebianRoot:
    def __init__(self, suite: str, path: Path) -> None:
        self.suite = suite
        self.path = path
        path.mkdir(parents=True)
        subprocess.run(["tar", "-C", str(path), "-xzf", str(root_tarball(suite))], check=True, timeout=300)

    def add_bundle(self, tarball: Path) -> None:
        target = self.path / "bundle"
        if target.exists():
            shutil.rmtree(target)
        unpack_bundle(tarball, target)

    def run(self, script: str, *, user: str | None = None, timeout: float = 240) -> Result:
        """Run ``bash -c script`` inside the root, offline (loopback only), as root or as ``user``."""
        chroot = ["chroot"] + ([f"--userspec={user}"] if user else []) + [str(self.path)]
        inner = " ".join([
            "ip link set lo up &&",
            f"mount -t proc proc {self.path}/proc &&",
            "exec", *chroot,
            "/usr/bin/env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME=/root", "LANG=C.UTF-8", "bash", "-c", '"$0"',
        ])
        cmd = ["unshare", "--net", "--mount", "--pid", "--fork", "--propagation", "private", "sh", "-c", inner,
               script]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                              env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def files(self) -> set[str]:
        """Every path in the root (relative), except the ones no installer should be judged on."""
        out: set[str] = set()
        for dirpath, dirnames, filenames in os.walk(self.path):
            rel = os.path.relpath(dirpath, self.path)
            if rel == ".":
                dirnames[:] = [d for d in dirnames if d not in _IGNORED_TOP]
                rel = ""
            for name in dirnames + filenames:
                path = f"{rel}/{name}" if rel else name
                if path not in _IGNORED_FILES:
                    out.add(path)
        return out

    def read(self, rel: str) -> str:
        return (self.path / rel).read_text(encoding="utf-8")

    def remove(self) -> None:
        subprocess.run(["rm", "-rf", "--one-file-system", str(self.path)], check=False, timeout=120)
