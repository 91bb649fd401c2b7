"""Agent configuration: ``/etc/shaobing/agent.yml`` -> typed, validated ``AgentConfig``.

Zero configuration is a valid configuration: every collector on its defaults, listening on 127.0.0.1 only.
Every problem in a file is reported at once (file, key path, line), unknown keys with a "did you mean".

Example::

    listen_address: 0.0.0.0:10130
    web_config_file: /etc/shaobing/web.yml     # exporter-toolkit format: TLS + bcrypt basic auth
    state_dir: /var/lib/shaobing
    collectors:
      health: {interval: 15s}
      services:
        systemd_units: [sshd.service]
      passwords: {enabled: false}
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from agent.collector import Collector, CollectorOptions
from agent.compat import Literal
from agent.push import PushOptions
from agent.schema import Problem, SchemaError, compose, load_node

__all__ = ["AgentConfig", "DEFAULT_CONFIG_PATH", "DEFAULT_LISTEN", "load_config", "default_config", "SchemaError"]

DEFAULT_CONFIG_PATH = "/etc/shaobing/agent.yml"
DEFAULT_LISTEN = "127.0.0.1:10130"
DEFAULT_STATE_DIR = "/var/lib/shaobing"
_LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass
class AgentConfig:
    """The top level of agent.yml (``collectors`` is validated per collector, see ``load_config``)."""

    listen_address: str = DEFAULT_LISTEN
    # exporter-toolkit web configuration file (tls_server_config, basic_auth_users); relative to agent.yml.
    web_config_file: Optional[str] = None
    state_dir: str = DEFAULT_STATE_DIR
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Opt-in: per-account security series with masked names (r***t~3f2c). Off: metrics carry counts only.
    expose_masked_names: bool = False
    # Where this host belongs (township, site, ...). Pull mode: Prometheus' file_sd gives these labels, so the
    # agent does not export them; push mode attaches them to every pushed sample.
    labels: dict[str, str] = field(default_factory=dict)
    # Push mode for hosts behind NAT (agent.push); absent: pull only.
    push: Optional[PushOptions] = None
    # Filled by load_config from the ``collectors`` section; not a YAML key of its own shape.
    collectors: dict[str, CollectorOptions] = field(default_factory=dict)
    source: str = "(defaults)"

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        try:
            parse_listen(self.listen_address)
        except ValueError as exc:
            out.append(("listen_address", str(exc)))
        for name in self.labels:
            if not _LABEL_NAME_RE.match(name) or name.startswith("__"):
                out.append((f"labels.{name}", "invalid label name (letters, digits and _; not starting with __)"))
            elif name in ("job", "instance"):
                out.append((f"labels.{name}", "reserved: set by Prometheus (or push.job / push.instance)"))
        return out

    def options_for(self, cls: type[Collector]) -> CollectorOptions:
        opts = self.collectors.get(cls.name)
        if opts is None:
            opts = cls.options_class()
            opts.enabled = cls.default_enabled
        return opts


def parse_listen(value: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port). Raises ValueError with the reason."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"expected host:port (e.g. {DEFAULT_LISTEN}), got {value!r}")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"port must be 1-65535, got {port}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if host:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not host.replace("-", "").replace(".", "").isalnum():
                raise ValueError(f"invalid listen host {host!r}") from None
    return host, port


def default_config() -> AgentConfig:
    return AgentConfig()


def load_config(path: str | os.PathLike[str]) -> AgentConfig:
    """Read and validate one agent.yml; raise SchemaError listing every problem."""
    filename = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SchemaError([Problem(filename, None, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError([Problem(filename, None, "", f"cannot read: {exc}")]) from None
    return parse_config(text, filename)


def parse_config(text: str, filename: str) -> AgentConfig:
    from agent.collectors import by_name  # late import: collectors import agent.collector

    node = compose(text, filename)
    problems: list[Problem] = []
    collectors_node: Optional[yaml.Node] = None
    if isinstance(node, yaml.MappingNode):
        rest = []
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == "collectors":
                collectors_node = v
            elif isinstance(k, yaml.ScalarNode) and k.value == "source":
                problems.append(Problem(filename, k.start_mark.line + 1, "source", "unknown key"))
            else:
                rest.append((k, v))
        node = yaml.MappingNode(node.tag, rest, node.start_mark, node.end_mark)
    elif node is not None and not (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")):
        line = node.start_mark.line + 1
        raise SchemaError([Problem(filename, line, "", "expected a mapping of settings at the top level")])

    config: Optional[AgentConfig] = None
    try:
        config = load_node(node, AgentConfig, filename)
    except SchemaError as exc:
        problems.extend(exc.problems)

    collectors: dict[str, CollectorOptions] = {}
    known = by_name()
    if isinstance(collectors_node, yaml.MappingNode):
        for k_node, v_node in collectors_node.value:
            name = k_node.value if isinstance(k_node, yaml.ScalarNode) else None
            line = k_node.start_mark.line + 1
            cls = known.get(name) if isinstance(name, str) else None
            if cls is None:
                hint = difflib.get_close_matches(str(name), list(known), n=1)
                suggestion = f" (did you mean '{hint[0]}'?)" if hint else f" (known: {', '.join(sorted(known))})"
                problems.append(Problem(filename, line, f"collectors.{name}", f"unknown collector{suggestion}"))
                continue
            if name in collectors:
                problems.append(Problem(filename, line, f"collectors.{name}", "duplicate key"))
                continue
            try:
                opts = load_node(v_node, cls.options_class, filename, f"collectors.{name}")
            except SchemaError as exc:
                problems.extend(exc.problems)
                continue
            if not _mentions(v_node, "enabled"):
                opts.enabled = cls.default_enabled
            collectors[str(name)] = opts
    elif collectors_node is not None and not (
        isinstance(collectors_node, yaml.ScalarNode) and collectors_node.tag.endswith(":null")
    ):
        line = collectors_node.start_mark.line + 1
        problems.append(Problem(filename, line, "collectors", "expected a mapping of collector names to settings"))

    if problems:
        raise SchemaError(sorted(problems, key=lambda p: (p.line or 0, p.key)))
    assert config is not None
    config.collectors = collectors
    config.source = filename
    if config.web_config_file and not os.path.isabs(config.web_config_file):
        config.web_config_file = str(Path(filename).resolve().parent / config.web_config_file)
    return config


def _mentions(node: yaml.Node, key: str) -> bool:
    return isinstance(node, yaml.MappingNode) and any(
        isinstance(k, yaml.ScalarNode) and k.value == key for k, _ in node.value
    )
