"""Which backups to keep: the newest of each of the last N days and of the last M weeks that have one.

The same rule as restic's and borg's `--keep-daily`/`--keep-weekly`: days and weeks without a backup do not use
up the count, so a store closed for a week still keeps seven daily backups. Days and ISO weeks are the store's
local ones. Two backups are always kept whatever the counts say: the newest one, and the newest one that
passed `backup verify` (the one a restore would trust).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from posomni.kit.time import zone


@dataclass(frozen=True)
class Candidate:
    id: int
    finished_at: datetime
    verified: bool = False


def to_keep(candidates: Iterable[Candidate], *, keep_daily: int, keep_weekly: int, timezone: str) -> set[int]:
    tz = zone(timezone)
    newest_first = sorted(candidates, key=lambda c: (c.finished_at, c.id), reverse=True)
    if not newest_first:
        return set()
    keep = {newest_first[0].id}
    verified = next((c for c in newest_first if c.verified), None)
    if verified is not None:
        keep.add(verified.id)
    days: set[object] = set()
    weeks: set[object] = set()
    for candidate in newest_first:
        local = candidate.finished_at.astimezone(tz)
        day = local.date()
        week = local.isocalendar()[:2]
        if day not in days and len(days) < keep_daily:
            days.add(day)
            keep.add(candidate.id)
        if week not in weeks and len(weeks) < keep_weekly:
            weeks.add(week)
            keep.add(candidate.id)
    return keep
