"""Bad plan files: exit status 2, every problem named with its place, the database untouched."""

from __future__ import annotations

import pytest

from bot.planfile.text import MAX_PLAN_BYTES
from tests.planfile_support import BASE_PLAN, Cli, base_text, edited, snapshot, write


@pytest.fixture
def cli(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    return Cli(capsys)


@pytest.fixture
def imported(cli, engine):
    """A database holding the base plan: what a bad import must leave exactly as it is."""
    assert cli("import", str(BASE_PLAN)).code == 0
    return snapshot(engine)


def refused(cli, engine, before, path, *expected: str) -> str:
    """Import and validate both refuse the file with exit 2; the message names each problem."""
    for command in ("validate", "import"):
        run = cli(command, str(path))
        assert run.code == 2, run
        assert "Traceback" not in run.err
        for text in expected:
            assert text in run.err, f"{text!r} not in:\n{run.err}"
    assert snapshot(engine) == before
    return run.err


def test_malformed_yaml(cli, engine, imported, tmp_path):
    path = edited(tmp_path, "  - key: erp\n", "  - key: erp\n   title: [unclosed\n")
    refused(cli, engine, imported, path, "plan.yaml, line 37", "not valid YAML")


def test_a_list_where_a_mapping_belongs(cli, engine, imported, tmp_path):
    path = edited(
        tmp_path,
        'defaults: {pulse: "0 9 * * mon", ack_within_days: 2, poll_hours: 48}',
        'defaults: ["0 9 * * mon", 2, 48]',
    )
    refused(cli, engine, imported, path, "plan.yaml, line 7: defaults: expected a mapping")


def test_the_top_level_must_be_a_mapping(cli, engine, imported, tmp_path):
    path = write(tmp_path / "plan.yaml", "- organization: Northwind\n- timezone: UTC\n")
    refused(cli, engine, imported, path, "line 1", "top level must be a mapping")


def test_missing_required_field(cli, engine, imported, tmp_path):
    path = edited(tmp_path, "    title: ERP integration\n", "")
    refused(
        cli,
        engine,
        imported,
        path,
        "plan.yaml, line 36: initiative erp: missing required field 'title'",
    )


def test_unknown_field_suggests_the_right_one(cli, engine, imported, tmp_path):
    path = edited(tmp_path, "title: Beta feature-complete", "titel: Beta feature-complete")
    refused(
        cli,
        engine,
        imported,
        path,
        "line 32: initiative portal-beta, milestone beta-ready: unknown field 'titel'",
        "did you mean 'title'?",
    )


def test_impossible_date(cli, engine, imported, tmp_path):
    path = edited(tmp_path, "due: 2027-01-15", "due: 2027-02-30")
    refused(cli, engine, imported, path, "line 32", "due: 2027-02-30 is not a real date")


def test_dependency_on_a_team_that_does_not_exist(cli, engine, imported, tmp_path):
    path = edited(tmp_path, "provider: marketing", "provider: marketting")
    refused(
        cli,
        engine,
        imported,
        path,
        "line 35: initiative portal-beta, dependency support-training: provider 'marketting' is not a team",
        "did you mean 'marketing'?",
    )


def test_two_items_with_the_same_key(cli, engine, imported, tmp_path):
    path = edited(tmp_path, "key: data-migration", "key: beta-ready")
    err = refused(
        cli, engine, imported, path, "line 44", "'beta-ready' is already used by another milestone"
    )
    assert "line 32" in err  # where the first one is


def test_a_field_written_twice_in_one_item(cli, engine, imported, tmp_path):
    path = edited(
        tmp_path,
        "    title: ERP integration\n",
        "    title: ERP integration\n    title: ERP again\n",
    )
    refused(cli, engine, imported, path, "line 38: the field 'title' is written twice")


def test_another_initiatives_milestone_as_a_dependency_milestone(cli, engine, imported, tmp_path):
    path = edited(tmp_path, "milestone: beta-launch", "milestone: data-migration")
    refused(
        cli,
        engine,
        imported,
        path,
        "line 35",
        "milestone 'data-migration' belongs to initiative 'erp', not to 'portal-beta'",
    )


def test_four_field_cadence(cli, engine, imported, tmp_path):
    path = edited(tmp_path, 'pulse: "0 9 * * mon"                #', 'pulse: "0 9 * *" #')
    refused(
        cli,
        engine,
        imported,
        path,
        "line 30: initiative portal-beta, pulse: '0 9 * *' is not a 5-field cron",
    )


def test_unknown_timezone(cli, engine, imported, tmp_path):
    path = edited(tmp_path, "timezone: America/New_York", "timezone: Mars/Olympus")
    refused(cli, engine, imported, path, "line 3: timezone: 'Mars/Olympus' is not an IANA timezone")


def test_people_and_channels_must_look_like_slack_or_email(cli, engine, imported, tmp_path):
    path = edited(tmp_path, "owner: coo@northwind.example", "owner: the COO")
    path = write(path, path.read_text().replace('channel: "#marketing"', "channel: marketing"))
    refused(
        cli, engine, imported, path, "'the COO' is not a person", "'marketing' is not a channel"
    )


def test_every_problem_is_reported_at_once(cli, engine, imported, tmp_path):
    text = (
        base_text()
        .replace("timezone: America/New_York", "timezone: Mars/Olympus")
        .replace("due: 2027-01-15", "due: 2027-02-30")
        .replace("provider: marketing", "provider: nobody")
        .replace("title: Data migration", "titel: Data migration")
    )
    err = refused(cli, engine, imported, write(tmp_path / "plan.yaml", text), "5 problems")
    assert len([line for line in err.splitlines() if "plan.yaml, line" in line]) == 5


def test_non_utf8_file(cli, engine, imported, tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_bytes(base_text().replace("Marketing", "Mark\u00e9ting").encode("latin-1"))
    refused(cli, engine, imported, path, "line 13", "not UTF-8", "0xE9")


def test_empty_file(cli, engine, imported, tmp_path):
    refused(cli, engine, imported, write(tmp_path / "plan.yaml", ""), "the file is empty")
    refused(
        cli,
        engine,
        imported,
        write(tmp_path / "plan.yaml", "# only a comment\n"),
        "the file is empty",
    )


def test_a_20_mb_file_is_refused_before_parsing(cli, engine, imported, tmp_path):
    path = tmp_path / "plan.yaml"
    # Valid YAML all the way: only the size can be the reason.
    path.write_text(base_text() + "#" * (20 * 1024 * 1024) + "\n", encoding="utf-8")
    assert path.stat().st_size > MAX_PLAN_BYTES
    refused(cli, engine, imported, path, "over the 16 MB limit")


def test_anchors_and_aliases_are_refused(cli, engine, imported, tmp_path):
    path = edited(tmp_path, "teams:\n  - {key: it", "teams:\n  - &it {key: it")
    path = write(path, path.read_text() + "extra: *it\n")
    refused(cli, engine, imported, path, "line 12", "anchors and aliases")


def test_unknown_file_kind_and_missing_file(cli, engine, imported, tmp_path):
    refused(cli, engine, imported, write(tmp_path / "plan.txt", "x"), "not a plan file")
    refused(cli, engine, imported, tmp_path / "nope.yaml", "does not exist")


def test_validate_needs_no_database(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/never-created.db")
    run = cli("validate", str(BASE_PLAN))
    assert run.code == 0
    assert (
        "valid plan for Northwind Financial: 3 teams, 1 objectives, 2 KPIs, 2 initiatives"
        in run.out
    )
    assert not (tmp_path / "never-created.db").exists()
