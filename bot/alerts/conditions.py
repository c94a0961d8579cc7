"""The detection conditions: each a function of the plan and `now`, returning typed findings, never sentences.

A `Finding` says what is wrong (its kind and subject), what its alert shows (`facts`, plain JSON
values that change only when the situation does), where its message goes and who is told once
by DM. templates/blocks/alerts/<kind>.json.j2 words each kind.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any

from sqlmodel import Session

from bot.health import plan_today
from bot.kpis import Health, kpi_health, reading_overdue, shortfall_percent
from bot.work.progress import milestone_burnups
from storage import detection as queries
from storage import work as work_queries
from storage.models import Direction, PulseStatus
from storage.people import admins, leaders
from storage.plan import plan_settings
from templates.ids import AlertKinds

WORRIED = (PulseStatus.AT_RISK, PulseStatus.OFF_TRACK)


@dataclass(frozen=True)
class Finding:
    kind: AlertKinds
    subject: str  # e.g. "milestone:17": with the kind, the alert's identity
    found: Mapping[str, Any]  # what the condition read (dates as dates)
    channel: str | None  # where its message goes: a channel ID, a user ID (a DM), or nowhere
    notify: tuple[str, ...] = ()  # Slack user IDs told once, by DM, when it is raised

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.subject}"

    @cached_property
    def _json(self) -> str:
        # Serialised once, by the C encoder: a no-op pass over thousands of alerts compares
        # fingerprints and never builds the stored form of what it found.
        return json.dumps(self.found, sort_keys=True, ensure_ascii=False, default=_iso)

    @cached_property
    def shown(self) -> str:
        """Fingerprint of what the alert shows: equal to the stored one means nothing to redraw."""
        return hashlib.sha256(self._json.encode()).hexdigest()[:32]

    @cached_property
    def facts(self) -> dict[str, Any]:
        """What the alert shows, as the database keeps it (dates as ISO text)."""
        return dict(json.loads(self._json))


def _iso(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON: {value!r}")


@dataclass
class _Plan:
    """What every condition needs to know about the plan, read once per pass."""

    now: datetime
    today: date
    alerts_channel: str | None
    admins: tuple[str, ...]
    statuses: dict[int, str]  # initiative ID → its latest pulse answer's status
    settled: set[int]  # milestones a decision settled for now (bot/decisions/outcomes.py)
    found: list[Finding] = field(default_factory=list)

    def add(
        self,
        kind: AlertKinds,
        subject: str,
        facts: Mapping[str, Any],
        channel: str | None,
        notify: Iterable[str | None] = (),
    ) -> Finding:
        told = tuple(dict.fromkeys(p for p in notify if p and p != channel))
        finding = Finding(kind, subject, facts, channel, told)
        self.found.append(finding)
        return finding


def find_problems(session: Session, now: datetime) -> list[Finding]:
    """Every condition, evaluated for the whole plan at `now`."""
    settings = plan_settings(session=session)
    people = admins(session=session) or leaders(session=session)
    today = plan_today(now, settings.timezone)
    plan = _Plan(
        now=now,
        today=today,
        alerts_channel=queries.resolved_channel(session=session, ref=settings.alerts_channel),
        admins=tuple(p.slack_id for p in people if p.slack_id),
        statuses=queries.latest_pulse_statuses(session=session),
        settled=queries.settled_milestones(session=session, today=today),
    )
    missed = _missed_milestones(session, plan)
    _unacknowledged_dependencies(session, plan)
    _blocked_dependencies(session, plan)
    at_risk = _milestones_at_risk(session, plan)
    off_track = _kpis_off_track(session, plan)
    _confidence_mismatches(session, plan, missed | at_risk, off_track)
    _dark_initiatives(session, plan)
    _unreachable_owners(session, plan)
    _unreachable_channels(session, plan)
    return plan.found


# --- milestones ---------------------------------------------------------------------------------


def _milestone_facts(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "milestone_id": row["milestone_id"],
        "milestone_key": row["milestone_key"],
        "title": row["milestone_title"],
        "due": row["due"],
        "original_due": row["original_due"],
        **_initiative_facts(row),
    }


def _initiative_facts(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "initiative_id": row["initiative_id"],
        "initiative_key": row["initiative_key"],
        "initiative_title": row["initiative_title"],
        "owner": row["owner_slack_id"],
        "owner_name": row["owner_name"],
        "team_name": row["team_name"],
        "lead": row["lead_slack_id"],
    }


def _team_channel(row: Mapping[str, Any], plan: _Plan) -> str | None:
    return row["team_channel_id"] or plan.alerts_channel


def _missed_milestones(session: Session, plan: _Plan) -> set[int]:
    """Due date ended in the plan's timezone, neither done nor descoped: the team's channel, the owner."""
    missed = set()
    for row in queries.missed_milestones(session=session, today=plan.today):
        if int(row["milestone_id"]) in plan.settled:
            continue
        missed.add(int(row["milestone_id"]))
        plan.add(
            AlertKinds.MILESTONE_MISSED,
            f"milestone:{row['milestone_id']}",
            _milestone_facts(row),
            _team_channel(row, plan),
            notify=[row["owner_slack_id"]],
        )
    return missed


def _milestones_at_risk(session: Session, plan: _Plan) -> set[int]:
    """Not yet due, but held up by a dependency, expected late by its owner, or worried about."""
    reasons: dict[int, list[dict[str, Any]]] = {}
    rows: dict[int, Mapping[str, Any]] = {}
    for row in queries.milestones_held_up(session=session, today=plan.today):
        milestone_id = int(row["milestone_id"])
        rows[milestone_id] = row
        reasons.setdefault(milestone_id, []).append(
            {
                "why": "dependency",
                # Which dependency: a decision poll opened for this slip names it.
                "dependency_id": row["dependency_id"],
                "need": row["need"],
                "provider_name": row["provider_name"],
                "state": row["state"],
                "needed_by": row["needed_by"],
            }
        )
    for row in queries.milestones_expected_late(session=session, today=plan.today):
        milestone_id = int(row["milestone_id"])
        rows[milestone_id] = row
        reasons.setdefault(milestone_id, []).append(
            {"why": "expected_late", "expected_due": row["expected_due"]}
        )
    worried = {i: s for i, s in plan.statuses.items() if s in WORRIED}
    nearest = queries.next_open_milestones(
        session=session, today=plan.today, initiative_ids=worried
    )
    for initiative_id, milestone_id in nearest.items():
        reasons.setdefault(milestone_id, []).append(
            {"why": "pulse", "status": worried[initiative_id]}
        )
    for milestone_id, reason in _work_reasons(session, plan).items():
        reasons.setdefault(milestone_id, []).append(reason)
    missing = [m for m in reasons if m not in rows]
    rows.update(
        (int(r["milestone_id"]), r)
        for r in queries.upcoming_milestones(
            session=session, today=plan.today, milestone_ids=missing
        )
    )
    at_risk = set()
    for milestone_id, row in sorted(rows.items(), key=lambda item: (item[1]["due"], item[0])):
        if milestone_id in plan.settled:
            continue
        at_risk.add(milestone_id)
        plan.add(
            AlertKinds.MILESTONE_AT_RISK,
            f"milestone:{milestone_id}",
            {**_milestone_facts(row), "reasons": reasons[milestone_id]},
            _team_channel(row, plan),
        )
    return at_risk


def _work_reasons(session: Session, plan: _Plan) -> dict[int, dict[str, Any]]:
    """Milestones whose linked work says they will be late, or whose open work has gone quiet."""
    milestones = [
        m for m in work_queries.open_linked_milestones(session=session) if m.due >= plan.today
    ]
    burnups = milestone_burnups(session, milestones, plan.now, plan.today)
    found: dict[int, dict[str, Any]] = {}
    for milestone in milestones:
        burn = burnups.get(milestone.id or 0)
        if burn is None or not burn.total:
            continue
        numbers = {"closed": burn.closed, "total": burn.total}
        late = burn.days_late(milestone.due)
        if late:
            found[milestone.id or 0] = {
                "why": "work_late",
                **numbers,
                "forecast": burn.forecast,
                "days_late": late,
            }
        elif burn.quiet_days is not None:
            found[milestone.id or 0] = {
                "why": "work_quiet",
                **numbers,
                "quiet_days": burn.quiet_days,
            }
    return found


# --- dependencies -------------------------------------------------------------------------------


def _dependency_facts(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "dependency_id": row["dependency_id"],
        "dependency_key": row["dependency_key"],
        "need": row["need"],
        "needed_by": row["needed_by"],
        "provider_name": row["provider_name"],
        "provider_lead": row["provider_lead_slack_id"],
        "milestone_title": row["milestone_title"],
        "request_channel": row["request_channel_id"],
        "request_ts": row["request_ts"],
        **_initiative_facts(row),
    }


def _unacknowledged_dependencies(session: Session, plan: _Plan) -> None:
    """Unacknowledged past its business-day deadline: the provider's channel, naming its lead."""
    for row in queries.unacknowledged_dependencies(session=session, now=plan.now):
        plan.add(
            AlertKinds.DEPENDENCY_UNACKNOWLEDGED,
            f"dependency:{row['dependency_id']}",
            {
                **_dependency_facts(row),
                "requested_at": row["requested_at"],
                "ack_due_at": row["ack_due_at"],
            },
            row["provider_channel_id"] or plan.alerts_channel,
            notify=[row["owner_slack_id"]],
        )


