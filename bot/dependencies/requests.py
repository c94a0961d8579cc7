"""Dependency requests in the provider teams' channels: posted once per revision, kept true in place.

Order of work for every request: claim (insert the (dependency, revision) row, committed) → post
(tagged with the dependency and revision in message metadata) → record (channel, ts, and the
acknowledgement clock). A process that dies between the post and the record leaves a claim;
once it is older than `CLAIM_LEASE`, a later tick looks for the tagged message in the channel
before posting again. A channel the bot cannot post to is recorded in `channel_status` (the
admins' alert reads it) and the claim given back, so a later tick asks again. Requests are not
alerts: no noise budget caps them.

Every tick then re-renders, with one `chat.update` each, the request messages whose fingerprint
(computed by the database from what they show) differs from what they last showed: a state set
in the plan file or by a pulse answer, a replaced revision, an archived dependency.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TypeVar

from bot.business_days import ack_deadline
from bot.dependencies.messages import request_message
from bot.services import Services
from bot.slack.errors import (
    ChannelNotFound,
    InvalidAuth,
    NotInChannel,
    SlackError,
    SlackUnavailable,
)
from bot.slack.gateway import MessageTag
from storage import dependencies as queries
from storage.channels import clear_channel_problem, record_channel_problem
from storage.db import session_scope
from storage.dependencies import RequestView
from storage.models import DependencyState, PlanSettings
from storage.plan import holidays, plan_settings
from templates.ids import MessageEvents

log = logging.getLogger(__name__)

# Longer than any live poster needs between its claim and its post (429 waits included).
CLAIM_LEASE = timedelta(minutes=10)
# How far before a stale claim to look for its message: our clock and Slack's may disagree.
HISTORY_MARGIN = timedelta(hours=1)
CANDIDATES_PER_TICK = 1000
CLAIMS_PER_BATCH = 50
UPDATES_PER_TICK = 500
MAX_CONSECUTIVE_UNAVAILABLE = 5

# Slack's error → channel_status.problem
CHANNEL_PROBLEMS = {
    "not_in_channel": "not_member",
    "channel_not_found": "not_found",
    "is_archived": "archived",
}

T = TypeVar("T")


@dataclass
class RequestReport:
    """What one pass did."""

    claimed: int = 0
    posted: int = 0
    found_in_slack: int = 0  # stale claims whose request was already posted: not re-sent
    updated: int = 0  # request messages re-rendered in place
    channel_problems: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    started: datetime | None = field(default=None, repr=False)

    def moment(self, now: datetime, clock: Callable[[], datetime]) -> datetime:
        """`now` moved on by the time this pass has taken (rate limits), as `clock` measures it."""
        if self.started is None:
            return now
        return now + timedelta(seconds=int((clock() - self.started).total_seconds()))


@dataclass(frozen=True)
class _Plan:
    timezone: str
    ack_within_days: int
    holidays: tuple[tuple[date, date], ...]


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def request_tag(dependency_id: int, revision: int) -> MessageTag:
    return MessageTag(
        MessageEvents.DEPENDENCY_REQUEST, {"dependency_id": dependency_id, "revision": revision}
    )


def _tagged_as(payload: dict[str, object], dependency_id: int, revision: int) -> bool:
    return str(payload.get("dependency_id")) == str(dependency_id) and str(
        payload.get("revision")
    ) == str(revision)


def _load_plan(services: Services) -> _Plan:
    with session_scope(services.engine) as session:
        settings: PlanSettings = plan_settings(session=session)
        days_off = tuple((h.start, h.end) for h in holidays(session=session))
    return _Plan(settings.timezone, settings.ack_within_days, days_off)


def post_dependency_requests(services: Services, now: datetime) -> RequestReport:
    """The tick's step: finish crashed posts, post every request not yet asked, re-sync the rest."""
    report = RequestReport(started=services.clock())
    plan = _load_plan(services)
    broken: set[str] = set()  # channels that refused a post in this pass: not tried again
    _recover_stale_claims(services, now, plan, report, broken)
    with session_scope(services.engine) as session:
        candidates = queries.request_candidates(session=session, limit=CANDIDATES_PER_TICK)
    unavailable_in_a_row = 0
    for batch in _chunks(candidates, CLAIMS_PER_BATCH):
        wanted = [(dep, rev) for dep, rev, channel in batch if channel not in broken]
        with session_scope(services.engine) as session:
            claimed = queries.claim_requests(
                session=session, wanted=wanted, now=report.moment(now, services.clock)
            )
            views = queries.request_views(session=session, request_ids=claimed)
        report.claimed += len(claimed)
        for index, view in enumerate(views):
            try:
                posted = _post(services, view, plan, now, report, broken)
            except InvalidAuth:
                # Nothing will get through with this token: give back what this pass will not post.
                _release(services, views[index + 1 :])
                raise
            if posted is None:
                unavailable_in_a_row += 1
                if unavailable_in_a_row >= MAX_CONSECUTIVE_UNAVAILABLE:
                    _release(services, views[index + 1 :])
                    raise SlackUnavailable("too many failures in a row", method="chat.postMessage")
            else:
                unavailable_in_a_row = 0
    _resync(services, now, plan, report, broken)
    return report


