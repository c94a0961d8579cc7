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


class MilestoneIds(StrEnum):
    """A milestone's action buttons (value = milestone id) and the New date and Descope modals.

    The buttons sit on missed and at-risk milestone alerts and on App Home, through
    templates/blocks/milestone_actions.json.j2; the same listeners answer wherever they are.
    """

    MARK_DONE = "milestone_mark_done"
    NEW_DATE = "milestone_new_date"
    DESCOPE = "milestone_descope"
    OPEN_DECISION = "milestone_open_decision"  # on missed and at-risk alerts: the framing modal
    # "<prefix>:<milestone id>", so several milestones' buttons can share one message or Home.
    ACTIONS_BLOCK = "milestone_actions"
    NEW_DATE_VIEW = "milestone_new_date_form"
    NEW_DATE_BLOCK = "milestone_new_date_block"
    NEW_DATE_INPUT = "milestone_new_date_value"
    DESCOPE_VIEW = "milestone_descope_form"
    SCOPE_CUT_BLOCK = "milestone_scope_cut_block"
    SCOPE_CUT_INPUT = "milestone_scope_cut_value"


class PollIds(StrEnum):
    """A decision poll's vote buttons, in its parent message and on App Home.

    A button's action_id is "<VOTE>:<option>" (IDs must differ within a block), its value
    "<poll id>:<option>"; its actions block is "<VOTE_BLOCK>:<poll id>", so a value naming
    another poll than its block, or another option than its action, is refused.
    """

    VOTE = "decision_vote"
    VOTE_BLOCK = "decision_vote"


class FramingIds(StrEnum):
    """The owner's framing of a poll's options: the DM button (value = framing id) and its modal."""

    FRAME = "decision_frame"
    ACTIONS_BLOCK = "decision_frame_actions"
    VIEW = "decision_framing_form"
    DATE_BLOCK = "decision_framing_date"
    DATE = "decision_framing_date_value"
    SCOPE_BLOCK = "decision_framing_scope"
    SCOPE = "decision_framing_scope_value"
    RESOURCES_BLOCK = "decision_framing_resources"
    RESOURCES = "decision_framing_resources_value"


class FollowThroughIds(StrEnum):
    """After a decision: knock-on confirmations (value = knock_on id) and the owner's shift offer."""

    STILL_ON_TRACK = "knock_on_still_on_track"
    MOVES_US = "knock_on_moves_us"
    KNOCK_ON_BLOCK = "knock_on_actions"
    MOVES_US_VIEW = "knock_on_moves_us_form"
    MOVES_US_DATE_BLOCK = "knock_on_moves_us_date"
    MOVES_US_DATE = "knock_on_moves_us_date_value"
    MOVES_US_NOTE_BLOCK = "knock_on_moves_us_note"
    MOVES_US_NOTE = "knock_on_moves_us_note_value"
    SHIFT_LATER = "decision_shift_later"  # value = decision id
    SHIFT_LATER_BLOCK = "decision_shift_later_actions"


class QueryIds(StrEnum):
    """/kpi, /plan and App Home: the share button and the Home tab's blocks."""

    SHARE = "query_share"
    SHARE_BLOCK = "query_share_actions"
    HOME_VIEW = "planpulse_home"


class MessageEvents(StrEnum):
    """`metadata.event_type` of the bot's own posts, which lets it find them again after a crash."""

    PULSE_PROMPT = "planpulse_pulse"  # payload: {"pulse_ids": "1,2,3"}
    DEPENDENCY_REQUEST = "planpulse_dependency_request"  # payload: {"dependency_id", "revision"}
    ALERT = "planpulse_alert"  # payload: {"alert_ids": "4,5", "summary": "yes" | "no"}
    POLL = "planpulse_poll"  # payload: {"poll_id"}
    POLL_OUTCOME = "planpulse_poll_outcome"  # payload: {"poll_id"}
    POLL_REMINDER = "planpulse_poll_reminder"  # a DM to a non-voter; payload: {"poll_id"}
    DIGEST = "planpulse_digest"  # payload: {"digest_id", "period"}
    DIGEST_PART = "planpulse_digest_part"  # a thread reply; payload: {"digest_id", "part"}
    FRAMING = "planpulse_framing"  # payload: {"framing_id"}


class AlertKinds(StrEnum):
    """`alert.kind`: one per detection condition (bot/alerts/conditions.py), one template each.

    Open alerts are unique per (kind, subject); each kind's message is
    templates/blocks/alerts/<kind>.json.j2.
    """

    DEPENDENCY_UNACKNOWLEDGED = "dependency_unacknowledged"
    DEPENDENCY_BLOCKED = "dependency_blocked"
    MILESTONE_MISSED = "milestone_missed"
    MILESTONE_AT_RISK = "milestone_at_risk"
    KPI_OFF_TRACK = "kpi_off_track"
    CONFIDENCE_MISMATCH = "confidence_mismatch"
    INITIATIVE_DARK = "initiative_dark"
    OWNER_UNREACHABLE = "owner_unreachable"
    CHANNEL_UNREACHABLE = "channel_unreachable"
