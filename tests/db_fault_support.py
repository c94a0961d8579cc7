"""Plans and clicks for the database-fault tests: owners with a posted pulse prompt, leaders, apologies.

The prompts are posted through the stand-in as delivery leaves them (tests/test_pulse_answer_slack.py),
so the buttons clicked are the bot's own; `apologies` is everything the bot said was not done.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlmodel import Session, select

from bot.pulses.messages import prompt_message
from bot.services import Services
from standin import User
from storage.db import session_scope
from storage.models import PulseAnswer, PulseRequest
from templates.ids import PulseIds
from tests import factories
from tests.test_pulse_answer_core import make_pulse

STATUSES = (PulseIds.ON_TRACK, PulseIds.AT_RISK, PulseIds.OFF_TRACK)
STORED = {
    PulseIds.ON_TRACK: "on_track",
    PulseIds.AT_RISK: "at_risk",
    PulseIds.OFF_TRACK: "off_track",
}


def owners_with_prompts(
    services: Services, standin: Any, count: int, *, prefix: str = "UANS"
) -> dict[str, int]:
    """`count` owners, each with one initiative whose prompt DM is posted: {slack id: pulse id}."""
    now = datetime.now(UTC)
    made: dict[str, PulseRequest] = {}
    with session_scope(services.engine) as session:
        factories.plan_settings(session)
        team = factories.team(session)
        objective = factories.objective(session)
        for n in range(count):
            slack_id = f"{prefix}{n:03d}"
            standin.workspace.add_user(User(id=slack_id, name=f"owner{n}", tz="America/New_York"))
            owner = factories.person(session, slack_id=slack_id, tz="America/New_York")
            initiative = factories.initiative(
                session, owner=owner, team=team, objective=objective, title=f"Initiative {n}"
            )
            made[slack_id] = make_pulse(
                session,
                initiative=initiative,
                due_at=now - timedelta(hours=2),
                next_due_at=now + timedelta(days=6),
            )
        drawn = {
            slack_id: prompt_message(session, [pulse], now) for slack_id, pulse in made.items()
        }
    for slack_id, (text, blocks) in drawn.items():
        posted = services.slack.post_message(channel=slack_id, text=text, blocks=blocks)
        with session_scope(services.engine) as session:
            row = session.get(PulseRequest, made[slack_id].id)
            assert row is not None
            row.channel_id, row.message_ts = posted.channel, posted.ts
            session.add(row)
    standin.reset_calls()
    return {slack_id: int(pulse.id or 0) for slack_id, pulse in made.items()}


def status_click(bot: Any, action_id: str, pulse_id: int, *, user_id: str) -> httpx.Response:
    """A click on one of the prompt's status buttons, in the owner's DM."""
    payload = bot.block_action_payload(
        action_id,
        str(pulse_id),
        user_id=user_id,
        channel_id=user_id,
        block_id=f"{PulseIds.ACTIONS_BLOCK}:{pulse_id}",
    )
    return bot.action(payload)


def answers_of(services: Services, pulse_id: int) -> list[str]:
    with Session(services.engine) as session:
        rows = session.exec(
            select(PulseAnswer.status)
            .where(PulseAnswer.pulse_request_id == pulse_id)
            .order_by(PulseAnswer.id)  # type: ignore[arg-type]
        )
        return [str(status) for status in rows]


def apologies(standin: Any) -> list[tuple[str, str]]:
    """(user, text) of everything the bot told a person went wrong or was not saved."""
    told = []
    for call in standin.calls():
        if call.method not in ("response_url", "chat.postEphemeral", "chat.postMessage"):
            continue
        text = str(call.params.get("text") or "")
        if text.startswith("Sorry"):
            told.append((str(call.params.get("user") or call.params.get("channel")), text))
    return told
