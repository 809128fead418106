"""Demo data: Pirkanmaa's framework agreement with its 25 real parties part-way through circulation, an agreement
with an overdue party, a nomination request waiting for proposals and this year's cycle in its reporting phase."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import HttpUrl
from sqlalchemy import select
from sqlmodel import Session, col

from api.context import AppContext
from engine.actors import Actor
from engine.calendar import HELSINKI, effective_deadline
from engine.clock import ManualClock
from engine.directory import DEFAULT_ORGANISATIONS, ensure_admin, import_organisations, issue_token
from engine.models import Case, Organisation, Person
from engine.service import Engine, UnitOfWork
from engine.settings import Settings
from workflows.agreement import service
from workflows.agreement.models import PartySignatory
from workflows.agreement.record import generate_self_signed
from workflows.agreement.schemas import AgreementCreate, DecisionIn, PartyIn
from workflows.cycle import service as cycles
from workflows.cycle.schemas import AgreeIn, CycleCreate
from workflows.nomination import service as nominations
from workflows.nomination.schemas import NominationCreate
from workflows.triggers import dispatch

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
SIGNATORY_ORG = "municipality:837"  # Tampere: the demo's signatory, whose board has still to decide
OVERDUE_PARTIES = ["wellbeing_county:08", "municipality:211", "municipality:980"]  # Ylöjärvi never answered
OVERDUE_TEXT = """# Pirkanmaan hyvinvointialueen ja kuntien yhdyspintasopimus 2026

## 1 Tarkoitus
Sovitaan hyvinvoinnin ja terveyden edistämisen yhteistyöstä hyvinvointialueen ja kuntien välillä.
"""
IN_FORCE_TITLE = "Pirkanmaan kulttuuriyhteistyösopimus 2026"
IN_FORCE_PARTIES = ["regional_council:06", "municipality:211", "municipality:980"]  # in force: its sealed record
IN_FORCE_TEXT = """# Pirkanmaan kulttuuriyhteistyösopimus 2026

## 1 Tarkoitus
Sovitaan maakunnan kulttuuripalvelujen yhteistyöstä, myös saamenkielisten palvelujen saavutettavuudesta.

## 2 Kielet
Aineistot julkaistaan suomeksi ja ruotsiksi (på svenska), ja tapahtumien nimet myös saameksi:
Sámi kultuvra, Čakča, Giđđa, Ŋuolggat, Šiella, Ŧ ja Žiehpa.

