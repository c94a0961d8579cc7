"""Answers to /kpi, /plan and App Home: queries plus the health rules, as plain data for templates."""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlmodel import Session

from bot.health import initiative_health, milestone_missed, plan_today
from bot.kpis import Health, expected_value, kpi_health, reading_age_days, sparkline
from bot.links import MessageLinks
from bot.work.burnup import Burnup
from bot.work.progress import milestone_burnups
from storage import reports as q
from storage.models import Alert, DecisionOption, Initiative, Kpi, Milestone, Person
from storage.page import Page
from storage.people import admins, leaders, person_by_slack_id
from storage.plan import plan_timezone
from storage.pulses import pending_pulses
from templates.ids import AlertKinds

SPARK_HISTORY = 12  # readings per sparkline: about a quarter of weekly readings
SCORECARD_LINES = 25  # KPIs the scorecard lists; a larger plan's are counted, the worst listed
# The order in which a large plan's KPIs earn a line on the scorecard.
_ATTENTION = {Health.OFF_TRACK: 0, Health.AT_RISK: 1, Health.NO_DATA: 2, Health.ON_TRACK: 3}
CARD_HISTORY = 12  # readings listed on a KPI card
LIST_LIMIT = 60  # rows fetched for a list; the templates show what fits and say "and N more"
CHOICES_LIMIT = 25
SUGGESTIONS = 5
# Alerts fetched per list: each shown alert may cost a permalink lookup, and a slash command
# is answered within 3 seconds.
ALERT_LIST_LIMIT = 30

# Problems of the bot's own set-up, told to the admins (or, when the plan has none, the
# leaders), as bot/alerts/conditions.py does: theirs to see, nobody else's.
ADMIN_KINDS = (AlertKinds.OWNER_UNREACHABLE, AlertKinds.CHANNEL_UNREACHABLE)
# Alerts about one milestone, which carry its Mark done / New date / Descope buttons.
MILESTONE_KINDS = (AlertKinds.MILESTONE_MISSED, AlertKinds.MILESTONE_AT_RISK)


class PlanSubcommand(StrEnum):
    MINE = "mine"
    DEPS = "deps"
    ALERTS = "alerts"
    DECISIONS = "decisions"
    DIGEST = "digest"
    HELP = "help"


@dataclass
class KpiLine:
    """One KPI as the scorecard and cards show it."""

    key: str
    name: str
    unit: str
    direction: str
    baseline: float
    target: float
    start: date
    due: date
    expected: float
    latest: q.Reading | None
    health: Health
    spark: str
    age_days: int | None


@dataclass
class ObjectiveGroup:
    key: str
    title: str
    kpis: list[KpiLine]


@dataclass
class KpiScorecard:
    day: date
    groups: list[ObjectiveGroup]  # the KPIs listed: all of them, or those most in need of attention
    total: int | None = None  # live KPIs in the plan; None: as many as `groups` lists
    counts: dict[Health, int] = field(default_factory=dict)  # every live KPI, by health

    @property
    def listed(self) -> int:
        return sum(len(group.kpis) for group in self.groups)

    @property
    def kpi_count(self) -> int:
        return self.listed if self.total is None else self.total


@dataclass
class LinkedInitiative:
    key: str
    title: str
    owner_slack_id: str | None
    pulse: q.LastPulse | None


@dataclass
class KpiCard:
    day: date
    kpi: KpiLine
    objective_title: str
    readings: list[q.Reading]  # newest first
    initiatives: list[LinkedInitiative]


@dataclass
class KpiChoices:
    query: str
    kpis: list[tuple[str, str]]  # (key, name)
    total: int


@dataclass
class KpiNoMatch:
    query: str
    suggestions: list[tuple[str, str]]


@dataclass
class KpiChartWanted:
    """`/kpi <key or name> chart` naming one KPI exactly: the chart is drawn after the ack."""

    key: str
    name: str


