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

