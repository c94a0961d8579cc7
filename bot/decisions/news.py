"""News about an open poll's subject, told in its thread: a dependency it waited on delivered, a new pulse answer.

The news is a courtesy to the discussion, posted after what caused it is committed: a Slack error
is logged and the line is lost, never reported to whoever clicked (their own action succeeded).
"""

from __future__ import annotations

import logging
from typing import Any

from bot.decisions.thread import post_in_thread
from bot.services import Services
from bot.slack.errors import SlackError
from storage.db import session_scope
from storage.decisions import open_poll_of_milestone, open_polls_of_initiative
from storage.models import Dependency, Person, PulseAnswer, PulseRequest, Team

log = logging.getLogger(__name__)


def after_delivery(services: Services, dependency_id: int) -> None:
    """The hook of a delivered dependency: news for its poll, whatever happens, never the clicker's problem."""
    try:
        tell_delivery(services, dependency_id)
    except Exception:
        # The delivery is committed and told elsewhere; a failed courtesy line is a bug to log.
        log.exception("Could not tell a poll of the delivery of dependency %s", dependency_id)


def after_pulse_answer(services: Services, answer_id: int) -> None:
    """The hook of a new pulse answer: news for the polls about its initiative."""
    try:
        tell_pulse_answer(services, answer_id)
    except Exception:
        log.exception("Could not tell polls of pulse answer %s", answer_id)


def tell_delivery(services: Services, dependency_id: int) -> int:
    """A delivered dependency, told in the open poll of the milestone it feeds; lines posted."""
    with session_scope(services.engine) as session:
        dependency = session.get(Dependency, dependency_id)
        if dependency is None or dependency.milestone_id is None:
            return 0
        poll = open_poll_of_milestone(session, dependency.milestone_id)
        if poll is None or poll.id is None:
            return 0
        team = session.get(Team, dependency.provider_team_id)
        by = session.get(Person, dependency.state_changed_by_id or 0)
        context = {
            "need": dependency.need,
            "team": team.name if team is not None else "The provider team",
            "by": by.slack_id if by is not None else None,
        }
        poll_ids = [poll.id]
    return _post(services, poll_ids, "blocks/decisions/news_dependency_delivered.json.j2", context)


def tell_pulse_answer(services: Services, answer_id: int) -> int:
    """A new pulse answer, told in the open polls about its initiative's milestones; lines posted."""
    with session_scope(services.engine) as session:
        answer = session.get(PulseAnswer, answer_id)
        pulse = session.get(PulseRequest, answer.pulse_request_id) if answer else None
        if answer is None or pulse is None:
            return 0
        polls = open_polls_of_initiative(session, pulse.initiative_id)
        owner = session.get(Person, answer.answered_by_id or pulse.owner_id)
        context = {
            "status": answer.status,
            "confidence": answer.confidence,
            "blockers": answer.blockers,
            "owner": owner.slack_id if owner is not None else None,
        }
        poll_ids = [poll.id for poll in polls if poll.id is not None]
    return _post(services, poll_ids, "blocks/decisions/news_pulse_answer.json.j2", context)


def _post(services: Services, poll_ids: list[int], template: str, context: dict[str, Any]) -> int:
    posted = 0
    for poll_id in poll_ids:
        try:
            if post_in_thread(services, poll_id, template, **context) is not None:
                posted += 1
        except SlackError as exc:
            log.warning("Could not post news in the thread of poll %s: %s", poll_id, exc.code)
    return posted
