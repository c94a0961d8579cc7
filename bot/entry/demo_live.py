"""The live half of `planpulse demo`: the real bot against the stand-in, driven as Slack drives it.

The example workspace runs in the stand-in; the real server (`build_asgi_app`, uvicorn) listens on
a loopback port; the directory sync and the ticks at each owner's first pulse time deliver
the pulse DMs; then one owner clicks a
pulse button and asks `/kpi` and `/plan`, through signed requests built by `standin.client`.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from bot.alerts import DetectionReport
from bot.decisions.closing import ClosingReport
from bot.decisions.slips import FramingReport
from bot.directory import sync_people
from bot.entry.app import create_app
from bot.entry.demo_text import plain_lines
from bot.entry.server import build_asgi_app
from bot.planfile.example import WORKSPACE_FILE
from bot.pulses.schedule import cadence, current_period
from bot.services import Services
from bot.settings import load_settings
from bot.slack.gateway import SlackGateway
from bot.timezones import person_zone
from scheduler.tick import DIRECTORY_JOB, run_once_per_period, run_tick
from standin import StandIn, Workspace
from standin.api import Message
from standin.client import BotReply, SlackRequest, SlackSide
from storage.db import session_scope
from storage.dependencies import dependency_state, provider_member
from storage.people import person_by_id
from storage.plan import initiative_by_id, plan_settings
from storage.pulses import latest_answer, pulse_candidates, pulses_in_message
from storage.reports import initiative_by_key
from templates.ids import DependencyIds, MessageEvents, PulseIds

DEMO_INITIATIVE = "portal-beta"  # its owner is the person the demo plays in Slack
ANSWER_BUTTON = PulseIds.AT_RISK  # its "Beta feature-complete" milestone was just missed
WAIT_SECONDS = 10.0
FIRST_LINES = 6


@dataclass(frozen=True)
class LiveBot:
    """The running stand-in and server, and Slack's side of talking to it."""

    standin: StandIn
    services: Services
    slack: SlackSide
    url: str

    def send(self, request: SlackRequest) -> BotReply:
        return self.slack.send(self.url, request)

    def names(self) -> dict[str, str]:
        return {u.id: u.real_name or u.name for u in self.standin.workspace.users.values()}


def run_live(engine: Engine, database_url: str, now: datetime) -> dict[str, Any]:
    """Everything the live part does, returned as plain values for templates/text/demo_live."""
    with live_bot(engine, database_url) as bot:
        directory = sync_people(bot.services, now)
        owner = pulse_moment(bot.services, now)
        fires = first_fires(bot.services, now)
        # The directory was just synced: record it for the ticks' days so their daily job does
        # not list every user again.
        for day in sorted({fire.date() for fire in fires}):
            run_once_per_period(
                bot.services,
                job=DIRECTORY_JOB,
                period=day.isoformat(),
                now=now,
                run=lambda _services, _now: directory,
            )
        delivered: list[dict[str, Any]] = []
        failed: dict[str, str] = {}
        alerts: Counter[str] = Counter()
        decisions: Counter[str] = Counter()
        for fire in fires:
            already = len(bot.standin.calls("chat.postMessage"))
            ticked = run_tick(bot.services, fire)
            failed.update(ticked.failed)
            detection = ticked.results.get("detection")
            if isinstance(detection, DetectionReport):
                alerts.update({k: v for k, v in vars(detection).items() if v})
            framing = ticked.results.get("decision_framing")
            if isinstance(framing, FramingReport):
                decisions.update(
                    asked=framing.asked, joined=framing.joined, polls=framing.polls.posted
                )
            closing = ticked.results.get("decision_polls")
            if isinstance(closing, ClosingReport):
                # Non-voters reminded when a poll is extended for quorum; outcomes in threads.
                decisions.update(reminded=closing.reminded, outcomes=closing.outcomes_posted)
            delivered.extend(delivered_pulses(bot, fire, since=already))
        before_answer = len(bot.standin.calls("chat.postMessage"))
        answer = answer_from_dm(bot, owner.slack_id)
        # A pulse answer is news in the thread of its initiative's open poll, if it has one.
        answer["posts"] = len(bot.standin.calls("chat.postMessage")) - before_answer
        settings = bot.services.settings
        kpi = ask(bot, settings.kpi_command, "", owner.slack_id)
        plan = ask(bot, settings.plan_command, owner.initiative_key, owner.slack_id)
        calls = Counter(call.method for call in bot.standin.calls())
        requests = dependency_requests(bot)
        posted_alerts = alerts_posted(bot)
        acknowledged = acknowledge_as_provider(bot)
        calls = Counter(call.method for call in bot.standin.calls())
        decisions["redrawn"] = poll_redraws(bot)
    return {
        "workspace": bot.standin.workspace.team_name,
        "people": len(bot.standin.workspace.users),
        "channels": len(bot.standin.workspace.channels),
        "directory": directory.summary(),
        "ticks": len(fires),
        "tick_failed": failed,
        "alerts": dict(alerts),
        "decisions": dict(decisions),  # framing DMs, slips joined to open polls, polls posted
        "delivered": delivered,
        "requests": requests,
        "posted_alerts": posted_alerts,
        "acknowledged": acknowledged,
        "owner": owner,
        "answer": answer,
        "kpi": kpi,
        "plan": plan,
        "calls": sorted(calls.items(), key=lambda item: (-item[1], item[0])),
        "call_total": sum(calls.values()),
    }


