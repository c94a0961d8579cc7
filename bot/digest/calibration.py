"""Confidence calibration: what owners said two weeks before a milestone's date, against what happened."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from storage.digest import CameDue
from storage.models import MilestoneStatus

LOOK_BACK = timedelta(weeks=2)
# Stated confidence (1-5) read as a chance of being on time, (c - 1) / 4; owners are called
# optimistic when that runs more than this far ahead of what they delivered.
OPTIMISM_MARGIN = 0.2


class Band(StrEnum):
    HIGH = "high"  # 4-5
    MEDIUM = "medium"  # 3
    LOW = "low"  # 1-2
    NOT_STATED = "not_stated"


class Outcome(StrEnum):
    ON_TIME = "on_time"
    LATE = "late"  # done after its first date, moved, or still open past it
    DESCOPED = "descoped"


@dataclass(frozen=True)
class BandLine:
    band: Band
    milestones: int
    on_time: int
    late: int
    descoped: int


@dataclass(frozen=True)
class Calibration:
    """Milestones first due this quarter up to yesterday, grouped by the confidence stated."""

    quarter_start: date
    bands: list[BandLine]  # only bands with milestones, high first
    milestones: int
    on_time: int
    optimistic: bool  # stated confidence ran well ahead of delivery

    @property
    def on_time_share(self) -> float | None:
        return self.on_time / self.milestones if self.milestones else None


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def band_of(confidence: int | None) -> Band:
    if confidence is None:
        return Band.NOT_STATED
    if confidence >= 4:
        return Band.HIGH
    return Band.MEDIUM if confidence == 3 else Band.LOW


def outcome_of(came: CameDue, tz: ZoneInfo) -> Outcome:
    milestone = came.milestone
    if milestone.status == MilestoneStatus.DESCOPED:
        return Outcome.DESCOPED
    done = milestone.completed_at
    if milestone.status == MilestoneStatus.DONE and (
        done is None or done.astimezone(tz).date() <= milestone.original_due
    ):
        return Outcome.ON_TIME
    return Outcome.LATE


def calibrate(came_due: Sequence[CameDue], first: date, tz: ZoneInfo) -> Calibration:
    outcomes = [(band_of(c.confidence), outcome_of(c, tz), c.confidence) for c in came_due]
    bands = []
    for band in Band:
        mine = [o for b, o, _ in outcomes if b is band]
        if mine:
            bands.append(
                BandLine(
                    band=band,
                    milestones=len(mine),
                    on_time=mine.count(Outcome.ON_TIME),
                    late=mine.count(Outcome.LATE),
                    descoped=mine.count(Outcome.DESCOPED),
                )
            )
    stated = [(c, o) for _, o, c in outcomes if c is not None]
    optimistic = False
    if stated:
        expected = sum((c - 1) / 4 for c, _ in stated) / len(stated)
        delivered = sum(1 for _, o in stated if o is Outcome.ON_TIME) / len(stated)
        optimistic = expected - delivered > OPTIMISM_MARGIN
    return Calibration(
        quarter_start=first,
        bands=bands,
        milestones=len(outcomes),
        on_time=sum(1 for _, o, _ in outcomes if o is Outcome.ON_TIME),
        optimistic=optimistic,
    )
