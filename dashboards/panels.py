"""Panel builders shared by every dashboard: one datasource reference, one way to write a query.

Every panel and every query points at the ``$datasource`` variable (whose default is the provisioned
Prometheus, uid ``shaobing-prometheus``), so a site with two Prometheus servers switches with one click and
the tests can assert that no panel hard-codes another datasource.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional, TypeVar

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import prometheus as prom_b
from grafana_foundation_sdk.builders import stat as stat_b
from grafana_foundation_sdk.builders import table as table_b
from grafana_foundation_sdk.builders import timeseries as ts_b
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.variants import Dataquery
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dash_m
from grafana_foundation_sdk.models import prometheus as prom_m

__all__ = [
    "DATASOURCE_UID",
    "DATASOURCE",
    "Column",
    "DataLink",
    "Query",
    "Step",
    "steps",
    "worse_above",
    "worse_below",
    "BAD_IF_ANY",
    "WARN_IF_ANY",
    "GOOD_IF_ONE",
    "HOST_LABELS",
    "HOST_LINKS",
    "stat",
    "timeseries",
    "table",
    "link_to_host",
    "link_to_fleet_township",
    "row",
]

# The uid of the Prometheus datasource provisioned by deploy/central/grafana/provisioning/datasources/.
DATASOURCE_UID = "shaobing-prometheus"
DATASOURCE = dash_m.DataSourceRef(type_val="prometheus", uid="${datasource}")

GREEN, ORANGE, RED, BLUE, YELLOW = "green", "orange", "red", "blue", "yellow"


@dataclass(frozen=True)
class Query:
    """One PromQL query. ``instant`` for tables and stats that show "now"; ``legend`` uses Grafana's {{label}}."""

    expr: str
    legend: str = ""
    instant: bool = False


Step = tuple[Optional[float], str]


def steps(base: str, *rest: tuple[float, str]) -> list[Step]:
    """Absolute threshold steps: the base colour, then (value, colour) pairs from low to high."""
    return [(None, base), *rest]


def worse_above(warn: float, crit: Optional[float] = None) -> list[Step]:
    """Green, orange from ``warn``, red from ``crit``: for values where higher is worse (usage, age, skew)."""
    return steps(GREEN, (warn, ORANGE)) if crit is None else steps(GREEN, (warn, ORANGE), (crit, RED))


def worse_below(warn: float, crit: float) -> list[Step]:
    """Red below ``crit``, orange below ``warn``, green above: for time left (certificates, support)."""
    return steps(RED, (crit, ORANGE), (warn, GREEN))


# Counts of findings: any is a problem (BAD) or worth a look (WARN). GOOD_IF_ONE is for 0/1 "up" gauges.
BAD_IF_ANY = steps(GREEN, (1, RED))
WARN_IF_ANY = steps(GREEN, (1, ORANGE))
GOOD_IF_ONE = steps(RED, (1, GREEN))


def _thresholds(values: Sequence[Step]) -> dash_b.ThresholdsConfig:
    return (
        dash_b.ThresholdsConfig()
        .mode(dash_m.ThresholdsMode.ABSOLUTE)
        .steps([dash_m.Threshold(value=v, color=c) for v, c in values])
    )


def _targets(queries: Sequence[Query], *, table_format: bool = False) -> list[Builder[Dataquery]]:
    out: list[Builder[Dataquery]] = []
    for index, q in enumerate(queries):
        target = prom_b.Dataquery().expr(q.expr).ref_id(chr(ord("A") + index)).datasource(DATASOURCE)
        target = target.editor_mode(prom_m.QueryEditorMode.CODE)
        if q.legend:
            target = target.legend_format(q.legend)
        target = target.instant() if q.instant else target.range()
        if table_format:
            target = target.format(prom_m.PromQueryFormat.TABLE)
        out.append(target)
    return out


Panel = TypeVar("Panel", stat_b.Panel, ts_b.Panel)


def _panel(
    panel: Panel, title: str, description: str, targets: list[Builder[Dataquery]], unit: str, width: int, height: int
) -> Panel:
    """What a stat and a time series share: texts, the datasource variable, queries, unit and size."""
    return (
        panel.title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(targets)
        .unit(unit)
        .span(width)
        .height(height)
    )


def stat(
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    unit: str = "none",
    thresholds: Sequence[Step] = (),
    width: int = 4,
    height: int = 4,
    decimals: Optional[int] = None,
    no_value: str = "无数据",
    graph: bool = False,
) -> stat_b.Panel:
    # Without a sparkline only the latest value is shown: an instant query, cheap even over 30 days.
    targets = _targets([Query(q.expr, q.legend, instant=q.instant or not graph) for q in queries])
    panel = (
        _panel(stat_b.Panel(), title, description, targets, unit, width, height)
        .no_value(no_value)
        .color_mode(common.BigValueColorMode.BACKGROUND if thresholds else common.BigValueColorMode.VALUE)
        .graph_mode(common.BigValueGraphMode.AREA if graph else common.BigValueGraphMode.NONE)
        .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]))
        .thresholds(_thresholds(thresholds or steps(BLUE)))
    )
    if decimals is not None:
        panel = panel.decimals(decimals)
    return panel


