"""Opening decision polls: slips framed by their owner, polls opened once per milestone and posted once; /decide and the buttons."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from bot.alerts import run_detection
from bot.decisions.opening import open_poll
from bot.decisions.slips import run_decision_framing
from standin.validation import check_blocks, check_view
from storage.db import session_scope
from storage.models import (
    Alert,
    DecisionPoll,
    DependencyState,
    Initiative,
    Milestone,
    MilestoneStatus,
    PollFraming,
)
from templates import render_json_object
from templates.ids import FramingIds, MessageEvents, MilestoneIds, PollIds
from tests import factories
from tests.slack_harness import row_counts

NEW_YORK = ZoneInfo("America/New_York")
TITLE = "Beta <!channel> & <@UBOB> ready"
INITIATIVE = "Portal & <!here>"
PEOPLE = {"owner": "UALICE", "leader": "UCFO", "admin": "UCOO"}


def build_plan(engine, *, due: date) -> dict[str, Any]:
    """Alice owns the initiative (New York); Chiyo leads its team; Carl is a leader, Dana an admin;
    Bob owns another initiative. Polls go to #exec-decisions."""
    with session_scope(engine) as session:
        factories.plan_settings(
            session, timezone="America/New_York", decisions_channel="CDECISIONS"
        )
        alice = factories.person(session, slack_id="UALICE", name="Alice")
        chiyo = factories.person(session, slack_id="UCIO", name="Chiyo")
        factories.person(session, slack_id="UCFO", name="Carl", is_leader=True)
        factories.person(session, slack_id="UCOO", name="Dana", is_admin=True)
        bob = factories.person(session, slack_id="UBOB", name="Bob")
        team = factories.team(session, channel_id="CDELIVERY", lead=chiyo, members=[alice])
        marketing = factories.team(session, channel_id="CMARKETING", name="Marketing")
        objective = factories.objective(session, owner=alice)
        kpi = factories.kpi(session, objective=objective, name="Requests & <!here>")
        portal = factories.initiative(
            session, owner=alice, team=team, title=INITIATIVE, key="portal", kpis=[kpi]
        )
        ready = factories.milestone(
            session, initiative=portal, due=due, key="beta-ready", title=TITLE
        )
        later = factories.milestone(
            session, initiative=portal, due=due + timedelta(days=30), key="beta-launch"
        )
        launch = factories.initiative(session, owner=bob, team=marketing, title="Launch")
        waiting = factories.dependency(
            session,
            initiative=launch,
            provider=team,
            needed_by=due + timedelta(days=10),
            need="Portal <!channel> demo",
        )
        return {"ready": ready.id, "later": later.id, "waiting": waiting.id, "due": due}


def polls(engine) -> list[DecisionPoll]:
    with Session(engine) as session:
        return list(session.exec(select(DecisionPoll).order_by(DecisionPoll.id)))


def framings(engine) -> list[PollFraming]:
    with Session(engine) as session:
        return list(session.exec(select(PollFraming).order_by(PollFraming.id)))


def tagged(standin, channel: str, event: str) -> list[Any]:
    return [
        m for m in standin.messages(channel) if m.metadata and m.metadata.get("event_type") == event
    ]


def tick(services, now: datetime):
    run_detection(services, now)
    return run_decision_framing(services, now)


def all_mrkdwn(blocks) -> str:
    """Every mrkdwn text (plain_text is never parsed, so it may show plan text as typed)."""
    texts: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                texts.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks)
    return "\n".join(texts)


# --- the automatic path, with an explicit now --------------------------------------------------

MONDAY_10_NY = datetime(2027, 1, 18, 10, tzinfo=NEW_YORK).astimezone(UTC)


