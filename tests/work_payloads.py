"""Webhook payloads shaped as GitHub and Jira Cloud send them (fields as their webhook docs and
the `@octokit/webhooks-examples` payloads show; trimmed to a realistic subset, our own values)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from bot.work.signatures import sign

GITHUB_SECRET = "github-webhook-test-secret"
JIRA_SECRET = "jira-webhook-test-secret"
REPO = "harbor/claims-app"


def _stamp(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _user(login: str) -> dict[str, Any]:
    return {"login": login, "id": 21031067, "type": "User", "site_admin": False}


def github_item(
    number: int,
    *,
    updated: datetime,
    title: str = "Claims intake form",
    state: str = "open",
    labels: tuple[str, ...] = (),
    milestone: str | None = None,
    closed: datetime | None = None,
    assignee: str | None = "codertocat",
) -> dict[str, Any]:
    return {
        "url": f"https://api.github.com/repos/{REPO}/issues/{number}",
        "html_url": f"https://github.com/{REPO}/issues/{number}",
        "id": 444500041 + number,
        "node_id": "MDU6SXNzdWU0NDQ1MDAwNDE=",
        "number": number,
        "title": title,
        "user": _user("codertocat"),
        "labels": [
            {"id": 1362934389, "name": name, "color": "d73a4a", "default": False} for name in labels
        ],
        "state": state,
        "locked": False,
        "assignee": _user(assignee) if assignee else None,
        "assignees": [_user(assignee)] if assignee else [],
        "milestone": {"number": 1, "title": milestone, "state": "open"} if milestone else None,
        "comments": 0,
        "created_at": "2026-11-02T10:00:00Z",
        "updated_at": _stamp(updated),
        "closed_at": _stamp(closed),
        "author_association": "OWNER",
        "body": "Let customers file a claim online.",
    }


def _repository(full_name: str = REPO) -> dict[str, Any]:
    owner, name = full_name.split("/")
    return {
        "id": 186853002,
        "name": name,
        "full_name": full_name,
        "private": False,
        "owner": _user(owner),
        "html_url": f"https://github.com/{full_name}",
    }


def github_issues(action: str, item: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "action": action,
        "issue": item,
        "repository": _repository(),
        "sender": _user("codertocat"),
        **extra,
    }


def github_pull_request(action: str, item: dict[str, Any]) -> dict[str, Any]:
    return {
        "action": action,
        "number": item["number"],
        "pull_request": {**item, "merged_at": item["closed_at"], "draft": False},
        "repository": _repository(),
        "sender": _user("codertocat"),
    }


def github_milestone(action: str, title: str, *, renamed_from: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "action": action,
        "milestone": {"number": 1, "title": title, "state": "open", "open_issues": 3},
        "repository": _repository(),
        "sender": _user("codertocat"),
    }
    if renamed_from is not None:
        body["changes"] = {"title": {"from": renamed_from}}
    return body


def github_headers(
    event: str, body: bytes, *, delivery: str | None = None, secret: str = GITHUB_SECRET
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "292430182",
        "X-Hub-Signature-256": sign(secret, body),
        "User-Agent": "GitHub-Hookshot/044aadd",
    }


def jira_issue(
    event: str,
    key: str,
    *,
    updated: datetime,
    epic: str | None = None,
    labels: tuple[str, ...] = (),
    done: bool = False,
    summary: str = "Adjuster dashboard",
) -> dict[str, Any]:
    stamp = updated.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    project = key.split("-")[0]
    return {
        "timestamp": int(updated.timestamp() * 1000),
        "webhookEvent": event,
        "issue_event_type_name": "issue_generic",
        "user": {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Mia Krystof"},
        "issue": {
            "id": "10042",
            "self": "https://harbor.atlassian.net/rest/api/2/issue/10042",
            "key": key,
            "fields": {
                "summary": summary,
                "issuetype": {"name": "Story", "subtask": False},
                "project": {"id": "10000", "key": project, "name": "Claims"},
                "status": {
                    "name": "Done" if done else "In Progress",
                    "statusCategory": {"key": "done" if done else "indeterminate"},
                },
                "labels": list(labels),
                "parent": {"id": "10001", "key": epic} if epic else None,
                "assignee": {"displayName": "Mia Krystof"},
                "resolutiondate": stamp if done else None,
                "updated": stamp,
                "created": "2026-11-02T10:00:00.000+0000",
            },
        },
        "changelog": {"id": "10100", "items": []},
    }


def jira_headers(
    body: bytes, *, delivery: str | None = None, secret: str = JIRA_SECRET
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Atlassian-Webhook-Identifier": delivery or str(uuid.uuid4()),
        "X-Hub-Signature": sign(secret, body),
        "User-Agent": "Atlassian Webhook HTTP Client",
    }


def encoded(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()
