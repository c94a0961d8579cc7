"""What must hold in the database, and between it and Slack, whatever crashed when: typed problems.

A process may die between any two statements (SIGKILL, a lost machine); the claim rows and the
tagged messages let the next one finish the work. These checks say whether it did. Some hold at
every instant (a claim marked sent has its message, nothing is posted twice, a closed poll has its
decision, the audit log matches the plan); the rest once every claim has run to its end
(`settled`: no claim left half done, no tagged message that no claim records).

Slack's side comes in as `TaggedPost`s, read by the caller (the stand-in's messages in the
tests), so the checks need no Slack client.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from bot.problems import Problem, ProblemCode, problem
from storage.models import (
    Alert,
    AuditEntry,
    Decision,
    DecisionOption,
    DecisionPoll,
    Dependency,
    DependencyRequest,
    DigestDelivery,
    Milestone,
    PollFraming,
    PollState,
    PulseRequest,
    PulseState,
)
from templates.ids import MessageEvents


class InvariantProblem(ProblemCode):
    # field: the claim ("pulse_request:3"); kind: its MessageEvents value
    MESSAGE_MISSING = "invariant.message_missing"  # channel, ts
    POSTED_TWICE = "invariant.posted_twice"  # count
    UNRECORDED_POST = "invariant.unrecorded_post"  # channel, ts: no claim records this message
    UNFINISHED_CLAIM = "invariant.unfinished_claim"  # claimed, never posted nor given up
    # field: the poll ("decision_poll:4")
    DECISIONS_OF_CLOSED_POLL = "invariant.decisions_of_closed_poll"  # count (wanted 1)
    DECISION_OF_OPEN_POLL = "invariant.decision_of_open_poll"
    OUTCOME_DIFFERS = "invariant.outcome_differs"  # outcome, option
    # field: the audited item ("milestone:beta-ready")
    CHANGE_AUDITED_TWICE = "invariant.change_audited_twice"  # actor, action, count
    DECISION_NOT_AUDITED = "invariant.decision_not_audited"  # count of "decide" entries (wanted 1)
    AUDIT_DIFFERS = "invariant.audit_differs"  # name, audited, stored
    CREATED_TWICE = "invariant.created_twice"  # count of "create" entries


@dataclass(frozen=True)
class TaggedPost:
    """One of the bot's messages in Slack that carries a PlanPulse tag (`metadata`)."""

    channel: str
    ts: str
    event_type: str
    payload: dict[str, Any]
    thread_ts: str | None = None


@dataclass
class InvariantReport:
    problems: list[Problem] = field(default_factory=list)
    claims_checked: int = 0
    posts_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


# Columns the audit log must end on, per entity: the newest entry naming one is its stored value.
AUDITED = {"milestone": ("due", "status"), "dependency": ("needed_by",)}


def _ids(raw: object) -> set[str]:
    return {part.strip() for part in str(raw or "").split(",") if part.strip()}


def _subjects(post: TaggedPost) -> list[str]:
    """The claims a tagged message stands for ("pulse_request:3"), as the tag names them."""
    payload, kind = post.payload, post.event_type
    if kind == MessageEvents.PULSE_PROMPT:
        return [f"pulse_request:{i}" for i in sorted(_ids(payload.get("pulse_ids")))]
    if kind == MessageEvents.DEPENDENCY_REQUEST:
        return [f"dependency:{payload.get('dependency_id')}@{payload.get('revision')}"]
    if kind == MessageEvents.ALERT:
        if payload.get("summary") == "yes":  # a summary is redrawn with whatever it lists now
            return [f"alert_summary:{post.channel}:{post.ts}"]
        return [f"alert:{i}" for i in sorted(_ids(payload.get("alert_ids")))]
    if kind == MessageEvents.POLL:
        return [f"decision_poll:{payload.get('poll_id')}"]
    if kind == MessageEvents.POLL_OUTCOME:
        return [f"poll_outcome:{payload.get('poll_id')}"]
    if kind == MessageEvents.DIGEST:
        return [f"digest_delivery:{payload.get('digest_id')}"]
    if kind == MessageEvents.DIGEST_PART:
        return [f"digest_part:{payload.get('digest_id')}#{payload.get('part')}"]
    if kind == MessageEvents.FRAMING:
        return [f"poll_framing:{payload.get('framing_id')}"]
    return []


