"""Template variables (datasource, township, instance) and the label matchers that use them.

Every dashboard declares the same three variables, so links between dashboards carry ``var-township`` and
``var-instance`` over unchanged. ``township`` and (on the fleet dashboards) ``instance`` are multi-value with
"All" meaning the regex ``.*``; on the host dashboard ``instance`` is a single host.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.models import dashboard as dash_m

from dashboards.panels import DATASOURCE, DATASOURCE_UID

__all__ = [
    "AGENT_JOB",
    "RELAY_JOB",
    "FLEET",
    "HOST",
    "RISKY_PASSWORD",
    "ROLLUP",
    "TOWNSHIP",
    "variables",
]

AGENT_JOB = "shaobing"
RELAY_JOB = "shaobing-relay"

# Matchers, without braces, to splice into selectors: f"node_load1{{{HOST}}}".
TOWNSHIP = f'job="{AGENT_JOB}",township=~"$township"'
FLEET = f'{TOWNSHIP},instance=~"$instance"'
HOST = f'job="{AGENT_JOB}",instance="$instance"'
# The township:* recording rules keep only the township label (no job, no instance).
ROLLUP = 'township=~"$township"'
# Every agent host, pulled (up) or pushing from behind NAT (no up; its own push-success timestamp).
HOSTS_SEEN = '__name__=~"up|shaobing_push_last_success_timestamp_seconds"'
# shaobing_password_accounts reasons that are findings; "locked" is counted too, but a locked account is fine.
RISKY_PASSWORD = 'reason=~"empty|dictionary|legacy_hash|uid0_extra|nopasswd_sudo|unsupported_hash"'


def _datasource() -> dash_b.DatasourceVariable:
    return (
        dash_b.DatasourceVariable("datasource")
        .label("数据源 Datasource")
        .type("prometheus")
        .current(dash_m.VariableOption(selected=True, text="Shaobing Prometheus", value=DATASOURCE_UID))
    )


def _query(name: str, label: str, description: str, query: str) -> dash_b.QueryVariable:
    return (
        dash_b.QueryVariable(name)
        .label(label)
        .description(description)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(dash_m.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dash_m.VariableSort.ALPHABETICAL_ASC)
    )


def _multi_with_all(var: dash_b.QueryVariable) -> dash_b.QueryVariable:
    """Several values or "All", which matches any value (``.*``) and is selected by default."""
    return (
        var.multi(True)
        .include_all(True)
        .all_value(".*")
        .current(dash_m.VariableOption(selected=True, text="All", value="$__all"))
    )


def _township() -> dash_b.QueryVariable:
    return _multi_with_all(
        _query(
            "township",
            "乡镇 Township",
            "乡镇/街道（目标标签 township）",
            f"label_values({{{HOSTS_SEEN},job=\"{AGENT_JOB}\"}}, township)",
        )
    )


def _instance(single: bool) -> dash_b.QueryVariable:
    var = _query(
        "instance",
        "主机 Host",
        "主机（目标标签 instance），按所选乡镇过滤",
        f"label_values({{{HOSTS_SEEN},{TOWNSHIP}}}, instance)",
    )
    if single:
        return var.multi(False).include_all(False)
    return _multi_with_all(var)


def variables(single_instance: bool = False) -> list[dash_b.DatasourceVariable | dash_b.QueryVariable]:
    return [_datasource(), _township(), _instance(single_instance)]
