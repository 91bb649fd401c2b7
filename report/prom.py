"""A small Prometheus HTTP API client: instant and range queries, every failure a ReportError naming the URL.

No retries behind the caller's back and no partial answers: a report is built from every query or not at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["Prometheus", "ReportError", "Series"]

# Prometheus refuses range queries of more than 11,000 points per series.
MAX_POINTS = 11_000


class ReportError(Exception):
    """A report cannot be made (Prometheus unreachable or refusing, bad input); the message says why."""


@dataclass
class Series:
    labels: dict[str, str]
    # (unix time, value); for an instant query exactly one point.
    points: list[tuple[float, float]] = field(default_factory=list)

    @property
    def value(self) -> float:
        return self.points[-1][1] if self.points else math.nan


class Prometheus:
    def __init__(
        self,
        url: str,
        *,
        timeout: float = 60.0,
        bearer_token: str = "",
        basic_auth: tuple[str, str] | None = None,
        verify: bool | str = True,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}
        self._client = httpx.Client(
            timeout=timeout, headers=headers, auth=basic_auth, verify=verify, follow_redirects=False
        )
        self.queries = 0

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def instant(self, query: str, at: float) -> list[Series]:
        data = self._get("/api/v1/query", {"query": query, "time": _ts(at)})
        return self._parse(data, query)

    def range(self, query: str, start: float, end: float, step: float) -> list[Series]:
        if step <= 0 or (end - start) / step + 1 > MAX_POINTS:
            raise ReportError(f"range query of {(end - start) / max(step, 1):.0f} points is too long: {query}")
        data = self._get(
            "/api/v1/query_range", {"query": query, "start": _ts(start), "end": _ts(end), "step": f"{step:g}"}
        )
        return self._parse(data, query)

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        self.queries += 1
        where = f"{self.url}{path}"
        try:
            response = self._client.post(where, data=params)
        except httpx.TimeoutException as exc:
            raise ReportError(f"Prometheus {self.url} did not answer in time ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise ReportError(f"cannot reach Prometheus {self.url}: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict) or body.get("status") != "success":
            detail = body.get("error", "") if isinstance(body, dict) else response.text[:200]
            raise ReportError(f"Prometheus {self.url} refused a query (HTTP {response.status_code}: {detail})")
        data = body.get("data")
        if not isinstance(data, dict):
            raise ReportError(f"Prometheus {self.url} answered without data")
        return data

    @staticmethod
    def _parse(data: dict[str, Any], query: str) -> list[Series]:
        kind = data.get("resultType")
        result = data.get("result")
        if not isinstance(result, list):
            raise ReportError(f"unexpected answer to {query}")
        out: list[Series] = []
        for item in result:
            labels = {str(k): str(v) for k, v in (item.get("metric") or {}).items()}
            if kind == "vector":
                t, v = item["value"]
                out.append(Series(labels, [(float(t), float(v))]))
            elif kind == "matrix":
                out.append(Series(labels, [(float(t), float(v)) for t, v in item["values"]]))
            elif kind == "scalar":
                t, v = result
                return [Series({}, [(float(t), float(v))])]
            else:
                raise ReportError(f"unexpected result type {kind!r} for {query}")
        return out


def _ts(t: float) -> str:
    return f"{t:.3f}"
