"""The votes benchmark stays runnable: five leaders vote, then change, at once; each counted once.

It runs on SQLite, and on PostgreSQL when the suite is pointed at one (PLANPULSE_TEST_DATABASE_URL).
"""

from __future__ import annotations

import os

from bench.bench_votes import run_bench
from tests.conftest import PG_ENV

LEADERS = 5


def test_a_tiny_vote_bench_counts_every_vote_once():
    postgres = os.environ.get(PG_ENV)
    result = run_bench(
        "postgresql" if postgres else "sqlite", LEADERS, workers=4, postgres_url=postgres
    )
    assert [r.name for r in result.rounds] == ["vote", "change"]
    for round_result in result.rounds:
        assert round_result.statuses == {"200": LEADERS}
        assert round_result.vote_rows == LEADERS and round_result.counted_once
        assert round_result.tally_consistent
        assert round_result.over_3s == 0
    assert result.rounds[0].thread_lines == 0  # first votes are not news
    assert result.rounds[1].thread_lines == LEADERS  # every change is told in the thread
    assert result.ok
