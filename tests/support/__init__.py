"""Shared test support for Shaobing's test suites.

Modules:
    prometheus  start a real Prometheus / Alertmanager on loopback, query them, stop them (see its docstring).
"""