def _release(services: Services, views: Iterable[RequestView]) -> None:
    ids = [v.request.id for v in views if v.request.id is not None]
    if ids:
        with session_scope(services.engine) as session:
            for request_id in ids:
                queries.release_request_claim(session=session, request_id=request_id)


def _post(
    services: Services,
    view: RequestView,
    plan: _Plan,
    now: datetime,
    report: RequestReport,
    broken: set[str],
) -> bool | None:
    """Post one claimed request; True when posted or settled, None when Slack was unavailable."""
    request, dependency, team = view.request, view.dependency, view.provider
    assert request.id is not None and dependency.id is not None
    channel = team.channel_id
    if channel is None or channel in broken:
        _release(services, [view])
        return True
    moment = report.moment(now, services.clock)
    days = (
        dependency.ack_within_days
        if dependency.ack_within_days is not None
        else plan.ack_within_days
    )
    deadline = ack_deadline(moment, days, plan.timezone, plan.holidays)
    rendered = request_message(view, plan_tz=plan.timezone, ack_due_at=deadline)
    try:
        posted = services.slack.post_message(
            channel=channel,
            text=rendered.text,
            blocks=rendered.blocks,
            tag=request_tag(dependency.id, request.revision),
        )
    except (NotInChannel, ChannelNotFound) as exc:
        _channel_refused(services, view, channel, exc, now, report, broken)
        _release(services, [view])
        return True
    except InvalidAuth:
        _release(services, [view])
        raise
    except SlackUnavailable as exc:
        # The post may or may not have reached Slack: the claim stays for recovery.
        report.errors.append(f"{dependency.key}: {exc.code}")
        log.warning("Request for dependency %s not confirmed (%s)", dependency.key, exc.code)
        return None
    except SlackError as exc:
        # Slack refused this message (e.g. invalid_blocks): retrying would fail again.
        log.error("Request for dependency %s refused by Slack: %s", dependency.key, exc.code)
        with session_scope(services.engine) as session:
            queries.mark_request_failed(session=session, request_id=request.id, error=exc.code)
        report.errors.append(f"{dependency.key}: {exc.code}")
        return True
    _record_posted(
        services, view, posted.channel, posted.ts, moment, deadline, view.fingerprint, now
    )
    report.posted += 1
    return True


def _record_posted(
    services: Services,
    view: RequestView,
    channel: str,
    ts: str,
    posted_at: datetime,
    deadline: datetime,
    shown: str | None,
    now: datetime,
) -> None:
    request, dependency = view.request, view.dependency
    assert request.id is not None and dependency.id is not None
    with session_scope(services.engine) as session:
        if queries.mark_request_posted(
            session=session,
            request_id=request.id,
            channel_id=channel,
            message_ts=ts,
            posted_at=posted_at,
            shown=shown,
        ):
            queries.start_ack_clock(
                session=session,
                dependency_id=dependency.id,
                revision=request.revision,
                requested_at=posted_at,
                ack_due_at=deadline,
            )
        clear_channel_problem(session=session, channel_id=channel, now=now)


def _channel_ref(view: RequestView, channel: str) -> str:
    """The channel as the plan names it, when it is the team's (for the report and the log)."""
    team = view.provider
    return team.channel if team.channel and team.channel_id == channel else channel


def _channel_refused(
    services: Services,
    view: RequestView,
    channel: str,
    exc: SlackError,
    now: datetime,
    report: RequestReport,
    broken: set[str],
) -> None:
    ref = _channel_ref(view, channel)
    problem = CHANNEL_PROBLEMS.get(exc.code, "not_found")
    log.warning("Cannot post dependency requests to %s (%s)", ref, exc.code)
    broken.add(channel)
    report.channel_problems.append(f"{ref}: {problem}")
    with session_scope(services.engine) as session:
        record_channel_problem(session=session, channel_id=channel, problem=problem, now=now)


# --- keeping the messages true --------------------------------------------------------------------


def _resync(
    services: Services, now: datetime, plan: _Plan, report: RequestReport, broken: set[str]
) -> None:
    with session_scope(services.engine) as session:
        stale = queries.stale_request_views(session=session, limit=UPDATES_PER_TICK)
    for view in stale:
        _update(services, view, plan.timezone, now, report, broken)


