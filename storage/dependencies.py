"""Dependencies and their request messages: state writes that count once, claims, what a request shows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import reduce
from typing import Any

from sqlalchemy import String, case, cast, delete, exists, func, literal, or_, update
from sqlalchemy import select as select_entities  # SQLModel's select takes at most 4 entities
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from storage.db import insert_or_skip
from storage.models import (
    Dependency,
    DependencyRequest,
    DependencyState,
    Initiative,
    Milestone,
    Person,
    Team,
    TeamMember,
)

# Bump when the request template changes what it shows: every request message is then re-rendered.
RENDER_VERSION = "1"
REPLACED = "replaced"  # what a request of an older revision shows, for good


# --- dependencies ------------------------------------------------------------------------------


def dependency_by_id(*, session: Session, dependency_id: int) -> Dependency | None:
    # Always re-read: a state check must see what another request committed a moment ago.
    statement = (
        select(Dependency)
        .where(col(Dependency.id) == dependency_id)
        .execution_options(populate_existing=True)
    )
    return session.exec(statement).first()


def dependencies_by_ids(
    *, session: Session, dependency_ids: Iterable[int]
) -> dict[int, Dependency]:
    ids = sorted(set(dependency_ids))
    if not ids:
        return {}
    statement = select(Dependency).where(col(Dependency.id).in_(ids))
    return {row.id: row for row in session.exec(statement) if row.id is not None}


def team_by_id(*, session: Session, team_id: int) -> Team | None:
    return session.get(Team, team_id)


def is_team_member(*, session: Session, team_id: int, person_id: int) -> bool:
    """The team's lead or one of its members."""
    team = session.get(Team, team_id)
    if team is not None and team.lead_id == person_id:
        return True
    statement = select(TeamMember).where(
        col(TeamMember.team_id) == team_id, col(TeamMember.person_id) == person_id
    )
    return session.exec(statement).first() is not None


def provider_member(*, session: Session, dependency_id: int) -> Person | None:
    """Someone of the dependency's provider team who is in Slack: a member, else its lead."""
    dependency = session.get(Dependency, dependency_id)
    team = session.get(Team, dependency.provider_team_id) if dependency else None
    if team is None:
        return None
    statement = (
        select(Person)
        .join(TeamMember, col(TeamMember.person_id) == col(Person.id))
        .where(col(TeamMember.team_id) == team.id, col(Person.slack_id).is_not(None))
        .order_by(col(Person.id))
    )
    member = session.exec(statement).first()
    return member or (session.get(Person, team.lead_id) if team.lead_id else None)


def dependency_state(*, session: Session, dependency_id: int) -> str | None:
    dependency = session.get(Dependency, dependency_id)
    return dependency.state if dependency else None


def open_dependencies_of(*, session: Session, initiative_id: int) -> list[tuple[Dependency, Team]]:
    """An initiative's dependencies that are neither delivered nor archived, by needed-by date."""
    statement = (
        select(Dependency, Team)
        .join(Team, col(Team.id) == col(Dependency.provider_team_id))
        .where(
            col(Dependency.initiative_id) == initiative_id,
            col(Dependency.archived).is_(False),
            col(Dependency.state) != DependencyState.DELIVERED,
        )
        .order_by(col(Dependency.needed_by), col(Dependency.key))
    )
    return [(dependency, team) for dependency, team in session.exec(statement)]


def write_state(
    *,
    session: Session,
    dependency_id: int,
    expected_state: str,
    expected_revision: int,
    values: dict[str, Any],
) -> bool:
    """Apply a state change only if the row still is as it was read; True when this call changed it.

    The condition is part of the UPDATE, so of a double click, a Slack retry or two people
    pressing at once, exactly one write lands.
    """
    result = session.connection().execute(
        update(Dependency)
        .where(
            col(Dependency.id) == dependency_id,
            col(Dependency.state) == expected_state,
            col(Dependency.request_revision) == expected_revision,
            col(Dependency.archived).is_(False),
        )
        .values(**values)
    )
    return bool(result.rowcount == 1)


# --- request claims ----------------------------------------------------------------------------


def request_candidates(*, session: Session, limit: int) -> list[tuple[int, int, str]]:
    """(dependency id, revision, channel) of live, undelivered dependencies whose current revision
    has no request row yet and whose provider team has a resolved channel."""
    asked = exists().where(
        col(DependencyRequest.dependency_id) == col(Dependency.id),
        col(DependencyRequest.revision) == col(Dependency.request_revision),
    )
    statement = (
        select(Dependency.id, Dependency.request_revision, Team.channel_id)
        .join(Team, col(Team.id) == col(Dependency.provider_team_id))
        .join(Initiative, col(Initiative.id) == col(Dependency.initiative_id))
        .where(
            col(Dependency.archived).is_(False),
            col(Dependency.state) != DependencyState.DELIVERED,
            col(Initiative.archived).is_(False),
            col(Team.archived).is_(False),
            col(Team.channel_id).is_not(None),
            ~asked,
        )
        .order_by(col(Dependency.provider_team_id), col(Dependency.id))
        .limit(limit)
    )
    return [
        (int(dependency_id), int(revision), str(channel))
        for dependency_id, revision, channel in session.exec(statement)
        if dependency_id is not None
    ]


