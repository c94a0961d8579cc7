"""Renders /kpi, /plan and App Home answers to Block Kit, packing lists so every answer fits Slack.

Lists of any length become sections of whole lines, each at most 3000 characters once escaped,
up to a block budget; whatever does not fit is counted for the template's "and N more". Lines
are rendered lazily, so a plan of thousands of rows costs only the lines that are shown.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from bot import reports as r
from templates import Trusted, escape_mrkdwn, render_json_object, render_mrkdwn
from templates.ids import MilestoneIds, PollIds, PulseIds, QueryIds

SECTION_CHARS = 3000  # Slack's limit for a section's text
LINE_CHARS = 2000  # a single line is cut here (only absurd plan text gets near it)
MESSAGE_BLOCKS = 50
HOME_BLOCKS = 100
# Blocks a message template may add around its lists (heading, fields, blockers, "and N more"
# notes, footer); lists share what is left.
MESSAGE_FIXED_BLOCKS = 12
BLOCKERS_CHARS = 2900  # the blockers section, with its heading, stays under 3000
SHARE_VALUE_CHARS = 1500  # a button value may be 2000; the query is cut well below that
# Home lists pending pulses and alerts one by one (a section, and its buttons): 20 blocks
# at most each.
HOME_PULSES = 10
HOME_ALERTS = 10
# Open polls are listed one by one too (a section and the poll's vote buttons).
HOME_POLLS = 5
# Home's blocks besides its lists: header, note, a divider, a heading and an "and N more" for
# each of its five lists, and the closing note.
HOME_FIXED_BLOCKS = 18

T = TypeVar("T")


@dataclass(frozen=True)
class Packed:
    sections: list[Trusted]
    shown: int  # how many counted items are in the sections
    more: int  # how many were left out


def fit(text: str | None, limit: int) -> str:
    """Raw text cut so that, once the template escapes it, it is at most `limit` characters."""
    text = text or ""
    if len(escape_mrkdwn(text)) <= limit:
        return text
    size = 0
    for index, char in enumerate(text):
        size += len(escape_mrkdwn(char))
        if size > limit - 1:
            return text[:index] + "…"
    return text


def _cut(line: str) -> str:
    if len(line) <= LINE_CHARS:
        return line
    # Never cut inside an entity or a <…> token: back up to before the last one that was opened.
    cut = line[: LINE_CHARS - 1]
    for opener, closer in (("&", ";"), ("<", ">")):
        start = cut.rfind(opener)
        if start != -1 and cut.find(closer, start) == -1:
            cut = cut[:start]
    return cut + "…"


def pack(
    lines: Iterable[tuple[str, bool]],
    *,
    total: int,
    max_sections: int,
    max_lines: int = 1000,
    heading: str | None = None,
) -> Packed:
    """Join (mrkdwn line, counts) pairs into sections; stop at `max_sections` or `max_lines`.

    `counts` is False for heading lines (an objective's title) that are not items themselves.
    `total` is the number of counted items in all, including those never fetched or rendered.
    `heading` (a `plan_heading.txt.j2` choice) opens the first section when there are items.
    """
    if total == 0:
        return Packed(sections=[], shown=0, more=0)
    if heading is not None:
        first = render_mrkdwn("blocks/plan_heading.txt.j2", which=heading)
        lines = itertools.chain([(first, False)], lines)
    sections: list[Trusted] = []
    current: list[str] = []
    size = 0
    shown = 0
    for text, counts in lines:
        line = _cut(text)
        extra = len(line) + (1 if current else 0)
        if current and size + extra > SECTION_CHARS:
            sections.append(Trusted("\n".join(current)))
            current, size, extra = [], 0, len(line)
        if len(sections) >= max_sections or (counts and shown >= max_lines):
            break
        current.append(line)
        size += extra
        shown += 1 if counts else 0
    if current and len(sections) < max_sections:
        sections.append(Trusted("\n".join(current)))
    return Packed(sections=sections, shown=shown, more=max(total - shown, 0))


def _items(
    rows: Iterable[T], template: str, context: Callable[[T], dict[str, Any]]
) -> Iterator[tuple[str, bool]]:
    for row in rows:
        yield render_mrkdwn(f"blocks/{template}", **context(row)), True


def number(value: float | None, unit: str = "") -> str:
    """12, 12.5, 1,250 or 33.33 with the unit ("40%", "12 tickets"); "—" when there is none."""
    if value is None:
        return "—"
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    if text == "-0":
        text = "0"
    if not unit:
        return text
    return f"{text}{unit}" if unit in {"%", "‰", "°"} else f"{text} {unit}"


def _kpi_numbers(k: r.KpiLine) -> dict[str, Any]:
    return {
        "k": k,
        "latest": number(k.latest.value if k.latest else None, k.unit),
        "target": number(k.target, k.unit),
        "expected": number(k.expected, k.unit),
        "baseline": number(k.baseline, k.unit),
    }


def share_value(command: str, text: str) -> Trusted:
    """The share button's value: enough to answer the same question again when it is pressed."""
    return Trusted(json.dumps({"command": command, "text": text[:SHARE_VALUE_CHARS]}))


def parse_share_value(value: str) -> tuple[str, str]:
    """(command, text) from a share button value; ValueError when it is not one of ours."""
    data = json.loads(value)
    if not isinstance(data, dict) or not isinstance(data.get("command"), str):
        raise ValueError("not a share value")
    text = data.get("text", "")
    return data["command"], text if isinstance(text, str) else ""


@dataclass(frozen=True)
class Asked:
    """Who asked what: the footer shows a share button, or "shared by" once shared."""

    command: str  # "kpi" or "plan"
    text: str
    kpi_command: str
    plan_command: str
    shared_by: str | None = None

    def footer(self) -> dict[str, Any]:
        name = self.kpi_command if self.command == "kpi" else self.plan_command
        return {
            "ids": QueryIds,
            "shared_by": self.shared_by,
            "share_value": share_value(self.command, self.text),
            "command_line": f"{name} {self.text}".strip(),
            "kpi_command": self.kpi_command,
            "plan_command": self.plan_command,
        }


# --- /kpi -------------------------------------------------------------------------------------


def scorecard_lines(card: r.KpiScorecard) -> Iterator[tuple[str, bool]]:
    """The scorecard as (line, counts) pairs: objective headings, then each of its KPIs."""
    for group in card.groups:
        yield render_mrkdwn("blocks/kpi_objective_line.txt.j2", title=group.title), False
        for k in group.kpis:
            yield render_mrkdwn("blocks/kpi_scorecard_line.txt.j2", **_kpi_numbers(k)), True


def kpi_message(answer: r.KpiAnswer, asked: Asked) -> dict[str, Any]:
    """The Block Kit message answering `/kpi [query]`."""
    budget = MESSAGE_BLOCKS - MESSAGE_FIXED_BLOCKS
    if isinstance(answer, r.KpiScorecard):
        packed = pack(scorecard_lines(answer), total=answer.kpi_count, max_sections=budget)
        return render_json_object(
            "blocks/kpi_scorecard.json.j2",
            kpi_count=answer.kpi_count,
            summarised=answer.listed < answer.kpi_count,
            listed=answer.listed,
            counts={str(health): n for health, n in answer.counts.items()},
            day=answer.day,
            sections=packed.sections,
            more=packed.more,
            **asked.footer(),
        )
    if isinstance(answer, r.KpiCard):
        readings = "\n".join(
            render_mrkdwn(
                "blocks/kpi_reading_line.txt.j2",
                as_of=reading.as_of,
                value=number(reading.value, answer.kpi.unit),
                source=None,
            )
            for reading in answer.readings
        )
        packed = pack(
            _items(
                answer.initiatives,
                "kpi_initiative_line.txt.j2",
                lambda i: {
                    "key": i.key,
                    "title": i.title,
                    "owner": i.owner_slack_id,
                    "pulse_status": i.pulse.status if i.pulse else None,
                    "confidence": i.pulse.confidence if i.pulse else None,
                },
            ),
            total=len(answer.initiatives),
            max_sections=budget,
            heading="initiatives",
        )
        return render_json_object(
            "blocks/kpi_card.json.j2",
            objective_title=answer.objective_title,
            readings_text=Trusted(readings),
            initiative_sections=packed.sections,
            more_initiatives=packed.more,
            **_kpi_numbers(answer.kpi),
            **asked.footer(),
        )
    if isinstance(answer, r.KpiChoices):
        packed = pack(
            _items(
                answer.kpis, "kpi_choice_line.txt.j2", lambda c: {"key": c[0], "kpi_name": c[1]}
            ),
            total=answer.total,
            max_sections=budget,
        )
        return render_json_object(
            "blocks/kpi_choices.json.j2",
            query=answer.query,
            total=answer.total,
            sections=packed.sections,
            more=packed.more,
            **asked.footer(),
        )
    if isinstance(answer, r.KpiChartHelp | r.KpiChartWanted):
        # The command uploads a wanted chart itself; a shared answer only says how to ask.
        wanted = answer if isinstance(answer, r.KpiChartWanted) else None
        return render_json_object(
            "blocks/kpi_chart_help.json.j2",
            key=wanted.key if wanted else None,
            kpi_name=wanted.name if wanted else None,
            kpi_command=asked.kpi_command,
        )
    packed = pack(
        _items(
            answer.suggestions, "kpi_choice_line.txt.j2", lambda c: {"key": c[0], "kpi_name": c[1]}
        ),
        total=len(answer.suggestions),
        max_sections=budget,
    )
    return render_json_object(
        "blocks/kpi_no_match.json.j2",
        query=answer.query,
        suggestions=answer.suggestions,
        sections=packed.sections,
        **asked.footer(),
    )


# --- /plan ------------------------------------------------------------------------------------


def _dependency_items(
    rows: Sequence[r.DependencyLine], template: str
) -> Iterator[tuple[str, bool]]:
    return _items(rows, template, lambda d: {"d": d})


def _initiative_items(rows: Sequence[r.InitiativeSummary]) -> Iterator[tuple[str, bool]]:
    return _items(rows, "plan_initiative_line.txt.j2", lambda i: {"i": i})


def _alert_items(rows: Sequence[r.AlertLine]) -> Iterator[tuple[str, bool]]:
    return _items(rows, "plan_alert_line.txt.j2", lambda a: {"a": a})


def _home_alerts(rows: Sequence[r.AlertLine]) -> list[dict[str, Any]]:
    """Home's alerts, each its own section; a milestone's buttons once, even if two alerts name it
    (a block_id may not repeat in one view)."""
    shown: list[dict[str, Any]] = []
    with_buttons: set[int] = set()
    for alert in rows[:HOME_ALERTS]:
        milestone_id = alert.milestone_id if alert.milestone_id not in with_buttons else None
        if milestone_id is not None:
            with_buttons.add(milestone_id)
        shown.append(
            {
                "line": Trusted(_cut(render_mrkdwn("blocks/plan_alert_line.txt.j2", a=alert))),
                "milestone_id": milestone_id,
                "milestone_title": str(alert.facts.get("title") or ""),
            }
        )
    return shown


def _card_message(card: r.InitiativeCard, asked: Asked) -> dict[str, Any]:
    budget = MESSAGE_BLOCKS - MESSAGE_FIXED_BLOCKS  # 38: milestones 20, dependencies 12, KPIs 6
    milestones = pack(
        _items(card.milestones, "plan_milestone_line.txt.j2", lambda m: vars(m)),
        total=len(card.milestones),
        max_sections=20,
        max_lines=60,
        heading="milestones",
    )
    dependencies = pack(
        _dependency_items(card.dependencies, "plan_dependency_line.txt.j2"),
        total=len(card.dependencies),
        max_sections=12,
        max_lines=40,
        heading="dependencies",
    )
    kpis = pack(
        _items(card.kpis, "plan_kpi_line.txt.j2", _kpi_numbers),
        total=len(card.kpis),
        max_sections=budget - 32,
        max_lines=30,
        heading="kpis",
    )
    return render_json_object(
        "blocks/plan_card.json.j2",
        c=card,
        blockers=fit(card.pulse.blockers if card.pulse else None, BLOCKERS_CHARS),
        milestone_sections=milestones.sections,
        more_milestones=milestones.more,
        dependency_sections=dependencies.sections,
        more_dependencies=dependencies.more,
        kpi_sections=kpis.sections,
        more_kpis=kpis.more,
        **asked.footer(),
    )


def plan_message(answer: r.PlanAnswer, asked: Asked) -> dict[str, Any]:
    """The Block Kit message answering `/plan …`."""
    budget = MESSAGE_BLOCKS - MESSAGE_FIXED_BLOCKS
    if isinstance(answer, r.InitiativeCard):
        return _card_message(answer, asked)
    if isinstance(answer, r.MyInitiatives):
        packed = pack(
            _initiative_items(answer.initiatives), total=answer.total, max_sections=budget
        )
        return render_json_object(
            "blocks/plan_mine.json.j2",
            in_plan=answer.in_plan,
            total=answer.total,
            sections=packed.sections,
            more=packed.more,
            **asked.footer(),
        )
    if isinstance(answer, r.MyDependencies):
        provide = pack(
            _dependency_items(answer.to_provide.rows, "plan_dependency_for_line.txt.j2"),
            total=answer.to_provide.total,
            max_sections=budget // 2,
        )
        waiting = pack(
            _dependency_items(answer.waiting_for.rows, "plan_dependency_for_line.txt.j2"),
            total=answer.waiting_for.total,
            max_sections=budget // 2,
        )
        return render_json_object(
            "blocks/plan_deps.json.j2",
            in_plan=answer.in_plan,
            provide_total=answer.to_provide.total,
            provide_sections=provide.sections,
            more_provide=provide.more,
            waiting_total=answer.waiting_for.total,
            waiting_sections=waiting.sections,
            more_waiting=waiting.more,
            **asked.footer(),
        )
    if isinstance(answer, r.AlertList):
        yours = pack(
            _alert_items(answer.yours.rows), total=answer.yours.total, max_sections=budget // 2
        )
        others = pack(
            _alert_items(answer.others.rows), total=answer.others.total, max_sections=budget // 2
        )
        return render_json_object(
            "blocks/plan_alerts.json.j2",
            in_plan=answer.in_plan,
            yours_total=answer.yours.total,
            yours_sections=yours.sections,
            more_yours=yours.more,
            others_total=answer.others.total,
            others_sections=others.sections,
            more_others=others.more,
            **asked.footer(),
        )
    if isinstance(answer, r.DecisionLog):
        packed = pack(
            _items(answer.decisions, "plan_decision_line.txt.j2", lambda d: vars(d)),
            total=answer.total,
            max_sections=budget,
        )
        return render_json_object(
            "blocks/plan_decisions.json.j2",
            total=answer.total,
            sections=packed.sections,
            more=packed.more,
            **asked.footer(),
        )
    if isinstance(answer, r.DigestWanted):
        raise TypeError("the digest is drawn after the ack by templates.digest.digest_private")
    return render_json_object(
        "blocks/plan_help.json.j2",
        unknown=answer.unknown,
        suggestions=answer.suggestions,
        **asked.footer(),
    )


# --- App Home ---------------------------------------------------------------------------------


def home_view(
    home: r.HomeData, *, now: datetime, kpi_command: str, plan_command: str, pulse_command: str
) -> dict[str, Any]:
    """The Home tab view for views.publish (at most 100 blocks however much is listed)."""
    # 100 blocks: the fixed ones, 2 for each of at most HOME_ALERTS alerts, HOME_PULSES
    # pending pulses and HOME_POLLS open polls, and what is left shared by the packed lists.
    per_list = (HOME_BLOCKS - HOME_FIXED_BLOCKS - 2 * (HOME_ALERTS + HOME_PULSES + HOME_POLLS)) // 2
    alerts = _home_alerts(home.alerts.rows)
    initiatives = pack(
        _initiative_items(home.initiatives.initiatives),
        total=home.initiatives.total,
        max_sections=per_list,
    )
    pulses = [
        {
            "pulse_id": p.pulse_id,
            "line": Trusted(_cut(render_mrkdwn("blocks/home_pulse_line.txt.j2", p=p))),
        }
        for p in home.pulses.rows[:HOME_PULSES]
    ]
    dependencies = pack(
        _dependency_items(home.dependencies.rows, "plan_dependency_for_line.txt.j2"),
        total=home.dependencies.total,
        max_sections=per_list,
    )
    polls = [
        {"poll": o, "line": Trusted(_cut(render_mrkdwn("blocks/home_poll_line.txt.j2", o=o)))}
        for o in home.polls.rows[:HOME_POLLS]
    ]
    return render_json_object(
        "blocks/home.json.j2",
        ids=QueryIds,
        pulse_ids=PulseIds,
        milestone_ids=MilestoneIds,
        now=now,
        in_plan=home.in_plan,
        is_leader=home.is_leader,
        kpi_command=kpi_command,
        plan_command=plan_command,
        pulse_command=pulse_command,
        alerts_total=home.alerts.total,
        alerts=alerts,
        more_alerts=max(home.alerts.total - len(alerts), 0),
        initiatives_total=home.initiatives.total,
        initiative_sections=initiatives.sections,
        more_initiatives=initiatives.more,
        pulses_total=home.pulses.total,
        pulses=pulses,
        more_pulses=max(home.pulses.total - len(pulses), 0),
        dependencies_total=home.dependencies.total,
        dependency_sections=dependencies.sections,
        more_dependencies=dependencies.more,
        polls_total=home.polls.total,
        polls=polls,
        poll_ids=PollIds,
        more_polls=max(home.polls.total - len(polls), 0),
    )


def share_failed_message(reason: str) -> dict[str, Any]:
    return render_json_object("blocks/share_failed.json.j2", reason=reason)