## 3 Voimassaolo
Sopimus on voimassa toistaiseksi.
"""
# the second region: Varsinais-Suomi's council and two of its municipalities (the council is asked for
# nominations and reports on a measure of the annual cycle)
SECOND_REGION = [("regional_council:02", "Maakuntajohtaja, Varsinais-Suomen liitto", "signatory", "fi"),
                 ("regional_council:02", "Maakuntahallituksen puheenjohtaja, Varsinais-Suomi", "chair", "sv"),
                 ("municipality:853", "Johtaja, Turku", "signatory", "fi"),
                 ("municipality:202", "Direktör, S:t Karins", "signatory", "sv")]
MEASURES = [("Ilmastotyön yhteinen tiekartta", "climate", "regional_council:06", "09-30"),
            ("Työperäisen maahanmuuton palvelut", "work_based_immigration", "regional_council:02", "10-31")]


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
    overdue_agreement_id: int = 0  # a small agreement past its deadline, one party never answered
    nomination_id: int = 0  # a request for nominations waiting for the councils' proposals
    cycle_id: int = 0  # this year's annual cycle in its reporting phase, report requests out
    in_force_agreement_id: int = 0  # a small agreement in force, with its sealed record


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


def ensure_demo_seal(settings: Settings, folder: Path = Path(".vuosikello-demo-seal")) -> Path:
    """Give the demo a seal for its sealed records: a self-signed certificate made once, kept in `folder`.

    Only when no seal is configured; a relying party trusts this certificate explicitly (README "Sealed records").
    """
    key, cert = folder / "seal-key.pem", folder / "seal-cert.pem"
    if settings.seal_pkcs12_file is None and settings.seal_key_file is None:
        if not (key.exists() and cert.exists()):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            generate_self_signed(key, cert, common_name="Vuosikello demo seal (self-signed)")
        settings.seal_key_file, settings.seal_cert_file = key, cert
    return cert


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
        first_muni = next(o for o in orgs if o.key == SIGNATORY_ORG)  # its board has still to decide
        signatory_token = issue_token(session, signers[first_muni.key].id or 0, now, "demo")
        _second_region(session, now)
        # the first agreement loaded (ordered: without ORDER BY, PostgreSQL may return any row, e.g. the overdue one)
        existing = session.execute(select(col(Case.id)).where(col(Case.workflow) == "agreement")
                                   .order_by(col(Case.id)).limit(1)).scalar()
        return orgs, council, coordinator, signers, second, coordinator_token, first_muni, signatory_token, existing

    (orgs, council, coordinator, signers, second, coordinator_token, first_muni, signatory_token,
     existing) = ctx.engine.run(load_people)
    info = DemoInfo(existing or 0, admin_token, coordinator_token, signatory_token, first_muni.key)
    if existing:
        info.overdue_agreement_id, info.nomination_id, info.cycle_id = ctx.engine.run(_recurring_ids)
        info.in_force_agreement_id = ctx.engine.run(lambda uow: int(uow.session.execute(
            select(col(Case.id)).where(col(Case.title) == IN_FORCE_TITLE)).scalar() or 0))
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
    info.overdue_agreement_id = _overdue_agreement(ctx, coord, signers)
    info.nomination_id = _nomination(ctx, coord)
    info.cycle_id = _cycle_in_reporting(ctx, coord)
    info.in_force_agreement_id = _agreement_in_force(ctx, coord, signers)
    ctx.run_timers()  # what is already due now fires: the overdue party is marked and its coordinator told
    return info


def _agreement_in_force(ctx: AppContext, coord: Actor, signers: dict[str, Person]) -> int:
    """A three-party agreement every party approved and signed: in force, its sealed record made after the commit."""
    today = ctx.clock.now().astimezone(HELSINKI).date()
    body = AgreementCreate(title=IN_FORCE_TITLE, document=IN_FORCE_TEXT, deadline=today + timedelta(days=30),
                           parties=[PartyIn(organisation=k, signatories=[signers[k].id or 0], required_signatures=1)
                                    for k in IN_FORCE_PARTIES])
    case = ctx.engine.run(lambda uow: service.create_agreement(uow, body, coord))
    ctx.engine.run(lambda uow: service.circulate(uow, case.id, coord))
    for i, key in enumerate(IN_FORCE_PARTIES):
        person = signers[key]
        actor = Actor(person.id, person.name, person.role_set, person.organisation_id)
        kind, code = key.split(":")
        decision = DecisionIn(outcome="approved", body=BODIES[kind], decided_on=today - timedelta(days=7 - i),
                              section=f"§ {71 + i}", minutes_url=HttpUrl(f"https://example.fi/{code}/poytakirja"))
        ctx.engine.run(partial(service.decide, agreement_id=case.id, organisation_key=key, data=decision, actor=actor))
        ctx.engine.run(partial(service.sign, agreement_id=case.id, organisation_key=key, actor=actor))
    return case.id


def _second_region(session: Session, now: datetime) -> None:
    """Add Varsinais-Suomi's people: the council's director and chair, and signatories of Turku and Kaarina."""
    for key, name, handle, lang in SECOND_REGION:
        org = session.scalars(select(Organisation).where(col(Organisation.key) == key)).one()
        _person(session, org, name, "signatory", now, lang, handle=handle)


def _overdue_agreement(ctx: AppContext, coord: Actor, signers: dict[str, Person]) -> int:
    """A three-party agreement circulated 40 days ago with a deadline 10 days ago: two signed, one never answered.

    It is built on a clock set back 40 days (a deadline may not be set in the past), so its history reads as it
    happened; the timers that fell due since then fire when the demo starts.
    """
    now = ctx.clock.now()
    past = Engine(ctx.db, ctx.registry, ManualClock(now - timedelta(days=40)))
    deadline = (now - timedelta(days=10)).astimezone(HELSINKI).date()
    past_today = (now - timedelta(days=40)).astimezone(HELSINKI).date()
    body = AgreementCreate(title="Pirkanmaan yhdyspintasopimus 2026", document=OVERDUE_TEXT, deadline=deadline,
                           parties=[PartyIn(organisation=k, signatories=[signers[k].id or 0], required_signatures=1)
                                    for k in OVERDUE_PARTIES])
    case = past.run(lambda uow: service.create_agreement(uow, body, coord))
    past.run(lambda uow: service.circulate(uow, case.id, coord))
    for i, key in enumerate(OVERDUE_PARTIES[:-1]):  # the last one is overdue
        person = signers[key]
        actor = Actor(person.id, person.name, person.role_set, person.organisation_id)
        kind = key.split(":")[0]
        decision = DecisionIn(outcome="approved", body=BODIES[kind], decided_on=past_today - timedelta(days=3 - i),
                              section=f"§ {12 + i}")
        past.run(partial(service.decide, agreement_id=case.id, organisation_key=key, data=decision, actor=actor))
        past.run(partial(service.sign, agreement_id=case.id, organisation_key=key, actor=actor))
    return case.id


def _nomination(ctx: AppContext, coord: Actor) -> int:
    """A ministry's request for a member and a deputy from Pirkanmaa and Varsinais-Suomi, proposals due in 3 weeks."""
    today = ctx.clock.now().astimezone(HELSINKI).date()
    deadline = effective_deadline(today + timedelta(days=21))
    start = deadline + timedelta(days=45)
    body = NominationCreate.model_validate({
        "requester": {"name": "Valtiovarainministeriö", "email": "kirjaamo@vm.example.fi",
                      "contact_person": "Neuvotteleva virkamies Virtanen", "language": "fi"},
        "group": "Alueiden kehittämisen lainvalmisteluryhmä", "seats": [{"has_deputy": True}],
        "term_start": start.isoformat(), "term_end": start.replace(year=start.year + 2).isoformat(),
        "deadline": deadline.isoformat(), "asked": {"organisations": ["regional_council:06", "regional_council:02"]}})
    return int(ctx.engine.run(lambda uow: nominations.create_nomination(uow, body, coord)).id)


