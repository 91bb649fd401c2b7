"""The frame every Shaobing dashboard shares: uid, tags, time range, variables, links to its siblings; and
``section``, which lays out one titled row of panels in it."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import dashboard as dash_m

from dashboards.panels import row
from dashboards.variables import variables

__all__ = ["TAG", "frame", "section"]

TAG = "shaobing"


def frame(
    uid: str,
    title: str,
    description: str,
    *,
    single_instance: bool = False,
    time_from: str = "now-6h",
    refresh: str = "1m",
) -> dash_b.Dashboard:
    return (
        dash_b.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .timezone("browser")
        .time(time_from, "now")
        .refresh(refresh)
        .readonly()
        .tooltip(dash_m.DashboardCursorSync.CROSSHAIR)
        .variables(list(variables(single_instance)))
        .link(
            # A dropdown of the other Shaobing dashboards that keeps the township/instance and time selection.
            dash_b.DashboardLink("哨兵仪表盘 Shaobing")
            .type(dash_m.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )


def section(d: dash_b.Dashboard, title: str, *panels: Builder[dash_m.Panel]) -> dash_b.Dashboard:
    """A row titled ``title``, then its panels left to right, wrapping at the grid's 24 columns."""
    d = d.with_row(row(title))
    for panel in panels:
        d = d.with_panel(panel)
    return d
