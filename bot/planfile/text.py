"""Raw bytes to text: plan files are UTF-8 (a byte order mark is fine) and of a bounded size."""

from __future__ import annotations

from bot.planfile.problems import PlanProblemCode as Code
from bot.planfile.problems import PlanProblems
from bot.problems import problem

# A 10,000-initiative plan (the benchmark's) is about 9 MB of YAML; 16 MiB leaves room while
# refusing, before parsing anything, files that would take minutes and gigabytes to load.
MAX_PLAN_BYTES = 16 * 1024 * 1024


def check_size(size: int, label: str) -> None:
    if size > MAX_PLAN_BYTES:
        raise PlanProblems(
            [
                problem(
                    Code.FILE_TOO_LARGE,
                    label,
                    size_mb=size / 1024 / 1024,
                    limit_mb=MAX_PLAN_BYTES // 1024 // 1024,
                )
            ]
        )


def decode_utf8(raw: bytes, label: str) -> str:
    """Strict UTF-8: a Latin-1 or UTF-16 file would otherwise import with garbled names."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise PlanProblems(
            [
                problem(
                    Code.NOT_UTF8, f"{label}, line {line}", byte=raw[exc.start], position=exc.start
                )
            ]
        ) from None
