"""Write a computed ChangeSet in the caller's transaction: bulk statements, one audit entry per change."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.audit import Change, record_many
from bot.dependencies.rules import created_values, override, renewed_values
from bot.planfile.diff import ChangeSet, KindChanges
from bot.planfile.schema import EMAIL
from bot.planfile.state import KINDS, Fields, People
from storage.dependencies import dependencies_by_ids
from storage.models import Dependency, DependencyState
from storage.plan import (
    insert_rows,
    key_ids,
    person_ids,
    replace_holidays,
    replace_links,
    save_plan_settings,
    update_rows,
)

# A dependency whose ask changes in one of these is asked for anew (a new request revision).
RENEWING_FIELDS = ("need", "needed_by", "provider")

_SCALAR_SETTINGS = (
    "organization",
    "timezone",
    "decisions_channel",
    "alerts_channel",
    "default_pulse",
    "ack_within_days",
    "poll_hours",
    "poll_quorum",
    "poll_anonymous",
    "digest",
    "digest_to",
)


class _Writer:
    def __init__(self, session: Session, changes: ChangeSet, people: People, now: datetime) -> None:
        self.session = session
        self.changes = changes
        self.people = people
        self.now = now
        self.audit: list[Change] = []
        self.ids: dict[str, dict[str, int]] = {k: dict(v) for k, v in changes.stored.ids.items()}
        self.by_slack: dict[str, int] = {}
        self.by_email: dict[str, int] = {}
        self.dependencies: dict[int, Dependency] = {}

    def person(self, ref: str | None) -> int | None:
        if ref is None:
            return None
        return self.by_email[ref] if EMAIL.match(ref) else self.by_slack[ref]

    def key_id(self, kind: str, key: str | None) -> int | None:
        return self.ids[kind][key] if key is not None else None

    # --- people and settings ------------------------------------------------------------------

    def write_people(self) -> None:
        leaders = set(self.changes.file.settings["leaders"])
        admins = set(self.changes.file.settings["admins"])
        rows = [
            {
                "slack_id": None if EMAIL.match(ref) else ref,
                "email": ref if EMAIL.match(ref) else None,
                "name": "",
                "tz": None,
                "is_leader": ref in leaders,
                "is_admin": ref in admins,
                "active": True,
                "away_from": None,
                "away_until": None,
                "synced_at": None,
                "slack_linked_at": None if EMAIL.match(ref) else self.now,
            }
            for ref in self.changes.new_people
        ]
        insert_rows(session=self.session, kind="person", rows=rows)
        self.audit.extend(
            Change(
                "create",
                "person",
                ref,
                None,
                {"is_leader": row["is_leader"], "is_admin": row["is_admin"]},
            )
            for ref, row in zip(self.changes.new_people, rows, strict=True)
        )
        self.by_slack, self.by_email = person_ids(session=self.session)

    def write_settings(self) -> None:
        update = self.changes.settings
        if update is None:
            return
        wanted = self.changes.file.settings
        scalars = {name: wanted[name] for name in _SCALAR_SETTINGS}
        save_plan_settings(session=self.session, values=scalars)
        if "holidays" in update.after:
            replace_holidays(
                session=self.session,
                holidays=[{"start": s, "end": e, "name": n} for s, e, n in wanted["holidays"]],
            )
        action = "update" if self.changes.settings_existed else "create"
        self.audit.append(
            Change(
                action,
                "plan",
                "settings",
                update.before if action == "update" else None,
                update.after,
            )
        )
        if "leaders" in update.after or "admins" in update.after:
            self._write_flags(set(wanted["leaders"]), set(wanted["admins"]))

    def _write_flags(self, leaders: set[str], admins: set[str]) -> None:
        """People who existed before this import; new ones were created with their flags."""
        rows = []
        for person_id, ref in self.people.ref_of.items():
            before = self.people.flags[person_id]
            after = (ref in leaders, ref in admins)
            if before != after:
                rows.append({"id": person_id, "is_leader": after[0], "is_admin": after[1]})
                self.audit.append(
                    Change(
                        "update",
                        "person",
                        ref,
                        {"is_leader": before[0], "is_admin": before[1]},
                        {"is_leader": after[0], "is_admin": after[1]},
                    )
                )
        update_rows(session=self.session, kind="person", rows=rows)

    # --- keyed items ---------------------------------------------------------------------------

    def write_kind(self, kind: str) -> None:
        changes: KindChanges = self.changes.kinds[kind]
        wanted = self.changes.file.items[kind]
        columns = getattr(self, f"_{kind}_columns")
        created = [
            {**columns(key, wanted[key]), **self._created_extras(kind, key, wanted[key])}
            for key in changes.created
        ]
        insert_rows(session=self.session, kind=kind, rows=created)
        if created:
            self.ids[kind] = key_ids(session=self.session, kind=kind)
        if kind == "dependency":
            self.load_dependencies([u.key for u in (*changes.updated, *changes.restored)])
        updates = []
        for update in changes.updated:
            row = {"id": self.ids[kind][update.key], **columns(update.key, wanted[update.key])}
            row.update(self._transitions(kind, update.key, update.after, wanted[update.key]))
            updates.append(row)
        for update in changes.restored:
            row = {"id": self.ids[kind][update.key], **columns(update.key, wanted[update.key])}
            after = {**update.after, "archived": False}
            row.update(self._transitions(kind, update.key, after, wanted[update.key]))
            updates.append(row)
        updates.extend({"id": self.ids[kind][key], "archived": True} for key in changes.archived)
        update_rows(session=self.session, kind=kind, rows=updates)
        self.audit.extend(
            Change("create", kind, key, None, self._created_audit(kind, key, wanted[key]))
            for key in changes.created
        )
        self.audit.extend(Change("update", kind, u.key, u.before, u.after) for u in changes.updated)
        self.audit.extend(
            Change(
                "restore",
                kind,
                u.key,
                {"archived": True, **u.before},
                {"archived": False, **u.after},
            )
            for u in changes.restored
        )
        self.audit.extend(
            Change("archive", kind, key, {"archived": False}, {"archived": True})
            for key in changes.archived
        )

    def _created_extras(self, kind: str, key: str, fields: Fields) -> dict[str, Any]:
        if kind == "team":
            return {"channel_id": None}
        if kind == "initiative":
            return {
                "status": fields.get("status", "active"),
                "active_since": self.now,
                "dark_since": None,
            }
        if kind == "milestone":
            status = fields.get("status", "open")
            return {
                "original_due": self.changes.file.original_dues.get(key, fields["due"]),
                "expected_due": None,
                "status": status,
                "completed_at": self.now if status == "done" else None,
                "scope_note": None,
            }
        if kind == "dependency":
            # Not asked yet: the next tick posts the request, and its clock starts then.
            return {
                "requested_at": None,
                "ack_due_at": None,
                "acknowledged_at": None,
                "acknowledged_by_id": None,
                **created_values(fields.get("state", DependencyState.REQUESTED), now=self.now),
            }
        return {}

    def _created_audit(self, kind: str, key: str, fields: Fields) -> Fields:
        if kind == "milestone" and not fields.get("work"):
            fields = {name: value for name, value in fields.items() if name != "work"}
        original = self.changes.file.original_dues.get(key) if kind == "milestone" else None
        return {**fields, "original_due": original} if original is not None else fields

    def load_dependencies(self, keys: list[str]) -> None:
        """The stored rows of dependencies about to change: their state's bookkeeping follows them."""
        ids = [self.ids["dependency"][key] for key in keys]
        self.dependencies = dependencies_by_ids(session=self.session, dependency_ids=ids)

    def _transitions(self, kind: str, key: str, after: Fields, wanted: Fields) -> dict[str, Any]:
        if kind == "initiative" and ("archived" in after or after.get("status") == "active"):
            # Restored or resumed: like a new initiative, its first prompt is its next fire.
            return {"active_since": self.now}
        if kind == "milestone" and "status" in after:
            return {"completed_at": self.now if after["status"] == "done" else None}
        if kind == "dependency":
            return self._dependency_transition(key, after, wanted)
        return {}

    def _dependency_transition(self, key: str, after: Fields, wanted: Fields) -> dict[str, Any]:
        """A changed ask is a new revision; a `state` the file sets goes through the one rule."""
        stored = self.dependencies[self.ids["dependency"][key]]
        if any(name in after for name in RENEWING_FIELDS):
            return renewed_values(stored, state=wanted.get("state"), now=self.now)
        if "state" in after:
            change = override(stored, after["state"], now=self.now)
            return change.values if change is not None else {}
        return {}

    def _team_columns(self, key: str, f: Fields) -> dict[str, Any]:
        return {
            "key": key,
            "name": f["name"],
            "channel": f["channel"],
            "lead_id": self.person(f["lead"]),
            "archived": False,
        }

    def _objective_columns(self, key: str, f: Fields) -> dict[str, Any]:
        return {
            "key": key,
            "title": f["title"],
            "owner_id": self.person(f["owner"]),
            "archived": False,
        }

    def _kpi_columns(self, key: str, f: Fields) -> dict[str, Any]:
        return {
            "key": key,
            "objective_id": self.key_id("objective", f["objective"]),
            "name": f["name"],
            "unit": f["unit"],
            "baseline": f["baseline"],
            "target": f["target"],
            "direction": f["direction"],
            "start": f["start"],
            "due": f["due"],
            "amber_tolerance": f["amber"],
            "red_tolerance": f["red"],
            "reading_every_days": f["reading_every_days"],
            "archived": False,
        }

    def _initiative_columns(self, key: str, f: Fields) -> dict[str, Any]:
        row = {
            "key": key,
            "title": f["title"],
            "objective_id": self.key_id("objective", f["objective"]),
            "owner_id": self.person(f["owner"]),
            "team_id": self.key_id("team", f["team"]),
            "pulse": f["pulse"],
            "archived": False,
        }
        if "status" in f:
            row["status"] = f["status"]
        return row

    def _milestone_columns(self, key: str, f: Fields) -> dict[str, Any]:
        row = {
            "key": key,
            "initiative_id": self.key_id("initiative", f["initiative"]),
            "title": f["title"],
            "due": f["due"],
            "work": list(f.get("work") or ()),
            "archived": False,
        }
        if "status" in f:
            row["status"] = f["status"]
        return row

    def _dependency_columns(self, key: str, f: Fields) -> dict[str, Any]:
        row = {
            "key": key,
            "initiative_id": self.key_id("initiative", f["initiative"]),
            "milestone_id": self.key_id("milestone", f["milestone"]),
            "provider_team_id": self.key_id("team", f["provider"]),
            "need": f["need"],
            "needed_by": f["needed_by"],
            "ack_within_days": f["ack_within_days"],
            "archived": False,
        }
        if "state" in f:
            row["state"] = f["state"]
        return row

    # --- links and readings --------------------------------------------------------------------

    def write_links(
        self, kind: str, field: str, link: str, target: Callable[[str], int | None]
    ) -> None:
        changes = self.changes.kinds[kind]
        touched = list(changes.created) + [
            u.key for u in (*changes.updated, *changes.restored) if field in u.after
        ]
        wanted = self.changes.file.items[kind]
        pairs: list[tuple[int, int]] = []
        for key in touched:
            owner = self.ids[kind][key]
            pairs.extend(
                (owner, other) for ref in wanted[key][field] if (other := target(ref)) is not None
            )
        replace_links(
            session=self.session,
            link=link,
            owner_ids=[self.ids[kind][k] for k in touched],
            pairs=pairs,
        )

    def write_readings(self) -> None:
        rows = [
            {
                "kpi_id": self.ids["kpi"][kpi],
                "value": value,
                "as_of": as_of,
                "source": "import",
                "recorded_by_id": None,
                "recorded_at": self.now,
            }
            for kpi, as_of, value in self.changes.new_readings
        ]
        insert_rows(session=self.session, kind="kpi_reading", rows=rows)
        self.audit.extend(
            Change("create", "kpi_reading", f"{kpi}@{as_of.isoformat()}", None, {"value": value})
            for kpi, as_of, value in self.changes.new_readings
        )


def apply_changes(
    session: Session, changes: ChangeSet, people: People, *, actor: str, now: datetime
) -> None:
    """Everything in the session's transaction: the caller commits once, or nothing is kept."""
    writer = _Writer(session, changes, people, now)
    writer.write_people()
    writer.write_settings()
    for kind in KINDS:
        writer.write_kind(kind)
        if kind == "team":
            writer.write_links("team", "members", "team_member", writer.person)
        if kind == "kpi":
            writer.write_readings()
        if kind == "initiative":
            writer.write_links(
                "initiative", "kpis", "initiative_kpi", lambda k: writer.ids["kpi"][k]
            )
    record_many(session, actor=actor, now=now, changes=writer.audit)
