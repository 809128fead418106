"""Agreement operations: create, circulate, revise, decide, sign, withdraw, terminate; parent reactions."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlmodel import col

from engine.actors import SYSTEM, Actor
from engine.calendar import HELSINKI
from engine.errors import Conflict, InvalidInput, NotFound, NotPermitted
from engine.models import Case, Organisation, Person, table_of
from engine.records import CaseRow, TransitionRecord
from engine.service import FireContext, UnitOfWork, actor_roles
from workflows.agreement import claims
from workflows.agreement.cases import (
    AGREEMENT,
    COUNTED,
    LISTED,
    PARTY,
    SIGNED,
    agreement_case,
    count_signatures,
    detached,
    has_tag,
    hot,
    party_case,
)
from workflows.agreement.models import Decision, DocumentVersion, PartySignatory, Signature
from workflows.agreement.schemas import (
    AgreementCreate,
    DecisionIn,
    DocumentIn,
    PublicationIn,
    TerminateIn,
    WithdrawIn,
)

_CASE = table_of(Case)


def sha256_text(text: str) -> str:
    """Return the hex SHA-256 of a text's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalise_document(text: str) -> str:
    """Return the text as it is stored and hashed: LF line endings, no trailing blanks, one final newline.

    A browser's textarea sends CRLF and an editor may add or drop the last newline; none of that is a change a
    party has to decide on again, so the same words always give the same SHA-256 (the hash of what is stored,
    which is what the download of a version returns byte for byte).
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip(" \t") for line in lines).strip("\n") + "\n"


def normalise_section(section: str) -> str:
    """Write a minutes section as '§ 58'."""
    return "§ " + section.replace("§", "").strip()


# -- guards ------------------------------------------------------------------------------------------


def _parent_circulating(ctx: FireContext) -> bool:
    parent = ctx.uow.case(ctx.case.parent_id) if ctx.case.parent_id else None
    if parent is None or not ctx.uow.machine_of(parent).definition.has_tag(parent.state, "open_for_parties"):
        state = parent.state if parent else "missing"
        return ctx.refuse(f"the agreement is not circulating (it is {state})", "agreement.error.not_circulating",
                          workflow="agreement", state=state)
    return True


def _signatures_complete(ctx: FireContext) -> bool:
    return count_signatures(ctx.uow, ctx.case) >= int(ctx.case.data.get("required_signatures", 1))


def _all_parties_signed(ctx: FireContext) -> bool:
    children = ctx.uow.children(ctx.case.id)
    ok = bool(children) and all(has_tag(ctx.uow, c, "signed") for c in children)
    if not ok:
        return ctx.refuse("not every party has approved and signed the current text",
                          "agreement.error.not_all_signed")
    return ok


def _framework_flagged(ctx: FireContext) -> bool:
    """A task-specific agreement not yet in force may go on without its framework only once that was terminated."""
    if not ctx.case.data.get("framework_ended_on") or ctx.case.data.get("continued_alone"):
        return ctx.refuse("its framework agreement has not been terminated", "task_agreement.error.not_flagged")
    return True


AGREEMENT_GUARDS = {"all_parties_signed": _all_parties_signed, "framework_flagged": _framework_flagged}
PARTY_GUARDS = {"parent_circulating": _parent_circulating, "signatures_complete": _signatures_complete}


# -- the parent reacts to its parties ------------------------------------------------------------------


def react_to_party(uow: UnitOfWork, record: TransitionRecord) -> None:
    """Move the agreement when a party declines or when the last party has signed."""
    parent = uow.case(record.case.parent_id or 0)
    if not has_tag(uow, parent, "open_for_parties"):
        return
    org_key = record.case.data.get("organisation_key", "")
    if record.event_name == "PartyDeclined":
        uow.fire(parent.id, "require_renegotiation", actor=SYSTEM,
                 payload={"party": org_key, "reason": record.payload.get("note")},
                 document_hash=parent.data["sha256"])
    elif record.event_name == "PartySigned":
        # the first sibling not signed, if any (not 25 rows of states): the guard reads them in full when all have
        if _all_parties_signed_now(uow, parent.id):
            if claims.finality_awaited(uow, parent):  # the definition's enter_into_force_when_final
                uow.fire(parent.id, "await_finality", actor=SYSTEM, document_hash=parent.data["sha256"])
                return
            uow.fire(parent.id, "enter_into_force", actor=SYSTEM, payload={"sha256": parent.data["sha256"]},
                     document_hash=parent.data["sha256"])
            uow.set_data(parent, in_force_sha256=parent.data["sha256"], in_force_at=uow.now.isoformat())


# What a signature asks of its siblings, by the states every loaded version of the party workflow tags `signed`.
_UNSIGNED: dict[tuple[str, ...], Any] = {}


def _unsigned_statement(signed: tuple[str, ...]) -> Any:
    """The first child of an agreement that is not a party case in one of `signed` (its states, in id order)."""
    stmt = _UNSIGNED.get(signed)
    if stmt is None:
        cols = (_CASE.c.id, _CASE.c.workflow, _CASE.c.workflow_version, _CASE.c.state)
        stmt = _UNSIGNED[signed] = (
            select(*cols).where(_CASE.c.parent_id == bindparam("cid", type_=_CASE.c.id.type),
                                or_(_CASE.c.workflow != PARTY, and_(*(_CASE.c.state != s for s in signed))))
            .order_by(_CASE.c.id).limit(1))
    return stmt


def _all_parties_signed_now(uow: UnitOfWork, parent_id: int) -> bool:
    """Tell whether every child of an agreement is in a state its definition tags `signed`.

    The same answer as checking each child's state (`uow.child_states`), with one row read instead of all of
    them: the database skips the party cases in a state every loaded version tags `signed`, and the first other
    child decides, unless it is signed after all (a state only some versions tag, another workflow's child),
    when every child is checked one by one as before.
    """
    registry = uow.registry
    signed = tuple(sorted(set.intersection(*(
        set(m.definition.tagged("signed")) for (n, _v), m in registry.machines.items() if n == PARTY))))
    if not signed:  # pragma: no cover - no loaded version tags a state signed: nothing to skip
        return all(registry.machine(w, v).definition.has_tag(s, "signed")
                   for _i, w, v, s in uow.child_states(parent_id))
    for cid, workflow, version, state in uow.select(_unsigned_statement(signed), {"cid": parent_id}):
        row = uow._rows.get(cid)
        if row is not None:
            workflow, version, state = row.workflow, row.workflow_version, row.state
        if not registry.machine(workflow, version).definition.has_tag(state, "signed"):
            return False
        return all(registry.machine(w, v).definition.has_tag(s, "signed")
                   for _i, w, v, s in uow.child_states(parent_id))
    return True


# -- creation ------------------------------------------------------------------------------------------


def _resolve_parties(uow: UnitOfWork, data: AgreementCreate) -> list[tuple[Organisation, list[Person], int]]:
    keys = [p.organisation for p in data.parties]
    orgs = {o.key: o for o in uow.session.execute(
        select(Organisation).where(col(Organisation.key).in_(keys))).scalars()}
    person_ids = {pid for p in data.parties for pid in p.signatories}
    people = {p.id: p for p in uow.session.execute(
        select(Person).where(col(Person.id).in_(person_ids))).scalars()}
    seen: set[str] = set()
    out = []
    for i, party in enumerate(data.parties):
        where = f"parties[{i}]"
        org = orgs.get(party.organisation)
        if org is None:
            raise InvalidInput(f"{where}.organisation", f"unknown organisation {party.organisation!r} "
                               "(use kind:code, e.g. municipality:837)")
        if not org.active:
            raise InvalidInput(f"{where}.organisation", f"{party.organisation!r} is no longer active")
        if org.key in seen:
            raise InvalidInput(f"{where}.organisation", f"{party.organisation!r} is listed twice")
        seen.add(org.key)
        if len(set(party.signatories)) != len(party.signatories):
            raise InvalidInput(f"{where}.signatories", "a signatory is listed twice")
        signers = []
        for j, pid in enumerate(party.signatories):
            person = people.get(pid)
            if person is None:
                raise InvalidInput(f"{where}.signatories[{j}]", f"no person with id {pid}")
            if person.organisation_id != org.id:
                raise InvalidInput(f"{where}.signatories[{j}]",
                                   f"person {pid} does not belong to {org.key}")
            if "signatory" not in person.role_set or not person.active:
                raise InvalidInput(f"{where}.signatories[{j}]", f"person {pid} is not an active signatory")
            signers.append(person)
        if party.required_signatures > len(signers):
            raise InvalidInput(f"{where}.required_signatures",
                               f"needs {party.required_signatures} signatures but lists {len(signers)} signatories")
        out.append((org, signers, party.required_signatures))
    return out


def create_agreement(uow: UnitOfWork, data: AgreementCreate, actor: Actor,
                     framework: dict[str, Any] | None = None) -> CaseRow:
    """Create an agreement in draft with its first document version and one approval case per party.

    `framework` (a task-specific agreement's link, workflows/task_agreement) goes into its data and its first
    event's hashed payload, so its own audit chain names the framework it implements.
    """
    if not (actor.is_admin or "coordinator" in actor.roles):
        raise NotPermitted("only coordinators and administrators create agreements")
    today = uow.now.astimezone(HELSINKI).date()
    if data.deadline < today:
        raise InvalidInput("deadline", f"{data.deadline.isoformat()} is in the past")
    coordinator_id = data.coordinator_id if data.coordinator_id is not None else actor.person_id
    coordinator = uow.session.get(Person, coordinator_id) if coordinator_id else None
    if coordinator is None or "coordinator" not in coordinator.role_set:
        raise InvalidInput("coordinator_id", f"person {coordinator_id} is not a coordinator")
    parties = _resolve_parties(uow, data)
    offsets = _check_offsets(data.reminder_offsets)
    document = normalise_document(data.document)
    if not document.strip():
        raise InvalidInput("document", "is empty", message_id="agreement.error.text_empty")
    digest = sha256_text(document)
    parent = uow.create_case(AGREEMENT, actor=actor, title=data.title, coordinator_id=coordinator_id,
                             deadline=data.deadline,
                             data={"sha256": digest, "document_version": 1, **(framework or {})},
                             payload={"title": data.title, "parties": len(parties), "sha256": digest,
                                      **(framework or {})},
                             document_hash=digest)
    doc = DocumentVersion(case_id=parent.id, number=1, text=document, sha256=digest,
                          created_by=actor.person_id, created_at=uow.now)
    uow.session.add(doc)
    uow.session.flush()
    uow.set_data(parent, document_version_id=doc.id, reminder_offsets=offsets)
    for org, signers, required in parties:
        child = uow.create_case(PARTY, actor=actor, title=f"{data.title}: {org.name_fi}", parent_id=parent.id,
                                organisation_id=org.id, deadline=data.deadline,
                                data={"organisation_key": org.key, "required_signatures": required},
                                payload={"organisation": org.key, "required_signatures": required},
                                document_hash=digest)
        uow.session.add_all([PartySignatory(party_case_id=child.id, person_id=p.id or 0) for p in signers])
    uow.session.flush()
    return parent


def _check_offsets(offsets: list[str] | None) -> list[str] | None:
    if offsets is None:
        return None
    from engine.calendar import parse_offset  # local: the calendar module validates ISO 8601

    for i, text in enumerate(offsets):
        try:
            parse_offset(text)
        except ValueError as exc:
            raise InvalidInput(f"reminder_offsets[{i}]", str(exc)) from None
    return offsets


# -- operations on the agreement ------------------------------------------------------------------------


def circulate(uow: UnitOfWork, agreement_id: int, actor: Actor, expected_version: int | None = None) -> None:
    """Send a draft to the parties."""
    case = agreement_case(uow, agreement_id)
    uow.fire(case.id, "circulate", actor=actor, expected_version=expected_version,
             document_hash=case.data["sha256"])


def revise(uow: UnitOfWork, agreement_id: int, data: DocumentIn, actor: Actor,
           expected_version: int | None = None) -> DocumentVersion:
    """Store a new version of the text; void every decision and signature on the old one and ask again."""
    case = agreement_case(uow, agreement_id)
    text = normalise_document(data.text)
    if not text.strip():
        raise InvalidInput("text", "is empty", message_id="agreement.error.text_empty")
    digest = sha256_text(text)
    current = uow.session.get(DocumentVersion, case.data.get("document_version_id"))
    if digest == case.data["sha256"] or (current is not None and normalise_document(current.text) == text):
        # nothing changed (a text stored before normalisation compares by its normalised form): void nothing
        raise InvalidInput("text", "nothing changed: the text is the same as the current version",
                           message_id="agreement.error.text_unchanged",
                           params={"version": case.data["document_version"]})
    number = int(case.data["document_version"]) + 1
    doc = DocumentVersion(case_id=case.id, number=number, text=text, sha256=digest, note=data.note,
                          created_by=actor.person_id, created_at=uow.now)
    payload: dict[str, Any] = {"version": number, "sha256": digest}
    if data.note:
        payload["note"] = data.note
    uow.fire(case.id, "revise", actor=actor, payload=payload, expected_version=expected_version,
             document_hash=digest)
    uow.session.add(doc)
    uow.session.flush()
    uow.set_data(case, sha256=digest, document_version=number, document_version_id=doc.id)
    children = uow.children(case.id)
    ids = [c.id for c in children]
    for table in (Decision, Signature):
        uow.session.execute(update(table).where(col(table.party_case_id).in_(ids),
                                                col(table.voided_at).is_(None)).values(voided_at=uow.now))
    for child in children:
        if has_tag(uow, child, "acted"):  # a party still asked on the old text is simply asked on the new one
            uow.fire(child.id, "reinvite", actor=SYSTEM, payload={"sha256": digest}, document_hash=digest)
    return doc


def withdraw(uow: UnitOfWork, agreement_id: int, data: WithdrawIn, actor: Actor) -> None:
    """Withdraw an agreement that is not in force; release its parties."""
    case = agreement_case(uow, agreement_id)
    payload = {"reason": data.reason} if data.reason else {}
    uow.fire(case.id, "withdraw", actor=actor, payload=payload, document_hash=case.data["sha256"])
    _release_parties(uow, case)


def terminate(uow: UnitOfWork, agreement_id: int, data: TerminateIn, actor: Actor) -> None:
    """End an agreement in force, with a reason and an end date."""
    case = agreement_case(uow, agreement_id)
    if data.end_date < uow.now.astimezone(HELSINKI).date():
        raise InvalidInput("end_date", f"{data.end_date.isoformat()} is in the past")
    uow.fire(case.id, "terminate", actor=actor,
             payload={"reason": data.reason, "end_date": data.end_date.isoformat()},
             document_hash=case.data["sha256"])
    uow.set_data(case, end_date=data.end_date.isoformat())
    _release_parties(uow, case)


def _release_parties(uow: UnitOfWork, case: CaseRow) -> None:
    for child in uow.children(case.id):
        if uow.may(child, "release"):
            uow.fire(child.id, "release", actor=SYSTEM, document_hash=case.data["sha256"])


# -- operations of a party ----------------------------------------------------------------------------------


def check_text_seen(parent: CaseRow, seen_sha256: str | None) -> None:
    """Refuse an act on a text other than the current one (checked under the lock, so no revision slips in)."""
    if seen_sha256 is not None and seen_sha256 != parent.data["sha256"]:
        version = int(parent.data["document_version"])
        raise Conflict(f"the text was revised: the current version is {version} "
                       f"(SHA-256 {parent.data['sha256']}), not the one with SHA-256 {seen_sha256}; "
                       "read the current text and act again",
                       message_id="agreement.error.revised_to",
                       params={"version": version, "sha256": parent.data["sha256"]},
                       current_version=version, current_sha256=parent.data["sha256"])


def decide(uow: UnitOfWork, agreement_id: int, organisation_key: str, data: DecisionIn,
           actor: Actor) -> tuple[Decision, bool]:
    """Record a party's decision on the current text; a repeat of the stored decision changes nothing."""
    party = party_case(uow, agreement_id, organisation_key)
    parent = uow.case(agreement_id)
    check_text_seen(parent, data.document_sha256)
    _may_decide(uow, party, actor, organisation_key)  # before the repeat check: it would answer anyone
    today = uow.now.astimezone(HELSINKI).date()
    if data.decided_on > today:
        raise InvalidInput("decided_on", f"{data.decided_on.isoformat()} is in the future")
    section = normalise_section(data.section)
    minutes = str(data.minutes_url) if data.minutes_url else None
    claims.check_publication(data.decided_on, data.published_on, data.notice_sent_on)
    compiled, cursor = hot(uow)
    current = cursor.rows(compiled.current_decision, {"party": party.id})
    if current and tuple(current[0][1:]) == (data.outcome, data.body, data.decided_on, section, minutes, data.note):
        existing = uow.session.get(Decision, current[0][0])
        if existing is None:  # pragma: no cover - read in this transaction a moment ago
            raise NotFound(f"decision {current[0][0]} vanished")
        if (data.published_on, data.notice_sent_on) != (existing.published_on, existing.notice_sent_on) and (
                data.published_on or data.notice_sent_on):  # the same decision, now with its publication date
            dates = PublicationIn(published_on=data.published_on or existing.published_on,
                                  notice_sent_on=data.notice_sent_on or existing.notice_sent_on)
            return claims.record_publication(uow, agreement_id, organisation_key, dates, actor), True
        return existing, False
    values: dict[str, Any] = dict(
        party_case_id=party.id, outcome=data.outcome, body=data.body, decided_on=data.decided_on, section=section,
        minutes_url=minutes, published_on=data.published_on, notice_sent_on=data.notice_sent_on, note=data.note,
        document_version_id=parent.data["document_version_id"], document_sha256=parent.data["sha256"],
        recorded_by=actor.person_id, on_behalf_of_person_id=actor.on_behalf_of_person_id, recorded_at=uow.now)
    trigger = "approve" if data.outcome == "approved" else "decline"
    payload: dict[str, Any] = {"body": data.body, "decided_on": data.decided_on.isoformat(), "section": section}
    if minutes:
        payload["minutes_url"] = minutes
    if data.published_on:
        payload["published_on"] = data.published_on.isoformat()
    if data.notice_sent_on:
        payload["notice_sent_on"] = data.notice_sent_on.isoformat()
    if data.note:
        payload["note"] = data.note
    decision_id = cursor.insert(compiled.decision, dict(values))
    payload["decision_id"] = decision_id
    uow.fire(party.id, trigger, actor=actor, payload=payload, document_hash=parent.data["sha256"])
    return detached(Decision, {"id": decision_id, **values, "voided_at": None}), True


def _may_decide(uow: UnitOfWork, party: CaseRow, actor: Actor, organisation_key: str) -> None:
    needed = {r for t in uow.machine_of(party).definition.transitions_for("approve") for r in t.roles}
    if not actor_roles(uow, party, actor) & needed:
        raise NotPermitted(f"you may not record the decision of {organisation_key}",
                           case_id=party.id, action="decide")


def sign(uow: UnitOfWork, agreement_id: int, organisation_key: str, actor: Actor,
         seen_sha256: str | None = None) -> tuple[Signature, bool]:
    """Add the caller's signature for their organisation; a repeated signature changes nothing."""
    party = party_case(uow, agreement_id, organisation_key)
    parent = uow.case(agreement_id)
    check_text_seen(parent, seen_sha256)
    signer_id = actor.on_behalf_of_person_id or actor.person_id
    if actor.organisation_id != party.organisation_id:
        raise NotPermitted(f"you may sign only for your own organisation, not {organisation_key}",
                           case_id=party.id, action="sign")
    version_id = parent.data["document_version_id"]
    compiled, cursor = hot(uow)
    listed = cursor.rows(compiled.listed, {"party": party.id, "person": signer_id, "version": version_id})
    if not listed:
        raise NotPermitted(f"you are not a listed signatory of {organisation_key} on this agreement",
                           case_id=party.id, action="sign")
    if listed[0][1] is not None:
        existing = uow.session.get(Signature, listed[0][1])
        if existing is None:  # pragma: no cover - read in this transaction a moment ago
            raise NotFound(f"signature {listed[0][1]} vanished")
        return existing, False
    if not uow.may(party, "sign"):
        allowed = uow.machine_of(party).allowed_triggers(party.state)
        raise Conflict(f"{organisation_key} cannot sign in state {party.state!r}: its body must approve the "
                       f"current text first; allowed: {', '.join(allowed) or 'none'}", allowed=allowed,
                       message_id="agreement.error.sign_before_approval",
                       params={"workflow": party.workflow, "state": party.state, "trigger": "sign"})
    values: dict[str, Any] = dict(
        party_case_id=party.id, person_id=signer_id or 0,
        on_behalf_of_person_id=actor.person_id if actor.on_behalf_of_person_id else None,
        document_version_id=version_id, document_sha256=parent.data["sha256"], signed_at=uow.now)
    signature_id = cursor.insert(compiled.signature, dict(values))
    token = COUNTED.set((party.id, version_id, int(listed[0][2]) + 1))  # the one just written counts too
    try:
        uow.fire(party.id, "sign", actor=actor, payload={"signature_id": signature_id, "signatory": signer_id},
                 document_hash=parent.data["sha256"])
    finally:
        COUNTED.reset(token)
    return detached(Signature, {"id": signature_id, **values, "voided_at": None}), True


def decision_citation(decision: Decision) -> str:
    """Cite a decision as 'Kunnanhallitus 12.3.2026 § 58'."""
    d: date = decision.decided_on
    return f"{decision.body} {d.day}.{d.month}.{d.year} {decision.section}"


# -- who reminders and notices go to -------------------------------------------------------------------------


def recipients(uow: UnitOfWork, case: CaseRow, role: str) -> list[int]:
    """Return the person ids a role means on an agreement or party case."""
    agreement = case if case.workflow == AGREEMENT else uow.case(case.parent_id or 0)
    if role == "coordinator":
        return [agreement.coordinator_id] if agreement.coordinator_id else []
    if role in ("party", "all_signatories"):
        # the parties' states, then one query for all their signatories (and one for who has signed)
        states = ([(case.id, case.workflow, case.workflow_version, case.state)] if case.workflow == PARTY
                  else uow.child_states(agreement.id))
        asked: list[int] = []
        approved: set[int] = set()
        for party_id, workflow, version, state in states:
            definition = uow.registry.machine(workflow, version).definition
            if role == "party" and (definition.has_tag(state, "signed") or definition.is_final(state)):
                continue
            asked.append(party_id)
            if role == "party" and definition.has_tag(state, "approved"):  # only those who have not signed yet
                approved.add(party_id)
        if not asked:
            return []
        conn = uow.session.connection()
        signed = ({(p, s) for p, s in conn.execute(SIGNED, {"parties": sorted(approved)})} if approved
                  else set())
        listed: dict[int, list[int]] = {}
        for party_id, person_id in conn.execute(LISTED, {"parties": asked}):
            if (party_id, person_id) not in signed:
                listed.setdefault(party_id, []).append(person_id)
        out: dict[int, None] = {}  # in party order, then listing order; a person listed twice comes once
        for party_id in asked:
            out.update(dict.fromkeys(listed.get(party_id, ())))
        return list(out)
    if role == "regional_director":
        council = [c for c in uow.children(agreement.id)
                   if str(c.data.get("organisation_key", "")).startswith("regional_council:")]
        return [p for c in council for p in uow.session.execute(select(col(PartySignatory.person_id)).where(
            col(PartySignatory.party_case_id) == c.id)).scalars()]
    return []
