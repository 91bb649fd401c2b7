"""Loading and validating the relay's YAML configuration.

Every error names the file, the key path and the line (read from yaml compose nodes), and unknown keys
are refused with a did-you-mean, so a typo never silently disables a channel.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from relay.config.channels import parse_channel
from relay.config.model import (
    AcknowledgeConfig,
    AuthConfig,
    ChannelConfig,
    Config,
    DeliveryConfig,
    EscalationConfig,
    HeartbeatConfig,
    LinksConfig,
    Person,
    RouteConfig,
    ServerConfig,
    StoreConfig,
)
from relay.config.nodes import ConfigError, Reader, Secret
from relay.config.roster import Roster, parse_rosters
from relay.templates import TEMPLATE_NAMES, Renderer, TemplateProblem

__all__ = ["ConfigError", "Config", "ChannelConfig", "Secret", "load_config", "build_renderer"]

T = TypeVar("T")
_PHONE = re.compile(r"^\+?\d{6,15}$")
_ROUTE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_TOP = (
    "server",
    "store",
    "delivery",
    "timezone",
    "people",
    "rosters",
    "channels",
    "routes",
    "templates",
    "heartbeats",
    "links",
    "acknowledge",
)
_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")


def _server(r: Reader, node: yaml.Node) -> ServerConfig:
    keys = r.mapping(node, "server", ("listen", "max_body_bytes", "auth"))
    host, port = "127.0.0.1", 10131
    if "listen" in keys:
        raw = r.string(keys["listen"], "server.listen")
        host_part, sep, port_part = raw.rpartition(":")
        if not sep or not port_part.isdigit() or not 0 < int(port_part) < 65536:
            raise r.fail(keys["listen"], "server.listen", f"expected HOST:PORT, got '{raw}'")
        host, port = host_part.strip("[]") or "127.0.0.1", int(port_part)
    max_body = 1 << 20
    if "max_body_bytes" in keys:
        max_body = r.integer(keys["max_body_bytes"], "server.max_body_bytes", 1024, 64 << 20)
    auth = AuthConfig()
    if "auth" in keys:
        auth = _auth(r, keys["auth"])
    return ServerConfig(host, port, max_body, auth)


def _auth(r: Reader, node: yaml.Node) -> AuthConfig:
    keys = r.mapping(node, "server.auth", ("bearer_tokens", "basic", "allow_unauthenticated"))
    tokens: list[Secret] = []
    if "bearer_tokens" in keys:
        for i, item in enumerate(r.sequence(keys["bearer_tokens"], "server.auth.bearer_tokens")):
            tokens.append(r.secret(item, f"server.auth.bearer_tokens[{i}]"))
    basic: list[tuple[str, Secret]] = []
    if "basic" in keys:
        for i, item in enumerate(r.sequence(keys["basic"], "server.auth.basic")):
            sub = f"server.auth.basic[{i}]"
            entry = r.mapping(item, sub, ("username", "password"), required=("username", "password"))
            basic.append(
                (
                    r.string(entry["username"], f"{sub}.username"),
                    r.secret(entry["password"], f"{sub}.password"),
                )
            )
    allow = False
    if "allow_unauthenticated" in keys:
        allow = r.boolean(keys["allow_unauthenticated"], "server.auth.allow_unauthenticated")
    return AuthConfig(tuple(tokens), tuple(basic), allow)


def _store(r: Reader, node: yaml.Node) -> StoreConfig:
    keys = r.mapping(node, "store", ("path", "synchronous"), required=("path",))
    path = Path(r.string(keys["path"], "store.path"))
    if not path.is_absolute():
        path = r.path.parent / path
    sync = "full"
    if "synchronous" in keys:
        sync = r.choice(keys["synchronous"], "store.synchronous", ("full", "normal"))
    return StoreConfig(path, sync)


def _delivery(r: Reader, node: yaml.Node) -> DeliveryConfig:
    floats = {
        "backoff_initial_seconds": (0.01, 3600.0),
        "backoff_max_seconds": (0.01, 86400.0),
        "jitter": (0.0, 1.0),
        "request_timeout_seconds": (0.1, 120.0),
        "reconcile_delay_seconds": (0.01, 86400.0),
        "reconcile_grace_seconds": (0.0, 86400.0),
        "reconcile_give_up_seconds": (0.01, 7 * 86400.0),
        "poll_interval_seconds": (0.01, 60.0),
        "duplicate_window_seconds": (0.0, 86400.0),
    }
    ints = {"max_attempts": (1, 1000), "digest_max_items": (2, 500), "concurrency": (1, 256)}
    keys = r.mapping(node, "delivery", tuple(floats) + tuple(ints))
    values: dict[str, object] = {}
    for key, (lo, hi) in floats.items():
        if key in keys:
            values[key] = r.number(keys[key], f"delivery.{key}", lo, hi)
    for key, (ilo, ihi) in ints.items():
        if key in keys:
            values[key] = r.integer(keys[key], f"delivery.{key}", ilo, ihi)
    return DeliveryConfig(**values)  # type: ignore[arg-type]


def _people(r: Reader, node: yaml.Node, errors: list[ConfigError]) -> dict[str, Person]:
    people: dict[str, Person] = {}
    for key, value in r.free_mapping(node, "people").items():
        try:
            people[key] = _person(r, key, value)
        except ConfigError as exc:
            errors.append(exc)
    return people


def _person(r: Reader, key: str, value: yaml.Node) -> Person:
    sub = f"people.{key}"
    entry = r.mapping(value, sub, ("name", "phone"), required=("phone",))
    phone = r.string(entry["phone"], f"{sub}.phone").replace(" ", "").replace("-", "")
    if not _PHONE.match(phone):
        raise r.fail(
            entry["phone"],
            f"{sub}.phone",
            "expected a phone number such as 13800001234 or +8613800001234",
        )
    name = r.string(entry["name"], f"{sub}.name") if "name" in entry else key
    return Person(key, name, phone)


def _channel_list(
    r: Reader, node: yaml.Node, keypath: str, channels: Mapping[str, object], broken: set[str]
) -> list[str]:
    names = r.strings(node, keypath)
    for i, item in enumerate(r.sequence(node, keypath)):
        if names[i] not in channels and names[i] not in broken:
            raise r.fail(item, f"{keypath}[{i}]", f"unknown channel '{names[i]}'")
    return names


def _routes(
    r: Reader, node: yaml.Node, channels: dict[str, ChannelConfig], broken: set[str], errors: list[ConfigError]
) -> dict[str, RouteConfig]:
    routes: dict[str, RouteConfig] = {}
    for name, value in r.free_mapping(node, "routes").items():
        sub = f"routes.{name}"
        try:
            if not _ROUTE.match(name):
                raise r.fail(
                    value, sub, "route names may use letters, digits, '.', '_' and '-' (they appear in the URL)"
                )
            entry = r.mapping(value, sub, ("channels", "escalation"), required=("channels",))
            escalation = None
            if "escalation" in entry:
                escalation = _escalation(r, entry["escalation"], f"{sub}.escalation", channels, broken)
            routes[name] = RouteConfig(
                name, tuple(_channel_list(r, entry["channels"], f"{sub}.channels", channels, broken)), escalation
            )
        except ConfigError as exc:
            errors.append(exc)
    if not routes and not errors:
        raise r.fail(node, "routes", "define at least one route")
    return routes


def _escalation(
    r: Reader, node: yaml.Node, sub: str, channels: dict[str, ChannelConfig], broken: set[str]
) -> EscalationConfig:
    keys = r.mapping(node, sub, ("after_minutes", "levels"), required=("levels",))
    after = r.number(keys["after_minutes"], f"{sub}.after_minutes", 0.01, 24 * 60) if "after_minutes" in keys else 15.0
    levels = tuple(
        tuple(_channel_list(r, item, f"{sub}.levels[{i}]", channels, broken))
        for i, item in enumerate(r.sequence(keys["levels"], f"{sub}.levels"))
    )
    if not levels or not all(levels):
        raise r.fail(keys["levels"], f"{sub}.levels", "give at least one level, each a list of channels")
    return EscalationConfig(after * 60.0, levels)


def _acknowledge(r: Reader, node: yaml.Node) -> AcknowledgeConfig:
    allowed = ("public_url", "secret", "alertmanagers", "link_valid_hours", "silence_hours", "timeout_seconds")
    keys = r.mapping(node, "acknowledge", allowed, required=("public_url", "secret", "alertmanagers"))
    public = r.string(keys["public_url"], "acknowledge.public_url")
    if not _URL.match(public):
        raise r.fail(keys["public_url"], "acknowledge.public_url", f"'{public}' is not an http(s) URL")
    managers = tuple(u.rstrip("/") for u in r.strings(keys["alertmanagers"], "acknowledge.alertmanagers"))
    for i, url in enumerate(managers):
        if not _URL.match(url):
            raise r.fail(keys["alertmanagers"], f"acknowledge.alertmanagers[{i}]", f"'{url}' is not an http(s) URL")
    if not managers:
        raise r.fail(keys["alertmanagers"], "acknowledge.alertmanagers", "name at least one Alertmanager")
    secret = r.secret(keys["secret"], "acknowledge.secret")
    if r.resolve_secrets and len(secret.value) < 16:
        raise r.fail(keys["secret"], "acknowledge.secret", "use at least 16 characters (it signs the links)")
    hours: tuple[int, ...] = (4, 1, 24)
    if "silence_hours" in keys:
        items = r.sequence(keys["silence_hours"], "acknowledge.silence_hours")
        hours = tuple(r.integer(n, f"acknowledge.silence_hours[{i}]", 1, 168) for i, n in enumerate(items))
        if not hours:
            raise r.fail(keys["silence_hours"], "acknowledge.silence_hours", "give at least one duration")
    valid = (
        r.number(keys["link_valid_hours"], "acknowledge.link_valid_hours", 0.01, 720)
        if "link_valid_hours" in keys
        else 24.0
    )
    timeout = (
        r.number(keys["timeout_seconds"], "acknowledge.timeout_seconds", 1, 120) if "timeout_seconds" in keys else 10.0
    )
    return AcknowledgeConfig(public.rstrip("/"), secret, managers, valid * 3600.0, hours, timeout)


def _heartbeats(
    r: Reader, node: yaml.Node, channels: dict[str, ChannelConfig], broken: set[str], routes: Mapping[str, object]
) -> HeartbeatConfig:
    keys = r.mapping(
        node,
        "heartbeats",
        ("route", "channels", "source_label", "timeout_seconds", "restart_grace_seconds", "sources"),
        required=("channels",),
    )
    route = "heartbeat"
    if "route" in keys:
        route = r.string(keys["route"], "heartbeats.route")
        if not _ROUTE.match(route):
            raise r.fail(
                keys["route"], "heartbeats.route", "use letters, digits, '.', '_' and '-' (it appears in the URL)"
            )
    if route in routes:
        raise r.fail(keys.get("route", node), "heartbeats.route", f"'{route}' is already an alert route under routes:")
    names = _channel_list(r, keys["channels"], "heartbeats.channels", channels, broken)
    if not names:
        raise r.fail(keys["channels"], "heartbeats.channels", "give at least one channel")
    values: dict[str, object] = {}
    if "source_label" in keys:
        values["source_label"] = r.string(keys["source_label"], "heartbeats.source_label")
    if "timeout_seconds" in keys:
        values["timeout_seconds"] = r.number(keys["timeout_seconds"], "heartbeats.timeout_seconds", 1.0, 7 * 86400.0)
    if "restart_grace_seconds" in keys:
        values["restart_grace_seconds"] = r.number(
            keys["restart_grace_seconds"], "heartbeats.restart_grace_seconds", 0.0, 86400.0
        )
    if "sources" in keys:
        values["sources"] = tuple(r.strings(keys["sources"], "heartbeats.sources"))
    return HeartbeatConfig(route, tuple(names), **values)  # type: ignore[arg-type]


def _links(r: Reader, node: yaml.Node) -> LinksConfig:
    keys = r.mapping(node, "links", ("alertmanager", "grafana"))
    values: dict[str, str] = {}
    for key, value in keys.items():
        text = r.string(value, f"links.{key}")
        if not _URL.match(text):
            raise r.fail(value, f"links.{key}", f"'{text}' is not an http(s) URL")
        values[key] = text.rstrip("/")
    return LinksConfig(**values)


def _templates(r: Reader, node: yaml.Node) -> dict[str, str]:
    keys = r.mapping(node, "templates", TEMPLATE_NAMES)
    out: dict[str, str] = {}
    for name, value in keys.items():
        path = Path(r.string(value, f"templates.{name}"))
        out[name] = str(path if path.is_absolute() else r.path.parent / path)
    return out


def build_renderer(config: Config) -> Renderer:
    """Compile and check every template the config uses (files and inline SMS/gateway templates)."""
    renderer = Renderer({k: Path(v) for k, v in config.templates.items()}, config.timezone)
    inline: list[tuple[str, str]] = []
    bodies: list[tuple[str, str]] = []
    for channel in config.channels.values():
        for name, text in channel.template_params:
            inline.append((f"{config.path}: channels.{channel.name}.template_params.{name}", text))
        body = channel.options.get("body_template")
        if isinstance(body, str):
            bodies.append((f"{config.path}: channels.{channel.name}.body_template", body))
    renderer.validate(inline, bodies)
    return renderer


def load_config(path: Path, resolve_secrets: bool = True) -> Config:
    """Read and validate a config file. Raises ConfigError naming file, key path and line of every problem
    found (one per section entry: each channel, person and route is checked even after another failed).

    With resolve_secrets=False, secrets are not read (their values are empty): for commands such as
    `review` that never talk to a provider and may run where the provider secrets are not set."""
    r = Reader(path, resolve_secrets)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if root is None:
        raise ConfigError(f"{path}: the file is empty")
    keys = r.mapping(root, "", _TOP, required=("channels", "routes"))
    errors: list[ConfigError] = []

    def section(parse: Callable[[], T], default: T) -> T:
        try:
            return parse()
        except ConfigError as exc:
            errors.append(exc)
            return default

    server = section(lambda: _server(r, keys["server"]), ServerConfig()) if "server" in keys else ServerConfig()
    auth = server.auth
    if not auth.bearer_tokens and not auth.basic and not auth.allow_unauthenticated and not errors:
        errors.append(
            r.fail(
                keys.get("server", root),
                "server.auth",
                "callers must authenticate: set bearer_tokens or basic (or allow_unauthenticated: true)",
            )
        )
    default_store = StoreConfig(path.parent / "relay.db")
    store = section(lambda: _store(r, keys["store"]), default_store) if "store" in keys else default_store
    delivery = (
        section(lambda: _delivery(r, keys["delivery"]), DeliveryConfig()) if "delivery" in keys else DeliveryConfig()
    )
    timezone = "Asia/Shanghai"
    if "timezone" in keys:
        timezone = section(lambda: _timezone(r, keys["timezone"]), timezone)
    no_people: dict[str, Person] = {}
    people = section(lambda: _people(r, keys["people"], errors), no_people) if "people" in keys else no_people

    no_rosters: dict[str, Roster] = {}
    rosters = no_rosters
    before = len(errors)
    if "rosters" in keys:
        rosters = section(lambda: parse_rosters(r, keys["rosters"], people, timezone), no_rosters)
    rosters_broken = len(errors) > before

    channels: dict[str, ChannelConfig] = {}
    broken: set[str] = set()
    fallbacks: dict[str, yaml.Node | None] = {}
    no_nodes: dict[str, yaml.Node] = {}
    for name, node in section(lambda: r.free_mapping(keys["channels"], "channels"), no_nodes).items():
        try:
            channels[name], fallbacks[name] = parse_channel(r, name, node, people, rosters, rosters_broken)
        except ConfigError as exc:
            errors.append(exc)
            broken.add(name)
    for name, fb_node in fallbacks.items():
        target = channels[name].fallback
        if target is not None and target not in broken and (target not in channels or target == name):
            errors.append(r.fail(fb_node, f"channels.{name}.fallback", f"'{target}' is not another defined channel"))
    no_routes: dict[str, RouteConfig] = {}
    routes = section(lambda: _routes(r, keys["routes"], channels, broken, errors), no_routes)
    no_templates: dict[str, str] = {}
    templates = section(lambda: _templates(r, keys["templates"]), no_templates) if "templates" in keys else {}
    heartbeat: HeartbeatConfig | None = None
    if "heartbeats" in keys:
        heartbeat = section(lambda: _heartbeats(r, keys["heartbeats"], channels, broken, routes), None)
    links = section(lambda: _links(r, keys["links"]), LinksConfig()) if "links" in keys else LinksConfig()
    acknowledge = section(lambda: _acknowledge(r, keys["acknowledge"]), None) if "acknowledge" in keys else None
    if errors:
        raise ConfigError("\n".join(str(e) for e in errors), [str(e) for e in errors])
    config = Config(
        path,
        server,
        store,
        delivery,
        timezone,
        people,
        channels,
        routes,
        templates,
        heartbeat,
        links,
        rosters,
        acknowledge,
    )
    try:
        build_renderer(config)
    except TemplateProblem as exc:
        raise ConfigError(str(exc)) from None
    return config


def _timezone(r: Reader, node: yaml.Node) -> str:
    timezone = r.string(node, "timezone")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise r.fail(node, "timezone", f"unknown time zone '{timezone}'") from None
    return timezone
