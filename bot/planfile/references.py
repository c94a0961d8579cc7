"""Checks across items: duplicate keys and references to teams, objectives, KPIs and milestones.

They run on the raw document, tolerating items that failed validation, so one run reports the
broken references along with the bad field values.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

from bot.planfile.problems import Locator, Path, describe
from bot.planfile.problems import PlanProblemCode as Code
from bot.problems import Problem

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


def _suggest(value: str, known: dict[str, Any]) -> str | None:
    if len(known) > _SUGGESTION_POOL:
        return None
    close = difflib.get_close_matches(value, list(known), n=1)
    return close[0] if close else None


class _Checker:
    def __init__(self, doc: dict[str, Any], locator: Locator) -> None:
        self.doc = doc
        self.locator = locator
        self.problems: list[Problem] = []

    def add(self, path: Path, code: Code, **params: Any) -> None:
        subject = path[:-1] if path and isinstance(path[-1], str) else path
        params["item"] = describe(self.doc, subject)
        self.problems.append(Problem(code, self.locator.place(path), params))

    def keyed(self, kind: str, items: list[tuple[Path, dict[str, Any]]]) -> dict[str, Path]:
        first: dict[str, Path] = {}
        for path, item in items:
            key = _key(item)
            if key is None:
                continue
            if key in first:
                self.add(
                    (*path, "key"),
                    Code.DUPLICATE_KEY,
                    key=key,
                    kind=kind,
                    first=self.locator.place(first[key]),
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
                Code.UNKNOWN_REFERENCE,
                name=field,
                value=value,
                kind=kind,
                suggestion=_suggest(value, known),
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
                        Code.UNKNOWN_KPI,
                        value=ref,
                        suggestion=_suggest(ref, kpis),
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
                    Code.UNKNOWN_MILESTONE,
                    milestone=milestone,
                    initiative=own_key,
                )
            elif owner != own_key:
                check.add(
                    (*dep_path, "milestone"),
                    Code.FOREIGN_MILESTONE,
                    milestone=milestone,
                    owner=owner,
                    initiative=own_key,
                )

    _quorum_within_leaders(check, doc)

    holidays: dict[tuple[str, str], Path] = {}
    for path, holiday in _items(doc, "holidays", ()):
        span = (str(holiday.get("start")), str(holiday.get("end") or holiday.get("start")))
        if span in holidays:
            check.add(path, Code.DUPLICATE_HOLIDAY, start=span[0], end=span[1])
        holidays.setdefault(span, path)
    return check.problems


def _quorum_within_leaders(check: _Checker, doc: dict[str, Any]) -> None:
    """A quorum larger than the plan's leaders could never be met: every poll would be undecided."""
    defaults = doc.get("defaults")
    quorum = defaults.get("poll_quorum") if isinstance(defaults, dict) else None
    if isinstance(quorum, str) and quorum.strip().isdigit():
        quorum = int(quorum.strip())  # a spreadsheet cell holds text; the schema reads it so too
    if not isinstance(quorum, int) or isinstance(quorum, bool) or quorum < 1:
        return  # not a whole number ≥ 1: the schema reports it
    leaders = doc.get("leaders")
    count = len({str(p).strip().lower() for p in leaders}) if isinstance(leaders, list) else 0
    if quorum > count:
        check.add(
            ("defaults", "poll_quorum"),
            Code.POLL_QUORUM_OVER_LEADERS,
            quorum=quorum,
            leaders=count,
        )
