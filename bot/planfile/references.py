"""Checks across items: duplicate keys and references to teams, objectives, KPIs and milestones.

They run on the raw document, tolerating items that failed validation, so one run reports the
broken references along with the bad field values.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

from bot.planfile.problems import Locator, Path, Problem, describe

# Suggestions look through at most this many keys: on huge plans they cost more than they help.
_SUGGESTION_POOL = 2000


def _items(container: Any, name: str, prefix: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    items = container.get(name) if isinstance(container, dict) else None
    if isinstance(items, list):
        for index, item in enumerate(items):
            if isinstance(item, dict):
                yield (*prefix, name, index), item


def _key(item: dict[str, Any], field: str = "key") -> str | None:
    value = item.get(field)
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value).strip()
    return None


def _suggest(value: str, known: dict[str, Any]) -> str:
    if len(known) > _SUGGESTION_POOL:
        return ""
    close = difflib.get_close_matches(value, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Checker:
    def __init__(self, doc: dict[str, Any], locator: Locator) -> None:
        self.doc = doc
        self.locator = locator
        self.problems: list[Problem] = []

    def add(self, path: Path, message: str) -> None:
        subject = path[:-1] if path and isinstance(path[-1], str) else path
        what = describe(self.doc, subject)
        self.problems.append(Problem(self.locator.place(path), f"{what}: {message}"))

    def keyed(self, kind: str, items: list[tuple[Path, dict[str, Any]]]) -> dict[str, Path]:
        first: dict[str, Path] = {}
        for path, item in items:
            key = _key(item)
            if key is None:
                continue
            if key in first:
                self.add(
                    (*path, "key"),
                    f"the key {key!r} is already used by another {kind} "
                    f"({self.locator.place(first[key])}); keys must be unique.",
                )
            else:
                first[key] = path
        return first

    def refers(
        self, path: Path, item: dict[str, Any], field: str, kind: str, known: dict[str, Any]
    ) -> None:
        value = _key(item, field)
        if value is not None and value not in known:
            self.add(
                (*path, field),
                f"{field} {value!r} is not a {kind} in this plan{_suggest(value, known)}.",
            )


def reference_problems(doc: dict[str, Any], locator: Locator) -> list[Problem]:
    check = _Checker(doc, locator)
    teams = check.keyed("team", list(_items(doc, "teams", ())))
    objective_items = list(_items(doc, "objectives", ()))
    objectives = check.keyed("objective", objective_items)
    kpi_items = [kpi for path, o in objective_items for kpi in _items(o, "kpis", path)]
    kpis = check.keyed("KPI", kpi_items)
    initiative_items = list(_items(doc, "initiatives", ()))
    initiatives = check.keyed("initiative", initiative_items)
    milestone_items = [m for path, i in initiative_items for m in _items(i, "milestones", path)]
    check.keyed("milestone", milestone_items)
    check.keyed(
        "dependency", [d for path, i in initiative_items for d in _items(i, "dependencies", path)]
    )
    milestone_owner = {
        key: _key(doc["initiatives"][path[1]])
        for path, item in milestone_items
        if (key := _key(item)) is not None
    }
    del initiatives  # only needed for duplicate detection

    for path, initiative in initiative_items:
        check.refers(path, initiative, "objective", "objective", objectives)
        check.refers(path, initiative, "team", "team", teams)
        kpi_refs = initiative.get("kpis")
        if isinstance(kpi_refs, list):
            for index, ref in enumerate(kpi_refs):
                if isinstance(ref, str) and ref not in kpis:
                    check.add(
                        (*path, "kpis", index),
                        f"KPI {ref!r} is not a KPI of any objective in this plan{_suggest(ref, kpis)}.",
                    )
        own_key = _key(initiative)
        for dep_path, dependency in _items(initiative, "dependencies", path):
            check.refers(dep_path, dependency, "provider", "team", teams)
            milestone = _key(dependency, "milestone")
            if milestone is None:
                continue
            owner = milestone_owner.get(milestone)
            if owner is None:
                check.add(
                    (*dep_path, "milestone"),
                    f"milestone {milestone!r} is not a milestone of initiative {own_key!r}.",
                )
            elif owner != own_key:
                check.add(
                    (*dep_path, "milestone"),
                    f"milestone {milestone!r} belongs to initiative {owner!r}, not to "
                    f"{own_key!r}: a dependency can only hold up its own initiative's milestones.",
                )

    holidays: dict[tuple[str, str], Path] = {}
    for path, holiday in _items(doc, "holidays", ()):
        span = (str(holiday.get("start")), str(holiday.get("end") or holiday.get("start")))
        if span in holidays:
            check.add(path, f"the holiday {span[0]} to {span[1]} is listed twice.")
        holidays.setdefault(span, path)
    return check.problems
