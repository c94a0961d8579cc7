"""A detection-sized plan, bulk-loaded fast, and the floor: one SQL query counting its overdue rows.

`build_big_plan(engine, size)` fills an empty schema (made by `storage.db.upgrade`) with a seeded,
realistic plan: by default 10,000 initiatives, 100,000 milestones, 50,000 dependencies, 5,000
KPIs and 1,000,000 readings, 1,000 people with Slack IDs, 50 teams with channel IDs, a plan
timezone. Rows go in with explicit ids (so they can point at each other without reading anything
back): SQLAlchemy Core executemany in chunks on SQLite, COPY on PostgreSQL.

The mix, on `TODAY` (the plan's date at `NOW`): most milestones open and due later, a fifth done,
a few descoped, and a fixed number overdue (open, due before today: 1.5% by default); every
dependency state, most undelivered ones needed later, a fixed number needed before today without
delivery, and a fixed number still requested past their acknowledgement deadline. Around them the
edge cases a floor must get right: open milestones and undelivered dependencies due *today* (not
overdue yet), delivered ones needed long ago, and archived rows that look overdue (never counted).
Each dependency has its request posted (a `dependency_request` row) and every channel a healthy
`channel_status`, as after the bot has run for a while.

`overdue_floor(session, today, now)` is the floor a detection pass is measured against: one
plain query counting the rows such a pass must at least look at.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, func, insert, literal, select, text, union_all
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from standin import Channel, User, Workspace
from storage.dependencies import set_request_shown, stale_request_views
from storage.models import (
    ChannelStatus,
    Dependency,
    DependencyRequest,
    DependencyState,
    Holiday,
    Initiative,
    InitiativeKpi,
    Kpi,
    KpiReading,
    Milestone,
    MilestoneStatus,
    Objective,
    Person,
    PlanSettings,
    Team,
    TeamMember,
)
from storage.types import UTCDateTime

TIMEZONE = "America/New_York"
NOW = datetime(2027, 3, 10, 15, 0, tzinfo=UTC)  # a Wednesday, 10:00 in New York
TODAY = date(2027, 3, 10)  # NOW's date in the plan's timezone
PLAN_START = date(2026, 1, 5)
PLAN_END = date(2028, 6, 30)
ZONES = ("America/New_York", "America/Los_Angeles", "Europe/London", "Asia/Tokyo")
UNDELIVERED = tuple(s.value for s in DependencyState if s != DependencyState.DELIVERED)
ALERTS_CHANNEL = ("#alerts", "CBALERTS01")
DECISIONS_CHANNEL = ("#decisions", "CBDECIDE01")
CHUNK = 20_000
SEED = 9


@dataclass(frozen=True)
class PlanSize:
    """How big the plan is; the overdue counts are absolute, so a smaller plan keeps them."""

    initiatives: int = 10_000
    milestones: int = 100_000
    dependencies: int = 50_000
    kpis: int = 5_000
    readings: int = 1_000_000
    people: int = 1_000
    teams: int = 50
    objectives: int = 100
    overdue_milestones: int = 1_500  # open, due before today
    overdue_dependencies: int = 750  # undelivered, needed before today
    unacknowledged: int = 750  # requested, past their acknowledgement deadline

    def scaled(self, factor: float) -> PlanSize:
        """The rows a pass scans, times `factor`; what it finds (and who) stays the same."""
        # Never so few rows that the overdue ones would not fit (with room for the rest).
        overdue_dependencies = self.overdue_dependencies + self.unacknowledged
        return replace(
            self,
            milestones=max(
                self.initiatives, 2 * self.overdue_milestones, int(self.milestones * factor)
            ),
            dependencies=max(2 * overdue_dependencies, int(self.dependencies * factor)),
            readings=max(self.kpis, int(self.readings * factor)),
        )

    def rows(self) -> int:
        return self.milestones + self.dependencies + self.readings


@dataclass
class BuiltPlan:
    """What was built, and the overdue rows counted while generating them (rule by rule)."""

    size: PlanSize
    seconds: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)
    missed: int = 0
    late: int = 0
    unacknowledged: int = 0

    @property
    def overdue(self) -> int:
        return self.missed + self.late + self.unacknowledged


@dataclass(frozen=True)
class FloorCount:
    """The floor's three counts; a dependency both late and unacknowledged counts in both."""

    missed: int  # open milestones due before today
    late: int  # undelivered dependencies needed before today
    unacknowledged: int  # requested dependencies past their acknowledgement deadline

    @property
    def total(self) -> int:
        return self.missed + self.late + self.unacknowledged


