"""`planpulse manifest`: the Slack app manifest (YAML) with exactly the bot scopes the code needs.

The scopes come from `bot.slack.gateway.METHOD_SCOPES` (every Web API method the gateway calls)
plus `commands` for the slash commands, so the manifest cannot drift from the code.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any
from urllib.parse import urlsplit

import yaml

from bot.errors import ConfigurationError
from bot.problems import ProblemCode, problem
from bot.settings import Settings, load_settings
from bot.slack.gateway import METHOD_SCOPES
from templates import render_text

EVENTS_PATH = "/slack/events"
BOT_EVENTS = ("app_home_opened",)
# Slash commands need their own scope; everything else follows from the Web API methods called.
EXTRA_SCOPES = ("commands",)


class ManifestProblem(ProblemCode):
    """What can be wrong with the arguments of `planpulse manifest`."""

    NOT_A_URL = "manifest.not_a_url"  # url, events_path


def bot_scopes() -> list[str]:
    scopes = {scope for needed in METHOD_SCOPES.values() for scope in needed}
    return sorted(scopes | set(EXTRA_SCOPES))


def request_url_for(url: str) -> str:
    """The public URL of `POST /slack/events`; a bare host gets the path added."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            problem(ManifestProblem.NOT_A_URL, url=url, events_path=EVENTS_PATH)
        )
    if parts.path in ("", "/"):
        return url.rstrip("/") + EVENTS_PATH
    return url


def build_manifest(settings: Settings, *, request_url: str | None) -> dict[str, Any]:
    """The manifest as a dict: Socket Mode when `request_url` is None, HTTP mode otherwise."""
    text = render_text(
        "text/manifest.yaml.j2",
        commands={
            "kpi": settings.kpi_command,
            "plan": settings.plan_command,
            "decide": settings.decide_command,
            "pulse": settings.pulse_command,
        },
        scopes=bot_scopes(),
        bot_events=BOT_EVENTS,
        request_url=request_url,
        socket_mode=request_url is None,
    )
    manifest: dict[str, Any] = yaml.safe_load(text)
    return manifest


def manifest_command(args: argparse.Namespace) -> int:
    settings = load_settings()
    request_url = (
        None if args.socket_mode or not args.request_url else request_url_for(args.request_url)
    )
    if request_url is None and not args.socket_mode:
        print(
            "planpulse: no --request-url given, so this manifest uses Socket Mode "
            "(set SLACK_APP_TOKEN); pass --request-url https://host/slack/events for HTTP mode.",
            file=sys.stderr,
        )
    manifest = build_manifest(settings, request_url=request_url)
    sys.stdout.write(yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True, width=100))
    return 0
