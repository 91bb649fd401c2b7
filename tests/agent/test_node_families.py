"""node_exporter's families side by side with Debian's prometheus-node-exporter 1.5 on the same fixture trees
(``--path.procfs``): for every family the agent claims, the same series, labels and values, and the same
types except the documented untyped -> gauge (netstat, vmstat)."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.catalog import MetricSet, render
from agent.collector import AgentContext, Collector, NotApplicable
from agent.collectors.health import DISK_DEVICES_EXCLUDE, HealthCollector, HealthOptions
from agent.collectors.node.arp import ArpCollector
from agent.collectors.node.base import NodeFamily
from agent.collectors.node.bonding import BondingCollector
from agent.collectors.node.conntrack import ConntrackCollector
from agent.collectors.node.edac import EdacCollector
from agent.collectors.node.entropy import EntropyCollector
from agent.collectors.node.filefd import FilefdCollector
from agent.collectors.node.hwmon import HwmonCollector
from agent.collectors.node.mdadm import MdadmCollector
from agent.collectors.node.netclass import NetclassCollector
from agent.collectors.node.netstat import NetstatCollector
from agent.collectors.node.power_supply import PowerSupplyCollector
from agent.collectors.node.pressure import PressureCollector
from agent.collectors.node.sockstat import SockstatCollector
from agent.collectors.node.softnet import SoftnetCollector
from agent.collectors.node.thermal_zone import ThermalZoneCollector
from agent.collectors.node.udp_queues import UdpQueuesCollector
from tests.support.prometheus import free_port

pytestmark = pytest.mark.integration

BINARY = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
FIXTURES = Path(__file__).parent / "fixtures" / "node"
TREES = ("captured", "synthetic")
# netclass shares node_network_ with netdev: its own names
NETCLASS = tuple(f"node_network_{n}" for n in (
    "up", "info", "address_assign_type", "carrier", "device_id", "dormant", "flags", "iface_", "mtu_bytes",
    "name_assign_type", "net_dev_group", "speed_bytes", "transmit_queue_length", "protocol_type"))
# node_exporter collector -> (our collector class, the metric name prefixes it owns there)
FAMILIES: dict[str, tuple[type[Collector], tuple[str, ...]]] = {
    "filefd": (FilefdCollector, ("node_filefd_",)),
    "entropy": (EntropyCollector, ("node_entropy_",)),
    "pressure": (PressureCollector, ("node_pressure_",)),
    "conntrack": (ConntrackCollector, ("node_nf_conntrack_",)),
    "sockstat": (SockstatCollector, ("node_sockstat_",)),
    "netstat": (NetstatCollector, ("node_netstat_",)),
    "meminfo": (HealthCollector, ("node_memory_",)),
    "vmstat": (HealthCollector, ("node_vmstat_",)),
    "diskstats": (HealthCollector, ("node_disk_",)),
    "mdadm": (MdadmCollector, ("node_md_",)),
    "bonding": (BondingCollector, ("node_bonding_",)),
    "hwmon": (HwmonCollector, ("node_hwmon_",)),
    "netclass": (NetclassCollector, NETCLASS),
    "edac": (EdacCollector, ("node_edac_",)),
    "powersupplyclass": (PowerSupplyCollector, ("node_power_supply_",)),
    "softnet": (SoftnetCollector, ("node_softnet_",)),
    "arp": (ArpCollector, ("node_arp_",)),
    "udp_queues": (UdpQueuesCollector, ("node_udp_queues",)),
    "thermal_zone": (ThermalZoneCollector, ("node_thermal_zone_", "node_cooling_device_")),
    "netdev": (HealthCollector, ("node_network_receive_", "node_network_transmit_")),
}
# Hardware this machine does not have: compared on the synthetic tree only.
ONLY_SYNTHETIC = ("mdadm", "bonding", "hwmon", "thermal_zone", "edac", "powersupplyclass")
# node_exporter series not claimed yet.
NOT_CLAIMED: tuple[str, ...] = ()
UNTYPED_AS_GAUGE = ("node_netstat_", "node_vmstat_")

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str, prefixes: tuple[str, ...]) -> tuple[Series, dict[str, str]]:
    """Series and, per metric, its type and help text."""
    from prometheus_client.parser import text_string_to_metric_families

    series: Series = {}
    types: dict[str, str] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name.startswith(prefixes) and s.name not in NOT_CLAIMED and not (
                    s.name == "node_network_transmit_queue_length" and prefixes != NETCLASS):
                # An empty label value is no label at all in Prometheus (info metrics with optional fields).
                labels = tuple(sorted((k, v) for k, v in s.labels.items() if v != ""))
                series[(s.name, labels)] = s.value
                types[s.name] = f"{fam.type}|{fam.documentation}"
    return series, types


@pytest.fixture(scope="module", params=TREES)
def tree(request: pytest.FixtureRequest) -> Path:
    return FIXTURES / str(request.param) / "proc"


def sysfs(tree: Path, tmp: Path) -> Path:
    """The tree's sys/ (hardware fixtures), or an empty one: node_exporter refuses to start without it."""
    own = tree.parent / "sys"
    if own.is_dir():
        return own
    (tmp / "sys").mkdir(exist_ok=True)
    return tmp / "sys"


