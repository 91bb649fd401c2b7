"""node_exporter's textfile collector: ``*.prom`` files that cron jobs and the community's scripts (smartmon,
apt, yum, ipmitool, storcli …) write into a directory, served with the agent's own metrics::

    node_textfile_mtime_seconds{file="/var/lib/prometheus/node-exporter/smartmon.prom"} 1.7960328e+09
    node_textfile_scrape_error 0
    smartmon_device_smart_healthy{disk="/dev/sda",type="sat"} 1

node_exporter's semantics: each file is parsed as the text format 0.0.4 and taken whole or not at all — a
syntax error or a client-side timestamp skips the file and sets ``node_textfile_scrape_error 1`` (the log
names the file and line); a family without ``# HELP`` gets "Metric read from <path>", without ``# TYPE`` it is
untyped; ``node_textfile_mtime_seconds`` is exported for the files read. Beyond node_exporter: a family that
would shadow one of the agent's own metrics (apt.sh's ``apt_upgrades_pending`` is the updates collector's) is
left out with a warning, and each file is read up to 1 MiB, at most 256 files, so a runaway script cannot
take the agent's memory.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from agent.catalog import MetricSet, MetricSpec
from agent.collector import AgentContext, CollectorOptions, NotApplicable
from agent.collectors.node.base import NodeFamily

__all__ = ["TextfileCollector", "TextfileOptions", "parse_text_format", "TextFormatError"]

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 1 << 20
MAX_FILES = 256
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


class TextFormatError(ValueError):
    """A textfile that is not the text exposition format; the message names the line."""


@dataclass
class Family:
    name: str
    type: str = "untyped"
    help: Optional[str] = None
    # (sample name, sorted labels) -> value
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)


def _labels(text: str, lineno: int) -> tuple[tuple[tuple[str, str], ...], str]:
    """Parse ``{a="x",b="y"}`` at the start of text; return (labels, rest)."""
    assert text.startswith("{")
    i, out = 1, []
    while True:
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] == "}":
            i += 1
            break
        m = _LABEL.match(text, i)
        if m is None:
            raise TextFormatError(f"line {lineno}: invalid label name")
        name, i = m.group(0), m.end()
        if text[i : i + 2] != '="':
            raise TextFormatError(f"line {lineno}: expected =\" after label {name}")
        i += 2
        value = []
        while True:
            if i >= len(text):
                raise TextFormatError(f"line {lineno}: unterminated label value")
            c = text[i]
            if c == "\\":
                nxt = text[i + 1 : i + 2]
                value.append({"n": "\n", "\\": "\\", '"': '"'}.get(nxt, "\\" + nxt))
                i += 2
                continue
            if c == '"':
                i += 1
                break
            value.append(c)
            i += 1
        out.append((name, "".join(value)))
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] == ",":
            i += 1
            continue
        if i < len(text) and text[i] == "}":
            i += 1
            break
        raise TextFormatError(f"line {lineno}: expected , or }} in labels")
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise TextFormatError(f"line {lineno}: duplicate label name")
    return tuple(sorted(out)), text[i:]


def _value(text: str, lineno: int) -> float:
    special = {"NaN": math.nan, "+Inf": math.inf, "Inf": math.inf, "-Inf": -math.inf}
    if text in special:
        return special[text]
    try:
        return float(text)
    except ValueError:
        raise TextFormatError(f"line {lineno}: expected float as value, got {text[:20]!r}") from None


def parse_text_format(text: str) -> dict[str, Family]:
    """The families of one textfile, or TextFormatError naming the first bad line (the file is then skipped
    whole, as node_exporter does)."""
    families: dict[str, Family] = {}

    def family_of(sample: str) -> Family:
        for fam in families.values():
            if sample == fam.name or sample in (fam.name + s for s in _SUFFIXES.get(fam.type, ())):
                return fam
        return families.setdefault(sample, Family(sample))

    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line[1:].split(None, 2)
            if len(parts) >= 2 and parts[0] in ("HELP", "TYPE"):
                if not _NAME.fullmatch(parts[1]):
                    raise TextFormatError(f"line {lineno}: invalid metric name in {parts[0]}")
                fam = families.setdefault(parts[1], Family(parts[1]))
                if parts[0] == "TYPE":
                    kind = parts[2].strip() if len(parts) > 2 else ""
                    if kind not in _TYPES:
                        raise TextFormatError(f"line {lineno}: unknown metric type {kind!r}")
                    if fam.samples:
                        raise TextFormatError(f"line {lineno}: TYPE of {parts[1]} after its samples")
                    fam.type = kind
                else:
                    help_text = parts[2] if len(parts) > 2 else ""
                    fam.help = help_text.replace("\\n", "\n").replace("\\\\", "\\")
            continue
        m = _NAME.match(line)
        if m is None:
            raise TextFormatError(f"line {lineno}: invalid metric name")
        name, rest = m.group(0), line[m.end() :]
        labels: tuple[tuple[str, str], ...] = ()
        if rest.startswith("{"):
            labels, rest = _labels(rest, lineno)
        fields = rest.split()
        if len(fields) == 2:
            raise TextFormatError(f"line {lineno}: contains unsupported client-side timestamps")
        if len(fields) != 1:
            raise TextFormatError(f"line {lineno}: expected a value after {name}")
        fam = family_of(name)
        key = (name, labels)
        if key in fam.samples:
            raise TextFormatError(f"line {lineno}: duplicate sample {name}{dict(labels)}")
        fam.samples[key] = _value(fields[0], lineno)
    return {n: f for n, f in families.items() if f.samples}


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value) if value != int(value) or abs(value) >= 1e15 else str(int(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_families(families: dict[str, Family], sources: dict[str, list[str]]) -> bytes:
    lines: list[str] = []
    for name in sorted(families):
        fam = families[name]
        help_text = fam.help if fam.help is not None else "Metric read from " + ", ".join(sources[name])
        lines.append(f"# HELP {name} {help_text.replace(chr(92), chr(92) * 2).replace(chr(10), chr(92) + 'n')}")
        lines.append(f"# TYPE {name} {fam.type}")
        for (sample, labels), value in sorted(fam.samples.items()):
            inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(f"{sample}{{{inner}}} {_fmt(value)}" if inner else f"{sample} {_fmt(value)}")
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


@dataclass
class TextfileOptions(CollectorOptions):
    # Where the scripts write *.prom files; Debian's prometheus-node-exporter(-collectors) use this directory,
    # so their timers' output drops in unchanged.
    directory: str = "/var/lib/prometheus/node-exporter"


class TextfileCollector(NodeFamily):
    name = "textfile"
    title = "文本文件指标 (Textfile collector)"
    options_class = TextfileOptions
    metrics = (
        MetricSpec("node_textfile_mtime_seconds", "gauge", "Unixtime mtime of textfiles successfully read.",
                   ("file",)),
        MetricSpec("node_textfile_scrape_error", "gauge",
                   "1 if there was an error opening or reading a file, 0 otherwise"),
    )

    def __init__(self, options: TextfileOptions, context: AgentContext, **kwargs: str) -> None:
        super().__init__(options, context, **kwargs)
        self.opts = options
        self._own: Optional[frozenset[str]] = None
        self._warned: set[tuple[str, str]] = set()

    def _own_names(self) -> frozenset[str]:
        if self._own is None:
            from agent.catalog import all_metrics

            self._own = frozenset(s.name for s in all_metrics())
        return self._own

    def collect(self, out: MetricSet) -> None:
        directory = Path(self.opts.directory)
        if not directory.is_dir():
            raise NotApplicable(f"textfile directory {directory} does not exist")
        error = False
        merged: dict[str, Family] = {}
        sources: dict[str, list[str]] = {}
        files = sorted(p for p in directory.iterdir() if p.name.endswith(".prom"))
        if len(files) > MAX_FILES:
            log.warning("textfile: %d files in %s, reading the first %d", len(files), directory, MAX_FILES)
            files, error = files[:MAX_FILES], True
        for path in files:
            try:
                with open(path, "rb") as fh:
                    data = fh.read(MAX_FILE_BYTES + 1)
                    mtime = path.stat().st_mtime
                if len(data) > MAX_FILE_BYTES:
                    raise TextFormatError(f"larger than {MAX_FILE_BYTES} bytes")
                families = parse_text_format(data.decode("utf-8"))
                for name, fam in families.items():
                    other = merged.get(name)
                    if other is not None and other.type != fam.type:
                        raise TextFormatError(f"{name} is {fam.type} here but {other.type} in {sources[name][0]}")
                    if other is not None and set(other.samples) & set(fam.samples):
                        raise TextFormatError(f"{name} has series already read from {sources[name][0]}")
            except (OSError, UnicodeDecodeError, TextFormatError) as exc:
                log.warning("textfile: skipping %s: %s", path, exc)
                error = True
                continue
            for name, fam in families.items():
                if name in self._own_names():
                    if (str(path), name) not in self._warned:
                        self._warned.add((str(path), name))
                        log.warning("textfile: %s in %s is the agent's own metric; the file's copy is left out",
                                    name, path)
                    continue
                if name in merged:
                    merged[name].samples.update(fam.samples)
                    merged[name].help = merged[name].help or fam.help
                else:
                    merged[name] = fam
                sources.setdefault(name, []).append(str(path))
            out.add("node_textfile_mtime_seconds", mtime, {"file": str(path)})
        out.add("node_textfile_scrape_error", 1 if error else 0)
        out.extra = render_families(merged, sources)