def timeseries(
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    unit: str = "none",
    thresholds: Sequence[Step] = (),
    width: int = 12,
    height: int = 8,
    stacked: bool = False,
    min_value: Optional[float] = None,
    max_value: Optional[float] = None,
    time_from: Optional[str] = None,
) -> ts_b.Panel:
    panel = (
        _panel(ts_b.Panel(), title, description, _targets(queries), unit, width, height)
        .fill_opacity(10 if not stacked else 40)
        .line_width(1)
        .legend(
            common_b.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
        .tooltip(common_b.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.DESCENDING))
    )
    if stacked:
        panel = panel.stacking(common_b.StackingConfig().mode(common.StackingMode.NORMAL))
    if thresholds:
        # Drawn as dashed lines: the same values the alert rules fire on.
        panel = panel.thresholds(_thresholds(thresholds)).thresholds_style(
            common_b.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    if min_value is not None:
        panel = panel.min(min_value)
    if max_value is not None:
        panel = panel.max(max_value)
    if time_from:
        panel = panel.time_from(time_from)
    return panel


@dataclass(frozen=True)
class Column:
    """How one value column of a table is titled and drawn; ``thresholds`` colour the cell background."""

    title: str
    unit: str = "none"
    thresholds: Sequence[Step] = ()
    decimals: Optional[int] = None


def table(
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    columns: Sequence[Column],
    labels: Mapping[str, str],
    width: int = 24,
    height: int = 10,
    sort_by: str = "",
    sort_desc: bool = True,
    links: Mapping[str, Sequence[DataLink]] | None = None,
) -> table_b.Panel:
    """One row per label set: instant queries in table format, merged on their labels.

    ``columns[i]`` describes query i's value ("Value #A", "Value #B", ... after the merge); ``labels`` maps
    label columns to their Chinese titles, in display order. Every other column (Time, job, ...) is hidden, so
    queries should aggregate ``by`` exactly the labels shown.
    """
    queries = [Query(q.expr, q.legend, instant=True) for q in queries]
    value_names = [f"Value #{chr(ord('A') + i)}" if len(queries) > 1 else "Value" for i in range(len(queries))]
    rename = dict(labels)
    order: dict[str, int] = {}
    for index, name in enumerate(labels):
        order[name] = index
    for index, (name, col) in enumerate(zip(value_names, columns)):
        rename[name] = col.title
        order[name] = len(labels) + index
    panel = (
        table_b.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets(queries, table_format=True))
        .span(width)
        .height(height)
        .filterable(True)
        .with_transformation(dash_m.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            dash_m.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True, "job": True, "__name__": True},
                    "renameByName": rename,
                    "indexByName": order,
                },
            )
        )
    )
    if sort_by:
        panel = panel.sort_by([common_b.TableSortByFieldState().display_name(sort_by).desc(sort_desc)])
    for col in columns:
        props = [dash_m.DynamicConfigValue(id_val="unit", value=col.unit)]
        if col.decimals is not None:
            props.append(dash_m.DynamicConfigValue(id_val="decimals", value=col.decimals))
        if col.thresholds:
            props.append(dash_m.DynamicConfigValue(id_val="thresholds", value=_thresholds(col.thresholds).build()))
            props.append(
                dash_m.DynamicConfigValue(
                    id_val="custom.cellOptions", value={"type": "color-background", "mode": "basic"}
                )
            )
        panel = panel.override_by_name(col.title, props)
    for name, column_links in sorted((links or {}).items()):
        link_objects = [{"title": link.title, "url": link.url} for link in column_links]
        panel = panel.override_by_name(name, [dash_m.DynamicConfigValue(id_val="links", value=link_objects)])
    return panel


@dataclass(frozen=True)
class DataLink:
    """A field data link (Grafana's {title, url}); variables in ``url`` are interpolated per row."""

    title: str
    url: str


def link_to_host(instance_field: str = "${__value.raw}") -> DataLink:
    """A data link to 主机详情 for the instance in the linked cell, keeping the datasource and the time range."""
    return DataLink(
        "打开主机详情 Host detail",
        "/d/shaobing-host/shaobing-host?var-datasource=${datasource}&var-instance="
        + instance_field
        + "&${__url_time_range}",
    )


def link_to_fleet_township() -> DataLink:
    """A data link back to 全域总览 filtered to the township in the linked cell."""
    return DataLink(
        "只看这个乡镇 Filter to this township",
        "/d/shaobing-fleet/shaobing-fleet?var-datasource=${datasource}&var-township=${__value.raw}&${__url_time_range}",
    )


# The label columns of a per-host table, and a click on the host that opens 主机详情.
HOST_LABELS = {"township": "乡镇", "instance": "主机"}
HOST_LINKS = {"主机": [link_to_host()]}


def row(title: str) -> dash_b.Row:
    return dash_b.Row(title)
