"""The people directory: plan people ↔ Slack users (ID, name, timezone, active) and plan channels ↔ IDs.

One paginated `users.list` per sync (Tier 2, so never `users.info` per person per message), on
start-up and once a day from the tick. What it finds (a deactivated owner, a channel the bot
cannot post to) is stored; detection (bot/alerts) tells the admins, once while it lasts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from bot.services import Services
from bot.slack.errors import UserNotFound
from bot.slack.gateway import SlackChannel, SlackUser
from storage import people as queries
from storage.channels import forget_channels_except, save_channel_status
from storage.db import session_scope
from storage.models import Person
from storage.plan import (
    active_initiatives_by_owner,
    plan_settings,
    set_team_channel_id,
    teams_with_channels,
)
from templates import render_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChannelProblem:
    ref: str  # as written in the plan: C… or #name
    problem: str  # not_found | archived | not_member
    channel_id: str | None
    name: str
    used_for: tuple[str, ...]


@dataclass(frozen=True)
class UnreachableOwner:
    person_id: int
    name: str
    email: str | None
    reason: str  # deactivated | not_in_slack
    initiatives: tuple[tuple[str, str], ...]  # (key, title)


@dataclass
class DirectoryReport:
    linked: int = 0  # plan people newly matched to a Slack ID by e-mail
    refreshed: int = 0  # plan people whose name / timezone / active flag was refreshed
    deactivated: list[str] = field(default_factory=list)
    not_in_slack: list[str] = field(default_factory=list)
    unreachable_owners: list[UnreachableOwner] = field(default_factory=list)
    channel_problems: list[ChannelProblem] = field(default_factory=list)

    def summary(self) -> str:
        return render_text("text/directory_summary.txt.j2", report=self).strip()


def sync_people(services: Services, now: datetime) -> DirectoryReport:
    """Refresh every plan person from Slack, check the plan's channels, tell admins what is new."""
    users = services.slack.list_users()
    report = DirectoryReport()
    with session_scope(services.engine) as session:
        unreachable = _match_people(session, users, report, now)
        owners = _unreachable_owners(session, unreachable)
        channel_refs = _channel_refs(session)
    channels = services.slack.list_channels(include_archived=True) if channel_refs else []
    with session_scope(services.engine) as session:
        report.channel_problems = _check_channels(session, channel_refs, channels, now)
    report.unreachable_owners = owners
    if report.deactivated or report.not_in_slack or report.channel_problems:
        log.warning("People directory: %s", report.summary())
    return report


def resolve_new_people(services: Services, now: datetime, *, limit: int = 20) -> int:
    """Link people imported since the last sync, by `users.lookupByEmail` (Tier 3), each once.

    Cheap enough for every tick: one query when nobody is new. Someone Slack does not know is
    left to the daily `sync_people`, which also reports them if they own an initiative.
    """
    with session_scope(services.engine) as session:
        pending = [
            (p.id, p.email)
            for p in queries.never_looked_up(session=session, limit=limit)
            if p.id is not None
        ]
    linked = 0
    for person_id, email in pending:
        try:
            user: SlackUser | None = services.slack.lookup_user_by_email(str(email))
        except UserNotFound:
            user = None
        with session_scope(services.engine) as session:
            person = queries.person_by_id(session=session, person_id=person_id)
            if person is None or person.slack_id is not None:
                continue
            taken = user is not None and queries.person_by_slack_id(
                session=session, slack_id=user.id
            )
            if user is None or taken:
                queries.mark_looked_up(session=session, person=person, now=now)
                continue
            _link(session, person, user, now)
            linked += 1
    return linked


def resolve_channel(channels: list[SlackChannel], ref: str) -> SlackChannel | None:
    """The channel a plan names, by ID (`C…`) or `#name`."""
    if ref.startswith("#"):
        return next((c for c in channels if c.name == ref[1:]), None)
    return next((c for c in channels if c.id == ref), None)


# --- people ---------------------------------------------------------------------------------