@dataclass
class KpiChartHelp:
    """`/kpi chart` with no KPI before the word."""


KpiAnswer = KpiScorecard | KpiCard | KpiChoices | KpiNoMatch | KpiChartWanted | KpiChartHelp

CHART_WORD = "chart"


@dataclass
class MilestoneLine:
    key: str
    title: str
    due: date
    expected_due: date | None
    status: str
    missed: bool
    scope_note: str | None
    work: Burnup | None = None  # the tracker work its links take in


@dataclass
class DependencyLine:
    key: str
    need: str
    needed_by: date
    state: str
    provider_team: str
    initiative_key: str
    initiative_title: str
    milestone_title: str | None
    note: str | None


@dataclass
class InitiativeCard:
    key: str
    title: str
    status: str
    owner_slack_id: str | None
    owner_name: str
    team_name: str
    team_lead_slack_id: str | None
    objective_title: str | None
    health: Health
    pulse: q.LastPulse | None
    milestones: list[MilestoneLine]
    dependencies: list[DependencyLine]
    kpis: list[KpiLine]


@dataclass
class InitiativeSummary:
    key: str
    title: str
    health: Health
    next_milestone: MilestoneLine | None


@dataclass
class MyInitiatives:
    in_plan: bool
    initiatives: list[InitiativeSummary]
    total: int


@dataclass
class MyDependencies:
    in_plan: bool
    to_provide: Page[DependencyLine]
    waiting_for: Page[DependencyLine]


@dataclass
class DecisionLine:
    milestone_key: str
    milestone_title: str
    initiative_key: str
    option: str
    new_due: date | None
    scope_cut: str | None
    summary: str
    decided_at: datetime | None
    resources: str | None = None
    risk_accepted_until: date | None = None
    counts: dict[str, int] = field(default_factory=dict)  # option → votes
    voters: list[tuple[str, str]] = field(default_factory=list)  # (slack id, option); named polls
    anonymous: bool = False
    link: str | None = None  # the poll's parent message: its thread is the discussion
    slip_hours: int | None = None  # from the slip first seen to the decision, in whole hours


@dataclass
class DecisionLog:
    decisions: list[DecisionLine]
    total: int


@dataclass
class AlertLine:
    """One open alert in a list: its kind and facts (worded by templates/blocks/alerts/line.txt.j2)."""

    alert_id: int
    kind: str
    facts: dict[str, Any]
    opened_at: datetime
    link: str | None  # its message in Slack (its own, or the summary that lists it)
    milestone_id: int | None  # set for milestone alerts: Home shows that milestone's buttons


@dataclass
class AlertList:
    """`/plan alerts`: the open alerts about the reader's part of the plan, then the others."""

    in_plan: bool
    yours: Page[AlertLine]
    others: Page[AlertLine]


@dataclass
class PlanHelp:
    unknown: str | None = None  # the word that was not a subcommand nor an initiative key
    suggestions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DigestWanted:
    """`/plan digest`: the current week's digest, built after the ack (it reads the whole plan)."""


PlanAnswer = (
    InitiativeCard
    | MyInitiatives
    | MyDependencies
    | AlertList
    | DecisionLog
    | PlanHelp
    | DigestWanted
)


@dataclass
class PendingPulse:
    """A pulse waiting for the owner's answer; Home shows it with the prompt DM's buttons."""

    pulse_id: int
    initiative_key: str
    initiative_title: str
    due_at: datetime | None
    closes_at: datetime | None


@dataclass
class OpenPoll:
    """A poll open to a leader's vote; Home shows it with the poll's own vote buttons."""

    poll_id: int
    milestone_key: str
    milestone_title: str
    initiative_title: str
    deadline: datetime | None
    channel_id: str | None
    voted: bool
    slip_days: int | None = None
    proposed_due: date | None = None
    anonymous: bool = False
    my_option: str | None = None  # their current vote (never known in an anonymous poll)


