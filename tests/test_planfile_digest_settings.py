"""`digest` and `digest_to`: imported, exported and re-imported in every format; bad values refused with their place."""

from __future__ import annotations

import pytest
import yaml
from sqlmodel import Session

from storage.models import DEFAULT_DIGEST, DigestTo, PlanSettings
from tests.planfile_support import Cli, base_text, snapshot, write

DEFAULTS = 'defaults: {pulse: "0 9 * * mon", ack_within_days: 2, poll_hours: 48}'


@pytest.fixture
def cli(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    return Cli(capsys)


def plan_with(tmp_path, extra: str):
    text = base_text()
    assert DEFAULTS in text
    return write(tmp_path / "plan.yaml", text.replace(DEFAULTS, f"{DEFAULTS}\n{extra}"))


def stored(engine) -> PlanSettings:
    with Session(engine) as session:
        row = session.get(PlanSettings, 1)
        assert row is not None
        return row


def test_absent_means_friday_afternoon_to_the_decision_channel(cli, engine, tmp_path):
    assert cli("import", str(write(tmp_path / "plan.yaml", base_text()))).code == 0
    settings = stored(engine)
    assert (settings.digest, settings.digest_to) == ("0 16 * * fri", DigestTo.CHANNEL)
    assert settings.digest == DEFAULT_DIGEST
    exported = yaml.safe_load(cli("export").out)
    assert "digest" not in exported and "digest_to" not in exported


@pytest.mark.parametrize(
    ("fmt", "output"), [("yaml", "plan.yaml"), ("xlsx", "plan.xlsx"), ("csv", "plan-csv")]
)
def test_both_round_trip_in_every_format(cli, engine, tmp_path, fmt, output):
    run = cli("import", str(plan_with(tmp_path, 'digest: "30 8 * * mon"\ndigest_to: leaders')))
    assert run.code == 0, run.err
    settings = stored(engine)
    assert (settings.digest, settings.digest_to) == ("30 8 * * mon", DigestTo.LEADERS)
    before = snapshot(engine)
    target = tmp_path / "out" / output
    target.parent.mkdir()
    assert cli("export", "--format", fmt, "--output", str(target)).code == 0
    again = cli("import", str(target))
    assert again.code == 0, again.err
    assert "nothing changed" in again.out, again.out
    assert snapshot(engine) == before


def test_removing_them_goes_back_to_the_defaults(cli, engine, tmp_path):
    assert (
        cli("import", str(plan_with(tmp_path, 'digest: "0 9 * * *"\ndigest_to: leaders'))).code == 0
    )
    assert cli("import", str(write(tmp_path / "plain.yaml", base_text()))).code == 0
    settings = stored(engine)
    assert (settings.digest, settings.digest_to) == (DEFAULT_DIGEST, DigestTo.CHANNEL)


@pytest.mark.parametrize(
    ("extra", "expected", "line"),
    [
        ('digest: "every friday"', "'every friday' is not", 8),
        ('digest: "0 0 16 * * fri"', "'0 0 16 * * fri' is not", 8),
        ("digest_to: everyone", "everyone", 8),
    ],
)
def test_bad_values_are_refused_with_their_place(cli, engine, tmp_path, extra, expected, line):
    before = snapshot(engine)
    run = cli("import", str(plan_with(tmp_path, extra)))
    assert run.code == 2, run
    assert expected in run.err, run.err
    assert f"plan.yaml, line {line}" in run.err, run.err
    assert "Traceback" not in run.err
    assert snapshot(engine) == before
