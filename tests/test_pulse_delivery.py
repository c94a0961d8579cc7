"""Pulse fan-out through the stand-in: grouping, exactly once, catch-up, failures, crash recovery."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from bot.alerts import run_detection
from bot.pulses import delivery, messages
from bot.pulses.delivery import CLAIM_LEASE, deliver_pulses, tagged_pulse_ids
from bot.services import Services
from bot.slack.gateway import MessageTag, SlackGateway
from storage import pulses as queries
from storage.models import Alert, Person, PulseAnswer, PulseRequest, PulseState
from templates.ids import MessageEvents, PulseIds
from tests import factories

MONDAY = datetime(2027, 1, 4, 18, tzinfo=UTC)  # 13:00 New York, 10:00 Los Angeles


def posts(standin, channel: str | None = None):
    return [
        c
        for c in standin.calls("chat.postMessage")
        if c.ok and (channel is None or c.params.get("channel") == channel)
    ]


def pulses(engine) -> list[PulseRequest]:
    with Session(engine) as session:
        return list(session.exec(select(PulseRequest).order_by(PulseRequest.id)))


@pytest.fixture
def plan(engine):
    """Alice (New York) owns three initiatives, Bob (Los Angeles) one; Chiyo leads; Dana is admin."""
    with Session(engine) as session:
        factories.plan_settings(session, default_pulse="0 9 * * mon")
        alice = factories.person(session, slack_id="UALICE", name="Alice", tz="America/New_York")
        bob = factories.person(session, slack_id="UBOB", name="Bob", tz="America/Los_Angeles")
        chiyo = factories.person(session, slack_id="UCIO", name="Chiyo", tz="Asia/Tokyo")
        factories.person(session, slack_id="UCOO", name="Dana", is_admin=True)
        team = factories.team(session, key="it", lead=chiyo)
        goal = factories.objective(session, title="Move 40% of requests to the portal")
        for key, title in [
            ("portal", "Portal beta"),
            ("chatbot", "Chatbot <pilot> & co"),
            ("sso", "SSO"),
        ]:
            factories.initiative(
                session, owner=alice, team=team, key=key, title=title, objective=goal
            )
        factories.initiative(session, owner=bob, team=team, key="mobile", title="Mobile app")
        session.commit()
    return engine


def test_owner_with_several_initiatives_gets_one_dm(plan, services, standin):
    report = deliver_pulses(services, MONDAY)
    assert (report.claimed, report.sent, report.messages) == (4, 4, 2)

    [to_alice] = posts(standin, "UALICE")
    blocks = to_alice.params["blocks"]
    actions = [b for b in blocks if b["type"] == "actions"]
    assert len(actions) == 3  # one set of buttons per initiative, in one message
    assert {e["action_id"] for e in actions[0]["elements"]} == {
        PulseIds.ON_TRACK,
        PulseIds.AT_RISK,
        PulseIds.OFF_TRACK,
        PulseIds.ADD_DETAILS,
    }
    text = str(blocks)
    assert "Chatbot &lt;pilot&gt; &amp; co" in text  # plan text is escaped, never markup
    metadata = to_alice.params["metadata"]
    assert metadata["event_type"] == MessageEvents.PULSE_PROMPT

    rows = pulses(plan)
    alice_rows = [r for r in rows if r.owner_id == rows[0].owner_id]
    assert tagged_pulse_ids(metadata["event_payload"]) == {r.id for r in alice_rows}
    assert {a["elements"][0]["value"] for a in actions} == {str(r.id) for r in alice_rows}
    assert all(r.state == PulseState.SENT for r in rows)
    assert len({(r.channel_id, r.message_ts) for r in alice_rows}) == 1
    assert alice_rows[0].channel_id.startswith("D")  # the DM's real ID, from Slack's answer
    assert all(r.period == "2027-01-04T09:00" for r in alice_rows)
    assert {r.next_due_at for r in alice_rows} == {datetime(2027, 1, 11, 14, tzinfo=UTC)}
    # No per-person conversations.open or users.info: one call per delivered message.
    assert {c.method for c in standin.calls()} == {"chat.postMessage"}


def test_second_tick_in_the_same_period_sends_nothing(plan, services, standin):
    deliver_pulses(services, MONDAY)
    again = deliver_pulses(services, MONDAY + timedelta(minutes=1))
    later = deliver_pulses(services, MONDAY + timedelta(days=3))
    assert again.claimed == later.claimed == 0
    assert len(posts(standin)) == 2


def test_catch_up_after_downtime_sends_only_the_current_period_once(plan, services, standin):
    deliver_pulses(services, MONDAY)
    # Down from Monday to the Wednesday two weeks later: the 11th's period was never sent.
    # Back at 13:00 New York, 10:00 Los Angeles: inside both owners' working hours.
    wednesday = datetime(2027, 1, 20, 18, tzinfo=UTC)
    report = deliver_pulses(services, wednesday)
    assert report.messages == 2 and report.sent == 4
    periods = sorted({r.period for r in pulses(plan)})
    assert periods == ["2027-01-04T09:00", "2027-01-18T09:00"]  # Monday 09:00, local to each
    assert deliver_pulses(services, wednesday + timedelta(hours=1)).claimed == 0
    assert len(posts(standin)) == 4


def test_owner_due_later_in_their_timezone_waits(plan, services, standin):
    # Monday 15:00 UTC is 10:00 in New York but 07:00 in Los Angeles: Bob still has last week's.
    with Session(plan) as session:
        session.add(
            PulseRequest(
                initiative_id=4,
                owner_id=2,
                period="2026-12-28T09:00",
                due_at=datetime(2026, 12, 28, 17, tzinfo=UTC),
                state=PulseState.SENT,
            )
        )
        session.commit()
    deliver_pulses(services, datetime(2027, 1, 4, 15, tzinfo=UTC))
    assert [c.params["channel"] for c in posts(standin)] == ["UALICE"]
    deliver_pulses(services, datetime(2027, 1, 4, 17, tzinfo=UTC))
    assert [c.params["channel"] for c in posts(standin)] == ["UALICE", "UBOB"]


def test_many_initiatives_split_only_past_block_kit_limits(engine, services, standin):
    with Session(engine) as session:
        factories.plan_settings(session)
        alice = factories.person(session, slack_id="UALICE", tz="America/New_York")
        team = factories.team(session, lead=alice)
        for n in range(messages.MAX_PULSES_PER_MESSAGE + 3):
            factories.initiative(
                session, owner=alice, team=team, title=f"Initiative {n} " + "x" * 180
            )
        session.commit()
    report = deliver_pulses(services, MONDAY)
    assert report.messages == 2 and report.sent == messages.MAX_PULSES_PER_MESSAGE + 3
    assert all(len(c.params["blocks"]) <= 50 for c in posts(standin))


def test_rate_limits_are_waited_out_and_the_fan_out_continues(plan, services, standin):
    standin.fail_next("chat.postMessage", status=429, retry_after=1, times=2)
    report = deliver_pulses(services, MONDAY)
    assert report.sent == 4 and report.failed == 0
    assert sorted(c.params["channel"] for c in posts(standin)) == ["UALICE", "UBOB"]
    assert len([c for c in standin.calls("chat.postMessage") if c.error == "ratelimited"]) == 2


def test_unreachable_owner_is_recorded_and_reported_once(plan, services, standin):
    with Session(plan) as session:
        gone = factories.person(session, slack_id="UGONE", name="Gone Gardner")  # deleted in Slack
        team = factories.team(session)
        factories.initiative(session, owner=gone, team=team, key="legacy", title="Legacy exit")
        session.commit()
    report = deliver_pulses(services, MONDAY)
    assert report.sent == 4 and report.failed == 1
    failed = [r for r in pulses(plan) if r.state == PulseState.FAILED]
    assert len(failed) == 1 and failed[0].error == "account_inactive"
    assert posts(standin, "UCOO") == []  # the fan-out records it; detection tells the admins
    run_detection(services, MONDAY)
    with Session(plan) as session:
        [alert] = session.exec(select(Alert)).all()
    assert alert.kind == "owner_unreachable" and alert.open_key
    [to_admin] = posts(standin, "UCOO")
    assert "Gone Gardner" in to_admin.params["text"]
    assert "Legacy exit" in str(to_admin.params["blocks"])

    deliver_pulses(services, MONDAY + timedelta(days=7))  # next period: still gone
    run_detection(services, MONDAY + timedelta(days=7))
    assert len(posts(standin, "UCOO")) == 1  # reported once, not every week
    assert len([r for r in pulses(plan) if r.state == PulseState.FAILED]) == 2


def _claim(engine, *, initiative_id: int, owner_id: int, claimed_at: datetime) -> PulseRequest:
    with Session(engine, expire_on_commit=False) as session:
        [row] = queries.claim_pulses(
            session=session,
            rows=[
                {
                    "initiative_id": initiative_id,
                    "owner_id": owner_id,
                    "period": "2027-01-11T09:00",
                    "due_at": datetime(2027, 1, 11, 14, tzinfo=UTC),
                    "next_due_at": datetime(2027, 1, 18, 14, tzinfo=UTC),
                    "claimed_at": claimed_at,
                }
            ],
        )
        session.commit()
        return row


def test_crash_after_post_is_not_resent(plan, services, standin):
    deliver_pulses(services, MONDAY)  # period one: Alice's DM exists
    crash_time = datetime(2027, 1, 11, 14, 1, tzinfo=UTC)
    # The crashed process claimed Alice's three pulses and posted them, but never marked them.
    rows = [_claim(plan, initiative_id=i, owner_id=1, claimed_at=crash_time) for i in (1, 2, 3)]
    posted = services.slack.post_message(
        channel="UALICE",
        text="Pulse check",
        blocks=None,
        tag=MessageTag(
            MessageEvents.PULSE_PROMPT, {"pulse_ids": ",".join(str(r.id) for r in rows)}
        ),
    )
    standin.reset_calls()

    within_lease = deliver_pulses(services, crash_time + CLAIM_LEASE - timedelta(seconds=1))
    assert within_lease.found_in_slack == 0  # could be a slow live sender: left alone
    assert posts(standin, "UALICE") == []

    report = deliver_pulses(services, crash_time + CLAIM_LEASE + timedelta(minutes=1))
    assert report.found_in_slack == 3
    assert posts(standin, "UALICE") == []  # found in Slack, not re-sent
    assert posts(standin) == []  # Bob's period two starts at 17:00 UTC, later
    mine = [r for r in pulses(plan) if r.id in {row.id for row in rows}]
    assert {(r.state, r.message_ts, r.sent_at) for r in mine} == {
        (PulseState.SENT, posted.ts, crash_time)
    }


def test_crash_before_post_is_sent_once(plan, services, standin):
    deliver_pulses(services, MONDAY)
    crash_time = datetime(2027, 1, 11, 14, 1, tzinfo=UTC)
    rows = [_claim(plan, initiative_id=i, owner_id=1, claimed_at=crash_time) for i in (1, 2)]
    standin.reset_calls()
    later = crash_time + CLAIM_LEASE + timedelta(minutes=1)
    report = deliver_pulses(services, later)
    assert report.found_in_slack == 0
    # The two recovered pulses go out together; her third initiative, never claimed, follows.
    recovered, fresh = posts(standin, "UALICE")
    assert tagged_pulse_ids(recovered.params["metadata"]["event_payload"]) == {r.id for r in rows}
    assert len(tagged_pulse_ids(fresh.params["metadata"]["event_payload"])) == 1
    deliver_pulses(services, later + CLAIM_LEASE * 2)
    assert len(posts(standin, "UALICE")) == 2
    assert {r.state for r in pulses(plan)} == {PulseState.SENT}


class CrashingGateway(SlackGateway):
    """Dies like a killed process right after its Nth successful post (nothing after it runs)."""

    def __init__(self, inner: SlackGateway, after: int) -> None:
        super().__init__(inner.client)
        self.left = after

    def post_message(self, **kwargs):  # type: ignore[no-untyped-def]
        posted = super().post_message(**kwargs)
        self.left -= 1
        if self.left == 0:
            raise SimulatedCrash
        return posted


class SimulatedCrash(BaseException):
    pass


def test_crash_mid_fan_out_loses_nothing_and_duplicates_nothing(engine, services, standin):
    from standin import User

    with Session(engine) as session:
        factories.plan_settings(session)
        lead = factories.person(session, slack_id="UCIO", tz="Asia/Tokyo")
        team = factories.team(session, lead=lead)
        for n in range(30):
            uid = f"UOWNER{n:03d}"
            standin.workspace.add_user(User(id=uid, name=f"owner{n}", tz="America/New_York"))
            owner = factories.person(session, slack_id=uid, tz="America/New_York")
            factories.initiative(session, owner=owner, team=team)
        session.commit()
    delivery_owners = 30
    # Period one establishes every DM; period two crashes after 12 posts.
    deliver_pulses(services, MONDAY)
    crashing = Services(services.settings, services.engine, CrashingGateway(services.slack, 12))
    second = datetime(2027, 1, 11, 15, tzinfo=UTC)
    with pytest.raises(SimulatedCrash):
        deliver_pulses(crashing, second)
    # A tick within the lease sends what nobody claimed (nothing here: the batch was claimed).
    deliver_pulses(services, second + timedelta(minutes=1))
    deliver_pulses(services, second + CLAIM_LEASE + timedelta(minutes=1))
    by_owner: dict[str, int] = {}
    for call in posts(standin):
        by_owner[call.params["channel"]] = by_owner.get(call.params["channel"], 0) + 1
    assert by_owner == {f"UOWNER{n:03d}": 2 for n in range(delivery_owners)}
    assert {r.state for r in pulses(engine)} == {PulseState.SENT}


def test_prompt_message_shows_recorded_answers_without_buttons(plan, services, standin):
    deliver_pulses(services, MONDAY)
    rows = [r for r in pulses(plan) if r.owner_id == 1]
    answered_at = MONDAY + timedelta(hours=1)
    with Session(plan) as session:
        session.add(
            PulseAnswer(
                pulse_request_id=rows[1].id,
                status="at_risk",
                confidence=3,
                answered_by_id=1,
                answered_at=answered_at,
            )
        )
        row = session.get(PulseRequest, rows[1].id)
        row.state, row.answered_at = PulseState.ANSWERED, answered_at
        session.commit()
        text, blocks = messages.prompt_message(session, rows, MONDAY + timedelta(hours=2))
    action_blocks = [b["block_id"] for b in blocks if b["type"] == "actions"]
    assert action_blocks == [
        f"{PulseIds.ACTIONS_BLOCK}:{rows[0].id}",
        f"{PulseIds.ACTIONS_BLOCK}:{rows[2].id}",
    ]
    answer = [b for b in blocks if b["type"] == "context"]
    assert len(answer) == 1
    assert (
        "At risk" in answer[0]["elements"][0]["text"] and "3/5" in answer[0]["elements"][0]["text"]
    )
    assert "<@UALICE>" in answer[0]["elements"][0]["text"]
    assert text.startswith("Pulse check")
    # After the period ends, unanswered sections lose their buttons too.
    with Session(plan) as session:
        _, closed = messages.prompt_message(session, rows, datetime(2027, 1, 12, tzinfo=UTC))
    assert [b for b in closed if b["type"] == "actions"] == []
    assert "No answer was recorded" in str(closed)


def test_delivery_module_constants_are_sane():
    assert delivery.OWNERS_PER_BATCH >= 1
    assert 1 + 3 * messages.MAX_PULSES_PER_MESSAGE <= 50


def test_stale_claim_of_an_ended_period_is_closed_not_sent(plan, services, standin):
    deliver_pulses(services, MONDAY)
    crash_time = datetime(2027, 1, 11, 14, 1, tzinfo=UTC)
    [row] = [_claim(plan, initiative_id=1, owner_id=1, claimed_at=crash_time)]
    standin.reset_calls()
    # Back only after the period ended: that week's prompt is history, not something to send.
    report = deliver_pulses(services, datetime(2027, 1, 18, 14, 30, tzinfo=UTC))
    assert report.expired == 1
    [closed] = [r for r in pulses(plan) if r.id == row.id]
    assert closed.state == PulseState.FAILED and "period ended" in closed.error
    to_alice = posts(standin, "UALICE")
    assert len(to_alice) == 1  # only the new period's prompt
    assert row.id not in tagged_pulse_ids(to_alice[0].params["metadata"]["event_payload"])


def _first_ever_claim(engine, crash_time: datetime) -> PulseRequest:
    """A claim on Alice's very first prompt: no earlier post recorded her DM's ID."""
    with Session(engine, expire_on_commit=False) as session:
        [row] = queries.claim_pulses(
            session=session,
            rows=[
                {
                    "initiative_id": 1,
                    "owner_id": 1,
                    "period": "2027-01-04T09:00",
                    "due_at": datetime(2027, 1, 4, 14, tzinfo=UTC),
                    "next_due_at": datetime(2027, 1, 11, 14, tzinfo=UTC),
                    "claimed_at": crash_time,
                }
            ],
        )
        session.commit()
        return row


def test_first_ever_prompt_posted_before_a_crash_is_found_through_the_opened_dm(
    plan, services, standin
):
    crash_time = datetime(2027, 1, 4, 14, 1, tzinfo=UTC)
    row = _first_ever_claim(plan, crash_time)
    posted = services.slack.post_message(
        channel="UALICE",
        text="Pulse check",
        blocks=None,
        tag=MessageTag(MessageEvents.PULSE_PROMPT, {"pulse_ids": str(row.id)}),
    )
    standin.reset_calls()
    report = deliver_pulses(services, crash_time + CLAIM_LEASE + timedelta(minutes=1))
    assert report.found_in_slack == 1
    [opened] = standin.calls("conversations.open")
    assert opened.params["users"] == "UALICE"
    assert not any(
        row.id in tagged_pulse_ids(c.params["metadata"]["event_payload"])
        for c in posts(standin, "UALICE")
    )
    [mine] = [r for r in pulses(plan) if r.id == row.id]
    assert (mine.state, mine.channel_id, mine.message_ts) == (
        PulseState.SENT,
        posted.channel,
        posted.ts,
    )


def test_first_ever_prompt_lost_in_a_crash_is_sent_once(plan, services, standin):
    crash_time = datetime(2027, 1, 4, 14, 1, tzinfo=UTC)
    row = _first_ever_claim(plan, crash_time)
    later = crash_time + CLAIM_LEASE + timedelta(minutes=1)
    deliver_pulses(services, later)
    deliver_pulses(services, later + CLAIM_LEASE * 2)
    carrying = [
        c
        for c in posts(standin, "UALICE")
        if row.id in tagged_pulse_ids(c.params["metadata"]["event_payload"])
    ]
    assert len(carrying) == 1
    assert [r.state for r in pulses(plan) if r.id == row.id] == [PulseState.SENT]


def test_stale_claim_that_cannot_be_checked_is_never_posted_blindly(plan, services, standin):
    # Slack will not show the DM's history: without knowing, nothing is re-sent.
    crash_time = datetime(2027, 1, 4, 14, 1, tzinfo=UTC)
    row = _first_ever_claim(plan, crash_time)
    standin.fail_next("conversations.history", status=200, error="channel_not_found")
    report = deliver_pulses(services, crash_time + CLAIM_LEASE + timedelta(minutes=1))
    assert report.errors and report.found_in_slack == 0
    sent_ids = set()
    for call in posts(standin, "UALICE"):
        sent_ids |= tagged_pulse_ids(call.params["metadata"]["event_payload"])
    assert row.id not in sent_ids  # not re-sent without knowing
    assert [r.state for r in pulses(plan) if r.id == row.id] == [PulseState.CLAIMED]


def test_a_long_fan_out_stamps_claims_when_they_happen(plan, services, standin, monkeypatch):
    # Each owner's batch takes twelve minutes (rate limits): the last claim is made well after
    # `now`, and must not look stale to a replica ticking at now + lease.
    ticks = iter(range(0, 10_000, 720))

    def clock() -> datetime:  # twelve minutes pass at every reading
        return MONDAY + timedelta(seconds=next(ticks))

    monkeypatch.setattr(delivery, "OWNERS_PER_BATCH", 1)
    deliver_pulses(dataclasses.replace(services, clock=clock), MONDAY)
    stamps = sorted({(r.owner_id, r.claimed_at, r.sent_at) for r in pulses(plan)})
    (_, alice_claim, _), (_, bob_claim, bob_sent) = stamps
    assert alice_claim < bob_claim and bob_claim - MONDAY > CLAIM_LEASE
    assert bob_sent > bob_claim
    with Session(plan) as session:
        stale = queries.stale_claims(session=session, claimed_before=MONDAY + timedelta(minutes=11))
    assert stale == []


def test_a_timezone_change_mid_week_does_not_prompt_again(plan, services, standin):
    deliver_pulses(services, MONDAY)  # Alice prompted at 09:00 New York
    with Session(plan) as session:
        alice = session.exec(select(Person).where(Person.slack_id == "UALICE")).one()
        alice.tz = "Asia/Tokyo"  # the directory sync learns she moved
        session.commit()
    # Tuesday in Tokyo; Monday 09:00 Tokyo was a different UTC instant, but the same week.
    assert deliver_pulses(services, MONDAY + timedelta(hours=20)).claimed == 0
    assert len(posts(standin, "UALICE")) == 1
    # The next Monday 09:00 in Tokyo starts her next period.
    following = datetime(2027, 1, 11, 0, 0, tzinfo=UTC)
    assert deliver_pulses(services, following).claimed == 3


def test_a_rejected_token_stops_the_fan_out_and_frees_its_claims(plan, services, standin):
    from bot.slack.errors import InvalidAuth

    standin.fail_next("chat.postMessage", status=200, error="invalid_auth")
    with pytest.raises(InvalidAuth):
        deliver_pulses(services, MONDAY)
    assert pulses(plan) == []  # nothing was posted, so nothing stays claimed
    restarted = dataclasses.replace(services, slack=SlackGateway.from_settings(services.settings))
    assert deliver_pulses(restarted, MONDAY + timedelta(minutes=1)).sent == 4
