"""KPI rules: trajectory, health against tolerances (both directions), sparklines, reading age."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest

from bot.kpis import (
    Health,
    expected_value,
    kpi_health,
    reading_age_days,
    shortfall_percent,
    sparkline,
    worst_health,
)


@dataclass
class K:
    baseline: float = 0
    target: float = 100
    direction: str = "up"
    start: date = date(2026, 1, 1)
    due: date = date(2026, 12, 31)  # 364 days after start
    amber_tolerance: float = 10
    red_tolerance: float = 25


def test_expected_value_is_linear_between_start_and_due_and_clamped_outside():
    kpi = K(baseline=8, target=40, start=date(2026, 10, 1), due=date(2027, 9, 30))
    assert expected_value(kpi, date(2026, 9, 1)) == 8
    assert expected_value(kpi, date(2026, 10, 1)) == 8
    halfway = date(2026, 10, 1) + (date(2027, 9, 30) - date(2026, 10, 1)) / 2
    assert expected_value(kpi, halfway) == pytest.approx(24)
    assert expected_value(kpi, date(2027, 9, 30)) == 40
    assert expected_value(kpi, date(2030, 1, 1)) == 40


def test_expected_value_of_a_falling_kpi_falls():
    kpi = K(baseline=50, target=10, direction="down")
    assert expected_value(kpi, date(2026, 1, 1)) == 50
    assert 10 < expected_value(kpi, date(2026, 7, 1)) < 50
    assert expected_value(kpi, date(2027, 1, 1)) == 10


def test_a_kpi_due_on_its_start_day_expects_the_target_from_then_on():
    kpi = K(start=date(2026, 5, 1), due=date(2026, 5, 1))
    assert expected_value(kpi, date(2026, 4, 30)) == 0
    assert expected_value(kpi, date(2026, 5, 1)) == 100


@pytest.mark.parametrize(
    ("value", "health"),
    [
        (None, Health.NO_DATA),
        (60, Health.ON_TRACK),  # ahead of the line
        (50, Health.ON_TRACK),  # exactly on it
        (40, Health.ON_TRACK),  # 10 % behind: at the amber tolerance, still on track
        (39.9, Health.AT_RISK),
        (25, Health.AT_RISK),  # 25 % behind: at the red tolerance, still at risk
        (24.9, Health.OFF_TRACK),
    ],
)
def test_health_of_a_rising_kpi(value, health):
    # Start and due are 364 days apart; the midpoint expects 50.
    kpi = K(start=date(2026, 1, 1), due=date(2026, 12, 31))
    day = date(2026, 7, 2)
    assert expected_value(kpi, day) == pytest.approx(50)
    assert kpi_health(kpi, value, day) is health


@pytest.mark.parametrize(
    ("value", "health"),
    [(20, Health.ON_TRACK), (30, Health.ON_TRACK), (35, Health.AT_RISK), (45, Health.OFF_TRACK)],
)
def test_health_of_a_falling_kpi_counts_being_above_the_line_as_behind(value, health):
    # 50 → 10 over the year: the midpoint expects 30, the span is 40.
    kpi = K(baseline=50, target=10, direction="down")
    assert kpi_health(kpi, value, date(2026, 7, 2)) is health


def test_shortfall_is_a_percentage_of_the_whole_span():
    kpi = K(baseline=8, target=40, start=date(2026, 1, 1), due=date(2026, 12, 31))
    # Before the start the line expects the baseline; 0.8 below it is 2.5 % of the 32-point span.
    assert shortfall_percent(kpi, 7.2, date(2025, 12, 1)) == pytest.approx(2.5)


def test_a_kpi_to_hold_flat_is_off_track_on_any_shortfall():
    kpi = K(baseline=99.9, target=99.9)
    assert kpi_health(kpi, 99.9, date(2026, 6, 1)) is Health.ON_TRACK
    assert kpi_health(kpi, 99.95, date(2026, 6, 1)) is Health.ON_TRACK
    assert kpi_health(kpi, 99.8, date(2026, 6, 1)) is Health.OFF_TRACK


def test_tolerances_are_the_kpis_own():
    strict = K(amber_tolerance=1, red_tolerance=2)
    assert kpi_health(strict, 48, date(2026, 7, 2)) is Health.AT_RISK
    assert kpi_health(strict, 47, date(2026, 7, 2)) is Health.OFF_TRACK


def test_sparkline_scales_between_its_own_min_and_max():
    assert sparkline([]) == ""
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert sparkline([10, 0, 10]) == "█▁█"
    assert sparkline([5, 5, 5]) == "▄▄▄"
    assert len(sparkline([0.1 * i for i in range(12)])) == 12


def test_reading_age_in_days():
    assert reading_age_days(None, date(2026, 11, 26)) is None
    assert reading_age_days(date(2026, 11, 26), date(2026, 11, 26)) == 0
    assert reading_age_days(date(2026, 11, 19), date(2026, 11, 26)) == 7
    assert (
        reading_age_days(date(2026, 11, 27), date(2026, 11, 26)) == 0
    )  # dated ahead: not negative


def test_worst_health_ignores_missing_signals():
    assert worst_health([]) is Health.NO_DATA
    assert worst_health([None, Health.NO_DATA]) is Health.NO_DATA
    assert worst_health(["on_track", Health.NO_DATA]) is Health.ON_TRACK
    assert worst_health(["on_track", "at_risk", None]) is Health.AT_RISK
    assert worst_health([Health.OFF_TRACK, "on_track"]) is Health.OFF_TRACK
