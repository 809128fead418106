"""Keyword-only builders for nominations, annual cycles and reviews."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import update

from api.context import AppContext
from engine.models import Case
from tests.support.builders import User, make_user
from workflows.nomination import service as nominations
from workflows.nomination.schemas import NominationCreate


def nomination_body(*, seats: int = 2, deputies: bool = True, deadline: date = date(2026, 3, 20),
                    term_start: date = date(2026, 5, 1), term_end: date = date(2028, 4, 30),
                    asked: dict[str, Any] | None = None, language: str = "fi") -> dict[str, Any]:
    """Return a request body: seats for the group, all regional councils asked unless told otherwise."""
    return {"requester": {"name": "Valtiovarainministeriö", "email": "kirjaamo@vm.example.fi",
                          "contact_person": "Ylitarkastaja Virtanen", "language": language},
            "group": "Alueiden kehittämisen lainvalmisteluryhmä",
            "seats": [{"has_deputy": deputies} for _ in range(seats)],
            "term_start": term_start.isoformat(), "term_end": term_end.isoformat(),
            "deadline": deadline.isoformat(), "asked": asked or {"all_regional_councils": True}}


def create_nomination(ctx: AppContext, *, coordinator: User | None = None, **kwargs: Any) -> tuple[int, User]:
    """Create a nomination request as a coordinator; return its id and the coordinator."""
    coordinator = coordinator or make_user(ctx, org_key="association:kuntaliitto", roles="coordinator",
                                           name="Mkj-sihteeri")
    body = NominationCreate.model_validate(nomination_body(**kwargs))
    case = ctx.engine.run(lambda uow: nominations.create_nomination(uow, body, coordinator.actor))
    return case.id, coordinator


def pair(seat: int, position: str = "member", org: str = "x") -> list[dict[str, Any]]:
    """Return a woman and a man proposed for one seat's position."""
    return [{"seat": seat, "position": position, "name": f"Nainen {org} {seat} {position}", "gender": "woman",
             "email": f"n.{seat}.{position}.{org.replace(':', '')}@example.fi"},
            {"seat": seat, "position": position, "name": f"Mies {org} {seat} {position}", "gender": "man",
             "email": f"m.{seat}.{position}.{org.replace(':', '')}@example.fi"}]


def force_state(ctx: AppContext, case_id: int, state: str) -> None:
    """Put a case into a state directly (table-driven definition tests start from every state)."""
    with ctx.db.write_engine.begin() as conn:
        conn.execute(update(Case).where(Case.id == case_id).values(state=state))  # type: ignore[arg-type]
