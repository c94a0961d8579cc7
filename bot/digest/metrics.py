"""Execution discipline: four figures for a week, each against the four weeks before it.

Pure functions of stored facts and a window: nothing here reads the clock or the database.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from storage.digest import DecidedSlip, PulseCount
from storage.models import PollOutcome

TREND_WEEKS = 4
# A change smaller than this (in the figure's own unit: a share, or hours) is "about the same".
STEADY = {"share": 0.02, "hours": 1.0}


class FigureName(StrEnum):
    """The discipline figures, in the digest's order (templates word each one)."""

    PULSE_RESPONSE = "pulse_response"
    ACK_WAIT = "ack_wait"
    SLIP_TO_DECISION = "slip_to_decision"
    DECIDED_IN_WINDOW = "decided_in_window"


class Trend(StrEnum):
    BETTER = "better"
    WORSE = "worse"
    STEADY = "steady"


@dataclass(frozen=True)
class Figure:
    """One figure this week (None: no data yet) and over the previous four weeks pooled."""

    name: FigureName
    unit: str  # "share" (0-1) or "hours"
    value: float | None
    cases: int  # what this week's value was computed from
    previous: float | None
    higher_is_better: bool

    @property
    def trend(self) -> Trend | None:
        if self.value is None or self.previous is None:
            return None
        change = self.value - self.previous
        if abs(change) < STEADY[self.unit]:
            return Trend.STEADY
        return Trend.BETTER if (change > 0) == self.higher_is_better else Trend.WORSE


@dataclass(frozen=True)
class WindowFacts:
    """What one window (a week, or the four weeks before it) holds for the figures."""

    pulses: PulseCount
    ack_waits: Sequence[timedelta]
    decisions: Sequence[DecidedSlip]


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


def _median_hours(waits: Sequence[timedelta]) -> float | None:
    return statistics.median(_hours(w) for w in waits) if waits else None


def _recorded(decisions: Sequence[DecidedSlip]) -> list[DecidedSlip]:
    # A withdrawn poll (the milestone was done or archived meanwhile) decided nothing.
    return [d for d in decisions if d.decision.option != PollOutcome.WITHDRAWN]


def response_rate(facts: WindowFacts) -> tuple[float | None, int]:
    sent = facts.pulses.sent
    return (facts.pulses.answered / sent if sent else None), sent


def ack_wait(facts: WindowFacts) -> tuple[float | None, int]:
    return _median_hours(facts.ack_waits), len(facts.ack_waits)


def slip_to_decision(facts: WindowFacts) -> tuple[float | None, int]:
    waits = [
        d.decision.decided_at - slipped
        for d in _recorded(facts.decisions)
        if (slipped := d.decision.slipped_at) is not None
        and d.decision.option != PollOutcome.UNDECIDED
    ]
    return _median_hours(waits), len(waits)


def decided_in_window(facts: WindowFacts) -> tuple[float | None, int]:
    """Of the slips that went to a poll, the share decided by the poll's first deadline."""
    polled = [d for d in _recorded(facts.decisions) if d.poll_window_end is not None]
    if not polled:
        return None, 0
    in_time = sum(
        1
        for d in polled
        if d.decision.option != PollOutcome.UNDECIDED
        and d.poll_window_end is not None
        and d.decision.decided_at <= d.poll_window_end
    )
    return in_time / len(polled), len(polled)


_RULES = (
    (FigureName.PULSE_RESPONSE, "share", True, response_rate),
    (FigureName.ACK_WAIT, "hours", False, ack_wait),
    (FigureName.SLIP_TO_DECISION, "hours", False, slip_to_decision),
    (FigureName.DECIDED_IN_WINDOW, "share", True, decided_in_window),
)


def discipline(week: WindowFacts, before: WindowFacts) -> list[Figure]:
    """Every figure for `week`, with `before` (the previous four weeks, pooled) to compare."""
    figures = []
    for name, unit, higher_is_better, rule in _RULES:
        value, cases = rule(week)
        previous, _ = rule(before)
        figures.append(Figure(name, unit, value, cases, previous, higher_is_better))
    return figures


@dataclass(frozen=True)
class Window:
    """[start, end) in UTC."""

    start: datetime
    end: datetime

    def before(self, weeks: int = TREND_WEEKS) -> Window:
        """The `weeks` weeks that end where this one starts."""
        return Window(self.start - timedelta(weeks=weeks), self.start)
