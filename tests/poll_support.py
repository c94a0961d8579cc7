"""Polls for voting tests: a plan with leaders, a poll inserted and posted, clicks on its buttons.

Opening a poll is another area's work; these tests insert the row as it stands once opened
(facts as templates/blocks/decisions/poll.json.j2 reads them) and post its parent message
through the stand-in, so the vote buttons clicked are the ones the bot drew.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from bot.decisions.poll_message import draw_poll
from bot.services import Services
from storage.db import session_scope
from storage.decisions import mark_poll_shown
from storage.models import DecisionPoll, Milestone, PollState, Vote
from templates.ids import PollIds
from tests import factories as f
from tests.query_fixtures import build_portal_plan

DECISIONS = "CDECISIONS"
PROPOSED = date(2027, 2, 27)


def voting_plan(session: Session, *, title: str = "Customer portal beta") -> dict[str, Any]:
    """The portal plan (UCIO a leader) with two more leaders, UCFO and UCOO."""
    plan = build_portal_plan(session, title=title)
    plan["cfo"] = f.person(session, slack_id="UCFO", name="Cara Ford", is_leader=True)
    plan["coo"] = f.person(session, slack_id="UCOO", name="Cole Ode", is_leader=True)
    plan["launch"] = session.exec(select(Milestone).where(Milestone.key == "beta-launch")).one()
    plan["ready"] = session.exec(select(Milestone).where(Milestone.key == "beta-ready")).one()
    session.commit()
    return plan


def facts_of(
    milestone: Milestone, *, initiative_title: str, owner: str, milestone_title: str | None = None
) -> dict[str, Any]:
    return {
        "milestone_id": milestone.id,
        "milestone_key": milestone.key,
        "milestone_title": milestone_title or milestone.title,
        "initiative_key": "portal-beta",
        "initiative_title": initiative_title,
        "owner": owner,
        "original_due": milestone.original_due.isoformat(),
        "due": milestone.due.isoformat(),
        "slip_days": 3,
        "cause": "missed",
        "dependency": None,
        "later_milestones": [],
        "waiting_dependencies": [],
        "kpis": [],
    }


def open_poll(
    services: Services,
    milestone: Milestone,
    *,
    anonymous: bool = False,
    initiative_title: str = "Customer portal beta",
    milestone_title: str | None = None,
    now: datetime | None = None,
    post: bool = True,
) -> int:
    """Insert an open poll about `milestone` and post its parent message to CDECISIONS."""
    now = now or datetime.now(UTC)
    with session_scope(services.engine) as session:
        poll = DecisionPoll(
            milestone_id=milestone.id,
            open_key=f"milestone:{milestone.id}",
            state=PollState.OPEN,
            opened_at=now,
            original_deadline=now + timedelta(hours=48),
            deadline=now + timedelta(hours=48),
            anonymous=anonymous,
            proposed_due=PROPOSED,
            facts=facts_of(
                milestone,
                initiative_title=initiative_title,
                milestone_title=milestone_title,
                owner="UALICE",
            ),
        )
        session.add(poll)
        session.flush()
        assert poll.id is not None
        poll_id = poll.id
    if post:
        post_poll(services, poll_id)
    return poll_id


def post_poll(services: Services, poll_id: int) -> None:
    with session_scope(services.engine) as session:
        drawn = draw_poll(session, poll_id)
        assert drawn is not None
        _, message = drawn
    posted = services.slack.post_message(
        channel=DECISIONS, text=message.text, blocks=message.blocks
    )
    with session_scope(services.engine) as session:
        poll = session.get(DecisionPoll, poll_id)
        assert poll is not None
        poll.channel_id, poll.message_ts = posted.channel, posted.ts
        session.add(poll)
        session.flush()
        mark_poll_shown(session, poll_id, message.fingerprint)


def parent_message(standin: Any, services: Services, poll_id: int) -> Any:
    with Session(services.engine) as session:
        poll = session.get(DecisionPoll, poll_id)
        assert poll is not None
        ts = poll.message_ts
    return next(m for m in standin.messages(DECISIONS) if m.ts == ts)


def vote_payload(
    bot: Any,
    poll_id: int,
    option: str,
    *,
    user: str,
    value: str | None = None,
    block_id: str | None = None,
    action_id: str | None = None,
    message: Any = None,
    home: bool = False,
) -> dict[str, Any]:
    """A click on the poll's `option` button, as Slack sends it; any part may be tampered with."""
    if home:
        where: dict[str, Any] = {"view": {"id": "VHOME", "type": "home"}}
    else:
        shown = message or parent_message(bot.standin, bot.services, poll_id)
        where = {"channel_id": DECISIONS, "message": shown.as_dict(with_metadata=True)}
    return bot.block_action_payload(
        action_id if action_id is not None else f"{PollIds.VOTE}:{option}",
        value if value is not None else f"{poll_id}:{option}",
        user_id=user,
        block_id=block_id if block_id is not None else f"{PollIds.VOTE_BLOCK}:{poll_id}",
        **where,
    )


def click_vote(bot: Any, poll_id: int, option: str, *, user: str, **tampered: Any) -> None:
    response = bot.action(vote_payload(bot, poll_id, option, user=user, **tampered))
    assert response.status_code == 200
    bot.wait_idle()


def votes_of(services: Services, poll_id: int) -> list[Vote]:
    with Session(services.engine) as session:
        return list(session.exec(select(Vote).where(Vote.poll_id == poll_id).order_by(Vote.id)))


def assert_no_ping(payload: Any) -> None:
    """Plan text shown escaped: no channel ping, no mention the bot did not build."""
    text = json.dumps(payload)
    assert "<!channel>" not in text and "<@U123>" not in text and "<@U999>" not in text


def answers_to(standin: Any, user: str) -> list[str]:
    """The texts sent to `user` through response_urls (ephemerals), oldest first."""
    return [
        str(call.params.get("text", ""))
        for call in standin.calls("response_url")
        if call.params.get("user") == user
    ]