def test_a_missed_milestone_asks_its_owner_then_opens_with_what_is_known(services, standin):
    plan = build_plan(services.engine, due=date(2027, 1, 15))  # a Friday
    report = tick(services, MONDAY_10_NY)
    assert (report.raised, report.asked, report.opened) == (1, 1, 0)
    [framing] = framings(services.engine)
    assert framing.slip_key.startswith("alert:") and framing.cause == "missed"
    # 8 working hours: Monday 10:00-17:00 in New York, then Tuesday 09:00-10:00.
    assert framing.framing_due_at == datetime(2027, 1, 19, 10, tzinfo=NEW_YORK)
    [dm] = tagged(standin, "UALICE", MessageEvents.FRAMING)
    assert dm.metadata["event_type"] == MessageEvents.FRAMING
    assert dm.metadata["event_payload"] == {"framing_id": framing.id}
    check_blocks(dm.blocks)
    [button] = dm.blocks[-1]["elements"]
    assert (button["action_id"], button["value"]) == (FramingIds.FRAME, str(framing.id))
    assert "<!channel>" not in json.dumps(dm.blocks) and "<!here>" not in json.dumps(dm.blocks)
    assert polls(services.engine) == []

    standin.reset_calls()
    before_due = datetime(2027, 1, 19, 9, 59, tzinfo=NEW_YORK)
    assert tick(services, before_due).opened == 0
    assert polls(services.engine) == [] and standin.calls() == []

    at_due = datetime(2027, 1, 19, 10, tzinfo=NEW_YORK)
    report = tick(services, at_due)
    assert report.opened == 1 and report.polls.posted == 1
    [poll] = polls(services.engine)
    assert poll.open_key == f"milestone:{plan['ready']}"
    assert poll.proposed_due == date(2027, 1, 19)  # due + 4 days slipped so far
    assert poll.scope_cut is None and poll.opened_by_id is None and not poll.anonymous
    assert poll.deadline == poll.original_deadline == at_due + timedelta(hours=48)
    assert poll.slipped_at == framing.slipped_at
    facts = poll.facts
    assert facts["slip_days"] == 4 and facts["cause"] == "missed"
    assert [m["key"] for m in facts["later_milestones"]] == ["beta-launch"]
    assert [d["need"] for d in facts["waiting_dependencies"]] == ["Portal <!channel> demo"]
    assert [k["name"] for k in facts["kpis"]] == ["Requests & <!here>"]
    [posted] = tagged(standin, "CDECISIONS", MessageEvents.POLL)
    assert posted.metadata == {
        "event_type": MessageEvents.POLL,
        "event_payload": {"poll_id": poll.id},
    }
    check_blocks(posted.blocks)
    assert (poll.channel_id, poll.message_ts) == ("CDECISIONS", posted.ts)
    assert poll.shown is not None
    text = all_mrkdwn(posted.blocks)
    assert (
        "scope to be defined by the owner" in text.lower() or "to be defined by the owner" in text
    )
    assert "<!channel>" not in text and "<!here>" not in text
    [votes] = [b for b in posted.blocks if b["type"] == "actions"]
    assert votes["block_id"] == f"{PollIds.VOTE_BLOCK}:{poll.id}"

    standin.reset_calls()
    assert tick(services, at_due + timedelta(minutes=1)).opened == 0
    assert standin.calls() == [] and len(polls(services.engine)) == 1


def test_a_friday_evening_slip_opens_the_next_working_day_not_at_night(services, standin):
    build_plan(services.engine, due=date(2027, 1, 21))  # Thursday
    friday_evening = datetime(2027, 1, 22, 18, tzinfo=NEW_YORK)
    tick(services, friday_evening)
    [framing] = framings(services.engine)
    assert framing.framing_due_at == datetime(2027, 1, 25, 17, tzinfo=NEW_YORK)
    for moment in (
        datetime(2027, 1, 23, 2, tzinfo=NEW_YORK),  # Friday night + 8 hours
        datetime(2027, 1, 24, 12, tzinfo=NEW_YORK),
        datetime(2027, 1, 25, 16, 59, tzinfo=NEW_YORK),
    ):
        assert tick(services, moment).opened == 0
    assert polls(services.engine) == []
    assert tick(services, datetime(2027, 1, 25, 17, tzinfo=NEW_YORK)).opened == 1


def test_a_slip_settled_before_its_window_ends_opens_no_poll(services, standin):
    plan = build_plan(services.engine, due=date(2027, 1, 15))
    tick(services, MONDAY_10_NY)
    with session_scope(services.engine) as session:
        row = session.get(Milestone, plan["ready"])
        row.status = MilestoneStatus.DONE
        session.add(row)
    report = tick(services, datetime(2027, 1, 20, 12, tzinfo=NEW_YORK))
    assert (report.opened, report.settled) == (0, 1)
    assert polls(services.engine) == []
    assert framings(services.engine)[0].settled_at is not None