@dataclass
class HomeData:
    in_plan: bool
    is_leader: bool
    initiatives: MyInitiatives
    pulses: Page[PendingPulse]
    dependencies: Page[DependencyLine]
    polls: Page[OpenPoll]
    alerts: Page[AlertLine]


# --- building blocks --------------------------------------------------------------------------


def plan_day(session: Session, now: datetime) -> tuple[str, date]:
    """The plan's timezone and today's date there: KPI trajectories and deadlines use it."""
    tz = plan_timezone(session=session)
    return tz, plan_today(now, tz)


def kpi_line(kpi: Kpi | q.ScorecardKpi, readings: list[q.Reading], day: date) -> KpiLine:
    latest = readings[-1] if readings else None
    return KpiLine(
        key=kpi.key,
        name=kpi.name,
        unit=kpi.unit,
        direction=kpi.direction,
        baseline=kpi.baseline,
        target=kpi.target,
        start=kpi.start,
        due=kpi.due,
        expected=expected_value(kpi, day),
        latest=latest,
        health=kpi_health(kpi, latest.value if latest else None, day),
        spark=sparkline([r.value for r in readings]),
        age_days=reading_age_days(latest.as_of if latest else None, day),
    )


def _milestone_line(
    milestone: Milestone, now: datetime, tz: str, work: Burnup | None = None
) -> MilestoneLine:
    return MilestoneLine(
        key=milestone.key,
        title=milestone.title,
        due=milestone.due,
        expected_due=milestone.expected_due,
        status=milestone.status,
        missed=milestone_missed(milestone, now, tz),
        scope_note=milestone.scope_note,
        work=work,
    )


def _dependency_line(row: q.DependencyRow) -> DependencyLine:
    dep = row.dependency
    return DependencyLine(
        key=dep.key,
        need=dep.need,
        needed_by=dep.needed_by,
        state=dep.state,
        provider_team=row.provider.name,
        initiative_key=row.initiative.key,
        initiative_title=row.initiative.title,
        milestone_title=row.milestone.title if row.milestone else None,
        note=dep.note,
    )


def health_of(inputs: q.HealthInputs, now: datetime, tz: str, day: date) -> Health:
    """An initiative's health from its last pulse, its KPIs and its earliest open milestone."""
    first_open = inputs.earliest_open_milestone
    return initiative_health(
        pulse_status=inputs.last_pulse.status if inputs.last_pulse else None,
        kpi_healths=[
            kpi_health(kpi, readings[-1].value if readings else None, day)
            for kpi, readings in inputs.kpis
        ],
        # The earliest open milestone is missed whenever any is: checking it is enough.
        any_milestone_missed=first_open is not None and milestone_missed(first_open, now, tz),
    )


def _suggest(query: str, candidates: list[tuple[str, str]], limit: int) -> list[tuple[str, str]]:
    """Close matches on key or name (difflib), best first, without duplicates."""
    by_word: dict[str, tuple[str, str]] = {}
    for key, name in candidates:
        by_word.setdefault(key.lower(), (key, name))
        by_word.setdefault(name.lower(), (key, name))
    picked: list[tuple[str, str]] = []
    for word in difflib.get_close_matches(query.lower(), list(by_word), n=limit * 2, cutoff=0.5):
        if by_word[word] not in picked:
            picked.append(by_word[word])
    return picked[:limit]


# --- /kpi -------------------------------------------------------------------------------------


