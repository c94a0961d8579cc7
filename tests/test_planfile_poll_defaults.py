"""`defaults.poll_quorum` and `defaults.poll_anonymous`: imported, exported and re-imported in every format; bad values refused with their place."""

from __future__ import annotations

import pytest
import yaml
from sqlmodel import Session

from storage.models import PlanSettings
from tests.planfile_support import Cli, base_text, snapshot, write

DEFAULTS = 'defaults: {pulse: "0 9 * * mon", ack_within_days: 2, poll_hours: 48}'


@pytest.fixture
def cli(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    return Cli(capsys)


def plan_with(tmp_path, extra: str):
    text = base_text()
    assert DEFAULTS in text
    new = DEFAULTS.replace("poll_hours: 48", f"poll_hours: 48, {extra}")
    return write(tmp_path / "plan.yaml", text.replace(DEFAULTS, new))


def stored(engine) -> PlanSettings:
    with Session(engine) as session:
        row = session.get(PlanSettings, 1)
        assert row is not None
        return row


def test_absent_means_majority_and_named_votes(cli, engine, tmp_path):
    assert cli("import", str(write(tmp_path / "plan.yaml", base_text()))).code == 0
    settings = stored(engine)
    assert (settings.poll_quorum, settings.poll_anonymous) == (None, False)
    exported = yaml.safe_load(cli("export").out)
    assert "poll_quorum" not in exported["defaults"]
    assert "poll_anonymous" not in exported["defaults"]


@pytest.mark.parametrize(
    ("fmt", "output"), [("yaml", "plan.yaml"), ("xlsx", "plan.xlsx"), ("csv", "plan-csv")]
)
def test_both_round_trip_in_every_format(cli, engine, tmp_path, fmt, output):
    run = cli("import", str(plan_with(tmp_path, "poll_quorum: 2, poll_anonymous: true")))
    assert run.code == 0, run.err
    settings = stored(engine)
    assert (settings.poll_quorum, settings.poll_anonymous) == (2, True)
    before = snapshot(engine)
    target = tmp_path / "out" / output
    target.parent.mkdir()
    assert cli("export", "--format", fmt, "--output", str(target)).code == 0
    again = cli("import", str(target))
    assert again.code == 0, again.err
    assert "nothing changed" in again.out, again.out
    assert snapshot(engine) == before


def test_removing_them_goes_back_to_the_defaults(cli, engine, tmp_path):
    assert cli("import", str(plan_with(tmp_path, "poll_quorum: 3, poll_anonymous: yes"))).code == 0
    assert cli("import", str(write(tmp_path / "plain.yaml", base_text()))).code == 0
    settings = stored(engine)
    assert (settings.poll_quorum, settings.poll_anonymous) == (None, False)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("poll_quorum: 0", "0 is too small (at least 1)"),
        ("poll_quorum: 4", "a poll quorum of 4 can never be reached by the plan's 3 leaders"),
        ("poll_quorum: two", "'two' is not a whole number"),
        ("poll_quorum: true", "True is not a whole number"),
        ("poll_anonymous: maybe", "'maybe' is not true or false"),
    ],
)
def test_bad_values_are_refused_with_their_place(cli, engine, tmp_path, extra, expected):
    before = snapshot(engine)
    run = cli("import", str(plan_with(tmp_path, extra)))
    assert run.code == 2, run
    assert expected in run.err, run.err
    assert "plan.yaml, line 7" in run.err, run.err
    assert snapshot(engine) == before
