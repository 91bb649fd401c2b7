"""Fixtures for the alert-rule, routing and end-to-end alerting tests."""

from __future__ import annotations