@dataclass(frozen=True)
class _Claim:
    """A row that says its message was posted, at (channel, ts), or still has to be."""

    subject: str
    kind: str
    channel: str | None
    ts: str | None
    thread_ts: str | None = None
    unfinished: bool = False  # claimed, and neither posted nor given up
    # False for a digest's thread reply: a KPI chart is an untagged file, so a part counted
    # as posted need not have a tagged message (but a tagged one must be counted).
    message_expected: bool = True


def _claims(session: Session) -> list[_Claim]:
    claims: list[_Claim] = []
    for pulse in session.exec(select(PulseRequest)):
        claims.append(
            _Claim(
                f"pulse_request:{pulse.id}",
                MessageEvents.PULSE_PROMPT,
                pulse.channel_id,
                pulse.message_ts if pulse.state != PulseState.FAILED else None,
                unfinished=pulse.state == PulseState.CLAIMED,
            )
        )
    for request in session.exec(select(DependencyRequest)):
        claims.append(
            _Claim(
                f"dependency:{request.dependency_id}@{request.revision}",
                MessageEvents.DEPENDENCY_REQUEST,
                request.channel_id,
                request.message_ts,
                unfinished=request.posted_at is None and request.error is None,
            )
        )
    for alert in session.exec(select(Alert)):
        claims.append(
            _Claim(
                f"alert:{alert.id}" if not alert.in_summary else f"alert_in_summary:{alert.id}",
                MessageEvents.ALERT,
                alert.channel_id,
                alert.message_ts,
                unfinished=alert.claimed_at is not None and alert.posted_at is None,
            )
        )
    for poll in session.exec(select(DecisionPoll)):
        claims.append(
            _Claim(
                f"decision_poll:{poll.id}",
                MessageEvents.POLL,
                poll.channel_id,
                poll.message_ts,
                unfinished=poll.claimed_at is not None and poll.message_ts is None,
            )
        )
        if poll.state == PollState.CLOSED and poll.message_ts is not None:
            claims.append(
                _Claim(
                    f"poll_outcome:{poll.id}",
                    MessageEvents.POLL_OUTCOME,
                    poll.channel_id,
                    None,
                    thread_ts=poll.message_ts,
                    unfinished=poll.outcome_posted_at is None,
                )
            )
            if poll.outcome_posted_at is not None:
                claims[-1] = _Claim(
                    f"poll_outcome:{poll.id}",
                    MessageEvents.POLL_OUTCOME,
                    poll.channel_id,
                    "*",  # a thread reply: its ts is not kept, the thread is searched
                    thread_ts=poll.message_ts,
                )
    for digest in session.exec(select(DigestDelivery)):
        claims.append(
            _Claim(
                f"digest_delivery:{digest.id}",
                MessageEvents.DIGEST,
                digest.channel_id,
                digest.message_ts,
                unfinished=digest.finished_at is None and digest.error is None,
            )
        )
        claims.extend(
            _Claim(
                f"digest_part:{digest.id}#{part}",
                MessageEvents.DIGEST_PART,
                digest.channel_id,
                "*",
                thread_ts=digest.message_ts,
                message_expected=False,
            )
            for part in range(digest.thread_posted)
        )
    for framing in session.exec(select(PollFraming)):
        claims.append(
            _Claim(
                f"poll_framing:{framing.id}",
                MessageEvents.FRAMING,
                framing.channel_id,
                framing.message_ts,
                unfinished=framing.claimed_at is not None
                and framing.asked_at is None
                and framing.settled_at is None
                and framing.poll_id is None,
            )
        )
    return claims


