"""Every request Slack waits on is acknowledged by its deadline; a late answer goes by response_url."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlmodel import Session

from bot.entry.app import create_app
from bot.entry.server import Arrival, _answer_signed
from bot.services import Services
from handlers.commands import kpi as kpi_command
from handlers.deadline import ack_or_respond
from handlers.guard import GuardedApp
from standin import client as slack_side
from tests.query_fixtures import all_text, build_portal_plan
from tests.slack_harness import SIGNING_SECRET, sign

DEADLINE = 1.0  # short for the tests, long enough for a listener that does nothing
RELEASED_AFTER = 10.0  # far beyond any deadline: a listener still held then is a test failure

held = threading.Event()  # set by a test to let the held listeners finish
entered = threading.Event()


@pytest.fixture(autouse=True)
def _fresh_gates():
    held.clear()
    entered.clear()
    yield
    held.set()  # never leave a listener thread waiting behind a failed test


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"ack_deadline_seconds": DEADLINE})


def _add_test_listeners(app: GuardedApp, services: Services) -> None:
    @app.action("deadline_slow_click")
    def slow_click(ack: Any) -> None:  # acks only once the test lets it go
        entered.set()
        held.wait(RELEASED_AFTER)
        ack()

    @app.command("/deadline-quick")
    def quick(ack: Any, body: dict[str, Any]) -> None:
        ack_or_respond(ack, {"text": "quick answer"}, services=services, body=body)


@pytest.fixture
def extra_listeners(services) -> list[Any]:
    return [lambda app: _add_test_listeners(app, services)]


@pytest.fixture
def plan(services):
    with Session(services.engine, expire_on_commit=False) as session:
        return build_portal_plan(session)


@pytest.fixture
def slow_scorecard(monkeypatch):
    """The real /kpi answer, held until the test lets it go (a saturated replica, a slow query)."""
    real = kpi_command.kpi_answer

    def held_answer(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert held.wait(RELEASED_AFTER), "the test never released the answer"
        return real(*args, **kwargs)

    monkeypatch.setattr(kpi_command, "kpi_answer", held_answer)


def test_a_late_answer_is_acked_empty_in_time_then_sent_through_the_response_url(
    bot, plan, slow_scorecard
):
    response = bot.command("/kpi", user_id="UALICE")
    # The HTTP answer came back while the listener was still held: the deadline acknowledged it.
    assert entered.is_set() and not held.is_set()
    assert response.status_code == 200 and response.text == ""
    assert bot.standin.calls("response_url") == []
    held.set()
    [late] = bot.standin.wait_for("response_url", count=1, timeout=10)
    assert late.params["user"] == "UALICE"
    assert "KPI scorecard" in all_text(late.params)
    assert "Requests via portal" in all_text(late.params)


def test_an_answer_ready_in_time_rides_on_the_ack_and_nothing_follows(bot):
    response = bot.command("/deadline-quick", user_id="UALICE")
    assert response.json()["text"] == "quick answer"
    bot.wait_idle()
    time.sleep(DEADLINE * 2)  # past the deadline: its watcher must not answer a second time
    assert bot.standin.calls("response_url") == []


def test_a_click_whose_listener_is_still_busy_is_acknowledged_not_404(bot):
    payload = bot.block_action_payload("deadline_slow_click", "x", user_id="UALICE")
    response = bot.action(payload)
    assert entered.is_set() and not held.is_set()
    assert response.status_code == 200 and response.text == ""
    held.set()
    bot.wait_idle()


def test_a_command_that_waited_its_whole_budget_is_shed_with_a_polite_busy(services, standin):
    ran: list[str] = []
    bolt = create_app(services)

    @bolt.command("/deadline-shed")
    def never(ack: Any) -> None:  # pragma: no cover - the point is that it does not run
        ran.append("ran")
        ack()

    request = slack_side.SlackSide(standin, signing_secret=SIGNING_SECRET).command(
        "/deadline-shed", "", user_id="UALICE", channel_id="CGENERAL"
    )
    headers = {k.lower(): v for k, v in sign(request.body).items()}
    headers["content-type"] = request.content_type
    queued = Arrival(at=time.monotonic() - 2.5, budget=2.0)
    response = _answer_signed(bolt, request.body.encode(), headers, "", queued)
    assert response.status == 200 and "try again" in str(response.body)
    assert ran == []
    fresh = Arrival(at=time.monotonic(), budget=2.0)
    assert _answer_signed(bolt, request.body.encode(), headers, "", fresh).status == 200
    assert ran == ["ran"]


@pytest.fixture
def starved_watcher(monkeypatch):
    """The deadline's watcher thread never gets to run, as on a process starved of CPU."""
    import handlers.deadline as deadline

    monkeypatch.setattr(deadline._WATCH, "watch", lambda ack, at: None)


def test_past_its_deadline_the_ack_is_found_by_bolt_even_if_the_watcher_is_starved(
    bot, plan, slow_scorecard, starved_watcher
):
    """Bolt's own wait for the ack (3 s) must not give up first and answer "I do not answer"."""
    started = time.monotonic()
    response = bot.command("/kpi", user_id="UALICE")
    waited = time.monotonic() - started
    assert entered.is_set() and not held.is_set()
    assert response.status_code == 200 and response.text == ""
    assert waited < 3.0  # Bolt saw the deadline's ack, not its own timeout
    held.set()
    [late] = bot.standin.wait_for("response_url", count=1, timeout=10)
    assert "KPI scorecard" in all_text(late.params)
    bot.wait_idle()
    assert [c.params.get("text") for c in bot.standin.calls("response_url")] == [
        late.params.get("text")
    ]


def test_a_click_past_its_deadline_with_a_starved_watcher_is_not_told_it_is_inactive(
    bot, starved_watcher
):
    payload = bot.block_action_payload("deadline_slow_click", "x", user_id="UALICE")
    started = time.monotonic()
    response = bot.action(payload)
    waited = time.monotonic() - started
    assert response.status_code == 200 and response.text == ""
    assert waited < 3.0  # Bolt saw the deadline's ack, not its own timeout
    held.set()
    bot.wait_idle()
    assert bot.standin.calls("response_url") == []  # no "This button is no longer active"
