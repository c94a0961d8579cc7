"""A first page of rows and how many there are in all, for lists that end in "and N more"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    """The first rows of a list and how many there are in all, for "and N more"."""

    rows: list[T]
    total: int
