"""The buttons on an alert, pressed the way Slack sends them: the alert itself resolves at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from bot.alerts import run_detection
from storage.models import Alert, AlertState, Milestone
from templates.ids import MilestoneIds
from tests import factories


def _missed_milestone(services) -> int:
    today = datetime.now(UTC).date()
    with Session(services.engine) as session:
        factories.plan_settings(session, timezone="America/New_York")
        alice = factories.person(session, slack_id="UALICE", name="Alice")
        cio = factories.person(session, slack_id="UCIO", name="CIO")
        it = factories.team(session, key="it", name="IT", channel_id="CDELIVERY", lead=cio)
        portal = factories.initiative(session, owner=alice, team=it, title="Portal")
        row = factories.milestone(session, initiative=portal, due=today - timedelta(days=10))
        session.commit()
        return int(row.id)


def _button(message, action_id: str) -> tuple[str, dict]:
    for block in message.blocks:
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return block["block_id"], element
    raise AssertionError(f"no {action_id} button")


def test_mark_done_on_a_missed_alert_resolves_it_in_place(bot, services, standin) -> None:
    milestone_id = _missed_milestone(services)
    run_detection(services, datetime.now(UTC))
    [post] = [m for m in standin.messages("CDELIVERY") if m.thread_ts is None]
    block_id, button = _button(post, MilestoneIds.MARK_DONE)
    assert button["value"] == str(milestone_id)

    payload = bot.block_action_payload(
        MilestoneIds.MARK_DONE,
        button["value"],
        user_id="UALICE",
        channel_id="CDELIVERY",
        block_id=block_id,
        message=post.as_dict(with_metadata=False),
        action=button,
    )
    assert bot.action(payload).status_code == 200
    bot.wait_idle()
    with Session(services.engine) as session:
        assert session.get(Milestone, milestone_id).status == "done"
        [alert] = session.exec(select(Alert))
    assert alert.state == AlertState.RESOLVED
    [updated] = [m for m in standin.messages("CDELIVERY") if m.thread_ts is None]
    assert updated.ts == post.ts and "Resolved" in updated.text
    assert not [b for b in updated.blocks if b["type"] == "actions"]  # no buttons left
    [line] = [m for m in standin.messages("CDELIVERY") if m.thread_ts == post.ts]
    assert "done" in line.text