def test_a_blocked_dependency_implies_the_delay_of_its_alternative_date(services, standin):
    due = date(2027, 2, 1)
    plan = build_plan(services.engine, due=due)
    with session_scope(services.engine) as session:
        ready = session.get(Milestone, plan["ready"])
        marketing = factories.team(session, name="Training & <!here>")
        portal = session.get(Initiative, ready.initiative_id)
        factories.dependency(
            session,
            initiative=portal,
            provider=marketing,
            milestone=ready,
            needed_by=date(2027, 1, 25),
            need="Support staff trained",
            state=DependencyState.BLOCKED,
            alternative_date=date(2027, 2, 5),
        )
    tick(services, MONDAY_10_NY)
    [framing] = framings(services.engine)
    assert (framing.cause, framing.dependency_id is not None) == ("blocked", True)
    tick(services, datetime(2027, 1, 19, 10, tzinfo=NEW_YORK))
    [poll] = polls(services.engine)
    assert poll.proposed_due == due + timedelta(days=11)  # 5 Feb is 11 days after 25 Jan
    assert poll.facts["dependency"] == {
        "need": "Support staff trained",
        "team": "Training & <!here>",
    }
    [posted] = tagged(standin, "CDECISIONS", MessageEvents.POLL)
    check_blocks(posted.blocks)
    assert "<!here>" not in all_mrkdwn(posted.blocks)


def test_a_channel_that_refuses_the_post_is_retried_next_tick(services, standin):
    build_plan(services.engine, due=date(2027, 1, 15))
    tick(services, MONDAY_10_NY)
    standin.fail_next("chat.postMessage", status=200, error="not_in_channel")
    due = datetime(2027, 1, 19, 10, tzinfo=NEW_YORK)
    report = tick(services, due)
    assert (report.opened, report.polls.posted, report.polls.unposted) == (1, 0, 1)
    [poll] = polls(services.engine)
    assert poll.message_ts is None and poll.claimed_at is None
    report = tick(services, due + timedelta(minutes=1))
    assert report.polls.posted == 1
    assert len(tagged(standin, "CDECISIONS", MessageEvents.POLL)) == 1


def test_a_crash_after_posting_is_recovered_from_the_channel_not_posted_twice(services, standin):
    # Slack's history is read from the claim on: this test runs on the real clock, as Slack does.
    now = datetime.now(UTC)
    plan = build_plan(services.engine, due=plan_today() - timedelta(days=2))
    with session_scope(services.engine) as session:
        milestone = session.get(Milestone, plan["ready"])
        open_poll(session, milestone=milestone, framing=None, now=now)
    run_decision_framing(services, now)
    [poll] = polls(services.engine)
    ts = poll.message_ts
    assert ts is not None
    with session_scope(services.engine) as session:  # as if the process died before recording
        row = session.get(DecisionPoll, poll.id)
        row.message_ts, row.channel_id, row.claimed_at = None, None, now
        session.add(row)
    assert run_decision_framing(services, now + timedelta(minutes=5)).polls.posted == 0
    report = run_decision_framing(services, now + timedelta(minutes=11))
    assert (report.polls.posted, report.polls.recovered) == (0, 1)
    assert [p.message_ts for p in polls(services.engine)] == [ts]
    assert len(tagged(standin, "CDECISIONS", MessageEvents.POLL)) == 1


def test_a_second_slip_while_a_poll_is_open_is_a_line_in_its_thread(services, standin):
    due = date(2027, 1, 20)
    plan = build_plan(services.engine, due=due)
    monday = datetime(2027, 1, 18, 10, tzinfo=NEW_YORK)
    with session_scope(services.engine) as session:
        milestone = session.get(Milestone, plan["ready"])
        opened = open_poll(session, milestone=milestone, framing=None, now=monday)
    assert opened.created
    run_decision_framing(services, monday)  # posts it
    [poll] = polls(services.engine)
    assert poll.message_ts is not None
    standin.reset_calls()
    thursday = datetime(2027, 1, 21, 10, tzinfo=NEW_YORK)  # due passed: missed
    report = tick(services, thursday)
    assert (report.raised, report.joined, report.asked) == (1, 1, 0)
    [framing] = framings(services.engine)
    assert framing.poll_id == poll.id
    [line] = [m for m in standin.messages("CDECISIONS") if m.thread_ts == poll.message_ts]
    check_blocks(line.blocks)
    assert "Slipped again" in line.text or "slipped again" in line.text
    assert "<!channel>" not in all_mrkdwn(line.blocks)
    assert len(polls(services.engine)) == 1
    assert tagged(standin, "UALICE", MessageEvents.FRAMING) == []
    standin.reset_calls()
    tick(services, thursday + timedelta(days=2))
    assert [c for c in standin.calls("chat.postMessage") if c.params.get("thread_ts")] == []


