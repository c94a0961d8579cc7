"""Decision polls closed on the tick: at the deadline or once every leader voted, extended once for quorum, the outcome posted once.

The database decides who acts. A poll closes in one transaction (a conditional UPDATE on its
state, then the decision applied to the plan), extends once (`extended_at IS NULL`), reminds
each non-voter once (a reminder row claimed before the DM) and has its outcome posted under a
lease, so two ticks at once, a 429 or a crash between two steps never close, apply or post twice.

Counting: only current leaders' votes count, for quorum and for the result. A former leader's
vote stays on the record and is shown, marked, but changes nothing. An anonymous poll's result is
its ballots, which name no one: there a former leader's ballot cannot be told apart and counts.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.alerts import run_detection
from bot.decisions.outcomes import apply_decision, follow_through
from bot.decisions.poll_message import OPTIONS, refresh_poll_message
from bot.decisions.thread import post_in_thread
from bot.services import Services
from bot.slack.errors import SlackError
from bot.slack.gateway import MessageTag
from storage import decisions as queries
from storage.db import session_scope
from storage.decisions import MilestoneState, PollVotes, current_leaders, poll_votes
from storage.models import DecisionPoll, MilestoneStatus, Person, PollOutcome
from storage.plan import plan_settings
from templates import render_json_object
from templates.ids import MessageEvents

log = logging.getLogger(__name__)

# A claim older than this was left by a process that died between claiming and posting.
CLAIM_LEASE = timedelta(minutes=10)

OUTCOME_TEMPLATE = "blocks/decisions/poll_outcome.json.j2"
REMINDER_TEMPLATE = "blocks/decisions/poll_reminder.json.j2"


class ClosingReason(StrEnum):
    """Why a poll closed without a winner (worded by the outcome template)."""

    NO_QUORUM = "no_quorum"
    TIE = "tie"
    ARCHIVED = "archived"  # withdrawn: the milestone left the plan
    DONE = "done"
    DESCOPED = "descoped"


class Step(StrEnum):
    WAIT = "wait"  # nothing to do yet (every leader voted, but fewer than the quorum exist)
    EXTEND = "extend"
    CLOSE = "close"


@dataclass(frozen=True)
class Verdict:
    step: Step
    outcome: str | None = None  # a DecisionOption, or PollOutcome.UNDECIDED / WITHDRAWN
    votes: dict[str, Any] | None = None  # the summary the decision keeps and the outcome shows
    non_voters: tuple[int, ...] = ()  # person IDs of current leaders who have not voted


@dataclass
class ClosingReport:
    closed: int = 0
    extended: int = 0
    reminded: int = 0
    outcomes_posted: int = 0
    outcomes_unposted: int = 0  # kept for the next tick: Slack refused or was unavailable


def quorum_of(setting: int | None, leaders: int) -> int:
    """The votes a poll needs: the plan's `poll_quorum`, or a majority of the current leaders."""
    return setting if setting is not None else leaders // 2 + 1


def extended_deadline(poll: DecisionPoll) -> datetime:
    """The original deadline plus half the poll's original length."""
    original = poll.original_deadline or poll.deadline
    return original + (original - poll.opened_at) / 2