def kpi_scorecard(session: Session, now: datetime) -> KpiScorecard:
    """The live KPIs grouped by objective, with health against today's expected value.

    Up to SCORECARD_LINES KPIs are listed, all of them in a plan that small; in a larger one the
    ones most in need of attention (off track, at risk, no data yet), with every KPI counted by
    health. Only the listed KPIs' histories are read, for their sparklines.
    """
    _, day = plan_day(session, now)
    kpis = q.scorecard_kpis(session=session)
    healths = [kpi_health(k, k.latest.value if k.latest else None, day) for k in kpis]
    # A stable sort: within one health the KPIs keep their objective and key order.
    by_need = sorted(range(len(kpis)), key=lambda n: _ATTENTION[healths[n]])
    listed = sorted(by_need[:SCORECARD_LINES])
    histories = q.recent_readings(
        session=session, kpi_ids=[kpis[n].id for n in listed], per_kpi=SPARK_HISTORY
    )
    groups: dict[str, ObjectiveGroup] = {}
    for n in listed:
        kpi = kpis[n]
        group = groups.setdefault(
            kpi.objective_key,
            ObjectiveGroup(key=kpi.objective_key, title=kpi.objective_title, kpis=[]),
        )
        group.kpis.append(kpi_line(kpi, histories.get(kpi.id, []), day))
    return KpiScorecard(
        day=day, groups=list(groups.values()), total=len(kpis), counts=dict(Counter(healths))
    )


def kpi_card(session: Session, kpi: Kpi, now: datetime) -> KpiCard:
    _, day = plan_day(session, now)
    data = q.kpi_card(session=session, kpi=kpi, history=max(CARD_HISTORY, SPARK_HISTORY))
    return KpiCard(
        day=day,
        kpi=kpi_line(kpi, data.readings[-SPARK_HISTORY:], day),
        objective_title=data.objective.title if data.objective else "",
        readings=list(reversed(data.readings[-CARD_HISTORY:])),
        initiatives=[
            LinkedInitiative(
                key=i.key,
                title=i.title,
                owner_slack_id=owner.slack_id,
                pulse=pulse,
            )
            for i, owner, pulse in data.initiatives
        ],
    )


def kpi_answer(session: Session, query: str, now: datetime) -> KpiAnswer:
    """`/kpi` → scorecard; `/kpi <query>` → one card, the choices, or "did you mean";
    `/kpi <key or name> chart` → that KPI's chart, when the words before "chart" name it exactly.

    A KPI whose own key or whole name ends in "chart" is still found by it.
    """
    query = " ".join(query.split())
    if not query:
        return kpi_scorecard(session, now)
    words = query.split(" ")
    if words[-1].lower() == CHART_WORD and q.exact_kpi(session=session, query=query) is None:
        named = " ".join(words[:-1])
        if not named:
            return KpiChartHelp()
        kpi = q.exact_kpi(session=session, query=named)
        if kpi is not None:
            return KpiChartWanted(key=kpi.key, name=kpi.name)
        return KpiNoMatch(
            query=named, suggestions=_suggest(named, q.kpi_names(session=session), SUGGESTIONS)
        )
    found = q.find_kpis(session=session, query=query, limit=CHOICES_LIMIT)
    if found.total == 1:
        return kpi_card(session, found.rows[0], now)
    if found.total > 1:
        return KpiChoices(
            query=query, kpis=[(k.key, k.name) for k in found.rows], total=found.total
        )
    return KpiNoMatch(
        query=query, suggestions=_suggest(query, q.kpi_names(session=session), SUGGESTIONS)
    )


# --- /plan ------------------------------------------------------------------------------------


def initiative_card(session: Session, initiative: Initiative, now: datetime) -> InitiativeCard:
    tz, day = plan_day(session, now)
    data = q.initiative_card(session=session, initiative=initiative, history=SPARK_HISTORY)
    work = milestone_burnups(session, data.milestones, now, day)
    return InitiativeCard(
        key=initiative.key,
        title=initiative.title,
        status=initiative.status,
        owner_slack_id=data.owner.slack_id if data.owner else None,
        owner_name=data.owner.name if data.owner else "",
        team_name=data.team.name if data.team else "",
        team_lead_slack_id=data.team_lead.slack_id if data.team_lead else None,
        objective_title=data.objective.title if data.objective else None,
        health=health_of(data.health, now, tz, day),
        pulse=data.health.last_pulse,
        milestones=[_milestone_line(m, now, tz, work.get(m.id or 0)) for m in data.milestones],
        dependencies=[_dependency_line(row) for row in data.dependencies],
        kpis=[kpi_line(k, readings, day) for k, readings in data.health.kpis],
    )


