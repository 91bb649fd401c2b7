"""The exporter-toolkit web configuration file (``--web.config.file`` of node_exporter), so habits carry over.

Supported::

    tls_server_config:
      cert_file: /etc/shaobing/tls/agent.crt
      key_file: /etc/shaobing/tls/agent.key
      client_auth_type: RequireAndVerifyClientCert   # or NoClientCert (default), VerifyClientCertIfGiven, ...
      client_ca_file: /etc/shaobing/tls/ca.crt
      min_version: TLS12
    http_server_config:
      headers: {Strict-Transport-Security: max-age=31536000}
    basic_auth_users:
      prometheus: $2y$10$...   # bcrypt hash, e.g. from `htpasswd -nBC 10 "" | tr -d ':\\n'`

Relative paths are resolved against the directory of the web configuration file, as exporter-toolkit does.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from agent import passhash
from agent.compat import Literal
from agent.digest import keyed
from agent.schema import Problem, SchemaError, load

if TYPE_CHECKING:
    import ssl  # imported when TLS is configured: libssl and libcrypto are 5 MiB of resident memory

__all__ = ["WebConfig", "TLSServerConfig", "load_web_config", "BasicAuth", "downgrade"]

ClientAuthType = Literal[
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
]


@dataclass
class TLSServerConfig:
    cert_file: str
    key_file: str
    client_auth_type: ClientAuthType = "NoClientCert"
    client_ca_file: Optional[str] = None
    min_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] = "TLS12"
    max_version: Optional[Literal["TLS10", "TLS11", "TLS12", "TLS13"]] = None

    def problems(self) -> list[tuple[str, str]]:
        verifying = self.client_auth_type in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert")
        if verifying and not self.client_ca_file:
            return [("client_ca_file", f"client_auth_type {self.client_auth_type} needs client_ca_file")]
        if self.client_ca_file and not verifying:
            return [("client_auth_type", "client_ca_file is set but client_auth_type does not verify clients")]
        return []


@dataclass
class HTTPServerConfig:
    headers: dict[str, str] = field(default_factory=dict)
    http2: bool = False  # accepted for compatibility; this server speaks HTTP/1.1


def _check_bcrypt_users(users: dict[str, str]) -> list[tuple[str, str]]:
    return [
        (user, "must be a bcrypt hash ($2y$...), not a plain password")
        for user, hashed in users.items()
        if not hashed.startswith(("$2a$", "$2b$", "$2y$"))
    ]


_TLS_ORDER = ("TLS10", "TLS11", "TLS12", "TLS13")


def _limit_versions(ctx: ssl.SSLContext, low: str, high: Optional[str]) -> None:
    import ssl

    if hasattr(ssl, "TLSVersion"):
        versions = {
            "TLS10": ssl.TLSVersion.TLSv1,
            "TLS11": ssl.TLSVersion.TLSv1_1,
            "TLS12": ssl.TLSVersion.TLSv1_2,
            "TLS13": ssl.TLSVersion.TLSv1_3,
        }
        ctx.minimum_version = versions[low]
        if high:
            ctx.maximum_version = versions[high]
        return
    # Python 3.6 (CentOS 7): no minimum_version; the same limits as OP_NO_* options.
    off = {"TLS10": "OP_NO_TLSv1", "TLS11": "OP_NO_TLSv1_1", "TLS12": "OP_NO_TLSv1_2",
           "TLS13": "OP_NO_TLSv1_3"}  # pragma: no cover - run by the 3.6 installer test
    lo, hi = _TLS_ORDER.index(low), _TLS_ORDER.index(high) if high else len(_TLS_ORDER) - 1
    for i, name in enumerate(_TLS_ORDER):
        if (i < lo or i > hi) and hasattr(ssl, off[name]):
            ctx.options |= getattr(ssl, off[name])


@dataclass
class WebConfig:
    tls_server_config: Optional[TLSServerConfig] = None
    http_server_config: HTTPServerConfig = field(default_factory=HTTPServerConfig)
    basic_auth_users: dict[str, str] = field(default_factory=dict, metadata={"check": _check_bcrypt_users})

    def ssl_context(self) -> Optional[ssl.SSLContext]:
        tls = self.tls_server_config
        if tls is None:
            return None
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        _limit_versions(ctx, tls.min_version, tls.max_version)
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
        if tls.client_ca_file:
            ctx.load_verify_locations(cafile=tls.client_ca_file)
        ctx.verify_mode = {
            "NoClientCert": ssl.CERT_NONE,
            # Python cannot request a certificate without verifying it; these two verify when one is given.
            "RequestClientCert": ssl.CERT_NONE,
            "RequireAnyClientCert": ssl.CERT_REQUIRED,
            "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
            "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
        }[tls.client_auth_type]
        return ctx


def load_web_config(path: str) -> WebConfig:
    """Load and check a web config file: its YAML, its bcrypt hashes, and that the TLS files load.

    A file that says nothing (empty, or only comments) is refused: it is what a truncated copy or a failed
    deployment leaves, and read as "no TLS, no auth" it would silently open the endpoint. To serve plain
    HTTP without auth, remove ``web_config_file`` from agent.yml."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SchemaError([Problem(path, None, "", f"cannot read web config: {exc.strerror or exc}")]) from None
    if not any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
        raise SchemaError([Problem(path, None, "", "the web config file is empty; it would turn off TLS and "
                                   "authentication. Fix the file, or remove web_config_file from agent.yml "
                                   "to serve plain HTTP on purpose")])
    cfg = load(text, WebConfig, path)
    base = Path(path).resolve().parent
    tls = cfg.tls_server_config
    if tls is not None:
        tls.cert_file = str(base / tls.cert_file)
        tls.key_file = str(base / tls.key_file)
        if tls.client_ca_file:
            tls.client_ca_file = str(base / tls.client_ca_file)
        try:
            cfg.ssl_context()
        except OSError as exc:  # ssl.SSLError is an OSError
            raise SchemaError(
                [Problem(path, None, "tls_server_config", f"cannot load certificate/key: {exc}")]
            ) from None
    return cfg


