"""Every dependency message and view, rendered at its longest, fits Block Kit and escapes plan text."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.dependencies.messages import (
    cant_make_it_view,
    form_message_view,
    owner_notice,
    request_message,
)
from bot.dependencies.rules import REASON_MAX, DependencyAction, DependencyProblem
from bot.errors import NotAllowed
from bot.problems import problem
from handlers.errors import say_error
from standin.validation import check_blocks, check_text, check_view
from storage.dependencies import RequestView
from storage.models import (
    Dependency,
    DependencyRequest,
    DependencyState,
    Initiative,
    Milestone,
    Person,
    Team,
)

NOW = datetime(2027, 1, 8, 15, tzinfo=UTC)
NASTY = "<!channel> & <@U0EVIL> <https://evil.example|x> *bold* "


def view(state: str, *, revision: int = 1, current: int = 1, archived: bool = False) -> RequestView:
    long = (NASTY * 400)[:4000]
    person = Person(id=1, slack_id="UALICE", name="Alice")
    return RequestView(
        request=DependencyRequest(id=1, dependency_id=7, revision=revision, claimed_at=NOW),
        dependency=Dependency(
            id=7,
            key="k",
            initiative_id=1,
            provider_team_id=2,
            need=long,
            needed_by=date(2027, 1, 25),
            state=state,
            request_revision=current,
            archived=archived,
            ack_due_at=NOW,
            acknowledged_at=NOW,
            state_changed_at=NOW,
            delivered_at=NOW,
            note=long[:REASON_MAX],
            alternative_date=date(2027, 2, 8),
        ),
        initiative=Initiative(id=1, key="i", title=long, owner_id=1, team_id=1, active_since=NOW),
        owner=person,
        requesting_team=Team(id=1, key="it", name=long),
        provider=Team(id=2, key="m", name=long),
        milestone=Milestone(
            id=3,
            key="m",
            initiative_id=1,
            title=long,
            due=date(2027, 2, 1),
            original_due=date(2027, 2, 1),
        ),
        acknowledged_by=Person(id=2, slack_id="UBOB"),
        changed_by=None if state == "blocked" else Person(id=3, name=long),
        fingerprint="f",
    )


def checked_message(rendered) -> str:
    check_blocks(rendered.blocks)
    check_text(rendered.text, has_blocks=True)
    text = str(rendered.blocks) + rendered.text
    for control in ("<!channel>", "<@U0EVIL>", "<https://"):
        assert control not in text
    return text


@pytest.mark.parametrize("state", list(DependencyState))
@pytest.mark.parametrize("archived", [False, True])
def test_every_request_state_fits_and_escapes(state, archived):
    checked_message(request_message(view(state, archived=archived), plan_tz="America/New_York"))


def test_the_replaced_request():
    text = checked_message(request_message(view("acknowledged", current=2), plan_tz=None))
    assert "replaced" in text


@pytest.mark.parametrize(
    "action",
    [DependencyAction.ACKNOWLEDGE, DependencyAction.CANT_MAKE_IT, DependencyAction.DELIVER],
)
def test_every_owner_notice_fits_and_escapes(action):
    checked_message(owner_notice(view("blocked"), action, plan_tz="America/New_York"))


def test_the_form_and_its_refusal_fit():
    check_view(cant_make_it_view(123456789012), kind="modal")
    refused = NotAllowed(problem(DependencyProblem.NOT_PROVIDER, team=NASTY * 100))
    shown = form_message_view(say_error(refused))
    check_view(shown, kind="modal")
    assert "<!channel>" not in str(shown) and "&lt;!channel&gt;" in str(shown)
