"""Every pulse delivery message, at its largest, passes Block Kit's checks and limits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from slack_sdk.models.blocks import Block

from bot.pulses import messages
from bot.pulses.followup import MAX_ESCALATIONS_PER_MESSAGE
from bot.work.burnup import Burnup, LinkView

NOW = datetime(2027, 1, 4, 14, tzinfo=UTC)
NASTY = "<!channel> R&D *launch* <https://evil.example|click> " + "x" * 400
WORK = Burnup(
    closed=12,
    total=30,
    last_change=NOW,
    closed_lately=4,
    forecast=NOW.date(),
    quiet_days=None,
    links=(LinkView(NASTY, "https://github.com/h/a/issues?q=label%3A%22x%22"),) * 3,
)


def check(blocks: list[dict], text: str) -> None:
    assert 0 < len(blocks) <= 50
    assert text and len(text) <= 4000
    for raw in blocks:
        block = Block.parse(raw)
        assert block is not None, raw
        block.validate_json()  # slack_sdk's own model checks
        if raw["type"] == "section":
            assert len(raw["text"]["text"]) <= 3000
        for element in raw.get("elements", []):
            if element.get("type") == "button":
                assert len(element["text"]["text"]) <= 75
                assert len(element["value"]) <= 2000
                assert len(element["action_id"]) <= 255
            if element.get("type") == "mrkdwn":
                assert len(element["text"]) <= 3000
        assert len(raw.get("block_id", "")) <= 255
    flat = str(blocks)
    assert "<!channel>" not in flat and "<https://evil" not in flat  # escaped, never markup


def section(n: int, *, answer: bool = False, closed: bool = False) -> dict:
    return {
        "pulse_id": 10_000_000 + n,
        "title": NASTY,
        "key": "k" * 100,
        "objective": NASTY,
        "ends": NOW,
        "closed": closed,
        "answer": {
            "status": "on_track",
            "confidence": 5,
            "by": "U0123456789",
            "at": NOW,
        }
        if answer
        else None,
        # Linked tracker work at its longest: five milestones, each with three links.
        "work": [{"title": NASTY, "w": WORK}] * 5,
    }


@pytest.mark.parametrize("count", [1, 2, messages.MAX_PULSES_PER_MESSAGE])
def test_prompt(count):
    rendered = messages.render_prompt(
        [section(n, answer=n % 3 == 1, closed=n % 3 == 2) for n in range(count)]
    )
    check(rendered.blocks, rendered.text)


def test_reminder():
    rendered = messages.reminder_message([NASTY] * messages.MAX_PULSES_PER_MESSAGE, NOW)
    check(rendered.blocks, rendered.text)
    one = messages.reminder_message(["Portal beta"], NOW)
    assert "*Portal beta*" in one.blocks[0]["text"]["text"]


def test_escalation():
    item = {
        "title": NASTY,
        "key": "k" * 100,
        "owner": "U0123456789",
        "sent_at": NOW,
        "reminded_at": NOW,
        "ends": NOW,
    }
    rendered = messages.escalation_message([item] * MAX_ESCALATIONS_PER_MESSAGE)
    check(rendered.blocks, rendered.text)
    assert "<@U0123456789>" in str(rendered.blocks)
