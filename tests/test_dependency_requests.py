"""Dependency requests through the stand-in: posted once per revision, kept true in place, recovered."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from bot.dependencies.requests import CLAIM_LEASE, post_dependency_requests, request_tag
from bot.directory import sync_people
from bot.slack.gateway import MessageTag
from scheduler.tick import STEPS, run_tick
from storage.db import session_scope
from storage.models import ChannelStatus, Dependency, DependencyRequest
from templates.ids import DependencyIds, MessageEvents
from tests.dependency_support import (
    buttons,
    dependency,
    import_text,
    imported,
    plan_text,
    real_now,
    request_messages,
    requests,
    shown_text,
)
from tests.slack_harness import row_counts

# Friday 2027-01-08, 10:00 in New York (the plan's timezone).
FRIDAY = datetime(2027, 1, 8, 15, 0, tzinfo=UTC)


@pytest.fixture
def services(services):
    """A clock that stands still, so stamps are the explicit `now` however long a pass takes."""
    return dataclasses.replace(services, clock=lambda: FRIDAY)


def test_the_step_runs_after_the_directory_and_before_pulses():
    names = list(STEPS)
    assert names.index("new_people") < names.index("dependency_requests") < names.index("pulses")


def test_first_tick_after_an_import_posts_one_request_per_dependency(services, standin, tmp_path):
    import_text(services.engine, tmp_path, plan_text(), FRIDAY)
    assert dependency(services.engine).requested_at is None  # not asked until it is posted
    report = run_tick(services, FRIDAY)
    assert report.ok, report.failed
    assert report.results["dependency_requests"].posted == 1
    # Finance has no channel: nothing is posted for it, and it is not claimed either.
    [message] = request_messages(standin, "CMARKETING")
    assert message.metadata == {
        "event_type": MessageEvents.DEPENDENCY_REQUEST,
        "event_payload": {"dependency_id": dependency(services.engine).id, "revision": 1},
    }
    text = shown_text(message)
    assert "Customer portal beta" in text and "Support staff trained for the beta" in text
    assert (
        "<@UALICE>" in text and "IT Delivery" in text and "Beta launch to 5% of customers" in text
    )
    # Acknowledge by the end of the 2nd business day after Friday: Tuesday 2027-01-12.
    assert "by the end of <!date^" in text and "|2027-01-12>" in text
    assert buttons(message) == [DependencyIds.ACKNOWLEDGE, DependencyIds.CANT_MAKE_IT]
    training = dependency(services.engine)
    assert training.requested_at == FRIDAY
    assert training.ack_due_at == datetime(2027, 1, 13, 5, 0, tzinfo=UTC)  # midnight in New York
    [request] = requests(services.engine)
    assert (request.channel_id, request.message_ts, request.revision) == (
        "CMARKETING",
        message.ts,
        1,
    )
    assert dependency(services.engine, "budget").requested_at is None


def test_a_second_tick_posts_nothing_and_calls_slack_for_nothing(services, standin, tmp_path):
    imported(services, tmp_path, FRIDAY)
    post_dependency_requests(services, FRIDAY)
    standin.reset_calls()
    before = row_counts(services.engine)
    report = post_dependency_requests(services, FRIDAY + timedelta(minutes=1))
    assert (report.posted, report.updated, report.claimed) == (0, 0, 0)
    assert standin.calls() == []
    assert row_counts(services.engine) == before


def test_a_plan_holiday_is_not_a_business_day(services, standin, tmp_path):
    text = plan_text().replace(
        "defaults: {pulse", "holidays: [{start: 2027-01-11, end: 2027-01-12}]\ndefaults: {pulse"
    )
    import_text(services.engine, tmp_path, text, FRIDAY)
    imported_sync = run_tick(services, FRIDAY)
    assert imported_sync.ok
    # Monday and Tuesday are a holiday: Wednesday and Thursday are the two business days.
    assert dependency(services.engine).ack_due_at == datetime(2027, 1, 15, 5, 0, tzinfo=UTC)


def test_a_changed_need_posts_a_new_request_and_the_old_one_says_replaced(
    services, standin, tmp_path
):
    imported(services, tmp_path, FRIDAY)
    post_dependency_requests(services, FRIDAY)
    [first] = request_messages(standin)
    later = FRIDAY + timedelta(days=3)
    import_text(
        services.engine, tmp_path, plan_text(need="Support staff AND partners trained"), later
    )
    renewed = dependency(services.engine)
    assert renewed.request_revision == 2
    assert (renewed.requested_at, renewed.ack_due_at, renewed.state) == (None, None, "requested")
    standin.reset_calls()
    report = post_dependency_requests(services, later)
    assert (report.posted, report.updated) == (1, 1)
    old, new = request_messages(standin)
    assert old.ts == first.ts and "replaced" in shown_text(old) and buttons(old) == []
    assert "Support staff AND partners trained" in shown_text(new)
    assert new.metadata["event_payload"]["revision"] == 2
    assert dependency(services.engine).requested_at == later  # the clock restarted
    # Settled: the next pass calls Slack for nothing.
    standin.reset_calls()
    post_dependency_requests(services, later)
    assert standin.calls() == []


def test_a_changed_needed_by_is_a_new_revision_but_a_changed_milestone_is_not(
    services, standin, tmp_path
):
    imported(services, tmp_path, FRIDAY)
    post_dependency_requests(services, FRIDAY)
    import_text(services.engine, tmp_path, plan_text(needed_by="2027-01-29"), FRIDAY)
    assert dependency(services.engine).request_revision == 2
    import_text(
        services.engine,
        tmp_path,
        plan_text(needed_by="2027-01-29", title="Portal beta (renamed)"),
        FRIDAY,
    )
    assert dependency(services.engine).request_revision == 2


def test_a_state_set_in_the_plan_file_reaches_the_request_in_place(services, standin, tmp_path):
    imported(services, tmp_path, FRIDAY)
    post_dependency_requests(services, FRIDAY)
    import_text(services.engine, tmp_path, plan_text(state="acknowledged"), FRIDAY)
    stored = dependency(services.engine)
    # The plan file goes through the rule's bookkeeping, not just the column.
    assert (stored.state, stored.acknowledged_at, stored.request_revision) == (
        "acknowledged",
        FRIDAY,
        1,
    )
    standin.reset_calls()
    report = post_dependency_requests(services, FRIDAY)
    assert (report.posted, report.updated) == (0, 1)
    [update] = standin.calls("chat.update")
    [message] = request_messages(standin)
    assert update.params["ts"] == message.ts
    assert "Acknowledged" in shown_text(message)
    assert buttons(message) == [DependencyIds.CANT_MAKE_IT, DependencyIds.DELIVERED]
    import_text(services.engine, tmp_path, plan_text(state="delivered"), FRIDAY)
    post_dependency_requests(services, FRIDAY)
    [message] = request_messages(standin)
    assert "Delivered" in shown_text(message) and buttons(message) == []
    assert dependency(services.engine).delivered_at == FRIDAY


def test_an_archived_dependency_says_so_with_no_buttons(services, standin, tmp_path):
    imported(services, tmp_path, FRIDAY)
    post_dependency_requests(services, FRIDAY)
    without = plan_text().split("      - key: support-training")[0] + (
        "      - {key: budget, provider: finance, need: Budget approved, needed_by: 2027-01-20}\n"
    )
    import_text(services.engine, tmp_path, without, FRIDAY)
    assert dependency(services.engine).archived
    post_dependency_requests(services, FRIDAY)
    [message] = request_messages(standin)
    assert "removed from the plan" in shown_text(message) and buttons(message) == []


def test_a_new_dependency_created_delivered_is_not_asked_for(services, standin, tmp_path):
    imported(services, tmp_path, FRIDAY, state="delivered")
    report = post_dependency_requests(services, FRIDAY)
    assert report.posted == 0 and request_messages(standin) == []


def test_not_in_channel_is_recorded_and_the_request_posted_once_the_bot_is_back(
    services, standin, tmp_path
):
    imported(services, tmp_path, FRIDAY, marketing_channel="#random")  # the bot is not in it
    standin.reset_calls()
    report = post_dependency_requests(services, FRIDAY)
    assert report.posted == 0 and report.channel_problems == ["#random: not_member"]
    assert len(standin.calls("chat.postMessage")) == 1  # one try for the channel, not one per item
    assert requests(services.engine) == []  # the claim is given back
    with session_scope(services.engine) as session:
        status = session.get(ChannelStatus, "#random")
        # Cleared, as if the directory had not seen it: the refused post alone records it.
        status.problem = None
        session.add(status)
    standin.reset_calls()
    post_dependency_requests(services, FRIDAY)
    with Session(services.engine) as session:
        status = session.get(ChannelStatus, "#random")
    assert (status.ref, status.channel_id, status.problem) == ("#random", "CRANDOM", "not_member")
    standin.workspace.channels["CRANDOM"].bot_member = True
    report = post_dependency_requests(services, FRIDAY + timedelta(minutes=1))
    assert report.posted == 1
    assert len(request_messages(standin, "CRANDOM")) == 1
    with Session(services.engine) as session:
        assert session.get(ChannelStatus, "#random").problem is None


def test_an_archived_channel_and_a_deleted_one_are_recorded_too(services, standin, tmp_path):
    imported(services, tmp_path, FRIDAY)
    standin.fail_next("chat.postMessage", status=200, error="is_archived")
    post_dependency_requests(services, FRIDAY)
    with Session(services.engine) as session:
        assert session.get(ChannelStatus, "#marketing").problem == "archived"
    standin.fail_next("chat.postMessage", status=200, error="channel_not_found")
    post_dependency_requests(services, FRIDAY)
    with Session(services.engine) as session:
        assert session.get(ChannelStatus, "#marketing").problem == "not_found"
    assert requests(services.engine) == []


def test_a_429_mid_pass_is_waited_out_and_nothing_is_lost_or_doubled(
    services, standin, tmp_path, monkeypatch
):
    # A second provider with a channel, so that a 429 can fall between two posts of one pass.
    two_channels = plan_text().replace(
        "  - {key: finance, name: Finance, lead: UCFO}",
        '  - {key: finance, name: Finance, channel: "#general", lead: UCFO}',
    )
    import_text(services.engine, tmp_path, two_channels, FRIDAY)
    sync_people(services, FRIDAY)
    post = services.slack.post_message
    posts: list[str] = []

    def rate_limited_second(**kwargs):
        posts.append(kwargs["channel"])
        if len(posts) == 2:
            standin.fail_next("chat.postMessage", status=429, retry_after=1)
        return post(**kwargs)

    monkeypatch.setattr(services.slack, "post_message", rate_limited_second)
    report = post_dependency_requests(services, FRIDAY)
    assert report.posted == 2 and report.errors == []
    assert [c.error for c in standin.calls("chat.postMessage")] == [None, "ratelimited", None]
    assert len(request_messages(standin, "CMARKETING")) == 1
    assert len(request_messages(standin, "CGENERAL")) == 1
    assert len(requests(services.engine)) == 2
    standin.reset_calls()
    post_dependency_requests(services, FRIDAY)
    assert standin.calls() == []


def test_a_429_on_the_first_post_is_retried_by_the_gateway(services, standin, tmp_path):
    imported(services, tmp_path, FRIDAY)
    standin.fail_next("chat.postMessage", status=429, retry_after=1)
    report = post_dependency_requests(services, FRIDAY)
    assert report.posted == 1 and report.errors == []
    failed, posted = standin.calls("chat.postMessage")
    assert (failed.ok, failed.error, posted.ok) == (False, "ratelimited", True)
    assert len(request_messages(standin)) == 1 and len(requests(services.engine)) == 1


def test_a_crash_after_the_post_is_recovered_from_the_channel_not_reposted(
    services, standin, tmp_path
):
    # Recovery compares the claim's time with Slack's message timestamps: use the real clock.
    now = real_now()
    imported(services, tmp_path, now)
    training = dependency(services.engine)
    # A crash between the post and the record: the message is in Slack, the row says claimed.
    services.slack.post_message(
        channel="CMARKETING", text="request", tag=request_tag(training.id, 1)
    )
    with session_scope(services.engine) as session:
        session.add(DependencyRequest(dependency_id=training.id, revision=1, claimed_at=now))
    # Within the lease nobody touches it (a live poster may still be at work).
    standin.reset_calls()
    report = post_dependency_requests(services, now + timedelta(minutes=1))
    assert report.posted == 0 and standin.calls() == []
    later = now + CLAIM_LEASE + timedelta(minutes=1)
    report = post_dependency_requests(services, later)
    assert (report.found_in_slack, report.posted, report.updated) == (1, 0, 1)
    assert standin.calls("chat.postMessage") == []
    [message] = request_messages(standin)
    assert "Support staff trained" in shown_text(message)  # re-rendered once it was found
    assert dependency(services.engine).requested_at == now


def test_a_crashed_claim_never_posted_is_posted_once_after_the_lease(services, standin, tmp_path):
    now = real_now()
    imported(services, tmp_path, now)
    training = dependency(services.engine)
    with session_scope(services.engine) as session:
        session.add(DependencyRequest(dependency_id=training.id, revision=1, claimed_at=now))
    later = now + CLAIM_LEASE + timedelta(minutes=1)
    report = post_dependency_requests(services, later)
    assert report.posted == 1
    assert len(request_messages(standin)) == 1
    assert len(standin.calls("conversations.history")) == 1  # looked before posting
    post_dependency_requests(services, later + CLAIM_LEASE * 2)
    assert len(request_messages(standin)) == 1


def test_plan_text_is_shown_literally_and_pings_nobody(services, standin, tmp_path):
    imported(
        services,
        tmp_path,
        FRIDAY,
        title="Portal <!channel> & <@UCFO>",
        need="Train <!here> staff & <@UBOB> <https://evil.example|click>",
        provider_name="Marketing & <!everyone>",
    )
    post_dependency_requests(services, FRIDAY)
    [message] = request_messages(standin)
    text = shown_text(message) + message.text
    for control in ("<!channel>", "<!here>", "<!everyone>", "<@UCFO>", "<@UBOB>", "<https://"):
        assert control not in text
    assert "Portal &lt;!channel&gt; &amp; &lt;@UCFO&gt;" in text
    assert "Train &lt;!here&gt; staff &amp; &lt;@UBOB&gt;" in text
    assert "<@UALICE>" in text  # the bot's own mention of the owner stays a mention


def test_the_tag_is_plain_metadata():
    assert request_tag(7, 2) == MessageTag(
        MessageEvents.DEPENDENCY_REQUEST, {"dependency_id": 7, "revision": 2}
    )


def test_deleted_request_message_is_not_retried_every_tick(services, standin, tmp_path):
    imported(services, tmp_path, FRIDAY)
    post_dependency_requests(services, FRIDAY)
    [message] = request_messages(standin)
    with standin.state.lock:  # someone deleted it in Slack
        standin.state.messages["CMARKETING"].remove(message)
    import_text(services.engine, tmp_path, plan_text(state="acknowledged"), FRIDAY)
    post_dependency_requests(services, FRIDAY)
    [failed] = standin.calls("chat.update")
    assert failed.error == "message_not_found"
    standin.reset_calls()
    post_dependency_requests(services, FRIDAY)
    assert standin.calls() == []
    with Session(services.engine) as session:
        assert session.exec(select(Dependency)).all()  # nothing else changed


def test_two_ticks_at_once_post_each_request_once(services, standin, tmp_path):
    imported(services, tmp_path, FRIDAY)
    standin.delay_next("chat.postMessage", 0.5, times=2)  # both passes overlap on the post
    barrier = threading.Barrier(2)
    reports = []

    def tick() -> None:
        barrier.wait()
        reports.append(post_dependency_requests(services, FRIDAY))

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert sorted(r.posted for r in reports) == [0, 1]
    assert len(request_messages(standin)) == 1 and len(requests(services.engine)) == 1
