"""deploy/py36_source.py: the agent as Python 3.6 source, every line where it was.

The installer tests run the result on 3.6, 3.7, 3.9 and 3.13; these check the rewrite itself, and that every agent
module compiles with a real CPython 3.6 (and imports the same names under 3.7 and 3.6 where those interpreters
and the agent's dependencies can be found).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "deploy"))
import py36_source  # noqa: E402

PY36 = Path.home() / ".pyenv" / "versions" / "3.6.15" / "bin" / "python3.6"

SAMPLE = '''"""doc"""
from __future__ import annotations

import dataclasses
from typing import Optional


@dataclasses.dataclass
class Config:
    names: list[str] = dataclasses.field(default_factory=list)
    port: Optional[int] = None
    label: "Forward" = None  # already a string: left as it is
    note: str = "城关镇"


def f(a: dict[str, int], *rest: tuple[int, ...], key: str | None = None, **kw: float) -> list[
    str
]:
    x: set[int] = set()
    return [str(a), str(rest), str(key), str(kw), str(x)]


def g(text: str = "乡镇: 政府", other: dict[
        str, list[int]] = {}) -> "str":
    return text
'''


def test_annotations_become_strings_and_lines_do_not_move() -> None:
    out = py36_source.transform(SAMPLE, "sample.py")
    assert "from __future__" not in out
    assert len(out.splitlines()) == len(SAMPLE.splitlines())
    tree = ast.parse(out)
    lines = {n.name: n.lineno for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert lines == {"Config": 9, "f": 16, "g": 23}
    ns: dict[str, object] = {}
    exec(compile(out, "sample.py", "exec", dont_inherit=True), ns)  # noqa: S102 - our own sample; not under
    # this module's own __future__ import (compile would inherit it)
    config = ns["Config"]
    assert config.__annotations__ == {"names": "list[str]", "port": "Optional[int]", "label": "Forward",  # type: ignore[attr-defined]
                                      "note": "str"}
    f = ns["f"]
    assert f.__annotations__ == {"a": "dict[str, int]", "rest": "tuple[int, ...]", "key": "str | None",  # type: ignore[attr-defined]
                                 "kw": "float", "return": "list[ str ]"}
    g = ns["g"]
    # A CJK default before an annotation: ast's columns are UTF-8 bytes, the rewrite counts them so.
    assert g.__annotations__ == {"text": "str", "other": "dict[ str, list[int]]", "return": "str"}  # type: ignore[attr-defined]
    assert g() == "乡镇: 政府"  # type: ignore[operator]


def test_other_future_imports_are_refused_with_the_line() -> None:
    with pytest.raises(py36_source.TransformError, match="line 1"):
        py36_source.transform("from __future__ import annotations, division\n", "x.py")
    with pytest.raises(py36_source.TransformError, match="x.py:1"):
        py36_source.transform("def (:\n", "x.py")


@pytest.mark.skipif(not PY36.exists(), reason=f"no CPython 3.6 at {PY36} (this machine image has it under pyenv)")
def test_every_agent_module_compiles_with_python_36(tmp_path: Path) -> None:
    sources = sorted((REPO / "agent").rglob("*.py"))
    out = tmp_path / "agent36"
    for src in sources:
        dest = out / src.relative_to(REPO)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(py36_source.transform(src.read_text(encoding="utf-8"), str(src)), encoding="utf-8")
        # The same source on this Python too: nothing the rewrite produces is 3.6-only.
        compile(dest.read_text(encoding="utf-8"), str(dest), "exec")
    # The untouched checkout does not compile on 3.6 (the reason this exists) ...
    raw = subprocess.run([str(PY36), "-m", "py_compile", str(REPO / "agent" / "compat.py")],
                         capture_output=True, text=True, timeout=60, check=False)
    assert raw.returncode != 0 and "annotations" in raw.stderr
    # ... and every rewritten module does.
    done = subprocess.run([str(PY36), "-m", "compileall", "-q", str(out)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(list(out.rglob("*.cpython-36.pyc"))) == len(sources)
