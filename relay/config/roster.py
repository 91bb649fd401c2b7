"""Duty rosters (值班表): who is on duty for a township or team at a given moment.

    rosters:
      chengguan:
        name: 城关镇值班表
        townships: [城关镇]            # alerts labelled township=城关镇 go to this roster's person on duty
        shifts:                         # weekly pattern in the relay's time zone; a shift may cross midnight
          - {days: [mon, tue, wed, thu, fri], from: "08:30", to: "17:30", person: zhangsan}
          - {days: [mon, tue, wed, thu, fri], from: "17:30", to: "08:30", person: lisi}
          - {days: [sat, sun], from: "08:30", to: "08:30", person: wangwu}      # 24 h from Saturday 08:30
        overrides:                      # holidays and swaps; a later entry wins where two overlap
          - {date: 2026-10-01, person: zhaoliu}                                   # the whole local day
          - {from: "2026-12-05 08:30", to: "2026-12-06 08:30", person: lisi}      # a swap

Shifts may not overlap (the person on duty is never ambiguous), and a week with a gap is refused unless the
roster names a `fallback` person — a time when nobody is on duty is a config error, found at load, not at 3 a.m.
A channel's recipients name rosters as `roster:NAME`, or `on_duty`: the roster whose `townships` hold the
alert's township label (else the one with `townships: ["*"]`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import yaml

from relay.config.model import Person
from relay.config.nodes import Reader

__all__ = ["Shift", "Override", "Roster", "parse_rosters", "roster_for", "DAYS"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
WEEK = 7 * 24 * 60


@dataclass(frozen=True)
class Shift:
    start: int  # minute of the week (Monday 00:00 = 0) when it begins
    minutes: int  # length; may run past Sunday midnight into Monday
    person: Person
    line: int

    def covers(self, minute_of_week: int) -> bool:
        return (minute_of_week - self.start) % WEEK < self.minutes


@dataclass(frozen=True)
class Override:
    start: float  # unix time
    end: float
    person: Person
    line: int


@dataclass(frozen=True)
class Roster:
    key: str
    name: str
    townships: tuple[str, ...]
    shifts: tuple[Shift, ...]
    overrides: tuple[Override, ...]
    fallback: Person | None
    zone: str

    @property
    def people(self) -> tuple[Person, ...]:
        seen: dict[str, Person] = {}
        for p in [s.person for s in self.shifts] + [o.person for o in self.overrides]:
            seen.setdefault(p.key, p)
        if self.fallback is not None:
            seen.setdefault(self.fallback.key, self.fallback)
        return tuple(seen.values())

    def on_duty(self, at: float) -> tuple[Person, str]:
        """The person on duty at unix time `at`, and why (override, shift or fallback) for `roster show`."""
        for override in reversed(self.overrides):
            if override.start <= at < override.end:
                return override.person, f"override (line {override.line})"
        local = dt.datetime.fromtimestamp(at, ZoneInfo(self.zone))
        minute = local.weekday() * 24 * 60 + local.hour * 60 + local.minute
        for shift in self.shifts:
            if shift.covers(minute):
                return shift.person, f"shift (line {shift.line})"
        assert self.fallback is not None  # parse_rosters refuses gaps without a fallback
        return self.fallback, "fallback"

    def handovers(self, start: float, end: float) -> list[tuple[float, Person, str]]:
        """Who takes over when, from `start` to `end` (minute resolution; at most a few weeks)."""
        out: list[tuple[float, Person, str]] = []
        t = start - start % 60
        last = self.on_duty(t - 60)[0].key
        while t < end and len(out) < 2000:
            person, why = self.on_duty(t)
            if person.key != last:
                out.append((t, person, why))
                last = person.key
            t += 60
        return out


def roster_for(rosters: Mapping[str, Roster], township: str) -> Roster | None:
    """The roster responsible for a township: the one listing it, else the catch-all ("*")."""
    for roster in rosters.values():
        if township and township in roster.townships:
            return roster
    return next((r for r in rosters.values() if "*" in r.townships), None)


def _clock(r: Reader, node: yaml.Node, keypath: str) -> int:
    text = r.string(node, keypath)
    try:
        hours, minutes = (int(part) for part in text.split(":"))
    except ValueError:
        raise r.fail(node, keypath, f"expected a time HH:MM, got '{text}'") from None
    if not (0 <= hours <= 24 and 0 <= minutes < 60) or (hours == 24 and minutes):
        raise r.fail(node, keypath, f"'{text}' is not a time of day")
    return hours * 60 + minutes


def _when(r: Reader, node: yaml.Node, keypath: str, zone: ZoneInfo) -> float:
    text = r.string(node, keypath)
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise r.fail(node, keypath, f"expected a date and time such as 2026-12-05 08:30, got '{text}'") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).timestamp()


def _person(r: Reader, node: yaml.Node, keypath: str, people: Mapping[str, Person]) -> Person:
    who = r.string(node, keypath)
    if who not in people:
        raise r.fail(node, keypath, f"'{who}' is not defined under people:")
    return people[who]


def _fmt(minute: int) -> str:
    minute %= WEEK
    return f"{DAY_NAMES[minute // 1440]} {minute % 1440 // 60:02d}:{minute % 60:02d}"


def _roster(r: Reader, key: str, node: yaml.Node, people: Mapping[str, Person], timezone: str) -> Roster:
    sub = f"rosters.{key}"
    keys = r.mapping(node, sub, ("name", "townships", "shifts", "overrides", "fallback"), ("shifts",))
    zone = ZoneInfo(timezone)
    shifts: list[Shift] = []
    for i, item in enumerate(r.sequence(keys["shifts"], f"{sub}.shifts")):
        where = f"{sub}.shifts[{i}]"
        s = r.mapping(item, where, ("days", "from", "to", "person"), ("days", "from", "to", "person"))
        begin, end = _clock(r, s["from"], f"{where}.from"), _clock(r, s["to"], f"{where}.to")
        length = (end - begin) % 1440 or 1440  # "08:30"-"08:30" is 24 hours; "17:30"-"08:30" crosses midnight
        person = _person(r, s["person"], f"{where}.person", people)
        days = [r.choice(d, f"{where}.days[{j}]", DAYS) for j, d in enumerate(r.sequence(s["days"], f"{where}.days"))]
        if not days:
            raise r.fail(s["days"], f"{where}.days", "name at least one day (mon..sun)")
        for day in days:
            new = Shift(DAYS.index(day) * 1440 + begin, length, person, item.start_mark.line + 1)
            for old in shifts:
                overlap = next((m for m in range(new.start, new.start + new.minutes) if old.covers(m % WEEK)), None)
                if overlap is not None:
                    raise r.fail(
                        item,
                        where,
                        f"overlaps the shift on line {old.line} at {_fmt(overlap)}: "
                        "who is on duty must never be ambiguous",
                    )
            shifts.append(new)
    overrides: list[Override] = []
    for i, item in enumerate(r.sequence(keys["overrides"], f"{sub}.overrides") if "overrides" in keys else []):
        where = f"{sub}.overrides[{i}]"
        o = r.mapping(item, where, ("date", "from", "to", "person"), ("person",))
        if "date" in o:
            if "from" in o or "to" in o:
                raise r.fail(item, where, "give either date or from/to")
            text = r.string(o["date"], f"{where}.date")
            try:
                on = dt.date.fromisoformat(text)
            except ValueError:
                raise r.fail(o["date"], f"{where}.date", f"expected a date such as 2026-10-01, got '{text}'") from None
            since = dt.datetime.combine(on, dt.time(0, 0), zone).timestamp()
            until = dt.datetime.combine(on + dt.timedelta(days=1), dt.time(0, 0), zone).timestamp()
        elif "from" in o and "to" in o:
            since, until = _when(r, o["from"], f"{where}.from", zone), _when(r, o["to"], f"{where}.to", zone)
            if until <= since:
                raise r.fail(o["to"], f"{where}.to", "must be after from")
        else:
            raise r.fail(item, where, "give date, or from and to")
        overrides.append(
            Override(since, until, _person(r, o["person"], f"{where}.person", people), item.start_mark.line + 1)
        )
    fallback = _person(r, keys["fallback"], f"{sub}.fallback", people) if "fallback" in keys else None
    if fallback is None:
        gap = next((m for m in range(WEEK) if not any(s.covers(m) for s in shifts)), None)
        if gap is not None:
            raise r.fail(
                keys["shifts"], f"{sub}.shifts", f"nobody is on duty at {_fmt(gap)}: add a shift or a fallback person"
            )
    townships = tuple(r.strings(keys["townships"], f"{sub}.townships")) if "townships" in keys else ()
    name = r.string(keys["name"], f"{sub}.name") if "name" in keys else key
    return Roster(key, name, townships, tuple(shifts), tuple(overrides), fallback, timezone)


def parse_rosters(r: Reader, node: yaml.Node, people: Mapping[str, Person], timezone: str) -> dict[str, Roster]:
    rosters = {key: _roster(r, key, value, people, timezone) for key, value in r.free_mapping(node, "rosters").items()}
    claimed: dict[str, str] = {}
    for roster in rosters.values():
        for township in roster.townships:
            if township in claimed:
                raise r.fail(
                    node, f"rosters.{roster.key}.townships", f"'{township}' is already on roster {claimed[township]}"
                )
            claimed[township] = roster.key
    return rosters
