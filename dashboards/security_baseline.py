"""安全与版本, last section: the 等保 2.0 self-check across the fleet (agent.baseline, collector ``baseline``).

Scores by township, the hosts furthest from their level, and the checks that fail most often, each named in
Chinese through a value mapping generated from the check catalogue (the series carry the stable check id).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.models import dashboard as dash_m

from agent.baseline.clauses import FAMILIES
from agent.baseline.engine import ALL_CHECKS
from dashboards.frame import section
from dashboards.panels import HOST_LABELS, HOST_LINKS, ORANGE, RED, Column, Query, stat, steps, table, timeseries
from dashboards.variables import FLEET

__all__ = ["with_baseline_section"]

TREND = "30d"
SCORE = steps(RED, (0.6, ORANGE), (0.8, "green"))


def _check_names() -> dash_m.ValueMap:
    """check id -> "登录失败处理 (login_lockout)", clause number -> "8.1.4.1 身份鉴别" for both levels."""
    options = {c.id: dash_m.ValueMappingResult(text=f"{c.title} ({c.id})") for c in ALL_CHECKS}
    for fam in FAMILIES:
        for number in fam.numbers.values():
            options[number] = dash_m.ValueMappingResult(text=f"{number} {fam.name}")
    return dash_m.ValueMap(options=options)


def with_baseline_section(d: dash_b.Dashboard) -> dash_b.Dashboard:
    score = f"shaobing_baseline_pass_ratio{{{FLEET}}}"
    failing = table(
        "最常见的未通过项 Most common failures",
        "未通过该检查项的主机数（按条款与定级）；证据与整改方法见该主机上 shaobing scan --baseline gbt22239-3。",
        [Query(f"count by (level, clause, check) (shaobing_baseline_check_passed{{{FLEET}}} == 0)")],
        columns=[Column("主机数")],
        labels={"check": "检查项", "clause": "条款", "level": "定级"},
        sort_by="主机数",
        width=12,
        height=12,
    ).mappings([_check_names()])
    return section(
        d,
        "等保 2.0 自查 Baseline self-check (GB/T 22239-2019)",
        stat(
            "平均得分 Fleet score",
            "各主机等保自查得分的平均（通过项 / 已判定项）；需人工确认与不适用的项不计入。这是自查，不代替等级测评。",
            [Query(f"avg({score})")],
            unit="percentunit",
            thresholds=SCORE,
            decimals=0,
        ),
        stat(
            "有未通过项的主机 Hosts with failures",
            "至少一项检查未通过的主机数。",
            [Query(f"count(count by (instance) (shaobing_baseline_check_passed{{{FLEET}}} == 0)) or vector(0)")],
            thresholds=steps("green", (1, ORANGE)),
        ),
        table(
            "各乡镇得分 Score by township",
            "每个乡镇（按定级）的平均与最低得分和主机数。",
            [
                Query(f"avg by (township, level) ({score})"),
                Query(f"min by (township, level) ({score})"),
                Query(f"count by (township, level) ({score})"),
            ],
            columns=[
                Column("平均得分", unit="percentunit", decimals=0, thresholds=SCORE),
                Column("最低得分", unit="percentunit", decimals=0, thresholds=SCORE),
                Column("主机数"),
            ],
            labels={"township": "乡镇", "level": "定级"},
            sort_by="平均得分",
            sort_desc=False,
            width=16,
            height=4,
        ),
        failing,
        table(
            "得分最低的主机 Lowest-scoring hosts",
            "按得分从低到高；点击主机名看主机详情。",
            [Query(f"min by (township, instance, level) ({score})")],
            columns=[Column("得分", unit="percentunit", decimals=0, thresholds=SCORE)],
            labels={**HOST_LABELS, "level": "定级"},
            sort_by="得分",
            sort_desc=False,
            width=12,
            height=12,
            links=HOST_LINKS,
        ),
        timeseries(
            "得分趋势 Score trend",
            "各乡镇平均得分，近 30 天。",
            [Query(f"avg by (township) ({score})", legend="{{township}}")],
            unit="percentunit",
            min_value=0,
            time_from=TREND,
            width=24,
        ),
    )
