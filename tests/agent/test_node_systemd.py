"""systemd unit states: not applicable without systemd as init (this machine), and node_exporter's names from a
systemctl stand-in that answers in systemctl(1)'s documented list-units / show formats."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from agent.catalog import MetricSet
from agent.collector import AgentContext, NotApplicable
from agent.collectors.node.systemd import SystemdCollector, SystemdOptions, parse_list_units

LIST_UNITS = """\
  apt-daily.timer               loaded active   waiting   Daily apt download activities
  dev-sda1.device               loaded active   plugged   /dev/sda1
\u25cf mariadb.service               loaded failed   failed    MariaDB 10.11.6 database server
  nginx.service                 loaded active   running   A high performance web server and a reverse proxy server
  shaobing-agent.service        loaded activating start   Shaobing agent
  ssh.socket                    loaded inactive dead      OpenBSD Secure Shell server socket
  tmp.mount                     loaded active   mounted   Temporary Directory /tmp
  user.slice                    loaded active   active    User and Session Slice
"""
SHOW = "Type=notify\nId=mariadb.service\n\nType=forking\nId=nginx.service\n\nType=notify\nId=shaobing-agent.service\n"


def stand_in(tmp: Path, running: str = "degraded") -> Path:
    (tmp / "list").write_text(LIST_UNITS)
    (tmp / "show").write_text(SHOW)
    script = tmp / "systemctl"
    script.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        case "$1" in
          list-units) cat {tmp / 'list'} ;;
          show) cat {tmp / 'show'} ;;
          is-system-running) echo {running}; [ {running} = running ] ;;
          *) exit 1 ;;
        esac
        """))
    script.chmod(0o755)
    (tmp / "run-systemd-system").mkdir()
    return script


def test_not_the_init_system_is_not_applicable(tmp_path: Path) -> None:
    if Path("/run/systemd/system").is_dir():
        pytest.skip("systemd runs here")
    col = SystemdCollector(SystemdOptions(), AgentContext(state_dir=tmp_path))
    with pytest.raises(NotApplicable, match="not the init system"):
        col.collect(MetricSet(col.metrics))


def test_unit_states_in_node_exporters_names(tmp_path: Path) -> None:
    script = stand_in(tmp_path)
    col = SystemdCollector(SystemdOptions(systemctl=str(script), booted_marker=str(tmp_path / "run-systemd-system")),
                           AgentContext(state_dir=tmp_path))
    out = MetricSet(col.metrics)
    col.collect(out)
    state = {(dict(s.labels)["name"], dict(s.labels)["state"]): (s.value, dict(s.labels)["type"])
             for s in out.samples("node_systemd_unit_state")}
    assert state[("mariadb.service", "failed")] == (1, "notify")
    assert state[("mariadb.service", "active")] == (0, "notify")
    assert state[("nginx.service", "active")] == (1, "forking")
    assert state[("shaobing-agent.service", "activating")] == (1, "notify")
    assert state[("ssh.socket", "inactive")] == (1, "")
    assert state[("apt-daily.timer", "active")] == (1, "")
    # node_exporter's default exclude: devices, mounts, slices
    assert not {n for n, _ in state} & {"dev-sda1.device", "tmp.mount", "user.slice"}
    assert len(state) == 5 * 5  # five units, one series per state each
    assert out.get("node_systemd_units", {"state": "failed"}) == 1
    assert out.get("node_systemd_units", {"state": "active"}) == 5  # counted over every loaded unit
    assert out.get("node_systemd_system_running") == 0  # degraded


def test_list_units_parsing_with_and_without_the_failed_bullet() -> None:
    assert parse_list_units("\u25cf a.service loaded failed failed A\n  b.service loaded active running B\n") == {
        "a.service": "failed", "b.service": "active"}
