"""The crash-safety checker (storage/invariants.py) finds each kind of damage a crash could leave."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime

from sqlmodel import Session

from storage.invariants import InvariantProblem, TaggedPost, check_invariants
from storage.models import (
    AuditEntry,
    Decision,
    DecisionPoll,
    PollState,
    PulseRequest,
    PulseState,
)
from templates.ids import MessageEvents
from tests import factories

NOW = datetime(2027, 1, 18, 14, 5, tzinfo=UTC)


def _pulse(
    session: Session, *, state: PulseState, ts: str | None, channel: str = "D1"
) -> PulseRequest:
    owner = factories.person(session, slack_id="UALICE")
    initiative = factories.initiative(session, owner=owner, team=factories.team(session))
    pulse = PulseRequest(
        initiative_id=initiative.id,
        owner_id=owner.id,
        period="2027-01-18T14:00:00+00:00",
        due_at=NOW,
        state=state,
        claimed_at=NOW,
        channel_id=channel if ts else None,
        message_ts=ts,
    )
    session.add(pulse)
    session.commit()
    return pulse


def _prompt(pulse_ids: str, ts: str) -> TaggedPost:
    return TaggedPost("D1", ts, MessageEvents.PULSE_PROMPT, {"pulse_ids": pulse_ids})


def _codes(session: Session, posts: list[TaggedPost], *, settled: bool) -> list[str]:
    return [p.code for p in check_invariants(session, posts, settled=settled).problems]


def test_a_sent_pulse_with_its_message_is_fine(engine) -> None:
    with Session(engine) as session:
        pulse = _pulse(session, state=PulseState.SENT, ts="1.0")
        assert _codes(session, [_prompt(str(pulse.id), "1.0")], settled=True) == []


def test_a_sent_pulse_whose_message_is_not_in_slack(engine) -> None:
    with Session(engine) as session:
        _pulse(session, state=PulseState.SENT, ts="1.0")
        assert _codes(session, [], settled=False) == [InvariantProblem.MESSAGE_MISSING]


def test_a_pulse_posted_twice(engine) -> None:
    with Session(engine) as session:
        pulse = _pulse(session, state=PulseState.SENT, ts="1.0")
        posts = [_prompt(str(pulse.id), "1.0"), _prompt(f"{pulse.id},99", "2.0")]
        assert InvariantProblem.POSTED_TWICE in _codes(session, posts, settled=False)


def test_a_claim_left_half_done_is_only_wrong_once_settled(engine) -> None:
    """Posted, then the process died before recording it: fine mid-crash, not after the restart."""
    with Session(engine) as session:
        pulse = _pulse(session, state=PulseState.CLAIMED, ts=None)
        posts = [_prompt(str(pulse.id), "1.0")]
        assert _codes(session, posts, settled=False) == []
        assert sorted(_codes(session, posts, settled=True)) == sorted(
            [InvariantProblem.UNFINISHED_CLAIM, InvariantProblem.UNRECORDED_POST]
        )


def _closed_poll(session: Session) -> tuple[DecisionPoll, str]:
    owner = factories.person(session, slack_id="UALICE")
    initiative = factories.initiative(session, owner=owner, team=factories.team(session))
    milestone = factories.milestone(session, initiative=initiative, due=date(2027, 1, 15))
    poll = DecisionPoll(
        milestone_id=milestone.id,
        state=PollState.CLOSED,
        opened_at=NOW,
        deadline=NOW,
        closed_at=NOW,
        outcome="delay",
    )
    session.add(poll)
    session.commit()
    return poll, milestone.key


def test_a_closed_poll_without_its_decision(engine) -> None:
    with Session(engine) as session:
        _closed_poll(session)
        assert _codes(session, [], settled=False) == [InvariantProblem.DECISIONS_OF_CLOSED_POLL]


def test_a_decision_applied_twice_shows_in_the_audit_log(engine) -> None:
    with Session(engine) as session:
        poll, key = _closed_poll(session)
        session.add(
            Decision(
                milestone_id=poll.milestone_id, poll_id=poll.id, option="delay", decided_at=NOW
            )
        )
        for _ in range(2):
            session.add(
                AuditEntry(
                    at=NOW,
                    actor=f"decision:{poll.id}",
                    action="decide",
                    entity="decision",
                    entity_key=key,
                    after={"option": "delay"},
                )
            )
        session.commit()
        assert sorted(_codes(session, [], settled=False)) == sorted(
            [InvariantProblem.CHANGE_AUDITED_TWICE, InvariantProblem.DECISION_NOT_AUDITED]
        )


def test_a_change_the_audit_log_does_not_end_on(engine) -> None:
    with Session(engine) as session:
        owner = factories.person(session, slack_id="UALICE")
        initiative = factories.initiative(session, owner=owner, team=factories.team(session))
        milestone = factories.milestone(session, initiative=initiative, due=date(2027, 2, 1))
        session.add(
            AuditEntry(
                at=NOW,
                actor="cli:test",
                action="create",
                entity="milestone",
                entity_key=milestone.key,
                after={"due": "2027-01-15", "status": "open"},
            )
        )
        session.commit()
        [found] = check_invariants(session, [], settled=False).problems
        assert found.code == InvariantProblem.AUDIT_DIFFERS
        assert found.params == {"name": "due", "audited": "2027-01-15", "stored": "2027-02-01"}


def _check_cli(settings, standin, tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LOG_"))}
    env.update(
        DATABASE_URL=settings.database_url,
        SLACK_BOT_TOKEN=standin.workspace.bot_token,
        SLACK_API_URL=standin.api_url,
        LOG_LEVEL="WARNING",
    )
    return subprocess.run(
        [sys.executable, "-m", "bot.entry.cli", "check", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_planpulse_check_reads_slack_and_says_what_is_wrong(
    engine, settings, standin, tmp_path
) -> None:
    with Session(engine) as session:
        dm = standin.dm_channel("UALICE")
        pulse = _pulse(session, state=PulseState.SENT, ts="1.0", channel=dm)
        pulse_id = pulse.id
    wrong = _check_cli(settings, standin, tmp_path)
    assert wrong.returncode == 1, wrong.stderr
    assert f"pulse_request:{pulse_id} is recorded as posted" in wrong.stdout
    assert "1 problem:" in wrong.stdout
    # The prompt really in the DM: every invariant holds.
    posted = standin.state.chat_post_message(
        {
            "channel": "UALICE",
            "text": "pulse",
            "metadata": json.dumps(
                {
                    "event_type": MessageEvents.PULSE_PROMPT,
                    "event_payload": {"pulse_ids": str(pulse_id)},
                }
            ),
        }
    )
    with Session(engine) as session:
        row = session.get(PulseRequest, pulse_id)
        assert row is not None
        row.channel_id, row.message_ts = posted["channel"], posted["ts"]
        session.add(row)
        session.commit()
    right = _check_cli(settings, standin, tmp_path, "--settled")
    assert right.returncode == 0, right.stdout + right.stderr
    assert right.stdout.startswith("Every invariant holds: 1 claims checked")