def _link(session: Session, person: Person, user: SlackUser, now: datetime) -> None:
    """Take the Slack ID, name, timezone and active flag from the person's Slack profile."""
    queries.apply_slack_profile(
        session=session,
        person=person,
        slack_id=user.id,
        name=user.real_name or user.name,
        tz=user.tz,
        active=not user.deleted,
        email=user.email,
        now=now,
    )


def _match_people(
    session: Session, users: list[SlackUser], report: DirectoryReport, now: datetime
) -> dict[int, tuple[Person, str]]:
    """Link and refresh every plan person; those Slack cannot reach, with the reason."""
    unreachable: dict[int, tuple[Person, str]] = {}
    by_id = {u.id: u for u in users}
    by_email = {u.email.lower(): u for u in users if u.email}
    people = queries.all_people(session=session)
    taken = {p.slack_id for p in people if p.slack_id}
    for person in people:
        user = by_id.get(person.slack_id) if person.slack_id else None
        if user is None and person.slack_id is None and person.email:
            user = by_email.get(person.email.lower())
            if user is not None and user.id in taken:
                log.warning("Slack user %s is already linked to another plan person", user.id)
                user = None
            if user is not None:
                taken.add(user.id)
                report.linked += 1
        if user is None:
            # Remembered as asked: detection reads it as "not in Slack" for an owner.
            queries.mark_looked_up(session=session, person=person, now=now)
            report.not_in_slack.append(_label(person))
            if person.id is not None:
                unreachable[person.id] = (person, "not_in_slack")
            continue
        _link(session, person, user, now)
        report.refreshed += 1
        if user.deleted:
            report.deactivated.append(_label(person))
            if person.id is not None:
                unreachable[person.id] = (person, "deactivated")
    return unreachable


def _unreachable_owners(
    session: Session, unreachable: dict[int, tuple[Person, str]]
) -> list[UnreachableOwner]:
    """Only unreachable people who own active initiatives matter to admins."""
    owned = active_initiatives_by_owner(session=session, owner_ids=unreachable)
    return [
        UnreachableOwner(
            person_id=person_id,
            name=_label(unreachable[person_id][0]),
            email=unreachable[person_id][0].email,
            reason=unreachable[person_id][1],
            initiatives=tuple((i.key, i.title) for i in initiatives),
        )
        for person_id, initiatives in sorted(owned.items())
    ]


def _label(person: Person) -> str:
    return person.name or person.email or person.slack_id or f"person {person.id}"


# --- channels -------------------------------------------------------------------------------


def _channel_refs(session: Session) -> dict[str, list[str]]:
    """Every channel the plan names → what it is used for."""
    refs: dict[str, list[str]] = {}
    for team in teams_with_channels(session=session):
        refs.setdefault(str(team.channel), []).append(f"team {team.key}")
    settings = plan_settings(session=session)
    if settings.decisions_channel:
        refs.setdefault(settings.decisions_channel, []).append("decision polls")
    if settings.alerts_channel:
        refs.setdefault(settings.alerts_channel, []).append("alerts")
    return refs


def _check_channels(
    session: Session, refs: dict[str, list[str]], channels: list[SlackChannel], now: datetime
) -> list[ChannelProblem]:
    """Resolve and check every plan channel; what is wrong is kept for detection to tell admins."""
    problems = []
    resolved: dict[str, str | None] = {}
    for ref, used_for in refs.items():
        channel = resolve_channel(channels, ref)
        resolved[ref] = channel.id if channel is not None and not channel.is_archived else None
        problem = (
            "not_found"
            if channel is None
            else "archived"
            if channel.is_archived
            else "not_member"
            if not channel.is_member
            else None
        )
        save_channel_status(
            session=session,
            ref=ref,
            channel_id=resolved[ref],
            name=channel.name if channel else ref.lstrip("#"),
            problem=problem,
            now=now,
        )
        if problem is not None:
            problems.append(
                ChannelProblem(
                    ref=ref,
                    problem=problem,
                    channel_id=channel.id if channel else None,
                    name=channel.name if channel else ref.lstrip("#"),
                    used_for=tuple(used_for),
                )
            )
    forget_channels_except(session=session, refs=refs)
    for team in teams_with_channels(session=session):
        set_team_channel_id(session=session, team=team, channel_id=resolved.get(str(team.channel)))
    return problems