def my_initiatives(session: Session, person: Person | None, now: datetime) -> MyInitiatives:
    if person is None or person.id is None:
        return MyInitiatives(in_plan=False, initiatives=[], total=0)
    tz, day = plan_day(session, now)
    page = q.initiatives_owned_by(session=session, person_id=person.id, limit=LIST_LIMIT)
    inputs = q.health_inputs(session=session, initiative_ids=[i.id or 0 for i in page.rows])
    nexts = [h.earliest_open_milestone for h in inputs.values() if h.earliest_open_milestone]
    work = milestone_burnups(session, nexts, now, day)
    summaries = []
    for initiative in page.rows:
        health = inputs[initiative.id or 0]
        first_open = health.earliest_open_milestone
        summaries.append(
            InitiativeSummary(
                key=initiative.key,
                title=initiative.title,
                health=health_of(health, now, tz, day),
                next_milestone=_milestone_line(first_open, now, tz, work.get(first_open.id or 0))
                if first_open
                else None,
            )
        )
    return MyInitiatives(in_plan=True, initiatives=summaries, total=page.total)


def _lines(page: Page[q.DependencyRow]) -> Page[DependencyLine]:
    return Page(rows=[_dependency_line(row) for row in page.rows], total=page.total)


def my_dependencies(session: Session, person: Person | None) -> MyDependencies:
    if person is None or person.id is None:
        empty: Page[DependencyLine] = Page(rows=[], total=0)
        return MyDependencies(in_plan=False, to_provide=empty, waiting_for=empty)
    teams = q.team_ids_of(session=session, person_id=person.id)
    return MyDependencies(
        in_plan=True,
        to_provide=_lines(
            q.open_dependencies_for_teams(session=session, team_ids=teams, limit=LIST_LIMIT)
        ),
        waiting_for=_lines(
            q.open_dependencies_requested_by(session=session, owner_id=person.id, limit=LIST_LIMIT)
        ),
    )


def decision_log(session: Session, *, links: MessageLinks | None = None) -> DecisionLog:
    page = q.recent_decisions(session=session, limit=LIST_LIMIT)
    found = links.of((row.poll_channel, row.poll_ts) for row in page.rows) if links else {}
    return DecisionLog(
        decisions=[_decision_line(row, found) for row in page.rows],
        total=page.total,
    )


