"""Typed validation of YAML documents into dataclasses, with errors that name file, key path and line.

``load(text, cls, filename)`` composes the YAML (keeping node positions), then walks ``cls``'s type hints and
collects *every* problem before raising ``SchemaError``, so an operator fixes a file in one pass. Supported
field types: bool, int, float, str, ``Optional[X]``, ``list[X]``, ``dict[str, X]``, ``Literal[...]`` and nested
dataclasses. Field metadata refines a field: ``duration`` (accepts ``15s``/``5m``/``6h``/``1d``), ``min``,
``max``, ``help``, ``check`` (a function of the converted value returning ``(relative key, message)``
pairs). A dataclass may define ``problems() -> list[(key, message)]`` for cross-field checks.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Optional, TypeVar, Union

import yaml

from agent.compat import Literal, get_args, get_origin, type_hints

__all__ = ["SchemaError", "Problem", "load", "load_node", "parse_duration", "compose"]

T = TypeVar("T")

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}

# Bounds every document and value gets unless a field says otherwise: a configuration is small, and a value far
# out of any sensible range (an interval of 30,000,000 days) is a typo that would overflow a timer later.
MAX_DOCUMENT_BYTES = 1 << 20
MAX_ALIASES = 64
MAX_DURATION_SECONDS = 30 * 86400.0
MAX_WHOLE_NUMBER = 1 << 53
# Keys whose values are never echoed in an error message (the last part of the key path, lower case).
_SECRET_KEY_RE = re.compile(r"(pass(word|wd)?|secret|token|credential|api_?key|private)", re.I)


@dataclass(frozen=True)
class Problem:
    filename: str
    line: Optional[int]  # 1-based
    key: str  # dotted path, e.g. collectors.probes.http[0].url
    message: str

    def __str__(self) -> str:
        where = f"{self.filename}:{self.line}" if self.line else self.filename
        return f"{where}: {self.key or '(top level)'}: {self.message}"


class SchemaError(Exception):
    """One or more problems in a configuration document."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def parse_duration(value: Any) -> float:
    """``15`` / ``15s`` / ``500ms`` / ``5m`` / ``6h`` / ``1d`` -> seconds. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 15s, 5m, 6h or 1d")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m:
            return float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    raise ValueError(f"expected a duration like 15s, 5m, 6h or 1d, got {value!r}")


def compose(text: str, filename: str) -> Optional[yaml.Node]:
    """Parse YAML into a node tree; a syntax error becomes a SchemaError naming line and column. Documents over
    MAX_DOCUMENT_BYTES or with more than MAX_ALIASES aliases are refused before any work that could grow."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_DOCUMENT_BYTES:
        raise SchemaError([Problem(filename, None, "", f"the file is {size} bytes; a configuration may be at most "
                                   f"{MAX_DOCUMENT_BYTES} bytes")])
    try:
        aliases = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_ALIASES:
                    line = event.start_mark.line + 1 if event.start_mark is not None else None
                    raise SchemaError([Problem(filename, line, "", f"more than {MAX_ALIASES} YAML aliases (*name); "
                                               "write the values out")])
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        col = f", column {mark.column + 1}" if mark is not None else ""
        raise SchemaError([Problem(filename, line, "", f"YAML syntax error{col}: {exc.problem}")]) from None
    except yaml.YAMLError as exc:
        raise SchemaError([Problem(filename, None, "", f"YAML error: {exc}")]) from None


def load(text: str, cls: type[T], filename: str) -> T:
    """Validate a whole YAML document against dataclass ``cls``; an empty document gives the defaults."""
    node = compose(text, filename)
    return load_node(node, cls, filename)


def load_node(node: Optional[yaml.Node], cls: type[T], filename: str, key: str = "") -> T:
    walker = _Walker(filename)
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"):
        node = yaml.MappingNode("tag:yaml.org,2002:map", [])
    value = walker.convert(node, cls, key, {})
    if walker.problems:
        raise SchemaError(walker.problems)
    return typing.cast(T, value)


_MISSING = object()


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


