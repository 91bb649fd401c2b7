"""The metric catalogue: the contract between the agent, its docs, the alert rules and the dashboards.

Every collector declares the metrics it may emit as ``MetricSpec`` entries (``Collector.metrics``); the
catalogue is the union of those declarations. ``MetricSet`` refuses a sample whose name or label names are
not declared, and tests assert that what the agent emits is exactly what it declares. ``docs/metrics.md`` is
generated from here (``python -m agent.catalog``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from agent.compat import Literal

__all__ = ["MetricSpec", "MetricSet", "Sample", "render", "all_metrics", "markdown"]

MetricType = Literal["gauge", "counter"]

_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True)
class MetricSpec:
    """One metric family: its name, type, help text, label names and unit."""

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ()
    unit: str = ""
    collector: str = ""  # filled in by the collector registry; the owner of the family
    # The family's "# HELP" and "# TYPE" lines, escaped once here rather than at every render.
    header: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"invalid metric name {self.name!r}")
        for label in self.labels:
            if not _LABEL_RE.match(label) or label.startswith("__"):
                raise ValueError(f"invalid label name {label!r} on {self.name}")
        if self.type == "counter" and not self.name.endswith("_total"):
            raise ValueError(f"counter {self.name} must end in _total")
        header = f"# HELP {self.name} {_escape_help(self.help)}\n# TYPE {self.name} {self.type}"
        object.__setattr__(self, "header", header)


@dataclass(frozen=True)
class Sample:
    labels: tuple[tuple[str, str], ...]
    value: float

    def label(self, name: str) -> str:
        return next((v for k, v in self.labels if k == name), "")


@dataclass
class _Family:
    spec: MetricSpec
    samples: dict[tuple[tuple[str, str], ...], float] = field(default_factory=dict)


class MetricSet:
    """The samples one collector run produced, checked against the declared specs.

    >>> specs = [MetricSpec("node_load1", "gauge", "1m load average.")]
    >>> out = MetricSet(specs)
    >>> out.add("node_load1", 0.5)
    >>> render(out.families())
    b'# HELP node_load1 1m load average.\\n# TYPE node_load1 gauge\\nnode_load1 0.5\\n'
    """

    def __init__(self, specs: Iterable[MetricSpec]) -> None:
        self._specs = {s.name: s for s in specs}
        self._families: dict[str, _Family] = {}
        # Exposition text from outside the catalogue, already validated and rendered by its collector (the
        # textfile collector's *.prom files); appended after the declared families.
        self.extra: bytes = b""

    def add(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        fam = self._families.get(name)
        spec = fam.spec if fam is not None else self._specs.get(name)
        if spec is None:
            raise KeyError(f"metric {name!r} is not declared by this collector")
        # Same label names as declared: as many, and every declared one given (cheaper than comparing sets;
        # collectors add hundreds of samples a cycle).
        given = labels or {}
        try:
            if len(given) != len(spec.labels):
                raise KeyError
            key = tuple([(k, str(given[k])) for k in spec.labels])
        except KeyError:
            raise ValueError(f"metric {name}: labels {sorted(given)} != declared {sorted(spec.labels)}") from None
        if fam is None:
            fam = self._families[name] = _Family(spec)
        # A repeated label set overwrites: the last value wins, and the output never has duplicates.
        fam.samples[key] = float(value)

    def get(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        """The value of one sample, or None (for tests and the console report)."""
        fam = self._families.get(name)
        if fam is None:
            return None
        given = labels or {}
        key = tuple((k, str(given.get(k, ""))) for k in fam.spec.labels)
        return fam.samples.get(key)

    def samples(self, name: str) -> list[Sample]:
        fam = self._families.get(name)
        if fam is None:
            return []
        return [Sample(k, v) for k, v in fam.samples.items()]

    def names(self) -> set[str]:
        return set(self._families)

    def families(self) -> Iterator[tuple[MetricSpec, list[Sample]]]:
        for name in sorted(self._families):
            fam = self._families[name]
            yield fam.spec, [Sample(k, v) for k, v in sorted(fam.samples.items())]

    def render(self) -> bytes:
        """``render(self.families())`` without building a Sample per sample (what each collector run ends with)."""
        lines: list[str] = []
        for name in sorted(self._families):
            fam = self._families[name]
            lines.append(fam.spec.header)
            lines.extend(_line(name, key, value) for key, value in sorted(fam.samples.items()))
        return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_value(value: float) -> str:
    try:
        whole = int(value)
    except (ValueError, OverflowError):  # NaN, +-Inf
        return "NaN" if value != value else ("+Inf" if value > 0 else "-Inf")
    if whole == value and -1e15 < value < 1e15:
        return str(whole)
    return repr(value)


def _line(name: str, labels: tuple[tuple[str, str], ...], value: float) -> str:
    if labels:
        inner = ",".join([f'{k}="{_escape_label(v)}"' for k, v in labels])
        return f"{name}{{{inner}}} {_format_value(value)}"
    return f"{name} {_format_value(value)}"


def render(families: Iterable[tuple[MetricSpec, Sequence[Sample]]]) -> bytes:
    """Render families in the Prometheus text exposition format 0.0.4."""
    lines: list[str] = []
    for spec, samples in families:
        lines.append(spec.header)
        lines.extend(_line(spec.name, sample.labels, sample.value) for sample in samples)
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def all_metrics() -> list[MetricSpec]:
    """Every metric the agent can emit, sorted by name, with its owning collector."""
    from agent.collectors import registry  # late import: collectors import this module
    from agent.push import PUSH_METRICS
    from agent.scheduler import SCHEDULER_METRICS

    # Owners beside the collectors: the scheduler's per-collector health and push mode's own state.
    owners: list[tuple[str, Sequence[MetricSpec]]] = [(cls.name, cls.metrics) for cls in registry()]
    owners += [("scheduler", SCHEDULER_METRICS), ("push", PUSH_METRICS)]
    specs: dict[str, MetricSpec] = {}
    for owner, declared in owners:
        for spec in declared:
            if spec.name in specs:
                raise ValueError(f"metric {spec.name} declared twice ({specs[spec.name].collector}, {owner})")
            specs[spec.name] = MetricSpec(spec.name, spec.type, spec.help, spec.labels, spec.unit, owner)
    return [specs[name] for name in sorted(specs)]


def markdown() -> str:
    """docs/metrics.md, generated."""
    out = [
        "# 指标目录 Metric catalogue",
        "",
        "Generated by `python -m agent.catalog > docs/metrics.md`; do not edit by hand.",
        "A test fails when this file is stale.",
        "",
        "| metric | type | unit | labels | collector | help |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for spec in all_metrics():
        labels = ", ".join(f"`{label}`" for label in spec.labels)
        out.append(
            f"| `{spec.name}` | {spec.type} | {spec.unit or '-'} | {labels or '-'} | {spec.collector} "
            f"| {spec.help.replace('|', '/')} |"
        )
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
