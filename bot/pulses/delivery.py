"""The pulse fan-out: claim each due pulse exactly once, post one DM per owner, recover after crashes.

Order of work for every prompt: claim (insert the pulse row, committed) → post (tagged with the
pulse ids in message metadata) → mark sent (channel, ts). A process that dies between the post
and the mark leaves a claimed row; once that claim is older than `CLAIM_LEASE`, a later tick looks
for the tagged message in the owner's DM before posting again, so nobody gets the prompt twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby
from typing import TypeVar

from bot.health import plan_today
from bot.pulses import messages
from bot.pulses.schedule import DueCalendar, Period, PromptTiming
from bot.services import Services
from bot.slack.errors import (
    AccountInactive,
    InvalidAuth,
    SlackError,
    SlackUnavailable,
    UserNotFound,
)
from bot.slack.gateway import MessageTag
from bot.work.progress import initiative_work
from storage import pulses as queries
from storage.db import session_scope
from storage.models import Initiative, Objective, Person, PulseRequest
from storage.people import person_by_id
from storage.plan import (
    holidays,
    initiatives_by_ids,
    objectives_by_ids,
    plan_settings,
    plan_timezone,
)
from templates.ids import MessageEvents

log = logging.getLogger(__name__)

# Longer than any live sender needs between its claim and its post (a batch of posts, 429 waits
# included), so a slow replica is never mistaken for a crashed one.
CLAIM_LEASE = timedelta(minutes=10)
OWNERS_PER_BATCH = 100
# After this many Slack outages in a row the fan-out stops; the next tick starts over.
MAX_CONSECUTIVE_UNAVAILABLE = 5

T = TypeVar("T")


@dataclass
class DeliveryReport:
    """What one fan-out did, counted in pulses (several pulses can share one message)."""

    claimed: int = 0
    sent: int = 0
    messages: int = 0
    failed: int = 0
    found_in_slack: int = 0  # stale claims whose prompt was already posted: not re-sent
    expired: int = 0  # stale claims whose period ended before anyone could post them
    errors: list[str] = field(default_factory=list)
    started: datetime | None = field(default=None, repr=False)  # on `clock`, when it began

    def moment(self, now: datetime, clock: Callable[[], datetime]) -> datetime:
        """`now` moved on by the time this fan-out has taken so far, as `clock` measures it.

        A long fan-out (rate limits) claims and posts its last batch minutes after `now`; claim
        and sent stamps must say when that really happened, or another replica would take a
        fresh claim for a stale one, and reminders would count from too early. Only the clock's
        progress counts, so `now` may be any moment (a test's, the demo's).
        """
        if self.started is None:
            return now
        # Whole seconds: enough for leases and reminders, and `now` itself in a quick fan-out.
        return now + timedelta(seconds=int((clock() - self.started).total_seconds()))


@dataclass
class _Context:
    """Rows a batch of prompts needs for rendering, loaded once instead of per message."""

    owners: dict[int, Person]
    initiatives: dict[int, Initiative]
    objectives: dict[int, Objective]


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _tag(pulse_ids: Sequence[int]) -> MessageTag:
    # A string, not a list: the simplest metadata value Slack accepts everywhere.
    return MessageTag(
        MessageEvents.PULSE_PROMPT, {"pulse_ids": ",".join(str(i) for i in pulse_ids)}
    )


def tagged_pulse_ids(payload: dict[str, object]) -> set[int]:
    """The pulse ids named by a prompt's metadata payload (ignores anything malformed)."""
    raw = str(payload.get("pulse_ids", ""))
    return {int(part) for part in raw.split(",") if part.strip().isdigit()}


def deliver_pulses(services: Services, now: datetime) -> DeliveryReport:
    """Send every pulse due at `now` that nobody has claimed yet; finish crashed deliveries first."""
    report = DeliveryReport(started=services.clock())
    recover_stale_claims(services, now, report)
    rows, context = _due_pulses(services, now)
    by_owner = [list(group) for _, group in groupby(rows, key=lambda row: row["owner_id"])]
    for batch in _chunks(by_owner, OWNERS_PER_BATCH):
        claimed_at = report.moment(now, services.clock)
        with session_scope(services.engine) as session:
            claimed = queries.claim_pulses(
                session=session,
                rows=[
                    {**row, "claimed_at": claimed_at} for owner_rows in batch for row in owner_rows
                ],
            )
        report.claimed += len(claimed)
        _post_prompts(services, claimed, context, now, report)
    return report


