"""Every alert message, built from a plan at its most hostile (long, markup-laden text, many reasons), is valid Block Kit and pings nobody."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session

from bot.alerts import messages
from bot.alerts.conditions import find_problems
from standin.validation import check_blocks
from storage.models import (
    ChannelStatus,
    DependencyState,
    PulseAnswer,
    PulseRequest,
    PulseState,
)
from templates.ids import AlertKinds
from tests import factories

NOW = datetime(2027, 2, 10, 15, tzinfo=UTC)
NASTY = "<!channel> <@U123> R&D *launch* <https://evil.example|click> " + "&x<" * 700
# The control sequences the bot itself builds: mentions, dates, channel links, permalinks.
ALLOWED = re.compile(
    r"<(@U[A-Z0-9]+|!date\^\d+\^\{date_short\}\|[0-9T:+-]+|#C[A-Z0-9]+|https://x\.slack\.com/a\|[^>]*)>"
)


def _mrkdwn(node: Any) -> list[str]:
    """Every mrkdwn text of a payload (plain_text is never parsed, so it cannot ping)."""
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn":
            return [str(node.get("text", ""))]
        return [t for value in node.values() for t in _mrkdwn(value)]
    if isinstance(node, list):
        return [t for item in node for t in _mrkdwn(item)]
    return []


def _hostile_plan(session: Session) -> None:
    factories.plan_settings(session, timezone="America/New_York", alerts_channel="CGENERAL")
    alice = factories.person(session, slack_id="UALICE", name=NASTY)
    cio = factories.person(session, slack_id="UCIO", name=NASTY)
    factories.person(session, slack_id="UCOO", is_admin=True)
    gone = factories.person(session, slack_id="UGONE", name=NASTY, active=False)
    it = factories.team(session, name=NASTY, channel_id="CDELIVERY", lead=cio)
    goal = factories.objective(session, title=NASTY, owner=alice)
    kpi = factories.kpi(session, objective=goal, name=NASTY, unit=NASTY)
    factories.reading(session, kpi=kpi, value=-5, as_of=date(2027, 2, 1))
    portal = factories.initiative(session, owner=alice, team=it, title=NASTY, kpis=[kpi])
    factories.initiative(session, owner=gone, team=it, title=NASTY)
    late = factories.milestone(session, initiative=portal, due=date(2027, 1, 2), title=NASTY)
    factories.milestone(
        session, initiative=portal, due=date(2027, 3, 1), title=NASTY, expected_due=date(2027, 4, 1)
    )
    for n in range(30):  # many reasons for one milestone at risk
        factories.dependency(
            session,
            initiative=portal,
            provider=it,
            needed_by=date(2027, 2, 1),
            need=NASTY,
            milestone=late if n == 0 else None,
            state=DependencyState.BLOCKED,
            note=NASTY,
            alternative_date=date(2027, 3, 1),
        )
    factories.dependency(
        session,
        initiative=portal,
        provider=it,
        needed_by=date(2027, 5, 1),
        need=NASTY,
        ack_due_at=NOW - timedelta(days=1),
    )
    quiet = factories.initiative(session, owner=cio, team=it, title=NASTY)
    for initiative, states in ((portal, ["answered"]), (quiet, ["sent", "sent"])):
        for week, state in enumerate(states):
            due = NOW - timedelta(days=21 - 7 * week)
            pulse = PulseRequest(
                initiative_id=initiative.id,
                owner_id=initiative.owner_id,
                period=due.isoformat(),
                due_at=due,
                next_due_at=due + timedelta(days=7),
                state=state,
            )
            session.add(pulse)
            session.flush()
            if state == PulseState.ANSWERED:
                answer = PulseAnswer(pulse_request_id=pulse.id, status="on_track", answered_at=due)
                session.add(answer)
    session.add(ChannelStatus(ref="#" + "y" * 80, name=NASTY, problem="not_member", checked_at=NOW))
    session.commit()


@pytest.fixture
def findings(services):
    with Session(services.engine) as session:
        _hostile_plan(session)
        found = find_problems(session, NOW)
    return found


def test_the_hostile_plan_raises_every_kind(findings) -> None:
    assert {f.kind for f in findings} == set(AlertKinds)


@pytest.mark.parametrize("resolved", [False, True])
def test_every_alert_message_is_valid_and_pings_nobody(services, findings, resolved) -> None:
    for finding in findings:
        facts = {**finding.facts, "request_channel": None}  # no permalink call: no message
        rendered = [
            messages.alert_message(services, finding.kind, facts, resolved=resolved),
            messages.direct_message(services, finding.kind, facts, link="https://x.slack.com/a"),
            messages.summary_message([], plan_command="/plan"),
        ]
        for message in rendered:
            assert message.text and len(message.text) <= 4000
            check_blocks(message.blocks)
            for text in _mrkdwn(message.blocks):
                assert len(text) <= 3000
                for token in re.findall(r"<[^>]*>", text):
                    assert ALLOWED.fullmatch(token), (finding.kind, token)
                assert "<@U123>" not in text  # the plan's text mentions U123; the bot never does


def test_a_summary_of_many_alerts_stays_within_the_limits(services, findings) -> None:
    from storage.models import Alert

    alerts = [
        Alert(kind=f.kind, subject=f.subject, facts=f.facts, opened_at=NOW, state="open")
        for f in findings * 10
    ]
    rendered = messages.summary_message(alerts, plan_command="/plan")
    check_blocks(rendered.blocks)
    assert "more" in json.dumps(rendered.blocks)


def test_thread_lines_name_what_changed(findings) -> None:
    missed = next(f for f in findings if f.kind == AlertKinds.MILESTONE_MISSED)
    moved = {**missed.facts, "due": "2027-01-09"}
    line = messages.change_line(missed.kind, missed.facts, moved)
    assert "now due" in line and "<!date^" in line
    assert "done" in messages.resolution_line(missed.kind, missed.facts, {"status": "done"})
