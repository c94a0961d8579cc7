"""The weekly digest: its content for a known plan and week, its delivery once per period, `/plan digest`."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from bot.digest.calibration import Band
from bot.digest.content import build_digest
from bot.digest.delivery import CLAIM_LEASE, send_digests
from bot.digest.metrics import FigureName, Trend
from bot.kpis import SPARK_CHARS, Health
from bot.pulses.schedule import current_period
from bot.slack.gateway import MessageTag
from scheduler.tick import STEPS, run_tick
from storage.models import (
    Decision,
    DecisionPoll,
    DigestDelivery,
    Initiative,
    PollState,
    PulseAnswer,
    PulseRequest,
)
from templates.digest import digest_messages, digest_private
from templates.ids import MessageEvents
from tests import factories as f
from tests.query_fixtures import all_text, assert_pings_nobody, check_message

# Friday 8 January 2027, 16:00 in New York: the default cadence's fire.
FIRE = datetime(2027, 1, 8, 21, 0, tzinfo=UTC)
WEEK_START = FIRE - timedelta(weeks=1)
NASTY = "Beta <!here> & <@UCOO>"


def _pulse(
    session: Session, initiative, owner, due_at: datetime, *, answered: bool, confidence=None
) -> None:
    request = PulseRequest(
        initiative_id=initiative.id,
        owner_id=owner.id,
        period=due_at.isoformat(),
        due_at=due_at,
        state="answered" if answered else "sent",
        sent_at=due_at,
        answered_at=due_at + timedelta(hours=2) if answered else None,
    )
    session.add(request)
    session.flush()
    if answered:
        session.add(
            PulseAnswer(
                pulse_request_id=request.id,
                status="on_track",
                confidence=confidence,
                answered_at=due_at + timedelta(hours=2),
            )
        )
        session.flush()


def _decision(
    session: Session,
    milestone,
    *,
    slipped: datetime,
    decided: datetime,
    window_end: datetime,
    option: str = "delay",
    days: int | None = None,
) -> None:
    poll = DecisionPoll(
        milestone_id=milestone.id,
        open_key=None,
        state=PollState.CLOSED,
        opened_at=slipped,
        slipped_at=slipped,
        original_deadline=window_end,
        deadline=max(window_end, decided),
        closed_at=decided,
        outcome=option,
    )
    session.add(poll)
    session.flush()
    session.add(
        Decision(
            milestone_id=milestone.id,
            poll_id=poll.id,
            option=option,
            days_moved=days,
            new_due=milestone.due + timedelta(days=days) if days else None,
            slipped_at=slipped,
            decided_at=decided,
        )
    )
    session.flush()


def known_plan(session: Session) -> dict[str, object]:
    """A plan whose every digest figure is known from the timestamps written here."""
    f.plan_settings(session, timezone="America/New_York", decisions_channel="CDECISIONS")
    alice = f.person(session, slack_id="UALICE", name="Alice")
    bob = f.person(session, slack_id="UBOB", name="Bob")
    coo = f.person(session, slack_id="UCOO", name="COO", is_leader=True)
    f.person(session, slack_id="UCFO", name="CFO", is_leader=True)
    it = f.team(session, key="it", name="IT", channel_id="CDELIVERY", lead=alice)
    marketing = f.team(session, key="marketing", name="Marketing <!channel>", lead=bob)
    goal = f.objective(session, key="portal", title="Self-service portal", owner=coo)
    other = f.objective(session, key="quiet", title="Quiet objective", owner=coo)
    year = {"start": date(2026, 7, 1), "due": date(2027, 6, 30), "baseline": 0, "target": 100}
    behind = f.kpi(session, objective=goal, key="adoption", name="Adoption", unit="%", **year)
    fine = f.kpi(session, objective=goal, key="nps", name="NPS", **year)
    f.reading(session, kpi=behind, value=5, as_of=date(2027, 1, 4))
    f.reading(session, kpi=fine, value=55, as_of=date(2027, 1, 4))
    portal = f.initiative(
        session, owner=alice, team=it, key="portal", title=NASTY, objective=goal, kpis=[behind]
    )
    payroll = f.initiative(
        session, owner=bob, team=it, key="payroll", title="Payroll", objective=other, kpis=[fine]
    )
    f.initiative(
        session,
        owner=bob,
        team=marketing,
        key="campaign",
        title="Campaign",
        dark_since=datetime(2027, 1, 6, 15, tzinfo=UTC),
    )
    # Came due this quarter: one missed (said 5 two weeks before), one done on time (said 4).
    missed = f.milestone(session, initiative=portal, key="beta", title=NASTY, due=date(2027, 1, 5))
    f.milestone(
        session,
        initiative=portal,
        key="design",
        title="Design",
        due=date(2027, 1, 6),
        status="done",
        completed_at=datetime(2027, 1, 6, 18, tzinfo=UTC),
    )
    f.milestone(
        session,
        initiative=payroll,
        key="cutover",
        title="Cutover",
        due=date(2027, 1, 20),
        expected_due=date(2027, 1, 27),
    )
    f.milestone(
        session,
        initiative=payroll,
        key="extras",
        title="Extras",
        due=date(2027, 3, 1),
        status="descoped",
    )
    moved = f.milestone(
        session, initiative=portal, key="launch", title="Launch", due=date(2027, 3, 1)
    )
    _pulse(
        session, portal, alice, datetime(2026, 12, 20, 14, tzinfo=UTC), answered=True, confidence=5
    )
    _pulse(
        session, portal, alice, datetime(2026, 12, 23, 14, tzinfo=UTC), answered=True, confidence=4
    )
    # This week: 3 of 4 pulses answered. The four weeks before: 2 of 4 (with the two above).
    for n, answered in enumerate([True, True, True, False]):
        owner = alice if n % 2 else bob
        _pulse(session, payroll, owner, datetime(2027, 1, 4, 14, n, tzinfo=UTC), answered=answered)
    _pulse(session, payroll, bob, datetime(2026, 12, 14, 14, tzinfo=UTC), answered=False)
    _pulse(session, payroll, bob, datetime(2026, 12, 28, 14, tzinfo=UTC), answered=False)
    # Waiting for acknowledgement: the older request comes first.
    f.dependency(
        session,
        initiative=portal,
        provider=marketing,
        key="copy",
        need="Copy <!here>",
        needed_by=date(2027, 2, 1),
        requested_at=datetime(2027, 1, 4, 14, tzinfo=UTC),
        ack_due_at=datetime(2027, 1, 7, 5, tzinfo=UTC),
    )
    f.dependency(
        session,
        initiative=portal,
        provider=marketing,
        key="training",
        need="Training",
        needed_by=date(2027, 2, 1),
        requested_at=datetime(2026, 12, 28, 14, tzinfo=UTC),
    )
    # Acknowledged this week after 24 hours; the four weeks before, after 72.
    f.dependency(
        session,
        initiative=payroll,
        provider=it,
        key="feed",
        need="Feed",
        needed_by=date(2027, 2, 1),
        state="acknowledged",
        requested_at=datetime(2027, 1, 4, 14, tzinfo=UTC),
        acknowledged_at=datetime(2027, 1, 5, 14, tzinfo=UTC),
    )
    f.dependency(
        session,
        initiative=payroll,
        provider=it,
        key="old-feed",
        need="Old feed",
        needed_by=date(2027, 2, 1),
        state="acknowledged",
        requested_at=datetime(2026, 12, 14, 14, tzinfo=UTC),
        acknowledged_at=datetime(2026, 12, 17, 14, tzinfo=UTC),
    )
    # Two slips decided this week: 48 hours in the window, 120 hours after an extension.
    _decision(
        session,
        moved,
        slipped=datetime(2027, 1, 4, 15, tzinfo=UTC),
        decided=datetime(2027, 1, 6, 15, tzinfo=UTC),
        window_end=datetime(2027, 1, 6, 16, tzinfo=UTC),
        option="delay",
        days=14,
    )
    _decision(
        session,
        missed,
        slipped=datetime(2027, 1, 2, 21, 30, tzinfo=UTC),
        decided=datetime(2027, 1, 7, 21, 30, tzinfo=UTC),
        window_end=datetime(2027, 1, 5, 0, tzinfo=UTC),
        option="accept_risk",
    )
    session.add(
        DecisionPoll(
            milestone_id=missed.id,
            open_key=f"milestone:{missed.id}",
            opened_at=datetime(2027, 1, 8, 12, tzinfo=UTC),
            deadline=datetime(2027, 1, 10, 12, tzinfo=UTC),
        )
    )
    session.commit()
    return {"portal": portal, "payroll": payroll}


# --- content ------------------------------------------------------------------------------------


def test_the_digest_of_a_known_week(engine) -> None:
    with Session(engine) as session:
        known_plan(session)
        digest = build_digest(session, FIRE)
    assert (digest.first_day, digest.last_day) == (date(2027, 1, 1), date(2027, 1, 8))
    assert digest.organization == "Northwind Financial"
    healths = {line.key: line.health for line in digest.initiatives}
    assert healths["portal"] == Health.OFF_TRACK  # a missed milestone, and its KPI far behind
    assert digest.initiatives[0].health == Health.OFF_TRACK  # worst first
    assert [p.facts["milestone_key"] for p in digest.missed] == ["beta"]
    assert digest.missed[0].days == 3  # due Tuesday the 5th, read on Friday the 8th
    assert [p.facts["milestone_key"] for p in digest.at_risk] == ["cutover"]
    assert [w.dependency.key for w in digest.waiting] == ["training", "copy"]
    assert [d.milestone.key for d in digest.decided] == ["launch", "beta"]
    assert [p.milestone.key for p in digest.open_polls] == ["beta"]
    assert [i.key for i, _ in digest.dark] == ["campaign"]

    figures = {figure.name: figure for figure in digest.discipline}
    response = figures[FigureName.PULSE_RESPONSE]
    assert (response.value, response.cases, response.previous) == (0.75, 4, 0.5)
    assert response.trend is Trend.BETTER
    ack = figures[FigureName.ACK_WAIT]
    assert (ack.value, ack.previous, ack.trend) == (24.0, 72.0, Trend.BETTER)
    slip = figures[FigureName.SLIP_TO_DECISION]
    assert (slip.value, slip.cases, slip.previous, slip.trend) == (84.0, 2, None, None)
    in_window = figures[FigureName.DECIDED_IN_WINDOW]
    assert (in_window.value, in_window.cases) == (0.5, 2)

    assert [(d.key, d.days_delayed, d.delays, d.descoped) for d in digest.drift] == [
        ("portal", 14, 1, 0),
        ("quiet", 0, 0, 1),
    ]

    calibration = digest.calibration
    assert calibration.quarter_start == date(2027, 1, 1)
    [high] = calibration.bands
    assert (high.band, high.milestones, high.on_time, high.late) == (Band.HIGH, 2, 1, 1)
    assert calibration.optimistic  # said 4.5 of 5 on average, delivered half


def test_the_rendered_digest_has_every_section_within_block_kit_limits(engine) -> None:
    with Session(engine) as session:
        known_plan(session)
        digest = build_digest(session, FIRE)
    messages = digest_messages(digest, FIRE)
    check_message(messages.parent)
    assert messages.parent["blocks"][0]["text"]["text"] == "Weekly plan digest"
    parent = all_text(messages.parent)
    assert "Northwind Financial" in parent and "Adoption" in parent
    assert any(char in parent for char in SPARK_CHARS)  # the sparkline
    titles = [m["blocks"][0]["text"]["text"] for m in messages.thread]
    expected = [
        "Initiatives by health",
        "Missed and at-risk milestones",
        "Dependencies waiting for acknowledgement",
        "Decisions this week",
        "Initiatives gone dark",
        "Execution discipline",
        "Drift from the plan as first imported",
        "Confidence calibration",
    ]
    assert len(titles) == len(expected)
    for title, start in zip(titles, expected, strict=True):
        assert title.strip("*").startswith(start), title
    for message in messages.thread:
        check_message(message)
        assert_pings_nobody(message)
    thread = all_text({"m": messages.thread})
    assert "75% of 4 pulses answered · previous 4 weeks 50%, :arrow_up: better" in thread
    assert "24 hours (1 acknowledged) · previous 4 weeks 3 days, :arrow_up: better" in thread
    assert "3.5 days (2 decided) · no earlier weeks to compare" in thread
    assert "14 days of delay decided (1 decision)" in thread
    assert "1 of 2 on time" in thread and "ran well ahead of delivery" in thread
    assert "&lt;!here&gt;" in thread  # plan text escaped, never a ping
    private = digest_private(digest, FIRE)
    check_message(private)
    assert "Execution discipline" in all_text(private)


def test_empty_sections_are_left_out_and_figures_without_data_say_so(engine) -> None:
    with Session(engine) as session:
        f.plan_settings(session, timezone="America/New_York", decisions_channel="CDECISIONS")
        alice = f.person(session, slack_id="UALICE", name="Alice")
        it = f.team(session, key="it", name="IT", lead=alice)
        f.initiative(session, owner=alice, team=it, key="solo", title="Solo")
        session.commit()
        digest = build_digest(session, FIRE)
    messages = digest_messages(digest, FIRE)
    text = all_text({"m": messages.thread})
    for absent in ("Missed and at-risk", "waiting for acknowledgement", "gone dark", "Decisions"):
        assert absent not in text
    assert "KPI scorecard" not in all_text(messages.parent)
    assert "no pulses were due this week" in text
    assert "no dependency was acknowledged this week" in text
    assert "no slip was decided this week" in text
    assert "no poll closed this week" in text
    assert "has not moved from its import" in text
    assert "No milestone has come due this quarter yet" in text
    assert " 0%" not in text and "0 hours" not in text


# --- delivery -------------------------------------------------------------------------------------


def _digest_posts(standin) -> list:
    return [
        call
        for call in standin.calls("chat.postMessage")
        if call.ok
        and MessageEvents.DIGEST in str(call.params.get("metadata", ""))
        and MessageEvents.DIGEST_PART not in str(call.params.get("metadata", ""))
    ]


def _parents(standin, channel: str) -> list:
    return [
        m
        for m in standin.messages(channel)
        if m.metadata and m.metadata.get("event_type") == MessageEvents.DIGEST
    ]


def test_one_digest_per_period_with_its_thread_and_charts(services, standin) -> None:
    with Session(services.engine) as session:
        known_plan(session)
    assert list(STEPS).index("digest") == list(STEPS).index("decision_follow_up") + 1
    report = send_digests(services, FIRE + timedelta(seconds=30))
    assert (report.posted, report.replies, report.charts) == (1, 8, 1)
    [parent] = _parents(standin, "CDECISIONS")
    replies = [m for m in standin.messages("CDECISIONS") if m.thread_ts == parent.ts]
    assert len(replies) == 9  # eight sections and the off-track KPI's chart
    [chart] = standin.uploaded_files("CDECISIONS")
    assert chart.content[:8] == b"\x89PNG\r\n\x1a\n"
    before = len(standin.calls())
    for minutes in (1, 5, 60):  # later ticks of the same period call Slack for nothing
        run_tick(services, FIRE + timedelta(minutes=minutes))
    assert not [
        c
        for c in standin.calls()[before:]
        if c.method == "chat.postMessage"
        and MessageEvents.DIGEST in str(c.params.get("metadata", ""))
    ]
    # The next Friday is a new period.
    assert send_digests(services, FIRE + timedelta(weeks=1, seconds=5)).posted == 1


def test_concurrent_ticks_send_one_digest(services, standin) -> None:
    with Session(services.engine) as session:
        known_plan(session)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def tick() -> None:
        barrier.wait()
        try:
            send_digests(services, FIRE + timedelta(seconds=1))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert len(_digest_posts(standin)) == 1
    with Session(services.engine) as session:
        [row] = session.exec(select(DigestDelivery)).all()
        assert row.finished_at is not None and row.thread_posted == 9


@pytest.mark.parametrize(
    ("moment", "sent"),
    [
        (FIRE + timedelta(minutes=59), True),  # on time, within the grace
        (datetime(2027, 1, 9, 15, tzinfo=UTC), False),  # Saturday 10:00: waits for work
        (datetime(2027, 1, 11, 15, tzinfo=UTC), True),  # Monday 10:00: late, still worth it
        (datetime(2027, 1, 14, 15, tzinfo=UTC), False),  # Thursday: the next one is close
    ],
)
def test_a_late_digest_follows_the_pulses_late_prompt_rule(services, standin, moment, sent) -> None:
    with Session(services.engine) as session:
        known_plan(session)
    assert (send_digests(services, moment).posted == 1) is sent


def test_digest_to_leaders_is_a_dm_to_each(services, standin) -> None:
    with Session(services.engine) as session:
        known_plan(session)
        f.plan_settings(session, digest_to="leaders", digest="0 8 * * mon")
        session.commit()
    monday = datetime(2027, 1, 11, 13, 0, 10, tzinfo=UTC)  # 08:00 in New York
    report = send_digests(services, monday)
    assert report.posted == 2
    for leader in ("UCOO", "UCFO"):
        assert len(_parents(standin, standin.dm_channel(leader))) == 1
    assert not _parents(standin, "CDECISIONS")
    assert send_digests(services, monday + timedelta(minutes=30)).posted == 0


def test_a_crashed_delivery_is_carried_on_without_posting_twice(services, standin) -> None:
    # The stand-in stamps messages with the real clock, and a takeover searches Slack's history
    # from the dead claim: this test lives in real time, with an hourly digest.
    now = datetime.now(UTC)
    period = current_period("0 * * * *", ZoneInfo("America/New_York"), now).key
    with Session(services.engine) as session:
        known_plan(session)
        f.plan_settings(session, digest="0 * * * *")
        # A process claimed the digest, posted the parent and two replies, then died.
        row = DigestDelivery(
            period=period, recipient="channel", claimed_at=now - timedelta(minutes=5)
        )
        session.add(row)
        session.commit()
        row_id = row.id
    parent = services.slack.post_message(
        channel="CDECISIONS",
        text="Weekly plan digest",
        tag=MessageTag(MessageEvents.DIGEST, {"digest_id": str(row_id), "period": period}),
    )
    for part in range(2):
        services.slack.post_message(
            channel="CDECISIONS",
            text="part",
            thread_ts=parent.ts,
            tag=MessageTag(
                MessageEvents.DIGEST_PART, {"digest_id": str(row_id), "part": str(part)}
            ),
        )
    assert send_digests(services, now).posted == 0  # the claim is still alive
    with Session(services.engine) as session:
        stale = session.get(DigestDelivery, row_id)
        assert stale is not None
        stale.claimed_at = now - CLAIM_LEASE - timedelta(minutes=1)
        session.add(stale)
        session.commit()
    report = send_digests(services, now)
    assert (report.posted, report.recovered, report.replies, report.charts) == (0, 1, 6, 1)
    replies = [m for m in standin.messages("CDECISIONS") if m.thread_ts == parent.ts]
    assert len(replies) == 2 + 6 + 1
    assert len(_parents(standin, "CDECISIONS")) == 1


def test_a_refused_channel_keeps_the_digest_for_a_later_tick(services, standin) -> None:
    with Session(services.engine) as session:
        known_plan(session)
    standin.fail_next("chat.postMessage", error="not_in_channel", status=200)
    report = send_digests(services, FIRE + timedelta(seconds=5))
    assert (report.posted, report.unposted) == (0, 1)
    assert send_digests(services, FIRE + timedelta(minutes=2)).posted == 0
    assert send_digests(services, FIRE + CLAIM_LEASE + timedelta(minutes=1)).posted == 1
    assert len(_digest_posts(standin)) == 1


def test_no_digest_covers_a_week_before_the_plan_existed(services, standin) -> None:
    with Session(services.engine) as session:
        known_plan(session)
        for initiative in session.exec(select(Initiative)).all():
            initiative.active_since = FIRE + timedelta(hours=1)
            session.add(initiative)
        session.commit()
    assert send_digests(services, FIRE + timedelta(seconds=5)).period is None


# --- /plan digest ---------------------------------------------------------------------------------


def test_plan_digest_answers_privately_after_the_ack(bot, standin) -> None:
    with Session(bot.services.engine) as session:
        known_plan(session)
    response = bot.command("/plan", "digest", user_id="UALICE", channel_id="CDELIVERY")
    assert response.status_code == 200 and not response.text
    call = standin.wait_for("response_url", 1, 10)[0]
    body = call.params
    assert body["response_type"] == "ephemeral"
    check_message(body)
    text = all_text(body)
    assert "Weekly plan digest" in text and "Execution discipline" in text
    assert not _digest_posts(standin)  # nothing posted in a channel
