"""Shaobing (哨兵) agent: probes a township machine and exports it to Prometheus."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
