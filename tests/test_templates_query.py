"""Every /kpi, /plan, share and Home template rendered and validated against Block Kit limits."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot import reports as r
from bot.kpis import Health
from storage.page import Page
from storage.reports import LastPulse, Reading
from templates import answers as a
from templates.ids import AlertKinds, MilestoneIds, PollIds
from tests.query_fixtures import (
    HOSTILE,
    all_text,
    assert_pings_nobody,
    check_home,
    check_message,
)

NOW = datetime(2026, 11, 26, 15, tzinfo=UTC)
DAY = NOW.date()
ASKED = a.Asked(command="kpi", text="q", kpi_command="/kpi", plan_command="/plan")
SHARED = a.Asked(
    command="plan", text="x", kpi_command="/kpi", plan_command="/plan", shared_by="UALICE"
)
LONG = HOSTILE + " " + "&<>" * 400  # far past every limit once escaped


def kpi_line(n: int = 0, name: str = HOSTILE, health: Health = Health.AT_RISK) -> r.KpiLine:
    return r.KpiLine(
        key=f"kpi-{n}",
        name=name,
        unit="%",
        direction="up",
        baseline=8,
        target=40,
        start=date(2026, 10, 1),
        due=date(2027, 9, 30),
        expected=12.9,
        latest=Reading(value=11.5, as_of=date(2026, 11, 20)),
        health=health,
        spark="▁▃▅█",
        age_days=6,
    )


def milestone(n: int, title: str = HOSTILE) -> r.MilestoneLine:
    return r.MilestoneLine(
        key=f"m-{n}",
        title=title,
        due=date(2026, 12, 1),
        expected_due=date(2026, 12, 15),
        status=["open", "done", "descoped"][n % 3],
        missed=n % 4 == 0,
        scope_note=HOSTILE if n % 3 == 2 else None,
    )


def dependency(n: int, need: str = HOSTILE) -> r.DependencyLine:
    return r.DependencyLine(
        key=f"d-{n}",
        need=need,
        needed_by=date(2027, 1, 25),
        state=["requested", "acknowledged", "at_risk", "blocked"][n % 4],
        provider_team=HOSTILE,
        initiative_key=f"i-{n}",
        initiative_title=HOSTILE,
        milestone_title=HOSTILE,
        note=HOSTILE,
    )


def card(milestones: int, dependencies: int, kpis: int, text: str = HOSTILE) -> r.InitiativeCard:
    return r.InitiativeCard(
        key="portal-beta",
        title=text,
        status="paused",
        owner_slack_id="UALICE",
        owner_name=text,
        team_name=text,
        team_lead_slack_id="UCIO",
        objective_title=text,
        health=Health.OFF_TRACK,
        pulse=LastPulse(status="at_risk", confidence=2, blockers=text, answered_at=NOW),
        milestones=[milestone(n, text) for n in range(milestones)],
        dependencies=[dependency(n, text) for n in range(dependencies)],
        kpis=[kpi_line(n, text) for n in range(kpis)],
    )


def alert(n: int, text: str = HOSTILE) -> r.AlertLine:
    """An open alert of every kind in turn, its facts carrying `text` wherever plan text goes."""
    kind = list(AlertKinds)[n % len(AlertKinds)]
    milestone = kind in r.MILESTONE_KINDS
    return r.AlertLine(
        alert_id=n + 1,
        kind=kind,
        facts={
            "milestone_id": n + 1 if milestone else None,
            "title": text,
            "initiative_title": text,
            "due": "2026-11-20",
            "need": text,
            "provider_name": text,
            "needed_by": "2026-11-25",
            "state": "blocked" if n % 2 else "requested",
            "name": text,
            "stale": bool(n % 2),
            "reading_every_days": 35,
            "periods": ["2026-11-16", "2026-11-23"],
            "ref": text,
        },
        opened_at=NOW,
        link=f"https://x.slack.com/archives/C{n:04d}/p{n}000" if n % 3 else None,
        milestone_id=n + 1 if milestone else None,
    )


def summary(n: int) -> r.InitiativeSummary:
    return r.InitiativeSummary(
        key=f"i-{n}", title=LONG, health=Health.ON_TRACK, next_milestone=milestone(n, LONG)
    )


def kpi_answers(size: int, text: str) -> list[r.KpiAnswer]:
    return [
        r.KpiScorecard(
            day=DAY,
            groups=[
                r.ObjectiveGroup(
                    key=f"o-{g}", title=text, kpis=[kpi_line(n, text) for n in range(size)]
                )
                for g in range(max(size // 10, 1))
            ],
        ),
        r.KpiScorecard(day=DAY, groups=[]),
        r.KpiCard(
            day=DAY,
            kpi=kpi_line(0, text),
            objective_title=text,
            readings=[Reading(value=n, as_of=date(2026, 10, 1)) for n in range(12)],
            initiatives=[
                r.LinkedInitiative(
                    key=f"i-{n}",
                    title=text,
                    owner_slack_id="UALICE" if n % 2 else None,
                    pulse=LastPulse(
                        status="on_track", confidence=None, blockers=None, answered_at=None
                    )
                    if n % 3
                    else None,
                )
                for n in range(size)
            ],
        ),
        r.KpiCard(
            day=DAY,
            kpi=r.KpiLine(**{**vars(kpi_line(0, text)), "latest": None, "age_days": None}),
            objective_title="",
            readings=[],
            initiatives=[],
        ),
        r.KpiChoices(query=text, kpis=[(f"k-{n}", text) for n in range(size)], total=size + 40),
        r.KpiNoMatch(query=text, suggestions=[("a", text), ("b", text)]),
        r.KpiNoMatch(query=text, suggestions=[]),
    ]


def plan_answers(size: int, text: str) -> list[r.PlanAnswer]:
    return [
        card(size, size, size, text),
        card(0, 0, 0, text),
        r.MyInitiatives(in_plan=True, initiatives=[summary(n) for n in range(size)], total=size),
        r.MyInitiatives(in_plan=True, initiatives=[], total=0),
        r.MyInitiatives(in_plan=False, initiatives=[], total=0),
        r.MyDependencies(
            in_plan=True,
            to_provide=Page(rows=[dependency(n, text) for n in range(size)], total=size * 3),
            waiting_for=Page(rows=[dependency(n, text) for n in range(size)], total=size),
        ),
        r.MyDependencies(in_plan=False, to_provide=Page([], 0), waiting_for=Page([], 0)),
        r.DecisionLog(
            decisions=[
                r.DecisionLine(
                    milestone_key=f"m-{n}",
                    milestone_title=text,
                    initiative_key="i",
                    option=["delay", "descope", "add_resources", "accept_risk"][n % 4],
                    new_due=date(2027, 1, 1) if n % 2 else None,
                    scope_cut=text if n % 2 == 0 else None,
                    summary=text,
                    decided_at=NOW,
                )
                for n in range(size)
            ],
            total=size,
        ),
        r.AlertList(
            in_plan=True,
            yours=Page(rows=[alert(n, text) for n in range(size)], total=size * 2),
            others=Page(rows=[alert(n, text) for n in range(size)], total=size),
        ),
        r.AlertList(in_plan=True, yours=Page([], 0), others=Page([], 0)),
        r.AlertList(
            in_plan=False,
            yours=Page([], 0),
            others=Page(rows=[alert(n, text) for n in range(size)], total=size),
        ),
        r.DecisionLog(decisions=[], total=0),
        r.PlanHelp(),
        r.PlanHelp(unknown=text, suggestions=["a", "b"]),
    ]


@pytest.mark.parametrize("size", [1, 5, 300])
@pytest.mark.parametrize("text", [HOSTILE, LONG])
@pytest.mark.parametrize("asked", [ASKED, SHARED])
def test_kpi_answers_fit_block_kit_and_escape_plan_text(size, text, asked):
    for answer in kpi_answers(size, text):
        message = a.kpi_message(answer, asked)
        check_message(message)
        assert_pings_nobody(message)


@pytest.mark.parametrize("size", [1, 5, 200])
@pytest.mark.parametrize("text", [HOSTILE, LONG])
@pytest.mark.parametrize("asked", [ASKED, SHARED])
def test_plan_answers_fit_block_kit_and_escape_plan_text(size, text, asked):
    for answer in plan_answers(size, text):
        message = a.plan_message(answer, asked)
        check_message(message)
        assert_pings_nobody(message)


def test_a_card_with_two_hundred_milestones_says_how_many_are_left_out():
    message = a.plan_message(card(200, 0, 0), ASKED)
    text = all_text(message)
    shown = text.count("`m-")
    assert 0 < shown < 200
    assert f"…and {200 - shown} more milestones." in text


def test_shared_answers_say_who_shared_and_have_no_button():
    message = a.plan_message(card(1, 1, 1), SHARED)
    assert message["blocks"][-1]["type"] == "context"
    assert "Shared by <@UALICE> · /plan x" in all_text(message)
    assert "query_share" not in all_text(message)


@pytest.mark.parametrize("size", [0, 3, 300])
@pytest.mark.parametrize("leader", [True, False])
def test_home_fits_100_blocks_and_escapes(size, leader):
    home = r.HomeData(
        in_plan=True,
        is_leader=leader,
        initiatives=r.MyInitiatives(
            in_plan=True, initiatives=[summary(n) for n in range(size)], total=size
        ),
        pulses=Page(
            rows=[
                r.PendingPulse(
                    pulse_id=n + 1,
                    initiative_key=f"i-{n}",
                    initiative_title=LONG,
                    due_at=NOW,
                    closes_at=NOW if n % 2 else None,
                )
                for n in range(size)
            ],
            total=size,
        ),
        dependencies=Page(rows=[dependency(n, LONG) for n in range(size)], total=size + 5),
        polls=Page(
            rows=[
                r.OpenPoll(
                    poll_id=n + 1,
                    milestone_key=f"m-{n}",
                    milestone_title=LONG,
                    initiative_title=LONG,
                    deadline=NOW,
                    channel_id="CDECISIONS" if n % 2 else None,
                    voted=bool(n % 3),
                    slip_days=n,
                    proposed_due=NOW.date(),
                    anonymous=n % 4 == 0,
                    my_option="descope" if n % 3 == 1 else None,
                )
                for n in range(size)
            ],
            total=size,
        ),
        alerts=Page(rows=[alert(n, LONG) for n in range(size)], total=size + 5),
    )
    view = a.home_view(
        home, now=NOW, kpi_command="/kpi", plan_command="/plan", pulse_command="/pulse"
    )
    check_home(view)
    assert_pings_nobody(view)
    assert ("Decision polls" in all_text(view)) is leader
    votes = [b for b in view["blocks"] if b.get("block_id", "").startswith(PollIds.VOTE_BLOCK)]
    assert bool(votes) is (leader and size > 0)  # only a leader gets vote buttons
    assert len(votes) == len({b["block_id"] for b in votes}) <= a.HOME_POLLS
    buttons = [b for b in view["blocks"] if b.get("block_id", "").startswith("milestone_actions")]
    assert len(buttons) == len({b["block_id"] for b in buttons})
    assert bool(buttons) is (size > 0)
    more = size + 5 - min(size, a.HOME_ALERTS)
    assert f"…and {more} more; `/plan alerts` lists them all." in all_text(view)


def test_home_shows_a_milestones_buttons_once_when_two_alerts_name_it():
    missed, at_risk = alert(2), alert(3)  # milestone_missed, milestone_at_risk
    assert {missed.kind, at_risk.kind} == set(r.MILESTONE_KINDS)
    at_risk.milestone_id = missed.milestone_id
    home = r.HomeData(
        in_plan=True,
        is_leader=False,
        initiatives=r.MyInitiatives(in_plan=True, initiatives=[], total=0),
        pulses=Page([], 0),
        dependencies=Page([], 0),
        polls=Page([], 0),
        alerts=Page(rows=[missed, at_risk], total=2),
    )
    view = a.home_view(
        home, now=NOW, kpi_command="/kpi", plan_command="/plan", pulse_command="/pulse"
    )
    check_home(view)
    actions = [b["block_id"] for b in view["blocks"] if b["type"] == "actions"]
    assert actions == [f"{MilestoneIds.ACTIONS_BLOCK}:{missed.milestone_id}"]


def test_home_for_someone_not_in_the_plan():
    empty = r.MyInitiatives(in_plan=False, initiatives=[], total=0)
    home = r.HomeData(
        in_plan=False,
        is_leader=False,
        initiatives=empty,
        pulses=Page([], 0),
        dependencies=Page([], 0),
        polls=Page([], 0),
        alerts=Page([], 0),
    )
    view = a.home_view(
        home, now=NOW, kpi_command="/kpi", plan_command="/plan", pulse_command="/pulse"
    )
    check_home(view)
    assert "not named in the plan" in all_text(view)


@pytest.mark.parametrize("reason", ["not_in_channel", "channel_not_found", "unavailable"])
def test_share_failed_replies_are_valid(reason):
    check_message(a.share_failed_message(reason))


def test_pack_keeps_whole_lines_within_3000_chars_and_counts_the_rest():
    lines = ((f"line {n} " + "x" * 300, True) for n in range(100))
    packed = a.pack(lines, total=250, max_sections=3)
    assert len(packed.sections) == 3
    assert all(len(section) <= 3000 for section in packed.sections)
    assert packed.shown == 27 and packed.more == 223  # 9 lines of about 308 chars per section


def test_pack_cuts_an_absurd_line_without_splitting_an_entity():
    packed = a.pack([("&amp;" * 1000, True)], total=1, max_sections=1)
    [section] = packed.sections
    assert len(section) <= a.LINE_CHARS and section.endswith("&amp;…")


def test_pack_with_nothing_to_show_has_no_sections():
    assert a.pack([], total=0, max_sections=5, heading="milestones") == a.Packed([], 0, 0)


def test_numbers_are_short_and_carry_their_unit():
    assert a.number(None) == "—"
    assert a.number(40.0, "%") == "40%"
    assert a.number(12.9166, "%") == "12.92%"
    assert a.number(1250, "tickets") == "1,250 tickets"
    assert a.number(-0.001) == "0"


def test_share_values_round_trip_and_reject_strangers():
    value = a.share_value("plan", "mine")
    assert a.parse_share_value(value) == ("plan", "mine")
    assert len(a.share_value("kpi", "x" * 5000)) < 2000
    for bad in ["[]", '{"text": "x"}', "not json"]:
        with pytest.raises(ValueError):
            a.parse_share_value(bad)
