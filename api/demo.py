"""Demo data: Pirkanmaa's framework agreement with its 25 real parties, part-way through circulation."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from pydantic import HttpUrl
from sqlalchemy import select
from sqlmodel import Session, col

from api.context import AppContext
from engine.actors import Actor
from engine.calendar import HELSINKI, effective_deadline
from engine.directory import DEFAULT_ORGANISATIONS, ensure_admin, import_organisations, issue_token
from engine.models import Case, Organisation, Person
from engine.service import UnitOfWork
from workflows.agreement import service
from workflows.agreement.schemas import AgreementCreate, DecisionIn, PartyIn

DEMO_TEXT = """# Pirkanmaan hyvinvointialueen, kuntien ja maakunnan liiton puitesopimus

## 1 Sopimuksen osapuolet
Pirkanmaan hyvinvointialue, Pirkanmaan 23 kuntaa ja Pirkanmaan liitto.

## 2 Tarkoitus
Sopimuksella sovitaan osapuolten yhteistyön rakenteista ja tavoista (611/2021 14 §).

## 3 Voimaantulo
Sopimus tulee voimaan, kun kaikki osapuolet ovat hyväksyneet sen ja vahvistaneet sen allekirjoituksillaan.
Sopimus on voimassa toistaiseksi, ja se tarkistetaan kerran valtuustokaudessa.
"""

BODIES = {"municipality": "Kunnanhallitus", "wellbeing_county": "Aluehallitus", "regional_council": "Maakuntahallitus"}


@dataclass
class DemoInfo:
    """What the demo prints for the person trying it."""

    agreement_id: int
    admin_token: str
    coordinator_token: str
    signatory_token: str
    signatory_org: str
    signatory_link: str = ""
    coordinator_link: str = ""
    admin_link: str = ""  # the captured mail at /mail is shown only to an administrator


def _person(session: Session, org: Organisation, name: str, roles: str, now: datetime, lang: str = "fi",
            handle: str | None = None) -> Person:
    email = f"{handle or roles}.{org.key.replace(':', '-')}@demo.vuosikello.fi"
    found = session.scalars(select(Person).where(col(Person.email) == email)).first()
    if found:
        return found
    person = Person(name=name, email=email, language=lang, organisation_id=org.id, roles=roles, created_at=now)
    session.add(person)
    session.flush()
    return person


def load_demo(ctx: AppContext, admin_token: str | None = None) -> DemoInfo:
    """Load the register and a Pirkanmaa agreement in circulation (idempotent)."""
    now = ctx.clock.now()
    admin_token = admin_token or ("vk_demo_" + secrets.token_urlsafe(24))
    def load_people(uow: UnitOfWork) -> tuple[Any, ...]:
        session = uow.session
        import_organisations(session, DEFAULT_ORGANISATIONS, now)
        ensure_admin(session, admin_token, now)
        orgs = session.execute(select(Organisation).where(
            (col(Organisation.region_code) == "06")
            & col(Organisation.kind).in_(("municipality", "regional_council"))
            | (col(Organisation.key) == "wellbeing_county:08")
        ).order_by(col(Organisation.kind), col(Organisation.code))).scalars().all()
        council = next(o for o in orgs if o.kind == "regional_council")
        coordinator = _person(session, council, "Kaisa Koordinaattori", "coordinator", now)
        signers = {o.key: _person(session, o, f"Johtaja, {o.name_fi}", "signatory", now,
                                  "sv" if o.key == "municipality:020" else "fi") for o in orgs}
        second = _person(session, council, "Maakuntahallituksen puheenjohtaja", "signatory", now, handle="chair")
        coordinator_token = issue_token(session, coordinator.id or 0, now, "demo")
        first_muni = next(o for o in orgs if o.kind == "municipality")
        signatory_token = issue_token(session, signers[first_muni.key].id or 0, now, "demo")
        existing = session.execute(select(col(Case.id)).where(col(Case.workflow) == "agreement")).scalar()
        return orgs, council, coordinator, signers, second, coordinator_token, first_muni, signatory_token, existing

    (orgs, council, coordinator, signers, second, coordinator_token, first_muni, signatory_token,
     existing) = ctx.engine.run(load_people)
    info = DemoInfo(existing or 0, admin_token, coordinator_token, signatory_token, first_muni.key)
    if existing:
        return info
    coord = Actor(coordinator.id, coordinator.name, coordinator.role_set, council.id)
    deadline = effective_deadline((now + timedelta(days=30)).astimezone(HELSINKI).date())
    parties = [PartyIn(organisation=o.key, signatories=[signers[o.key].id or 0] + ([second.id or 0] if o is council
                                                                                   else []),
                       required_signatures=2 if o is council else 1) for o in orgs]
    body = AgreementCreate(title="Pirkanmaan puitesopimus 2025–2029", document=DEMO_TEXT, deadline=deadline,
                           parties=parties)
    case = ctx.engine.run(lambda uow: service.create_agreement(uow, body, coord))
    ctx.engine.run(lambda uow: service.circulate(uow, case.id, coord))
    today = now.astimezone(HELSINKI).date()
    for i, org in enumerate(o for o in orgs if o.kind == "municipality"):
        if i >= 14:
            break
        person = signers[org.key]
        actor = Actor(person.id, person.name, person.role_set, org.id)
        decision = DecisionIn(outcome="approved", body=BODIES[org.kind], decided_on=today - timedelta(days=20 - i),
                              section=f"§ {40 + i}", minutes_url=HttpUrl(f"https://example.fi/{org.code}/poytakirja"))
        ctx.engine.run(partial(service.decide, agreement_id=case.id, organisation_key=org.key, data=decision,
                               actor=actor))
        if i < 10:
            ctx.engine.run(partial(service.sign, agreement_id=case.id, organisation_key=org.key, actor=actor))
    info.agreement_id = case.id
    return info


def sign_in_links(ctx: AppContext, info: DemoInfo, base_url: str) -> DemoInfo:
    """Issue single-use sign-in links for the demo signatory (to their party case) and the coordinator."""
    from engine.directory import person_for_token
    from engine.links import issue_link, link_expiry, link_url

    now = ctx.clock.now()

    def issue(uow: UnitOfWork) -> None:
        session = uow.session
        agreement = session.get(Case, info.agreement_id)
        party = session.execute(
            select(Case).join(Organisation, col(Organisation.id) == col(Case.organisation_id))
            .where(col(Case.parent_id) == info.agreement_id, col(Organisation.key) == info.signatory_org)
        ).scalars().first()
        signer = session.execute(select(Person).where(col(Person.organisation_id) == (party.organisation_id if party
                                                                                 else None))).scalars().first()
        if agreement is None or party is None or signer is None:
            return
        expires = link_expiry(agreement.deadline, now)
        info.signatory_link = link_url(base_url, issue_link(session, person_id=signer.id or 0, case_id=party.id,
                                                            expires_at=expires, now=now))
        info.coordinator_link = link_url(base_url, issue_link(session, person_id=agreement.coordinator_id or 0,
                                                              case_id=agreement.id, expires_at=expires, now=now))
        admin = person_for_token(session, info.admin_token)
        if admin is not None and admin.id is not None:
            info.admin_link = link_url(base_url, issue_link(session, person_id=admin.id, case_id=None,
                                                            expires_at=expires, now=now))
    ctx.engine.run(issue)
    return info
