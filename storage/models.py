"""The tables of the whole product: the plan, the pulse loop, alerts, decisions and the audit log.

Every "only once" rule of the product is a unique key here, so that a retry, a double click,
a second replica or a restart finds the existing row instead of acting again.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal, overload

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime


@overload
def utc_column(*, nullable: Literal[False], index: bool = False) -> datetime: ...
@overload
def utc_column(*, nullable: Literal[True] = True, index: bool = False) -> datetime | None: ...
def utc_column(*, nullable: bool = True, index: bool = False) -> Any:
    """An aware-UTC datetime column: a NOT NULL one has no default, so it must be given."""
    column: Column[datetime] = Column(UTCDateTime(), nullable=nullable, index=index)
    return Field(default=None, sa_column=column) if nullable else Field(sa_column=column)


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"


class InitiativeStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


class MilestoneStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    DESCOPED = "descoped"


class DependencyState(StrEnum):
    REQUESTED = "requested"
    ACKNOWLEDGED = "acknowledged"
    DELIVERED = "delivered"
    AT_RISK = "at_risk"
    BLOCKED = "blocked"


class PulseStatus(StrEnum):
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    OFF_TRACK = "off_track"


class PulseState(StrEnum):
    CLAIMED = "claimed"  # row exists, DM not yet confirmed posted
    SENT = "sent"
    ANSWERED = "answered"
    FAILED = "failed"  # owner unreachable (user_not_found, account_inactive...)


class AlertState(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class PollState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class DecisionOption(StrEnum):
    DELAY = "delay"
    DESCOPE = "descope"
    ADD_RESOURCES = "add_resources"
    ACCEPT_RISK = "accept_risk"


class PollOutcome(StrEnum):
    """How a poll ended when no option won: `DecisionPoll.outcome` / `Decision.option`."""

    UNDECIDED = "undecided"  # no quorum after the extension, or a tie nobody could break
    WITHDRAWN = "withdrawn"  # the milestone was archived, done or descoped while it was open


class SlipCause(StrEnum):
    MISSED = "missed"  # its due date passed without it being done
    BLOCKED = "blocked"  # a dependency feeding it is blocked


class KnockOnAnswer(StrEnum):
    ON_TRACK = "on_track"
    MOVES_US = "moves_us"


# --- the plan ---------------------------------------------------------------------------------


class DigestTo(StrEnum):
    """Where the weekly digest goes: the decision channel, or a DM to each leader."""

    CHANNEL = "channel"
    LEADERS = "leaders"


DEFAULT_DIGEST = "0 16 * * fri"


class PlanSettings(SQLModel, table=True):
    """The plan's own settings; one row (id 1) per database."""

    __tablename__ = "plan_settings"

    id: int = Field(default=1, primary_key=True)
    organization: str = ""
    timezone: str = "UTC"
    decisions_channel: str | None = None
    alerts_channel: str | None = None
    default_pulse: str = "0 9 * * mon"
    ack_within_days: int = 2
    poll_hours: int = 48
    poll_quorum: int | None = None  # leaders who must vote; None means a majority
    poll_anonymous: bool = False  # polls are anonymous unless /decide says otherwise
    digest: str = DEFAULT_DIGEST  # 5-field cron, in the plan's timezone
    digest_to: str = DigestTo.CHANNEL


class Holiday(SQLModel, table=True):
    """A plan-level day range on which nobody gets a pulse."""

    __tablename__ = "holiday"
    __table_args__ = (UniqueConstraint("start", "end", name="uq_holiday_range"),)

    id: int | None = Field(default=None, primary_key=True)
    start: date
    end: date
    name: str = ""


class Person(SQLModel, table=True):
    """Someone named by the plan; known by Slack ID, e-mail or both."""

    __tablename__ = "person"

    id: int | None = Field(default=None, primary_key=True)
    slack_id: str | None = Field(default=None, unique=True, max_length=32)
    email: str | None = Field(default=None, unique=True, max_length=320)
    name: str = ""
    tz: str | None = None  # IANA name from users.list; None until Slack was asked
    is_leader: bool = False
    is_admin: bool = False
    active: bool = True  # False when deactivated in Slack
    away_from: date | None = None
    away_until: date | None = None
    synced_at: datetime | None = utc_column()
    # When PlanPulse first knew the person's Slack account (from the plan or the directory):
    # a pulse period that began before it was never theirs to answer.
    slack_linked_at: datetime | None = utc_column()


