"""A poll's outcome applied to the plan (in the closing transaction) and followed through in Slack.

`apply_decision` runs inside the transaction that closed the poll and never calls Slack: it
writes the one Decision row of the poll (poll_id is unique, so a second call returns the row
already there and changes nothing), applies the option through the milestone and dependency
rules with audit entries, and records whom the change knocks on. `follow_through` runs after
the outcome was posted, and again from the tick until everything is sent: every message it
sends is claimed in the database first, so a retry, a second replica or a restart sends none twice.

What each option does (the numbers are the product's defaults, named below):
- delay: the milestone's due date moves to the poll's proposed date (`original_due` is kept); the
  `needed_by` of every open dependency feeding it moves by as many days, never past the new due
  date, as a new request revision (the provider team is asked anew, with the new date); the
  provider team's lead is asked to confirm their own dates (a KnockOn). The milestone's owner
  is not asked about the date the leaders just gave it: they are offered, instead, to shift the
  initiative's later milestones by as many days.
- descope: what is cut (the poll's framing, or "to be defined by the owner") is written on the
  milestone's scope note, which stays open with its date.
- add resources: an action for the objective's owner (who holds the budget the resources come
  from), else the initiative's owner, due a week after the decision, reminded on that day.
- accept the risk: accepted for two weeks (plan timezone).

Settled: the last three keep a date the leaders knew was slipping. Detection then holds the
milestone's missed and at-risk alerts through `Decision.settled_until` (so an open one
resolves now), and raises them anew the day after if the condition still holds: two weeks
for accepting the risk or cutting scope, the action's own date for added resources.
A delay settles nothing: the new date is the plan, and detection judges it as such.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session

from bot import audit
from bot.dependencies.rules import renewed_values
from bot.errors import UserError
from bot.milestones.rules import apply_move_due, plan_today
from bot.services import Services
from bot.slack.errors import SlackError, SlackUnavailable
from storage import dependencies as dependency_queries
from storage import outcomes as queries
from storage.db import session_scope
from storage.models import (
    Decision,
    DecisionOption,
    DecisionPoll,
    Dependency,
    Initiative,
    KnockOn,
    Milestone,
    PollOutcome,
)
from storage.people import person_by_id
from templates import render_json_object, render_text
from templates.ids import FollowThroughIds

log = logging.getLogger(__name__)

RISK_ACCEPTED_DAYS = 14
DESCOPE_SETTLED_DAYS = 14
ACTION_DUE_DAYS = 7
# Longer than any live sender needs between its claim and its post (429 waits included).
CLAIM_LEASE = timedelta(minutes=10)
FOLLOW_UPS_PER_TICK = 200
KNOCK_ON_LINE = "blocks/decisions/knock_on_line.json.j2"

OUTCOMES = frozenset({*DecisionOption, *PollOutcome})


def decision_actor(poll_id: int | None) -> str:
    """The audit log's name for a change the leaders decided in a poll."""
    return f"decision:{poll_id}" if poll_id is not None else "system"


# --- applying, in the closing transaction ---------------------------------------------------------


def apply_decision(
    session: Session, *, poll: DecisionPoll, option: str, votes: dict[str, Any], now: datetime
) -> Decision:
    """Write the poll's decision and apply `option` to the plan; the existing row if it has one.

    Never calls Slack. A milestone rule that refuses the change (a proposed date already past,
    a milestone no longer open) leaves the plan as it is: the decision is still logged, with
    nothing moved (new_due None).
    """
    if option not in OUTCOMES:
        raise ValueError(f"not a decision option: {option!r}")
    assert poll.id is not None
    existing = queries.decision_of_poll(session=session, poll_id=poll.id)
    if existing is not None:
        return existing
    decision_id = queries.insert_decision(
        session=session,
        values={
            "milestone_id": poll.milestone_id,
            "poll_id": poll.id,
            "option": option,
            "votes": audit.json_safe(votes),
            "slipped_at": poll.slipped_at,
            "decided_at": now,
        },
    )
    if decision_id is None:  # another closer inserted it first: theirs is the decision
        found = queries.decision_of_poll(session=session, poll_id=poll.id)
        assert found is not None
        return found
    decision = queries.decision_by_id(session=session, decision_id=decision_id)
    assert decision is not None
    today = plan_today(session, now)
    actor = decision_actor(poll.id)
    if option == DecisionOption.DELAY:
        _delay(session, decision, poll, actor=actor, now=now)
    elif option == DecisionOption.DESCOPE:
        _descope(session, decision, poll, today=today, actor=actor, now=now)
    elif option == DecisionOption.ADD_RESOURCES:
        _add_resources(session, decision, poll, today=today)
    elif option == DecisionOption.ACCEPT_RISK:
        decision.risk_accepted_until = today + timedelta(days=RISK_ACCEPTED_DAYS)
        decision.settled_until = decision.risk_accepted_until
    session.add(decision)
    session.flush()
    _audit_decision(session, decision, actor=actor, now=now)
    return decision