@contextmanager
def live_bot(engine: Engine, database_url: str) -> Iterator[LiveBot]:
    """The stand-in with the example workspace and the real HTTP server; both stopped on exit."""
    secret = secrets.token_hex(16)  # this run's own: nothing else can sign requests to it
    standin = StandIn(Workspace.from_yaml(WORKSPACE_FILE)).start()
    try:
        settings = load_settings(
            database_url=database_url,
            slack_bot_token=standin.workspace.bot_token,
            slack_signing_secret=secret,
            slack_app_token=None,
            slack_api_url=standin.api_url,
        )
        services = Services(
            settings=settings, engine=engine, slack=SlackGateway.from_settings(settings)
        )
        with http_server(services) as url:
            yield LiveBot(standin, services, SlackSide(standin, signing_secret=secret), url)
    finally:
        standin.stop()


@contextmanager
def http_server(services: Services) -> Iterator[str]:
    """The real ASGI app under uvicorn on a free loopback port, in a thread; yields its URL."""
    import uvicorn

    executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="demo-listener")
    asgi = build_asgi_app(services, bolt_app=create_app(services, listener_executor=executor))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(asgi, log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the demo's HTTP server did not start")
            time.sleep(0.01)
        host, port = sock.getsockname()[:2]
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(WAIT_SECONDS)
        # Work acked before the stop still finishes, as in `serve`.
        executor.shutdown(wait=True)
        sock.close()


@dataclass(frozen=True)
class DemoOwner:
    """The owner the demo plays in Slack, and when their current pulse fell due."""

    name: str
    slack_id: str
    tz: ZoneInfo
    initiative_key: str
    initiative_title: str
    due: datetime


def pulse_moment(services: Services, now: datetime) -> DemoOwner:
    """DEMO_INITIATIVE's owner, and its first pulse fire after the import by the cadence rules
    (the next cron fire in the owner's own timezone: with the default, the next Monday 09:00)."""
    with session_scope(services.engine) as session:
        initiative = initiative_by_key(session=session, key=DEMO_INITIATIVE)
        owner = person_by_id(session=session, person_id=initiative.owner_id) if initiative else None
        plan = plan_settings(session=session)
        expression = cadence(initiative, plan) if initiative else None
        if initiative is None or owner is None or not owner.slack_id or expression is None:
            raise RuntimeError(
                f"the example's {DEMO_INITIATIVE} has no owner in Slack or no cadence"
            )
        tz = person_zone(owner.tz, plan.timezone)
        return DemoOwner(
            name=owner.name,
            slack_id=owner.slack_id,
            tz=tz,
            initiative_key=initiative.key,
            initiative_title=initiative.title,
            due=current_period(expression, tz, now).end,
        )


def first_fires(services: Services, now: datetime) -> list[datetime]:
    """Each owner's first pulse fire after `now` (the import), in order: the demo ticks at each."""
    with session_scope(services.engine) as session:
        plan = plan_settings(session=session)
        fires = set()
        for initiative, owner in pulse_candidates(session=session):
            expression = cadence(initiative, plan)
            if expression is not None and owner.slack_id:
                fires.add(current_period(expression, person_zone(owner.tz, plan.timezone), now).end)
    return sorted(fires)


def dependency_requests(bot: LiveBot) -> list[dict[str, str]]:
    """The dependency requests the ticks posted, by channel name, as the stand-in saw them."""
    channels = bot.standin.workspace.channels
    posted = []
    for call in bot.standin.calls("chat.postMessage"):
        metadata = call.params.get("metadata")
        if call.ok and metadata and MessageEvents.DEPENDENCY_REQUEST in str(metadata):
            channel = channels.get(str(call.response.get("channel")))
            posted.append(
                {
                    "channel": f"#{channel.name}" if channel else str(call.response.get("channel")),
                    "text": str(call.params.get("text", "")),
                }
            )
    return posted


def poll_redraws(bot: LiveBot) -> int:
    """chat.update calls on decision polls' parent messages (a tally, an extended deadline)."""
    polls = {
        (call.response.get("channel"), call.response.get("ts"))
        for call in bot.standin.calls("chat.postMessage")
        if call.ok and _event_type(call.params.get("metadata")) == MessageEvents.POLL
    }
    return sum(
        1
        for call in bot.standin.calls("chat.update")
        if (call.params.get("channel"), call.params.get("ts")) in polls
    )


def _event_type(metadata: Any) -> str | None:
    """A post's metadata event type, whether the call sent it as JSON text or as an object."""
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return None
    return metadata.get("event_type") if isinstance(metadata, dict) else None


def alerts_posted(bot: LiveBot) -> list[dict[str, str]]:
    """The alert messages the ticks posted in channels (DMs aside), as the stand-in saw them."""
    channels = bot.standin.workspace.channels
    posted = []
    for call in bot.standin.calls("chat.postMessage"):
        metadata = call.params.get("metadata")
        channel = channels.get(str(call.response.get("channel"))) if call.ok else None
        if channel is not None and metadata and MessageEvents.ALERT in str(metadata):
            posted.append({"channel": f"#{channel.name}", "text": str(call.params.get("text", ""))})
    return posted


def acknowledge_as_provider(bot: LiveBot) -> dict[str, Any]:
    """Click Acknowledge on a request as a member of the provider team, as Slack sends it."""
    requests = [
        m
        for channel in bot.standin.workspace.channels
        for m in bot.standin.messages(channel)
        if m.metadata and m.metadata.get("event_type") == MessageEvents.DEPENDENCY_REQUEST
    ]
    message, block_id, button = find_button(requests, DependencyIds.ACKNOWLEDGE)
    channel = next(m.channel for m in requests if m.ts == message["ts"])
    dependency_id = int(button["value"])
    with session_scope(bot.services.engine) as session:
        clicker = provider_member(session=session, dependency_id=dependency_id)
    if clicker is None or not clicker.slack_id:
        raise RuntimeError("the provider team has nobody in Slack to acknowledge")
    payload = bot.slack.block_action_payload(
        DependencyIds.ACKNOWLEDGE,
        button["value"],
        user_id=clicker.slack_id,
        channel_id=channel,
        block_id=block_id,
        message=message,
        action=button,
    )
    before = len(bot.standin.calls())
    reply = bot.send(bot.slack.interaction(payload))
    bot.standin.wait_for(
        "chat.update", 1, WAIT_SECONDS, where=lambda call: call.params.get("ts") == message["ts"]
    )
    settled(bot)  # the owner's DM and the alerts that follow come after the update
    updated = next(m for m in bot.standin.messages(channel) if m.ts == message["ts"])
    with session_scope(bot.services.engine) as session:
        state = dependency_state(session=session, dependency_id=dependency_id)
    return {
        "by": clicker.name,
        "status": reply.status,
        "state": state,
        "after": plain_lines(updated.blocks, bot.names(), FIRST_LINES),
        "calls": Counter(call.method for call in bot.standin.calls()[before:]),
    }


def settled(bot: LiveBot, quiet: float = 0.5) -> None:
    """Wait until the stand-in has seen no call for `quiet` seconds (at most WAIT_SECONDS)."""
    deadline = time.monotonic() + WAIT_SECONDS
    seen = -1
    while time.monotonic() < deadline:
        count = len(bot.standin.calls())
        if count == seen:
            return
        seen = count
        time.sleep(quiet)


def delivered_pulses(bot: LiveBot, tick_at: datetime, *, since: int) -> list[dict[str, Any]]:
    """Who got a pulse DM from the tick at `tick_at` (Web API calls after the first `since`), as
    the stand-in saw it, with their local time then."""
    users = bot.standin.workspace.users
    delivered = []
    for call in bot.standin.calls("chat.postMessage")[since:]:
        channel = call.response.get("channel")
        # A reminder is a reply in the prompt's thread: the prompt's ts names its pulses.
        thread = call.params.get("thread_ts")
        ts = thread or call.response.get("ts")
        if not call.ok or not channel or not ts:
            continue
        with session_scope(bot.services.engine) as session:
            pulses = pulses_in_message(session=session, channel_id=channel, message_ts=ts)
            keys = [
                i.key
                for p in pulses
                if (i := initiative_by_id(session=session, initiative_id=p.initiative_id))
            ]
            owner = person_by_id(session=session, person_id=pulses[0].owner_id) if pulses else None
        user = users.get(str(owner.slack_id)) if owner is not None else None
        if keys and user is not None:
            delivered.append(
                {
                    "name": user.real_name or user.name,
                    "tz": user.tz,
                    "local": tick_at.astimezone(ZoneInfo(user.tz)),
                    "initiatives": keys,
                    "reminder": bool(thread),
                }
            )
    return delivered


def answer_from_dm(bot: LiveBot, user_id: str) -> dict[str, Any]:
    """Click ANSWER_BUTTON on the owner's pulse DM, as Slack sends it; wait for the DM update."""
    message, block_id, button = find_button(bot.standin.messages(user_id), ANSWER_BUTTON)
    before = plain_lines(message["blocks"], bot.names(), FIRST_LINES)  # chat.update edits it
    payload = bot.slack.block_action_payload(
        ANSWER_BUTTON,
        button["value"],
        user_id=user_id,
        channel_id=user_id,
        block_id=block_id,
        message=message,
        action=button,
    )
    reply = bot.send(bot.slack.interaction(payload))
    bot.standin.wait_for(
        "chat.update", 1, WAIT_SECONDS, where=lambda call: call.params.get("ts") == message["ts"]
    )
    updated = next(m for m in bot.standin.messages(user_id) if m.ts == message["ts"])
    with session_scope(bot.services.engine) as session:
        answer = latest_answer(session=session, pulse_id=int(button["value"]))
        by = (
            person_by_id(session=session, person_id=answer.answered_by_id)
            if answer and answer.answered_by_id
            else None
        )
        recorded = (
            {"status": answer.status, "by": by.name if by else "?", "at": answer.answered_at}
            if answer
            else None
        )
    return {
        "button": button["text"]["text"],
        "status": reply.status,
        "recorded": recorded,
        "same_message": updated.edited,
        "before": before,
        "after": plain_lines(updated.blocks, bot.names(), FIRST_LINES),
    }


def find_button(
    messages: list[Message], action_id: str
) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """The newest message with an `action_id` button, its actions block_id, and the button."""
    for posted in reversed(messages):
        message = posted.as_dict(with_metadata=True)
        for block in message["blocks"]:
            for element in block.get("elements", []) if block.get("type") == "actions" else []:
                if element.get("action_id") == action_id:
                    return message, str(block.get("block_id", "")), element
    raise RuntimeError(f"no {action_id} button in the messages searched")


def ask(bot: LiveBot, command: str, text: str, user_id: str) -> dict[str, Any]:
    """A slash command as Slack sends it; the answer rides on the ack (an ephemeral message)."""
    channels = bot.standin.workspace.channels.values()
    channel = next((c.id for c in channels if user_id in c.members), None)
    channel = channel or bot.standin.dm_channel(user_id)
    reply = bot.send(bot.slack.command(command, text, user_id=user_id, channel_id=channel))
    body: dict[str, Any] = reply.json() if reply.text.startswith("{") else {"text": reply.text}
    lines = plain_lines(body.get("blocks") or [], bot.names(), FIRST_LINES)
    return {
        "command": f"{command} {text}".strip(),
        "status": reply.status,
        "lines": lines or [body.get("text", "")],
    }
