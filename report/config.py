"""report.yml: where Prometheus and the relay's history are, the scope, where reports go and who gets them.

Every key is optional; command-line options override the file. Errors name file, key path and line
(the relay's config reader), and secrets are only read from files or the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from relay.config.nodes import ConfigError, Reader, Secret

__all__ = ["ReportConfig", "EmailConfig", "load", "ConfigError"]


@dataclass(frozen=True)
class EmailConfig:
    host: str
    port: int
    sender: str
    to: tuple[str, ...]
    security: str = "starttls"  # starttls, ssl or none
    username: str = ""
    password: Secret | None = None
    timeout_seconds: float = 30.0
    attach: tuple[str, ...] = ("pdf",)
    ca_file: str = ""


@dataclass(frozen=True)
class ReportConfig:
    path: Path | None = None
    title: str = "政务服务器运行巡检报告"
    prometheus_url: str = "http://127.0.0.1:9090"
    prometheus_timeout: float = 120.0
    bearer_token: Secret | None = None
    basic_user: str = ""
    basic_password: Secret | None = None
    ca_file: str = ""
    job: str = "shaobing"
    townships: tuple[str, ...] = ()
    instances: tuple[str, ...] = ()
    period: str = "7d"
    relay_db: Path | None = None
    directory: Path = Path("/var/lib/shaobing/reports")
    keep: int = 12
    formats: tuple[str, ...] = ("html", "pdf")
    relay_config: Path | None = None
    channels: tuple[str, ...] = ()
    link_base: str = ""
    email: EmailConfig | None = None
    extra: dict[str, str] = field(default_factory=dict)


_TOP = ("title", "prometheus", "job", "scope", "period", "relay_db", "output", "delivery")


def load(path: Path) -> ReportConfig:
    r = Reader(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    if len(text) > 1 << 20:
        raise ConfigError(f"{path}: larger than 1 MiB")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if root is None:
        return ReportConfig(path=path)
    keys = r.mapping(root, "", _TOP)
    values: dict[str, object] = {"path": path}
    here = path.parent

    def local_path(node: yaml.Node, keypath: str) -> Path:
        p = Path(r.string(node, keypath))
        return p if p.is_absolute() else here / p

    if "title" in keys:
        values["title"] = r.string(keys["title"], "title")
    if "prometheus" in keys:
        prom = r.mapping(
            keys["prometheus"], "prometheus", ("url", "timeout_seconds", "bearer_token", "basic_auth", "ca_file")
        )
        if "url" in prom:
            url = r.string(prom["url"], "prometheus.url")
            if not url.startswith(("http://", "https://")):
                raise r.fail(prom["url"], "prometheus.url", "must start with http:// or https://")
            values["prometheus_url"] = url
        if "timeout_seconds" in prom:
            values["prometheus_timeout"] = r.number(prom["timeout_seconds"], "prometheus.timeout_seconds", 1, 3600)
        if "bearer_token" in prom:
            values["bearer_token"] = r.secret(prom["bearer_token"], "prometheus.bearer_token")
        if "basic_auth" in prom:
            basic = r.mapping(
                prom["basic_auth"], "prometheus.basic_auth", ("username", "password"), ("username", "password")
            )
            values["basic_user"] = r.string(basic["username"], "prometheus.basic_auth.username")
            values["basic_password"] = r.secret(basic["password"], "prometheus.basic_auth.password")
        if "ca_file" in prom:
            values["ca_file"] = str(local_path(prom["ca_file"], "prometheus.ca_file"))
    if "job" in keys:
        values["job"] = r.string(keys["job"], "job")
    if "scope" in keys:
        scope = r.mapping(keys["scope"], "scope", ("townships", "instances"))
        if "townships" in scope:
            values["townships"] = tuple(r.strings(scope["townships"], "scope.townships"))
        if "instances" in scope:
            values["instances"] = tuple(r.strings(scope["instances"], "scope.instances"))
    if "period" in keys:
        values["period"] = r.string(keys["period"], "period")
    if "relay_db" in keys:
        values["relay_db"] = local_path(keys["relay_db"], "relay_db")
    if "output" in keys:
        out = r.mapping(keys["output"], "output", ("directory", "keep", "formats"))
        if "directory" in out:
            values["directory"] = local_path(out["directory"], "output.directory")
        if "keep" in out:
            values["keep"] = r.integer(out["keep"], "output.keep", 1, 1000)
        if "formats" in out:
            formats = [
                r.choice(n, f"output.formats[{i}]", ("html", "pdf"))
                for i, n in enumerate(r.sequence(out["formats"], "output.formats"))
            ]
            if not formats:
                raise r.fail(out["formats"], "output.formats", "name at least one of html, pdf")
            values["formats"] = tuple(formats)
    if "delivery" in keys:
        d = r.mapping(keys["delivery"], "delivery", ("relay_config", "channels", "link_base", "email"))
        if "relay_config" in d:
            values["relay_config"] = local_path(d["relay_config"], "delivery.relay_config")
        if "channels" in d:
            values["channels"] = tuple(r.strings(d["channels"], "delivery.channels"))
            if values["channels"] and "relay_config" not in d:
                raise r.fail(
                    d["channels"], "delivery.channels", "channels are the relay's: set delivery.relay_config too"
                )
        if "link_base" in d:
            values["link_base"] = r.string(d["link_base"], "delivery.link_base")
        if "email" in d:
            values["email"] = _email(r, d["email"])
    return ReportConfig(**values)  # type: ignore[arg-type]


def _email(r: Reader, node: yaml.Node) -> EmailConfig:
    allowed = ("host", "port", "from", "to", "security", "username", "password", "timeout_seconds", "attach", "ca_file")
    e = r.mapping(node, "delivery.email", allowed, ("host", "from", "to"))
    security = (
        r.choice(e["security"], "delivery.email.security", ("starttls", "ssl", "none"))
        if "security" in e
        else "starttls"
    )
    default_port = {"starttls": 587, "ssl": 465, "none": 25}[security]
    to = tuple(r.strings(e["to"], "delivery.email.to"))
    if not to:
        raise r.fail(e["to"], "delivery.email.to", "name at least one address")
    for i, address in enumerate(to):
        if "@" not in address:
            raise r.fail(e["to"], f"delivery.email.to[{i}]", f"'{address}' is not an e-mail address")
    username = r.string(e["username"], "delivery.email.username") if "username" in e else ""
    password = r.secret(e["password"], "delivery.email.password") if "password" in e else None
    if username and password is None:
        raise r.fail(node, "delivery.email", "username given without password")
    ca_file = ""
    if "ca_file" in e:
        ca = Path(r.string(e["ca_file"], "delivery.email.ca_file"))
        ca_file = str(ca if ca.is_absolute() else r.path.parent / ca)
    return EmailConfig(
        ca_file=ca_file,
        host=r.string(e["host"], "delivery.email.host"),
        port=r.integer(e["port"], "delivery.email.port", 1, 65535) if "port" in e else default_port,
        sender=r.string(e["from"], "delivery.email.from"),
        to=to,
        security=security,
        username=username,
        password=password,
        timeout_seconds=r.number(e["timeout_seconds"], "delivery.email.timeout_seconds", 1, 600)
        if "timeout_seconds" in e
        else 30.0,
        attach=tuple(
            r.choice(n, f"delivery.email.attach[{i}]", ("html", "pdf"))
            for i, n in enumerate(r.sequence(e["attach"], "delivery.email.attach"))
        )
        if "attach" in e
        else ("pdf",),
    )