def _delay(
    session: Session, decision: Decision, poll: DecisionPoll, *, actor: str, now: datetime
) -> None:
    milestone = session.get(Milestone, poll.milestone_id)
    target = poll.proposed_due
    if milestone is None or target is None:
        return
    before = milestone.due
    try:
        moved = apply_move_due(
            session, milestone_id=poll.milestone_id, actor=actor, new_due=target, now=now
        )
    except UserError as refused:
        log.warning(
            "Decision %s: the delay of %s to %s was not applied (%s)",
            decision.id,
            milestone.key,
            target,
            ", ".join(p.code for p in refused.problems),
        )
        return
    if not moved:
        return
    days = (target - before).days
    decision.new_due, decision.days_moved = target, days
    moved_deps = move_feeding_dependencies(
        session, milestone_id=poll.milestone_id, days=days, cap=target, actor=actor, now=now
    )
    add_knock_ons(session, decision, dependency_moves=moved_deps, milestone_moves=[], now=now)


def move_feeding_dependencies(
    session: Session, *, milestone_id: int, days: int, cap: date, actor: str, now: datetime
) -> list[tuple[Dependency, date]]:
    """Move what feeds a milestone by `days` (never past `cap`), each as a new request revision.

    The new revision is what the plan file's needed_by change does (bot.dependencies.rules
    `renewed_values`): the next request post asks the provider team anew, with the new date,
    and the request it replaces says so. Returns the dependencies moved, with their new date.
    """
    if days <= 0:
        return []
    moved = []
    for dependency in queries.open_dependencies_feeding(session=session, milestone_id=milestone_id):
        assert dependency.id is not None
        new_date = min(dependency.needed_by + timedelta(days=days), cap)
        if new_date <= dependency.needed_by:
            continue
        values = renewed_values(dependency, state=None, now=now)
        values["needed_by"] = new_date
        if not dependency_queries.write_state(
            session=session,
            dependency_id=dependency.id,
            expected_state=dependency.state,
            expected_revision=dependency.request_revision,
            values=values,
        ):
            continue  # changed by someone meanwhile: their change stands
        audit.record(
            session,
            actor=actor,
            action="move_needed_by",
            entity="dependency",
            entity_key=dependency.key,
            before={
                "needed_by": dependency.needed_by,
                "state": dependency.state,
                "request_revision": dependency.request_revision,
            },
            after={
                "needed_by": new_date,
                "state": values["state"],
                "request_revision": values["request_revision"],
            },
            now=now,
        )
        moved.append((dependency, new_date))
    return moved


def add_knock_ons(
    session: Session,
    decision: Decision,
    *,
    dependency_moves: Iterable[tuple[Dependency, date]],
    milestone_moves: Iterable[tuple[Milestone, int, date]],
    now: datetime,
) -> int:
    """Ask whom the moves knock on: a moved dependency's provider team lead, a moved milestone's
    owner (given as (milestone, owner person id, new due)). How many were newly asked."""
    rows = []
    for dependency, new_date in dependency_moves:
        lead_id = queries.team_lead_id(session=session, team_id=dependency.provider_team_id)
        if lead_id is not None:  # a team without a lead hears it through its channel's request
            rows.append(_knock_on_row(decision, f"dependency:{dependency.id}", lead_id, new_date))
    for milestone, owner_id, new_due in milestone_moves:
        rows.append(_knock_on_row(decision, f"milestone:{milestone.id}", owner_id, new_due))
    return queries.insert_knock_ons(session=session, rows=rows)


