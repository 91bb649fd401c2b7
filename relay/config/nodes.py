"""Typed reading of YAML compose nodes, so every config error names file, key path and line."""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = ["ConfigError", "Reader", "Secret"]


class ConfigError(Exception):
    """A problem in the relay configuration; the message names file, key path and line.
    `problems` lists each problem when several were found at once."""

    def __init__(self, message: str, problems: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems) if problems else [message]


@dataclass(frozen=True)
class Secret:
    """A secret value read from the environment or a file; its repr never shows the value."""

    source: str
    value: str

    def __repr__(self) -> str:
        return f"Secret({self.source}, <redacted>)"

    __str__ = __repr__


class Reader:
    """Helpers that read one node kind and raise ConfigError with a precise location."""

    def __init__(self, path: Path, resolve_secrets: bool = True) -> None:
        self.path = path
        self.resolve_secrets = resolve_secrets

    def fail(self, node: yaml.Node | None, keypath: str, message: str) -> ConfigError:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        where = f" {keypath}:" if keypath else ""
        return ConfigError(f"{self.path}{line}:{where} {message}")

    def mapping(
        self,
        node: yaml.Node,
        keypath: str,
        allowed: Sequence[str],
        required: Sequence[str] = (),
    ) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, keypath, "expected a mapping (key: value)")
        out: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, keypath, "keys must be plain strings")
            key = str(key_node.value)
            sub = f"{keypath}.{key}" if keypath else key
            if key not in allowed:
                close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
                hint = f" (did you mean '{close[0]}'?)" if close else f" (allowed: {', '.join(sorted(allowed))})"
                raise self.fail(key_node, sub, f"unknown key '{key}'{hint}")
            if key in out:
                raise self.fail(key_node, sub, "duplicate key")
            out[key] = value_node
        for key in required:
            if key not in out:
                raise self.fail(node, keypath, f"missing required key '{key}'")
        return out

    def free_mapping(self, node: yaml.Node, keypath: str) -> dict[str, yaml.Node]:
        """A mapping whose keys are user-chosen names (channels, people, routes)."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, keypath, "expected a mapping (name: settings)")
        out: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = str(getattr(key_node, "value", ""))
            if not isinstance(key_node, yaml.ScalarNode) or not key:
                raise self.fail(key_node, keypath, "names must be non-empty strings")
            if key in out:
                raise self.fail(key_node, f"{keypath}.{key}", "duplicate name")
            out[key] = value_node
        return out

    def scalar(self, node: yaml.Node, keypath: str) -> yaml.ScalarNode:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, keypath, "expected a single value, not a list or mapping")
        return node

    def string(self, node: yaml.Node, keypath: str, allow_empty: bool = False) -> str:
        value = str(self.scalar(node, keypath).value)
        if not value and not allow_empty:
            raise self.fail(node, keypath, "must not be empty")
        return value

    def choice(self, node: yaml.Node, keypath: str, choices: Sequence[str]) -> str:
        value = self.string(node, keypath)
        if value not in choices:
            close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise self.fail(node, keypath, f"'{value}' is not one of {', '.join(choices)}{hint}")
        return value

    def number(self, node: yaml.Node, keypath: str, minimum: float, maximum: float) -> float:
        raw = self.string(node, keypath)
        try:
            value = float(raw)
        except ValueError:
            raise self.fail(node, keypath, f"expected a number, got '{raw}'") from None
        if not minimum <= value <= maximum:
            raise self.fail(node, keypath, f"{raw} is outside the allowed range {minimum:g}..{maximum:g}")
        return value

    def integer(self, node: yaml.Node, keypath: str, minimum: int, maximum: int) -> int:
        raw = self.string(node, keypath)
        try:
            value = int(raw)
        except ValueError:
            raise self.fail(node, keypath, f"expected a whole number, got '{raw}'") from None
        if not minimum <= value <= maximum:
            raise self.fail(node, keypath, f"{value} is outside the allowed range {minimum}..{maximum}")
        return value

    def boolean(self, node: yaml.Node, keypath: str) -> bool:
        raw = self.string(node, keypath).lower()
        if raw in ("true", "yes", "on"):
            return True
        if raw in ("false", "no", "off"):
            return False
        raise self.fail(node, keypath, f"expected true or false, got '{raw}'")

    def sequence(self, node: yaml.Node, keypath: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, keypath, "expected a list")
        return list(node.value)

    def strings(self, node: yaml.Node, keypath: str) -> list[str]:
        return [self.string(item, f"{keypath}[{i}]") for i, item in enumerate(self.sequence(node, keypath))]

    def secret(self, node: yaml.Node, keypath: str) -> Secret:
        """`{secret_env: NAME}` or `{secret_file: path}`; literal secrets are refused on purpose."""
        if isinstance(node, yaml.ScalarNode):
            raise self.fail(
                node, keypath, "secrets are not written inline; use {secret_env: VAR} or {secret_file: /path}"
            )
        keys = self.mapping(node, keypath, ("secret_env", "secret_file"))
        if len(keys) != 1:
            raise self.fail(node, keypath, "give exactly one of secret_env or secret_file")
        if not self.resolve_secrets:
            which = "secret_env" if "secret_env" in keys else "secret_file"
            return Secret(f"{which}:{self.string(keys[which], f'{keypath}.{which}')}", "")
        if "secret_env" in keys:
            name = self.string(keys["secret_env"], f"{keypath}.secret_env")
            value = os.environ.get(name)
            if value is None or not value.strip():
                raise self.fail(keys["secret_env"], f"{keypath}.secret_env", f"environment variable {name} is not set")
            return Secret(f"env:{name}", value.strip())
        file_node = keys["secret_file"]
        file_path = Path(self.string(file_node, f"{keypath}.secret_file"))
        if not file_path.is_absolute():
            file_path = self.path.parent / file_path
        try:
            value = file_path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise self.fail(file_node, f"{keypath}.secret_file", f"cannot read {file_path}: {exc.strerror}") from None
        if not value:
            raise self.fail(file_node, f"{keypath}.secret_file", f"{file_path} is empty")
        return Secret(f"file:{file_path}", value)