def _blocked_dependencies(session: Session, plan: _Plan) -> None:
    """Blocked, "can't make it", or past its needed-by day undelivered: the requesting team's channel."""
    for row in queries.blocked_dependencies(session=session, today=plan.today):
        plan.add(
            AlertKinds.DEPENDENCY_BLOCKED,
            f"dependency:{row['dependency_id']}",
            {
                **_dependency_facts(row),
                "state": row["state"],
                "reason": row["note"],
                "alternative_date": row["alternative_date"],
                "overdue": row["needed_by"] < plan.today,
            },
            _team_channel(row, plan),
        )


# --- KPIs and pulses ----------------------------------------------------------------------------


def _kpis_off_track(session: Session, plan: _Plan) -> set[int]:
    """Beyond the red tolerance of its trajectory, or no reading for too long: objective owner, alerts channel."""
    off_track = set()
    for row in queries.kpis_with_latest_reading(session=session):
        kpi = _KpiRow(row)
        value, as_of = row["value"], row["as_of"]
        stale = reading_overdue(
            as_of=as_of,
            start=row["start"],
            reading_every_days=row["reading_every_days"],
            day=plan.today,
        )
        beyond = value is not None and kpi_health(kpi, value, plan.today) == Health.OFF_TRACK
        if not (stale or beyond):
            continue
        off_track.add(int(row["kpi_id"]))
        facts = {
            "kpi_id": row["kpi_id"],
            "kpi_key": row["kpi_key"],
            "name": row["kpi_name"],
            "unit": row["unit"],
            "target": row["target"],
            "kpi_due": row["kpi_due"],
            "objective_title": row["objective_title"],
            "owner": row["objective_owner_slack_id"],
            "value": value,
            "as_of": as_of,
            # Whole percentage points: the alert changes when the picture does, not every day.
            "shortfall": round(shortfall_percent(kpi, value, plan.today)) if beyond else None,
            "red_tolerance": row["red_tolerance"],
            "stale": stale,
            "reading_every_days": row["reading_every_days"],
        }
        plan.add(
            AlertKinds.KPI_OFF_TRACK,
            f"kpi:{row['kpi_id']}",
            facts,
            plan.alerts_channel or row["objective_owner_slack_id"],
            notify=[row["objective_owner_slack_id"]],
        )
    return off_track


