"""What a rule reports when input is wrong: a typed code, the field or place it concerns, parameters.

Rules never word their findings: `templates.problems` turns each code into a sentence, one
catalogue for Slack (ephemeral replies, modal field errors keyed by block_id) and one for the
terminal. Every area declares its codes as a `ProblemCode` enum, once; a test checks that each
code has its sentence in both catalogues and that no sentence is left without a code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ProblemCode(StrEnum):
    """Base of every area's problem codes; the value is the catalogue key (`area.what`)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong: `field` is the modal block_id or the plan place it concerns, if any."""

    code: ProblemCode
    field: str | None = None
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def at(self, place: str) -> Problem:
        """The same problem, located (a plan-file place, a modal block)."""
        return Problem(self.code, place, self.params)


def problem(code: ProblemCode, field: str | None = None, **params: Any) -> Problem:
    return Problem(code, field, params)
