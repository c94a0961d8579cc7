"""A milestone's `work:` links (GitHub milestones and labels, Jira epics and labels): imported,
exported and re-imported in every format; bad links refused with their place."""

from __future__ import annotations

import pytest
import yaml
from sqlmodel import Session, select

from storage.models import Milestone
from tests.planfile_support import Cli, edited, snapshot

READY = "{key: beta-ready, title: Beta feature-complete, due: 2027-01-15}"
LINKS = (
    '[{github: "harbor/claims-app", milestone: "Pilot, phase 1"},'
    ' {github: "harbor/claims-app", label: pilot},'
    " {jira: CLAIMS, epic: CLAIMS-120}, {jira: CLAIMS, label: pilot}]"
)


@pytest.fixture
def cli(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    return Cli(capsys)


def with_work(tmp_path, links: str):
    return edited(tmp_path, READY, READY[:-1] + f", work: {links}}}")


def stored_work(engine) -> list[str]:
    with Session(engine) as session:
        milestone = session.exec(select(Milestone).where(Milestone.key == "beta-ready")).one()
        return list(milestone.work)


def test_links_are_stored_in_their_canonical_form(cli, engine, tmp_path):
    run = cli("import", str(with_work(tmp_path, LINKS)))
    assert run.code == 0, run.err
    assert stored_work(engine) == [
        "github:harbor/claims-app milestone=Pilot, phase 1",
        "github:harbor/claims-app label=pilot",
        "jira:CLAIMS epic=CLAIMS-120",
        "jira:CLAIMS label=pilot",
    ]
    exported = yaml.safe_load(cli("export").out)
    [portal] = [i for i in exported["initiatives"] if i["key"] == "portal-beta"]
    [ready] = [m for m in portal["milestones"] if m["key"] == "beta-ready"]
    assert ready["work"][0] == {"github": "harbor/claims-app", "milestone": "Pilot, phase 1"}
    assert ready["work"][2] == {"jira": "CLAIMS", "epic": "CLAIMS-120"}


@pytest.mark.parametrize(
    ("fmt", "output"), [("yaml", "plan.yaml"), ("xlsx", "plan.xlsx"), ("csv", "plan-csv")]
)
def test_links_round_trip_in_every_format(cli, engine, tmp_path, fmt, output):
    assert cli("import", str(with_work(tmp_path, LINKS))).code == 0
    before = snapshot(engine)
    target = tmp_path / "out" / output
    target.parent.mkdir()
    assert cli("export", "--format", fmt, "--output", str(target)).code == 0
    again = cli("import", str(target))
    assert again.code == 0, again.err
    assert "nothing changed" in again.out, again.out
    assert snapshot(engine) == before


def test_a_link_may_be_written_as_its_text_and_removing_them_clears_them(cli, engine, tmp_path):
    run = cli("import", str(with_work(tmp_path, '["jira:OPS label=go live"]')))
    assert run.code == 0, run.err
    assert stored_work(engine) == ["jira:OPS label=go live"]
    assert cli("import", str(edited(tmp_path, "x", "x", name="plain.yaml"))).code == 0
    assert stored_work(engine) == []


@pytest.mark.parametrize(
    ("links", "expected"),
    [
        ("[{gitlab: harbor/app, label: x}]", "gitlab"),
        ("[{github: harbor/app, jira: OPS, label: x}]", "names no tracker or two"),
        ("[{label: x}]", "names no tracker or two"),
        ("[{github: harbor, label: x}]", "'harbor' is not a GitHub repository"),
        ("[{github: harbor/app}]", "github work needs exactly one of milestone or label"),
        (
            "[{github: harbor/app, epic: OPS-1}]",
            "github work needs exactly one of milestone or label",
        ),
        ("[{jira: ops, label: x}]", "'ops' is not a Jira project key"),
        ("[{jira: OPS, epic: OPS}]", "'OPS' is not a Jira issue key"),
        ("[{jira: OPS, epic: CLAIMS-1}]", "the epic CLAIMS-1 is not in the project OPS"),
        ("[{jira: OPS, milestone: x}]", "jira work needs exactly one of epic or label"),
        ('["bitbucket:x label=y"]', "is not a work link"),
        ("[{github: harbor/app, label: 'a;b'}]", "contains a semicolon"),
    ],
)
def test_bad_links_are_refused_with_their_place(cli, engine, tmp_path, links, expected):
    before = snapshot(engine)
    run = cli("import", str(with_work(tmp_path, links)))
    assert run.code == 2, run
    assert expected in run.err, run.err
    assert "plan.yaml, line 32" in run.err, run.err
    assert "Traceback" not in run.err
    assert snapshot(engine) == before