def judge(
    poll: DecisionPoll,
    votes: PollVotes,
    *,
    leaders: list[Person],
    quorum: int,
    milestone: MilestoneState | None,
    now: datetime,
) -> Verdict:
    """What the tick does with an open poll at `now`: wait, extend it, or close it with an outcome."""
    withdrawn = _withdrawn_because(milestone)
    if withdrawn is not None:
        summary = _summary(poll, votes, leaders, quorum, Counter(), withdrawn, None)
        return Verdict(Step.CLOSE, PollOutcome.WITHDRAWN, summary)
    leader_ids = {int(p.id) for p in leaders if p.id is not None}
    counted = [(voter, option) for voter, option in votes.voters if voter.person_id in leader_ids]
    voted_ids = {voter.person_id for voter, _ in counted}
    non_voters = tuple(pid for pid in sorted(leader_ids) if pid not in voted_ids)
    all_voted = bool(leader_ids) and not non_voters
    deadline_passed = poll.deadline <= now
    if not (deadline_passed or all_voted):
        return Verdict(Step.WAIT)
    if len(counted) < quorum:
        if not deadline_passed:  # every leader voted, yet fewer than the quorum exist
            return Verdict(Step.WAIT)
        if poll.extended_at is None:
            return Verdict(Step.EXTEND, non_voters=non_voters)
        summary = _summary(
            poll,
            votes,
            leaders,
            quorum,
            _counts(poll, votes, counted),
            ClosingReason.NO_QUORUM,
            None,
        )
        return Verdict(Step.CLOSE, PollOutcome.UNDECIDED, summary)
    counts = _counts(poll, votes, counted)
    outcome, reason, tie_broken_by = _result(poll, counts, counted, milestone, leader_ids)
    summary = _summary(poll, votes, leaders, quorum, counts, reason, tie_broken_by)
    return Verdict(Step.CLOSE, outcome, summary)


def _withdrawn_because(milestone: MilestoneState | None) -> ClosingReason | None:
    if milestone is None or milestone.archived:
        return ClosingReason.ARCHIVED
    if milestone.status == MilestoneStatus.DONE:
        return ClosingReason.DONE
    if milestone.status == MilestoneStatus.DESCOPED:
        return ClosingReason.DESCOPED
    return None


def _counts(
    poll: DecisionPoll, votes: PollVotes, counted: list[tuple[Any, str | None]]
) -> Counter[str]:
    if poll.anonymous:
        return Counter(votes.ballots)
    return Counter(option for _, option in counted if option is not None)


def _result(
    poll: DecisionPoll,
    counts: Counter[str],
    counted: list[tuple[Any, str | None]],
    milestone: MilestoneState | None,
    leader_ids: set[int],
) -> tuple[str, ClosingReason | None, str | None]:
    """(outcome, why undecided, who broke a tie): the most votes win; a tie goes to the objective owner."""
    top = max((counts[o] for o in OPTIONS), default=0)
    if top == 0:
        return PollOutcome.UNDECIDED, ClosingReason.NO_QUORUM, None
    tied = [o for o in OPTIONS if counts[o] == top]
    if len(tied) == 1:
        return tied[0], None, None
    owner_id = milestone.objective_owner_id if milestone else None
    # An anonymous poll does not know what its owner chose: its tie stays a tie.
    if not poll.anonymous and owner_id is not None and owner_id in leader_ids:
        for voter, option in counted:
            if voter.person_id == owner_id and option in tied:
                return str(option), None, voter.slack_id
    return PollOutcome.UNDECIDED, ClosingReason.TIE, None


def _summary(
    poll: DecisionPoll,
    votes: PollVotes,
    leaders: list[Person],
    quorum: int,
    counts: Counter[str],
    reason: ClosingReason | None,
    tie_broken_by: str | None,
) -> dict[str, Any]:
    """The JSON-able record of the vote, as the decision log keeps it and the outcome shows it."""
    leader_ids = {p.id for p in leaders}
    voted = {voter.person_id for voter, _ in votes.voters}
    return {
        "counts": {option: counts[option] for option in OPTIONS},
        "voters": [
            {
                "slack_id": voter.slack_id,
                "name": voter.name,
                "option": None if poll.anonymous else option,
                "former_leader": voter.person_id not in leader_ids,
            }
            for voter, option in votes.voters
        ],
        "non_voters": [p.slack_id for p in leaders if p.id not in voted and p.slack_id],
        "quorum": quorum,
        "anonymous": poll.anonymous,
        "reason": reason.value if reason else None,
        "tie_broken_by": tie_broken_by,
    }


# --- the tick step --------------------------------------------------------------------------