def _due_pulses(services: Services, now: datetime) -> tuple[list[dict[str, object]], _Context]:
    """Rows to claim (owner by owner), for pulses due now that have no row yet.

    Most ticks find every current period already has its row: the schedule reads plain columns,
    and only the initiatives still to be prompted are loaded as ORM rows, for rendering.
    """
    with session_scope(services.engine) as session:
        calendar = DueCalendar(
            plan_settings(session=session),
            holidays(session=session),
            now,
            PromptTiming.from_settings(services.settings),
        )
        due: list[tuple[queries.PulseCandidate, Period]] = []
        for candidate in queries.pulse_candidate_columns(session=session):
            if not candidate.slack_id:
                continue  # as `due_period`: an empty Slack ID cannot be messaged
            period = calendar.due(
                initiative_key=candidate.initiative_key,
                pulse=candidate.pulse,
                active_since=candidate.active_since,
                owner_tz=candidate.owner_tz,
                slack_linked_at=candidate.slack_linked_at,
                away_from=candidate.away_from,
                away_until=candidate.away_until,
            )
            if period is not None:
                due.append((candidate, period))
        existing = queries.existing_pulse_keys(
            session=session, periods={period.key for _, period in due}
        )
        due = [(c, period) for c, period in due if (c.initiative_id, period.key) not in existing]
        loaded = queries.prompt_rows(
            session=session, initiative_ids=[c.initiative_id for c, _ in due]
        )
        # Changed since the first read (deleted, or handed to another owner): the next tick
        # reads it afresh, and the prompt never goes to an owner it was not worked out for.
        due = [
            (c, period)
            for c, period in due
            if c.initiative_id in loaded and loaded[c.initiative_id][1].id == c.owner_id
        ]
        objectives = objectives_by_ids(
            session=session,
            objective_ids=[
                objective_id
                for initiative, _ in loaded.values()
                if (objective_id := initiative.objective_id) is not None
            ],
        )
    rows: list[dict[str, object]] = [
        {
            "initiative_id": candidate.initiative_id,
            "owner_id": candidate.owner_id,
            "period": period.key,
            "due_at": period.start,
            "next_due_at": period.end,
        }
        for candidate, period in due
    ]
    context = _Context(
        owners={owner.id: owner for _, owner in loaded.values() if owner.id is not None},
        initiatives={
            initiative_id: initiative for initiative_id, (initiative, _) in loaded.items()
        },
        objectives=objectives,
    )
    return rows, context


def _post_prompts(
    services: Services,
    pulses: Sequence[PulseRequest],
    context: _Context,
    now: datetime,
    report: DeliveryReport,
) -> None:
    """Post claimed pulses, one message per owner (split only past Block Kit's limits)."""
    messages_to_send: list[tuple[Person, list[PulseRequest]]] = []
    ordered = sorted(pulses, key=lambda p: (p.owner_id, p.id or 0))
    for owner_id, group in groupby(ordered, key=lambda p: p.owner_id):
        for chunk in _chunks(list(group), messages.MAX_PULSES_PER_MESSAGE):
            messages_to_send.append((context.owners[owner_id], list(chunk)))

    with session_scope(services.engine) as session:
        work = initiative_work(
            session,
            {p.initiative_id for p in pulses},
            now,
            plan_today(now, plan_timezone(session=session)),
        )
    posted: list[queries.SentPrompt] = []
    unavailable_in_a_row = 0
    try:
        for index, (owner, chunk) in enumerate(messages_to_send):
            ids = [p.id for p in chunk if p.id is not None]
            sections = messages.new_prompt_sections(
                chunk, context.initiatives, context.objectives, now, work
            )
            rendered = messages.render_prompt(sections)
            try:
                result = services.slack.post_message(
                    channel=str(owner.slack_id),
                    text=rendered.text,
                    blocks=rendered.blocks,
                    tag=_tag(ids),
                )
            except (UserNotFound, AccountInactive) as exc:
                _record_unreachable(services, owner, chunk, exc.code)
                report.failed += len(ids)
                continue
            except InvalidAuth:
                # Nothing can be posted with this token: free every claim not yet posted.
                _release(services, [p for _, c in messages_to_send[index:] for p in c])
                raise
            except SlackUnavailable as exc:
                # The post may or may not have reached Slack: the claim stays for recovery.
                unavailable_in_a_row += 1
                report.errors.append(f"{owner.slack_id}: {exc.code}")
                log.warning("Pulse to %s not confirmed (%s)", owner.slack_id, exc.code)
                if unavailable_in_a_row >= MAX_CONSECUTIVE_UNAVAILABLE:
                    _release(services, [p for _, c in messages_to_send[index + 1 :] for p in c])
                    raise
                continue
            except SlackError as exc:
                # Slack refused this message (e.g. invalid_blocks): retrying would fail again.
                log.error("Pulse to %s refused by Slack: %s", owner.slack_id, exc.code)
                with session_scope(services.engine) as session:
                    queries.mark_failed(session=session, pulse_ids=ids, error=exc.code)
                report.failed += len(ids)
                continue
            unavailable_in_a_row = 0
            posted.append(
                queries.SentPrompt(
                    ids, result.channel, result.ts, report.moment(now, services.clock)
                )
            )
            report.sent += len(ids)
            report.messages += 1
    except Exception:
        _mark_posted(services, posted)
        raise
    _mark_posted(services, posted)


