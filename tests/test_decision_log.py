"""The decision log: `/plan decisions` with votes, the thread's permalink and the slip-to-decision time; the plan file's `decisions:`."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
import yaml
from sqlmodel import Session, select

from storage.models import DecisionOption, Milestone, PollOutcome
from tests.decision_support import decide, slip_plan
from tests.planfile_support import BASE_PLAN, Cli, snapshot
from tests.query_fixtures import all_text, ask_command


def test_plan_decisions_shows_votes_the_thread_and_the_time_to_decide(bot, standin, services):
    parent = services.slack.post_message(channel="CDECISIONS", text="Decision needed")
    with Session(services.engine) as session:
        plan = slip_plan(session)
        decide(session, plan.milestone, DecisionOption.DELAY, message_ts=parent.ts)
        session.commit()
    message = ask_command(bot, "/plan", "decisions", "UALICE")
    text = all_text(message)
    assert "1 decision" in text
    assert "Beta &lt;!channel&gt; &amp; &lt;@UBOB&gt;" in text
    assert "delay, new due date" in text and "|2027-01-29>" in text
    assert "Votes: delay 2 (<@UCOO>, <@UCFO>) · cut scope 1 (<@UCIO>)" in text
    assert "Decided 4 days 6 hours after the slip was seen" in text
    [permalink] = standin.calls("chat.getPermalink")
    assert permalink.params["message_ts"] == parent.ts
    assert "|thread>" in text
    # Nobody is pinged by plan text: every mention is a voter's.
    assert "<!channel>" not in text and "<!here>" not in text
    assert set(re.findall(r"<@(U[A-Z0-9]+)>", text)) == {"UCIO", "UCOO", "UCFO"}


def test_plan_decisions_words_undecided_and_hides_names_of_an_anonymous_poll(bot, services):
    with Session(services.engine) as session:
        plan = slip_plan(session)
        decision = decide(session, plan.milestone, PollOutcome.UNDECIDED, channel_id=None)
        decision.votes = {**decision.votes, "anonymous": True}
        session.add(decision)
        session.commit()
    text = all_text(ask_command(bot, "/plan", "decisions", "UALICE"))
    assert "undecided (no quorum, or a tie nobody could break)" in text
    assert "Votes: delay 2 · cut scope 1 (anonymous)" in text
    assert "<@UCOO>" not in text and "|thread>" not in text


# --- the plan file ----------------------------------------------------------------------------------


@pytest.fixture
def cli(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    return Cli(capsys)


@pytest.fixture
def decided_plan(cli, engine):
    """The base plan, with a delay and an "add resources" decided on two of its milestones."""
    assert cli("import", str(BASE_PLAN)).code == 0
    with Session(engine) as session:
        ready = session.exec(select(Milestone).where(Milestone.key == "beta-ready")).one()
        moved = session.exec(select(Milestone).where(Milestone.key == "data-migration")).one()
        assert ready.id is not None and moved.id is not None
        decide(session, ready.id, DecisionOption.DELAY, proposed_due=ready.due + timedelta(days=9))
        decide(session, moved.id, DecisionOption.ADD_RESOURCES, resources="Two <b>testers</b>")
        session.commit()
    return snapshot(engine)


def test_the_yaml_export_lists_the_decisions_by_milestone(cli, decided_plan):
    run = cli("export")
    assert run.code == 0, run.err
    doc = yaml.safe_load(run.out)
    delay, resources = doc["decisions"]
    assert delay["milestone"] == "beta-ready" and delay["option"] == "delay"
    assert delay["votes"] == {"delay": 2, "descope": 1}
    assert isinstance(delay["new_due"], date) and delay["decided_at"].startswith("2027-01-20T15")
    assert resources == {
        "milestone": "data-migration",
        "option": "add_resources",
        "decided_at": resources["decided_at"],
        "resources": "Two <b>testers</b>",
        "votes": {"delay": 2, "descope": 1},
    }


@pytest.mark.parametrize(
    ("fmt", "output"), [("yaml", "plan.yaml"), ("xlsx", "plan.xlsx"), ("csv", "plan-csv")]
)
def test_an_export_with_decisions_imports_again_and_writes_nothing(
    cli, engine, decided_plan, tmp_path, fmt, output
):
    target = tmp_path / output
    assert cli("export", "--format", fmt, "--output", str(target)).code == 0
    if fmt == "csv":
        rows = (target / "decisions.csv").read_text(encoding="utf-8").splitlines()
        assert rows[0].startswith("milestone,option,decided_at,new_due")
        assert "delay=2, descope=1" in rows[1]
    run = cli("import", str(target))
    assert run.code == 0, run.err
    assert "nothing changed" in run.out, run.out
    assert snapshot(engine) == decided_plan


def test_a_hand_edited_decision_in_the_file_changes_nothing(cli, engine, decided_plan, tmp_path):
    doc = yaml.safe_load(cli("export").out)
    doc["decisions"][0]["option"] = "descope"
    doc["decisions"].append({"milestone": "no-such-milestone", "option": "delay"})
    target = tmp_path / "edited.yaml"
    target.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    run = cli("import", str(target))
    assert run.code == 0, run.err
    assert snapshot(engine) == decided_plan
