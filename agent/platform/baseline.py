"""The minimum-version baseline (``agent/data/software_baseline.yml``) for software outside the package manager.

Each software has branches; a version belongs to the longest branch that prefixes it (``3.0.11`` -> ``3.0``,
an empty branch matches everything). Outdated = older than its branch's minimum, or older than every listed
branch (an abandoned branch such as nginx 1.22 built by hand). A version newer than every branch is not
judged outdated by this file: it cannot know about advisories that came later.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

from agent.platform.software import version_key

__all__ = ["BaselineEntry", "Baseline", "BaselineError", "load_baseline", "DEFAULT_BASELINE_FILE"]

DEFAULT_BASELINE_FILE = Path(__file__).resolve().parent.parent / "data" / "software_baseline.yml"


class BaselineError(ValueError):
    """The baseline file is malformed; the message names the file, the key and the line."""


@dataclass(frozen=True)
class BaselineEntry:
    branch: str
    minimum: str
    advisory: str
    url: str


@dataclass(frozen=True)
class Verdict:
    outdated: bool
    entry: Optional[BaselineEntry]  # the branch minimum that decided it (None: no rule applies)
    # "below_minimum": older than its branch's minimum; "unmaintained_branch": its branch is not listed while
    # newer ones are (an end-of-life branch: no more fixes); "current": at or above its branch's minimum.
    reason: str = "current"


class Baseline:
    def __init__(self, entries: dict[str, list[BaselineEntry]]) -> None:
        self.entries = entries

    def judge(self, software: str, version: str) -> Optional[Verdict]:
        """The verdict, or None when this file cannot judge the version: nothing on this software, or a branch
        newer than every branch listed (released after the file was written). None is "unknown", never "fine"."""
        branches = self.entries.get(software)
        if not branches:
            return None
        key = version_key(version)
        best: Optional[BaselineEntry] = None
        for entry in branches:
            if _in_branch(version, entry.branch) and (best is None or len(entry.branch) > len(best.branch)):
                best = entry
        if best is not None:
            below = key < version_key(best.minimum)
            return Verdict(below, best, "below_minimum" if below else "current")
        # Not in a listed branch. If a listed branch is newer, this one is no longer maintained: outdated,
        # whatever its patch level (Redis 7.0.15 between 6.2 and 7.2; Tomcat 10.0 below 10.1).
        newer = sorted((e for e in branches if version_key(e.branch) > key), key=lambda e: version_key(e.branch))
        if newer:
            return Verdict(True, newer[0], "unmaintained_branch")
        return None


def _in_branch(version: str, branch: str) -> bool:
    if not branch:
        return True
    if not version.startswith(branch):
        return False
    rest = version[len(branch):]
    return rest == "" or not rest[0].isdigit()  # "3.0" holds 3.0.11 but not 3.01


def load_baseline(path: Optional[Path] = None) -> Baseline:
    file = path or DEFAULT_BASELINE_FILE
    try:
        text = file.read_text(encoding="utf-8")
        root: Any = yaml.compose(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise BaselineError(f"{file}: cannot read baseline: {exc}") from None
    if root is None:
        return Baseline({})
    if not isinstance(root, yaml.MappingNode):
        raise BaselineError(f"{file}:{root.start_mark.line + 1}: top level must be a mapping of software names")
    entries: dict[str, list[BaselineEntry]] = {}
    for key_node, value_node in root.value:
        software = str(key_node.value)
        if not isinstance(value_node, yaml.SequenceNode):
            raise BaselineError(f"{file}:{value_node.start_mark.line + 1}: {software}: expected a list of branches")
        branch_list: list[BaselineEntry] = []
        for item in value_node.value:
            line = item.start_mark.line + 1
            data = yaml.safe_load(yaml.serialize(item)) if isinstance(item, yaml.MappingNode) else None
            if not isinstance(data, dict):
                raise BaselineError(f"{file}:{line}: {software}: each branch must be a mapping")
            missing = [k for k in ("branch", "minimum", "advisory", "url") if k not in data]
            if missing:
                raise BaselineError(f"{file}:{line}: {software}: missing key(s) {', '.join(missing)}")
            if not str(data["advisory"]).strip() or not str(data["url"]).strip():
                raise BaselineError(f"{file}:{line}: {software}: every minimum needs its advisory and url")
            branch_list.append(
                BaselineEntry(str(data["branch"]), str(data["minimum"]), str(data["advisory"]), str(data["url"]))
            )
        entries[software] = branch_list
    return Baseline(entries)