def _cycle_in_reporting(ctx: AppContext, coord: Actor) -> int:
    """This year's annual cycle with two measures, moved on by its coordinator to reporting: requests are out."""
    year = ctx.clock.now().astimezone(HELSINKI).year
    case = ctx.engine.run(lambda uow: cycles.create_cycle(uow, CycleCreate(year=year), coord))
    measures = [{"title": t, "theme": th, "responsible": r, "due_date": f"{year}-{d}"} for t, th, r, d in MEASURES]
    ctx.engine.run(lambda uow: cycles.agree(uow, case.id, AgreeIn.model_validate({"measures": measures}), coord))
    for trigger in ("start_year", "open_reporting"):  # whichever the year has not reached yet
        def step(uow: UnitOfWork, trigger: str = trigger) -> None:
            cycle = uow.case(case.id)
            if trigger in uow.machine_of(cycle).allowed_triggers(cycle.state):
                dispatch(uow, case.id, trigger, coord, {}, None)
        ctx.engine.run(step)
    return int(case.id)


def _recurring_ids(uow: UnitOfWork) -> tuple[int, int, int]:
    """Find the demo's overdue agreement, nomination and cycle in a database loaded earlier."""
    def first(workflow: str, title: str | None = None) -> int:
        stmt = select(col(Case.id)).where(col(Case.workflow) == workflow)
        if title is not None:
            stmt = stmt.where(col(Case.title) == title)
        return int(uow.session.execute(stmt.order_by(col(Case.id))).scalars().first() or 0)
    return first("agreement", "Pirkanmaan yhdyspintasopimus 2026"), first("nomination"), first("cycle")


def sign_in_links(ctx: AppContext, info: DemoInfo, base_url: str) -> DemoInfo:
    """Issue single-use sign-in links: the signatory who still has to act (to their party case), the coordinator
    (to the agreement) and the administrator (to their start page; /admin and /people from there)."""
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
        signer = session.execute(select(Person).join(PartySignatory, col(PartySignatory.person_id) == col(Person.id))
                                 .where(col(PartySignatory.party_case_id) == (party.id if party else None))
                                 .order_by(col(PartySignatory.id))).scalars().first()
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


def banner(info: DemoInfo, base: str) -> list[str]:
    """Return the lines the demo prints: a sign-in link for each kind of person, then where the demo data is.

    Each sign-in link works once: open it, press the button, and the browser is signed in as that person.
    """
    rows = [("sign in as a signatory", info.signatory_link),
            ("", "(Tampere: its board has still to decide, then sign)"),
            ("sign in as the coordinator", info.coordinator_link),
            ("sign in as administrator", info.admin_link),
            ("", f"(then {base}/admin and {base}/people)"),
            ("agreement in circulation", f"{base}/agreements/{info.agreement_id}"),
            ("a party past its deadline", f"{base}/agreements/{info.overdue_agreement_id}"),
            ("in force, sealed record", f"{base}/agreements/{info.in_force_agreement_id}"),
            ("nominations asked for", f"{base}/nominations/{info.nomination_id}"),
            ("annual cycle, reporting", f"{base}/cycles/{info.cycle_id}"),
            ("captured mail", f"{base}/mail   (signed in as administrator)"),
            ("API docs", f"{base}/docs"),
            ("admin token", info.admin_token),
            ("coordinator token", info.coordinator_token),
            ("signatory token", f"{info.signatory_token}  ({info.signatory_org})")]
    lines = [f"  {label + ':' if label else '':<28}{value}" for label, value in rows]
    curl = f"  try: curl -H 'Authorization: Bearer {info.admin_token}' {base}/api/v1/agreements/{info.agreement_id}"
    return ["", "Vuosikello demo", "=" * 15, *lines, curl, ""]
