"""The one rule of a dependency's state, called with an explicit `now`: transitions and bookkeeping."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.dependencies.rules import (
    REASON_MAX,
    DependencyAction,
    DependencyProblem,
    buttons_for,
    check_alternative_date,
    check_reason,
    created_values,
    override,
    plan_change,
    renewed_values,
)
from bot.errors import NotFound, UserError
from storage.models import Dependency

NOW = datetime(2027, 1, 8, 15, tzinfo=UTC)
EARLIER = datetime(2027, 1, 5, 15, tzinfo=UTC)
A = DependencyAction


def dep(state: str = "requested", **fields: object) -> Dependency:
    return Dependency(
        id=7,
        key="support-training",
        initiative_id=1,
        provider_team_id=2,
        need="Support staff trained",
        needed_by=date(2027, 1, 25),
        state=state,
        **fields,
    )


def code(caught: pytest.ExceptionInfo[UserError]) -> DependencyProblem:
    [problem] = caught.value.problems
    return problem.code  # type: ignore[return-value]


def test_acknowledge_records_who_and_when():
    change = plan_change(dep(), A.ACKNOWLEDGE, now=NOW, by_person_id=5)
    assert change is not None and (change.before, change.after) == ("requested", "acknowledged")
    assert change.values["acknowledged_at"] == NOW and change.values["acknowledged_by_id"] == 5
    assert change.values["state_changed_by_id"] == 5


def test_repeats_change_nothing_and_are_no_error():
    assert plan_change(dep("acknowledged"), A.ACKNOWLEDGE, now=NOW, by_person_id=5) is None
    assert plan_change(dep("delivered"), A.DELIVER, now=NOW, by_person_id=5) is None
    blocked = dep("blocked", note="Booked", alternative_date=date(2027, 2, 8))
    assert (
        plan_change(
            blocked,
            A.CANT_MAKE_IT,
            now=NOW,
            by_person_id=5,
            reason="Booked",
            alternative_date=date(2027, 2, 8),
        )
        is None
    )
    assert plan_change(dep("at_risk"), A.REPORT_LATE, now=NOW, by_person_id=1) is None
    assert plan_change(dep("blocked"), A.REPORT_LATE, now=NOW, by_person_id=1) is None
    assert plan_change(dep("acknowledged"), A.CLEAR_LATE, now=NOW, by_person_id=1) is None


@pytest.mark.parametrize(
    ("state", "action", "expected"),
    [
        ("requested", A.DELIVER, DependencyProblem.NOT_ACKNOWLEDGED),
        ("delivered", A.ACKNOWLEDGE, DependencyProblem.ALREADY_DELIVERED),
        ("delivered", A.CANT_MAKE_IT, DependencyProblem.ALREADY_DELIVERED),
        ("delivered", A.REPORT_LATE, DependencyProblem.ALREADY_DELIVERED),
        ("blocked", A.ACKNOWLEDGE, DependencyProblem.NOT_ALLOWED),
        ("at_risk", A.ACKNOWLEDGE, DependencyProblem.NOT_ALLOWED),
    ],
)
def test_not_allowed_transitions_are_typed_problems(state, action, expected):
    with pytest.raises(UserError) as caught:
        plan_change(dep(state), action, now=NOW, by_person_id=5, reason="r", field="block")
    assert code(caught) == expected
    assert caught.value.problems[0].field == "block"


def test_gone_and_archived():
    with pytest.raises(NotFound):
        plan_change(None, A.ACKNOWLEDGE, now=NOW, by_person_id=5)  # type: ignore[arg-type]
    with pytest.raises(UserError) as caught:
        plan_change(dep(archived=True), A.ACKNOWLEDGE, now=NOW, by_person_id=5)
    assert code(caught) == DependencyProblem.ARCHIVED


def test_cant_make_it_keeps_the_acknowledgement_and_records_reason_and_date():
    acknowledged = dep("acknowledged", acknowledged_at=EARLIER, acknowledged_by_id=3)
    change = plan_change(
        acknowledged,
        A.CANT_MAKE_IT,
        now=NOW,
        by_person_id=5,
        reason="Trainers booked",
        alternative_date=date(2027, 2, 8),
    )
    assert change is not None and change.after == "blocked"
    assert change.values["note"] == "Trainers booked"
    assert change.values["alternative_date"] == date(2027, 2, 8)
    assert "acknowledged_at" not in change.values  # kept as it was


def test_deliver_from_blocked_clears_the_reason():
    blocked = dep("blocked", note="Booked", alternative_date=date(2027, 2, 8))
    change = plan_change(blocked, A.DELIVER, now=NOW, by_person_id=5)
    assert change is not None
    assert (change.values["note"], change.values["alternative_date"]) == (None, None)
    assert change.values["delivered_at"] == NOW


def test_late_and_back():
    change = plan_change(dep(), A.REPORT_LATE, now=NOW, by_person_id=1, reason="Vendor")
    assert change is not None and (change.after, change.values["note"]) == ("at_risk", "Vendor")
    back = plan_change(
        dep("at_risk", acknowledged_at=EARLIER), A.CLEAR_LATE, now=NOW, by_person_id=1
    )
    assert back is not None and back.after == "acknowledged"
    assert plan_change(dep("at_risk"), A.CLEAR_LATE, now=NOW, by_person_id=1).after == "requested"


def test_the_plan_file_may_set_any_state_with_consistent_bookkeeping():
    delivered = override(dep(), "delivered", now=NOW)
    assert delivered is not None and delivered.values["delivered_at"] == NOW
    back = override(
        dep("delivered", delivered_at=EARLIER, acknowledged_at=EARLIER, acknowledged_by_id=3),
        "requested",
        now=NOW,
    )
    assert back is not None
    assert (
        back.values["delivered_at"],
        back.values["acknowledged_at"],
        back.values["acknowledged_by_id"],
    ) == (None, None, None)
    acknowledged = override(
        dep("blocked", acknowledged_at=EARLIER, note="x"), "acknowledged", now=NOW
    )
    assert acknowledged is not None and acknowledged.values["note"] is None
    assert "acknowledged_at" not in acknowledged.values  # the first acknowledgement stands
    assert override(dep("acknowledged", acknowledged_at=EARLIER), "acknowledged", now=NOW) is None
    with pytest.raises(ValueError):
        override(dep(), "lost", now=NOW)


def test_created_and_renewed_bookkeeping():
    assert created_values("requested", now=NOW)["state_changed_at"] is None
    created = created_values("acknowledged", now=NOW)
    assert (created["acknowledged_at"], created["acknowledged_by_id"]) == (NOW, None)
    asked = dep("acknowledged", acknowledged_at=EARLIER, request_revision=3, requested_at=EARLIER)
    renewed = renewed_values(asked, state=None, now=NOW)
    assert renewed["request_revision"] == 4 and renewed["state"] == "requested"
    assert renewed["requested_at"] is None and renewed["ack_due_at"] is None
    assert renewed["acknowledged_at"] is None
    kept = renewed_values(asked, state="blocked", now=NOW)
    assert kept["state"] == "blocked" and kept["acknowledged_at"] is None


@pytest.mark.parametrize(
    ("state", "archived", "shown"),
    [
        ("requested", False, (A.ACKNOWLEDGE, A.CANT_MAKE_IT)),
        ("acknowledged", False, (A.CANT_MAKE_IT, A.DELIVER)),
        ("at_risk", False, (A.CANT_MAKE_IT, A.DELIVER)),
        ("blocked", False, (A.CANT_MAKE_IT, A.DELIVER)),
        ("delivered", False, ()),
        ("requested", True, ()),
    ],
)
def test_buttons_by_state(state, archived, shown):
    assert buttons_for(state, archived=archived) == shown


def test_reason_and_date_checks():
    assert check_reason("  Booked  ", "r") == ("Booked", [])
    for bad in (None, "", "   "):
        assert check_reason(bad, "r")[1][0].code == DependencyProblem.REASON_MISSING
    too_long = check_reason("x" * (REASON_MAX + 1), "r")[1][0]
    assert (too_long.code, too_long.params["max"]) == (DependencyProblem.REASON_TOO_LONG, 1000)
    today = date(2027, 1, 8)
    assert check_alternative_date("2027-01-08", today=today, field="d") == (today, [])
    assert check_alternative_date("2027-01-07", today=today, field="d")[1][0].code == (
        DependencyProblem.DATE_IN_PAST
    )
    for garbage in (None, "", "2027-02-30", "tomorrow", "2027-1-8x"):
        found = check_alternative_date(garbage, today=today, field="d")[1]
        assert found[0].code == DependencyProblem.NOT_A_DATE and found[0].field == "d"