def claim_requests(
    *, session: Session, wanted: Sequence[tuple[int, int]], now: datetime
) -> list[int]:
    """Insert a request row per (dependency, revision); one another process inserted is skipped.

    The ids of the rows this call inserted. On PostgreSQL a concurrent insert of the same key
    waits for the other transaction and then yields nothing.
    """
    if not wanted:
        return []
    statement = (
        insert_or_skip(session, DependencyRequest)
        .on_conflict_do_nothing(index_elements=["dependency_id", "revision"])
        .returning(col(DependencyRequest.id))
    )
    claimed = []
    for dependency_id, revision in wanted:
        row = (
            session.connection()
            .execute(
                statement.values(dependency_id=dependency_id, revision=revision, claimed_at=now)
            )
            .first()
        )
        if row is not None:
            claimed.append(int(row[0]))
    return claimed


def release_request_claim(*, session: Session, request_id: int) -> None:
    """Forget a claim whose message certainly was not posted, so a later tick asks again."""
    session.connection().execute(
        delete(DependencyRequest).where(
            col(DependencyRequest.id) == request_id, col(DependencyRequest.posted_at).is_(None)
        )
    )


def mark_request_failed(*, session: Session, request_id: int, error: str) -> None:
    """Slack refused the message itself: kept, so it is not retried on every tick."""
    session.connection().execute(
        update(DependencyRequest)
        .where(col(DependencyRequest.id) == request_id, col(DependencyRequest.posted_at).is_(None))
        .values(error=error[:500])
    )


def mark_request_posted(
    *,
    session: Session,
    request_id: int,
    channel_id: str,
    message_ts: str,
    posted_at: datetime,
    shown: str | None,
) -> bool:
    """Record where the request landed; False when another process recorded it first."""
    result = session.connection().execute(
        update(DependencyRequest)
        .where(col(DependencyRequest.id) == request_id, col(DependencyRequest.posted_at).is_(None))
        .values(
            channel_id=channel_id,
            message_ts=message_ts,
            posted_at=posted_at,
            shown=shown,
            error=None,
        )
    )
    return bool(result.rowcount == 1)


def start_ack_clock(
    *,
    session: Session,
    dependency_id: int,
    revision: int,
    requested_at: datetime,
    ack_due_at: datetime,
) -> None:
    """The acknowledgement clock of this revision starts when its request was posted."""
    session.connection().execute(
        update(Dependency)
        .where(col(Dependency.id) == dependency_id, col(Dependency.request_revision) == revision)
        .values(requested_at=requested_at, ack_due_at=ack_due_at)
    )


def stale_request_claims(*, session: Session, claimed_before: datetime) -> list[DependencyRequest]:
    """Claimed but never confirmed posted (nor refused by Slack) for longer than a live poster takes."""
    statement = (
        select(DependencyRequest)
        .where(
            col(DependencyRequest.posted_at).is_(None),
            col(DependencyRequest.error).is_(None),
            col(DependencyRequest.claimed_at) < claimed_before,
        )
        .order_by(col(DependencyRequest.id))
    )
    return list(session.exec(statement))


def take_over_request_claim(
    *, session: Session, request_id: int, claimed_at: datetime, now: datetime
) -> bool:
    """Renew a stale claim; False when another process renewed or finished it first."""
    result = session.connection().execute(
        update(DependencyRequest)
        .where(
            col(DependencyRequest.id) == request_id,
            col(DependencyRequest.posted_at).is_(None),
            col(DependencyRequest.claimed_at) == claimed_at,
        )
        .values(claimed_at=now)
    )
    return bool(result.rowcount == 1)


def set_request_shown(*, session: Session, request_id: int, shown: str) -> None:
    session.connection().execute(
        update(DependencyRequest).where(col(DependencyRequest.id) == request_id).values(shown=shown)
    )


def request_of_message(*, session: Session, message_ts: str) -> DependencyRequest | None:
    """The request row posted as this message, if the bot recorded one."""
    statement = select(DependencyRequest).where(col(DependencyRequest.message_ts) == message_ts)
    return session.exec(statement).first()


# --- what a request message shows ---------------------------------------------------------------


@dataclass(frozen=True)
class RequestView:
    """Everything one request message shows, and the fingerprint of it read in the same query."""

    request: DependencyRequest
    dependency: Dependency
    initiative: Initiative
    owner: Person | None
    requesting_team: Team | None
    provider: Team
    milestone: Milestone | None
    acknowledged_by: Person | None
    changed_by: Person | None
    fingerprint: str

    @property
    def replaced(self) -> bool:
        return self.request.revision < self.dependency.request_revision


