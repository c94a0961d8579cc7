"""The plan file's schema: pydantic models, one per kind of item, documented in docs/PLAN_FILE.md."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from functools import lru_cache
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from bot.planfile.problems import PlanProblemCode as Code
from bot.planfile.problems import PlanValueError
from storage.models import DEFAULT_DIGEST

ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
SLACK_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")
CHANNEL_NAME = re.compile(r"^#[a-z0-9][a-z0-9._-]{0,79}$")
# C0 controls but tab and line breaks, and DEL: what a multi-line YAML or a cell may hold is fine.
CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
READING_EVERY_DAYS = 35  # storage.models.Kpi.reading_every_days has the same default


def _iso_date(value: object) -> date:
    """Dates are real dates or YYYY-MM-DD text; anything else is refused, not guessed: 03/04/2027
    is ambiguous, and a bare number from a spreadsheet would be read as seconds since 1970."""
    if isinstance(value, datetime):
        if value.time() != time(0, 0):
            raise PlanValueError(Code.DATE_WITH_TIME, given=value)
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and ISO_DATE.match(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise PlanValueError(Code.NOT_A_REAL_DATE, given=value.strip()) from None
    raise PlanValueError(Code.NOT_A_DATE, given=value)


def _not_a_flag(value: object) -> object:
    # pydantic reads `yes` / `true` as 1 in a number field; in a plan file that is a slip, not 1.
    if isinstance(value, bool):
        raise PlanValueError(Code.NOT_A_WHOLE_NUMBER, given=value)
    return value


def _key(value: str) -> str:
    if not KEY_PATTERN.match(value):
        raise PlanValueError(Code.NOT_A_KEY, given=value)
    return value


@lru_cache(maxsize=4096)
def _person(value: str) -> str:
    value = value.strip()
    if SLACK_USER_ID.match(value):
        return value
    if EMAIL.match(value):
        return value.lower()  # e-mail addresses are case-insensitive; one spelling per person
    raise PlanValueError(Code.NOT_A_PERSON, given=value)


def _channel(value: str) -> str:
    value = value.strip()
    if SLACK_CHANNEL_ID.match(value) or CHANNEL_NAME.match(value):
        return value
    raise PlanValueError(Code.NOT_A_CHANNEL, given=value)


@lru_cache(maxsize=1024)
def _cron(value: str) -> str:
    # croniter also takes a 6th (seconds) field; the product promises 5-field cron only.
    fields = value.split()
    if len(fields) != 5 or not croniter.is_valid(value):
        raise PlanValueError(Code.NOT_A_CRON, given=value)
    return " ".join(fields)


@lru_cache(maxsize=256)
def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise PlanValueError(Code.NOT_A_TIMEZONE, given=value) from None
    return value


PlanDate = Annotated[date, BeforeValidator(_iso_date)]
WholeNumber = Annotated[int, BeforeValidator(_not_a_flag)]
Key = Annotated[str, AfterValidator(_key)]
PersonRef = Annotated[str, AfterValidator(_person)]
ChannelRef = Annotated[str, AfterValidator(_channel)]
Cron = Annotated[str, AfterValidator(_cron)]
TimeZoneName = Annotated[str, AfterValidator(_timezone)]
Text = Annotated[str, Field(min_length=1, max_length=500)]

T = TypeVar("T")


def _none_is_empty(value: object) -> object:
    # Deleting a list's last item by hand leaves `milestones:` with no value, which YAML reads as
    # null: that is an empty list. A single value or a mapping there is still refused.
    return [] if value is None else value


# The type of every list field (tests/test_planfile_hand_edits.py finds any plain `list`).
ListOf = Annotated[list[T], BeforeValidator(_none_is_empty)]


class Item(BaseModel):
    """Unknown fields are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _typable(cls, value: Any) -> Any:
        """No control characters in any text: nobody means one, Slack shows none, and PostgreSQL
        cannot store a NUL at all (the import would fail half-way instead of being refused)."""
        for text in [value] if isinstance(value, str) else value if isinstance(value, list) else []:
            found = CONTROL_CHARACTER.search(text) if isinstance(text, str) else None
            if found:
                raise PlanValueError(
                    Code.CONTROL_CHARACTER, given=text, character=f"U+{ord(found[0]):04X}"
                )
        return value


