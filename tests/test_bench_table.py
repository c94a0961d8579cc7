"""`make bench`'s one table: rows from figures, and the copy kept in docs/BENCHMARKS.md."""

from __future__ import annotations

from bench.figures import Figure, table
from bench.run_all import BEGIN, END, record


def test_the_table_has_a_row_per_figure_with_its_goal_floor_and_verdict():
    text = table(
        [
            Figure("commands", "`/plan <key>`", "3.1 ms (2.9x)", "≤ 4x bare", "bare 1.1 ms", True),
            Figure("webhooks", "p50 | p99", "6 ms", "", "no-op 1 ms"),
            Figure("votes", "within 3 s", "no", "all", "", False),
        ]
    )
    header, rule, *rows = text.splitlines()
    assert header.count("|") == rule.count("|") == 7
    assert rows == [
        "| commands | `/plan <key>` | 3.1 ms (2.9x) | ≤ 4x bare | bare 1.1 ms | met |",
        "| webhooks | p50 \\| p99 | 6 ms |  | no-op 1 ms |  |",
        "| votes | within 3 s | no | all |  | NOT met |",
    ]


def test_recording_replaces_only_the_table_between_the_markers(tmp_path):
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\nIntro.\n\n## Plan import\n\nDetails.\n", encoding="utf-8")
    record("first table\n", doc)
    first = doc.read_text(encoding="utf-8")
    assert first.startswith(f"# Benchmarks\n\n{BEGIN}\nfirst table\n{END}\n")
    assert first.endswith("## Plan import\n\nDetails.\n")
    record("second table\n", doc)
    second = doc.read_text(encoding="utf-8")
    assert second == first.replace("first table", "second table")