def refresh_requests(services: Services, *, dependency_ids: Iterable[int], now: datetime) -> int:
    """Re-render at once the request messages of dependencies just changed; how many were updated.

    The change is already committed: a message Slack refuses to update is logged and left to
    the next tick's re-sync, which compares what it shows with what it should.
    """
    wanted = sorted(set(dependency_ids))
    if not wanted:
        return 0
    report = RequestReport()
    plan_tz = _load_plan(services).timezone
    broken: set[str] = set()
    for dependency_id in wanted:
        with session_scope(services.engine) as session:
            views = queries.posted_request_views(session=session, dependency_id=dependency_id)
        for view in views:
            if view.request.shown != view.fingerprint:
                _update(services, view, plan_tz, now, report, broken)
    return report.updated


def _update(
    services: Services,
    view: RequestView,
    plan_tz: str,
    now: datetime,
    report: RequestReport,
    broken: set[str],
) -> None:
    request = view.request
    assert request.id is not None and view.dependency.id is not None
    channel, ts = request.channel_id, request.message_ts
    if channel is None or ts is None or channel in broken:
        return
    rendered = request_message(view, plan_tz=plan_tz)
    try:
        services.slack.update_message(
            channel=channel,
            ts=ts,
            text=rendered.text,
            blocks=rendered.blocks,
            tag=request_tag(view.dependency.id, request.revision),
        )
    except (NotInChannel, ChannelNotFound) as exc:
        _channel_refused(services, view, channel, exc, now, report, broken)
        return
    except SlackUnavailable as exc:
        report.errors.append(f"update {view.dependency.key}: {exc.code}")
        log.warning("Could not update the request of %s: %s", view.dependency.key, exc.code)
        return
    except SlackError as exc:
        # The message is gone or cannot be edited (message_not_found…): trying again each tick
        # would fail the same way, so it counts as shown.
        log.warning("Request of %s cannot be updated: %s", view.dependency.key, exc.code)
        report.errors.append(f"update {view.dependency.key}: {exc.code}")
    else:
        report.updated += 1
    with session_scope(services.engine) as session:
        queries.set_request_shown(session=session, request_id=request.id, shown=view.fingerprint)


# --- crash recovery -------------------------------------------------------------------------------


def _recover_stale_claims(
    services: Services, now: datetime, plan: _Plan, report: RequestReport, broken: set[str]
) -> None:
    """Finish posts a crashed process claimed: found in the channel → recorded, else posted once."""
    with session_scope(services.engine) as session:
        stale = queries.stale_request_claims(session=session, claimed_before=now - CLAIM_LEASE)
    for claim in stale:
        assert claim.id is not None
        with session_scope(services.engine) as session:
            if not queries.take_over_request_claim(
                session=session, request_id=claim.id, claimed_at=claim.claimed_at, now=now
            ):
                continue
            views = queries.request_views(session=session, request_ids=[claim.id])
        if views:
            _recover(services, claim.claimed_at, views[0], plan, now, report, broken)


def _recover(
    services: Services,
    claimed_at: datetime,
    view: RequestView,
    plan: _Plan,
    now: datetime,
    report: RequestReport,
    broken: set[str],
) -> None:
    dependency, request = view.dependency, view.request
    assert dependency.id is not None
    channel = view.provider.channel_id
    if channel is None or channel in broken:
        _release(services, [view])
        return
    try:
        tagged = services.slack.find_tagged_messages(
            channel=channel,
            event_type=MessageEvents.DEPENDENCY_REQUEST,
            oldest=claimed_at - HISTORY_MARGIN,
        )
    except (NotInChannel, ChannelNotFound) as exc:
        _channel_refused(services, view, channel, exc, now, report, broken)
        _release(services, [view])
        return
    except SlackError as exc:
        # The renewed claim waits another lease: never post without knowing what Slack has.
        log.warning("Cannot check %s for a crashed request post: %s", channel, exc.code)
        report.errors.append(f"recovery {dependency.key}: {exc.code}")
        return
    found = next(
        (m for m in tagged if _tagged_as(m.payload, dependency.id, request.revision)), None
    )
    if found is not None:
        days = dependency.ack_within_days
        deadline = ack_deadline(
            claimed_at,
            days if days is not None else plan.ack_within_days,
            plan.timezone,
            plan.holidays,
        )
        # shown=None: the next re-sync renders it once more, whatever the crash left in it.
        _record_posted(services, view, channel, found.ts, claimed_at, deadline, None, now)
        report.found_in_slack += 1
        return
    still_wanted = (
        not view.replaced
        and not dependency.archived
        and dependency.state != DependencyState.DELIVERED
    )
    if still_wanted:
        _post(services, view, plan, now, report, broken)
    else:
        _release(services, [view])
