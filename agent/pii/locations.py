"""Where files are served or shared, read from the servers' own configuration (never guessed):

* nginx: ``root`` and ``alias`` (with the ``location`` they serve), following ``include`` globs;
* Apache httpd: ``DocumentRoot`` and ``Alias /url /path``, following ``Include``/``IncludeOptional``;
* Tomcat: each ``<Host appBase=...>`` of ``server.xml`` (relative to CATALINA_BASE);
* vsftpd: ``anon_root`` (with ``anonymous_enable=YES``: anonymous) and ``local_root``;
* Samba: every share's ``path`` (``guest ok = yes``: open to guests);

plus the folders the operator lists. Reading is bounded (files, include depth, bytes).
"""

from __future__ import annotations

import glob
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Location", "discover", "nginx_roots", "apache_roots", "tomcat_roots", "vsftpd_roots", "samba_roots"]

MAX_CONFIG_FILES = 200
MAX_CONFIG_BYTES = 4 << 20
MAX_DEPTH = 8


@dataclass(frozen=True)
class Location:
    kind: str  # web | ftp | share | configured
    path: str
    how: str  # how it is exposed, for the scan report ("nginx location /files/ (alias)", "anonymous FTP")


def _read(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            return ""
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _strip_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def _follow(main: Path, read_one: Callable[[str, Callable[[str], None]], list[Location]]) -> list[Location]:
    """Read ``main`` and every file its includes name (globs, relative to ``main``'s folder), once each, bounded
    in depth and count. ``read_one(text, include)`` returns the locations of one file and calls ``include``
    with each include pattern it meets."""
    out: list[Location] = []
    seen: set[Path] = set()

    def walk(path: Path, depth: int) -> None:
        if depth > MAX_DEPTH or path in seen or len(seen) >= MAX_CONFIG_FILES:
            return
        seen.add(path)

        def include(pattern: str) -> None:
            base = pattern if pattern.startswith("/") else str(main.parent / pattern)
            target = base.rstrip("/") + "/*" if Path(base).is_dir() else base
            for inc in sorted(glob.glob(target))[:MAX_CONFIG_FILES]:
                walk(Path(inc), depth + 1)

        out.extend(read_one(_strip_comments(_read(path)), include))

    walk(main, 0)
    return out


_NGINX = re.compile(r"\blocation\s+(?:[=~^*]+\s*)?([^\s{]+)\s*\{|([{}])|\b(root|alias|include)\s+([^;]+);")


def _nginx_file(text: str, include: Callable[[str], None]) -> list[Location]:
    out: list[Location] = []
    location: list[str] = []  # the enclosing location blocks: "location /x/ {", "root /a;", "}"
    for m in _NGINX.finditer(text):
        if m.group(1):
            location.append(m.group(1))
        elif m.group(2) == "}":
            if location:
                location.pop()
        elif m.group(3) == "include":
            include(m.group(4).strip().strip("\"'"))
        elif m.group(3):
            target = m.group(4).strip().strip("\"'")
            if "$" in target:
                continue  # a variable path: not a folder on its own
            where = f"location {location[-1]}" if location else "server"
            out.append(Location("web", target, f"nginx {where} ({m.group(3)})"))
    return out


def _apache_file(text: str, include: Callable[[str], None]) -> list[Location]:
    out: list[Location] = []
    for line in text.splitlines():
        words = line.strip().split()
        if not words:
            continue
        key = words[0].lower()
        if key == "documentroot" and len(words) >= 2:
            out.append(Location("web", words[1].strip("\"'"), "Apache DocumentRoot"))
        elif key in ("alias", "scriptalias") and len(words) >= 3:
            out.append(Location("web", words[2].strip("\"'"), f"Apache Alias {words[1]}"))
        elif key in ("include", "includeoptional") and len(words) >= 2:
            include(words[1].strip("\"'"))
    return out


def nginx_roots(main: Path) -> list[Location]:
    return _follow(main, _nginx_file)


def apache_roots(main: Path) -> list[Location]:
    return _follow(main, _apache_file)


def tomcat_roots(server_xml: Path) -> list[Location]:
    text = _read(server_xml)
    base = server_xml.parent.parent  # CATALINA_BASE/conf/server.xml
    out = []
    for m in re.finditer(r"<Host\b[^>]*\bappBase\s*=\s*[\"']([^\"']+)[\"']", text):
        path = m.group(1)
        full = path if path.startswith("/") else str(base / path)
        out.append(Location("web", full, f"Tomcat appBase ({server_xml})"))
    return out


def _settings(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in _strip_comments(text).splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip().lower()] = value.strip()
    return out


def vsftpd_roots(conf: Path) -> list[Location]:
    settings = _settings(_read(conf))
    out = []
    anonymous = settings.get("anonymous_enable", "NO").upper() == "YES"
    anon_root = settings.get("anon_root") or ("/srv/ftp" if anonymous else "")
    if anonymous and anon_root:
        out.append(Location("ftp", anon_root, "vsftpd anonymous FTP (anon_root)"))
    if settings.get("local_root"):
        out.append(Location("ftp", settings["local_root"], "vsftpd local_root"))
    return out


def samba_roots(conf: Path) -> list[Location]:
    out = []
    section = ""
    values: dict[str, str] = {}

    def flush() -> None:
        if section and section.lower() not in ("global", "printers", "print$") and values.get("path"):
            guest = values.get("guest ok", values.get("public", "no")).lower() in ("yes", "true", "1")
            how = f"Samba share [{section}]" + (" (guest ok: anyone)" if guest else "")
            out.append(Location("share", values["path"], how))

    for raw in _read(conf).splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            flush()
            section, values = line[1:-1].strip(), {}
            continue
        key, sep, value = line.partition("=")
        if sep:
            values[" ".join(key.lower().split())] = value.strip()
    flush()
    return out


DEFAULT_CONFIGS = {
    "nginx": ["/etc/nginx/nginx.conf", "/usr/local/nginx/conf/nginx.conf"],
    "apache": ["/etc/apache2/apache2.conf", "/etc/httpd/conf/httpd.conf"],
    "tomcat": ["/etc/tomcat*/server.xml", "/opt/tomcat*/conf/server.xml", "/usr/local/tomcat*/conf/server.xml"],
    "vsftpd": ["/etc/vsftpd.conf", "/etc/vsftpd/vsftpd.conf"],
    "samba": ["/etc/samba/smb.conf"],
}
_READERS = {"nginx": nginx_roots, "apache": apache_roots, "tomcat": tomcat_roots, "vsftpd": vsftpd_roots,
            "samba": samba_roots}


def discover(configs: Mapping[str, Sequence[str]], configured: Iterable[str]) -> list[Location]:
    """Every location, each path once (the first way it is exposed wins), existing folders only."""
    found: list[Location] = []
    for server, patterns in configs.items():
        for pattern in patterns:
            for path in sorted(glob.glob(pattern))[:MAX_CONFIG_FILES]:
                found += _READERS[server](Path(path))
    found += [Location("configured", p, "configured folder (collectors.pii.paths)") for p in configured]
    out: list[Location] = []
    seen: set[str] = set()
    for loc in found:
        real = str(Path(loc.path).resolve()) if Path(loc.path).is_dir() else ""
        if real and real not in seen:
            seen.add(real)
            out.append(Location(loc.kind, real, loc.how))
    return out
