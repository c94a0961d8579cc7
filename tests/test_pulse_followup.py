"""Reminders and escalation: timing, working hours, once per pulse, stopped by an answer."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from bot.pulses.delivery import deliver_pulses
from bot.pulses.followup import send_follow_ups
from bot.services import Services
from bot.slack.gateway import SlackGateway
from storage.db import make_engine
from storage.models import Initiative, PulseRequest, PulseState
from tests import factories

SENT = datetime(2027, 1, 4, 14, tzinfo=UTC)  # Monday 09:00 in New York


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def posts(standin, channel: str | None = None):
    return [
        c
        for c in standin.calls("chat.postMessage")
        if c.ok and (channel is None or c.params["channel"] == channel)
    ]


def rows(engine) -> list[PulseRequest]:
    with Session(engine) as session:
        return list(session.exec(select(PulseRequest).order_by(PulseRequest.id)))


def answer(engine, pulse_id: int, at: datetime) -> None:
    # What the answering side does to the row (the answer itself lives in pulse_answer).
    with Session(engine) as session:
        row = session.get(PulseRequest, pulse_id)
        row.state, row.answered_at = PulseState.ANSWERED, at
        session.commit()


@pytest.fixture
def services(services):
    """A clock that stands still: stamps are the explicit `now`, however long a fan-out takes.

    A fan-out stamps its claims and sends `now` plus the time it has taken so far; on a loaded
    machine that can pass a second, and the reminder boundaries below would move with it.
    """
    return dataclasses.replace(services, clock=lambda: SENT)


@pytest.fixture
def sent(engine, services, standin):
    """Alice (New York) was prompted for two initiatives; Chiyo (Tokyo) leads the team."""
    with Session(engine) as session:
        factories.plan_settings(session)
        alice = factories.person(session, slack_id="UALICE", name="Alice", tz="America/New_York")
        chiyo = factories.person(session, slack_id="UCIO", name="Chiyo", tz="Asia/Tokyo")
        team = factories.team(session, lead=chiyo)
        factories.initiative(session, owner=alice, team=team, key="portal", title="Portal beta")
        factories.initiative(session, owner=alice, team=team, key="sso", title="Single sign-on")
        session.commit()
    deliver_pulses(services, SENT)
    standin.reset_calls()
    return engine


def test_reminder_after_24_hours_in_the_prompt_thread(sent, services, standin):
    assert send_follow_ups(services, SENT + timedelta(hours=23, minutes=59)).reminders == 0
    report = send_follow_ups(services, SENT + timedelta(hours=24))
    assert (report.reminders, report.reminded) == (1, 2)  # one reply naming both initiatives
    [reminder] = posts(standin)
    prompt = rows(sent)[0]
    assert reminder.params["channel"] == prompt.channel_id
    assert reminder.params["thread_ts"] == prompt.message_ts
    assert "Portal beta" in str(reminder.params["blocks"]) and "Single sign-on" in str(
        reminder.params["blocks"]
    )
    assert {r.reminded_at for r in rows(sent)} == {SENT + timedelta(hours=24)}
    assert send_follow_ups(services, SENT + timedelta(hours=25)).reminders == 0  # once


def test_reminder_waits_for_the_owners_working_hours(sent, services, standin):
    with Session(sent) as session:
        for row in session.exec(select(PulseRequest)):
            row.sent_at = utc(2027, 1, 1, 22, 30)  # Friday 17:30 in New York
        session.commit()
    for saturday_hour in range(12, 24):
        assert send_follow_ups(services, utc(2027, 1, 2, saturday_hour)).reminders == 0
    assert send_follow_ups(services, utc(2027, 1, 4, 13, 59)).reminders == 0  # Monday 08:59
    assert send_follow_ups(services, utc(2027, 1, 4, 14)).reminders == 1  # Monday 09:00


def test_escalation_to_the_lead_in_their_working_hours_and_initiative_goes_dark(
    sent, services, standin
):
    send_follow_ups(services, SENT + timedelta(hours=24))  # reminder, Tuesday 09:00 New York
    standin.reset_calls()
    reminded = SENT + timedelta(hours=24)
    # 24 h later it is Wednesday 23:00 in Tokyo: Chiyo is not disturbed at night.
    assert send_follow_ups(services, reminded + timedelta(hours=24)).escalations == 0
    assert posts(standin) == []
    thursday_9_tokyo = utc(2027, 1, 7, 0)
    report = send_follow_ups(services, thursday_9_tokyo)
    assert (report.escalations, report.escalated) == (1, 2)
    [dm] = posts(standin)
    assert dm.params["channel"] == "UCIO"
    assert "Portal beta" in str(dm.params["blocks"]) and "<@UALICE>" in str(dm.params["blocks"])
    with Session(sent) as session:
        initiatives = session.exec(select(Initiative)).all()
    assert {i.dark_since for i in initiatives} == {thursday_9_tokyo}
    assert {r.escalated_at for r in rows(sent)} == {thursday_9_tokyo}
    assert send_follow_ups(services, thursday_9_tokyo + timedelta(hours=1)).escalations == 0


def test_an_answer_stops_what_has_not_happened_yet(sent, services, standin):
    first, second = rows(sent)
    answer(sent, first.id, SENT + timedelta(hours=3))
    report = send_follow_ups(services, SENT + timedelta(hours=24))
    assert report.reminded == 1
    [reminder] = posts(standin)
    assert "Single sign-on" in str(reminder.params["blocks"])
    assert "Portal beta" not in str(reminder.params["blocks"])
    answer(sent, second.id, SENT + timedelta(hours=30))
    assert send_follow_ups(services, utc(2027, 1, 7, 1)).escalations == 0
    with Session(sent) as session:
        assert {i.dark_since for i in session.exec(select(Initiative))} == {None}


def test_nothing_once_the_next_prompt_is_due(engine, services, standin):
    with Session(engine) as session:
        factories.plan_settings(session, default_pulse="0 9 * * *")  # daily
        alice = factories.person(session, slack_id="UALICE", tz="America/New_York")
        factories.initiative(session, owner=alice, team=factories.team(session, lead=alice))
        session.commit()
    deliver_pulses(services, SENT)
    standin.reset_calls()
    # The reminder would be due exactly when the next day's prompt is: it never comes.
    assert send_follow_ups(services, SENT + timedelta(hours=24)).reminders == 0
    assert send_follow_ups(services, SENT + timedelta(hours=30)).reminders == 0
    assert posts(standin) == []


def test_escalation_without_a_lead_still_marks_the_initiative_dark(engine, services, standin):
    with Session(engine) as session:
        factories.plan_settings(session)
        alice = factories.person(session, slack_id="UALICE", tz="America/New_York")
        factories.initiative(session, owner=alice, team=factories.team(session))
        session.commit()
    deliver_pulses(services, SENT)
    send_follow_ups(services, SENT + timedelta(hours=24))
    report = send_follow_ups(services, SENT + timedelta(hours=48))
    assert report.escalated == 1 and report.escalations == 0
    with Session(engine) as session:
        assert session.exec(select(Initiative)).one().dark_since == SENT + timedelta(hours=48)


def test_a_refused_reminder_is_retried_once_restarted_with_a_good_token(sent, services, standin):
    standin.fail_next("chat.postMessage", status=200, error="invalid_auth")
    assert send_follow_ups(services, SENT + timedelta(hours=24)).reminders == 0
    assert {r.reminded_at for r in rows(sent)} == {None}
    # The refusal sticks to this process's gateway (tests/test_slack_faults.py); a restart
    # starts with a fresh one.
    restarted = dataclasses.replace(services, slack=SlackGateway.from_settings(services.settings))
    assert send_follow_ups(restarted, SENT + timedelta(hours=25)).reminders == 1


def test_a_reminder_to_a_gone_user_is_not_retried_every_tick(sent, services, standin):
    standin.fail_next("chat.postMessage", status=200, error="channel_not_found")
    assert send_follow_ups(services, SENT + timedelta(hours=24)).reminders == 0
    assert send_follow_ups(services, SENT + timedelta(hours=25)).reminders == 0
    assert len(standin.calls("chat.postMessage")) == 1


def test_no_reminder_or_escalation_while_the_owner_is_away(sent, services, standin):
    from datetime import date

    from storage.models import Person

    with Session(sent) as session:
        alice = session.exec(select(Person).where(Person.slack_id == "UALICE")).one()
        alice.away_from, alice.away_until = date(2027, 1, 5), date(2027, 1, 6)
        session.commit()
    assert send_follow_ups(services, SENT + timedelta(hours=24)).reminders == 0  # Tuesday
    thursday = utc(2027, 1, 7, 14)
    assert send_follow_ups(services, thursday).reminders == 1  # back: reminded, not escalated
    assert send_follow_ups(services, thursday + timedelta(hours=1)).escalations == 0


def test_racing_ticks_send_one_reminder(sent, settings, standin):
    workers = 4
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def run() -> None:
        engine = make_engine(settings.database_url)
        services = Services(settings, engine, SlackGateway.from_settings(settings))
        try:
            barrier.wait()
            send_follow_ups(services, SENT + timedelta(hours=24))
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(posts(standin)) == 1