def test_two_processes_opening_at_once_make_one_poll(services):
    plan = build_plan(services.engine, due=date(2027, 1, 15))
    now = MONDAY_10_NY
    barrier = threading.Barrier(4)
    results: list[Any] = []

    def opener() -> None:
        barrier.wait()
        with session_scope(services.engine) as session:
            milestone = session.get(Milestone, plan["ready"])
            results.append(open_poll(session, milestone=milestone, framing=None, now=now))

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    assert sum(r.created for r in results) == 1
    assert len({r.poll_id for r in results}) == 1
    assert len(polls(services.engine)) == 1


# --- through Slack: /decide, the buttons, the modal --------------------------------------------


def plan_today() -> date:
    return datetime.now(UTC).astimezone(NEW_YORK).date()


@pytest.fixture
def missed(services, standin) -> dict[str, Any]:
    """Beta ready was due three days ago; the missed alert is posted, its owner asked to frame."""
    plan = build_plan(services.engine, due=plan_today() - timedelta(days=3))
    tick(services, datetime.now(UTC))
    standin.reset_calls()
    return plan


def decide(bot, text: str, user_id: str):
    response = bot.command("/decide", text, user_id=user_id, channel_id="CDELIVERY")
    assert response.status_code == 200
    bot.wait_idle()
    return response


def opened_view(standin) -> dict[str, Any]:
    [opened] = standin.wait_for("views.open")
    assert opened.ok, opened.error
    view = opened.params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    check_view(view)
    return view


@pytest.mark.parametrize("who", ["owner", "leader", "admin"])
def test_decide_opens_the_framing_modal_pre_filled(bot, standin, missed, who):
    decide(bot, "beta-ready", PEOPLE[who])
    view = opened_view(standin)
    assert view["callback_id"] == FramingIds.VIEW
    [picker] = [b for b in view["blocks"] if b.get("block_id") == FramingIds.DATE_BLOCK]
    assert picker["element"]["initial_date"] == plan_today().isoformat()  # due + 3 days
    optional = [b for b in view["blocks"] if b.get("optional")]
    assert {b["block_id"] for b in optional} == {FramingIds.SCOPE_BLOCK, FramingIds.RESOURCES_BLOCK}
    shown = json.dumps(view)
    assert "<!channel>" not in shown and "<!here>" not in shown
    assert polls(bot.services.engine) == []


def test_decide_by_someone_else_is_refused_before_any_modal(bot, standin, missed):
    before = row_counts(bot.services.engine)
    response = decide(bot, "beta-ready", "UBOB")
    body = response.json()
    assert body["response_type"] == "ephemeral"
    assert "Only the owner of Portal &amp; &lt;!here&gt;, a leader or an admin" in body["text"]
    assert standin.calls("views.open") == []
    assert row_counts(bot.services.engine) == before


def test_decide_on_an_unknown_key_suggests_close_ones(bot, standin, missed):
    body = decide(bot, "beta-redy", "UALICE").json()
    assert "There is no milestone 'beta-redy'" in body["text"]
    assert "Did you mean beta-ready" in body["text"]
    assert standin.calls("views.open") == []


def test_decide_on_a_done_milestone_is_refused(bot, standin, missed):
    with session_scope(bot.services.engine) as session:
        row = session.get(Milestone, missed["ready"])
        row.status = MilestoneStatus.DONE
        session.add(row)
    body = decide(bot, "beta-ready", "UALICE").json()
    assert "is done: there is nothing to decide" in body["text"]
    assert standin.calls("views.open") == []


