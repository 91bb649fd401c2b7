"""Inventory CSV -> Prometheus ``file_sd`` JSON (``shaobing targets inventory.csv -o targets.json``).

The inventory is the list a county office already keeps, one row per township server::

    host,address,township,role,site,scheme
    zf-web-01,10.20.1.11,城关镇,web,镇政府机房,
    zf-db-01,10.20.1.12:10130,城关镇,db,,http

``address`` is an IP or DNS name, with an optional ``:port`` (default 10130); ``site`` and ``scheme`` are
optional columns. Every row becomes one target with the labels ``host``, ``township``, ``role`` (and ``site``
when given); targets that share the same labels except ``host`` are still separate groups, so Prometheus shows
each host by name.

``scheme`` is ``https`` (an agent installed with ``--tls-cert/--tls-key``) or ``http`` (one installed without
a certificate); empty means the scrape job's own ``scheme``, which is ``https`` in deploy/central/prometheus.yml.
A given value is emitted as the target label ``__scheme__``, which Prometheus uses for that target instead of
the job's scheme and drops after relabelling, so one ``shaobing`` job (the one every alert rule selects) scrapes
a mixed fleet with one password and one CA.

All problems are reported at once, each with ``file:line``; nothing is written unless the whole file is valid.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import re
from dataclasses import dataclass

from agent.schema import Problem, SchemaError

__all__ = ["Target", "parse_inventory", "file_sd_json", "DEFAULT_AGENT_PORT"]

DEFAULT_AGENT_PORT = 10130
REQUIRED = ("host", "address", "township", "role")
OPTIONAL = ("site", "scheme")
SCHEMES = ("https", "http")
_COLUMNS = "host,address,township,role[,site][,scheme]"
_HOST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_DNS_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9\-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9\-]{0,61}"
                     r"[A-Za-z0-9])?)*$")
# Label values may be any text (Chinese included); only control characters would break a config or a chart.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Target:
    host: str
    address: str  # host:port as Prometheus dials it
    township: str
    role: str
    site: str = ""
    line: int = 0
    scheme: str = ""  # "" = the job's scheme

    def labels(self) -> dict[str, str]:
        out = {"host": self.host, "township": self.township, "role": self.role}
        if self.site:
            out["site"] = self.site
        if self.scheme:
            out["__scheme__"] = self.scheme
        return out


def _address(value: str) -> str:
    """Normalise ``ip``, ``ip:port``, ``[v6]:port``, ``name`` or ``name:port``; raise ValueError with the reason."""
    if value.startswith("["):
        inner, _, rest = value[1:].partition("]")
        ipaddress.IPv6Address(inner)
        port = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise ValueError(f"expected [ipv6]:port, got {value!r}")
        return f"[{inner}]:{_port(port)}"
    if value.count(":") > 1:
        ipaddress.IPv6Address(value)
        return f"[{value}]:{DEFAULT_AGENT_PORT}"
    name, _, port = value.partition(":")
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        if not _DNS_RE.match(name) or name.replace(".", "").isdigit():
            raise ValueError(f"not an IP address or DNS name: {name!r}") from None
    return f"{name}:{_port(port)}"


def _port(text: str) -> int:
    if not text:
        return DEFAULT_AGENT_PORT
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"port must be 1-65535, got {text!r}")
    return int(text)


def parse_inventory(text: str, filename: str) -> list[Target]:
    """Validate an inventory; raise SchemaError listing every problem (file:line: column: message)."""
    problems: list[Problem] = []
    if text.startswith("\ufeff"):  # Excel's "CSV UTF-8" adds a byte-order mark
        text = text[1:]
    lines = text.splitlines()
    # Skip leading comment/blank lines but keep line numbers true to the file.
    start = 0
    while start < len(lines) and (not lines[start].strip() or lines[start].lstrip().startswith("#")):
        start += 1
    if start == len(lines):
        raise SchemaError([Problem(filename, None, "", f"empty inventory: expected a header line {_COLUMNS}")])
    reader = csv.reader(io.StringIO("\n".join(lines[start:])))
    header = [h.strip().lower() for h in next(reader)]
    header_line = start + 1
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if missing or unknown:
        what = []
        if missing:
            what.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            what.append(f"unknown column(s) {', '.join(unknown)}")
        raise SchemaError([Problem(filename, header_line, "header",
                                   f"{'; '.join(what)} (expected {_COLUMNS})")])
    targets: list[Target] = []
    seen_hosts: dict[str, int] = {}
    seen_addresses: dict[str, int] = {}
    for offset, row in enumerate(reader, start=1):
        line = header_line + offset
        if not row or all(not cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
            continue
        if len(row) != len(header):
            problems.append(Problem(filename, line, "row", f"expected {len(header)} columns, got {len(row)}"))
            continue
        cells = {h: cell.strip() for h, cell in zip(header, row)}
        bad = False
        for col in REQUIRED:
            if not cells[col]:
                problems.append(Problem(filename, line, col, "must not be empty"))
                bad = True
        if bad:
            continue
        if not _HOST_RE.match(cells["host"]):
            problems.append(Problem(filename, line, "host", f"invalid host name {cells['host']!r} "
                                    "(letters, digits, '.', '-', '_')"))
            continue
        controls = [col for col in ("township", "role", "site") if _CONTROL_RE.search(cells.get(col, ""))]
        if controls:
            problems.append(Problem(filename, line, controls[0], "contains control characters"))
            continue
        scheme = cells.get("scheme", "").lower()
        if scheme and scheme not in SCHEMES:
            problems.append(Problem(filename, line, "scheme",
                                    f"must be https or http (empty: the job's scheme), got {cells['scheme']!r}"))
            continue
        try:
            address = _address(cells["address"])
        except ValueError as exc:
            problems.append(Problem(filename, line, "address", str(exc)))
            continue
        if cells["host"] in seen_hosts:
            problems.append(Problem(filename, line, "host",
                                    f"duplicate host {cells['host']!r} (first on line {seen_hosts[cells['host']]})"))
            continue
        if address in seen_addresses:
            problems.append(Problem(filename, line, "address",
                                    f"duplicate address {address} (first on line {seen_addresses[address]})"))
            continue
        seen_hosts[cells["host"]] = line
        seen_addresses[address] = line
        targets.append(Target(cells["host"], address, cells["township"], cells["role"], cells.get("site", ""),
                              line, scheme))
    if problems:
        raise SchemaError(problems)
    if not targets:
        raise SchemaError([Problem(filename, header_line, "", "no hosts listed under the header")])
    return targets


def file_sd_json(targets: list[Target]) -> str:
    """The file_sd document: one group per host (labels differ by ``host``), sorted for stable diffs."""
    groups = [{"targets": [t.address], "labels": t.labels()}
              for t in sorted(targets, key=lambda t: (t.township, t.host))]
    return json.dumps(groups, ensure_ascii=False, indent=2) + "\n"
