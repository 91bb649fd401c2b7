"""Linux software RAID (md) arrays, as node_exporter's mdadm collector (/proc/mdstat)::

    node_md_disks{device="md1",state="failed"} 1
    node_md_disks_required{device="md1"} 2
    node_md_state{device="md2",state="recovering"} 1
    node_md_blocks_synced{device="md2"} 4.59282432e+08

A degraded mirror keeps serving, which is exactly why nobody notices until the second disk dies: the
ShaobingRaidDegraded alert fires on ``node_md_disks_required - node_md_disks{state="active"} > 0``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.catalog import MetricSet, MetricSpec
from agent.collectors.node.base import NodeFamily

__all__ = ["MdadmCollector", "MdArray", "parse_mdstat"]

STATES = ("active", "check", "inactive", "recovering", "resync")
DISK_STATES = ("active", "failed", "spare")
_HEAD = re.compile(r"^(md\w*)\s*:\s*(\S+)(.*)$")
_STATUS = re.compile(r"\[(\d+)/(\d+)\]")
_BLOCKS = re.compile(r"^\s*(\d+) blocks")
_PROGRESS = re.compile(r"\b(recovery|resync|check|reshape)\s*=\s*[\d.]+%\s*\((\d+)/\d+\)")
_MAX_ARRAYS = 1024


@dataclass(frozen=True)
class MdArray:
    device: str
    state: str  # one of STATES
    active: int
    failed: int
    spare: int
    required: int
    blocks: int
    synced: int


def parse_mdstat(text: str) -> list[MdArray]:
    """Arrays in /proc/mdstat (drivers/md/md.c md_seq_show): a ``mdN : state level members`` line, then the
    size line with ``[n/m] [UU_]`` for redundant levels, then an optional progress line."""
    arrays: list[MdArray] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        head = _HEAD.match(line)
        if head is None or len(arrays) >= _MAX_ARRAYS:
            continue
        device, state, rest = head.groups()
        members = [m for m in rest.split() if "[" in m]
        failed = sum(1 for m in members if m.endswith("(F)"))
        spare = sum(1 for m in members if m.endswith("(S)"))
        following = []
        for nxt in lines[i + 1 : i + 4]:
            if not nxt.strip() or _HEAD.match(nxt):
                break
            following.append(nxt)
        size = following[0] if following else ""
        blocks_m = _BLOCKS.match(size)
        blocks = int(blocks_m.group(1)) if blocks_m else 0
        status = _STATUS.search(size)
        if state == "inactive":
            required = active = 0
        elif status:
            required, active = int(status.group(1)), int(status.group(2))
        else:  # raid0 / linear: no redundancy, every member is needed
            required = active = len(members) - failed - spare
        synced = blocks
        for extra in following[1:]:
            progress = _PROGRESS.search(extra)
            if progress:
                kind, done = progress.groups()
                synced = int(done)
                state = {"recovery": "recovering", "reshape": "recovering"}.get(kind, kind)
        if state not in STATES:
            state = "active"  # "active (auto-read-only)", "read-only": the array is there
        arrays.append(MdArray(device, state, active, failed, spare, required, blocks, synced))
    return arrays


class MdadmCollector(NodeFamily):
    name = "mdadm"
    title = "软件 RAID (Software RAID)"
    requires = "mdstat"
    metrics = (
        MetricSpec("node_md_state", "gauge", "Indicates the state of md-device.", ("device", "state")),
        MetricSpec("node_md_disks", "gauge", "Number of active/failed/spare disks of device.", ("device", "state")),
        MetricSpec("node_md_disks_required", "gauge", "Total number of disks of device.", ("device",)),
        MetricSpec("node_md_blocks", "gauge", "Total number of blocks on device.", ("device",)),
        MetricSpec("node_md_blocks_synced", "gauge", "Number of blocks synced on device.", ("device",)),
    )

    def collect(self, out: MetricSet) -> None:
        for md in parse_mdstat(self.read_required()):
            dev = {"device": md.device}
            for state in STATES:
                out.add("node_md_state", 1 if state == md.state else 0, {**dev, "state": state})
            for state, count in zip(DISK_STATES, (md.active, md.failed, md.spare)):
                out.add("node_md_disks", count, {**dev, "state": state})
            out.add("node_md_disks_required", md.required, dev)
            out.add("node_md_blocks", md.blocks, dev)
            out.add("node_md_blocks_synced", md.synced, dev)