def _knock_on_row(
    decision: Decision, subject: str, person_id: int, new_date: date
) -> dict[str, Any]:
    return {
        "decision_id": decision.id,
        "subject": subject,
        "person_id": person_id,
        "new_date": new_date,
    }


def _descope(
    session: Session,
    decision: Decision,
    poll: DecisionPoll,
    *,
    today: date,
    actor: str,
    now: datetime,
) -> None:
    milestone = session.get(Milestone, poll.milestone_id)
    cut = (poll.scope_cut or "").strip() or render_text("text/decision_scope_undefined.txt.j2")
    cut = cut.strip()
    decision.scope_cut = cut
    decision.settled_until = today + timedelta(days=DESCOPE_SETTLED_DAYS)
    if milestone is None or not queries.set_scope_note(
        session=session, milestone_id=poll.milestone_id, scope_note=cut
    ):
        return
    audit.record(
        session,
        actor=actor,
        action="cut_scope",
        entity="milestone",
        entity_key=milestone.key,
        before={"scope_note": milestone.scope_note, "due": milestone.due},
        after={"scope_note": cut, "due": milestone.due},
        now=now,
    )


def _add_resources(
    session: Session, decision: Decision, poll: DecisionPoll, *, today: date
) -> None:
    milestone = session.get(Milestone, poll.milestone_id)
    initiative = session.get(Initiative, milestone.initiative_id) if milestone else None
    what = (poll.resources or "").strip() or render_text(
        "text/decision_resources_default.txt.j2",
        milestone=milestone.title if milestone else "",
    ).strip()
    due = today + timedelta(days=ACTION_DUE_DAYS)
    decision.resources = what
    decision.settled_until = due
    if initiative is None:
        return
    queries.insert_action(
        session=session,
        values={
            "decision_id": decision.id,
            "owner_id": queries.action_owner_id(session=session, initiative=initiative),
            "what": what,
            "due": due,
        },
    )


def _audit_decision(session: Session, decision: Decision, *, actor: str, now: datetime) -> None:
    milestone = session.get(Milestone, decision.milestone_id)
    audit.record(
        session,
        actor=actor,
        action="decide",
        entity="decision",
        entity_key=milestone.key if milestone is not None else str(decision.milestone_id),
        before=None,
        after={
            "poll_id": decision.poll_id,
            "option": decision.option,
            "new_due": decision.new_due,
            "days_moved": decision.days_moved,
            "scope_cut": decision.scope_cut,
            "resources": decision.resources,
            "risk_accepted_until": decision.risk_accepted_until,
            "settled_until": decision.settled_until,
        },
        now=now,
    )


# --- following through, in Slack -------------------------------------------------------------------


def follow_through(services: Services, decision_id: int, now: datetime) -> None:
    """Tell whom the decision concerns, once each: safe to call again (the tick does, for retries).

    Delay: the owner is offered to shift the initiative's later milestones, and the requests of
    the moved dependencies show their new revision at once. Then one line in the poll's thread
    lists who is asked about the knock-on, and each of them gets one DM.
    """
    with session_scope(services.engine) as session:
        decision = queries.decision_by_id(session=session, decision_id=decision_id)
        if decision is None:
            return
        option, milestone_id = decision.option, decision.milestone_id
        feeders = [
            d.id
            for d in queries.open_dependencies_feeding(session=session, milestone_id=milestone_id)
            if d.id is not None
        ]
    if option == DecisionOption.DELAY:
        _offer_shift(services, decision_id, now)
        tell_providers(services, feeders, now)
    post_knock_on_line(services, decision_id, now)
    ask_knock_ons(services, decision_id, now)


