"""Row ids read back from Slack (button values, modal metadata, block IDs): an id the database can hold, or None.

Primary keys are INTEGER columns: 32-bit on PostgreSQL, 64-bit on SQLite. A larger number, or
text that `str.isdigit` accepts but `int` does not ("²"), cannot name a row; passed on to a
query it fails in the driver (an out-of-range error, an OverflowError) instead of being refused
as the stale or forged request it is. Every reader of an id from a payload asks here first.
"""

from __future__ import annotations

from typing import Any, TypeGuard

MAX_ROW_ID = 2**31 - 1


def is_row_id(value: Any) -> TypeGuard[int]:
    """A JSON number that can be a row's id (from private_metadata): not a bool, 1..MAX_ROW_ID."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ROW_ID


def row_id_in(text: str | None) -> int | None:
    """The row id `text` spells in ASCII digits (spaces around allowed), or None."""
    digits = (text or "").strip()
    if not (digits.isascii() and digits.isdigit()) or len(digits) > len(str(MAX_ROW_ID)):
        return None
    value = int(digits)
    return value if is_row_id(value) else None