def udev(tree: Path) -> Path:
    """The tree's udev database (node_exporter's own captured fixture on the synthetic tree), else none."""
    return tree.parent / "run" / "udev" / "data"


@pytest.fixture(scope="module")
def node_exporter(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """node_exporter's whole page for the tree, with only the families compared here enabled."""
    if BINARY is None:
        pytest.skip("prometheus-node-exporter is not installed")
    port = free_port()
    argv = [BINARY, f"--web.listen-address=127.0.0.1:{port}", f"--path.procfs={tree}",
            f"--path.sysfs={sysfs(tree, tmp_path_factory.mktemp('sys'))}", f"--path.udev.data={udev(tree)}",
            "--collector.disable-defaults",
            *(f"--collector.{name}" for name in FAMILIES),
            "--no-collector.netdev.netlink",  # read /proc/net/dev of the tree, not this host's netlink
            # The same device selection as the agent's defaults: Debian's 1.5 build leaves zram in diskstats
            # and drops lo from netdev by default, upstream's defaults (which the agent follows) do not.
            f"--collector.diskstats.device-exclude={DISK_DEVICES_EXCLUDE}", "--collector.netdev.device-exclude=^$"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                    yield resp.read().decode()
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(10)


def ours(cls: type[Collector], tree: Path, tmp: Path) -> str:
    context = AgentContext(state_dir=tmp)
    col: Collector
    if cls is HealthCollector:
        col = HealthCollector(HealthOptions(udev_data_path=str(udev(tree))), context, proc_root=str(tree),
                              use_procfs=True,
                              os_release_paths=(), statvfs=lambda p: (_ for _ in ()).throw(OSError(p)))
    else:
        assert issubclass(cls, NodeFamily)
        col = cls(cls.options_class(), context, proc_root=str(tree), sys_root=str(tree.parent / "sys"))
    out = MetricSet(col.metrics)
    col.collect(out)
    return render(out.families()).decode()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_matches_node_exporter(family: str, tree: Path, node_exporter: str, tmp_path: Path) -> None:
    cls, prefixes = FAMILIES[family]
    theirs, their_types = parse(node_exporter, prefixes)
    if not theirs and family in ONLY_SYNTHETIC and tree.parent.name != "synthetic":
        with pytest.raises(NotApplicable):
            ours(cls, tree, tmp_path)  # this machine has no RAID or bond: not applicable, never 0
        return
    assert theirs, f"node_exporter exported nothing for {family} on {tree}"
    mine, my_types = parse(ours(cls, tree, tmp_path), prefixes)
    assert sorted(set(theirs) - set(mine)) == [], "missing here"
    assert sorted(set(mine) - set(theirs)) == [], "not in node_exporter"
    wrong = {k: (mine[k], v) for k, v in theirs.items() if abs(mine[k] - v) > 1e-9 * max(1.0, abs(v))}
    assert wrong == {}, "values differ (ours, node_exporter's)"
    for name, type_help in their_types.items():
        typ, _, help_text = type_help.partition("|")
        expected = "gauge" if typ == "unknown" and name.startswith(UNTYPED_AS_GAUGE) else typ
        assert my_types[name] == f"{expected}|{help_text}", name


def test_a_missing_family_is_not_applicable_and_names_the_file(tmp_path: Path) -> None:
    col = PressureCollector(PressureCollector.options_class(), AgentContext(state_dir=tmp_path),
                            proc_root=str(tmp_path / "proc"))
    with pytest.raises(NotApplicable, match=r"pressure/cpu"):
        col.collect(MetricSet(col.metrics))


def test_a_family_reads_a_file_whole_up_to_its_cap_and_nothing_from_a_missing_one(tmp_path: Path) -> None:
    """NodeFamily.read (every family's file access): whole files across many 64 KiB reads, cut at 1 MiB,
    undecodable bytes replaced, None for a missing file or a directory."""
    from agent.collectors.node.base import _MAX_FILE
    from agent.collectors.node.filefd import FilefdCollector

    col = FilefdCollector(FilefdCollector.options_class(), AgentContext(tmp_path / "state"), proc_root=str(tmp_path))
    (tmp_path / "small").write_bytes(b"1\t0\t9\n")
    (tmp_path / "mid").write_bytes(b"x" * 200_000 + b"\xff end")
    (tmp_path / "huge").write_bytes(b"y" * (_MAX_FILE + 4096))
    assert col.read(tmp_path / "small") == "1\t0\t9\n"
    assert col.read(str(tmp_path / "mid")) == "x" * 200_000 + "\ufffd end"
    assert col.read(tmp_path / "huge") == "y" * _MAX_FILE
    assert col.read(tmp_path / "missing") is None and col.read(tmp_path) is None