# --- the floor ----------------------------------------------------------------------------------


def _overdue_conditions(today: date, now: datetime) -> tuple[Any, Any, Any]:
    """The three conditions on indexed columns, with the table each is about."""
    milestone: Table = Milestone.__table__  # type: ignore[attr-defined]
    dependency: Table = Dependency.__table__  # type: ignore[attr-defined]
    missed = (
        milestone,
        milestone.c.status == MilestoneStatus.OPEN.value,
        milestone.c.due < today,
        milestone.c.archived.is_(False),
    )
    late = (
        dependency,
        # A list of states, not `!= delivered`: each is a range of the (state, needed_by) index.
        dependency.c.state.in_(UNDELIVERED),
        dependency.c.needed_by < today,
        dependency.c.archived.is_(False),
    )
    unacknowledged = (
        dependency,
        dependency.c.state == DependencyState.REQUESTED.value,
        dependency.c.ack_due_at < now,
        dependency.c.archived.is_(False),
    )
    return missed, late, unacknowledged


def overdue_floor(session: Session | Connection, today: date, now: datetime) -> FloorCount:
    """One query, three counts on indexed columns: what any detection pass must at least read.

    `today` is the plan's date (a due date has ended once it is before today); `now` is compared
    with the acknowledgement deadlines, which are instants. Archived rows are never overdue.
    """
    counts = [
        select(func.count()).select_from(table).where(*where).scalar_subquery()
        for table, *where in _overdue_conditions(today, now)
    ]
    row = session.execute(select(*counts)).one()
    return FloorCount(int(row[0]), int(row[1]), int(row[2]))


def overdue_ids(session: Session | Connection, today: date, now: datetime) -> list[tuple[int, int]]:
    """The same rows' ids, fetched in one query as (condition 0/1/2, id): what a pass that brings
    the overdue rows into Python at least transfers. Shown beside the floor, not instead of it."""
    parts = [
        select(literal(number), table.c.id).where(*where)
        for number, (table, *where) in enumerate(_overdue_conditions(today, now))
    ]
    return [(int(kind), int(id_)) for kind, id_ in session.execute(union_all(*parts))]


# --- building -----------------------------------------------------------------------------------


def build_big_plan(
    engine: Engine, size: PlanSize = PlanSize(), *, analyze: bool = True, now: datetime = NOW
) -> BuiltPlan:
    """Fill an empty schema with the plan; `analyze` refreshes the planner's statistics after.

    `now` places the plan in time (overdue rows are overdue at `now`); by default `NOW`, a fixed
    instant, so that the figures are repeatable. A benchmark running the real clock passes its own.
    """
    # Every initiative has a milestone for its dependencies to hold up.
    assert size.milestones >= size.initiatives, size
    started = time.perf_counter()
    built = BuiltPlan(size=size)
    generator = _Generator(size, built, now)
    with engine.begin() as connection:
        for model, rows in generator.tables():
            built.rows[model.__tablename__] = _load(connection, model.__table__, rows)  # type: ignore[attr-defined]
        if connection.dialect.name == "postgresql":
            _advance_sequences(connection)
    _requests_show_their_state(engine)
    if analyze:
        _analyze(engine)
    built.seconds = time.perf_counter() - started
    return built