@dataclass
class ClaimedPlaces:
    """Where the claims say their messages are: what a checker must read back from Slack."""

    channels: dict[str, set[str]] = field(default_factory=dict)  # event type -> channels
    threads: set[tuple[str, str, str]] = field(default_factory=set)  # (channel, thread, type)


def claimed_places(session: Session) -> ClaimedPlaces:
    places = ClaimedPlaces()
    for claim in _claims(session):
        if claim.channel is None or claim.ts is None:
            continue
        if claim.thread_ts is not None:
            places.threads.add((claim.channel, claim.thread_ts, claim.kind))
        else:
            places.channels.setdefault(claim.kind, set()).add(claim.channel)
    return places


def check_claims_against_slack(
    session: Session, posts: Sequence[TaggedPost], *, settled: bool
) -> InvariantReport:
    """Every claim marked posted has its tagged message; no claim's message is in Slack twice.

    `settled`: every claim has run to its end (a restart completed), so none may be left half
    done, and every tagged message must be the one its claim records.
    """
    report = InvariantReport(posts_checked=len(posts))
    by_subject: dict[str, list[TaggedPost]] = defaultdict(list)
    for post in posts:
        for subject in _subjects(post):
            by_subject[subject].append(post)
    for subject, found in by_subject.items():
        if len(found) > 1 and not subject.startswith("alert_summary:"):
            report.problems.append(
                problem(
                    InvariantProblem.POSTED_TWICE,
                    subject,
                    kind=found[0].event_type,
                    count=len(found),
                )
            )
    recorded: set[str] = set()
    for claim in _claims(session):
        report.claims_checked += 1
        if settled and claim.unfinished:
            report.problems.append(
                problem(InvariantProblem.UNFINISHED_CLAIM, claim.subject, kind=claim.kind)
            )
        if claim.ts is None:
            continue
        if claim.subject.startswith("alert_in_summary:"):
            # Listed in a summary: the summary message at (channel, ts) must be there.
            matches = [
                p
                for p in posts
                if p.event_type == claim.kind and (p.channel, p.ts) == (claim.channel, claim.ts)
            ]
            recorded.add(f"alert_summary:{claim.channel}:{claim.ts}")
        else:
            matches = [
                p
                for p in by_subject.get(claim.subject, [])
                if p.channel == claim.channel
                and (p.ts == claim.ts if claim.ts != "*" else p.thread_ts == claim.thread_ts)
            ]
            recorded.add(claim.subject)
        if not matches and claim.message_expected:
            report.problems.append(
                problem(
                    InvariantProblem.MESSAGE_MISSING,
                    claim.subject,
                    kind=claim.kind,
                    channel=claim.channel,
                    ts=claim.ts,
                )
            )
    if settled:
        for subject, found in by_subject.items():
            if subject not in recorded:
                post = found[0]
                report.problems.append(
                    problem(
                        InvariantProblem.UNRECORDED_POST,
                        subject,
                        kind=post.event_type,
                        channel=post.channel,
                        ts=post.ts,
                    )
                )
    return report


def check_decisions(session: Session) -> list[Problem]:
    """A closed poll has exactly one decision, with its outcome; an open one has none."""
    problems: list[Problem] = []
    decisions: dict[int, list[Decision]] = defaultdict(list)
    for decision in session.exec(select(Decision).where(col(Decision.poll_id).is_not(None))):
        decisions[int(decision.poll_id or 0)].append(decision)
    for poll in session.exec(select(DecisionPoll)):
        found = decisions.get(int(poll.id or 0), [])
        subject = f"decision_poll:{poll.id}"
        if poll.state == PollState.CLOSED:
            if len(found) != 1:
                problems.append(
                    problem(InvariantProblem.DECISIONS_OF_CLOSED_POLL, subject, count=len(found))
                )
            elif found[0].option != poll.outcome:
                problems.append(
                    problem(
                        InvariantProblem.OUTCOME_DIFFERS,
                        subject,
                        outcome=poll.outcome,
                        option=found[0].option,
                    )
                )
        elif found:
            problems.append(problem(InvariantProblem.DECISION_OF_OPEN_POLL, subject))
    return problems


