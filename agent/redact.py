"""URLs fit for a log line or an error message: no ``user:password@``, no query string (``?token=…``)."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["redact_url"]


def redact_url(url: str) -> str:
    """``https://u:p@host:8443/path?token=x`` -> ``https://host:8443/path?…``.

    >>> redact_url("https://u:p@oa.example:8443/login?token=abc")
    'https://oa.example:8443/login?…'
    >>> redact_url("not a url")
    'not a url'
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<unparsable URL>"
    if not parts.scheme or not parts.netloc:
        return url if "@" not in url and "?" not in url else "<URL not shown>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if port:
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}{parts.path}{'?…' if parts.query else ''}"