def _protection(web: WebConfig) -> tuple[bool, bool]:
    """(TLS, authentication): basic auth, or client certificates that are required and verified."""
    tls = web.tls_server_config
    client_certs = tls is not None and tls.client_auth_type in ("RequireAnyClientCert", "RequireAndVerifyClientCert")
    return tls is not None, bool(web.basic_auth_users) or client_certs


def downgrade(old: WebConfig, new: WebConfig) -> list[str]:
    """What `new` would take away from the running endpoint's protection (empty: nothing)."""
    (old_tls, old_auth), (new_tls, new_auth) = _protection(old), _protection(new)
    lost = []
    if old_tls and not new_tls:
        lost.append("TLS")
    if old_auth and not new_auth:
        lost.append("authentication")
    return lost


class BasicAuth:
    """bcrypt basic auth with a bounded verification cost.

    A bcrypt check costs tens of milliseconds of CPU by design. Verdicts are cached under a keyed digest of
    (user, password), so Prometheus' repeated scrapes cost nothing, and at most ``max_concurrent`` checks run
    at once, so a burst of wrong passwords cannot eat the machine or starve the scrapes that are cached.
    Good and bad verdicts live in separate bounded LRU caches: a flood of distinct wrong passwords evicts
    only other wrong passwords, never the credentials Prometheus uses.
    """

    def __init__(
        self, users: dict[str, str], max_concurrent: int = 2, cache_size: int = 1024, good_cache_size: int = 64
    ) -> None:
        self._users = {u: h.encode() for u, h in users.items()}
        self._key = os.urandom(32)
        self._good: OrderedDict[bytes, bool] = OrderedDict()
        self._bad: OrderedDict[bytes, bool] = OrderedDict()
        self._sizes = {True: good_cache_size, False: cache_size}
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_concurrent)
        # Unknown users still pay a bcrypt check, so timing does not reveal which users exist. (Without users
        # there is nothing to check: no hash, and no bcrypt loaded.)
        self._dummy = passhash.hashpw(b"shaobing-dummy", rounds=10) if self._users else b""

    @property
    def enabled(self) -> bool:
        return bool(self._users)

    def _digest(self, user: str, password: str) -> bytes:
        return keyed(self._key, f"{user}\0{password}".encode("utf-8", "surrogatepass"))

    def cached(self, user: str, password: str) -> Optional[bool]:
        """The verdict if these credentials were checked before (no bcrypt), else None."""
        digest = self._digest(user, password)
        with self._lock:
            for cache in (self._good, self._bad):
                if digest in cache:
                    return cache[digest]
        return None

    def check(self, user: str, password: str) -> bool:
        digest = self._digest(user, password)
        with self._lock:
            for cache in (self._good, self._bad):
                if digest in cache:
                    cache.move_to_end(digest)
                    return cache[digest]
        with self._slots:
            hashed = self._users.get(user)
            try:
                ok = passhash.checkpw(password.encode(), hashed if hashed is not None else self._dummy)
            except ValueError:
                ok = False
            ok = ok and hashed is not None
        with self._lock:
            cache = self._good if ok else self._bad
            cache[digest] = ok
            while len(cache) > self._sizes[ok]:
                cache.popitem(last=False)  # least recently used
        return ok
