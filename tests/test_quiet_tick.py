"""The whole tick, repeated with nothing changed, calls Slack for nothing: requests, pulses and alerts alike."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.entry.demo import import_example
from bot.planfile.example import WORKSPACE_FILE
from scheduler.tick import run_tick
from standin import StandIn, Workspace


@pytest.fixture
def standin():
    """The example plan's own workspace, so that its people and channels resolve."""
    with StandIn(Workspace.from_yaml(WORKSPACE_FILE)) as running:
        yield running


def test_a_repeated_tick_over_the_example_plan_makes_no_web_api_call(services, standin) -> None:
    now = datetime.now(UTC)
    import_example(services.engine, now.date(), now=now)
    first = run_tick(services, now)
    assert first.ok, first.failed
    methods = {call.method for call in standin.calls()}
    assert "chat.postMessage" in methods  # requests and alerts went out
    posted = first.results["detection"]
    assert posted.posted > 0  # type: ignore[attr-defined]

    standin.reset_calls()
    again = run_tick(services, now)
    assert again.ok, again.failed
    assert standin.calls() == []
