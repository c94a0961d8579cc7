"""POST /webhooks/github and /webhooks/jira through the real server: signatures, redeliveries,
unlinked work, labels, milestones, reopening, out-of-order updates, odd shapes."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session, select

from bot.settings import load_settings
from storage.models import WebhookDelivery, WorkItem
from tests import factories as f
from tests.slack_harness import SIGNING_SECRET, row_counts
from tests.work_payloads import (
    GITHUB_SECRET,
    JIRA_SECRET,
    REPO,
    encoded,
    github_headers,
    github_issues,
    github_item,
    github_milestone,
    github_pull_request,
    jira_headers,
    jira_issue,
)

T0 = datetime(2027, 1, 4, 15, tzinfo=UTC)
LINKS = [
    f"github:{REPO} milestone=Pilot",
    f"github:{REPO} label=pilot",
    "jira:CLAIMS epic=CLAIMS-120",
    "jira:CLAIMS label=pilot",
]


@pytest.fixture
def settings(database_url, standin):
    return load_settings(
        database_url=database_url,
        slack_bot_token=standin.workspace.bot_token,
        slack_signing_secret=SIGNING_SECRET,
        slack_app_token=None,
        slack_api_url=standin.api_url,
        github_webhook_secret=GITHUB_SECRET,
        jira_webhook_secret=JIRA_SECRET,
    )


@pytest.fixture
def linked(bot):
    return _linked(bot.services.engine)


@pytest.fixture
def linked_plain(services):
    return _linked(services.engine)


def _linked(engine) -> int | None:
    with Session(engine) as session:
        f.plan_settings(session)
        owner = f.person(session, slack_id="UALICE")
        team = f.team(session, channel_id="CDELIVERY")
        initiative = f.initiative(session, owner=owner, team=team, key="claims")
        milestone = f.milestone(
            session, initiative=initiative, key="pilot", due=date(2027, 3, 1), work=LINKS
        )
        session.commit()
        return milestone.id


def github(bot, event: str, body: dict, **headers_args):
    raw = encoded(body)
    headers = github_headers(event, raw, **headers_args)
    return bot.http.post("/webhooks/github", content=raw, headers=headers)


def jira(bot, body: dict, **headers_args):
    raw = encoded(body)
    return bot.http.post("/webhooks/jira", content=raw, headers=jira_headers(raw, **headers_args))


def items(bot) -> dict[str, WorkItem]:
    with Session(bot.services.engine) as session:
        return {i.ref: i for i in session.exec(select(WorkItem)).all()}


def test_a_linked_issue_is_stored_and_updated(bot, linked) -> None:
    reply = github(
        bot, "issues", github_issues("opened", github_item(7, updated=T0, milestone="Pilot"))
    )
    assert reply.status_code == 200 and reply.json() == {"outcome": "created"}
    closed = github_item(
        7,
        updated=T0 + timedelta(hours=1),
        state="closed",
        milestone="Pilot",
        closed=T0 + timedelta(hours=1),
    )
    assert github(bot, "issues", github_issues("closed", closed)).json() == {"outcome": "updated"}
    stored = items(bot)["7"]
    assert (stored.project, stored.closed, stored.milestone, stored.assignee) == (
        REPO,
        True,
        "Pilot",
        "codertocat",
    )
    assert stored.closed_at == T0 + timedelta(hours=1)


def test_pull_requests_count_too(bot, linked) -> None:
    pull = github_item(12, updated=T0, labels=("pilot",))
    assert github(bot, "pull_request", github_pull_request("opened", pull)).json() == {
        "outcome": "created"
    }
    assert items(bot)["12"].kind == "pull_request"


def _tampered(bot, headers: dict[str, str], raw: bytes) -> int:
    return bot.http.post("/webhooks/github", content=raw, headers=headers).status_code


def test_bad_signatures_are_refused_and_change_nothing(bot, linked) -> None:
    raw = encoded(github_issues("opened", github_item(7, updated=T0, milestone="Pilot")))
    good = github_headers("issues", raw)
    before = row_counts(bot.services.engine)
    missing = {k: v for k, v in good.items() if k != "X-Hub-Signature-256"}
    legacy = {
        **missing,
        "X-Hub-Signature": "sha1="
        + hmac.new(GITHUB_SECRET.encode(), raw, hashlib.sha1).hexdigest(),
    }
    other_body = encoded(github_issues("opened", github_item(8, updated=T0, milestone="Pilot")))
    replayed = {
        **good,
        "X-Hub-Signature-256": github_headers("issues", other_body)["X-Hub-Signature-256"],
    }
    wrong_secret = github_headers("issues", raw, secret="another-secret")
    assert _tampered(bot, missing, raw) == 401
    assert _tampered(bot, legacy, raw) == 401
    assert _tampered(bot, replayed, raw) == 401
    assert _tampered(bot, good, raw.replace(b"Claims", b"Clains")) == 401  # altered after signing
    assert _tampered(bot, wrong_secret, raw) == 401
    assert row_counts(bot.services.engine) == before
    assert _tampered(bot, good, raw) == 200


def test_jira_signed_with_another_secret_is_refused(bot, linked) -> None:
    raw = encoded(jira_issue("jira:issue_created", "CLAIMS-7", updated=T0, epic="CLAIMS-120"))
    for secret in ("", "another-secret"):
        reply = bot.http.post(
            "/webhooks/jira", content=raw, headers=jira_headers(raw, secret=secret)
        )
        assert reply.status_code == 401
    assert items(bot) == {}


def test_a_tracker_whose_secret_is_unset_is_refused(services, linked_plain) -> None:
    import anyio
    import httpx

    from bot.entry.server import build_asgi_app

    unset = replace(
        services,
        settings=services.settings.model_copy(update={"github_webhook_secret": None}),
    )
    raw = encoded(github_issues("opened", github_item(7, updated=T0, milestone="Pilot")))
    transport = httpx.ASGITransport(app=build_asgi_app(unset))

    async def post() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
            return await client.post(
                "/webhooks/github", content=raw, headers=github_headers("issues", raw)
            )

    assert anyio.run(post).status_code == 401


def test_a_redelivery_is_not_applied_again_whatever_its_body(bot, linked) -> None:
    first = github_issues("opened", github_item(7, updated=T0, milestone="Pilot"))
    assert github(bot, "issues", first, delivery="d-1").json() == {"outcome": "created"}
    later = github_issues(
        "closed", github_item(7, updated=T0 + timedelta(days=1), state="closed", milestone="Pilot")
    )
    assert github(bot, "issues", later, delivery="d-1").json() == {"outcome": "duplicate"}
    assert items(bot)["7"].closed is False
    with Session(bot.services.engine) as session:
        assert len(session.exec(select(WebhookDelivery)).all()) == 1


def test_work_the_plan_does_not_link_is_not_stored(bot, linked) -> None:
    other = github_issues("opened", github_item(9, updated=T0, milestone="GA", labels=("bug",)))
    assert github(bot, "issues", other).json() == {"outcome": "unlinked"}
    foreign = jira_issue("jira:issue_created", "OPS-3", updated=T0, epic="OPS-1")
    assert jira(bot, foreign).json() == {"outcome": "unlinked"}
    assert items(bot) == {}


def test_a_label_added_then_removed(bot, linked) -> None:
    plain = github_item(5, updated=T0)
    assert github(bot, "issues", github_issues("opened", plain)).json() == {"outcome": "unlinked"}
    labeled = github_item(5, updated=T0 + timedelta(minutes=5), labels=("pilot",))
    assert github(bot, "issues", github_issues("labeled", labeled)).json() == {"outcome": "created"}
    unlabeled = github_item(5, updated=T0 + timedelta(minutes=10))
    assert github(bot, "issues", github_issues("unlabeled", unlabeled)).json() == {
        "outcome": "updated"
    }
    assert items(bot)["5"].labels == []  # kept, and no longer counted for the milestone


def test_an_issue_moved_between_milestones_and_a_milestone_renamed(bot, linked) -> None:
    github(bot, "issues", github_issues("opened", github_item(3, updated=T0, milestone="Pilot")))
    moved = github_item(3, updated=T0 + timedelta(hours=1), milestone="GA")
    assert github(bot, "issues", github_issues("milestoned", moved)).json() == {
        "outcome": "updated"
    }
    assert items(bot)["3"].milestone == "GA"
    renamed = github_milestone("edited", "General availability", renamed_from="GA")
    assert github(bot, "milestone", renamed).json() == {"outcome": "renamed"}
    assert items(bot)["3"].milestone == "General availability"


def test_a_closed_issue_reopened(bot, linked) -> None:
    closed = github_item(4, updated=T0, state="closed", labels=("pilot",), closed=T0)
    github(bot, "issues", github_issues("closed", closed))
    reopened = github_item(4, updated=T0 + timedelta(hours=2), labels=("pilot",))
    assert github(bot, "issues", github_issues("reopened", reopened)).json() == {
        "outcome": "updated"
    }
    stored = items(bot)["4"]
    assert (stored.closed, stored.closed_at) == (False, None)


def test_an_older_update_after_a_newer_one_does_not_win(bot, linked) -> None:
    newer = github_item(
        6, updated=T0 + timedelta(hours=3), state="closed", milestone="Pilot", closed=T0
    )
    older = github_item(6, updated=T0, milestone="Pilot", title="Old title")
    assert github(bot, "issues", github_issues("closed", newer)).json() == {"outcome": "created"}
    assert github(bot, "issues", github_issues("edited", older)).json() == {"outcome": "stale"}
    assert items(bot)["6"].closed is True and items(bot)["6"].title == "Claims intake form"


def test_jira_created_updated_done_and_deleted(bot, linked) -> None:
    created = jira_issue("jira:issue_created", "CLAIMS-7", updated=T0, epic="CLAIMS-120")
    assert jira(bot, created).json() == {"outcome": "created"}
    done = jira_issue(
        "jira:issue_updated",
        "CLAIMS-7",
        updated=T0 + timedelta(hours=1),
        epic="CLAIMS-120",
        done=True,
    )
    assert jira(bot, done, delivery="j-2").json() == {"outcome": "updated"}
    assert jira(bot, done, delivery="j-2").json() == {"outcome": "duplicate"}
    stored = items(bot)["CLAIMS-7"]
    assert (stored.closed, stored.epic) == (True, "CLAIMS-120")
    assert stored.closed_at == T0 + timedelta(hours=1)
    assert stored.url == "https://harbor.atlassian.net/browse/CLAIMS-7"
    deleted = jira_issue("jira:issue_deleted", "CLAIMS-7", updated=T0 + timedelta(hours=2))
    assert jira(bot, deleted).json() == {"outcome": "deleted"}
    assert items(bot) == {}


def test_ping_and_events_about_nothing(bot, linked) -> None:
    assert github(bot, "ping", {"zen": "Keep it logically awesome.", "hook_id": 1}).json() == {
        "outcome": "pong"
    }
    reply = github(bot, "star", {"action": "created", "repository": {"full_name": REPO}})
    assert reply.status_code == 202
    comment = jira(bot, {"webhookEvent": "comment_created", "comment": {"body": "hi"}})
    assert comment.status_code == 202


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"action": "opened", "repository": {"full_name": "harbor/claims-app"}}', 400),
        (b'{"action": "opened", "issue": {"number": "seven"}}', 400),
        (b"not json at all", 400),
        (b"[1, 2, 3]", 400),
    ],
)
def test_unexpected_shapes_are_4xx_and_change_nothing(bot, linked, body, status) -> None:
    before = row_counts(bot.services.engine)
    reply = bot.http.post("/webhooks/github", content=body, headers=github_headers("issues", body))
    assert reply.status_code == status
    assert row_counts(bot.services.engine) == before


def test_a_jira_payload_of_another_shape_and_an_oversized_body(bot, linked) -> None:
    odd = encoded({"webhookEvent": "jira:issue_updated", "issue": {"key": 7}})
    assert (
        bot.http.post("/webhooks/jira", content=odd, headers=jira_headers(odd)).status_code == 400
    )
    huge = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    reply = bot.http.post("/webhooks/github", content=huge, headers=github_headers("issues", huge))
    assert reply.status_code == 413
    missing_id = {
        k: v for k, v in jira_headers(odd).items() if k != "X-Atlassian-Webhook-Identifier"
    }
    assert bot.http.post("/webhooks/jira", content=odd, headers=missing_id).status_code == 400
