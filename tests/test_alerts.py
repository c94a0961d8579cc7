"""Detection and the alert lifecycle against the stand-in, with an explicit `now`: each condition at its boundary, raise → update → resolve → re-raise, the noise budget."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session, select

from bot.alerts import run_detection
from bot.alerts.conditions import find_problems
from storage.models import (
    Alert,
    AlertState,
    ChannelStatus,
    DependencyState,
    Milestone,
    PulseAnswer,
    PulseRequest,
    PulseState,
)
from tests import factories

# The plan is in New York: 2027-01-15 ends there at 05:00 UTC on the 16th.
DUE = date(2027, 1, 15)
END_OF_DUE_DAY = datetime(2027, 1, 16, 5, 0, tzinfo=UTC)
NASTY = "<!channel> <@UBOB> R&D"


@pytest.fixture
def plan(services):
    """Alice owns an IT initiative (channel CDELIVERY, lead the CIO); COO is an admin."""
    with Session(services.engine) as session:
        factories.plan_settings(session, timezone="America/New_York")
        alice = factories.person(session, slack_id="UALICE", name="Alice")
        cio = factories.person(session, slack_id="UCIO", name="CIO")
        factories.person(session, slack_id="UCOO", name="COO", is_admin=True)
        cmo = factories.person(session, slack_id="UCMO", name="CMO")
        it = factories.team(session, key="it", name="IT Delivery", channel_id="CDELIVERY", lead=cio)
        marketing = factories.team(
            session, key="marketing", name="Marketing", channel_id="CMARKETING", lead=cmo
        )
        portal = factories.initiative(
            session, owner=alice, team=it, key="portal", title="Portal beta"
        )
        session.commit()
        return {"portal": portal.id, "it": it.id, "marketing": marketing.id}


def _milestone(services, plan, **fields) -> int:
    with Session(services.engine) as session:
        from storage.models import Initiative

        portal = session.get(Initiative, plan["portal"])
        row = factories.milestone(session, initiative=portal, **{"due": DUE, **fields})
        session.commit()
        return int(row.id)


def _alerts(services) -> list[Alert]:
    with Session(services.engine) as session:
        return list(session.exec(select(Alert).order_by(Alert.id)))


def _kinds(services, now) -> list[str]:
    with Session(services.engine) as session:
        return sorted(f.key for f in find_problems(session, now))


def _posts(standin, channel: str) -> list:
    return [m for m in standin.messages(channel) if m.thread_ts is None]


# --- missed milestones ---------------------------------------------------------------------


def test_a_milestone_is_missed_only_once_its_day_has_ended_in_the_plans_timezone(services, plan):
    milestone_id = _milestone(services, plan)
    assert _kinds(services, END_OF_DUE_DAY - timedelta(minutes=1)) == []
    assert _kinds(services, END_OF_DUE_DAY + timedelta(minutes=1)) == [
        f"milestone_missed:milestone:{milestone_id}"
    ]


def test_a_missed_milestone_is_posted_to_its_team_and_its_owner_hears_once(services, plan, standin):
    _milestone(services, plan, title=NASTY)
    report = run_detection(services, END_OF_DUE_DAY)
    assert (report.raised, report.posted, report.told) == (1, 1, 1)
    [post] = _posts(standin, "CDELIVERY")
    assert "Missed milestone" in str(post.blocks)
    assert "&lt;!channel&gt; &lt;@UBOB&gt; R&amp;D" in str(post.blocks)
    mrkdwn = str([b for b in post.blocks if b["type"] != "actions"])  # plain_text is never parsed
    assert "<!channel>" not in mrkdwn and "<@UBOB>" not in mrkdwn
    assert "<!date^" in str(post.blocks)
    [dm] = standin.messages(standin.dm_channel("UALICE"))
    assert "archives/CDELIVERY" in str(dm.blocks)  # links to the channel message

    standin.reset_calls()
    again = run_detection(services, END_OF_DUE_DAY + timedelta(hours=1))
    assert (again.raised, again.posted, again.updated, again.told) == (0, 0, 0, 0)
    assert standin.calls() == []  # nothing changed: no Web API call at all


def test_an_alert_is_updated_in_place_resolved_and_raised_anew(services, plan, standin):
    milestone_id = _milestone(services, plan)
    run_detection(services, END_OF_DUE_DAY)
    [post] = _posts(standin, "CDELIVERY")

    with Session(services.engine) as session:  # re-planned, but still in the past: updated
        row = session.get(Milestone, milestone_id)
        row.due = DUE - timedelta(days=1)
        session.add(row)
        session.commit()
    report = run_detection(services, END_OF_DUE_DAY + timedelta(hours=1))
    assert report.updated == 1 and report.posted == 0
    [same] = _posts(standin, "CDELIVERY")
    assert same.ts == post.ts and same.edited
    [line] = [m for m in standin.messages("CDELIVERY") if m.thread_ts == post.ts]
    assert "now due" in line.text

    with Session(services.engine) as session:  # moved to a later date: the alert resolves
        row = session.get(Milestone, milestone_id)
        row.due = DUE + timedelta(days=30)
        session.add(row)
        session.commit()
    report = run_detection(services, END_OF_DUE_DAY + timedelta(hours=2))
    assert report.resolved == 1
    [resolved] = _posts(standin, "CDELIVERY")
    assert "Resolved" in resolved.text
    assert not [b for b in resolved.blocks if b["type"] == "actions"]
    [alert] = _alerts(services)
    assert alert.state == AlertState.RESOLVED and alert.open_key is None

    # Missed again after the new date: a new alert, a new message.
    run_detection(services, END_OF_DUE_DAY + timedelta(days=31))
    alerts = _alerts(services)
    assert [a.state for a in alerts] == [AlertState.RESOLVED, AlertState.OPEN]
    assert len(_posts(standin, "CDELIVERY")) == 2


def test_a_done_or_descoped_milestone_resolves_its_alert(services, plan, standin):
    done = _milestone(services, plan)
    descoped = _milestone(services, plan)
    run_detection(services, END_OF_DUE_DAY)
    with Session(services.engine) as session:
        for milestone_id, status in ((done, "done"), (descoped, "descoped")):
            row = session.get(Milestone, milestone_id)
            row.status = status
            session.add(row)
        session.commit()
    assert run_detection(services, END_OF_DUE_DAY + timedelta(hours=1)).resolved == 2
    lines = sorted(m.text for m in standin.messages("CDELIVERY") if m.thread_ts)
    assert any("done" in t for t in lines) and any("descoped" in t for t in lines)


# --- the noise budget ----------------------------------------------------------------------


def test_twelve_alerts_for_one_channel_are_five_posts_and_one_summary(services, plan, standin):
    ids = [_milestone(services, plan, title=f"Step {n}") for n in range(12)]
    report = run_detection(services, END_OF_DUE_DAY)
    assert (report.raised, report.posted, report.summarised, report.summaries) == (12, 5, 7, 1)
    posts = _posts(standin, "CDELIVERY")
    assert len(posts) == 6
    summary = posts[-1]
    assert "7 more alerts" in str(summary.blocks)
    listed = [a for a in _alerts(services) if a.in_summary]
    assert len(listed) == 7 and {a.message_ts for a in listed} == {summary.ts}

    with Session(services.engine) as session:  # one of the summarised ones is done
        row = session.get(Milestone, ids[-1])
        row.status = "done"
        session.add(row)
        session.commit()
    standin.reset_calls()
    assert run_detection(services, END_OF_DUE_DAY + timedelta(hours=1)).resolved == 1
    [update] = standin.calls("chat.update")
    assert update.params["ts"] == summary.ts
    assert "(resolved)" in str(update.params["blocks"])


def test_the_budget_is_a_setting(services, plan, standin):
    for n in range(3):
        _milestone(services, plan, title=f"Step {n}")
    tight = replace(
        services, settings=services.settings.model_copy(update={"alerts_per_channel_per_tick": 1})
    )
    report = run_detection(tight, END_OF_DUE_DAY)
    assert (report.posted, report.summarised) == (1, 2)


# --- channels, rate limits, concurrency ------------------------------------------------------


def test_a_channel_the_bot_was_removed_from_keeps_the_alert_and_tells_admins_once(
    services, plan, standin
):
    with Session(services.engine) as session:
        from storage.models import Team

        team = session.get(Team, plan["it"])
        team.channel, team.channel_id = "#random", "CRANDOM"  # the bot is not a member
        session.add(team)
        session.commit()
    _milestone(services, plan)
    _milestone(services, plan)
    report = run_detection(services, END_OF_DUE_DAY)
    assert report.posted == 0 and report.unposted == 2
    refused = [c for c in standin.calls("chat.postMessage") if c.params.get("channel") == "CRANDOM"]
    assert len(refused) == 1  # tried once this pass, not once per alert
    with Session(services.engine) as session:
        status = session.get(ChannelStatus, "#random")
    assert status is not None and status.problem == "not_member"
    missed = [a for a in _alerts(services) if a.kind == "milestone_missed"]
    assert all(a.posted_at is None and a.claimed_at is None for a in missed)  # kept for later

    run_detection(services, END_OF_DUE_DAY + timedelta(minutes=1))
    admin_dms = standin.messages(standin.dm_channel("UCOO"))
    assert len([m for m in admin_dms if "not a member" in m.text]) == 1

    standin.workspace.channels["CRANDOM"].bot_member = True  # invited back
    report = run_detection(services, END_OF_DUE_DAY + timedelta(minutes=2))
    assert report.posted == 2
    assert len(_posts(standin, "CRANDOM")) == 2
    # The post went through, so the channel is fine again: the admins' alert resolves.
    assert run_detection(services, END_OF_DUE_DAY + timedelta(minutes=3)).resolved == 1
    [channel_alert] = [a for a in _alerts(services) if a.kind == "channel_unreachable"]
    assert channel_alert.state == AlertState.RESOLVED


def test_a_429_mid_pass_is_waited_out_and_nothing_is_doubled(services, plan, standin):
    for n in range(3):
        _milestone(services, plan, title=f"Step {n}")
    standin.fail_next("chat.postMessage", status=429, retry_after=1, times=1)
    report = run_detection(services, END_OF_DUE_DAY)
    assert report.posted == 3
    assert len(_posts(standin, "CDELIVERY")) == 3


def test_two_passes_at_once_post_each_alert_once(services, plan, standin):
    for n in range(4):
        _milestone(services, plan, title=f"Step {n}")
    errors: list[BaseException] = []

    def detect() -> None:
        try:
            run_detection(services, END_OF_DUE_DAY)
        except Exception as exc:  # noqa: BLE001 - any failure of either pass fails the test
            errors.append(exc)

    threads = [threading.Thread(target=detect) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(_posts(standin, "CDELIVERY")) == 4
    assert len(standin.messages(standin.dm_channel("UALICE"))) == 4


# --- dependencies --------------------------------------------------------------------------


def _dependency(services, plan, **fields) -> int:
    with Session(services.engine) as session:
        from storage.models import Initiative, Team

        row = factories.dependency(
            session,
            initiative=session.get(Initiative, plan["portal"]),
            provider=session.get(Team, plan["marketing"]),
            **{"needed_by": date(2027, 2, 1), **fields},
        )
        session.commit()
        return int(row.id)


def test_an_unacknowledged_dependency_is_told_to_the_provider_once_its_deadline_passes(
    services, plan, standin
):
    deadline = datetime(2027, 1, 13, 5, 0, tzinfo=UTC)
    dependency_id = _dependency(services, plan, need=NASTY, ack_due_at=deadline)
    assert _kinds(services, deadline - timedelta(seconds=1)) == []
    report = run_detection(services, deadline)
    assert report.posted == 1
    [post] = _posts(standin, "CMARKETING")
    assert "<@UCMO>" in str(post.blocks)  # names the provider's lead
    assert "&lt;!channel&gt;" in str(post.blocks)
    assert any("not acknowledged" in m.text for m in standin.messages(standin.dm_channel("UALICE")))

    with Session(services.engine) as session:  # acknowledged: the alert resolves
        from storage.models import Dependency

        row = session.get(Dependency, dependency_id)
        row.state = DependencyState.ACKNOWLEDGED
        session.add(row)
        session.commit()
    assert run_detection(services, deadline + timedelta(hours=1)).resolved == 1


def test_a_blocked_dependency_alerts_the_requesting_team_and_puts_its_milestone_at_risk(
    services, plan, standin
):
    milestone_id = _milestone(services, plan, due=date(2027, 3, 1))
    with Session(services.engine) as session:
        feeds = session.get(Milestone, milestone_id)
        session.expunge(feeds)
    with Session(services.engine) as session:
        from storage.models import Initiative, Team

        factories.dependency(
            session,
            initiative=session.get(Initiative, plan["portal"]),
            provider=session.get(Team, plan["marketing"]),
            needed_by=date(2027, 2, 1),
            milestone=feeds,
            state=DependencyState.BLOCKED,
            note="No trainers until March",
            alternative_date=date(2027, 3, 10),
        )
        session.commit()
    now = datetime(2027, 1, 20, 15, tzinfo=UTC)
    assert [k.split(":")[0] for k in _kinds(services, now)] == [
        "dependency_blocked",
        "milestone_at_risk",
    ]
    run_detection(services, now)
    texts = [m.text for m in _posts(standin, "CDELIVERY")]
    assert any("Blocked dependency" in t for t in texts)
    assert any("Milestone at risk" in t for t in texts)


def test_a_dependency_past_its_needed_by_day_is_blocked_from_the_next_day(services, plan):
    _dependency(services, plan, needed_by=DUE, state=DependencyState.ACKNOWLEDGED)
    assert _kinds(services, END_OF_DUE_DAY - timedelta(minutes=1)) == []
    assert [k.split(":")[0] for k in _kinds(services, END_OF_DUE_DAY)] == ["dependency_blocked"]


def test_an_archived_dependency_resolves_its_alert(services, plan, standin):
    dependency_id = _dependency(services, plan, state=DependencyState.BLOCKED)
    now = datetime(2027, 1, 20, 15, tzinfo=UTC)
    run_detection(services, now)
    with Session(services.engine) as session:
        from storage.models import Dependency

        row = session.get(Dependency, dependency_id)
        row.archived = True
        session.add(row)
        session.commit()
    assert run_detection(services, now + timedelta(minutes=1)).resolved == 1
    [post] = _posts(standin, "CDELIVERY")
    assert "Resolved" in post.text
    [line] = [m for m in standin.messages("CDELIVERY") if m.thread_ts == post.ts]
    assert "archived" in line.text


# --- KPIs, pulses, confidence --------------------------------------------------------------


def _kpi(services, plan, *, value: float | None, as_of: date, **fields):
    """A KPI 0 → 100 over 2026-10-01 → 2027-09-30, linked to the portal initiative."""
    with Session(services.engine) as session:
        from storage.models import Initiative, InitiativeKpi, Person

        owner = session.exec(select(Person).where(Person.slack_id == "UCOO")).one()
        objective = factories.objective(session, owner=owner, title="Self-service")
        kpi = factories.kpi(session, objective=objective, name="Adoption", **fields)
        if value is not None:
            factories.reading(session, kpi=kpi, value=value, as_of=as_of)
        session.add(InitiativeKpi(initiative_id=plan["portal"], kpi_id=kpi.id))
        session.get(Initiative, plan["portal"])
        session.commit()
        return kpi.id


def test_a_kpi_exactly_at_its_red_tolerance_is_not_off_track_and_beyond_it_is(services, plan):
    # On 2027-04-01 the line expects 50 (182 of 364 days); red tolerance 25 → 25 is the limit.
    day = datetime(2027, 4, 1, 15, tzinfo=UTC)
    kpi_id = _kpi(services, plan, value=None, as_of=day.date())
    with Session(services.engine) as session:
        from storage.models import Kpi

        kpi = session.get(Kpi, kpi_id)
        from bot.kpis import expected_value

        at_limit = expected_value(kpi, day.date()) - 25
        factories.reading(session, kpi=kpi, value=at_limit, as_of=day.date())
        session.commit()
    assert _kinds(services, day) == []
    with Session(services.engine) as session:
        factories.reading(
            session,
            kpi=session.get(Kpi, kpi_id),
            value=at_limit - 0.5,
            as_of=day.date() + timedelta(days=1),
        )
        session.commit()
    assert _kinds(services, day + timedelta(days=1)) == [f"kpi_off_track:kpi:{kpi_id}"]


def test_a_kpi_without_a_reading_for_too_long_is_off_track(services, plan):
    as_of = date(2026, 12, 1)
    kpi_id = _kpi(services, plan, value=200, as_of=as_of, reading_every_days=35)
    on_day_35 = datetime(2027, 1, 5, 15, tzinfo=UTC)
    assert _kinds(services, on_day_35) == []
    assert _kinds(services, on_day_35 + timedelta(days=1)) == [f"kpi_off_track:kpi:{kpi_id}"]


def _pulse(services, plan, *, due: datetime, state: str, status: str | None = None) -> None:
    with Session(services.engine) as session:
        from storage.models import Initiative

        portal = session.get(Initiative, plan["portal"])
        pulse = PulseRequest(
            initiative_id=portal.id,
            owner_id=portal.owner_id,
            period=due.isoformat(),
            due_at=due,
            next_due_at=due + timedelta(days=7),
            state=state,
            sent_at=due,
        )
        session.add(pulse)
        session.flush()
        if status is not None:
            session.add(PulseAnswer(pulse_request_id=pulse.id, status=status, answered_at=due))
        session.commit()


def test_an_initiative_goes_dark_on_its_second_unanswered_period(services, plan, standin):
    monday = datetime(2027, 1, 4, 14, tzinfo=UTC)
    _pulse(services, plan, due=monday, state=PulseState.SENT)
    _pulse(services, plan, due=monday + timedelta(days=7), state=PulseState.SENT)
    second_closes = monday + timedelta(days=14)
    assert _kinds(services, second_closes - timedelta(minutes=1)) == []
    assert _kinds(services, second_closes) == [f"initiative_dark:initiative:{plan['portal']}"]
    run_detection(services, second_closes)
    assert any("gone dark" in m.text for m in standin.messages(standin.dm_channel("UCIO")))


def test_on_track_while_a_milestone_is_missed_tells_the_team_lead(services, plan, standin):
    _milestone(services, plan)
    _pulse(
        services,
        plan,
        due=datetime(2027, 1, 11, 14, tzinfo=UTC),
        state=PulseState.ANSWERED,
        status="on_track",
    )
    kinds = [k.split(":")[0] for k in _kinds(services, END_OF_DUE_DAY)]
    assert kinds == ["confidence_mismatch", "milestone_missed"]
    run_detection(services, END_OF_DUE_DAY)
    assert any("says on track" in m.text for m in standin.messages(standin.dm_channel("UCIO")))


def test_an_at_risk_pulse_puts_the_next_milestone_at_risk(services, plan):
    near = _milestone(services, plan, due=date(2027, 2, 1))
    _milestone(services, plan, due=date(2027, 3, 1))
    _pulse(
        services,
        plan,
        due=datetime(2027, 1, 11, 14, tzinfo=UTC),
        state=PulseState.ANSWERED,
        status="at_risk",
    )
    assert _kinds(services, datetime(2027, 1, 12, tzinfo=UTC)) == [
        f"milestone_at_risk:milestone:{near}"
    ]


def test_a_claim_left_by_a_crashed_pass_is_found_in_slack_not_posted_again(services, plan, standin):
    """The crashed pass posted the alert but died before recording it; the next pass, after the
    lease, finds the tagged post in the channel's history instead of posting a second one.
    On the real clock: the stand-in stamps messages with it, and history is searched by time."""
    from bot.alerts.lifecycle import CLAIM_LEASE
    from storage import alerts as queries

    now = datetime.now(UTC)
    _milestone(services, plan, due=now.date() - timedelta(days=10))
    run_detection(services, now)
    [post] = _posts(standin, "CDELIVERY")
    with Session(services.engine) as session:  # forget that it was posted
        [alert] = session.exec(select(Alert))
        alert.posted_at, alert.message_ts, alert.claimed_at = None, None, now
        session.add(alert)
        session.commit()
    assert run_detection(services, now + timedelta(minutes=1)).posted == 0  # still leased
    assert run_detection(services, now + CLAIM_LEASE + timedelta(minutes=1)).posted == 0
    assert len(_posts(standin, "CDELIVERY")) == 1
    with Session(services.engine) as session:
        [alert] = queries.open_alerts(session=session)
    assert alert.message_ts == post.ts and alert.posted_at is not None


# --- a pass killed between the channel post and the owner's DM (found by the crash test) -------


def _killed_after_the_post(services, plan, standin, now: datetime, *, recorded: bool) -> str:
    """The rows and the Slack message a pass leaves when SIGKILL hits right after its channel
    post: recorded as posted (or only claimed), nobody told yet. Returns the post's ts."""
    import json
    import time

    from storage import alerts as queries
    from storage.db import session_scope
    from templates.ids import MessageEvents

    _milestone(services, plan)
    standin.state.clock_offset = now.timestamp() - time.time()  # Slack's clock agrees with ours
    with session_scope(services.engine) as session:
        [finding] = find_problems(session, now)
        alert_id = queries.raise_alert(
            session=session,
            kind=finding.kind,
            subject=finding.subject,
            facts=finding.facts,
            shown=finding.shown,
            channel_id=finding.channel,
            now=now,
        )
        assert alert_id is not None
        queries.claim_for_posting(session=session, alert_ids=[alert_id], now=now, lease=timedelta())
    tag = {"event_type": MessageEvents.ALERT, "event_payload": {"alert_ids": str(alert_id)}}
    with standin.state.lock:
        posted = standin.state.chat_post_message(
            {"channel": "CDELIVERY", "text": "Missed milestone", "metadata": json.dumps(tag)}
        )
    if recorded:
        with session_scope(services.engine) as session:
            queries.mark_posted(
                session=session,
                alert_ids=[alert_id],
                channel_id="CDELIVERY",
                ts=posted["ts"],
                in_summary=False,
                now=now,
            )
    return str(posted["ts"])


@pytest.mark.parametrize("recorded", [True, False], ids=["recorded", "found-in-slack"])
def test_an_owner_is_told_after_a_pass_died_between_the_post_and_the_dm(
    services, plan, standin, recorded
):
    """Before, only the alerts a pass had just posted were told: one recorded by a pass that
    died before its DMs, or found in Slack after the lease, was never told to its owner."""
    from bot.alerts.lifecycle import CLAIM_LEASE

    ts = _killed_after_the_post(services, plan, standin, END_OF_DUE_DAY, recorded=recorded)
    restarted = END_OF_DUE_DAY + CLAIM_LEASE + timedelta(minutes=1)
    report = run_detection(services, restarted)
    assert (report.posted, report.told) == (0, 1)
    assert [p.ts for p in _posts(standin, "CDELIVERY")] == [ts]
    [dm] = standin.messages(standin.dm_channel("UALICE"))
    assert "archives/CDELIVERY" in str(dm.blocks)
    again = run_detection(services, restarted + timedelta(minutes=5))
    assert (again.posted, again.told) == (0, 0)
    assert len(standin.messages(standin.dm_channel("UALICE"))) == 1
