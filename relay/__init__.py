"""shaobing-relay: durable delivery of Alertmanager webhooks to SMS and IM channels."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
