"""`planpulse demo` end to end, in real time: stand-in, real server, a tick, and Slack's side.

No freezegun here: the server and the stand-in read the real clock (signatures, trigger_ids). The
assertions are on what the bot wrote and what Slack saw, not on the wording of the account.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from bot.entry.cli import main
from bot.entry.demo import fresh_sqlite, import_example
from bot.entry.demo_live import run_live
from storage.db import make_engine
from storage.models import Initiative, Person, PulseAnswer, PulseRequest, PulseState

# The example's initiatives and their owners (bot/planfile/northwind.yaml.j2).
OWNERS = {
    "portal-beta": "Alice Chen",
    "portal-enablement": "Tom Reyes",
    "erp-integration": "Ben Okafor",
    "finance-data-cleansing": "Sofia Marquez",
    "cloud-rightsizing": "Kenji Sato",
    "delivery-guardrails": "Hannah Berg",
}


def _pulses(url: str) -> dict[str, tuple[PulseRequest, Person, list[PulseAnswer]]]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            found = {}
            for pulse in session.exec(select(PulseRequest)).all():
                initiative = session.get(Initiative, pulse.initiative_id)
                owner = session.get(Person, pulse.owner_id)
                answers = session.exec(
                    select(PulseAnswer).where(PulseAnswer.pulse_request_id == pulse.id)
                ).all()
                found[initiative.key] = (pulse, owner, list(answers))
            return found
    finally:
        engine.dispose()


def test_demo_delivers_pulses_records_an_answer_and_exits_0(tmp_path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    started = time.monotonic()
    assert main(["demo", "--database", url]) == 0
    assert main(["demo", "--database", url]) == 0  # a second run starts from a fresh file
    took = (time.monotonic() - started) / 2
    out, err = capsys.readouterr()
    assert took < 15, f"one demo run took {took:.1f}s"
    assert "Traceback" not in out + err

    pulses = _pulses(url)
    assert {key: owner.name for key, (_, owner, _) in pulses.items()} == OWNERS
    for pulse, owner, _ in pulses.values():  # each DM really posted: the stand-in gave it a ts
        assert pulse.message_ts and pulse.channel_id and owner.slack_id
        assert pulse.state in (PulseState.SENT, PulseState.ANSWERED)
    answered = {key: answers for key, (_, _, answers) in pulses.items() if answers}
    [answer] = answered.pop("portal-beta")
    assert answered == {}
    assert answer.status == "at_risk"
    assert answer.answered_by_id == pulses["portal-beta"][1].id
    assert pulses["portal-beta"][0].state == PulseState.ANSWERED


def test_live_run_reports_what_the_stand_in_saw(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    engine = fresh_sqlite(url)
    now = datetime.now(UTC)
    import_example(engine, now.date(), now=now)
    try:
        live = run_live(engine, url, now)
    finally:
        engine.dispose()

    prompts = [pulse for pulse in live["delivered"] if not pulse["reminder"]]
    reminders = [pulse for pulse in live["delivered"] if pulse["reminder"]]
    assert sorted(pulse["name"] for pulse in prompts) == sorted(OWNERS.values())
    assert live["tick_failed"] == {}
    owner = live["owner"]
    assert (owner.name, owner.initiative_key) == ("Alice Chen", "portal-beta")
    # The plan was imported just now: her first pulse is the next Monday 09:00 in her timezone,
    # and every owner's DM came at their own first fire, never for the week already begun.
    assert now < owner.due <= now + timedelta(days=7)
    assert owner.due.astimezone(owner.tz).strftime("%a %H:%M") == "Mon 09:00"
    assert all(now < pulse["local"] <= now + timedelta(days=7) for pulse in live["delivered"])
    answer = live["answer"]
    assert answer["status"] == 200 and answer["same_message"]
    assert answer["recorded"]["status"] == "at_risk" and answer["recorded"]["by"] == "Alice Chen"
    assert answer["before"] != answer["after"]
    for asked in (live["kpi"], live["plan"]):
        assert asked["status"] == 200 and asked["lines"]
    calls = dict(live["calls"])
    # One DM each, and a reminder to those still silent a working day later when the ticks of
    # the week get that far; the first tick also asks each provider team it can reach for what
    # others need from it, once; besides them, only the alerts the ticks raised.
    requests = live["requests"]
    assert requests and len({r["text"] for r in requests}) == len(requests)
    alerts = live["alerts"]
    alert_posts = sum(alerts.get(k, 0) for k in ("posted", "summaries", "told", "thread_lines"))
    assert alerts["posted"] > 0
    # The ticks posted a missed-milestone and an unacknowledged-dependency alert to channels.
    posted = [a["text"] for a in live["posted_alerts"]]
    assert any(t.startswith("Missed milestone") for t in posted)
    assert any("has not acknowledged" in t for t in posted)
    # A provider team member acknowledged a request: recorded, and the request redrawn.
    acknowledged = live["acknowledged"]
    assert acknowledged["status"] == 200 and acknowledged["state"] == "acknowledged"
    assert any("Acknowledged by" in line for line in acknowledged["after"])
    clicked = acknowledged["calls"]
    assert clicked["chat.update"] >= 1 and clicked["chat.postMessage"] >= 1  # request, owner DM
    # Each missed milestone's owner is asked once to frame its decision poll.
    decisions = live["decisions"]
    assert decisions.get("asked", 0) > 0
    decision_posts = sum(
        decisions.get(k, 0) for k in ("asked", "joined", "polls", "reminded", "outcomes")
    )
    assert calls["chat.postMessage"] == (
        len(OWNERS)
        + len(reminders)
        + alert_posts
        + decision_posts
        + len(requests)
        + clicked["chat.postMessage"]
        + answer["posts"]
    )
    assert all(
        r["local"] - timedelta(hours=24)
        >= next(p["local"] for p in prompts if p["name"] == r["name"])
        for r in reminders
    )
    assert calls["chat.update"] == (
        1
        + alerts.get("updated", 0)
        + alerts.get("resolved", 0)
        + clicked["chat.update"]
        + decisions["redrawn"]
    )
    assert calls["users.list"] == 1  # the directory is listed once, not again by the tick
    # Server and listener threads are stopped; only the stand-in's daemon threads may linger.
    assert not [t for t in threading.enumerate() if t.name.startswith("demo-listener")]
