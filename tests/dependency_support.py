"""Helpers for the dependency-loop tests: a plan imported from YAML, the directory resolved, requests read back."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from bot.directory import sync_people
from bot.planfile.importer import import_plan
from bot.planfile.validate import load_plan
from bot.services import Services
from standin import StandIn
from storage.models import Dependency, DependencyRequest
from templates.ids import MessageEvents

# UCMO leads Marketing (#marketing, CMARKETING) and UBOB is its member; UCIO leads IT; UCOO is
# an admin; UALICE owns the initiative that needs things. Finance has no channel.
PLAN = """
organization: Northwind Financial
timezone: America/New_York
channels: {{decisions: "#exec-decisions", alerts: "#it-delivery"}}
leaders: [UCFO]
admins: [UCOO]
defaults: {{pulse: "0 9 * * mon", ack_within_days: 2, poll_hours: 48}}
teams:
  - {{key: it, name: IT Delivery, channel: "#it-delivery", lead: UCIO, members: [UALICE]}}
  - {{key: marketing, name: {provider_name}, channel: "{marketing_channel}", lead: UCMO, members: [UBOB]}}
  - {{key: finance, name: Finance, lead: UCFO}}
objectives:
  - key: digital-portal
    title: Self-service portal
    owner: UCOO
initiatives:
  - key: portal-beta
    title: {title}
    objective: digital-portal
    owner: UALICE
    team: it
    milestones:
      - {{key: beta-launch, title: Beta launch to 5% of customers, due: 2027-02-01}}
    dependencies:
      - key: support-training
        provider: marketing
        need: {need}
        needed_by: {needed_by}
        milestone: beta-launch{state}
      - {{key: budget, provider: finance, need: Budget approved, needed_by: 2027-01-20}}
"""


def plan_text(
    *,
    need: str = "Support staff trained for the beta",
    needed_by: str = "2027-01-25",
    title: str = "Customer portal beta",
    provider_name: str = "Marketing",
    marketing_channel: str = "#marketing",
    state: str | None = None,
) -> str:
    return PLAN.format(
        need=json.dumps(need),
        needed_by=needed_by,
        title=json.dumps(title),
        provider_name=json.dumps(provider_name),
        marketing_channel=marketing_channel,
        state=f"\n        state: {state}" if state else "",
    )


def import_text(engine: Any, tmp_path: Path, text: str, now: datetime) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    import_plan(engine, load_plan(str(path)), actor="cli:test", now=now)


def imported(services: Services, tmp_path: Path, now: datetime, **plan: Any) -> None:
    """The plan imported and its channels resolved, as the first tick's directory step leaves it."""
    import_text(services.engine, tmp_path, plan_text(**plan), now)
    sync_people(services, now)


def dependency(engine: Any, key: str = "support-training") -> Dependency:
    with Session(engine) as session:
        return session.exec(select(Dependency).where(Dependency.key == key)).one()


def requests(engine: Any) -> list[DependencyRequest]:
    with Session(engine) as session:
        return list(session.exec(select(DependencyRequest).order_by(DependencyRequest.id)))


def request_messages(standin: StandIn, channel: str = "CMARKETING") -> list[Any]:
    """The dependency requests in a channel (alerts and the rest left out), oldest first."""
    return [
        m
        for m in standin.messages(channel)
        if (m.metadata or {}).get("event_type") == MessageEvents.DEPENDENCY_REQUEST
    ]


def shown_text(message: Any) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


def buttons(message: Any) -> list[str]:
    return [
        element["action_id"]
        for block in message.blocks
        if block.get("type") == "actions"
        for element in block["elements"]
    ]


def real_now() -> datetime:
    return datetime.now(UTC)
