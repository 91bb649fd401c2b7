"""Turn the agent's source into source that Python 3.6 (CentOS 7) runs, keeping every line where it was.

    python deploy/py36_source.py wheel dist/shaobing-0.1.0-py3-none-any.whl   # rewrite the agent in the wheel
    python deploy/py36_source.py check FILE.py ...                             # transform, print nothing if fine

The agent is written for Python 3.7+ with ``from __future__ import annotations`` (PEP 563: annotations are kept
as strings and never evaluated). Python 3.6 has no such import, so it would evaluate ``list[str]`` and fail. This
does by hand what the import does: each annotation becomes a string literal of its own source text, and the import
goes. The meaning is the same on every Python (``__annotations__`` holds the same strings as under PEP 563), so the
bundle ships one agent for 3.6 to 3.13 and the installer tests on 3.9 and 3.13 run the same code as CentOS 7.

Line numbers do not move (a multi-line annotation becomes a one-line string followed by backslash continuations),
so a traceback from a township host points at the checkout's lines. Needs Python 3.8+ to run (ast end positions);
the bundle builder runs it. Only the ``agent`` package is rewritten; relay, report and dashboards need 3.9+.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import sys
import zipfile
from pathlib import Path

PACKAGE = "agent/"


class TransformError(ValueError):
    pass


def _annotations(tree: ast.AST) -> list[ast.expr]:
    found: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
                if arg is not None and arg.annotation is not None:
                    found.append(arg.annotation)
            if node.returns is not None:
                found.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            found.append(node.annotation)
    # A string already is what PEP 563 makes of an annotation: quoting it again would change its meaning.
    return [n for n in found if not (isinstance(n, ast.Constant) and isinstance(n.value, str))]


def _future_imports(tree: ast.Module) -> list[ast.ImportFrom]:
    out = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            names = {alias.name for alias in node.names}
            if names != {"annotations"}:
                raise TransformError(f"line {node.lineno}: only 'from __future__ import annotations' is handled")
            out.append(node)
    return out


def transform(source: str, filename: str = "<source>") -> str:
    """The 3.6 form of ``source``; raises TransformError (naming the line) if it cannot be made."""
    try:
        tree = ast.parse(source, filename)
    except SyntaxError as exc:
        raise TransformError(f"{filename}:{exc.lineno}: {exc.msg}") from exc
    # ast offsets are UTF-8 byte columns: edit the bytes of each line.
    lines = [line.encode("utf-8") for line in source.splitlines(keepends=True)]
    edits: list[tuple[int, int, int, int, bytes]] = []
    for node in _annotations(tree):
        assert node.end_lineno is not None and node.end_col_offset is not None
        segment = ast.get_source_segment(source, node)
        if segment is None:
            raise TransformError(f"{filename}:{node.lineno}: annotation without source")
        text = " ".join(part.strip() for part in segment.splitlines())
        extra = node.end_lineno - node.lineno
        replacement = repr(text) + " \\\n" * extra
        edits.append((node.lineno, node.col_offset, node.end_lineno, node.end_col_offset, replacement.encode()))
    for node in _future_imports(tree):
        assert node.end_lineno is not None and node.end_col_offset is not None
        if node.end_lineno != node.lineno:
            raise TransformError(f"{filename}:{node.lineno}: the __future__ import must be on one line")
        edits.append((node.lineno, node.col_offset, node.end_lineno, node.end_col_offset, b"pass"))
    # Annotations never nest in one another, so the spans are disjoint: apply them from the end.
    for start_line, start_col, end_line, end_col, new in sorted(edits, reverse=True):
        head = lines[start_line - 1][:start_col]
        tail = lines[end_line - 1][end_col:]
        lines[start_line - 1 : end_line] = [head + new + tail]
    out = b"".join(lines).decode("utf-8")
    _check_same_shape(tree, out, filename)
    return out


def _check_same_shape(before: ast.Module, after_source: str, filename: str) -> None:
    """Every function and class is on the same line as before, and no annotation is left to evaluate."""
    after = ast.parse(after_source, filename)

    def defs(tree: ast.AST) -> list[tuple[str, int]]:
        return [(n.name, n.lineno) for n in ast.walk(tree)
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]

    if defs(before) != defs(after):
        raise TransformError(f"{filename}: definitions moved")
    if _annotations(after) or any(f.module == "__future__" for f in ast.walk(after) if isinstance(f, ast.ImportFrom)):
        raise TransformError(f"{filename}: an annotation or the __future__ import is left")


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def rewrite_wheel(path: Path) -> int:
    """Rewrite the agent package in a wheel in place (RECORD updated); returns the number of files changed."""
    with zipfile.ZipFile(path) as zf:
        entries = [(info, zf.read(info)) for info in zf.infolist()]
    changed = 0
    out: list[tuple[zipfile.ZipInfo, bytes]] = []
    for info, data in entries:
        if info.filename.startswith(PACKAGE) and info.filename.endswith(".py"):
            new = transform(data.decode("utf-8"), info.filename).encode("utf-8")
            changed += new != data
            data = new
        out.append((info, data))
    record_name = next(i.filename for i, _ in out if i.filename.endswith(".dist-info/RECORD"))
    record = []
    for info, data in out:
        if info.filename != record_name:
            record.append(f"{info.filename},{_record_hash(data)},{len(data)}")
    record.append(f"{record_name},,")
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in out:
            if info.filename == record_name:
                data = ("\n".join(record) + "\n").encode()
            zf.writestr(info, data)
    tmp.replace(path)
    return changed


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "wheel":
        for whl in argv[1:]:
            print(f"{whl}: {rewrite_wheel(Path(whl))} agent modules rewritten for Python 3.6")
        return 0
    if len(argv) >= 2 and argv[0] == "check":
        failed = 0
        for name in argv[1:]:
            try:
                transform(Path(name).read_text(encoding="utf-8"), name)
            except TransformError as exc:
                print(exc, file=sys.stderr)
                failed += 1
        return 1 if failed else 0
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
