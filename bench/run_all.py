"""`make bench`: every benchmark in turn, then one table of their figures and goals.

Each benchmark prints its own details as it runs; the table at the end has one row per figure:
what was measured, its goal, the floor it was measured against in the same run, met or not,
under a heading describing the machine. `--record` also writes the table into
docs/BENCHMARKS.md, between its `bench-table` markers.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    bench_commands,
    bench_detection,
    bench_import,
    bench_load,
    bench_pulses,
    bench_votes,
    bench_webhooks,
)
from bench.figures import Figure, machine, table

BENCHMARKS: dict[str, Callable[[list[str], list[Figure]], int]] = {
    "import": bench_import.main,
    "commands": bench_commands.main,
    "pulses": bench_pulses.main,
    "detection": bench_detection.main,
    "votes": lambda argv, report: bench_votes.main(
        ["--databases", "sqlite,postgresql", *argv], report
    ),
    "webhooks": bench_webhooks.main,
    "load": bench_load.main,
}
DOC = Path(__file__).resolve().parent.parent / "docs" / "BENCHMARKS.md"
BEGIN, END = "<!-- bench-table -->", "<!-- /bench-table -->"


def run(names: list[str]) -> tuple[list[Figure], int]:
    """Run the named benchmarks; a benchmark that crashes is a row saying so, not the end."""
    figures: list[Figure] = []
    status = 0
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        try:
            status = max(status, BENCHMARKS[name]([], figures))
        except Exception:  # noqa: BLE001 - reported in the table, the others still run
            traceback.print_exc()
            figures.append(
                Figure(name, "the benchmark itself", "crashed (see above)", "runs", "", False)
            )
            status = 2
    return figures, status


def report(figures: list[Figure]) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"Run of {stamp} on {machine()}.\n\n{table(figures)}\n"


def record(text: str, doc: Path = DOC) -> None:
    """Replace the table between the markers in docs/BENCHMARKS.md (added at the top if absent)."""
    current = doc.read_text(encoding="utf-8")
    block = f"{BEGIN}\n{text}{END}"
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        updated = head + block + rest.split(END, 1)[1]
    else:
        title, _, body = current.partition("\n")
        updated = f"{title}\n\n{block}\n{body}"
    doc.write_text(updated, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(BENCHMARKS), help="default: all")
    parser.add_argument("--record", action="store_true", help="write the table to BENCHMARKS.md")
    args = parser.parse_args(argv)
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    figures, status = run(args.names)
    text = report(figures)
    print("\n" + text)
    if args.record:
        record(text)
        print(f"recorded in {DOC}")
    return status


if __name__ == "__main__":
    sys.exit(main())