class _Walker:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.problems: list[Problem] = []
        self._constructor = yaml.SafeLoader("")

    def error(self, node: Optional[yaml.Node], key: str, message: str) -> object:
        line = node.start_mark.line + 1 if node is not None else None
        if _SECRET_KEY_RE.search(key.rsplit(".", 1)[-1]):
            # The value may be a password typed into the wrong place: say what is wrong, never what it is.
            message = re.sub(r",? got .*$", "", message, flags=re.S) + " (value not shown: it may be a secret)"
        self.problems.append(Problem(self.filename, line, key, message))
        return _MISSING

    def scalar(self, node: yaml.Node) -> Any:
        return self._constructor.construct_object(node, deep=True)

    def convert(self, node: yaml.Node, tp: Any, key: str, meta: typing.Mapping[str, Any]) -> Any:
        origin = get_origin(tp)
        args = get_args(tp)
        if origin is Union:
            non_null = [a for a in args if a is not type(None)]
            if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
                return None
            if len(non_null) == 1:
                return self.convert(node, non_null[0], key, meta)
            return self.error(node, key, f"unsupported union type {tp}")
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            return self.dataclass(node, tp, key)
        if origin is list:
            if not isinstance(node, yaml.SequenceNode):
                return self.error(node, key, "expected a list")
            items = [self.convert(item, args[0], f"{key}[{i}]", meta) for i, item in enumerate(node.value)]
            return [item for item in items if item is not _MISSING]
        if origin is dict:
            if not isinstance(node, yaml.MappingNode):
                return self.error(node, key, "expected a mapping of names to values")
            out: dict[str, Any] = {}
            for k_node, v_node in node.value:
                k = self.scalar(k_node) if isinstance(k_node, yaml.ScalarNode) else None
                if not isinstance(k, str):
                    self.error(k_node, key, "keys must be strings")
                    continue
                if k in out:
                    self.error(k_node, _join(key, k), "duplicate key")
                    continue
                v = self.convert(v_node, args[1], _join(key, k), meta)
                if v is not _MISSING:
                    out[k] = v
            return out
        if origin is Literal:
            value = self.scalar(node) if isinstance(node, yaml.ScalarNode) else None
            if value not in args:
                choices = ", ".join(repr(a) for a in args)
                return self.error(node, key, f"must be one of {choices}, got {value!r}")
            return value
        if not isinstance(node, yaml.ScalarNode):
            return self.error(node, key, f"expected a single {_type_word(tp, meta)}, got a {_node_word(node)}")
        value = self.scalar(node)
        return self.check_scalar(node, tp, key, meta, value)

    def check_scalar(self, node: yaml.Node, tp: Any, key: str, meta: typing.Mapping[str, Any], value: Any) -> Any:
        if meta.get("duration"):
            try:
                value = parse_duration(value)
            except ValueError as exc:
                return self.error(node, key, str(exc))
            if "max" not in meta and value > MAX_DURATION_SECONDS:
                return self.error(node, key, f"must be at most 30d, got {value:g} seconds")
        elif tp is bool:
            if not isinstance(value, bool):
                return self.error(node, key, f"expected true or false, got {value!r}")
            return value
        elif tp is int:
            if isinstance(value, bool) or not isinstance(value, int):
                return self.error(node, key, f"expected a whole number, got {value!r}")
            if "max" not in meta and abs(value) > MAX_WHOLE_NUMBER:
                return self.error(node, key, f"must be at most {MAX_WHOLE_NUMBER}, got {value}")
        elif tp is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return self.error(node, key, f"expected a number, got {value!r}")
            value = float(value)
            if not math.isfinite(value):
                return self.error(node, key, f"expected a finite number, got {value}")
        elif tp is str:
            if not isinstance(value, str):
                return self.error(node, key, f"expected a string, got {value!r} (quote it)")
            return value
        else:
            return self.error(node, key, f"unsupported field type {tp}")
        if "min" in meta and value < meta["min"]:
            return self.error(node, key, f"must be at least {meta['min']}, got {value}")
        if "max" in meta and value > meta["max"]:
            return self.error(node, key, f"must be at most {meta['max']}, got {value}")
        return value

    def dataclass(self, node: yaml.Node, cls: type, key: str) -> Any:
        if not isinstance(node, yaml.MappingNode):
            return self.error(node, key, f"expected a mapping (key: value), got a {_node_word(node)}")
        # Without explicit globals, each base class's annotations resolve in its own module.
        hints = type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        values: dict[str, Any] = {}
        seen: set[str] = set()
        failed = False
        for k_node, v_node in node.value:
            name = self.scalar(k_node) if isinstance(k_node, yaml.ScalarNode) else None
            if not isinstance(name, str):
                self.error(k_node, key, "keys must be strings")
                continue
            if name in seen:
                self.error(k_node, _join(key, name), "duplicate key")
                continue
            seen.add(name)
            f = fields.get(name)
            if f is None:
                hint = difflib.get_close_matches(name, list(fields), n=1)
                suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
                self.error(k_node, _join(key, name), f"unknown key{suggestion}")
                continue
            v = self.convert(v_node, hints[name], _join(key, name), f.metadata)
            if v is _MISSING:
                failed = True
                continue
            values[name] = v
            check_field = f.metadata.get("check")
            if check_field is not None:
                # Field-level checks run even when a sibling field is broken, so every error shows at once.
                for sub, message in check_field(v):
                    self.error(_find_child(v_node, sub) if sub else v_node, _join(_join(key, name), sub), message)
        for name, f in fields.items():
            if name in values or name in seen:
                continue
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                self.error(node, _join(key, name), "required key is missing")
                failed = True
        if failed:
            return _MISSING
        try:
            obj = cls(**values)
        except (TypeError, ValueError) as exc:
            return self.error(node, key, str(exc))
        check = getattr(obj, "problems", None)
        if callable(check):
            for sub, message in check():
                child = _find_child(node, sub)
                self.error(child or node, _join(key, sub), message)
        return obj


def _find_child(node: yaml.MappingNode, dotted: str) -> Optional[yaml.Node]:
    """The node at a relative key path like ``http[0].url``, for a line number; None if absent."""
    current: yaml.Node = node
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", dotted):
        if part.startswith("[") and isinstance(current, yaml.SequenceNode):
            index = int(part[1:-1])
            if index >= len(current.value):
                return None
            current = current.value[index]
        elif isinstance(current, yaml.MappingNode):
            match = [v for k, v in current.value if isinstance(k, yaml.ScalarNode) and k.value == part]
            if not match:
                return None
            current = match[0]
        else:
            return None
    return current


def _type_word(tp: Any, meta: typing.Mapping[str, Any]) -> str:
    if meta.get("duration"):
        return "duration"
    return {bool: "true/false", int: "whole number", float: "number", str: "string"}.get(tp, "value")


def _node_word(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "mapping"
    if isinstance(node, yaml.SequenceNode):
        return "list"
    return "single value"