def close_due_polls(services: Services, now: datetime) -> ClosingReport:
    """Settle every poll due at `now`, send the reminders and outcomes still owed."""
    report = ClosingReport()
    with session_scope(services.engine) as session:
        due = queries.polls_to_settle(session, now)
    for poll_id in due:
        _settle(services, poll_id, now, report)
    _send_stale_reminders(services, now, report)
    with session_scope(services.engine) as session:
        unposted = queries.unposted_outcomes(session)
    for poll_id in unposted:
        _post_outcome(services, poll_id, now, report)
    if report.closed or report.outcomes_posted:
        # The alerts a decision settles (a missed milestone moved or descoped) resolve now.
        run_detection(services, now)
    return report


def _settle(services: Services, poll_id: int, now: datetime, report: ClosingReport) -> None:
    """Close or extend one poll in one transaction; Slack is told after it commits."""
    reminders: list[int] = []
    with session_scope(services.engine) as session:
        poll = queries.lock_poll_to_close(session, poll_id)
        if poll is None:  # closed by another process meanwhile
            return
        leaders = current_leaders(session)
        quorum = quorum_of(plan_settings(session=session).poll_quorum, len(leaders))
        verdict = judge(
            poll,
            poll_votes(session, poll),
            leaders=leaders,
            quorum=quorum,
            milestone=queries.milestone_state(session, poll.milestone_id),
            now=now,
        )
        if verdict.step == Step.WAIT:
            return
        if verdict.step == Step.EXTEND:
            if not queries.extend_poll(session, poll_id, deadline=extended_deadline(poll), now=now):
                return
            reminders = queries.claim_reminders(session, poll_id, verdict.non_voters, now=now)
        else:
            assert verdict.outcome is not None and verdict.votes is not None
            if not queries.close_poll(session, poll_id, outcome=verdict.outcome, now=now):
                return
            session.refresh(poll)  # the decision sees the poll as closed
            apply_decision(session, poll=poll, option=verdict.outcome, votes=verdict.votes, now=now)
    if verdict.step == Step.EXTEND:
        report.extended += 1
        _redraw(services, poll_id)
        _remind(services, poll_id, reminders, now, report)
    else:
        report.closed += 1
        # The outcome is posted by the pass over unposted outcomes that follows.


def _redraw(services: Services, poll_id: int) -> None:
    try:
        refresh_poll_message(services, poll_id)
    except SlackError as exc:
        # The row already says what changed; the next redraw (a vote, the close) shows it.
        log.warning("Could not redraw poll %s: %s", poll_id, exc.code)


# --- reminders ------------------------------------------------------------------------------


def _remind(
    services: Services,
    poll_id: int,
    person_ids: list[int],
    now: datetime,
    report: ClosingReport,
    *,
    stale: bool = False,
) -> None:
    """DM each claimed non-voter a link to the poll and its new deadline; each once.

    A `stale` claim may have been sent (a timeout, a connection lost while Slack answered, a
    crash): the person's DM is read for the tagged reminder before sending it again."""
    if not person_ids:
        return
    with session_scope(services.engine) as session:
        poll = session.get(DecisionPoll, poll_id, populate_existing=True)
        slack_ids = queries.slack_ids_of(session, person_ids)
    if poll is None:
        return
    link = None
    if poll.channel_id and poll.message_ts:
        try:
            link = services.slack.permalink(channel=poll.channel_id, ts=poll.message_ts)
        except SlackError as exc:
            log.warning("No permalink for poll %s: %s", poll_id, exc.code)
    message = render_json_object(REMINDER_TEMPLATE, poll=poll, f=poll.facts, link=link)
    for person_id in person_ids:
        slack_id = slack_ids.get(person_id)
        if slack_id is None:
            continue
        try:
            if stale and _reminder_in_dm(services, slack_id, poll_id):
                with session_scope(services.engine) as session:
                    queries.mark_reminder_sent(session, poll_id, person_id, now)
                continue
            services.slack.post_message(
                channel=slack_id,
                text=str(message["text"]),
                blocks=list(message["blocks"]),
                tag=MessageTag(MessageEvents.POLL_REMINDER, {"poll_id": poll_id}),
            )
        except SlackError as exc:
            # Its claim stays: a later tick takes it over once the lease has passed.
            log.warning("Could not remind %s of poll %s: %s", slack_id, poll_id, exc.code)
            continue
        with session_scope(services.engine) as session:
            queries.mark_reminder_sent(session, poll_id, person_id, now)
        report.reminded += 1