def _requests_show_their_state(engine: Engine) -> None:
    """As after the bot has run a while: every posted request message shows what it should."""
    while True:
        with Session(engine) as session:
            stale = stale_request_views(session=session, limit=5_000)
            for view in stale:
                assert view.request.id is not None
                set_request_shown(
                    session=session, request_id=view.request.id, shown=view.fingerprint
                )
            session.commit()
        if not stale:
            return


def bench_workspace(size: PlanSize = PlanSize()) -> Workspace:
    """The stand-in workspace that goes with the plan: its people and its channels."""
    workspace = Workspace()
    for p in range(size.people):
        workspace.add_user(
            User(
                id=_slack_id(p),
                name=f"person{p}",
                real_name=f"Person {p}",
                email=_email(p),
                tz=ZONES[p % len(ZONES)],
            )
        )
    channels = [(f"#team-{t}", _channel_id(t)) for t in range(size.teams)]
    for name, channel_id in [*channels, ALERTS_CHANNEL, DECISIONS_CHANNEL]:
        workspace.add_channel(Channel(id=channel_id, name=name.lstrip("#")))
    return workspace


def _slack_id(p: int) -> str:
    return f"UBP{p:06d}"


def _email(p: int) -> str:
    return f"person{p}@bench.example"


def _channel_id(t: int) -> str:
    return f"CBT{t:06d}"


def _at(day: date, hour: int = 14) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


Rows = Iterable[dict[str, Any]]


