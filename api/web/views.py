"""What the agreement pages show: the agreement, every party's progress, what the viewer may do, and history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, cast

from markupsafe import Markup
from sqlalchemy import bindparam, func, select
from sqlmodel import Session, col
from starlette.requests import Request

from api.access import readable_case
from api.unit import ReadSession
from api.web.delegation import acting_actor, principals_of
from api.web.queries import HistoryEntry, history, is_overdue, org_name
from api.web.render import render_fragment
from api.web.routing import WebUser
from api.web.states import state_sets
from engine.actors import Actor
from engine.calendar import HELSINKI, effective_deadline
from engine.errors import CaseNotFound, NotFound, NotPermitted
from engine.models import Case, Organisation, Person
from engine.permissions import CaseReader, ReadAccess, case_access
from engine.registry import Registry
from workflows.agreement.cases import AGREEMENT
from workflows.agreement.models import DocumentVersion
from workflows.agreement.read import read_agreement
from workflows.agreement.schemas import AgreementRead, PartyRead
from workflows.review.schemas import ReviewRead
from workflows.review.service import list_reviews
from workflows.review.terms import term_of

if TYPE_CHECKING:
    from api.readcache import AgreementReads


@dataclass
class PartyView:
    """One party as the progress table shows it."""

    party: PartyRead
    name: str
    overdue: bool
    signers: list[tuple[str, str | None]]  # (signatory, substitute who signed for them)


@dataclass
class ActingAs:
    """A party the viewer can act for: their own organisation, or that of someone they substitute."""

    party: PartyView
    principal: Person | None
    signer_id: int
    listed: bool
    has_signed: bool
    can_decide: bool
    can_sign: bool
    approved: bool  # its body approved the current text (signatures may still be due)


@dataclass
class AgreementView:
    """Everything the agreement page needs."""

    agreement: AgreementRead
    parties: list[PartyView]
    acting: list[ActingAs]
    coordinates: bool
    deadline: date | None
    overdue: list[PartyView] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    permitted: list[str] = field(default_factory=list)  # what the viewer may fire on the agreement itself
    tags: frozenset[str] = frozenset()  # what the agreement's state counts as (awaiting_parties, renegotiating...)
    review: ReviewRead | None = None  # the council-term review whose outcome the viewer may record now
    term_reviewed: bool = False  # this council term already has its review (started or done)
    versions: int = 1  # how many versions of the text there are (earlier ones can be read and compared)
    table: Markup | None = None  # the parties' progress table, drawn (only when asked for: the agreement page)

    @property
    def names(self) -> dict[str, str]:
        """Return each party's name by organisation key."""
        return {p.party.organisation: p.name for p in self.parties}


def readable_by_any(session: Session, actors: list[Actor], agreement_id: int) -> None:
    """Raise CaseNotFound unless one of the actors may read the agreement."""
    for actor in actors:
        try:
            readable_case(session, actor, agreement_id)
            return
        except CaseNotFound:
            continue
    raise CaseNotFound(f"no agreement with id {agreement_id}")


_PARTY_NAMES = select(col(Organisation.key), col(Organisation.name_fi), col(Organisation.name_sv)).where(
    col(Organisation.key).in_(bindparam("keys", expanding=True)))
_PEOPLE_NAMES = select(col(Person.id), col(Person.name)).where(col(Person.id).in_(bindparam("ids", expanding=True)))


def _party_views(session: Session, data: AgreementRead, lang: str, today: date, awaiting: bool,
                 pending: tuple[str, ...]) -> list[PartyView]:
    # the parties' names as columns (org_name reads name_fi and name_sv), not 25 Organisation rows
    orgs = {o.key: o for o in session.execute(_PARTY_NAMES, {"keys": [p.organisation for p in data.parties]})}
    substitutes = {s.on_behalf_of_person_id for p in data.parties for s in p.signatures if s.on_behalf_of_person_id}
    names = dict(session.execute(_PEOPLE_NAMES, {"ids": list(substitutes)}).all()) if substitutes else {}
    return [PartyView(p, org_name(orgs[p.organisation], lang) if p.organisation in orgs else p.organisation_name,
                      awaiting and is_overdue(data.deadline, p.state, today, pending),
                      [(s.person_name, names.get(s.on_behalf_of_person_id or 0)) for s in p.signatures])
            for p in data.parties]


