"""The demo's HTML report: the quarter's timeline rendered close to how Slack shows it, the charts
inline, and the plan as it ended. One self-contained file: images are data: URIs, no scripts.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from sqlmodel import Session

from bot.charts import CHART_HISTORY, kpi_chart_png
from bot.entry.demo_text import EMOJI
from bot.entry.quarter.timeline import Week
from storage import demo as q
from storage.reports import recent_readings
from templates import TEMPLATE_DIR

REPORT_FILE = "index.html"


_TOKEN = re.compile(r"<([^>]*)>")
_BOLD = re.compile(r"(?<![\w*])\*(\S(?:[^*\n]*?\S)?)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(\S(?:[^_\n]*?\S)?)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(\S(?:[^~\n]*?\S)?)~(?![\w~])")
_CODE = re.compile(r"`([^`\n]+)`")
_EMOJI = re.compile(r":([a-z0-9_+-]+):")


def _token(inner: str, names: dict[str, str]) -> str:
    """One <…> of mrkdwn, as Slack shows it (escaped here; the caller adds no markup of its own)."""
    label = inner.split("|", 1)[1] if "|" in inner else None
    if inner.startswith("!date^"):
        return f'<span class="date">{html.escape(html.unescape(label or ""))}</span>'
    if inner.startswith("@"):
        user = inner[1:].split("|", 1)[0]
        return f'<span class="mention">@{html.escape(names.get(user, user))}</span>'
    if inner.startswith("#"):
        return f'<span class="mention">#{html.escape(label or inner[1:])}</span>'
    if inner.startswith("!"):
        return f'<span class="mention">@{html.escape(inner[1:].split("|", 1)[0])}</span>'
    url = inner.split("|", 1)[0]
    shown = html.escape(html.unescape(label if label is not None else url))
    return f'<a href="{html.escape(html.unescape(url), quote=True)}">{shown}</a>'


def _styled(text: str) -> str:
    """Plain text (entities already decoded) escaped, then Slack's emphasis and emoji."""
    out = html.escape(text, quote=False)
    out = _CODE.sub(r"<code>\1</code>", out)
    out = _BOLD.sub(r"<b>\1</b>", out)
    out = _ITALIC.sub(r"<i>\1</i>", out)
    out = _STRIKE.sub(r"<s>\1</s>", out)
    out = _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), out)
    return out.replace("\n", "<br>")


def mrkdwn_html(text: str, names: dict[str, str]) -> Markup:
    """Slack mrkdwn as safe HTML: its &amp;/&lt;/&gt; decoded then escaped again, links and
    mentions shown by name, *bold*, _italic_, ~strike~, `code` and the emoji the bot uses."""
    parts: list[str] = []
    last = 0
    for match in _TOKEN.finditer(text):
        parts.append(_styled(html.unescape(text[last : match.start()])))
        parts.append(_token(match.group(1), names))
        last = match.end()
    parts.append(_styled(html.unescape(text[last:])))
    return Markup("".join(parts))  # noqa: S704 - every piece above was escaped


def _text_of(node: Any, names: dict[str, str]) -> Markup:
    if not isinstance(node, dict):
        return Markup("")
    text = str(node.get("text", ""))
    if node.get("type") == "plain_text":
        return Markup(_EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), html.escape(text)))  # noqa: S704
    return mrkdwn_html(text, names)


@dataclass(frozen=True)
class MilestoneRow:
    initiative: str
    title: str
    first_due: date
    due: date
    status: str
    scope_note: str | None


@dataclass(frozen=True)
class PlanState:
    milestones: list[MilestoneRow]
    dependencies: list[tuple[str, str, str, date]]  # need, provider, state, needed by
    decisions: list[tuple[str, str, date | None]]  # milestone, option, new due
    charts: list[tuple[str, str]]  # KPI name, data: URI


def plan_state(session: Session, today: date) -> PlanState:
    """The plan as the quarter left it, with every KPI's chart as of `today`."""
    initiatives, teams = q.names(session=session)
    milestones = [
        MilestoneRow(
            initiatives.get(m.initiative_id, ""),
            m.title,
            m.original_due,
            m.due,
            m.status,
            m.scope_note,
        )
        for m in q.milestones_by_due(session=session)
        if not m.archived
    ]
    dependencies = [
        (d.need, teams.get(d.provider_team_id, ""), d.state, d.needed_by)
        for d in q.dependencies_by_need(session=session)
    ]
    titles = {m.id: m.title for m in q.milestones_by_due(session=session)}
    decisions = [
        (titles.get(d.milestone_id, ""), d.option, d.new_due)
        for d in q.decisions_in_order(session=session)
    ]
    kpis = q.live_kpis(session=session)
    readings = recent_readings(
        session=session, kpi_ids=[k.id or 0 for k in kpis], per_kpi=CHART_HISTORY
    )
    charts = [
        (
            kpi.name,
            "data:image/png;base64,"
            + base64.b64encode(kpi_chart_png(kpi, readings.get(kpi.id or 0, []), today)).decode(),
        )
        for kpi in kpis
    ]
    return PlanState(milestones, dependencies, decisions, charts)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        undefined=StrictUndefined,
        autoescape=select_autoescape(["html", "html.j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def write_report(
    directory: Path,
    *,
    weeks: list[Week],
    state: PlanState,
    names: dict[str, str],
    context: dict[str, Any],
) -> Path:
    """Write `directory`/index.html and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    page = (
        _environment()
        .get_template("html/demo_report.html.j2")
        .render(
            weeks=weeks,
            state=state,
            text_of=lambda node: _text_of(node, names),
            mrkdwn=lambda text: mrkdwn_html(text, names),
            **context,
        )
    )
    path = directory / REPORT_FILE
    path.write_text(page, encoding="utf-8")
    return path
