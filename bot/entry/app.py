"""Builds the Bolt app: the gateway's WebClient, signature checks on, every area's listeners registered."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager

from slack_bolt import App

from bot.services import Services
from handlers import register_all

# What slack_bolt's App reads from the environment when not told: SLACK_BOT_TOKEN beside our
# client makes it warn on every start ("`token` will be unused"), and SLACK_CLIENT_ID with
# SLACK_CLIENT_SECRET would quietly switch it to an OAuth installation flow.
BOLT_ENVIRONMENT = ("SLACK_BOT_TOKEN", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET")


@contextmanager
def _hidden_from_bolt() -> Iterator[None]:
    """Settings is the one source of configuration: Bolt's own fallbacks see nothing."""
    hidden = {name: os.environ.pop(name) for name in BOLT_ENVIRONMENT if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(hidden)


def create_app(services: Services, *, listener_executor: Executor | None = None) -> App:
    """The Bolt app for both HTTP and Socket Mode; building it makes no network call.

    `process_before_response=False`: the HTTP answer (the ack) goes back to Slack as soon as the
    listener calls `ack()`, and the slow rest of the listener runs on `listener_executor`; this is
    right for a long-running server, unlike FaaS where the process may freeze after the response.
    """
    settings = services.settings
    secret = settings.slack_signing_secret
    with _hidden_from_bolt():
        app = App(
            client=services.slack.client,
            # Socket Mode needs no signing secret: its requests arrive over an authenticated socket.
            signing_secret=secret.get_secret_value() if secret is not None else "",
            request_verification_enabled=True,
            # Bolt would call auth.test here; it calls it lazily on the first request instead,
            # and `serve` checks the token itself with a clear message.
            token_verification_enabled=False,
            process_before_response=False,
            # A request no listener takes (an older version's button, an unknown command)
            # reaches handlers/errors.py, which acknowledges it politely; Bolt would answer 404.
            raise_error_for_unhandled_request=True,
            listener_executor=listener_executor
            or ThreadPoolExecutor(
                max_workers=settings.listener_threads, thread_name_prefix="planpulse-listener"
            ),
            logger=logging.getLogger("planpulse.bolt"),
        )
    register_all(app, services)
    return app