class _KpiRow:
    """A KPI query row, seen as the KPI the rules in bot/kpis.py read."""

    def __init__(self, row: Mapping[str, Any]) -> None:
        self.baseline = float(row["baseline"])
        self.target = float(row["target"])
        self.direction = str(row["direction"] or Direction.UP)
        self.start: date = row["start"]
        self.due: date = row["kpi_due"]
        self.amber_tolerance = float(row["amber_tolerance"])
        self.red_tolerance = float(row["red_tolerance"])


def _confidence_mismatches(
    session: Session, plan: _Plan, troubled_milestones: set[int], off_track_kpis: set[int]
) -> None:
    """ "On track" from the owner while the data says otherwise: the team lead, by DM."""
    confident = {i for i, s in plan.statuses.items() if s == PulseStatus.ON_TRACK}
    if not confident:
        return
    why: dict[int, list[dict[str, Any]]] = {}
    for finding in plan.found:
        if finding.kind in (AlertKinds.MILESTONE_MISSED, AlertKinds.MILESTONE_AT_RISK):
            reasons = why.setdefault(_initiative_of(finding), [])
            reasons.append({"why": finding.kind, "title": finding.found["title"]})
            # The tracker's work saying late is a cause of its own: the lead sees the numbers.
            reasons.extend(
                {**r, "title": finding.found["title"]}
                for r in finding.found.get("reasons", ())
                if r.get("why") == "work_late"
            )
    kpi_names = {
        f.found["kpi_id"]: f.found["name"] for f in plan.found if f.kind == AlertKinds.KPI_OFF_TRACK
    }
    for initiative_id, kpi_ids in queries.initiatives_of_kpis(
        session=session, kpi_ids=off_track_kpis
    ).items():
        for kpi_id in sorted(kpi_ids):
            why.setdefault(initiative_id, []).append(
                {"why": AlertKinds.KPI_OFF_TRACK, "title": kpi_names[kpi_id]}
            )
    mismatched = {i: reasons for i, reasons in why.items() if i in confident}
    for initiative_id, row in queries.initiatives(
        session=session, initiative_ids=mismatched
    ).items():
        plan.add(
            AlertKinds.CONFIDENCE_MISMATCH,
            f"initiative:{initiative_id}",
            {**_initiative_facts(row), "reasons": mismatched[initiative_id]},
            row["lead_slack_id"] or plan.alerts_channel,
        )