class Channels(Item):
    decisions: ChannelRef | None = None
    alerts: ChannelRef | None = None


class Defaults(Item):
    pulse: Cron = "0 9 * * mon"
    ack_within_days: Annotated[WholeNumber, Field(ge=0, le=365)] = 2
    poll_hours: Annotated[WholeNumber, Field(ge=1, le=24 * 30)] = 48
    # Leaders who must vote for a poll to decide; absent means a majority of the leaders.
    poll_quorum: Annotated[WholeNumber, Field(ge=1, le=1000)] | None = None
    poll_anonymous: bool = False  # every poll anonymous; else only those /decide asks to be


class HolidaySpec(Item):
    start: PlanDate
    end: PlanDate | None = None  # one-day holiday when absent
    name: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> HolidaySpec:
        if self.end is not None and self.end < self.start:
            raise PlanValueError(Code.HOLIDAY_ENDS_BEFORE_START, start=self.start, end=self.end)
        return self


class TeamSpec(Item):
    key: Key
    name: Text
    channel: ChannelRef | None = None
    lead: PersonRef | None = None
    members: ListOf[PersonRef] = []


class ReadingSpec(Item):
    as_of: PlanDate
    value: float


class KpiSpec(Item):
    key: Key
    name: Text
    unit: str = ""
    baseline: float
    target: float
    direction: Literal["up", "down"] = "up"
    start: PlanDate
    due: PlanDate
    amber: Annotated[float, Field(ge=0)] = 10.0
    red: Annotated[float, Field(ge=0)] = 25.0
    # Longer than this without a reading (counted from `start` while it has none): off track.
    reading_every_days: Annotated[WholeNumber, Field(ge=1, le=366)] = READING_EVERY_DAYS
    readings: ListOf[ReadingSpec] = []

    @model_validator(mode="after")
    def _coherent(self) -> KpiSpec:
        if self.due <= self.start:
            raise PlanValueError(Code.KPI_DUE_NOT_AFTER_START, start=self.start, due=self.due)
        if self.red < self.amber:
            raise PlanValueError(Code.KPI_RED_BELOW_AMBER, red=self.red, amber=self.amber)
        return self


class ObjectiveSpec(Item):
    key: Key
    title: Text
    owner: PersonRef | None = None
    kpis: ListOf[KpiSpec] = []


_REPOSITORY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
_PROJECT = re.compile(r"[A-Z][A-Z0-9_]{0,9}")
_ISSUE_KEY = re.compile(r"[A-Z][A-Z0-9_]{0,9}-[1-9][0-9]*")
WORK_SELECTORS = {"github": ("milestone", "label"), "jira": ("epic", "label")}


def _repository(value: str) -> str:
    if not _REPOSITORY.fullmatch(value):
        raise PlanValueError(Code.WORK_NOT_A_REPOSITORY, given=value)
    return value


def _project(value: str) -> str:
    if not _PROJECT.fullmatch(value):
        raise PlanValueError(Code.WORK_NOT_A_PROJECT, given=value)
    return value


def _issue_key(value: str) -> str:
    if not _ISSUE_KEY.fullmatch(value):
        raise PlanValueError(Code.WORK_NOT_AN_EPIC, given=value)
    return value


def _work_name(value: str) -> str:
    if ";" in value:
        raise PlanValueError(Code.WORK_NAME_HAS_SEMICOLON, given=value)
    return value


WorkName = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_work_name)]