def tell_providers(services: Services, dependency_ids: list[int], now: datetime) -> None:
    """The moved dependencies' requests, redrawn (the old revision says it was replaced) and the
    new revision posted to the provider team's channel with its new date."""
    if not dependency_ids:
        return
    from bot.dependencies.requests import post_dependency_requests, refresh_requests

    try:
        refresh_requests(services, dependency_ids=dependency_ids, now=now)
        post_dependency_requests(services, now)
    except SlackError as exc:  # the tick's request step finishes what was not sent
        log.warning("Requests of moved dependencies not all sent: %s", exc.code)


@dataclass(frozen=True)
class _ShiftOffer:
    owner: str | None
    context: dict[str, Any]


def _offer_shift(services: Services, decision_id: int, now: datetime) -> None:
    with session_scope(services.engine) as session:
        offer = _shift_offer(session, decision_id)
        if not queries.claim_shift_offer(session=session, decision_id=decision_id, now=now):
            return
    if offer is None or offer.owner is None:
        return  # nothing later to shift, or nobody to ask: the offer is settled as made
    message = render_json_object("blocks/decisions/shift_offer.json.j2", **offer.context)
    try:
        services.slack.post_message(
            channel=offer.owner, text=str(message["text"]), blocks=list(message["blocks"])
        )
    except SlackUnavailable as exc:
        log.warning("Shift offer of decision %s not sent (%s): retried", decision_id, exc.code)
        with session_scope(services.engine) as session:
            queries.release_shift_offer(session=session, decision_id=decision_id)
    except SlackError as exc:
        log.warning("Shift offer of decision %s refused by Slack: %s", decision_id, exc.code)


def _shift_offer(session: Session, decision_id: int) -> _ShiftOffer | None:
    decision = queries.decision_by_id(session=session, decision_id=decision_id)
    if decision is None or not decision.days_moved or decision.days_moved <= 0:
        return None
    assert decision.new_due is not None
    milestone = session.get(Milestone, decision.milestone_id)
    initiative = session.get(Initiative, milestone.initiative_id) if milestone else None
    if milestone is None or initiative is None:
        return None
    later = queries.later_open_milestones(
        session=session,
        initiative_id=initiative.id or 0,
        after=decision.new_due - timedelta(days=decision.days_moved),
        other_than=milestone.id or 0,
    )
    if not later:
        return None
    owner = person_by_id(session=session, person_id=initiative.owner_id)
    return _ShiftOffer(
        owner=owner.slack_id if owner else None,
        context={
            "ids": FollowThroughIds,
            "decision_id": decision.id,
            "milestone": milestone.title,
            "initiative": initiative.title,
            "new_due": decision.new_due,
            "days": decision.days_moved,
            "later": [
                {
                    "title": m.title,
                    "due": m.due,
                    "shifted": m.due + timedelta(days=decision.days_moved),
                }
                for m in later
            ],
        },
    )


# --- knock-on: the thread line and the DMs -----------------------------------------------------------


def knock_on_lines(session: Session, decision_id: int) -> list[dict[str, Any]]:
    """Who was asked about what, and what they answered: the thread line's and the DMs' facts."""
    lines = []
    for view in queries.knock_ons(session=session, decision_id=decision_id):
        knock_on = view.knock_on
        kind, _, raw_id = knock_on.subject.partition(":")
        title = ""
        if kind == "dependency":
            dependency = session.get(Dependency, int(raw_id))
            title = dependency.need if dependency else ""
        else:
            milestone = session.get(Milestone, int(raw_id))
            title = milestone.title if milestone else ""
        lines.append(
            {
                "id": knock_on.id,
                "kind": kind,
                "title": title,
                "person": view.person.slack_id,
                "person_name": view.person.name,
                "new_date": knock_on.new_date,
                "answer": knock_on.answer,
                "answer_date": knock_on.answer_date,
                "asked": knock_on.asked_at is not None,
            }
        )
    return lines


