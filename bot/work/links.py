"""A milestone's work links (canonical texts, bot/planfile/schema.py) and which items they take in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote


class ItemLike(Protocol):
    """What a link reads of an item (a stored `WorkItem` or a delivery's `WorkUpdate`)."""

    @property
    def tracker(self) -> str: ...
    @property
    def project(self) -> str: ...
    @property
    def milestone(self) -> str | None: ...
    @property
    def epic(self) -> str | None: ...
    @property
    def labels(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class Link:
    tracker: str  # github | jira
    project: str  # owner/name, or a Jira project key
    selector: str  # milestone | label | epic
    name: str

    @classmethod
    def parse(cls, canonical: str) -> Link:
        head, _, tail = canonical.partition(" ")
        tracker, _, project = head.partition(":")
        selector, _, name = tail.partition("=")
        return cls(tracker, project, selector, name)

    def takes(self, item: ItemLike) -> bool:
        """Whether this link covers the item (repository names compare as GitHub does: any case)."""
        if item.tracker != self.tracker:
            return False
        same_project = (
            item.project.lower() == self.project.lower()
            if self.tracker == "github"
            else item.project == self.project
        )
        if not same_project:
            return False
        if self.selector == "label":
            return self.name in item.labels
        if self.selector == "milestone":
            return item.milestone == self.name
        return item.epic == self.name

    def url(self) -> str | None:
        """The tracker's own view of the linked work (GitHub's; a Jira site is not known here)."""
        if self.tracker != "github":
            return None
        query = quote(f'{self.selector}:"{self.name}"', safe="")
        return f"https://github.com/{self.project}/issues?q={query}"