def _acting(user: WebUser, principals: list[tuple[Person, Actor]], org_keys: dict[int, str],
            parties: list[PartyView], reader: CaseReader) -> list[ActingAs]:
    out = []
    who: list[tuple[Person, Person | None, Actor]] = \
        [(user.person, None, user.actor)] if "signatory" in user.person.role_set else []
    who += [(p, p, actor) for p, actor in principals if "signatory" in p.role_set]
    for person, principal, actor in who:
        for view in parties:
            party = view.party
            if party.organisation != org_keys.get(person.organisation_id or 0):
                continue
            signatory = next((s for s in party.signatories if s.person_id == person.id), None)
            listed, signed = signatory is not None, bool(signatory and signatory.has_signed)
            permitted = reader.permitted(party.case_id, actor)  # the definition's answer: state, role, guards
            can_decide = "approve" in permitted
            can_sign = "sign" in permitted and listed and not signed
            if principal is not None and not (can_decide or can_sign or listed):
                continue
            approved = reader.machine_of(reader.case(party.case_id)).definition.has_tag(party.state, "approved")
            out.append(ActingAs(view, principal, person.id or 0, listed, signed, can_decide, can_sign, approved))
    return out


@dataclass(frozen=True)
class SharedView:
    """What the agreement page shows every reader alike on a day, in one language (kept in `api.readcache`'s
    cache while the agreement's fingerprint holds: shared by the requests that find it, never changed)."""

    data: AgreementRead
    parties: list[PartyView]
    deadline: date | None
    overdue: list[PartyView]
    tags: frozenset[str]
    versions: int
    table: Markup | None


_VERSIONS = select(func.count()).where(col(DocumentVersion.case_id) == bindparam("aid"))
_ORG_KEYS = select(col(Organisation.id), col(Organisation.key)).where(
    col(Organisation.id).in_(bindparam("ids", expanding=True)))


def _shared(session: Session, registry: Registry, agreement_id: int, lang: str, today: date,
            draw: bool) -> SharedView:
    try:
        data = read_agreement(session, agreement_id)
    except NotFound:
        raise CaseNotFound(f"no agreement with id {agreement_id}") from None
    definition = registry.machine("agreement").definition
    parties = _party_views(session, data, lang, today, definition.has_tag(data.state, "awaiting_parties"),
                           state_sets(registry).party_pending)
    versions = session.execute(_VERSIONS, {"aid": agreement_id}).scalar()
    table = render_fragment("_agreement_parties.html", lang, a=data, parties=parties, today=today) if draw else None
    return SharedView(data, parties, effective_deadline(data.deadline) if data.deadline else None,
                      [p for p in parties if p.overdue],
                      frozenset(definition.states[data.state].tags) if data.state in definition.states
                      else frozenset(), int(versions or 1), table)


def _cached_shared(session: Session, registry: Registry, reads: AgreementReads, actors: list[Actor],
                   agreement_id: int, lang: str, today: date) -> SharedView:
    """Check that one of the actors may read the agreement (on the fingerprint's facts, as the API read does),
    then return the shared part from the cache, keyed by (case, the best access level, language) for the
    fingerprint and the day; built, and kept only when the fingerprint read after building it still holds and
    the session is a read session (never what a write transaction saw)."""
    found = reads.current(session, agreement_id)
    if found is None:
        raise CaseNotFound(f"no agreement with id {agreement_id}")
    facts, fingerprint = found
    access = max(case_access(session, actor, cast(Case, facts)) for actor in actors)
    if access < ReadAccess.SHARED or facts.workflow != AGREEMENT:
        raise CaseNotFound(f"no agreement with id {agreement_id}")
    key, digest = _key(agreement_id, access, lang, today, fingerprint)
    shared: SharedView | None = reads.cache.lookup(key, digest)
    if shared is None:
        shared = _build_and_keep(session, registry, reads, key, digest, fingerprint, agreement_id, lang, today)
    return shared


def _key(agreement_id: int, access: ReadAccess, lang: str, today: date,
         fingerprint: bytes) -> tuple[tuple[str, int, int, str], bytes]:
    return ("agreement-page", agreement_id, int(access), lang), fingerprint + today.isoformat().encode()