def _mark_posted(services: Services, posted: Sequence[queries.SentPrompt]) -> None:
    if posted:
        with session_scope(services.engine) as session:
            queries.mark_sent(session=session, sent=posted)


def _release(services: Services, pulses: Sequence[PulseRequest]) -> None:
    ids = [p.id for p in pulses if p.id is not None]
    if ids:
        with session_scope(services.engine) as session:
            queries.release_claims(session=session, pulse_ids=ids)


def _record_unreachable(
    services: Services, owner: Person, pulses: Sequence[PulseRequest], code: str
) -> None:
    """Mark the owner's pulses failed; detection (bot/alerts) tells the admins, once while it lasts."""
    ids = [p.id for p in pulses if p.id is not None]
    log.warning("Pulse owner %s unreachable: %s", owner.slack_id, code)
    with session_scope(services.engine) as session:
        queries.mark_failed(session=session, pulse_ids=ids, error=code)


# --- crash recovery -----------------------------------------------------------------------------


def recover_stale_claims(services: Services, now: datetime, report: DeliveryReport) -> None:
    """Finish deliveries a crashed process claimed: found in Slack → recorded, else sent once."""
    with session_scope(services.engine) as session:
        stale = queries.stale_claims(session=session, claimed_before=now - CLAIM_LEASE)
    for owner_id, group in groupby(stale, key=lambda p: p.owner_id):
        _recover_owner(services, owner_id, list(group), now, report)


def _recover_owner(
    services: Services,
    owner_id: int,
    stale: list[PulseRequest],
    now: datetime,
    report: DeliveryReport,
) -> None:
    with session_scope(services.engine) as session:
        taken = [
            p
            for p in stale
            if p.id is not None
            and queries.take_over_claim(
                session=session, pulse_id=p.id, claimed_at=p.claimed_at, now=now
            )
        ]
        owner = person_by_id(session=session, person_id=owner_id)
        channel = queries.last_dm_channel(session=session, owner_id=owner_id)
        initiatives = initiatives_by_ids(
            session=session, initiative_ids=[p.initiative_id for p in taken]
        )
        objectives = objectives_by_ids(
            session=session,
            objective_ids=[i.objective_id for i in initiatives.values() if i.objective_id],
        )
    if not taken or owner is None or not owner.slack_id:
        return
    try:
        # No earlier prompt recorded its DM (the crash hit the owner's very first one): ask
        # Slack for the DM's ID, since history cannot be read by user ID.
        channel = channel or services.slack.open_dm(owner.slack_id)
        # The whole DM, not "since the claim": that would compare our clock with Slack's, and
        # a DM with the bot holds a few messages a week, so recovery (rare) reads little.
        tagged = services.slack.find_tagged_messages(
            channel=channel, event_type=MessageEvents.PULSE_PROMPT
        )
    except SlackError as exc:
        # Renewed claims wait another lease; never post without knowing what Slack has. Once
        # the period is over there is nothing left to deliver: close them as failed.
        log.warning("Cannot check %s's DM for crashed pulses: %s", owner.slack_id, exc.code)
        report.errors.append(f"recovery {owner.slack_id}: {exc.code}")
        over = [p.id for p in taken if p.id and p.next_due_at and p.next_due_at <= now]
        if over:
            with session_scope(services.engine) as session:
                queries.mark_failed(
                    session=session, pulse_ids=over, error=f"unverified after a crash: {exc.code}"
                )
            report.expired += len(over)
        return
    found: dict[int, str] = {}
    for message in tagged:
        for pulse_id in tagged_pulse_ids(message.payload):
            found.setdefault(pulse_id, message.ts)
    remaining = [p for p in taken if p.id not in found]
    expired = [p for p in remaining if p.next_due_at is not None and p.next_due_at <= now]
    current = [p for p in remaining if p not in expired]
    with session_scope(services.engine) as session:
        # The post followed its claim within moments; the claim time is on our own clock.
        queries.mark_sent(
            session=session,
            sent=[
                queries.SentPrompt([p.id], channel, found[p.id], p.claimed_at or now)
                for p in taken
                if p.id is not None and p.id in found
            ],
        )
        report.found_in_slack += sum(1 for p in taken if p.id in found)
        if expired:
            queries.mark_failed(
                session=session,
                pulse_ids=[p.id for p in expired if p.id is not None],
                error="period ended before the prompt could be delivered",
            )
            report.expired += len(expired)
    if current:
        context = _Context(owners={owner_id: owner}, initiatives=initiatives, objectives=objectives)
        _post_prompts(services, current, context, now, report)