class _Generator:
    """Every table's rows, in insertion order (parents first: SQLite checks foreign keys)."""

    def __init__(self, size: PlanSize, built: BuiltPlan, now: datetime = NOW) -> None:
        self.size = size
        self.built = built
        self.now = now
        self.today = now.astimezone(ZoneInfo(TIMEZONE)).date()
        self.rng = random.Random(SEED)
        self.synced = self.now - timedelta(hours=3)
        self.requested_at: list[datetime] = []  # per dependency, for its request message

    def tables(self) -> Iterator[tuple[Any, Rows]]:
        yield PlanSettings, [self.settings()]
        yield Holiday, self.holidays()
        yield Person, self.people()
        yield Team, self.teams()
        yield TeamMember, self.team_members()
        yield ChannelStatus, self.channel_statuses()
        yield Objective, self.objectives()
        yield Kpi, self.kpis()
        yield KpiReading, self.readings()
        yield Initiative, self.initiatives()
        yield InitiativeKpi, self.initiative_kpis()
        yield Milestone, self.milestones()
        yield Dependency, self.dependencies()
        yield DependencyRequest, self.requests()

    # people, teams, objectives ----------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        return {
            "id": 1,
            "organization": "Benchmark Bank",
            "timezone": TIMEZONE,
            "decisions_channel": DECISIONS_CHANNEL[0],
            "alerts_channel": ALERTS_CHANNEL[0],
            "default_pulse": "0 9 * * mon",
            "ack_within_days": 2,
            "poll_hours": 48,
        }

    def holidays(self) -> Rows:
        return [
            {"id": 1, "start": date(2026, 12, 24), "end": date(2026, 12, 26), "name": "Winter"},
            {"id": 2, "start": date(2027, 1, 1), "end": date(2027, 1, 1), "name": "New Year"},
        ]

    def people(self) -> Rows:
        for p in range(self.size.people):
            yield {
                "id": p + 1,
                "slack_id": _slack_id(p),
                "email": _email(p),
                "name": f"Person {p}",
                "tz": ZONES[p % len(ZONES)],
                "is_leader": p < 5,
                "is_admin": p < 2,
                "active": True,
                "away_from": None,
                "away_until": None,
                "synced_at": self.synced,
                "slack_linked_at": datetime(2026, 1, 1, tzinfo=UTC),
            }

    def team_lead(self, t: int) -> int:
        return (5 + t) % self.size.people + 1

    def teams(self) -> Rows:
        for t in range(self.size.teams):
            yield {
                "id": t + 1,
                "key": f"team-{t}",
                "name": f"Team {t}",
                "channel": f"#team-{t}",
                "channel_id": _channel_id(t),
                "lead_id": self.team_lead(t),
                "archived": False,
            }

    def team_members(self) -> Rows:
        leads = {self.team_lead(t) for t in range(self.size.teams)}
        for p in range(self.size.people):
            if p + 1 not in leads:
                yield {"team_id": p % self.size.teams + 1, "person_id": p + 1}

    def channel_statuses(self) -> Rows:
        channels = [(f"#team-{t}", _channel_id(t)) for t in range(self.size.teams)]
        for ref, channel_id in [*channels, ALERTS_CHANNEL, DECISIONS_CHANNEL]:
            yield {
                "ref": ref,
                "channel_id": channel_id,
                "name": ref.lstrip("#"),
                "problem": None,
                "checked_at": self.synced,
            }

    def objectives(self) -> Rows:
        for o in range(self.size.objectives):
            yield {
                "id": o + 1,
                "key": f"objective-{o}",
                "title": f"Objective {o}: grow the self-service share",
                "owner_id": o % self.size.people + 1,
                "archived": False,
            }

    # KPIs and readings -------------------------------------------------------------------------

    def kpis(self) -> Rows:
        cadences = (7, 14, 35, 35, 35, 90)
        for k in range(self.size.kpis):
            up = k % 3 != 0
            yield {
                "id": k + 1,
                "key": f"kpi-{k}",
                "objective_id": k % self.size.objectives + 1,
                "name": f"Measure {k}",
                "unit": "%" if up else "days",
                "baseline": 10.0 if up else 30.0,
                "target": 60.0 if up else 10.0,
                "direction": "up" if up else "down",
                "start": PLAN_START,
                "due": PLAN_END,
                "amber_tolerance": 10.0,
                "red_tolerance": 25.0,
                "reading_every_days": cadences[k % len(cadences)],
                "archived": False,
            }

    def readings(self) -> Rows:
        """Spread evenly over the KPIs; each KPI's last reading is a few days to weeks old."""
        per, extra = divmod(self.size.readings, self.size.kpis)
        span = (self.today - PLAN_START).days
        reading_id = 0
        for k in range(self.size.kpis):
            count = per + (1 if k < extra else 0)
            last = self.today - timedelta(days=self.rng.choice((0, 1, 3, 6, 12, 20, 40, 70)))
            step = max(1, (last - PLAN_START).days // max(count, 1))
            up = k % 3 != 0
            drifting = k % 20 == 0  # about 5% wander off their trajectory
            for r in range(count):
                as_of = max(PLAN_START, last - timedelta(days=step * (count - 1 - r)))
                progress = (as_of - PLAN_START).days / (PLAN_END - PLAN_START).days
                expected = 10 + 50 * progress if up else 30 - 20 * progress
                off = -12 * (as_of - PLAN_START).days / span if drifting else 0.0
                reading_id += 1
                yield {
                    "id": reading_id,
                    "kpi_id": k + 1,
                    "value": round(expected + off + self.rng.uniform(-2, 2), 2),
                    "as_of": as_of,
                    "source": "pulse" if r % 4 else "import",
                    "recorded_by_id": None,
                    "recorded_at": _at(as_of, 16),
                }

    # initiatives, milestones, dependencies -----------------------------------------------------

    def initiative_of(self, index: int, total: int) -> int:
        return index * self.size.initiatives // total

    def initiatives(self) -> Rows:
        for i in range(self.size.initiatives):
            yield {
                "id": i + 1,
                "key": f"initiative-{i}",
                "title": f"Initiative {i}: move service requests to the portal",
                "objective_id": i % self.size.objectives + 1,
                "owner_id": i % self.size.people + 1,
                "team_id": i % self.size.teams + 1,
                "pulse": None,
                "status": "active",
                "active_since": datetime(2026, 1, 1, tzinfo=UTC),
                "dark_since": None,
                "archived": False,
            }

    def initiative_kpis(self) -> Rows:
        for i in range(self.size.initiatives):
            first = i % self.size.kpis
            second = (i * 7 + 3) % self.size.kpis
            for kpi in sorted({first, second}):
                yield {"initiative_id": i + 1, "kpi_id": kpi + 1}

    def picked(self, total: int, *counts: int) -> list[dict[int, int]]:
        """Disjoint random sets of row indexes, one per count; each index with its rank in its set."""
        chosen = self.rng.sample(range(total), min(total, sum(counts)))
        sets, start = [], 0
        for count in counts:
            sets.append(
                {index: rank for rank, index in enumerate(sorted(chosen[start : start + count]))}
            )
            start += count
        return sets

    def milestones(self) -> Rows:
        n = self.size.milestones
        overdue, edge = self.picked(n, self.size.overdue_milestones, max(3, n // 200))
        newest = min(overdue, default=-1)
        for m in range(n):
            status, archived = MilestoneStatus.OPEN.value, False
            if m in overdue:
                # Yesterday first: the newest miss, the one a boundary bug would drop.
                due = self.today - timedelta(days=1 if m == newest else self.rng.randint(1, 60))
            elif m in edge:
                kind = edge[m] % 3  # each edge case in turn, so even a tiny plan has all
                due = (
                    self.today
                    if kind == 0
                    else self.today - timedelta(days=self.rng.randint(1, 90))
                )
                status = MilestoneStatus.DONE.value if kind == 1 else status
                archived = kind == 2  # archived while open and past due: not overdue any more
            else:
                roll = self.rng.random()
                if roll < 0.20:
                    status = MilestoneStatus.DONE.value
                    due = self.today - timedelta(days=self.rng.randint(1, 400))
                elif roll < 0.22:
                    status = MilestoneStatus.DESCOPED.value
                    due = self.today + timedelta(days=self.rng.randint(-200, 300))
                else:
                    due = self.today + timedelta(days=self.rng.randint(1, 450))
            moved = self.rng.random() < 0.05
            if status == MilestoneStatus.OPEN.value and due < self.today and not archived:
                self.built.missed += 1
            yield {
                "id": m + 1,
                "key": f"milestone-{m}",
                "initiative_id": self.initiative_of(m, n) + 1,
                "title": f"Milestone {m}: portal release",
                "due": due,
                "original_due": due - timedelta(days=self.rng.randint(7, 60)) if moved else due,
                "expected_due": None,
                "status": status,
                "completed_at": _at(due) if status == MilestoneStatus.DONE.value else None,
                "scope_note": "Reports cut" if status == MilestoneStatus.DESCOPED.value else None,
                "archived": archived,
            }

    def milestone_of(self, d: int, initiative: int) -> int:
        """One of the dependency's own initiative's milestones."""
        n, i = self.size.milestones, self.size.initiatives
        first = -(-initiative * n // i)  # the first milestone index of that initiative
        last = -(-(initiative + 1) * n // i) - 1
        return first + d % max(1, last - first + 1) + 1

    def dependencies(self) -> Rows:
        n = self.size.dependencies
        late, unacked, edge = self.picked(
            n, self.size.overdue_dependencies, self.size.unacknowledged, max(5, n // 200)
        )
        newest, first_unacked = min(late, default=-1), min(unacked, default=-1)
        teams = self.size.teams
        for d in range(n):
            initiative = self.initiative_of(d, n)
            own_team = initiative % teams
            provider = (own_team + 1 + d % max(1, teams - 1)) % teams
            requested_at = self.now - timedelta(days=self.rng.randint(1, 60))
            row: dict[str, Any] = {
                "id": d + 1,
                "key": f"dependency-{d}",
                "initiative_id": initiative + 1,
                "milestone_id": self.milestone_of(d, initiative),
                "provider_team_id": provider + 1,
                "need": f"Deliverable {d} for the portal release",
                "ack_within_days": None,
                "request_revision": 1,
                "requested_at": requested_at,
                "ack_due_at": requested_at + timedelta(days=3),
                "acknowledged_at": None,
                "acknowledged_by_id": None,
                "alternative_date": None,
                "delivered_at": None,
                "state_changed_at": None,
                "state_changed_by_id": None,
                "note": None,
                "archived": False,
            }
            if d in late:
                state = UNDELIVERED[d % len(UNDELIVERED)]
                needed_by = self.today - timedelta(
                    days=1 if d == newest else self.rng.randint(1, 45)
                )
            elif d in unacked:
                state = DependencyState.REQUESTED.value
                needed_by = self.today + timedelta(days=self.rng.randint(5, 120))
                row["ack_due_at"] = self.now - timedelta(
                    minutes=1 if d == first_unacked else self.rng.randint(60, 14_400)
                )
                row["requested_at"] = row["ack_due_at"] - timedelta(days=3)
            elif d in edge:
                kind = edge[d] % 3
                if kind == 0:  # needed today: not late until the day has ended
                    state, needed_by = DependencyState.ACKNOWLEDGED.value, self.today
                elif kind == 1:  # delivered long ago, needed long ago: fine
                    state = DependencyState.DELIVERED.value
                    needed_by = self.today - timedelta(days=self.rng.randint(1, 90))
                else:  # archived while late and unacknowledged: not overdue any more
                    state = DependencyState.REQUESTED.value
                    needed_by = self.today - timedelta(days=self.rng.randint(1, 90))
                    row["ack_due_at"] = self.now - timedelta(days=5)
                    row["archived"] = True
            else:
                roll = self.rng.random()
                state = (
                    DependencyState.DELIVERED.value
                    if roll < 0.30
                    else DependencyState.ACKNOWLEDGED.value
                    if roll < 0.70
                    else DependencyState.REQUESTED.value
                    if roll < 0.90
                    else DependencyState.AT_RISK.value
                    if roll < 0.95
                    else DependencyState.BLOCKED.value
                )
                delivered = state == DependencyState.DELIVERED.value
                needed_by = self.today + timedelta(
                    days=self.rng.randint(-120 if delivered else 1, 300)
                )
                if state == DependencyState.REQUESTED.value:
                    # Asked recently: its deadline is still ahead.
                    row["requested_at"] = self.now - timedelta(hours=self.rng.randint(1, 40))
                    row["ack_due_at"] = row["requested_at"] + timedelta(days=3)
            self._progress(row, state, provider)
            row["state"] = state
            row["needed_by"] = needed_by
            self.requested_at.append(row["requested_at"])
            if not row["archived"]:
                # Counted by the rules themselves, not by the sets above: the generator's own check.
                if state in UNDELIVERED and needed_by < self.today:
                    self.built.late += 1
                if state == DependencyState.REQUESTED.value and row["ack_due_at"] < self.now:
                    self.built.unacknowledged += 1
            yield row

    def _progress(self, row: dict[str, Any], state: str, provider: int) -> None:
        """The columns the dependency loop fills in as a dependency moves along."""
        if state == DependencyState.REQUESTED.value:
            return
        acknowledged = row["requested_at"] + timedelta(hours=self.rng.randint(1, 40))
        row["acknowledged_at"] = acknowledged
        row["acknowledged_by_id"] = self.team_lead(provider)
        row["ack_due_at"] = row["requested_at"] + timedelta(days=3)
        row["state_changed_at"] = acknowledged
        row["state_changed_by_id"] = self.team_lead(provider)
        if state == DependencyState.DELIVERED.value:
            row["delivered_at"] = acknowledged + timedelta(days=self.rng.randint(1, 20))
            row["state_changed_at"] = row["delivered_at"]
        elif state == DependencyState.BLOCKED.value:
            row["note"] = "Vendor contract not signed"
            row["alternative_date"] = self.today + timedelta(days=self.rng.randint(10, 90))
        elif state == DependencyState.AT_RISK.value:
            row["note"] = "Two people out sick"

    def requests(self) -> Rows:
        """Each dependency's request, posted in the provider's channel when it was requested."""
        n, teams = self.size.dependencies, self.size.teams
        for d in range(n):
            own_team = self.initiative_of(d, n) % teams
            provider = (own_team + 1 + d % max(1, teams - 1)) % teams
            posted = self.requested_at[d]
            yield {
                "id": d + 1,
                "dependency_id": d + 1,
                "revision": 1,
                "claimed_at": posted,
                "posted_at": posted,
                "channel_id": _channel_id(provider),
                "message_ts": f"{int(posted.timestamp())}.{d % 1_000_000:06d}",
                "shown": None,
                "error": None,
            }


# --- loading ------------------------------------------------------------------------------------


def _load(connection: Connection, table: Table, rows: Rows) -> int:
    if connection.dialect.name == "postgresql":
        return _copy(connection, table, rows)
    loaded = 0
    for chunk in _chunks(rows):
        connection.execute(insert(table), chunk)
        loaded += len(chunk)
    return loaded


def _chunks(rows: Rows) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _copy(connection: Connection, table: Table, rows: Rows) -> int:
    """COPY … FROM STDIN: PostgreSQL's bulk path, several times faster than INSERTs."""
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        return 0
    # COPY, unlike insert(), skips the columns' Python-side defaults: a column the builder does not
    # set (one added to the model since) gets its scalar default here rather than a NULL.
    defaults = {
        column.name: column.default.arg
        for column in table.columns
        if column.name not in first and column.default is not None and column.default.is_scalar
    }
    columns = [*first, *defaults]
    converters = [_copy_value(table.c[name].type) for name in columns]
    names = ", ".join(f'"{name}"' for name in columns)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    loaded = 0
    with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in _chain(first, iterator):
            values = {**defaults, **row}
            copy.write_row(
                [convert(values[name]) for name, convert in zip(columns, converters, strict=True)]
            )
            loaded += 1
    return loaded


def _chain(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest


def _copy_value(column_type: Any) -> Callable[[Any], Any]:
    if isinstance(column_type, UTCDateTime):
        # What UTCDateTime stores: naive UTC (COPY bypasses SQLAlchemy's bind processing).
        return lambda value: None if value is None else value.astimezone(UTC).replace(tzinfo=None)
    return lambda value: value


def _advance_sequences(connection: Connection) -> None:
    """Explicit ids leave PostgreSQL's sequences at 1: move them past the rows loaded."""
    for model in (
        Holiday,
        Person,
        Team,
        Objective,
        Kpi,
        KpiReading,
        Initiative,
        Milestone,
        Dependency,
        DependencyRequest,
    ):
        name = model.__tablename__
        connection.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                f'COALESCE((SELECT MAX(id) FROM "{name}"), 0) + 1, false)'
            )
        )


def _analyze(engine: Engine) -> None:
    """Fresh statistics, as autovacuum (PostgreSQL) or `PRAGMA optimize` (SQLite) would keep."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("VACUUM ANALYZE"))
        else:
            connection.execute(text("ANALYZE"))


def describe(built: BuiltPlan) -> str:
    """One line on what was built, for the benchmark's output."""
    counts = ", ".join(f"{count:,} {name}" for name, count in built.rows.items() if count > 100)
    return f"{counts}: built in {built.seconds:.1f} s"


__all__ = [
    "NOW",
    "TODAY",
    "BuiltPlan",
    "FloorCount",
    "PlanSize",
    "bench_workspace",
    "build_big_plan",
    "describe",
    "overdue_floor",
    "overdue_ids",
]