def post_knock_on_line(
    services: Services, decision_id: int, now: datetime, *, redraw: bool = False
) -> None:
    """Post the thread line once (claimed); with `redraw`, update it in place once it is there
    (an answer came in, more people were asked)."""
    with session_scope(services.engine) as session:
        decision = queries.decision_by_id(session=session, decision_id=decision_id)
        if decision is None or decision.poll_id is None:
            return
        asked = knock_on_lines(session, decision_id)
        milestone = session.get(Milestone, decision.milestone_id)
        poll = session.get(DecisionPoll, decision.poll_id)
        if not asked or milestone is None or poll is None:
            return
        poll_id, channel, ts = decision.poll_id, poll.channel_id, decision.knock_on_ts
        if ts is None and not queries.claim_knock_on_line(
            session=session, decision_id=decision_id, now=now, stale=now - CLAIM_LEASE
        ):
            return
    title = milestone.title
    if ts is not None:
        if not redraw or channel is None:
            return
        message = render_json_object(KNOCK_ON_LINE, milestone=title, asked=asked)
        try:
            services.slack.update_message(
                channel=channel, ts=ts, text=str(message["text"]), blocks=list(message["blocks"])
            )
        except SlackError as exc:  # the next answer redraws it again
            log.warning("Knock-on line of decision %s not updated: %s", decision_id, exc.code)
        return
    from bot.decisions.thread import post_in_thread

    new_ts: str | None = None
    try:
        placed = post_in_thread(services, poll_id, KNOCK_ON_LINE, milestone=title, asked=asked)
        new_ts = placed.ts if placed is not None else None
    except SlackError as exc:
        log.warning("Knock-on line of decision %s not posted (%s): retried", decision_id, exc.code)
    with session_scope(services.engine) as session:
        queries.set_knock_on_line(session=session, decision_id=decision_id, ts=new_ts)


def ask_knock_ons(services: Services, decision_id: int, now: datetime) -> int:
    """One DM to each person asked, claimed first; how many were sent."""
    sent = 0
    with session_scope(services.engine) as session:
        decision = queries.decision_by_id(session=session, decision_id=decision_id)
        milestone = session.get(Milestone, decision.milestone_id) if decision else None
        pending = [line for line in knock_on_lines(session, decision_id) if not line["asked"]]
    if decision is None or milestone is None:
        return 0
    for line in pending:
        with session_scope(services.engine) as session:
            if not queries.claim_knock_on(
                session=session, knock_on_id=line["id"], now=now, stale=now - CLAIM_LEASE
            ):
                continue
        channel, ts = _send_knock_on(services, decision, milestone, line)
        if channel == "":  # Slack unavailable: asked by a later tick
            with session_scope(services.engine) as session:
                queries.release_knock_on(session=session, knock_on_id=line["id"])
            continue
        with session_scope(services.engine) as session:
            queries.mark_knock_on_asked(
                session=session, knock_on_id=line["id"], now=now, channel=channel, ts=ts
            )
        sent += 1 if ts else 0
    return sent


def knock_on_dm(decision: Decision, milestone: Milestone, line: dict[str, Any]) -> dict[str, Any]:
    return render_json_object(
        "blocks/decisions/knock_on_dm.json.j2",
        ids=FollowThroughIds,
        line=line,
        option=decision.option,
        milestone=milestone.title,
        new_due=decision.new_due,
    )


def _send_knock_on(
    services: Services, decision: Decision, milestone: Milestone, line: dict[str, Any]
) -> tuple[str | None, str | None]:
    """(channel, ts) of the DM sent; (None, None) when it cannot be sent, ("", None) to retry."""
    if not line["person"]:
        return None, None
    message = knock_on_dm(decision, milestone, line)
    try:
        posted = services.slack.post_message(
            channel=line["person"], text=str(message["text"]), blocks=list(message["blocks"])
        )
    except SlackUnavailable as exc:
        log.warning("Knock-on DM %s not sent (%s): retried", line["id"], exc.code)
        return "", None
    except SlackError as exc:
        log.warning("Knock-on DM %s refused by Slack: %s", line["id"], exc.code)
        return None, None
    return posted.channel, posted.ts


def knock_on_subject(knock_on: KnockOn) -> tuple[str, int]:
    kind, _, raw_id = knock_on.subject.partition(":")
    return kind, int(raw_id)