class Team(SQLModel, table=True):
    __tablename__ = "team"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=100)
    name: str
    channel: str | None = None  # as written in the plan: C… or #name
    channel_id: str | None = None  # resolved C… ID
    lead_id: int | None = Field(default=None, foreign_key="person.id")
    archived: bool = False


class TeamMember(SQLModel, table=True):
    __tablename__ = "team_member"

    team_id: int = Field(foreign_key="team.id", primary_key=True)
    person_id: int = Field(foreign_key="person.id", primary_key=True)


class Objective(SQLModel, table=True):
    __tablename__ = "objective"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=100)
    title: str
    owner_id: int | None = Field(default=None, foreign_key="person.id")
    archived: bool = False


class Kpi(SQLModel, table=True):
    """An outcome measure: health comes from where it is against the baseline→target trajectory."""

    __tablename__ = "kpi"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=100)
    objective_id: int = Field(foreign_key="objective.id", index=True)
    name: str
    unit: str = ""
    baseline: float
    target: float
    direction: str = Direction.UP
    start: date
    due: date
    # Shortfall against today's expected value, as a percentage of |target - baseline|.
    amber_tolerance: float = 10.0
    red_tolerance: float = 25.0
    # A KPI with no reading for longer than this (from its `start` when it has none) is off track.
    reading_every_days: int = 35
    archived: bool = False


class KpiReading(SQLModel, table=True):
    """Append-only: a reading is never changed, a correction is a newer reading."""

    __tablename__ = "kpi_reading"
    __table_args__ = (Index("ix_kpi_reading_kpi_as_of", "kpi_id", "as_of"),)

    id: int | None = Field(default=None, primary_key=True)
    kpi_id: int = Field(foreign_key="kpi.id")
    value: float
    as_of: date
    source: str = "import"  # import | pulse | slack | cli
    recorded_by_id: int | None = Field(default=None, foreign_key="person.id")
    recorded_at: datetime | None = utc_column()


class Initiative(SQLModel, table=True):
    __tablename__ = "initiative"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=100)
    title: str
    objective_id: int | None = Field(default=None, foreign_key="objective.id", index=True)
    owner_id: int = Field(foreign_key="person.id", index=True)
    team_id: int = Field(foreign_key="team.id", index=True)
    pulse: str | None = None  # 5-field cron; None means the plan's default
    status: str = InitiativeStatus.ACTIVE
    # Created, or last resumed from paused or archived: pulse periods that began before it are
    # never prompted.
    active_since: datetime = utc_column(nullable=False)
    dark_since: datetime | None = utc_column()  # owner silent through reminder and escalation
    archived: bool = False


class InitiativeKpi(SQLModel, table=True):
    __tablename__ = "initiative_kpi"
    # The primary key serves "KPIs of an initiative"; this serves "initiatives behind a KPI".
    __table_args__ = (Index("ix_initiative_kpi_kpi_id", "kpi_id"),)

    initiative_id: int = Field(foreign_key="initiative.id", primary_key=True)
    kpi_id: int = Field(foreign_key="kpi.id", primary_key=True)


class Milestone(SQLModel, table=True):
    __tablename__ = "milestone"
    __table_args__ = (
        Index("ix_milestone_status_due", "status", "due"),
        Index("ix_milestone_expected_due", "expected_due"),  # few have one: "expected late"
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=100)
    initiative_id: int = Field(foreign_key="initiative.id", index=True)
    title: str
    due: date
    original_due: date
    expected_due: date | None = None  # the owner's latest estimate from a pulse
    status: str = MilestoneStatus.OPEN
    completed_at: datetime | None = utc_column()
    scope_note: str | None = None  # what was cut when a decision descoped it
    # The tracker work that delivers it, as canonical link texts (bot/planfile/schema.py).
    # A server default, so rows written without it (bulk loads, COPY) hold no links rather than NULL.
    work: list[str] = Field(
        default_factory=list,
        sa_column=Column(JSON, nullable=False, server_default=text("'[]'")),
    )
    archived: bool = False


