"""A plan with a slipped milestone and a closed poll about it, built in the database for outcome tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlmodel import Session

from bot.decisions.outcomes import apply_decision
from storage.models import Decision, DecisionPoll, PollState
from tests import factories

# The plan is in New York. The milestone was due on the 15th; the leaders decide on the 20th.
DUE = date(2027, 1, 15)
DECIDED = datetime(2027, 1, 20, 15, 0, tzinfo=UTC)
PROPOSED = date(2027, 1, 29)  # a delay of 14 days
NASTY = "Beta <!channel> & <@UBOB>"


@dataclass
class SlipPlan:
    milestone: int
    later: int
    dependency: int
    late_dependency: int
    initiative: int


def slip_plan(session: Session) -> SlipPlan:
    """Alice owns the portal (team IT, lead the CIO) under the COO's objective; Marketing
    (lead the CMO) provides two things the milestone waits on, one needed close to its date."""
    factories.plan_settings(session, timezone="America/New_York", decisions_channel="CDECISIONS")
    alice = factories.person(session, slack_id="UALICE", name="Alice")
    cio = factories.person(session, slack_id="UCIO", name="CIO")
    coo = factories.person(session, slack_id="UCOO", name="COO", is_admin=True, is_leader=True)
    cmo = factories.person(session, slack_id="UCMO", name="CMO")
    factories.person(session, slack_id="UBOB", name="Bob")
    it = factories.team(session, key="it", name="IT Delivery", channel_id="CDELIVERY", lead=cio)
    marketing = factories.team(
        session, key="marketing", name="Marketing", channel_id="CMARKETING", lead=cmo
    )
    objective = factories.objective(session, owner=coo, title="Self-service")
    portal = factories.initiative(
        session, owner=alice, team=it, key="portal", title="Portal & <!here>", objective=objective
    )
    milestone = factories.milestone(session, initiative=portal, due=DUE, key="beta", title=NASTY)
    later = factories.milestone(
        session, initiative=portal, due=date(2027, 2, 10), key="launch", title="Launch"
    )
    training = factories.dependency(
        session,
        initiative=portal,
        provider=marketing,
        needed_by=date(2027, 1, 10),
        milestone=milestone,
        key="training",
        need="Support <!here> trained",
        state="acknowledged",
    )
    late = factories.dependency(
        session,
        initiative=portal,
        provider=marketing,
        needed_by=date(2027, 1, 20),
        milestone=milestone,
        key="copy",
        need="Launch copy",
    )
    return SlipPlan(
        milestone=int(milestone.id or 0),
        later=int(later.id or 0),
        dependency=int(training.id or 0),
        late_dependency=int(late.id or 0),
        initiative=int(portal.id or 0),
    )


def closed_poll(
    session: Session,
    milestone_id: int,
    *,
    outcome: str,
    proposed_due: date | None = PROPOSED,
    scope_cut: str | None = None,
    resources: str | None = None,
    channel_id: str | None = "CDECISIONS",
    message_ts: str | None = None,
    posted: bool = True,
) -> DecisionPoll:
    """A poll closed on DECIDED with `outcome`, its parent message at (channel_id, message_ts)."""
    poll = DecisionPoll(
        milestone_id=milestone_id,
        open_key=None,
        state=PollState.CLOSED,
        opened_at=DECIDED - timedelta(days=2),
        slipped_at=DECIDED - timedelta(days=4, hours=6),
        original_deadline=DECIDED,
        deadline=DECIDED,
        proposed_due=proposed_due,
        scope_cut=scope_cut,
        resources=resources,
        facts={"milestone_title": NASTY},
        channel_id=channel_id,
        message_ts=message_ts,
        closed_at=DECIDED,
        outcome=outcome,
        outcome_posted_at=DECIDED if posted else None,
    )
    session.add(poll)
    session.flush()
    session.refresh(poll)
    return poll


VOTES: dict[str, Any] = {
    "counts": {"delay": 2, "descope": 1},
    "voters": [
        {"slack_id": "UCOO", "name": "COO", "option": "delay", "former_leader": False},
        {"slack_id": "UCFO", "name": "CFO", "option": "delay", "former_leader": False},
        {"slack_id": "UCIO", "name": "CIO", "option": "descope", "former_leader": True},
    ],
    "non_voters": ["UCMO"],
    "quorum": 2,
    "anonymous": False,
}


def decide(
    session: Session, milestone_id: int, outcome: str, *, now: datetime = DECIDED, **poll: Any
) -> Decision:
    """Close a poll about the milestone with `outcome` and apply it, as the closing step does."""
    row = closed_poll(session, milestone_id, outcome=outcome, **poll)
    return apply_decision(session, poll=row, option=outcome, votes=VOTES, now=now)
