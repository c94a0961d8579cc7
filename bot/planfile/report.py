"""What an import changed (or would change), by kind and with names, as terminal text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.planfile.diff import ChangeSet
from bot.planfile.state import KINDS, Fields
from templates import render_text

# Long lists are cut: a 10,000-item import should not scroll for minutes.
NAMES_SHOWN = 12

_TITLES = {
    "team": "Teams",
    "objective": "Objectives",
    "kpi": "KPIs",
    "initiative": "Initiatives",
    "milestone": "Milestones",
    "dependency": "Dependencies",
}


@dataclass
class Group:
    word: str  # created | updated | ...
    names: list[str]
    total: int


@dataclass
class Section:
    title: str
    groups: list[Group] = field(default_factory=list)

    def add(self, word: str, names: list[str]) -> None:
        if names:
            self.groups.append(Group(word, names[:NAMES_SHOWN], len(names)))


def _label(fields: Fields | None, key: str) -> str:
    if not fields:
        return key
    title = fields.get("title") or fields.get("name") or fields.get("need")
    if not title:
        return key
    title = str(title)
    return f"{key} ({title if len(title) <= 50 else title[:49] + '…'})"


def render_report(changes: ChangeSet, *, source: str, dry_run: bool) -> str:
    sections: list[Section] = []
    settings = Section("Plan settings")
    if changes.settings is None:
        settings.add("unchanged", ["settings"])
    else:
        word = "updated" if changes.settings_existed else "created"
        settings.add(word, [f"settings ({', '.join(changes.settings.after)})"])
    sections.append(settings)
    people = Section("People")
    people.add("created", changes.new_people)
    sections.append(people)
    for kind in KINDS:
        kind_changes = changes.kinds[kind]
        wanted, stored = changes.file.items[kind], changes.stored.items[kind]
        section = Section(_TITLES[kind])
        section.add("created", [_label(wanted[k], k) for k in kind_changes.created])
        section.add(
            "updated",
            [f"{_label(wanted[u.key], u.key)}: {', '.join(u.after)}" for u in kind_changes.updated],
        )
        section.add("restored", [_label(wanted[u.key], u.key) for u in kind_changes.restored])
        section.add("archived", [_label(stored.get(k), k) for k in kind_changes.archived])
        section.add("unchanged", [_label(wanted[k], k) for k in kind_changes.unchanged])
        sections.append(section)
        if kind == "kpi":
            readings = Section("KPI readings")
            readings.add(
                "created",
                [
                    f"{kpi} {as_of.isoformat()}: {value:g}"
                    for kpi, as_of, value in changes.new_readings
                ],
            )
            sections.append(readings)
    context: dict[str, Any] = {
        "source": source,
        "dry_run": dry_run,
        "changed": changes.changed,
        "sections": [s for s in sections if s.groups],
    }
    return render_text("text/plan_changes.txt.j2", **context)
