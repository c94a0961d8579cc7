"""A closed poll's outcome written to the decision log (placeholder: replaced by the outcomes branch at merge)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.services import Services
from storage.models import Decision, DecisionOption, DecisionPoll


def apply_decision(
    session: Session,
    *,
    poll: DecisionPoll,
    option: str,
    votes: dict[str, Any],
    now: datetime,
) -> Decision:
    """Record the decision of `poll` (inside the closing transaction); this placeholder changes no plan row."""
    decision = Decision(
        milestone_id=poll.milestone_id,
        poll_id=poll.id,
        option=option,
        votes=votes,
        slipped_at=poll.slipped_at,
        decided_at=now,
        new_due=poll.proposed_due if option == DecisionOption.DELAY else None,
        scope_cut=poll.scope_cut,
        resources=poll.resources,
    )
    session.add(decision)
    session.flush()
    return decision


def follow_through(services: Services, decision_id: int, now: datetime) -> None:
    """Tell everyone a decision affects (idempotent); this placeholder tells no one."""
