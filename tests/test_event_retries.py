"""Slack's retries redo failed work: an event whose listener failed is processed by the retry."""

from __future__ import annotations

import asyncio

import httpx
from sqlmodel import Session, select

from bot.entry.server import build_asgi_app
from bot.services import Services
from bot.slack.gateway import SlackGateway
from standin.client import SlackSide
from storage.models import ProcessedEvent
from tests.slack_harness import SIGNING_SECRET


def _claimed(engine) -> list[str]:
    with Session(engine) as session:
        return [e.event_id for e in session.exec(select(ProcessedEvent))]


def _home_opened(bot, *, retry_num: int | None = None) -> httpx.Response:
    event = {
        "type": "app_home_opened",
        "user": "UALICE",
        "tab": "home",
        "channel": bot.standin.dm_channel("UALICE"),
    }
    return bot.event(event, event_id="EvHOME1", retry_num=retry_num)


def test_a_failed_event_is_redone_by_the_retry_and_only_once(bot, standin, engine) -> None:
    # The fault: Slack refuses the first views.publish, so the first delivery's listener fails.
    standin.fail_next("views.publish", status=200, error="internal_error")
    first = _home_opened(bot)
    assert first.status_code == 200
    bot.wait_idle()
    [refused] = standin.calls("views.publish")
    assert not refused.ok
    assert standin.home("UALICE") is None
    assert _claimed(engine) == []  # given back: the retry may do the work

    retry = _home_opened(bot, retry_num=1)
    assert retry.status_code == 200
    bot.wait_idle()
    assert standin.home("UALICE") is not None
    assert [c.ok for c in standin.calls("views.publish")] == [False, True]
    assert _claimed(engine) == ["EvHOME1"]

    third = _home_opened(bot, retry_num=2)
    assert (third.status_code, third.text) == (200, "")
    bot.wait_idle()
    assert len(standin.calls("views.publish")) == 2  # the third delivery did nothing
    assert _claimed(engine) == ["EvHOME1"]


def test_a_succeeded_event_is_not_redone(bot, standin, engine) -> None:
    assert _home_opened(bot).status_code == 200
    bot.wait_idle()
    assert _home_opened(bot, retry_num=1).status_code == 200
    bot.wait_idle()
    assert [c.ok for c in standin.calls("views.publish")] == [True]
    assert _claimed(engine) == ["EvHOME1"]


def test_an_event_the_database_cannot_record_is_left_for_slack_to_retry(settings, standin) -> None:
    """Not claimed, so not processed: a 2xx would tell Slack it was handled and lose it."""
    # Nothing listens on port 1: the database is really unreachable, no patching.
    down = settings.model_copy(update={"database_url": "postgresql+psycopg://nobody@127.0.0.1:1/x"})
    from storage.db import make_engine

    services = Services(down, make_engine(down.database_url), SlackGateway.from_settings(down))
    request = SlackSide(standin, signing_secret=SIGNING_SECRET).app_home_opened("UALICE")
    transport = httpx.ASGITransport(app=build_asgi_app(services))

    async def deliver() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
            return await client.post(
                "/slack/events",
                content=request.body,
                headers={
                    "Content-Type": request.content_type,
                    **SlackSide(standin, signing_secret=SIGNING_SECRET).signed(request),
                },
            )

    response = asyncio.run(deliver())
    assert response.status_code == 503
    assert [c.method for c in standin.calls() if c.method != "auth.test"] == []
