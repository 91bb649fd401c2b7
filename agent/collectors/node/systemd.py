"""systemd unit states under node_exporter's systemd collector names, when systemd is the init system::

    node_systemd_unit_state{name="nginx.service",state="active",type="forking"} 1
    node_systemd_unit_state{name="nginx.service",state="failed",type="forking"} 0
    node_systemd_units{state="failed"} 1
    node_systemd_system_running 1

node_exporter asks over D-Bus; here two ``systemctl`` calls do (``list-units --all --plain --no-legend`` for
every loaded unit and its ActiveState, one ``show -p Id -p Type`` for the services' and mounts' Type), which work
back to CentOS 7's systemd 219. Units matching node_exporter's default exclude (automount, device, mount, scope,
slice) are left out of the per-unit series. On a host without systemd as PID 1 (a container, SysV init) the
collector says so — not applicable — instead of reporting nothing as if all were well.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from agent.catalog import MetricSet, MetricSpec
from agent.collector import AgentContext, CollectorOptions, NotApplicable
from agent.collectors.node.base import NodeFamily
from agent.process import CommandError, run

__all__ = ["SystemdCollector", "SystemdOptions", "parse_list_units", "parse_show"]

STATES = ("active", "activating", "deactivating", "inactive", "failed")
_MAX_UNITS = 20_000


@dataclass
class SystemdOptions(CollectorOptions):
    # node_exporter's --collector.systemd.unit-exclude default
    unit_exclude: str = r".+\.(automount|device|mount|scope|slice)"
    unit_include: str = ".+"
    systemctl: str = "systemctl"
    # sd_booted(3): systemd is the init system when this directory exists
    booted_marker: str = "/run/systemd/system"
    command_timeout: float = field(default=10.0, metadata={"duration": True, "min": 0.1})


def parse_list_units(text: str) -> dict[str, str]:
    """``UNIT LOAD ACTIVE SUB DESCRIPTION`` lines (``--plain --no-legend``; a leading ``●`` on failed units in
    some versions) -> unit -> ActiveState."""
    out: dict[str, str] = {}
    for line in text.splitlines()[:_MAX_UNITS]:
        fields = line.replace("\u25cf", " ").split()
        if len(fields) >= 4 and fields[2] in STATES and "." in fields[0]:
            out[fields[0]] = fields[2]
    return out


def parse_show(text: str) -> dict[str, str]:
    """``systemctl show -p Id -p Type a b``: blank-line separated blocks -> unit -> Type."""
    out: dict[str, str] = {}
    for block in text.split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if props.get("Id"):
            out[props["Id"]] = props.get("Type", "")
    return out


class SystemdCollector(NodeFamily):
    name = "systemd"
    title = "systemd 单元 (systemd units)"
    options_class = SystemdOptions
    default_interval = 60.0
    default_timeout = 30.0
    metrics = (
        MetricSpec("node_systemd_unit_state", "gauge", "Systemd unit", ("name", "state", "type")),
        MetricSpec("node_systemd_units", "gauge", "Summary of systemd unit states", ("state",)),
        MetricSpec("node_systemd_system_running", "gauge",
                   "Whether the system is operational (see 'systemctl is-system-running')"),
    )

    def __init__(self, options: SystemdOptions, context: AgentContext, **kwargs: str) -> None:
        super().__init__(options, context, **kwargs)
        self.opts = options
        self._include = re.compile(options.unit_include)
        self._exclude = re.compile(options.unit_exclude)

    def collect(self, out: MetricSet) -> None:
        if not os.path.isdir(self.opts.booted_marker):
            raise NotApplicable(f"systemd is not the init system here (no {self.opts.booted_marker})")
        timeout = self.opts.command_timeout
        try:
            listed = run([self.opts.systemctl, "list-units", "--all", "--plain", "--no-legend", "--no-pager"],
                         timeout)
        except CommandError as exc:
            raise RuntimeError(f"systemctl list-units: {exc}") from None
        if listed.returncode != 0:
            raise RuntimeError(f"systemctl list-units exited {listed.returncode}: {listed.stderr.strip()[:200]}")
        units = parse_list_units(listed.stdout)
        kept = {u: s for u, s in units.items() if self._include.fullmatch(u) and not self._exclude.fullmatch(u)}
        typed = sorted(u for u in kept if u.endswith((".service", ".mount")))
        types: dict[str, str] = {}
        if typed:
            try:
                shown = run([self.opts.systemctl, "show", "-p", "Id", "-p", "Type", "--", *typed], timeout)
                types = parse_show(shown.stdout) if shown.returncode == 0 else {}
            except CommandError:
                types = {}  # a type label of "" (as node_exporter when D-Bus does not say), states still right
        for unit, state in sorted(kept.items()):
            for name in STATES:
                out.add("node_systemd_unit_state", 1 if name == state else 0,
                        {"name": unit, "state": name, "type": types.get(unit, "")})
        for name in STATES:
            out.add("node_systemd_units", sum(1 for s in units.values() if s == name), {"state": name})
        try:
            running = run([self.opts.systemctl, "is-system-running"], timeout).stdout.strip()
        except CommandError:
            return
        out.add("node_systemd_system_running", 1 if running == "running" else 0)