def _stored(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value


def check_audit(session: Session) -> list[Problem]:
    """The audit log matches the plan: each change logged once, and the newest entry is the truth.

    - a decision's change (actor `decision:<poll>`) is logged once per item and action: applying
      an outcome twice would log it twice;
    - every decision has one `decide` entry, and a delay that moved the date one `move_due`;
    - an item is created once (a re-run import changes nothing it already wrote);
    - for the columns in AUDITED, the newest entry that names one holds the stored value.
    """
    problems: list[Problem] = []
    entries = list(session.exec(select(AuditEntry).order_by(col(AuditEntry.id))))
    by_change = Counter(
        (e.entity, e.entity_key, e.actor, e.action)
        for e in entries
        if e.actor.startswith("decision:")
    )
    for (entity, key, actor, action), count in by_change.items():
        if count > 1:
            problems.append(
                problem(
                    InvariantProblem.CHANGE_AUDITED_TWICE,
                    f"{entity}:{key}",
                    actor=actor,
                    action=action,
                    count=count,
                )
            )
    created = Counter((e.entity, e.entity_key) for e in entries if e.action == "create")
    for (entity, key), count in created.items():
        if count > 1:
            problems.append(problem(InvariantProblem.CREATED_TWICE, f"{entity}:{key}", count=count))
    milestones = {m.id: m for m in session.exec(select(Milestone))}
    for decision in session.exec(select(Decision)):
        actor = f"decision:{decision.poll_id}" if decision.poll_id is not None else "system"
        decides = [e for e in entries if e.actor == actor and e.action == "decide"]
        if decision.poll_id is not None and len(decides) != 1:
            problems.append(
                problem(
                    InvariantProblem.DECISION_NOT_AUDITED,
                    f"decision_poll:{decision.poll_id}",
                    count=len(decides),
                )
            )
        milestone = milestones.get(decision.milestone_id)
        if decision.option == DecisionOption.DELAY and decision.new_due and milestone:
            moves = [
                e
                for e in entries
                if e.actor == actor and e.action == "move_due" and e.entity_key == milestone.key
            ]
            if len(moves) != 1:
                problems.append(
                    problem(
                        InvariantProblem.DECISION_NOT_AUDITED,
                        f"milestone:{milestone.key}",
                        count=len(moves),
                    )
                )
    rows: dict[str, Iterable[Any]] = {
        "milestone": milestones.values(),
        "dependency": session.exec(select(Dependency)),
    }
    newest: dict[tuple[str, str, str], object] = {}
    for entry in entries:
        for name in AUDITED.get(entry.entity, ()):
            if entry.after is not None and name in entry.after:
                newest[(entry.entity, entry.entity_key, name)] = entry.after[name]
    for entity, items in rows.items():
        for item in items:
            for name in AUDITED[entity]:
                audited = newest.get((entity, item.key, name))
                stored = _stored(getattr(item, name))
                if (entity, item.key, name) in newest and audited != stored:
                    problems.append(
                        problem(
                            InvariantProblem.AUDIT_DIFFERS,
                            f"{entity}:{item.key}",
                            name=name,
                            audited=audited,
                            stored=stored,
                        )
                    )
    return problems


def check_invariants(
    session: Session, posts: Sequence[TaggedPost], *, settled: bool
) -> InvariantReport:
    """Every check above, in one report."""
    report = check_claims_against_slack(session, posts, settled=settled)
    report.problems.extend(check_decisions(session))
    report.problems.extend(check_audit(session))
    return report
