"""Plans and Block Kit checks shared by the /kpi, /plan, share and App Home tests."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from sqlmodel import Session

from storage.models import PulseAnswer, PulseRequest
from tests import factories as f

HOSTILE = "<!channel> launch & <@U123>"
HOSTILE_ESCAPED = "&lt;!channel&gt; launch &amp; &lt;@U123&gt;"
# The only <…> tokens the bot may send: mentions of plan people, dates, channel links, and
# links to its own alert messages.
ALLOWED_TOKEN = re.compile(
    r"<(@U[A-Z0-9]+|!date\^\d+\^\{date_short\}\|[0-9-]+|#C[A-Z0-9]+"
    r"|!date\^\d+\^\{date_short_pretty\} at \{time\}\|[0-9-]+ [0-9:]+ UTC"
    r"|https?://[^\s<>|]+/archives/[CG][A-Z0-9]+/p\d+\|see the alert)>"
)


def build_portal_plan(session: Session, *, title: str = "Customer portal beta") -> dict[str, Any]:
    """The example plan: Alice owns portal-beta in IT, Marketing owes it support training."""
    f.plan_settings(session, timezone="America/New_York")
    alice = f.person(session, slack_id="UALICE", name="Alice Archer", tz="America/New_York")
    bob = f.person(session, slack_id="UBOB", name="Bob Baker", tz="America/Los_Angeles")
    cio = f.person(session, slack_id="UCIO", name="Chiyo Ito", tz="Asia/Tokyo", is_leader=True)
    it = f.team(session, key="it", name="IT Delivery", lead=cio, members=[alice])
    marketing = f.team(session, key="marketing", name="Marketing", lead=bob)
    goal = f.objective(session, key="digital-portal", title="Move 40% of requests to the portal")
    adoption = f.kpi(
        session,
        objective=goal,
        key="portal-adoption",
        name="Requests via portal",
        unit="%",
        baseline=8,
        target=40,
    )
    for week, value in enumerate([8, 9, 11, 12, 14]):
        f.reading(
            session, kpi=adoption, value=value, as_of=date(2026, 10, 1) + timedelta(weeks=week)
        )
    beta = f.initiative(
        session,
        owner=alice,
        team=it,
        objective=goal,
        kpis=[adoption],
        key="portal-beta",
        title=title,
    )
    launch = f.milestone(
        session, initiative=beta, key="beta-launch", title="Beta launch", due=date(2027, 2, 1)
    )
    f.milestone(
        session, initiative=beta, key="beta-ready", title="Feature-complete", due=date(2027, 1, 15)
    )
    f.dependency(
        session,
        initiative=beta,
        provider=marketing,
        key="support-training",
        need="Support staff trained for the beta",
        needed_by=date(2027, 1, 25),
        milestone=launch,
    )
    at = datetime(2026, 11, 23, 14, tzinfo=UTC)
    request = PulseRequest(
        initiative_id=beta.id,
        owner_id=alice.id,
        period=at.isoformat(),
        due_at=at,
        state="answered",
        sent_at=at,
        answered_at=at,
    )
    session.add(request)
    session.flush()
    session.add(
        PulseAnswer(
            pulse_request_id=request.id,
            status="at_risk",
            confidence=3,
            blockers="Waiting for <!here> & legal",
            answered_at=at,
        )
    )
    session.commit()
    return {"alice": alice, "bob": bob, "cio": cio, "it": it, "beta": beta, "goal": goal}


def check_blocks(blocks: list[dict[str, Any]], *, limit: int = 50) -> None:
    """Valid Block Kit within Slack's limits, checked with slack_sdk's own models."""
    assert 0 < len(blocks) <= limit, f"{len(blocks)} blocks"
    for raw in blocks:
        block = Block.parse(raw)
        assert block is not None, raw
        block.validate_json()
        if raw["type"] == "section":
            assert len(raw.get("text", {}).get("text", "")) <= 3000
            assert len(raw.get("fields", [])) <= 10
            assert all(len(field["text"]) <= 2000 for field in raw.get("fields", []))
        if raw["type"] == "header":
            assert len(raw["text"]["text"]) <= 150


def check_message(message: dict[str, Any]) -> None:
    assert message.get("text"), "a notification fallback text is required"
    check_blocks(message["blocks"], limit=50)


def check_home(view: dict[str, Any]) -> None:
    View(**view).validate_json()
    check_blocks(view["blocks"], limit=100)


def _shown(node: Any) -> Any:
    """The payload without button values and plain_text (a confirm dialog quoting a title):
    Slack never parses those for mentions, so they cannot ping."""
    if isinstance(node, dict):
        if node.get("type") == "plain_text":
            return {}
        return {
            k: _shown(v)
            for k, v in node.items()
            if not (k == "value" and node.get("type") == "button")
        }
    if isinstance(node, list):
        return [_shown(item) for item in node]
    return node


def assert_pings_nobody(payload: Any) -> None:
    """Every <…> control sequence Slack renders is one the bot built; U123 is never mentioned."""
    text = json.dumps(_shown(payload), ensure_ascii=False)
    for token in re.findall(r"<[^>]*>", text):
        assert ALLOWED_TOKEN.fullmatch(token), f"unexpected control sequence {token}"
    assert "<!channel>" not in text and "<!here>" not in text and "<@U123>" not in text


def all_text(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False)


def ask_command(bot: Any, command: str, text: str = "", user: str = "UALICE") -> dict[str, Any]:
    """Send a signed slash command; return its ephemeral answer, checked against Block Kit."""
    before = len(bot.standin.calls("response_url"))
    response = bot.command(command, text, user_id=user, channel_id="CDELIVERY")
    assert response.status_code == 200
    if response.text:
        message = response.json()
    else:
        # Not ready by the ack deadline (a loaded machine): the answer follows by response_url,
        # and the person sees the same message (handlers/deadline.py).
        late = bot.standin.wait_for("response_url", count=before + 1, timeout=20)[-1]
        message = {k: v for k, v in late.params.items() if k in ("response_type", "text", "blocks")}
    assert message["response_type"] == "ephemeral"
    check_message(message)
    return dict(message)