class Dependency(SQLModel, table=True):
    """What a requesting initiative needs from a provider team, by a date."""

    __tablename__ = "dependency"
    __table_args__ = (
        Index("ix_dependency_state_needed_by", "state", "needed_by"),
        Index("ix_dependency_state_ack_due", "state", "ack_due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=100)
    initiative_id: int = Field(foreign_key="initiative.id", index=True)
    milestone_id: int | None = Field(default=None, foreign_key="milestone.id", index=True)
    provider_team_id: int = Field(foreign_key="team.id", index=True)
    need: str
    needed_by: date
    ack_within_days: int | None = None  # None means the plan's default
    state: str = DependencyState.REQUESTED
    # Bumped whenever `need` or `needed_by` changes: each revision is asked for anew.
    request_revision: int = 1
    requested_at: datetime | None = utc_column()  # when the current revision's request was posted
    # End of the `ack_within_days`-th business day after the request was posted (plan timezone).
    ack_due_at: datetime | None = utc_column()
    acknowledged_at: datetime | None = utc_column()
    acknowledged_by_id: int | None = Field(default=None, foreign_key="person.id")
    alternative_date: date | None = None  # "can't make it": when it could be delivered instead
    delivered_at: datetime | None = utc_column()
    state_changed_at: datetime | None = utc_column()
    state_changed_by_id: int | None = Field(default=None, foreign_key="person.id")
    note: str | None = None  # the reason given with "can't make it", at risk or blocked
    archived: bool = False


class DependencyRequest(SQLModel, table=True):
    """One request message per dependency revision in the provider team's channel, posted once."""

    __tablename__ = "dependency_request"
    __table_args__ = (
        UniqueConstraint("dependency_id", "revision", name="uq_dependency_request_revision"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dependency_id: int = Field(foreign_key="dependency.id", index=True)
    revision: int
    claimed_at: datetime = utc_column(nullable=False)
    posted_at: datetime | None = utc_column()
    channel_id: str | None = None
    message_ts: str | None = None
    shown: str | None = None  # fingerprint of what the message shows: changed means chat.update
    error: str | None = None


# --- the pulse loop ---------------------------------------------------------------------------


class PulseRequest(SQLModel, table=True):
    """One pulse for one initiative and one period, claimed in the transaction that decides to send."""

    __tablename__ = "pulse_request"
    __table_args__ = (
        UniqueConstraint("initiative_id", "period", name="uq_pulse_initiative_period"),
        Index("ix_pulse_state", "state"),
        Index("ix_pulse_period", "period"),  # each tick looks up the current periods' rows
    )

    id: int | None = Field(default=None, primary_key=True)
    initiative_id: int = Field(foreign_key="initiative.id")
    owner_id: int = Field(foreign_key="person.id", index=True)
    period: str = Field(max_length=40)  # the due instant in UTC, ISO 8601: names the period
    due_at: datetime = utc_column(nullable=False)
    next_due_at: datetime | None = utc_column()  # reminders and escalation must come before this
    state: str = PulseState.CLAIMED
    claimed_at: datetime | None = utc_column()
    sent_at: datetime | None = utc_column()
    channel_id: str | None = None
    message_ts: str | None = None
    reminded_at: datetime | None = utc_column()
    escalated_at: datetime | None = utc_column()
    answered_at: datetime | None = utc_column()
    error: str | None = None


class PulseAnswer(SQLModel, table=True):
    """Append-only answers to a pulse; the newest is the current one, the older stay for audit."""

    __tablename__ = "pulse_answer"

    id: int | None = Field(default=None, primary_key=True)
    pulse_request_id: int = Field(foreign_key="pulse_request.id", index=True)
    status: str
    confidence: int | None = None
    blockers: str | None = None
    dependency_late: bool = False
    answered_by_id: int | None = Field(default=None, foreign_key="person.id")
    answered_at: datetime = utc_column(nullable=False)


# --- detection and decisions ------------------------------------------------------------------


class Alert(SQLModel, table=True):
    """One alert per (kind, subject) while it lasts: `open_key` is set while open, cleared on resolve.

    A condition that comes back after being resolved opens a new row. `facts` is what the
    condition found (rendered by the kind's template); `shown` fingerprints what its message
    shows, so a tick in which nothing changed calls Slack for nothing.
    """

    __tablename__ = "alert"
    __table_args__ = (Index("ix_alert_state_kind", "state", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=40)
    subject: str = Field(max_length=200)  # e.g. "milestone:17"
    open_key: str | None = Field(default=None, unique=True, max_length=250)
    state: str = AlertState.OPEN
    opened_at: datetime = utc_column(nullable=False)
    updated_at: datetime | None = utc_column()
    resolved_at: datetime | None = utc_column()
    channel_id: str | None = None  # where its message is (its own, or the channel's summary)
    message_ts: str | None = None
    in_summary: bool = False  # over the channel's noise budget: listed in a summary message
    claimed_at: datetime | None = utc_column()  # a process is posting it (a lease, see bot/alerts)
    posted_at: datetime | None = utc_column()
    notified_at: datetime | None = utc_column()  # the direct messages of its raising were sent
    shown: str | None = None
    facts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class ChannelStatus(SQLModel, table=True):
    """What the bot last learnt about a channel the plan names: a problem open until it clears."""

    __tablename__ = "channel_status"

    ref: str = Field(primary_key=True, max_length=100)  # as written in the plan: C… or #name
    channel_id: str | None = None
    name: str = ""
    problem: str | None = None  # not_found | archived | not_member | None when fine
    checked_at: datetime = utc_column(nullable=False)


class PollFraming(SQLModel, table=True):
    """One slip of a milestone, and the owner's framing of the options before its poll opens.

    `slip_key` names the slip ("alert:<alert id>": the missed or at-risk alert that raised it; a
    condition that clears and comes back is a new alert, so a new slip), so each slip asks once
    and opens at most one poll, whatever the number of ticks, replicas or restarts.
    """

    __tablename__ = "poll_framing"
    __table_args__ = (Index("ix_poll_framing_pending", "poll_id", "framing_due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    milestone_id: int = Field(foreign_key="milestone.id", index=True)
    slip_key: str = Field(unique=True, max_length=200)
    cause: str = Field(max_length=20)  # SlipCause
    dependency_id: int | None = Field(default=None, foreign_key="dependency.id")
    slipped_at: datetime = utc_column(nullable=False)  # when the slip was first seen
    # The owner is asked once (claimed_at), and the poll opens with what is known at framing_due_at.
    owner_id: int | None = Field(default=None, foreign_key="person.id")
    claimed_at: datetime | None = utc_column()
    asked_at: datetime | None = utc_column()
    framing_due_at: datetime = utc_column(nullable=False)
    channel_id: str | None = None  # the owner's DM with the framing button
    message_ts: str | None = None
    proposed_due: date | None = None  # what the owner framed (or what is known)
    scope_cut: str | None = None
    resources: str | None = None
    framed_at: datetime | None = utc_column()
    framed_by_id: int | None = Field(default=None, foreign_key="person.id")
    poll_id: int | None = Field(default=None, foreign_key="decision_poll.id")
    # The slip cleared (the milestone done, moved or archived) before its poll opened: no poll,
    # and the tick stops looking at it.
    settled_at: datetime | None = utc_column()


class DecisionPoll(SQLModel, table=True):
    """A leaders' vote on one slip of a milestone, posted once in the decision channel.

    `facts` is what the parent message states (what slipped, what depends on it, the options),
    frozen at opening; the tally is read from the votes. `shown` fingerprints what the message
    shows, so a vote that was saved but not yet drawn (a restart) is drawn at the next chance.
    """

    __tablename__ = "decision_poll"
    __table_args__ = (Index("ix_decision_poll_state_deadline", "state", "deadline"),)

    id: int | None = Field(default=None, primary_key=True)
    milestone_id: int = Field(foreign_key="milestone.id", index=True)
    open_key: str | None = Field(
        default=None, unique=True, max_length=120
    )  # "milestone:<id>" while open: one open poll per milestone
    state: str = PollState.OPEN
    opened_at: datetime = utc_column(nullable=False)
    slipped_at: datetime | None = (
        utc_column()
    )  # when the slip was first seen: slip-to-decision time
    original_deadline: datetime | None = utc_column()  # the deadline before any extension
    deadline: datetime = utc_column(nullable=False)
    extended_at: datetime | None = utc_column()  # the one extension for want of quorum
    opened_by_id: int | None = Field(default=None, foreign_key="person.id")
    anonymous: bool = False
    proposed_due: date | None = None  # the date a delay would move the milestone to
    scope_cut: str | None = None
    resources: str | None = None
    facts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    claimed_at: datetime | None = utc_column()  # a process is posting the parent message (lease)
    channel_id: str | None = None
    message_ts: str | None = None
    shown: str | None = None
    closed_at: datetime | None = utc_column()
    outcome: str | None = None  # a DecisionOption, or PollOutcome.UNDECIDED / WITHDRAWN
    outcome_claimed_at: datetime | None = utc_column()  # posting the outcome in the thread (lease)
    outcome_posted_at: datetime | None = utc_column()


class Vote(SQLModel, table=True):
    """A leader's vote: one row per (poll, leader), changed in place until the poll closes.

    In an anonymous poll `option` stays NULL: the choice is a `Ballot` that names no one.
    """

    __tablename__ = "vote"
    __table_args__ = (UniqueConstraint("poll_id", "voter_id", name="uq_vote_poll_voter"),)

    id: int | None = Field(default=None, primary_key=True)
    poll_id: int = Field(foreign_key="decision_poll.id", index=True)
    voter_id: int = Field(foreign_key="person.id")
    option: str | None = None
    voted_at: datetime = utc_column(nullable=False)
    changed_at: datetime | None = utc_column()


class Ballot(SQLModel, table=True):
    """An anonymous poll's choice: counted in the tally, linked to no voter (a random key)."""

    __tablename__ = "ballot"

    id: str = Field(primary_key=True, max_length=36)  # uuid4: no order that matches the votes
    poll_id: int = Field(foreign_key="decision_poll.id", index=True)
    option: str


class PollReminder(SQLModel, table=True):
    """A non-voter reminded once, when a poll is extended for want of quorum."""

    __tablename__ = "poll_reminder"

    poll_id: int = Field(foreign_key="decision_poll.id", primary_key=True)
    person_id: int = Field(foreign_key="person.id", primary_key=True)
    claimed_at: datetime = utc_column(nullable=False)
    sent_at: datetime | None = utc_column()


class Decision(SQLModel, table=True):
    """The decision log: what was decided about a milestone, and what it did to the plan."""

    __tablename__ = "decision"

    id: int | None = Field(default=None, primary_key=True)
    milestone_id: int = Field(foreign_key="milestone.id", index=True)
    poll_id: int | None = Field(default=None, foreign_key="decision_poll.id", unique=True)
    option: str  # a DecisionOption, or PollOutcome.UNDECIDED / WITHDRAWN
    new_due: date | None = None
    days_moved: int | None = None
    scope_cut: str | None = None
    resources: str | None = None
    risk_accepted_until: date | None = None  # accept the risk: raised again after this day
    # Detection raises neither missed nor at-risk for the milestone through this day (plan
    # timezone): the leaders settled it (accept the risk, cut scope, add resources; see
    # bot/decisions/outcomes.py). A condition still there the day after is raised anew.
    settled_until: date | None = Field(default=None, index=True)
    votes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    summary: str = ""
    slipped_at: datetime | None = utc_column()
    decided_at: datetime = utc_column(nullable=False)
    later_shift_offered_at: datetime | None = utc_column()
    later_shifted_at: datetime | None = utc_column()  # the owner shifted later milestones (once)
    # The thread line listing who was asked about the knock-on, posted once, then updated.
    knock_on_claimed_at: datetime | None = utc_column()
    knock_on_ts: str | None = None


class DecisionAction(SQLModel, table=True):
    """An "add resources" decision's follow-up: who gets the resources, by when; reminded once."""

    __tablename__ = "decision_action"
    __table_args__ = (Index("ix_decision_action_due", "reminded_at", "due"),)

    id: int | None = Field(default=None, primary_key=True)
    decision_id: int = Field(foreign_key="decision.id", unique=True)
    owner_id: int = Field(foreign_key="person.id")
    what: str
    due: date
    reminded_at: datetime | None = utc_column()
    done_at: datetime | None = utc_column()


class KnockOn(SQLModel, table=True):
    """An owner whose date a decision moved, asked once to confirm they can still make theirs."""

    __tablename__ = "knock_on"
    __table_args__ = (UniqueConstraint("decision_id", "subject", name="uq_knock_on_subject"),)

    id: int | None = Field(default=None, primary_key=True)
    decision_id: int = Field(foreign_key="decision.id", index=True)
    subject: str = Field(max_length=60)  # "milestone:<id>" or "dependency:<id>"
    person_id: int = Field(foreign_key="person.id")
    new_date: date
    claimed_at: datetime | None = utc_column()
    asked_at: datetime | None = utc_column()
    channel_id: str | None = None
    message_ts: str | None = None
    answer: str | None = None  # KnockOnAnswer
    answered_at: datetime | None = utc_column()
    answer_date: date | None = None  # "this moves us too": their own new date
    note: str | None = None


# --- bookkeeping ------------------------------------------------------------------------------


class AuditEntry(SQLModel, table=True):
    """Who changed what in the plan, when, with the values before and after."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_entity", "entity", "entity_key"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = utc_column(nullable=False)
    actor: str  # "cli:<login>" or "slack:<user id>" or "system"
    action: str  # create | update | archive | restore | answer | vote | decide ...
    entity: str
    entity_key: str
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class DigestDelivery(SQLModel, table=True):
    """One weekly digest to one recipient: claimed once per (period, recipient), then posted.

    `recipient` is `channel` or `person:<id>` (a leader's DM); `period` is the cadence fire's
    wall time in the plan's zone. The parent message, then its thread replies in order: a
    process that takes over a stale claim carries on from `thread_posted`.
    """

    __tablename__ = "digest_delivery"
    __table_args__ = (
        UniqueConstraint("period", "recipient", name="uq_digest_delivery_period_recipient"),
    )

    id: int | None = Field(default=None, primary_key=True)
    period: str = Field(max_length=40)
    recipient: str = Field(max_length=60)
    claimed_at: datetime = utc_column(nullable=False)
    channel_id: str | None = None
    message_ts: str | None = None
    posted_at: datetime | None = utc_column()
    thread_posted: int = 0  # thread replies already in Slack
    finished_at: datetime | None = utc_column()
    error: str | None = None


class WebhookDelivery(SQLModel, table=True):
    """A tracker's webhook delivery already applied: GitHub and Jira redeliver, by the same ID."""

    __tablename__ = "webhook_delivery"

    source: str = Field(primary_key=True, max_length=10)  # github | jira
    delivery_id: str = Field(primary_key=True, max_length=100)
    received_at: datetime = utc_column(nullable=False)


class WorkItem(SQLModel, table=True):
    """An issue or pull request of a tracker that a milestone's `work` links, as its webhooks told.

    Only work the plan links is stored. `updated_at` is the tracker's own: an older update
    arriving after a newer one does not overwrite it.
    """

    __tablename__ = "work_item"
    __table_args__ = (
        UniqueConstraint("tracker", "project", "ref", name="uq_work_item_tracker_project_ref"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tracker: str = Field(max_length=10)  # github | jira
    project: str = Field(max_length=200, index=True)  # owner/name, or a Jira project key
    ref: str = Field(max_length=60)  # the issue or pull request number, or the Jira key
    kind: str = Field(max_length=20)  # issue | pull_request
    title: str = ""
    url: str | None = None
    closed: bool = False
    labels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    milestone: str | None = None  # GitHub: its milestone's title
    epic: str | None = None  # Jira: its parent's key
    assignee: str | None = None
    closed_at: datetime | None = utc_column()
    updated_at: datetime = utc_column(nullable=False)


class JobRun(SQLModel, table=True):
    """A periodic job claimed for one period (e.g. the daily directory sync): one run per period."""

    __tablename__ = "job_run"
    __table_args__ = (UniqueConstraint("job", "period", name="uq_job_run_job_period"),)

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=60)
    period: str = Field(max_length=40)
    started_at: datetime = utc_column(nullable=False)
    finished_at: datetime | None = utc_column()


class ProcessedEvent(SQLModel, table=True):
    """Slack event IDs already handled: Slack retries events and Bolt does not deduplicate."""

    __tablename__ = "processed_event"

    event_id: str = Field(primary_key=True, max_length=64)
    received_at: datetime = utc_column(nullable=False)