_owner = aliased(Person)
_requesting = aliased(Team)
_provider = aliased(Team)
_acknowledger = aliased(Person)
_changer = aliased(Person)


def _shown_text(value: Any) -> ColumnElement[str]:
    return func.coalesce(cast(value, String), literal(""))


def _fingerprint() -> ColumnElement[str]:
    """What a request message should show now, as one string computed by the database.

    Compared with `DependencyRequest.shown` (written when the message was last rendered), it
    finds the messages to re-render without loading every request into Python.
    """
    shown: list[ColumnElement[str]] = [
        literal(RENDER_VERSION),
        _shown_text(Dependency.state),
        case((col(Dependency.archived).is_(True), literal("archived")), else_=literal("")),
        _shown_text(Dependency.need),
        _shown_text(Dependency.needed_by),
        _shown_text(Dependency.acknowledged_at),
        _shown_text(_acknowledger.slack_id),
        _shown_text(Dependency.state_changed_at),
        _shown_text(_changer.slack_id),
        _shown_text(Dependency.note),
        _shown_text(Dependency.alternative_date),
        _shown_text(Dependency.delivered_at),
        _shown_text(Initiative.title),
        _shown_text(_owner.slack_id),
        _shown_text(_owner.name),
        _shown_text(_requesting.name),
        _shown_text(_provider.name),
        _shown_text(Milestone.title),
        _shown_text(Milestone.due),
    ]
    joined = reduce(lambda left, right: left + literal("|") + right, shown)
    return case(
        (col(DependencyRequest.revision) < col(Dependency.request_revision), literal(REPLACED)),
        else_=joined,
    )


def _views(*conditions: Any, limit: int | None = None) -> Any:
    fingerprint = _fingerprint().label("fingerprint")
    statement = (
        select_entities(
            DependencyRequest,
            Dependency,
            Initiative,
            _owner,
            _requesting,
            _provider,
            Milestone,
            _acknowledger,
            _changer,
            fingerprint,
        )
        .join(Dependency, col(Dependency.id) == col(DependencyRequest.dependency_id))
        .join(Initiative, col(Initiative.id) == col(Dependency.initiative_id))
        .join(_provider, col(_provider.id) == col(Dependency.provider_team_id))
        .outerjoin(_owner, col(_owner.id) == col(Initiative.owner_id))
        .outerjoin(_requesting, col(_requesting.id) == col(Initiative.team_id))
        .outerjoin(Milestone, col(Milestone.id) == col(Dependency.milestone_id))
        .outerjoin(_acknowledger, col(_acknowledger.id) == col(Dependency.acknowledged_by_id))
        .outerjoin(_changer, col(_changer.id) == col(Dependency.state_changed_by_id))
        .where(*conditions)
        .order_by(col(DependencyRequest.id))
    )
    if limit is not None:
        statement = statement.limit(limit)
    return statement


def _view(row: Any) -> RequestView:
    request, dependency, initiative, owner, requesting, provider, milestone, ack, changer, shown = (
        row
    )
    return RequestView(
        request=request,
        dependency=dependency,
        initiative=initiative,
        owner=owner,
        requesting_team=requesting,
        provider=provider,
        milestone=milestone,
        acknowledged_by=ack,
        changed_by=changer,
        fingerprint=str(shown),
    )


def request_views(*, session: Session, request_ids: Iterable[int]) -> list[RequestView]:
    ids = sorted(set(request_ids))
    if not ids:
        return []
    statement = _views(col(DependencyRequest.id).in_(ids))
    return [_view(row) for row in session.execute(statement)]


def posted_request_views(*, session: Session, dependency_id: int) -> list[RequestView]:
    """The posted request messages of one dependency, every revision (old ones say "replaced")."""
    statement = _views(
        col(DependencyRequest.dependency_id) == dependency_id,
        col(DependencyRequest.message_ts).is_not(None),
    )
    return [_view(row) for row in session.execute(statement)]


def current_request_view(*, session: Session, dependency_id: int) -> RequestView | None:
    """The request row of the dependency's current revision (posted or still being posted)."""
    statement = _views(
        col(DependencyRequest.dependency_id) == dependency_id,
        col(DependencyRequest.revision) == col(Dependency.request_revision),
    )
    row = session.execute(statement).first()
    return _view(row) if row is not None else None


def stale_request_views(*, session: Session, limit: int) -> list[RequestView]:
    """Posted request messages whose fingerprint differs from what they should show now."""
    statement = _views(
        col(DependencyRequest.message_ts).is_not(None),
        col(DependencyRequest.channel_id).is_not(None),
        or_(
            col(DependencyRequest.shown).is_(None),
            col(DependencyRequest.shown) != _fingerprint(),
        ),
        limit=limit,
    )
    return [_view(row) for row in session.execute(statement)]
