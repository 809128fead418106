"""Every link in every email opens, after signing in, a page that shows its case and offers what the mail asks.

The emails are the real ones: a year of agreements, a nomination, a council-term review and the annual cycle is
run on the movable clock, each event sends its templates to its real recipients, and every link each message
contains is followed as its recipient right after it was sent (a sign-in link: its page, then the button; a plain
`/cases/{id}` link: after signing in). Any 4xx or 5xx on the way fails, and so does landing anywhere but the case's
page (`api/web/case_pages.py`), a page without a heading, or one without the action the mail asks for. Templates
that carry a link but were never sent fail too. `pytest -s` prints the whole walk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select
from sqlmodel import Session

from api.web.case_pages import page_of
from engine.actors import SYSTEM
from engine.models import Case, OutboxMessage
from notifications.render import TEMPLATES_DIR
from tests.support.builders import User, create_agreement, make_user, render_mail
from tests.support.recurring import create_nomination, pair
from tests.support.task_agreements import approve_all, create_task_agreement
from tests.web.support import csrf_of, sign_in, web_client
from workflows.agreement import claims as finality
from workflows.agreement import service as agreements
from workflows.agreement.schemas import ClaimIn, ClaimOutcomeIn, DecisionIn, DocumentIn, TerminateIn
from workflows.cycle import reports, schedule
from workflows.cycle import service as cycles
from workflows.cycle.schemas import AgreeIn, CycleCreate, ReportIn, ScheduleIn
from workflows.nomination import appointments
from workflows.nomination import service as nominations
from workflows.nomination.read import read_nomination
from workflows.nomination.schemas import DecisionIn as NominationDecisionIn
from workflows.nomination.schemas import ProposalIn
from workflows.review import service as reviews
from workflows.review.schemas import ReviewStart
from workflows.triggers import dispatch

LINK = re.compile(r"https?://testserver(/[^\s\"'<>)]*)")
REDIRECTS = {301, 302, 303, 307, 308}
DECIDE_OR_SIGN = r'action="{page}/(decision|sign)"'
REPORT_FORM = r'action="/cycles/\d+/reports?(/\d+)?"'
# what each mail asks its recipient to do, as it must appear on the page its link opens ({page}: that page)
ACTIONS = {
    "agreement_circulated": DECIDE_OR_SIGN,
    "agreement_revised": DECIDE_OR_SIGN,
    "party_reminder": DECIDE_OR_SIGN,
    "party_declined": r'href="{page}/revise"',  # the coordinator revises the text
    "deadline_passed": r'action="{page}/remind"',  # the coordinator reminds the late parties
    "agreement_in_force": r'class="state state-in_force"',  # nothing left to do: the page says it is in force
    "claim_pending": r'action="{page}/claims/\d+/outcome"',  # the coordinator records the claim's outcome
    "claim_upheld": DECIDE_OR_SIGN,  # the party decides again
    "framework_terminated": r'action="{page}/continue-alone"',  # a task-specific agreement: continue it, or end it
    "nomination_requested": r'action="{page}"',  # the organisation's proposal form
    "nomination_proposal_reminder": r'action="{page}"',
    "nomination_term_ending": r'href="(/nominations/new|{page}/replacements)',  # a new request, or a replacement
    "cycle_milestone": r'(action="{page}/step"|href="{page}/measures/new")',  # move the year on, or plan it
    "cycle_report_requested": REPORT_FORM,
    "cycle_report_reminder": REPORT_FORM,
    "cycle_report_overdue": r'action="/cycles/\d+/[a-z/0-9]+"',  # the coordinator acts on the late report
    "review_reminder": r'action="/agreements/\d+/review/(confirm|start|terminate)"',
    "sign_in_link": r"<h1>",  # a link asked for from the sign-in page: the person's own start page
    "password_reset": r'action="{page}".*name="password"',  # the link is the page: the new password's form
}
SELF_CONTAINED = ("/signin/reset/",)  # links that are their own page: opened as they are, without signing in
# Links known to fail, with the reason: the test is an expected failure while only these fail, and names them.
# None now: the nomination proposal, cycle report and review pages landed while this test was written, and the
# nomination request stopped going to the asked organisation's coordinators, whom the engine does not let propose.
KNOWN: dict[str, str] = {}


def linked_templates() -> set[str]:
    """Return the templates whose text links to a case (a sign-in link, or /cases/{id})."""
    return {p.name.removesuffix(".txt.j2") for p in TEMPLATES_DIR.glob("*.txt.j2")
            if re.search(r"\{\{\s*link\s*\}\}|/cases/", p.read_text(encoding="utf-8"))}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@dataclass
class Followed:
    """One link of one message, followed as its recipient."""

    template: str
    to: str
    link: str
    chain: list[tuple[str, int]]
    problem: str | None

    def __str__(self) -> str:
        hops = " -> ".join(f"{path} {status}" for path, status in self.chain)
        return f"{self.template} to {self.to}: {self.link}: {hops}" + (f"  FAILS: {self.problem}" if self.problem
                                                                         else "  ok")


class Follower:
    """Follows the links of the messages queued since it last looked."""

    def __init__(self, ctx, client) -> None:  # type: ignore[no-untyped-def]
        self.ctx, self.client = ctx, client
        self.seen = 0
        self.results: list[Followed] = []
        self.sent: set[str] = set()

    def new_messages(self) -> list[OutboxMessage]:
        render_mail(self.ctx)  # as the mail job does before it sends
        with Session(self.ctx.db.engine) as session:
            rows = list(session.execute(select(OutboxMessage).where(OutboxMessage.id > self.seen)
                                        .order_by(OutboxMessage.id)).scalars())
            for row in rows:
                session.expunge(row)
        if rows:
            self.seen = rows[-1].id or self.seen
        return rows

    def follow_new(self) -> None:
        for message in self.new_messages():
            self.sent.add(message.template)
            paths = sorted(set(LINK.findall(message.text)) | set(LINK.findall(message.html)))
            for path in paths:
                self.results.append(self.follow(message, path))

    def _page(self, case_id: int | None) -> str:
        """Return the page a case opens on (`api.web.case_pages`), the start page for a link without a case."""
        if case_id is None:
            return "/tasks"
        with Session(self.ctx.db.engine) as session:
            case = session.get(Case, case_id)
            return (page_of(case) if case else None) or f"/cases/{case_id}"

    def follow(self, message: OutboxMessage, path: str) -> Followed:
        client = self.client
        client.cookies.clear()
        chain: list[tuple[str, int]] = []
        result = Followed(message.template, message.to_address, path, chain, None)
        if message.person_id is None:
            result.problem = "the message has no recipient who could sign in"
            return result
        page_path = None
        if path.startswith(SELF_CONTAINED):
            location, page_path = path, path
        elif path.startswith("/link/"):
            page = client.get(path)
            chain.append((path, page.status_code))
            if page.status_code != 200:
                result.problem = f"the sign-in link page answered {page.status_code}"
                return result
            used = client.post(path, data={"csrf_token": csrf_of(page.text)})
            chain.append((f"POST {path}", used.status_code))
            if used.status_code != 303:
                result.problem = f"signing in with the link answered {used.status_code}"
                return result
            location = used.headers["location"]
        else:
            sign_in(client, self.ctx, message.person_id)
            location = path
        response = None
        for _ in range(8):
            response = client.get(location)
            chain.append((location, response.status_code))
            if response.status_code not in REDIRECTS:
                break
            location = response.headers["location"]
        assert response is not None
        html = response.text
        page = page_path or self._page(message.case_id)
        action = ACTIONS.get(message.template, "(?!)").replace("{page}", re.escape(page))
        if response.status_code >= 400:
            result.problem = f"answered {response.status_code}"
        elif urlsplit(location).path != page:
            result.problem = f"landed on {location}, not on the case's page {page}"
        elif not re.search(r"<h1>.+</h1>", html):
            result.problem = "the page has no heading"
        elif not re.search(action, html, re.S):
            result.problem = f"the page does not offer the action ({action})"
        return result


def _decide(ctx, agreement_id: int, key: str, user: User, outcome: str = "approved") -> None:  # type: ignore[no-untyped-def]
    data = DecisionIn(outcome=outcome, body="Kunnanhallitus", decided_on="2026-03-02", section="§ 58",
                      note="Ei hyväksytä tässä muodossa." if outcome == "declined" else None)
    ctx.engine.run(lambda uow: agreements.decide(uow, agreement_id, key, data, user.actor))


def _nomination(ctx, coordinator: User, councils: dict[str, User], links: Follower) -> int:  # type: ignore[no-untyped-def]
    nid, _ = create_nomination(ctx, coordinator=coordinator, seats=1, deputies=False, deadline=date(2026, 3, 20),
                               term_start=date(2026, 5, 1), term_end=date(2026, 8, 31),
                               asked={"organisations": list(councils)})
    links.follow_new()  # nomination_requested, before anyone proposed
    key, proposer = next(iter(councils.items()))
    body = ProposalIn.model_validate({"candidates": pair(1, "member", "06")})
    ctx.engine.run(lambda uow: nominations.propose(uow, nid, key, body, proposer.actor))
    return nid


def _decide_nomination(ctx, nid: int, coordinator: User) -> None:  # type: ignore[no-untyped-def]
    with ctx.db.read_session() as s:
        view = read_nomination(s, ctx.registry, nid, SYSTEM)
    woman = next(c.id for p in view.proposals for c in p.candidates if c.name.startswith("Nainen"))
    body = NominationDecisionIn.model_validate({
        "meeting_date": "2026-03-23", "section": "§ 12", "seats": [{"seat": 1, "member": woman}],
        "justification": "Yksi paikka: kumpikin sukupuoli ei voi olla edustettuna."})
    ctx.engine.run(lambda uow: appointments.decide(uow, nid, body, coordinator.actor))
    ctx.engine.run(lambda uow: appointments.communicate(uow, nid, coordinator.actor))


@pytest.mark.slow  # a year and a half on the clock, every link followed: about 20 s
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # the pages do not depend on the database
def test_every_link_in_every_email_opens_its_case_with_the_action_it_asks_for(ctx) -> None:
    admin = make_user(ctx, roles="admin", name="Pää Käyttäjä")
    pirkanmaa = make_user(ctx, org_key="regional_council:06", roles="coordinator", name="Kaisa Koordinaattori")
    kuntaliitto = make_user(ctx, org_key="association:kuntaliitto", roles="coordinator", name="Kuntaliiton sihteeri",
                            language="sv")
    councils = {"regional_council:06": make_user(ctx, org_key="regional_council:06", name="Maakuntajohtaja 06"),
                "regional_council:02": make_user(ctx, org_key="regional_council:02", name="Landskapsdirektör 02",
                                                 language="sv")}
    run = ctx.engine.run
    with web_client(ctx) as client:
        links = Follower(ctx, client)
        # an agreement declined by one party and revised; one that enters into force; one nobody answers
        declined = create_agreement(ctx, parties=2, coordinator=pirkanmaa, languages={"municipality:020": "sv"})
        links.follow_new()  # agreement_circulated
        _decide(ctx, declined.id, declined.keys[1], declined.signatories[declined.keys[1]][0], "declined")
        links.follow_new()  # party_declined
        run(lambda uow: agreements.revise(uow, declined.id, DocumentIn(text="# Uusi versio\n\nKorjattu teksti.\n"),
                                          pirkanmaa.actor))
        links.follow_new()  # agreement_revised
        in_force = create_agreement(ctx, parties=2, coordinator=pirkanmaa)
        links.follow_new()  # agreement_circulated, before anyone decided
        for key in in_force.keys:
            _decide(ctx, in_force.id, key, in_force.signatories[key][0])
            run(lambda uow, key=key: agreements.sign(uow, in_force.id, key, in_force.signatories[key][0].actor))
        links.follow_new()  # agreement_in_force
        framework = create_agreement(ctx, parties=2, coordinator=pirkanmaa)  # a task-specific agreement on it,
        links.follow_new()  # agreement_circulated (in force, then the framework is terminated)
        approve_all(ctx, framework)
        links.follow_new()  # agreement_in_force
        task = create_task_agreement(ctx, framework)
        links.follow_new()  # agreement_circulated
        approve_all(ctx, task)
        links.follow_new()  # agreement_in_force
        run(lambda uow: agreements.terminate(uow, framework.id, TerminateIn(
            reason="Korvattu uudella puitesopimuksella", end_date=ctx.clock.now().date() + timedelta(days=30)),
            pirkanmaa.actor))
        links.follow_new()  # framework_terminated, to the task-specific agreement's coordinator
        contested = create_agreement(ctx, parties=1, coordinator=pirkanmaa)  # a claim for rectification on it
        links.follow_new()  # agreement_circulated
        claimed = contested.keys[0]
        _decide(ctx, contested.id, claimed, contested.signatories[claimed][0])
        claim_id = run(lambda uow: finality.record_claim(uow, contested.id, claimed, ClaimIn(
            claimant="Matti Meikäläinen", filed_on=date(2026, 3, 2)), pirkanmaa.actor).id)
        create_agreement(ctx, parties=1, coordinator=pirkanmaa, deadline=date(2026, 3, 20))
        review = run(lambda uow: reviews.start_now(uow, in_force.id, ReviewStart(deadline=date(2026, 11, 30)),
                                                   pirkanmaa.actor))
        assert review.id
        nid = _nomination(ctx, kuntaliitto, councils, links)  # follows the requests before Pirkanmaa proposes
        # the annual cycle: Pirkanmaa reports, Uusimaa does not
        run(lambda uow: schedule.set_schedule(uow, ScheduleIn(coordinator_id=kuntaliitto.id), admin.actor))
        cycle = run(lambda uow: cycles.create_cycle(uow, CycleCreate(year=2026), kuntaliitto.actor)).id
        measures = [{"title": "Ilmastotiekartta", "theme": "climate", "responsible": "regional_council:06",
                     "due_date": "2026-06-30"},
                    {"title": "Sote-edunvalvonta", "theme": "advocacy", "responsible": "regional_council:02",
                     "due_date": "2026-10-31"}]
        rows = run(lambda uow: cycles.agree(uow, cycle, AgreeIn.model_validate({"measures": measures}),
                                            kuntaliitto.actor))

        # sign-in links asked for on the sign-in page
        page = client.get("/signin")
        client.post("/signin/email", data={"csrf_token": csrf_of(page.text),
                                           "email": councils["regional_council:02"].person.email})
        links.follow_new()  # sign_in_link
        page = client.get("/signin/reset")  # and a coordinator who forgot their password
        client.post("/signin/reset", data={"csrf_token": csrf_of(page.text), "email": pirkanmaa.person.email})
        links.follow_new()  # password_reset

        for moment in (utc(2026, 3, 6, 8), utc(2026, 3, 13, 8), utc(2026, 3, 19, 8), utc(2026, 3, 23, 8)):
            ctx.clock.set(moment)  # party reminders, the nomination's reminder, the silent agreement overdue
            ctx.tick()
            links.follow_new()  # and the claim's weekly reminder to its coordinator (claim_pending)
        run(lambda uow: finality.decide_claim(uow, contested.id, claimed, claim_id or 0, ClaimOutcomeIn(
            outcome="upheld", outcome_on=date(2026, 3, 23)), pirkanmaa.actor))
        links.follow_new()  # claim_upheld
        _decide_nomination(ctx, nid, kuntaliitto)
        for moment in (utc(2026, 5, 5, 6), utc(2026, 7, 2, 7), utc(2026, 9, 1, 7), utc(2026, 10, 1, 7),
                       utc(2026, 11, 2, 8)):
            ctx.clock.set(moment)  # the term, its end near; the review's reminder; the next year; reporting
            ctx.tick()
            links.follow_new()
        report = ReportIn.model_validate({"summary": "Raportti", "measures": [
            {"measure_id": rows[0].id, "status": "done", "note": "Valmis"}]})
        run(lambda uow: reports.submit_report(uow, cycle, "regional_council:06", report,
                                              councils["regional_council:06"].actor))
        for moment in (utc(2027, 1, 8, 8), utc(2027, 1, 18, 8)):
            ctx.clock.set(moment)  # the report's reminder to Uusimaa, then its overdue notice
            ctx.tick()
            links.follow_new()

    summary = "\n".join(map(str, links.results))
    print(summary)  # noqa: T201 - the whole walk, for the report (pytest -s)
    missing = linked_templates() - links.sent
    assert not missing, f"never sent, so never followed: {sorted(missing)}"
    assert set(ACTIONS) >= linked_templates(), f"no expected action for {sorted(linked_templates() - set(ACTIONS))}"
    assert len(links.results) >= 2 * len(linked_templates())
    failing = {r.template for r in links.results if r.problem}
    if failing and failing <= set(KNOWN):
        pytest.xfail("known: " + "; ".join(f"{t}: {KNOWN[t]}" for t in sorted(failing)) + "\n" + summary)
    assert not failing, summary


def test_a_case_link_for_someone_who_may_not_see_it_says_so_in_their_language(ctx) -> None:
    fx = create_agreement(ctx, parties=1, circulate=False)
    outsider = make_user(ctx, org_key="municipality:091", name="Helsingin allekirjoittaja", language="sv")
    with web_client(ctx) as client:
        assert sign_in(client, ctx, outsider.id, fx.id) == f"/cases/{fx.id}"
        for path in (f"/cases/{fx.id}", "/cases/999999"):  # hidden and unknown look the same
            r = client.get(path)
            assert r.status_code == 404 and '<html lang="sv">' in r.text
            assert "<h1>Du kan inte öppna det här ärendet</h1>" in r.text
            assert "hör det inte till din organisation" in r.text and "Sidan hittades inte" not in r.text
        signer = fx.signatories[fx.keys[0]][0]
        sign_in(client, ctx, signer.id)
        assert client.get(f"/cases/{fx.id}").headers["location"] == f"/agreements/{fx.id}"


def test_a_nomination_or_report_link_for_another_organisation_is_refused_in_their_language(ctx) -> None:
    councils = {"regional_council:06": make_user(ctx, org_key="regional_council:06", name="Maakuntajohtaja 06")}
    coordinator = make_user(ctx, org_key="association:kuntaliitto", roles="coordinator")
    nid, _ = create_nomination(ctx, coordinator=coordinator, asked={"organisations": list(councils)})
    cycle = ctx.engine.run(lambda uow: cycles.create_cycle(uow, CycleCreate(year=2026), coordinator.actor)).id
    ctx.engine.run(lambda uow: cycles.agree(uow, cycle, AgreeIn.model_validate({"measures": [
        {"title": "Ilmastotiekartta", "theme": "climate", "responsible": "regional_council:06",
         "due_date": "2026-06-30"}]}), coordinator.actor))
    ctx.engine.run(lambda uow: dispatch(uow, cycle, "open_reporting", coordinator.actor, {}, None))
    with ctx.db.read_session() as s:
        children = s.execute(select(Case.id).where(Case.parent_id.in_([nid, cycle]))).scalars().all()
    assert len(children) == 2
    outsider = make_user(ctx, org_key="municipality:091", name="Helsingin allekirjoittaja", language="sv")
    with web_client(ctx) as client:
        sign_in(client, ctx, outsider.id)
        for case_id in children:
            r = client.get(f"/cases/{case_id}")
            while r.status_code == 303:
                r = client.get(r.headers["location"])
            assert r.status_code in (403, 404), (case_id, r.status_code)
            assert '<html lang="sv">' in r.text and re.search(r'<p class="detail">.+</p>', r.text), r.text[-800:]