def _send_stale_reminders(services: Services, now: datetime, report: ClosingReport) -> None:
    """Reminders claimed by a process that died, or refused by Slack, sent once the lease lapsed."""
    with session_scope(services.engine) as session:
        stale = queries.take_over_stale_reminders(session, now=now, lease=CLAIM_LEASE)
    by_poll: dict[int, list[int]] = defaultdict(list)
    for poll_id, person_id in stale:
        by_poll[poll_id].append(person_id)
    for poll_id, person_ids in by_poll.items():
        _remind(services, poll_id, person_ids, now, report, stale=True)


def _reminder_in_dm(services: Services, slack_id: str, poll_id: int) -> bool:
    """Whether the person's DM holds this poll's reminder already (history is read by DM ID)."""
    channel = services.slack.open_dm(slack_id)
    return any(
        str(m.payload.get("poll_id")) == str(poll_id)
        for m in services.slack.find_tagged_messages(
            channel=channel, event_type=MessageEvents.POLL_REMINDER
        )
    )


# --- the outcome ----------------------------------------------------------------------------


def _post_outcome(services: Services, poll_id: int, now: datetime, report: ClosingReport) -> None:
    """Redraw the parent (closed, no buttons), then post the outcome in its thread, once."""
    with session_scope(services.engine) as session:
        claim = queries.claim_outcome(session, poll_id, now=now, lease=CLAIM_LEASE)
        if claim is None:
            return
        decision = queries.decision_for_poll(session, poll_id)
        poll = session.get(DecisionPoll, poll_id)
    if poll is None or decision is None or decision.id is None:
        log.error("Poll %s is closed without a decision; its outcome is not posted", poll_id)
        return
    _redraw(services, poll_id)
    if claim.taken_over:
        try:
            found = _already_posted(services, poll)
        except SlackError as exc:
            # Not knowing, it is not posted again: the claim stays until its lease lapses.
            log.warning("Could not read poll %s's thread: %s", poll_id, exc.code)
            report.outcomes_unposted += 1
            return
        if found:
            _mark_posted(services, poll_id, now)
            follow_through(services, decision.id, now)
            return
    outcome = str(poll.outcome)
    try:
        post_in_thread(
            services,
            poll_id,
            OUTCOME_TEMPLATE,
            # Withdrawn decided nothing: it stays in the thread, the channel is not told.
            broadcast=outcome != PollOutcome.WITHDRAWN,
            tag=MessageTag(MessageEvents.POLL_OUTCOME, {"poll_id": poll_id}),
            outcome=outcome,
            v=decision.votes,
        )
    except SlackError as exc:
        with session_scope(services.engine) as session:
            queries.release_outcome_claim(session, poll_id)
        report.outcomes_unposted += 1
        log.warning(
            "Could not post poll %s's outcome (%s); the next tick tries again", poll_id, exc.code
        )
        return
    _mark_posted(services, poll_id, now)
    report.outcomes_posted += 1
    follow_through(services, decision.id, now)


def _already_posted(services: Services, poll: DecisionPoll) -> bool:
    """A lapsed claim's process may have posted before it died: the thread says.

    A thread reply is not in conversations.history, so the thread itself is read.
    """
    assert poll.channel_id and poll.message_ts
    tagged = services.slack.find_tagged_replies(
        channel=poll.channel_id, thread_ts=poll.message_ts, event_type=MessageEvents.POLL_OUTCOME
    )
    return any(str(t.payload.get("poll_id")) == str(poll.id) for t in tagged)


def _mark_posted(services: Services, poll_id: int, now: datetime) -> None:
    with session_scope(services.engine) as session:
        queries.mark_outcome_posted(session, poll_id, now)