def _decision_line(row: q.DecisionRow, links: dict[tuple[str, str], str]) -> DecisionLine:
    decision = row.decision
    votes = decision.votes or {}
    anonymous = bool(votes.get("anonymous"))
    voters = [
        (str(v.get("slack_id") or ""), str(v["option"]))
        for v in votes.get("voters", [])
        if isinstance(v, dict) and v.get("option") and not anonymous
    ]
    given = {str(k): int(n) for k, n in (votes.get("counts") or {}).items() if n}
    # The options in the order the poll offers them; anything else after them.
    counts: dict[str, int] = {str(o): given[o] for o in DecisionOption if o in given}
    counts.update((o, n) for o, n in given.items() if o not in counts)
    slip = (
        decision.decided_at - decision.slipped_at
        if decision.slipped_at is not None and decision.decided_at is not None
        else None
    )
    return DecisionLine(
        milestone_key=row.milestone.key,
        milestone_title=row.milestone.title,
        initiative_key=row.initiative.key,
        option=decision.option,
        new_due=decision.new_due,
        scope_cut=decision.scope_cut,
        summary=decision.summary,
        decided_at=decision.decided_at,
        resources=decision.resources,
        risk_accepted_until=decision.risk_accepted_until,
        counts=counts,
        voters=voters,
        anonymous=anonymous,
        link=links.get((row.poll_channel, row.poll_ts))
        if row.poll_channel and row.poll_ts
        else None,
        slip_hours=max(int(slip.total_seconds() // 3600), 0) if slip is not None else None,
    )


# --- alerts -----------------------------------------------------------------------------------


def hears_admin_alerts(session: Session, person: Person) -> bool:
    """Whether the admin kinds are this person's: they go to the admins, else the leaders."""
    told = admins(session=session) or leaders(session=session)
    return any(p.id == person.id for p in told)


def _alert_lines(pages: list[Page[Alert]], links: MessageLinks | None) -> list[Page[AlertLine]]:
    """Alert rows as lines, the links of all their messages looked up in one batch."""
    found = (
        links.of((a.channel_id, a.message_ts) for page in pages for a in page.rows)
        if links is not None
        else {}
    )

    def line(alert: Alert) -> AlertLine:
        milestone_id = alert.facts.get("milestone_id") if alert.kind in MILESTONE_KINDS else None
        return AlertLine(
            alert_id=alert.id or 0,
            kind=alert.kind,
            facts=alert.facts,
            opened_at=alert.opened_at,
            link=found.get((alert.channel_id or "", alert.message_ts or "")),
            milestone_id=int(milestone_id) if isinstance(milestone_id, int) else None,
        )

    return [Page(rows=[line(a) for a in page.rows], total=page.total) for page in pages]


def open_alerts(
    session: Session, person: Person | None, *, links: MessageLinks | None = None
) -> AlertList:
    """Every open alert, those about the person's teams and initiatives first.

    Theirs: initiatives they own or that belong to a team they lead or are a member of (with
    the milestones and the dependencies of those), dependencies their teams must deliver, KPIs
    of objectives they own or moved by those initiatives; for the admins, the admin kinds.
    Nobody else sees the admin kinds.
    """
    if person is None or person.id is None:
        everything = q.open_alert_page(
            session=session, limit=ALERT_LIST_LIMIT, hidden_kinds=ADMIN_KINDS
        )
        [others] = _alert_lines([everything], links)
        return AlertList(in_plan=False, yours=Page(rows=[], total=0), others=others)
    admin = hears_admin_alerts(session, person)
    teams = q.team_ids_of(session=session, person_id=person.id)
    scope = q.AlertScope(
        person_id=person.id,
        initiative_team_ids=teams,
        provider_team_ids=teams,
        linked_kpis=True,
        own_kinds=ADMIN_KINDS if admin else (),
    )
    hidden = () if admin else ADMIN_KINDS
    pages = [
        q.open_alert_page(
            session=session,
            limit=ALERT_LIST_LIMIT,
            scope=scope,
            inside=inside,
            hidden_kinds=hidden,
        )
        for inside in (True, False)
    ]
    yours, others = _alert_lines(pages, links)
    return AlertList(in_plan=True, yours=yours, others=others)


def my_alerts(
    session: Session, person: Person, *, links: MessageLinks | None = None
) -> Page[AlertLine]:
    """The open alerts App Home shows one person, with buttons where they may act.

    Alerts about initiatives they own or whose team they lead (their milestones, the
    dependencies they wait for, the initiatives themselves), dependencies their teams must
    deliver, KPIs of objectives they own; for the admins, the admin kinds too.
    """
    assert person.id is not None
    scope = q.AlertScope(
        person_id=person.id,
        initiative_team_ids=q.teams_led_by(session=session, person_id=person.id),
        provider_team_ids=q.team_ids_of(session=session, person_id=person.id),
        own_kinds=ADMIN_KINDS if hears_admin_alerts(session, person) else (),
    )
    page = q.open_alert_page(session=session, limit=ALERT_LIST_LIMIT, scope=scope)
    [lines] = _alert_lines([page], links)
    return lines


def plan_answer(
    session: Session,
    text: str,
    slack_user_id: str,
    now: datetime,
    *,
    links: MessageLinks | None = None,
) -> PlanAnswer:
    """`/plan <initiative-key | mine | deps | alerts | decisions | digest | help>`; else the help.

    `links` looks up the links of alert messages (`/plan alerts`); without it none are shown.
    """
    words = text.split()
    if not words:
        return PlanHelp()
    word = words[0]
    if word.lower() in set(PlanSubcommand):
        sub = PlanSubcommand(word.lower())
        person = person_by_slack_id(session=session, slack_id=slack_user_id)
        if sub is PlanSubcommand.MINE:
            return my_initiatives(session, person, now)
        if sub is PlanSubcommand.DEPS:
            return my_dependencies(session, person)
        if sub is PlanSubcommand.ALERTS:
            return open_alerts(session, person, links=links)
        if sub is PlanSubcommand.DECISIONS:
            return decision_log(session, links=links)
        if sub is PlanSubcommand.DIGEST:
            return DigestWanted()
        return PlanHelp()
    initiative = q.initiative_by_key(session=session, key=word)
    if initiative is not None:
        return initiative_card(session, initiative, now)
    keys = q.initiative_keys(session=session)
    return PlanHelp(
        unknown=word,
        suggestions=difflib.get_close_matches(word.lower(), keys, n=SUGGESTIONS, cutoff=0.6),
    )


# --- App Home ---------------------------------------------------------------------------------


def _slip_days(facts: dict[str, Any]) -> int | None:
    slip = facts.get("slip_days")
    return slip if isinstance(slip, int) else None


def home_data(
    session: Session, slack_user_id: str, now: datetime, *, links: MessageLinks | None = None
) -> HomeData:
    """What the Home tab shows one person: their alerts, initiatives, pulses, dependencies, polls."""
    person = person_by_slack_id(session=session, slack_id=slack_user_id)
    empty_pulses: Page[PendingPulse] = Page(rows=[], total=0)
    empty_deps: Page[DependencyLine] = Page(rows=[], total=0)
    empty_polls: Page[OpenPoll] = Page(rows=[], total=0)
    if person is None or person.id is None:
        return HomeData(
            in_plan=False,
            is_leader=False,
            initiatives=MyInitiatives(in_plan=False, initiatives=[], total=0),
            pulses=empty_pulses,
            dependencies=empty_deps,
            polls=empty_polls,
            alerts=Page(rows=[], total=0),
        )
    pulses = pending_pulses(session=session, person_id=person.id, now=now, limit=LIST_LIMIT)
    teams = q.team_ids_of(session=session, person_id=person.id)
    leader = person.is_leader and person.active  # who may vote, as the vote listener checks
    polls = (
        q.open_polls(session=session, voter_id=person.id, limit=LIST_LIMIT)
        if leader
        else Page(rows=[], total=0)
    )
    return HomeData(
        in_plan=True,
        is_leader=leader,
        initiatives=my_initiatives(session, person, now),
        pulses=Page(
            rows=[
                PendingPulse(
                    pulse_id=request.id,
                    initiative_key=initiative.key,
                    initiative_title=initiative.title,
                    due_at=request.due_at,
                    closes_at=request.next_due_at,
                )
                for request, initiative in pulses.rows
                if request.id is not None
            ],
            total=pulses.total,
        ),
        dependencies=_lines(
            q.open_dependencies_for_teams(session=session, team_ids=teams, limit=LIST_LIMIT)
        ),
        polls=Page(
            rows=[
                OpenPoll(
                    poll_id=row.poll.id,
                    milestone_key=row.milestone.key,
                    milestone_title=row.milestone.title,
                    initiative_title=row.initiative.title,
                    deadline=row.poll.deadline,
                    channel_id=row.poll.channel_id,
                    voted=row.voted,
                    slip_days=_slip_days(row.poll.facts),
                    proposed_due=row.poll.proposed_due,
                    anonymous=row.poll.anonymous,
                    my_option=row.option,
                )
                for row in polls.rows
                if row.poll.id is not None
            ],
            total=polls.total,
        ),
        alerts=my_alerts(session, person, links=links),
    )