def _initiative_of(finding: Finding) -> int:
    return int(finding.found["initiative_id"])


def _dark_initiatives(session: Session, plan: _Plan) -> None:
    """Two pulse periods in a row unanswered: the team lead, and the plan's alerts channel."""
    silent = queries.silent_initiatives(session=session, now=plan.now)
    for initiative_id, row in queries.initiatives(session=session, initiative_ids=silent).items():
        plan.add(
            AlertKinds.INITIATIVE_DARK,
            f"initiative:{initiative_id}",
            {**_initiative_facts(row), "periods": silent[initiative_id]},
            plan.alerts_channel or row["lead_slack_id"],
            notify=[row["lead_slack_id"]],
        )


# --- admin problems -----------------------------------------------------------------------------


def _unreachable_owners(session: Session, plan: _Plan) -> None:
    """An initiative owner Slack cannot reach: the admins, once while it lasts."""
    owners = queries.unreachable_owners(session=session)
    owned = queries.initiatives_owned_by(
        session=session, person_ids=[o["person_id"] for o in owners]
    )
    for owner in owners:
        facts = {
            "name": owner["name"] or owner["email"] or owner["slack_id"],
            "email": owner["email"],
            "slack_id": owner["slack_id"],
            "reason": owner["reason"],
            "error": owner["pulse_error"] if owner["reason"] == "unreachable" else None,
            "initiatives": owned.get(owner["person_id"], []),
        }
        plan.add(
            AlertKinds.OWNER_UNREACHABLE,
            f"person:{owner['person_id']}",
            facts,
            None,
            notify=plan.admins,
        )


def _unreachable_channels(session: Session, plan: _Plan) -> None:
    """A channel the plan names that the bot cannot post to: the admins, once while it lasts."""
    for status in queries.channel_problems(session=session):
        plan.add(
            AlertKinds.CHANNEL_UNREACHABLE,
            f"channel:{status.ref}",
            {
                "ref": status.ref,
                "channel_id": status.channel_id,
                "name": status.name or status.ref.lstrip("#"),
                "problem": status.problem,
                "used_for": queries.channel_uses(session=session, ref=status.ref),
            },
            None,
            notify=plan.admins,
        )
