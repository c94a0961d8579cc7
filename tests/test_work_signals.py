"""What linked work tells the plan: the burn-up and its forecast at exact boundaries, the at-risk
and mismatch causes raised and resolved through the stand-in, and /plan showing the numbers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session, select

from bot.alerts import run_detection
from bot.work.burnup import PACE_WEEKS, QUIET_DAYS, burnup
from bot.work.links import Link
from storage.models import Alert, AlertState, PulseAnswer, PulseRequest, WorkItem
from templates.ids import AlertKinds
from tests import factories as f
from tests.query_fixtures import all_text, ask_command

NOW = datetime(2027, 1, 4, 15, tzinfo=UTC)
TODAY = date(2027, 1, 4)
PILOT = Link.parse("github:harbor/claims-app label=pilot")
EPIC = Link.parse("jira:CLAIMS epic=CLAIMS-120")


@dataclass
class Item:
    tracker: str = "github"
    project: str = "harbor/claims-app"
    milestone: str | None = None
    epic: str | None = None
    labels: tuple[str, ...] = ("pilot",)
    closed: bool = False
    closed_at: datetime | None = None
    updated_at: datetime = NOW
    url: str | None = None


def closed_at(moment: datetime) -> Item:
    return Item(closed=True, closed_at=moment, updated_at=moment)


def test_the_forecast_divides_what_is_open_by_the_last_three_weeks_pace() -> None:
    window = NOW - timedelta(weeks=PACE_WEEKS)
    items = [
        *[closed_at(window) for _ in range(6)],  # exactly three weeks ago: counted
        *[closed_at(window - timedelta(seconds=1)) for _ in range(6)],  # a second earlier: not
        *[Item() for _ in range(18)],
    ]
    burn = burnup([PILOT], items, NOW, TODAY)
    assert (burn.closed, burn.total, burn.closed_lately) == (12, 30, 6)
    # 18 open at 6 per 21 days: 63 days.
    assert burn.forecast == TODAY + timedelta(days=63)
    assert burn.days_late(TODAY + timedelta(days=63)) is None  # on its due date: not late
    assert burn.days_late(TODAY + timedelta(days=62)) == 1
    assert burn.quiet_days is None


def test_a_forecast_rounds_up_to_the_next_whole_day() -> None:
    items = [closed_at(NOW - timedelta(days=1)) for _ in range(2)] + [Item() for _ in range(5)]
    # 5 open at 2 per 21 days: 52.5 days, so the 53rd day.
    assert burnup([PILOT], items, NOW, TODAY).forecast == TODAY + timedelta(days=53)


def test_no_forecast_without_pace_and_today_when_all_is_closed() -> None:
    stalled = [closed_at(NOW - timedelta(weeks=5)), Item(updated_at=NOW - timedelta(days=2))]
    assert burnup([PILOT], stalled, NOW, TODAY).forecast is None
    done = [closed_at(NOW - timedelta(weeks=5))]
    assert burnup([PILOT], done, NOW, TODAY).forecast == TODAY
    assert burnup([PILOT], [], NOW, TODAY).total == 0


def test_open_work_is_quiet_after_fourteen_days_without_a_change() -> None:
    exactly = [Item(updated_at=NOW - timedelta(days=QUIET_DAYS))]
    assert burnup([PILOT], exactly, NOW, TODAY).quiet_days == QUIET_DAYS
    almost = [Item(updated_at=NOW - timedelta(days=QUIET_DAYS) + timedelta(minutes=1))]
    assert burnup([PILOT], almost, NOW, TODAY).quiet_days is None
    closed = [closed_at(NOW - timedelta(days=40))]
    assert burnup([PILOT], closed, NOW, TODAY).quiet_days is None  # finished work is not quiet


def test_an_item_two_links_take_counts_once_and_others_not_at_all() -> None:
    both = Item(tracker="github", milestone="Pilot", labels=("pilot",))
    other_repo = Item(project="harbor/other")
    jira = Item(tracker="jira", project="CLAIMS", epic="CLAIMS-120", labels=())
    milestone = Link.parse("github:Harbor/Claims-App milestone=Pilot")  # repository names: any case
    burn = burnup([PILOT, milestone, EPIC], [both, other_repo, jira], NOW, TODAY)
    assert burn.total == 2


# --- through the stand-in -------------------------------------------------------------------------


@pytest.fixture
def plan(engine):
    with Session(engine) as session:
        f.plan_settings(session, timezone="America/New_York")
        lead = f.person(session, slack_id="UCIO", name="Chiyo")
        alice = f.person(session, slack_id="UALICE", name="Alice")
        team = f.team(session, key="it", channel_id="CDELIVERY", lead=lead)
        initiative = f.initiative(session, owner=alice, team=team, key="claims", title="Claims")
        milestone = f.milestone(
            session,
            initiative=initiative,
            key="pilot",
            title="Pilot live",
            due=TODAY + timedelta(days=30),
            work=["github:harbor/claims-app label=pilot"],
        )
        for n in range(30):
            closed = n < 12
            moment = NOW - timedelta(days=3) if closed else NOW - timedelta(days=1)
            session.add(
                WorkItem(
                    tracker="github",
                    project="harbor/claims-app",
                    ref=str(n),
                    kind="issue",
                    title=f"Task {n}",
                    closed=closed,
                    labels=["pilot"],
                    closed_at=moment if closed else None,
                    updated_at=moment,
                )
            )
        session.commit()
        return {"milestone": milestone.id, "initiative": initiative.id, "owner": alice.id}


def _open_alerts(engine, kind: str) -> list[Alert]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(Alert).where(Alert.kind == kind, Alert.state == AlertState.OPEN)
            ).all()
        )


def test_work_forecast_late_raises_at_risk_with_the_reason_and_resolves(services, standin, plan):
    # 18 open at 12 per three weeks: 32 days, two days after the milestone's date.
    run_detection(services, NOW)
    [alert] = _open_alerts(services.engine, AlertKinds.MILESTONE_AT_RISK)
    [reason] = alert.facts["reasons"]
    assert (reason["why"], reason["closed"], reason["total"], reason["days_late"]) == (
        "work_late",
        12,
        30,
        2,
    )
    [post] = [m for m in standin.messages("CDELIVERY") if m.metadata]
    assert "12 of 30 linked issues closed" in all_text(post.blocks)
    assert "2 days late" in all_text(post.blocks)
    with Session(services.engine) as session:  # the team closes three more today
        for item in session.exec(select(WorkItem).where(WorkItem.ref.in_(["12", "13", "14"]))):
            item.closed, item.closed_at, item.updated_at = True, NOW, NOW
            session.add(item)
        session.commit()
    run_detection(services, NOW + timedelta(minutes=5))
    assert _open_alerts(services.engine, AlertKinds.MILESTONE_AT_RISK) == []


def test_quiet_work_raises_at_risk(services, standin, plan):
    later = NOW + timedelta(days=25)  # nothing closed for four weeks: no pace, and quiet
    run_detection(services, later)
    [alert] = _open_alerts(services.engine, AlertKinds.MILESTONE_AT_RISK)
    assert [r["why"] for r in alert.facts["reasons"]] == ["work_quiet"]
    post = [m for m in standin.messages("CDELIVERY") if m.metadata][-1]
    assert "none has changed in 26 days" in all_text(post.blocks)


def test_an_on_track_pulse_against_a_late_forecast_is_a_mismatch_naming_the_work(
    services, standin, plan
):
    with Session(services.engine) as session:
        request = PulseRequest(
            initiative_id=plan["initiative"],
            owner_id=plan["owner"],
            period="p",
            due_at=NOW - timedelta(hours=5),
            state="answered",
            sent_at=NOW - timedelta(hours=5),
            answered_at=NOW - timedelta(hours=4),
        )
        session.add(request)
        session.flush()
        session.add(
            PulseAnswer(
                pulse_request_id=request.id, status="on_track", answered_at=NOW - timedelta(hours=4)
            )
        )
        session.commit()
    run_detection(services, NOW)
    [alert] = _open_alerts(services.engine, AlertKinds.CONFIDENCE_MISMATCH)
    assert "work_late" in [r["why"] for r in alert.facts["reasons"]]
    dm = standin.messages(standin.dm_channel("UCIO"))
    assert any("the tracker's work for" in all_text(m.blocks) for m in dm)
    with Session(services.engine) as session:  # the team closes the rest: the forecast is on time
        for item in session.exec(select(WorkItem).where(WorkItem.closed.is_(False))):
            item.closed, item.closed_at, item.updated_at = True, NOW, NOW
            session.add(item)
        session.commit()
    run_detection(services, NOW + timedelta(minutes=5))
    assert _open_alerts(services.engine, AlertKinds.CONFIDENCE_MISMATCH) == []


def test_plan_shows_the_linked_work(bot, plan):
    answer = ask_command(bot, "/plan", "claims")
    text = all_text(answer)
    assert "work: 12 of 30 closed" in text
    assert "https://github.com/harbor/claims-app/issues?q=label%3A%22pilot%22" in text
    assert "&lt;" not in text  # the work snippet is escaped once, not twice


def test_the_digest_carries_the_burnup_of_milestones_due_within_four_weeks(engine, plan):
    from bot.digest.content import build_digest
    from templates.digest import digest_messages

    with Session(engine) as session:
        soon = build_digest(session, NOW + timedelta(days=3))  # due in 27 days
        later = build_digest(session, NOW - timedelta(days=10))  # 40 days ahead: out of range
    [line] = soon.burnups
    assert (line.title, line.work.closed, line.work.total) == ("Pilot live", 12, 30)
    thread = all_text({"m": digest_messages(soon, NOW + timedelta(days=3)).thread})
    assert "Linked work of the milestones due in the next four weeks" in thread
    assert "5 days late at this pace" in thread  # 18 open at 12 per 21 days: 32 days
    assert later.burnups == []
