"""Decision polls for closing tests: a plan with three leaders, open polls posted through the stand-in, votes and ballots."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from bot.decisions.poll_message import draw_poll
from bot.services import Services
from storage.decisions import mark_poll_shown
from storage.models import (
    Ballot,
    Decision,
    DecisionPoll,
    Milestone,
    Person,
    PollState,
    Vote,
)
from tests import factories

DECISIONS = "CDECISIONS"
HOSTILE = "<!channel> & <@U999>"
# Not yet due when the tests look: detection, run after a close, finds nothing to alert on.
DUE = date(2027, 3, 1)


@dataclass(frozen=True)
class PollPlan:
    milestone_id: int
    initiative_id: int
    leaders: dict[str, int]  # Slack ID → person ID: UCFO, UCIO, UCOO (UCOO owns the objective)
    owner_id: int  # UALICE, the initiative's owner


def poll_plan(
    services: Services, *, title: str = "Beta launch", quorum: int | None = None
) -> PollPlan:
    with Session(services.engine) as session:
        factories.plan_settings(
            session, timezone="America/New_York", decisions_channel=DECISIONS, poll_quorum=quorum
        )
        alice = factories.person(session, slack_id="UALICE", name="Alice")
        leaders = {
            slack_id: factories.person(session, slack_id=slack_id, name=name, is_leader=True)
            for slack_id, name in (("UCFO", "CFO"), ("UCIO", "CIO"), ("UCOO", "COO"))
        }
        it = factories.team(session, key="it", name="IT", channel_id="CDELIVERY")
        objective = factories.objective(session, key="portal", owner=leaders["UCOO"])
        initiative = factories.initiative(
            session, owner=alice, team=it, key="portal-beta", title="Portal", objective=objective
        )
        milestone = factories.milestone(
            session, initiative=initiative, due=DUE, key="beta-launch", title=title
        )
        session.commit()
        return PollPlan(
            milestone_id=int(milestone.id or 0),
            initiative_id=int(initiative.id or 0),
            leaders={s: int(p.id or 0) for s, p in leaders.items()},
            owner_id=int(alice.id or 0),
        )


def facts(plan: PollPlan, title: str) -> dict[str, Any]:
    """What poll.json.j2 expects, frozen as the opening would."""
    return {
        "milestone_id": plan.milestone_id,
        "milestone_key": "beta-launch",
        "milestone_title": title,
        "initiative_key": "portal-beta",
        "initiative_title": title,
        "owner": "UALICE",
        "original_due": "2027-01-15",
        "due": "2027-01-15",
        "slip_days": 3,
        "cause": "missed",
        "dependency": None,
        "later_milestones": [],
        "waiting_dependencies": [],
        "kpis": [],
    }


def open_poll(
    services: Services,
    plan: PollPlan,
    *,
    opened_at: datetime,
    hours: int = 48,
    anonymous: bool = False,
    title: str = "Beta launch",
    proposed_due: date | None = date(2027, 2, 27),
) -> int:
    """An open poll on the plan's milestone, its parent posted to CDECISIONS through the gateway."""
    deadline = opened_at + timedelta(hours=hours)
    with Session(services.engine) as session:
        poll = DecisionPoll(
            milestone_id=plan.milestone_id,
            open_key=f"milestone:{plan.milestone_id}",
            state=PollState.OPEN,
            opened_at=opened_at,
            slipped_at=opened_at - timedelta(hours=8),
            original_deadline=deadline,
            deadline=deadline,
            anonymous=anonymous,
            proposed_due=proposed_due,
            scope_cut="Drop the <b>export</b> & reports",
            resources=None,
            facts=facts(plan, title),
        )
        session.add(poll)
        session.commit()
        poll_id = int(poll.id or 0)
    with Session(services.engine) as session:
        drawn = draw_poll(session, poll_id)
        assert drawn is not None
        _, message = drawn
    posted = services.slack.post_message(
        channel=DECISIONS, text=message.text, blocks=message.blocks
    )
    with Session(services.engine) as session:
        poll = session.get(DecisionPoll, poll_id)
        assert poll is not None
        poll.channel_id, poll.message_ts = posted.channel, posted.ts
        session.add(poll)
        mark_poll_shown(session, poll_id, message.fingerprint)
        session.commit()
    return poll_id


def vote(services: Services, poll_id: int, person_id: int, option: str, *, at: datetime) -> None:
    """A leader's vote; in an anonymous poll the choice goes to a ballot that names no one."""
    with Session(services.engine) as session:
        poll = session.get(DecisionPoll, poll_id)
        assert poll is not None
        session.add(
            Vote(
                poll_id=poll_id,
                voter_id=person_id,
                option=None if poll.anonymous else option,
                voted_at=at,
            )
        )
        if poll.anonymous:
            session.add(Ballot(id=str(uuid.uuid4()), poll_id=poll_id, option=option))
        session.commit()


def set_person(services: Services, person_id: int, **fields: object) -> None:
    with Session(services.engine) as session:
        person = session.get(Person, person_id)
        assert person is not None
        for name, value in fields.items():
            setattr(person, name, value)
        session.add(person)
        session.commit()


def set_milestone(services: Services, milestone_id: int, **fields: object) -> None:
    with Session(services.engine) as session:
        milestone = session.get(Milestone, milestone_id)
        assert milestone is not None
        for name, value in fields.items():
            setattr(milestone, name, value)
        session.add(milestone)
        session.commit()


def load_poll(services: Services, poll_id: int) -> DecisionPoll:
    with Session(services.engine) as session:
        poll = session.get(DecisionPoll, poll_id)
        assert poll is not None
        return poll


def decisions(services: Services) -> list[Decision]:
    with Session(services.engine) as session:
        return list(session.exec(select(Decision).order_by(Decision.id)))
