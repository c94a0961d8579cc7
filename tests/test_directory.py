"""The people directory against the stand-in: e-mail → Slack ID, profiles, deactivated owners, channels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from bot.alerts import DetectionReport, run_detection
from bot.directory import DirectoryReport, sync_people
from storage.models import Alert, AlertState, Person, Team
from tests import factories

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def _seed(
    engine, *, owner_email: str = "gone@northwind.example", team_channel: str = "#it-delivery"
):
    with Session(engine) as session:
        admin = Person(slack_id="UCOO", email="coo@northwind.example", is_admin=True)
        alice = Person(email="ALICE@northwind.example")  # only an e-mail: resolved by the sync
        owner = Person(email=owner_email, name="Former Owner")
        outsider = Person(email="contractor@elsewhere.example")
        session.add_all([admin, alice, owner, outsider])
        session.flush()
        team = Team(key="it", name="IT Delivery", channel=team_channel)
        session.add(team)
        session.flush()
        factories.initiative(
            session, owner=owner, team=team, key="portal-beta", title="Portal <beta> & launch"
        )
        factories.initiative(session, owner=alice, team=team, key="crm")
        factories.plan_settings(
            session, decisions_channel="#exec-decisions", alerts_channel="#random"
        )
        session.commit()


def _sync(services, now: datetime) -> tuple[DirectoryReport, DetectionReport]:
    """The directory step, then detection, as a tick runs them: detection tells the admins."""
    return sync_people(services, now), run_detection(services, now)


def _people(engine) -> dict[str, Person]:
    with Session(engine) as session:
        return {p.email: p for p in session.exec(select(Person))}


def test_people_are_linked_and_refreshed_from_one_users_list(services, standin) -> None:
    _seed(services.engine)
    report = sync_people(services, NOW)
    people = _people(services.engine)
    alice = people["ALICE@northwind.example"]
    assert (alice.slack_id, alice.name, alice.tz, alice.active) == (
        "UALICE",
        "Alice Archer",
        "America/New_York",
        True,
    )
    assert alice.synced_at == NOW
    assert people["coo@northwind.example"].tz == "America/New_York"
    assert people["gone@northwind.example"].active is False
    assert people["contractor@elsewhere.example"].slack_id is None
    assert report.linked == 2 and report.not_in_slack == ["contractor@elsewhere.example"]
    assert len(standin.calls("users.list")) == 1
    assert standin.calls("users.info") == [] and standin.calls("users.lookupByEmail") == []


def test_deactivated_owner_is_reported_to_admins_once(services, standin) -> None:
    _seed(services.engine)
    _sync(services, NOW)
    _sync(services, NOW + timedelta(days=1))
    dms = [m for m in standin.messages("UCOO") if "deactivated" in m.text]
    assert len(dms) == 1
    assert "Gone Gardner" in dms[0].text  # the name Slack knows
    body = str(dms[0].blocks)
    assert "Portal &lt;beta&gt; &amp; launch" in body and "portal-beta" in body
    with Session(services.engine) as session:
        [alert] = session.exec(select(Alert).where(Alert.kind == "owner_unreachable"))
    assert alert.state == AlertState.OPEN and alert.subject.startswith("person:")


def test_reactivated_owner_resolves_the_alert_and_a_new_deactivation_reports_again(
    services, standin
) -> None:
    _seed(services.engine)
    _sync(services, NOW)
    standin.workspace.users["UGONE"].deleted = False
    _sync(services, NOW + timedelta(days=1))
    with Session(services.engine) as session:
        [alert] = session.exec(select(Alert).where(Alert.kind == "owner_unreachable"))
        assert alert.state == AlertState.RESOLVED and alert.open_key is None
    assert _people(services.engine)["gone@northwind.example"].active is True
    standin.workspace.users["UGONE"].deleted = True
    _sync(services, NOW + timedelta(days=2))
    assert len([m for m in standin.messages("UCOO") if "deactivated" in m.text]) == 2


def test_channels_resolve_and_problems_are_clear(services, standin) -> None:
    _seed(services.engine)
    report, _ = _sync(services, NOW)
    with Session(services.engine) as session:
        [team] = session.exec(select(Team))
    assert team.channel_id == "CDELIVERY"
    problems = {p.ref: p.problem for p in report.channel_problems}
    assert problems == {"#random": "not_member"}
    [dm] = [m for m in standin.messages("UCOO") if "not a member" in m.text]
    assert "<#CRANDOM>" in str(dm.blocks) and "alerts" in str(dm.blocks)
    _sync(services, NOW + timedelta(hours=1))
    assert len([m for m in standin.messages("UCOO") if "not a member" in m.text]) == 1


def test_missing_and_archived_channels(services, standin) -> None:
    _seed(services.engine, team_channel="#no-such-channel")
    with Session(services.engine) as session:
        factories.plan_settings(session, decisions_channel="COLD", alerts_channel=None)
        session.commit()
    report, _ = _sync(services, NOW)
    assert {p.ref: p.problem for p in report.channel_problems} == {
        "#no-such-channel": "not_found",
        "COLD": "archived",
    }
    with Session(services.engine) as session:
        [team] = session.exec(select(Team))
    assert team.channel_id is None


def test_no_admin_means_leaders_hear_it(services, standin) -> None:
    _seed(services.engine)
    with Session(services.engine) as session:
        admin = session.exec(select(Person).where(Person.slack_id == "UCOO")).one()
        admin.is_admin = False
        session.add(Person(slack_id="UCFO", is_leader=True))
        session.commit()
    _sync(services, NOW)
    assert any("deactivated" in m.text for m in standin.messages("UCFO"))
    assert standin.messages("UCOO") == []


def test_an_admin_dm_failing_does_not_stop_the_sync(services, standin) -> None:
    _seed(services.engine)
    standin.fail_next("chat.postMessage", status=200, error="channel_not_found", times=5)
    _report, detection = _sync(services, NOW)
    assert detection.told == 0
    assert _people(services.engine)["ALICE@northwind.example"].slack_id == "UALICE"


def test_owner_without_a_slack_account_is_reported(services, standin) -> None:
    _seed(services.engine, owner_email="left-years-ago@northwind.example")
    report, _ = _sync(services, NOW)
    assert [o.reason for o in report.unreachable_owners] == ["not_in_slack"]
    [dm] = [m for m in standin.messages("UCOO") if "no Slack account" in m.text]
    assert "Former Owner" in dm.text


def test_people_imported_since_the_sync_are_looked_up_once(services, standin) -> None:
    from bot.directory import resolve_new_people

    with Session(services.engine) as session:
        session.add_all(
            [Person(email="bob@northwind.example"), Person(email="stranger@elsewhere.example")]
        )
        session.commit()
    assert resolve_new_people(services, NOW) == 1
    people = _people(services.engine)
    assert (people["bob@northwind.example"].slack_id, people["bob@northwind.example"].tz) == (
        "UBOB",
        "America/Los_Angeles",
    )
    assert people["stranger@elsewhere.example"].synced_at == NOW
    assert resolve_new_people(services, NOW + timedelta(minutes=1)) == 0
    assert len(standin.calls("users.lookupByEmail")) == 2  # asked once each, then never again
    assert standin.calls("users.list") == []
