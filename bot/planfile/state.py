"""One flat shape for a plan, from a file or from the database: what import compares, export writes.

Items are keyed by kind and key and hold their fields in plan-file terms (team keys and person
references, not row ids), so comparing the file with the database is comparing two dicts, and
exporting what the database holds gives back exactly what importing compares against.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from bot.planfile.schema import EMAIL, PlanFile, parse_work_link
from storage.models import DEFAULT_DIGEST, DigestTo
from storage.plan import PlanRows

Fields = dict[str, Any]
KINDS = ("team", "objective", "kpi", "initiative", "milestone", "dependency")
Reading = tuple[str, date, float]  # (kpi key, as of, value): a reading's identity

# Fields the bot moves along in Slack; a file that leaves them out leaves them as they are.
KEPT_WHEN_ABSENT = {"initiative": "status", "milestone": "status", "dependency": "state"}
DEFAULT_OF_KEPT = {"initiative": "active", "milestone": "open", "dependency": "requested"}


class People:
    """Who is who: a plan names people by Slack ID or e-mail; one person may be known by both."""

    def __init__(self, rows: Any = ()) -> None:
        self.by_slack: dict[str, int] = {}
        self.by_email: dict[str, int] = {}
        self.ref_of: dict[int, str] = {}
        self.flags: dict[int, tuple[bool, bool]] = {}
        for row in rows:
            if row["slack_id"]:
                self.by_slack[row["slack_id"]] = row["id"]
            if row["email"]:
                self.by_email[row["email"].lower()] = row["id"]
            # Export writes the e-mail when known: it survives a move to another workspace.
            self.ref_of[row["id"]] = (row["email"] or "").lower() or row["slack_id"]
            self.flags[row["id"]] = (row["is_leader"], row["is_admin"])

    def id_of(self, ref: str) -> int | None:
        return self.by_email.get(ref) if EMAIL.match(ref) else self.by_slack.get(ref)

    def canonical(self, ref: str) -> str:
        person = self.id_of(ref)
        return self.ref_of[person] if person is not None else ref

    def ref(self, person_id: int | None) -> str | None:
        return self.ref_of[person_id] if person_id is not None else None


@dataclass
class PlanState:
    settings: Fields
    items: dict[str, dict[str, Fields]]
    readings: dict[Reading, None]  # an ordered set
    archived: dict[str, set[str]] = field(default_factory=dict)
    ids: dict[str, dict[str, int]] = field(default_factory=dict)
    # Milestone key → its first planned due date, where it differs from `due`. History, like
    # readings: not compared, so a file can never change it; it seeds milestones it creates.
    original_dues: dict[str, date] = field(default_factory=dict)


def _sorted(refs: Any) -> tuple[str, ...]:
    return tuple(sorted(set(refs)))


def state_from_plan(plan: PlanFile, people: People) -> PlanState:
    person = people.canonical
    items: dict[str, dict[str, Fields]] = {kind: {} for kind in KINDS}
    readings: dict[Reading, None] = {}
    original_dues: dict[str, date] = {}
    for team in plan.teams:
        items["team"][team.key] = {
            "name": team.name,
            "channel": team.channel,
            "lead": person(team.lead) if team.lead else None,
            "members": _sorted(person(m) for m in team.members),
        }
    for objective in plan.objectives:
        items["objective"][objective.key] = {
            "title": objective.title,
            "owner": person(objective.owner) if objective.owner else None,
        }
        for kpi in objective.kpis:
            items["kpi"][kpi.key] = {
                "objective": objective.key,
                "name": kpi.name,
                "unit": kpi.unit,
                "baseline": kpi.baseline,
                "target": kpi.target,
                "direction": kpi.direction,
                "start": kpi.start,
                "due": kpi.due,
                "amber": kpi.amber,
                "red": kpi.red,
                "reading_every_days": kpi.reading_every_days,
            }
            for reading in kpi.readings:
                readings[(kpi.key, reading.as_of, reading.value)] = None
    for initiative in plan.initiatives:
        fields: Fields = {
            "title": initiative.title,
            "objective": initiative.objective,
            "owner": person(initiative.owner),
            "team": initiative.team,
            "kpis": _sorted(initiative.kpis),
            "pulse": initiative.pulse,
        }
        if initiative.status is not None:
            fields["status"] = initiative.status
        items["initiative"][initiative.key] = fields
        for milestone in initiative.milestones:
            fields = {
                "initiative": initiative.key,
                "title": milestone.title,
                "due": milestone.due,
                "work": tuple(link.canonical for link in milestone.work),
            }
            if milestone.status is not None:
                fields["status"] = milestone.status
            items["milestone"][milestone.key] = fields
            if milestone.original_due is not None and milestone.original_due != milestone.due:
                original_dues[milestone.key] = milestone.original_due
        for dependency in initiative.dependencies:
            fields = {
                "initiative": initiative.key,
                "provider": dependency.provider,
                "need": dependency.need,
                "needed_by": dependency.needed_by,
                "milestone": dependency.milestone,
                "ack_within_days": dependency.ack_within_days,
            }
            if dependency.state is not None:
                fields["state"] = dependency.state
            items["dependency"][dependency.key] = fields
    settings = {
        "organization": plan.organization,
        "timezone": plan.timezone,
        "decisions_channel": plan.channels.decisions,
        "alerts_channel": plan.channels.alerts,
        "default_pulse": plan.defaults.pulse,
        "ack_within_days": plan.defaults.ack_within_days,
        "poll_hours": plan.defaults.poll_hours,
        "poll_quorum": plan.defaults.poll_quorum,
        "poll_anonymous": plan.defaults.poll_anonymous,
        "digest": plan.digest,
        "digest_to": plan.digest_to,
        "holidays": tuple(sorted({(h.start, h.end or h.start, h.name) for h in plan.holidays})),
        "leaders": _sorted(person(p) for p in plan.leaders),
        "admins": _sorted(person(p) for p in plan.admins),
    }
    return PlanState(settings=settings, items=items, readings=readings, original_dues=original_dues)


def state_from_rows(rows: PlanRows, people: People) -> PlanState:
    """What the database holds, archived items included (marked in `archived`)."""
    ref = people.ref
    keys: dict[str, dict[int, str]] = {}
    items: dict[str, dict[str, Fields]] = {kind: {} for kind in KINDS}
    archived: dict[str, set[str]] = {kind: set() for kind in KINDS}
    ids: dict[str, dict[str, int]] = {kind: {} for kind in KINDS}

    def remember(kind: str, row: Any, fields: Fields) -> None:
        items[kind][row["key"]] = fields
        ids[kind][row["key"]] = row["id"]
        if row["archived"]:
            archived[kind].add(row["key"])

    members: dict[int, list[str]] = defaultdict(list)
    for link in rows.team_members:
        members[link["team_id"]].append(ref(link["person_id"]) or "")
    keys["team"] = {row["id"]: row["key"] for row in rows.teams}
    for row in rows.teams:
        remember(
            "team",
            row,
            {
                "name": row["name"],
                "channel": row["channel"],
                "lead": ref(row["lead_id"]),
                "members": _sorted(members[row["id"]]),
            },
        )
    keys["objective"] = {row["id"]: row["key"] for row in rows.objectives}
    for row in rows.objectives:
        remember("objective", row, {"title": row["title"], "owner": ref(row["owner_id"])})
    keys["kpi"] = {row["id"]: row["key"] for row in rows.kpis}
    for row in rows.kpis:
        remember(
            "kpi",
            row,
            {
                "objective": keys["objective"][row["objective_id"]],
                "name": row["name"],
                "unit": row["unit"],
                "baseline": row["baseline"],
                "target": row["target"],
                "direction": row["direction"],
                "start": row["start"],
                "due": row["due"],
                "amber": row["amber_tolerance"],
                "red": row["red_tolerance"],
                "reading_every_days": row["reading_every_days"],
            },
        )
    readings = {
        (keys["kpi"][row["kpi_id"]], row["as_of"], row["value"]): None for row in rows.readings
    }
    initiative_kpis: dict[int, list[str]] = defaultdict(list)
    for link in rows.initiative_kpis:
        initiative_kpis[link["initiative_id"]].append(keys["kpi"][link["kpi_id"]])
    keys["initiative"] = {row["id"]: row["key"] for row in rows.initiatives}
    for row in rows.initiatives:
        remember(
            "initiative",
            row,
            {
                "title": row["title"],
                "objective": keys["objective"].get(row["objective_id"]),
                "owner": ref(row["owner_id"]),
                "team": keys["team"][row["team_id"]],
                "kpis": _sorted(initiative_kpis[row["id"]]),
                "pulse": row["pulse"],
                "status": row["status"],
            },
        )
    keys["milestone"] = {row["id"]: row["key"] for row in rows.milestones}
    original_dues = {
        row["key"]: row["original_due"]
        for row in rows.milestones
        if row["original_due"] != row["due"]
    }
    for row in rows.milestones:
        remember(
            "milestone",
            row,
            {
                "initiative": keys["initiative"][row["initiative_id"]],
                "title": row["title"],
                "due": row["due"],
                "work": tuple(row["work"] or ()),
                "status": row["status"],
            },
        )
    for row in rows.dependencies:
        remember(
            "dependency",
            row,
            {
                "initiative": keys["initiative"][row["initiative_id"]],
                "provider": keys["team"][row["provider_team_id"]],
                "need": row["need"],
                "needed_by": row["needed_by"],
                "milestone": keys["milestone"].get(row["milestone_id"]),
                "ack_within_days": row["ack_within_days"],
                "state": row["state"],
            },
        )
    stored = rows.settings
    flags = people.flags
    settings = {
        "organization": stored["organization"] if stored else None,
        "timezone": stored["timezone"] if stored else None,
        "decisions_channel": stored["decisions_channel"] if stored else None,
        "alerts_channel": stored["alerts_channel"] if stored else None,
        "default_pulse": stored["default_pulse"] if stored else None,
        "ack_within_days": stored["ack_within_days"] if stored else None,
        "poll_hours": stored["poll_hours"] if stored else None,
        "poll_quorum": stored["poll_quorum"] if stored else None,
        "poll_anonymous": stored["poll_anonymous"] if stored else None,
        "digest": stored["digest"] if stored else None,
        "digest_to": stored["digest_to"] if stored else None,
        "holidays": tuple((h["start"], h["end"], h["name"]) for h in rows.holidays),
        "leaders": _sorted(people.ref_of[p] for p, (leader, _) in flags.items() if leader),
        "admins": _sorted(people.ref_of[p] for p, (_, admin) in flags.items() if admin),
    }
    return PlanState(
        settings=settings,
        items=items,
        readings=readings,
        archived=archived,
        ids=ids,
        original_dues=original_dues,
    )


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _without_none(fields: Fields) -> Fields:
    return {name: value for name, value in fields.items() if value is not None}


def _after(item: Fields, name: str, new: str, value: Any) -> Fields:
    """`item` with `new` placed right after `name`: an export reads in the order of the docs."""
    placed: Fields = {}
    for field_name, field_value in item.items():
        placed[field_name] = field_value
        if field_name == name:
            placed[new] = value
    return placed


def document_from_state(state: PlanState) -> dict[str, Any]:
    """The plan file for what the database holds now (archived items left out)."""
    live = {
        kind: {k: v for k, v in items.items() if k not in state.archived.get(kind, ())}
        for kind, items in state.items.items()
    }
    settings = state.settings
    doc: dict[str, Any] = {
        "organization": settings["organization"],
        "timezone": settings["timezone"],
    }
    channels = _without_none(
        {"decisions": settings["decisions_channel"], "alerts": settings["alerts_channel"]}
    )
    if channels:
        doc["channels"] = channels
    doc["leaders"] = list(settings["leaders"])
    if settings["admins"]:
        doc["admins"] = list(settings["admins"])
    doc["defaults"] = {
        "pulse": settings["default_pulse"],
        "ack_within_days": settings["ack_within_days"],
        "poll_hours": settings["poll_hours"],
        # Written only when set: an absent quorum means a majority, absent anonymous means no.
        **_without_none({"poll_quorum": settings.get("poll_quorum")}),
        **({"poll_anonymous": True} if settings.get("poll_anonymous") else {}),
    }
    # The digest's settings are written when they differ from the defaults, like a quorum.
    if settings.get("digest") not in (None, DEFAULT_DIGEST):
        doc["digest"] = settings["digest"]
    if settings.get("digest_to") not in (None, DigestTo.CHANNEL):
        doc["digest_to"] = settings["digest_to"]
    if settings["holidays"]:
        doc["holidays"] = [
            {"start": start, "end": end, **({"name": name} if name else {})}
            for start, end, name in settings["holidays"]
        ]
    doc["teams"] = [
        _without_none({"key": key, **fields, "members": list(fields["members"]) or None})
        for key, fields in live["team"].items()
    ]
    kpis_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    readings_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for kpi_key, as_of, value in state.readings:
        readings_of[kpi_key].append({"as_of": as_of, "value": _number(value)})
    for key, fields in live["kpi"].items():
        kpi: dict[str, Any] = {"key": key, **{k: v for k, v in fields.items() if k != "objective"}}
        for name in ("baseline", "target", "amber", "red"):
            kpi[name] = _number(kpi[name])
        if not kpi["unit"]:
            del kpi["unit"]
        if readings_of[key]:
            kpi["readings"] = readings_of[key]
        kpis_of[fields["objective"]].append(kpi)
    doc["objectives"] = [
        _without_none({"key": key, **fields, "kpis": kpis_of.get(key)})
        for key, fields in live["objective"].items()
    ]
    children: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for kind, plural in (("milestone", "milestones"), ("dependency", "dependencies")):
        for key, fields in live[kind].items():
            item = {"key": key, **{k: v for k, v in fields.items() if k != "initiative"}}
            if item.get(KEPT_WHEN_ABSENT[kind]) == DEFAULT_OF_KEPT[kind]:
                del item[KEPT_WHEN_ABSENT[kind]]
            if kind == "milestone" and key in state.original_dues:
                item = _after(item, "due", "original_due", state.original_dues[key])
            if kind == "milestone":
                item["work"] = [parse_work_link(link) for link in item.get("work") or ()] or None
            children[fields["initiative"]][plural].append(_without_none(item))
    initiatives = []
    for key, fields in live["initiative"].items():
        item = {"key": key, **fields, "kpis": list(fields["kpis"]) or None}
        if item.get("status") == DEFAULT_OF_KEPT["initiative"]:
            del item["status"]
        item.update(children[key])
        initiatives.append(_without_none(item))
    doc["initiatives"] = initiatives
    return doc
