"""Keyword-only builders of test data: people with tokens, Pirkanmaa agreements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlmodel import Session

from api.context import AppContext
from engine.actors import Actor
from engine.directory import issue_token
from engine.models import Organisation, Person
from notifications.deferred import render_queued
from workflows.agreement import service
from workflows.agreement.schemas import AgreementCreate, PartyIn

DOCUMENT = "# Pirkanmaan puitesopimus\n\nOsapuolet sopivat yhteistyön rakenteista ja tavoista.\n"


@dataclass
class User:
    """A person, their token and the actor the engine sees."""

    person: Person
    token: str
    actor: Actor

    @property
    def id(self) -> int:
        return self.person.id or 0

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def render_mail(ctx: AppContext) -> int:
    """Render the queued emails, as the leader's mail job does just before it sends them; return how many."""
    return render_queued(ctx.engine)


def org(ctx: AppContext, key: str) -> Organisation:
    with Session(ctx.db.engine) as session:
        found = session.execute(select(Organisation).where(Organisation.key == key)).scalars().one()
        session.expunge(found)
        return found


def pirkanmaa_keys(ctx: AppContext) -> list[str]:
    """Return the 25 parties of Pirkanmaa's framework agreement: county, 23 municipalities, council."""
    with Session(ctx.db.engine) as session:
        munis = session.execute(select(Organisation.key).where(
            Organisation.kind == "municipality", Organisation.region_code == "06").order_by(Organisation.code)
        ).scalars().all()
    return ["wellbeing_county:08", *munis, "regional_council:06"]


def make_user(ctx: AppContext, *, org_key: str | None = None, roles: str = "signatory", name: str | None = None,
              language: str = "fi", email: str | None = None) -> User:
    with Session(ctx.db.engine, expire_on_commit=False) as session:
        org_id = None
        if org_key:
            org_id = session.execute(select(Organisation.id).where(Organisation.key == org_key)).scalar_one()
        count = session.execute(select(Person.id).order_by(Person.id.desc()).limit(1)).scalar() or 0  # type: ignore[union-attr]
        n = count + 1
        person = Person(name=name or f"Person {n}", email=email or f"person{n}@example.fi", language=language,
                        organisation_id=org_id, roles=roles, created_at=ctx.clock.now())
        session.add(person)
        session.flush()
        token = issue_token(session, person.id or 0, ctx.clock.now())
        session.commit()
    actor = Actor(person_id=person.id, name=person.name, roles=person.role_set, organisation_id=org_id)
    return User(person, token, actor)


@dataclass
class AgreementFixture:
    """An agreement with its coordinator and each party's signatories."""

    id: int
    coordinator: User
    signatories: dict[str, list[User]]
    required: dict[str, int]

    @property
    def keys(self) -> list[str]:
        return list(self.signatories)


def create_agreement(ctx: AppContext, *, parties: int = 25, signatures: int = 1, circulate: bool = True,
                     deadline: date = date(2026, 6, 19), coordinator: User | None = None,
                     reminder_offsets: list[str] | None = None,
                     languages: dict[str, str] | None = None) -> AgreementFixture:
    """Create a Pirkanmaa agreement with `parties` parties and `signatures` signatories each."""
    coordinator = coordinator or make_user(ctx, org_key="regional_council:06", roles="coordinator",
                                           name="Koordinaattori")
    keys = pirkanmaa_keys(ctx)[:parties]
    signers = {k: [make_user(ctx, org_key=k, name=f"Allekirjoittaja {i} {k}", language=(languages or {}).get(k, "fi"))
                   for i in range(signatures)] for k in keys}
    body = AgreementCreate(title="Pirkanmaan puitesopimus", document=DOCUMENT, deadline=deadline,
                           reminder_offsets=reminder_offsets,
                           parties=[PartyIn(organisation=k, signatories=[u.id for u in signers[k]],
                                            required_signatures=signatures) for k in keys])
    case = ctx.engine.run(lambda uow: service.create_agreement(uow, body, coordinator.actor))
    if circulate:
        ctx.engine.run(lambda uow: service.circulate(uow, case.id, coordinator.actor))
    return AgreementFixture(case.id, coordinator, signers, {k: signatures for k in keys})


def decision(outcome: str = "approved", **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {"outcome": outcome, "body": "Kunnanhallitus", "decided_on": "2026-03-02",
                               "section": "§ 58", "minutes_url": "https://example.fi/poytakirja/58"}
    body.update(overrides)
    return body