class WorkLinkSpec(Item):
    """Tracker work that delivers a milestone: a GitHub milestone or label, a Jira epic or label.

    Stored and written to spreadsheet cells as its `canonical` text, e.g.
    `github:harbor/claims-app milestone=Pilot` (links in one cell are separated by `;`).
    """

    github: Annotated[str, AfterValidator(_repository)] | None = None
    jira: Annotated[str, AfterValidator(_project)] | None = None
    milestone: WorkName | None = None
    label: WorkName | None = None
    epic: Annotated[str, AfterValidator(_issue_key)] | None = None

    @model_validator(mode="after")
    def _coherent(self) -> WorkLinkSpec:
        if (self.github is None) == (self.jira is None):
            raise PlanValueError(Code.WORK_ONE_TRACKER)
        tracker = "github" if self.github is not None else "jira"
        given = [name for name in ("milestone", "label", "epic") if getattr(self, name) is not None]
        if len(given) != 1 or given[0] not in WORK_SELECTORS[tracker]:
            raise PlanValueError(
                Code.WORK_ONE_SELECTOR, tracker=tracker, choices=WORK_SELECTORS[tracker]
            )
        if (
            self.epic is not None
            and self.jira is not None
            and not self.epic.startswith(f"{self.jira}-")
        ):
            raise PlanValueError(Code.WORK_EPIC_OUTSIDE_PROJECT, epic=self.epic, project=self.jira)
        return self

    @property
    def canonical(self) -> str:
        tracker, project = ("github", self.github) if self.github else ("jira", self.jira)
        selector = next(n for n in ("milestone", "label", "epic") if getattr(self, n) is not None)
        return f"{tracker}:{project} {selector}={getattr(self, selector)}"


def parse_work_link(text: str) -> dict[str, str]:
    """A link's canonical text (a spreadsheet cell's, or written so in YAML) as its mapping."""
    head, _, tail = text.strip().partition(" ")
    tracker, _, project = head.partition(":")
    selector, _, name = tail.strip().partition("=")
    if tracker not in WORK_SELECTORS or not project or not selector.strip() or not name.strip():
        raise PlanValueError(Code.WORK_NOT_A_LINK, given=text)
    return {tracker: project, selector.strip(): name.strip()}


def work_link_text(link: dict[str, str]) -> str:
    """The canonical text of a link mapping as the export writes it (the reverse of the above)."""
    return WorkLinkSpec.model_validate(link).canonical


def _link_text(value: object) -> object:
    return parse_work_link(value) if isinstance(value, str) else value


WorkLink = Annotated[WorkLinkSpec, BeforeValidator(_link_text)]


class MilestoneSpec(Item):
    key: Key
    title: Text
    due: PlanDate
    # Absent means "leave as the bot has it": Slack owns a milestone's progress.
    status: Literal["open", "done", "descoped"] | None = None
    # The due date first planned, kept for slip reports when `due` moves. History: it is taken
    # only when the milestone is created (an export carried into a fresh database); a stored
    # milestone keeps its own, whatever the file says.
    original_due: PlanDate | None = None
    work: ListOf[WorkLink] = []  # the tracker work that delivers it


class DependencySpec(Item):
    key: Key
    provider: Key
    need: Text
    needed_by: PlanDate
    milestone: Key | None = None
    ack_within_days: Annotated[WholeNumber, Field(ge=0, le=365)] | None = None
    # Absent means "leave as the bot has it": the provider team moves it along in Slack.
    state: Literal["requested", "acknowledged", "delivered", "at_risk", "blocked"] | None = None


class InitiativeSpec(Item):
    key: Key
    title: Text
    objective: Key | None = None
    owner: PersonRef
    team: Key
    kpis: ListOf[Key] = []
    pulse: Cron | None = None
    status: Literal["active", "paused"] | None = None
    milestones: ListOf[MilestoneSpec] = []
    dependencies: ListOf[DependencySpec] = []


class DecisionRecord(Item):
    """One entry of the decision log, as `export` writes it. Read-only: the import accepts the
    section so that an export imports again as it is, and writes nothing from it (decisions are
    made by leaders' votes in Slack, not by editing a file)."""

    milestone: str
    option: str
    decided_at: str | datetime | date | None = None
    new_due: date | str | None = None
    scope_cut: str | None = None
    resources: str | None = None
    risk_accepted_until: date | str | None = None
    votes: dict[str, int] | str | None = None


class PlanFile(Item):
    organization: Text
    timezone: TimeZoneName
    channels: Channels = Channels()
    leaders: ListOf[PersonRef] = []
    admins: ListOf[PersonRef] = []
    defaults: Defaults = Defaults()
    digest: Cron = DEFAULT_DIGEST  # when the weekly digest goes out, in the plan's timezone
    digest_to: Literal["channel", "leaders"] = "channel"
    holidays: ListOf[HolidaySpec] = []
    teams: ListOf[TeamSpec] = []
    objectives: ListOf[ObjectiveSpec] = []
    initiatives: ListOf[InitiativeSpec] = []
    decisions: ListOf[DecisionRecord] = []  # read-only: ignored by the import
