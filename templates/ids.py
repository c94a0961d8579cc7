"""Every action_id, callback_id and block_id, named once and shared by templates and handlers."""

from __future__ import annotations

from enum import StrEnum