def test_decide_without_a_key_says_how(bot, standin, missed):
    body = decide(bot, "", "UALICE").json()
    assert "Name the milestone to decide on: /decide" in body["text"]


def submit(bot, values, *, metadata: str, user_id: str = "UALICE"):
    payload = bot.view_submission_payload(
        FramingIds.VIEW, values, user_id=user_id, private_metadata=metadata
    )
    response = bot.view_submission(payload)
    assert response.status_code == 200
    bot.wait_idle()
    return response


def values(day: date | None, scope: str | None = None, resources: str | None = None):
    return {
        FramingIds.DATE_BLOCK: {
            FramingIds.DATE: {
                "type": "datepicker",
                "selected_date": day.isoformat() if day else None,
            }
        },
        FramingIds.SCOPE_BLOCK: {FramingIds.SCOPE: {"type": "plain_text_input", "value": scope}},
        FramingIds.RESOURCES_BLOCK: {
            FramingIds.RESOURCES: {"type": "plain_text_input", "value": resources}
        },
    }


def test_the_owner_frames_by_the_dm_button_and_the_poll_is_posted_with_their_values(
    bot, standin, missed
):
    [framing] = framings(bot.services.engine)
    payload = bot.block_action_payload(
        FramingIds.FRAME,
        str(framing.id),
        user_id="UALICE",
        block_id=f"{FramingIds.ACTIONS_BLOCK}:{framing.id}",
    )
    assert bot.action(payload).status_code == 200
    bot.wait_idle()
    view = opened_view(standin)
    new_due = plan_today() + timedelta(days=14)
    response = submit(
        bot,
        values(new_due, "Offline mode <!channel>", "Two engineers & a tester"),
        metadata=view["private_metadata"],
    )
    assert response.text in ("", "null") or "errors" not in response.json()
    [poll] = polls(bot.services.engine)
    assert (poll.proposed_due, poll.scope_cut, poll.resources) == (
        new_due,
        "Offline mode <!channel>",
        "Two engineers & a tester",
    )
    assert poll.slipped_at == framing.slipped_at and poll.opened_by_id is not None
    [framed] = framings(bot.services.engine)
    assert framed.poll_id == poll.id and framed.framed_at is not None
    assert framed.proposed_due == new_due
    [posted] = tagged(standin, "CDECISIONS", MessageEvents.POLL)
    check_blocks(posted.blocks)
    text = all_mrkdwn(posted.blocks)
    assert "Offline mode &lt;!channel&gt;" in text and "<!channel>" not in text
    assert poll.message_ts == posted.ts
    # Whoever submitted hears where it is, and the tick has nothing left to do for it.
    assert [c for c in standin.calls("chat.postMessage") if c.params["channel"] == "UALICE"]
    standin.reset_calls()
    run_decision_framing(bot.services, datetime.now(UTC) + timedelta(days=3))
    assert len(polls(bot.services.engine)) == 1 and standin.calls("chat.postMessage") == []


def test_decide_anonymous_opens_an_anonymous_poll(bot, standin, missed):
    decide(bot, "beta-ready anonymous", "UCFO")
    view = opened_view(standin)
    submit(
        bot,
        values(plan_today() + timedelta(days=7)),
        metadata=view["private_metadata"],
        user_id="UCFO",
    )
    [poll] = polls(bot.services.engine)
    assert poll.anonymous


@pytest.mark.parametrize(
    ("day", "said"),
    [
        (None, "Pick the date a delay would need."),
        ("due", "A delay moves the milestone later: pick a date after its due date"),
        ("before", "A delay moves the milestone later"),
    ],
)
def test_a_bad_framing_is_a_field_error_and_writes_nothing(bot, standin, missed, day, said):
    decide(bot, "beta-ready", "UALICE")
    view = opened_view(standin)
    before = row_counts(bot.services.engine)
    chosen = {None: None, "due": missed["due"], "before": missed["due"] - timedelta(days=5)}[day]
    response = submit(bot, values(chosen), metadata=view["private_metadata"])
    body = response.json()
    assert body["response_action"] == "errors"
    assert said in body["errors"][FramingIds.DATE_BLOCK]
    assert row_counts(bot.services.engine) == before
    assert polls(bot.services.engine) == []


