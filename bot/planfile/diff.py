"""What importing a plan would change: created, updated, archived, restored and unchanged items."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.planfile.state import KINDS, Fields, PlanState, Reading


@dataclass
class Update:
    key: str
    before: Fields  # the changed fields only
    after: Fields


@dataclass
class KindChanges:
    created: list[str] = field(default_factory=list)
    updated: list[Update] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)
    restored: list[Update] = field(default_factory=list)  # may carry field changes too
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.archived or self.restored)


@dataclass
class ChangeSet:
    file: PlanState
    stored: PlanState
    new_people: list[str]
    settings: Update | None  # None when unchanged
    settings_existed: bool
    kinds: dict[str, KindChanges]
    new_readings: list[Reading]

    @property
    def changed(self) -> bool:
        return bool(
            self.new_people
            or self.settings
            or self.new_readings
            or any(changes.changed for changes in self.kinds.values())
        )


def _differences(stored: Fields, wanted: Fields) -> Update | None:
    changed = [name for name, value in wanted.items() if stored.get(name) != value]
    if not changed:
        return None
    return Update("", {n: stored.get(n) for n in changed}, {n: wanted[n] for n in changed})


def compute_changes(file: PlanState, stored: PlanState, known_people: Any) -> ChangeSet:
    """`known_people(ref)` says whether a person is already in the database."""
    kinds: dict[str, KindChanges] = {}
    for kind in KINDS:
        changes = KindChanges()
        stored_items = stored.items[kind]
        archived = stored.archived.get(kind, set())
        for key, wanted in file.items[kind].items():
            existing = stored_items.get(key)
            if existing is None:
                changes.created.append(key)
                continue
            update = _differences(existing, wanted)
            if key in archived:
                changes.restored.append(
                    Update(key, update.before, update.after) if update else Update(key, {}, {})
                )
            elif update is not None:
                changes.updated.append(Update(key, update.before, update.after))
            else:
                changes.unchanged.append(key)
        changes.archived = [
            key for key in stored_items if key not in file.items[kind] and key not in archived
        ]
        kinds[kind] = changes
    people = _people_named(file)
    settings = _differences(stored.settings, file.settings)
    return ChangeSet(
        file=file,
        stored=stored,
        new_people=[ref for ref in people if not known_people(ref)],
        settings=settings,
        settings_existed=stored.settings.get("organization") is not None,
        kinds=kinds,
        new_readings=[reading for reading in file.readings if reading not in stored.readings],
    )


def _people_named(state: PlanState) -> list[str]:
    """Every person the file names, once, in the order they first appear."""
    named: dict[str, None] = {}
    for ref in (*state.settings["leaders"], *state.settings["admins"]):
        named[ref] = None
    for fields in state.items["team"].values():
        if fields["lead"]:
            named[fields["lead"]] = None
        for member in fields["members"]:
            named[member] = None
    for kind in ("objective", "initiative"):
        for fields in state.items[kind].values():
            if fields["owner"]:
                named[fields["owner"]] = None
    return list(named)
