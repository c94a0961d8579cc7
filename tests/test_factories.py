"""The factories build a linked plan that the database accepts."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session, select

from storage.models import Dependency, InitiativeKpi
from tests import factories as f


def test_factories_build_a_linked_plan(engine):
    with Session(engine) as session:
        f.plan_settings(session)
        alice = f.person(session, name="Alice", tz="Asia/Tokyo")
        it = f.team(session, key="it", lead=alice, members=[alice])
        marketing = f.team(session, key="marketing")
        goal = f.objective(session, owner=alice)
        adoption = f.kpi(session, objective=goal, baseline=8, target=40)
        f.reading(session, kpi=adoption, value=12, as_of=date(2026, 11, 1))
        beta = f.initiative(session, owner=alice, team=it, objective=goal, kpis=[adoption])
        launch = f.milestone(session, initiative=beta, due=date(2027, 2, 1))
        f.dependency(
            session,
            initiative=beta,
            provider=marketing,
            needed_by=date(2027, 1, 25),
            milestone=launch,
        )
        session.commit()
        dep = session.exec(select(Dependency)).one()
        assert dep.milestone_id == launch.id and dep.provider_team_id == marketing.id
        assert session.exec(select(InitiativeKpi)).one().kpi_id == adoption.id