def test_a_forged_framing_form_is_refused(bot, standin, missed):
    before = row_counts(bot.services.engine)
    body = submit(bot, values(plan_today() + timedelta(days=7)), metadata="{nonsense").json()
    assert body["response_action"] == "errors"
    assert "out of date" in body["errors"][FramingIds.DATE_BLOCK]
    body = submit(
        bot,
        values(plan_today() + timedelta(days=7)),
        metadata=json.dumps({"milestone_id": missed["ready"]}),
        user_id="UBOB",
    ).json()
    assert "a leader or an admin" in body["errors"][FramingIds.DATE_BLOCK]
    assert row_counts(bot.services.engine) == before


def test_decide_on_a_milestone_with_an_open_poll_links_to_it(bot, standin, missed):
    decide(bot, "beta-ready", "UALICE")
    view = opened_view(standin)
    submit(bot, values(plan_today() + timedelta(days=7)), metadata=view["private_metadata"])
    [poll] = polls(bot.services.engine)
    standin.reset_calls()
    body = decide(bot, "beta-ready", "UCOO").json()
    assert "already has an open decision poll" in body["text"]
    assert "see it in the decision channel" in json.dumps(body["blocks"])
    assert standin.calls("views.open") == []
    assert standin.calls("chat.getPermalink")
    assert [p.id for p in polls(bot.services.engine)] == [poll.id]


def test_the_missed_alert_has_open_a_decision_which_opens_the_modal(bot, standin, missed):
    with Session(bot.services.engine) as session:
        alert = session.exec(select(Alert).where(Alert.kind == "milestone_missed")).one()
    [message] = [m for m in standin.messages("CDELIVERY") if m.ts == alert.message_ts]
    [actions] = [b for b in message.blocks if b["type"] == "actions"]
    buttons = {b["action_id"]: b["value"] for b in actions["elements"]}
    assert buttons[MilestoneIds.OPEN_DECISION] == str(missed["ready"])
    payload = bot.block_action_payload(
        MilestoneIds.OPEN_DECISION,
        str(missed["ready"]),
        user_id="UCIO",  # the team lead may change it, but not open a poll
        channel_id="CDELIVERY",
        block_id=actions["block_id"],
    )
    assert bot.action(payload).status_code == 200
    [refusal] = standin.wait_for("response_url")
    bot.wait_idle()
    assert "a leader or an admin" in refusal.params["text"]
    assert standin.calls("views.open") == []
    payload = bot.block_action_payload(
        MilestoneIds.OPEN_DECISION,
        str(missed["ready"]),
        user_id="UALICE",
        channel_id="CDELIVERY",
        block_id=actions["block_id"],
    )
    assert bot.action(payload).status_code == 200
    bot.wait_idle()
    view = opened_view(standin)
    assert json.loads(view["private_metadata"])["milestone_id"] == missed["ready"]


def test_home_milestone_buttons_have_no_open_a_decision():
    block = render_json_object(
        "blocks/milestone_actions.json.j2",
        milestone_ids=MilestoneIds,
        milestone_id=3,
        milestone_title=TITLE,
    )
    assert MilestoneIds.OPEN_DECISION not in {b["action_id"] for b in block["elements"]}


# --- templates ---------------------------------------------------------------------------------


def test_every_new_template_is_valid_and_escaped():
    hostile = "<!channel> & <@U999> *x*" * 30
    deadline = datetime(2027, 2, 3, 15, tzinfo=UTC)
    poll = DecisionPoll(
        id=4,
        milestone_id=1,
        opened_at=deadline,
        deadline=deadline,
        facts={"milestone_title": hostile},
    )
    messages = [
        render_json_object(
            "blocks/decisions/slip_line.json.j2",
            poll=poll,
            f=poll.facts,
            cause="blocked",
            slip_days=3,
            due=date(2027, 1, 1),
            dependency={"need": hostile, "team": hostile},
        ),
        render_json_object(
            "blocks/decisions/open_poll_link.json.j2",
            title=hostile,
            link="https://x.slack.com/archives/C1/p1",
            deadline=deadline,
        ),
        render_json_object(
            "blocks/decisions/poll_opened_reply.json.j2", title=hostile, link=None, created=True
        ),
    ]
    for message in messages:
        check_blocks(message["blocks"])
        shown = json.dumps(message)
        assert "<!channel>" not in shown and "<@U999>" not in shown
