"""Alert messages, rendered from templates/blocks/alerts/: one template per condition, plus the summary and thread lines."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from bot.services import Services
from bot.slack.errors import SlackError
from storage.detection import subject_now
from storage.models import Alert, AlertState
from templates import render_json_object, render_mrkdwn
from templates.ids import AlertKinds, MilestoneIds


@dataclass(frozen=True)
class Rendered:
    text: str
    blocks: list[dict[str, Any]]


def _rendered(name: str, **context: Any) -> Rendered:
    message = render_json_object(name, **context)
    return Rendered(text=str(message["text"]), blocks=list(message["blocks"]))


def _links(services: Services, facts: Mapping[str, Any]) -> dict[str, str]:
    """Permalinks of the messages an alert points at (a dependency's request), fetched only to draw it."""
    links: dict[str, str] = {}
    channel, ts = facts.get("request_channel"), facts.get("request_ts")
    if channel and ts:
        # Without the link the alert still says everything; only the pointer is missing.
        with contextlib.suppress(SlackError):
            links["request"] = services.slack.permalink(channel=str(channel), ts=str(ts))
    return links


def alert_message(
    services: Services, kind: str, facts: Mapping[str, Any], *, resolved: bool
) -> Rendered:
    """The alert's own message in its channel (or its DM, for kinds that have no channel)."""
    return _rendered(
        f"blocks/alerts/{AlertKinds(kind)}.json.j2",
        f=facts,
        resolved=resolved,
        variant="channel",
        links=_links(services, facts),
        milestone_ids=MilestoneIds,
    )


def direct_message(
    services: Services, kind: str, facts: Mapping[str, Any], *, link: str | None
) -> Rendered:
    """What the people an alert names are told once, by DM, linking to the channel message."""
    links = _links(services, facts)
    if link:
        links["alert"] = link
    return _rendered(
        f"blocks/alerts/{AlertKinds(kind)}.json.j2",
        f=facts,
        resolved=False,
        variant="dm",
        links=links,
        milestone_ids=MilestoneIds,
    )


def summary_message(alerts: Sequence[Alert], *, plan_command: str) -> Rendered:
    """One message for the alerts over a channel's noise budget, each line showing its state."""
    return _rendered(
        "blocks/alerts/summary.json.j2",
        alerts=[
            {"kind": a.kind, "facts": a.facts, "resolved": a.state == AlertState.RESOLVED}
            for a in alerts
        ],
        plan_command=plan_command,
    )


def change_line(kind: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    return render_mrkdwn("blocks/alerts/change_line.txt.j2", kind=kind, before=before, after=after)


def resolution_facts(session: Session, alert: Alert) -> dict[str, Any]:
    """What the alert's subject is now (done, moved, delivered, archived, gone): why it cleared."""
    return subject_now(session=session, subject=alert.subject)


def resolution_line(kind: str, facts: Mapping[str, Any], why: Mapping[str, Any]) -> str:
    return render_mrkdwn("blocks/alerts/resolved_line.txt.j2", kind=kind, f=facts, why=why)


def one_line(kind: str, facts: Mapping[str, Any]) -> str:
    """The alert in one mrkdwn line (lists: /plan alerts, App Home)."""
    return render_mrkdwn("blocks/alerts/line.txt.j2", kind=kind, f=facts)