def _build_and_keep(session: Session, registry: Registry, reads: AgreementReads, key: tuple[str, int, int, str],
                    digest: bytes, fingerprint: bytes, agreement_id: int, lang: str, today: date) -> SharedView:
    shared = _shared(session, registry, agreement_id, lang, today, draw=True)
    again = reads.current(session, agreement_id)
    if isinstance(session, ReadSession) and again is not None and again[1] == fingerprint:
        size = len(shared.data.document) + len(shared.table or "") + 512 * len(shared.parties)
        reads.cache.store(key, digest, shared, size)
    return shared


def warm_shared(session: Session, registry: Registry, reads: AgreementReads, agreement_id: int, lang: str,
                today: date, access: ReadAccess = ReadAccess.SHARED) -> bool:
    """Build and keep an agreement's shared part as a reader at `access` finds it (start-up, `api.warmup`: the
    first view of each open agreement then costs what later ones do); no reader, so no check: each request still
    checks its own reader before it looks the part up. Return whether it was kept."""
    found = reads.current(session, agreement_id)
    if found is None or found[0].workflow != AGREEMENT:
        return False
    key, digest = _key(agreement_id, access, lang, today, found[1])
    _build_and_keep(session, registry, reads, key, digest, found[1], agreement_id, lang, today)
    return reads.cache.lookup(key, digest) is not None


def agreement_view(session: Session, registry: Registry, user: WebUser, agreement_id: int, now: datetime,
                   lang: str, reads: AgreementReads | None = None) -> AgreementView:
    """Assemble the agreement page for a viewer (raises CaseNotFound when they may not see it).

    With `reads` (the agreement page) the access check runs on the read fingerprint's facts and what every reader
    sees alike comes from the cache (`_cached_shared`), with the parties' table drawn; without, it is read anew.
    """
    today = now.astimezone(HELSINKI).date()
    principals = principals_of(session, user.id, today)
    substitutes = [(p, acting_actor(session, user.actor, p.id, today)) for p in principals]
    actors = [user.actor] + [a for _p, a in substitutes]
    if reads is not None:
        shared = _cached_shared(session, registry, reads, actors, agreement_id, lang, today)
    else:
        readable_by_any(session, actors, agreement_id)
        shared = _shared(session, registry, agreement_id, lang, today, draw=False)
    data, parties = shared.data, shared.parties
    org_ids = {p.organisation_id for p in [user.person, *principals] if p.organisation_id}
    org_keys = dict(session.execute(_ORG_KEYS, {"ids": sorted(org_ids)}).all()) if org_ids else {}
    coordinates = user.actor.is_admin or (data.coordinator_id == user.id and "coordinator" in user.actor.roles)
    reader = CaseReader(registry, session, now)
    acting = _acting(user, substitutes, org_keys, parties, reader)
    case_ids = [agreement_id] + ([p.party.case_id for p in parties] if coordinates
                                 else [a.party.party.case_id for a in acting])
    # the review's own triggers, as the engine answers them for this viewer (none for a plain party)
    reviews = list_reviews(session, registry, agreement_id, user.actor) if coordinates else []
    review = next((r for r in reviews if {"confirm_unchanged", "revise"} & set(r.allowed_triggers)), None)
    term_reviewed = any(r.term_start == term_of(today)[0] for r in reviews)
    return AgreementView(data, parties, acting, coordinates, shared.deadline, shared.overdue,
                         history(session, sorted(set(case_ids))), reader.permitted(agreement_id, user.actor),
                         shared.tags, review, term_reviewed, shared.versions, shared.table)


def require_permitted(request: Request, session: Session, user: WebUser, case_id: int, *triggers: str) -> None:
    """Refuse (403, nothing written) a form whose step (any of `triggers`) the engine does not let this person take
    on the case: the same answer as the buttons the page showed."""
    reader = CaseReader(request.app.state.ctx.registry, session, request.app.state.ctx.clock.now())
    if not set(triggers) & set(reader.permitted(case_id, user.actor)):
        named = sorted(triggers)
        raise NotPermitted(f"you may not {'/'.join(named)} case {case_id}", case_id=case_id, action=named[0])
