"""Every action_id, callback_id and block_id, named once and shared by templates and handlers."""

from __future__ import annotations

from enum import StrEnum


class PulseIds(StrEnum):
    """The pulse prompt DM: quick answer buttons (value = pulse_request id) and per-pulse blocks."""

    ON_TRACK = "pulse_on_track"
    AT_RISK = "pulse_at_risk"
    OFF_TRACK = "pulse_off_track"
    ADD_DETAILS = "pulse_add_details"
    # Block IDs are "<prefix>:<pulse id>" so several pulses can share one message.
    SECTION_BLOCK = "pulse_section"
    ACTIONS_BLOCK = "pulse_actions"


class PulseDetailsIds(StrEnum):
    """The "Add details" modal of a pulse; KPI and milestone block IDs end with the row's id."""

    VIEW = "pulse_details"
    STATUS_BLOCK = "pulse_details_status"
    STATUS = "pulse_details_status_value"
    CONFIDENCE_BLOCK = "pulse_details_confidence"
    CONFIDENCE = "pulse_details_confidence_value"
    KPI_BLOCK_PREFIX = "pulse_details_kpi_"
    KPI = "pulse_details_kpi_value"
    DONE_BLOCK = "pulse_details_done"
    DONE = "pulse_details_done_value"
    EXPECTED_BLOCK_PREFIX = "pulse_details_expected_"
    EXPECTED = "pulse_details_expected_value"
    BLOCKERS_BLOCK = "pulse_details_blockers"
    BLOCKERS = "pulse_details_blockers_value"
    DEPENDENCY_LATE_BLOCK = "pulse_details_dependency_late"
    DEPENDENCY_LATE = "pulse_details_dependency_late_value"


class DependencyIds(StrEnum):
    """A dependency request in the provider team's channel: its buttons (value = dependency id)."""

    ACKNOWLEDGE = "dependency_acknowledge"
    CANT_MAKE_IT = "dependency_cant_make_it"
    DELIVERED = "dependency_delivered"
    ACTIONS_BLOCK = "dependency_actions"


class CantMakeItIds(StrEnum):
    """The "Can't make it" modal of a dependency request."""

    VIEW = "dependency_cant_make_it_form"
    REASON_BLOCK = "dependency_cant_make_it_reason"
    REASON = "dependency_cant_make_it_reason_value"
    DATE_BLOCK = "dependency_cant_make_it_date"
    DATE = "dependency_cant_make_it_date_value"


class QueryIds(StrEnum):
    """/kpi, /plan and App Home: the share button and the Home tab's blocks."""

    SHARE = "query_share"
    SHARE_BLOCK = "query_share_actions"
    HOME_VIEW = "planpulse_home"


class MessageEvents(StrEnum):
    """`metadata.event_type` of the bot's own posts, which lets it find them again after a crash."""

    PULSE_PROMPT = "planpulse_pulse"  # payload: {"pulse_ids": "1,2,3"}
    DEPENDENCY_REQUEST = "planpulse_dependency_request"  # payload: {"dependency_id", "revision"}


class AlertKinds(StrEnum):
    """`alert.kind` of the admin alerts; open alerts are unique per (kind, subject)."""

    # Shared by the pulse fan-out and the directory sync: one open alert per unreachable owner,
    # whichever noticed first, so admins hear about each owner once.
    OWNER_UNREACHABLE = "owner_unreachable"
    CHANNEL_UNREACHABLE = "channel_unreachable"
