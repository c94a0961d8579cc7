"""The trackers' webhook payloads, read with typed models that take what PlanPulse needs.

GitHub: `issues`, `pull_request` and `milestone` events (and `ping`), as its webhook docs and
the `@octokit/webhooks-examples` payloads shape them. Jira Cloud: `jira:issue_created`,
`jira:issue_updated`, `jira:issue_deleted`; an issue belongs to an epic through `fields.parent`.
Everything else in a payload is ignored; a payload of another shape is `Unreadable`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

GITHUB = "github"
JIRA = "jira"


@dataclass(frozen=True)
class WorkUpdate:
    """One issue or pull request as the tracker has it now."""

    tracker: str
    project: str
    ref: str
    kind: str  # issue | pull_request
    title: str
    url: str | None
    closed: bool
    labels: tuple[str, ...]
    milestone: str | None
    epic: str | None
    assignee: str | None
    closed_at: datetime | None
    updated_at: datetime
    deleted: bool = False


@dataclass(frozen=True)
class MilestoneChange:
    """A GitHub milestone renamed or deleted: the items under it follow."""

    project: str
    title: str
    renamed_from: str | None
    deleted: bool


@dataclass(frozen=True)
class Ping:
    """GitHub's `ping` when a webhook is added."""


@dataclass(frozen=True)
class Ignored:
    """An event or action that says nothing about work (a comment, a repository event...)."""

    reason: str


@dataclass(frozen=True)
class Unreadable:
    """A payload of an unexpected shape: logged and answered 400, never 5xx."""

    reason: str


Parsed = WorkUpdate | MilestoneChange | Ping | Ignored | Unreadable

_OFFSET = re.compile(r"([+-]\d\d)(\d\d)$")


def _iso(value: Any) -> Any:
    # Jira writes "2027-01-04T10:00:00.000+0000": the offset without its colon.
    return _OFFSET.sub(r"\1:\2", value) if isinstance(value, str) else value


Moment = Annotated[datetime, BeforeValidator(_iso)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Named(_Model):
    name: str


class _Login(_Model):
    login: str


class _Title(_Model):
    title: str


class _Repository(_Model):
    full_name: str


class _GithubItem(_Model):
    number: int
    title: str = ""
    state: str
    html_url: str | None = None
    labels: list[_Named] = []
    milestone: _Title | None = None
    assignee: _Login | None = None
    closed_at: Moment | None = None
    updated_at: Moment


class _IssuesEvent(_Model):
    action: str
    issue: _GithubItem
    repository: _Repository


class _PullRequestEvent(_Model):
    action: str
    pull_request: _GithubItem
    repository: _Repository


class _From(_Model):
    old: str = Field("", alias="from")  # `from` is a Python keyword


class _MilestoneChanges(_Model):
    title: _From | None = None


class _MilestoneEvent(_Model):
    action: str
    milestone: _Title
    changes: _MilestoneChanges | None = None
    repository: _Repository


def _github_update(item: _GithubItem, project: str, kind: str, *, deleted: bool) -> WorkUpdate:
    return WorkUpdate(
        tracker=GITHUB,
        project=project,
        ref=str(item.number),
        kind=kind,
        title=item.title,
        url=item.html_url,
        closed=item.state == "closed",
        labels=tuple(label.name for label in item.labels),
        milestone=item.milestone.title if item.milestone else None,
        epic=None,
        assignee=item.assignee.login if item.assignee else None,
        closed_at=item.closed_at,
        updated_at=item.updated_at,
        deleted=deleted,
    )


def parse_github(event: str | None, body: Any) -> Parsed:
    """A GitHub delivery (its `X-GitHub-Event` and JSON body) as what it says about work."""
    try:
        if event == "ping":
            return Ping()
        if event == "issues":
            issues = _IssuesEvent.model_validate(body)
            return _github_update(
                issues.issue,
                issues.repository.full_name,
                "issue",
                deleted=issues.action == "deleted",
            )
        if event == "pull_request":
            pull = _PullRequestEvent.model_validate(body)
            return _github_update(
                pull.pull_request, pull.repository.full_name, "pull_request", deleted=False
            )
        if event == "milestone":
            milestone = _MilestoneEvent.model_validate(body)
            if milestone.action not in ("edited", "deleted"):
                return Ignored(f"milestone {milestone.action}")
            renamed = milestone.changes.title if milestone.changes else None
            return MilestoneChange(
                project=milestone.repository.full_name,
                title=milestone.milestone.title,
                renamed_from=renamed.old if renamed and renamed.old else None,
                deleted=milestone.action == "deleted",
            )
    except ValidationError as exc:
        return Unreadable(f"{event}: {exc.error_count()} field(s) of an unexpected shape")
    return Ignored(f"event {event}")


class _Key(_Model):
    key: str


class _StatusCategory(_Model):
    key: str


class _Status(_Model):
    statusCategory: _StatusCategory


class _Person(_Model):
    displayName: str = ""


class _JiraFields(_Model):
    summary: str = ""
    status: _Status | None = None
    labels: list[str] = []
    parent: _Key | None = None
    assignee: _Person | None = None
    resolutiondate: Moment | None = None
    updated: Moment
    project: _Key


class _JiraIssue(_Model):
    key: str
    self: str | None = None
    fields: _JiraFields


class _JiraEvent(_Model):
    webhookEvent: str
    issue: _JiraIssue


JIRA_EVENTS = ("jira:issue_created", "jira:issue_updated", "jira:issue_deleted")


def _browse_url(issue: _JiraIssue) -> str | None:
    """The issue's page: the site of its REST `self` link, then /browse/KEY."""
    if not issue.self or "/rest/" not in issue.self:
        return None
    return f"{issue.self.split('/rest/', 1)[0]}/browse/{issue.key}"


def parse_jira(body: Any) -> Parsed:
    """A Jira Cloud delivery as what it says about work."""
    event = body.get("webhookEvent") if isinstance(body, dict) else None
    if event not in JIRA_EVENTS:
        return Ignored(f"event {event}") if isinstance(event, str) else Unreadable("no event")
    try:
        parsed = _JiraEvent.model_validate(body)
    except ValidationError as exc:
        return Unreadable(f"{event}: {exc.error_count()} field(s) of an unexpected shape")
    issue, fields = parsed.issue, parsed.issue.fields
    closed = fields.status is not None and fields.status.statusCategory.key == "done"
    return WorkUpdate(
        tracker=JIRA,
        project=fields.project.key,
        ref=issue.key,
        kind="issue",
        title=fields.summary,
        url=_browse_url(issue),
        closed=closed,
        labels=tuple(fields.labels),
        milestone=None,
        epic=fields.parent.key if fields.parent else None,
        assignee=fields.assignee.displayName if fields.assignee else None,
        closed_at=fields.resolutiondate if closed else None,
        updated_at=fields.updated,
        deleted=event == "jira:issue_deleted",
    )
