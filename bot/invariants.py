"""`planpulse check`: the crash-safety invariants (storage/invariants.py) against the real Slack.

Slack's side is read where the claims say their messages are (each channel's history, each
thread a reply belongs to), so a message posted where no claim points is not looked for.
"""

from __future__ import annotations

import argparse
import sys

from bot.services import Services
from bot.slack.errors import ChannelNotFound, SlackError
from storage.db import session_scope
from storage.invariants import InvariantReport, TaggedPost, check_invariants, claimed_places
from templates import render_text
from templates.problems import say_all


def read_tagged_posts(services: Services) -> list[TaggedPost]:
    """The bot's tagged messages in every channel and thread a claim names."""
    with session_scope(services.engine) as session:
        places = claimed_places(session)
    posts: list[TaggedPost] = []
    for event_type, channels in places.channels.items():
        for channel in sorted(channels):
            try:
                found = services.slack.find_tagged_messages(channel=channel, event_type=event_type)
            except ChannelNotFound:  # gone, or never was: its claims' messages are missing
                continue
            posts.extend(TaggedPost(channel, m.ts, event_type, m.payload) for m in found)
    for channel, thread_ts, event_type in sorted(places.threads):
        try:
            found = services.slack.find_tagged_replies(
                channel=channel, thread_ts=thread_ts, event_type=event_type
            )
        except ChannelNotFound:
            continue
        except SlackError as exc:
            if exc.code != "thread_not_found":  # the parent is gone: so are its replies
                raise
            continue
        posts.extend(
            TaggedPost(channel, m.ts, event_type, m.payload, thread_ts=thread_ts) for m in found
        )
    return posts


def check_deployment(services: Services, *, settled: bool) -> InvariantReport:
    posts = read_tagged_posts(services)
    with session_scope(services.engine) as session:
        return check_invariants(session, posts, settled=settled)


def check_command(args: argparse.Namespace) -> int:
    """Exit 0 when every invariant holds, 1 (each problem on a line) when one does not."""
    from bot.errors import ConfigurationError
    from bot.problems import problem
    from bot.settings import SettingsProblem, load_settings
    from bot.slack.gateway import SlackGateway
    from storage.db import make_engine

    settings = load_settings()
    if settings.slack_bot_token is None:
        raise ConfigurationError(problem(SettingsProblem.MISSING_BOT_CREDENTIALS))
    engine = make_engine(settings.database_url)
    try:
        services = Services(
            settings=settings, engine=engine, slack=SlackGateway.from_settings(settings)
        )
        report = check_deployment(services, settled=bool(args.settled))
    finally:
        engine.dispose()
    if report.problems:
        sys.stdout.write(say_all(report.problems, "cli") + "\n")
    sys.stdout.write(
        render_text(
            "text/check_summary.txt.j2",
            problems=len(report.problems),
            claims=report.claims_checked,
            posts=report.posts_checked,
        )
    )
    return 0 if report.ok else 1
