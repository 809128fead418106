"""Administrators' pages: definitions with problems at their lines, versions, migrations, simulation, templates."""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import select
from sqlmodel import Session

from api.context import AppContext
from engine.models import Case
from tests.support.builders import make_user
from tests.web.scenario import proposal_v2, set_language
from tests.web.support import csrf_of, sign_in, web_client
from workflows.nomination import service as nominations
from workflows.nomination.schemas import NominationCreate, WaiveIn

LANGS = {"fi": "Ylläpito", "sv": "Administration", "en": "Administration"}


def test_every_admin_page_in_every_language_and_only_for_administrators(ctx) -> None:
    admin = make_user(ctx, roles="admin", name="Pää Käyttäjä")
    coordinator = make_user(ctx, org_key="regional_council:06", roles="coordinator")
    pages = {"/admin": "agreement_party", "/admin/workflows/agreement_party": "stateDiagram-v2",
             "/admin/workflows/agreement_party/simulate": 'name="offsets"',
             "/admin/workflows/agreement_party/migrate": 'name="from_version"',
             "/admin/templates": "party_reminder", "/admin/templates/party_reminder?lang=sv": "Påminnelse",
             "/admin/outbox": 'id="failed-heading"'}
    with web_client(ctx) as client:
        for path in pages:
            assert client.get(path).status_code == 303  # signed out: to the sign-in page
        sign_in(client, ctx, admin.id)
        for lang, word in LANGS.items():
            set_language(ctx, admin.id, lang)
            for path, content in pages.items():
                r = client.get(path)
                assert r.status_code == 200, (lang, path, r.text[:500])
                assert f'<html lang="{lang}">' in r.text and content in r.text and word in r.text, (lang, path)
        assert client.get("/admin/workflows/no_such_flow").status_code == 404
        assert client.get("/admin/templates/no_such_template").status_code == 404
        sign_in(client, ctx, coordinator.id)
        for path in pages:
            assert client.get(path).status_code == 403, path
        assert "/admin" not in client.get("/tasks").text.split("</nav>")[0]  # no link to what they cannot open


def test_the_editor_shows_problems_at_their_lines_then_saves_a_new_version(ctx) -> None:
    admin = make_user(ctx, roles="admin")
    with web_client(ctx) as client:
        sign_in(client, ctx, admin.id)
        page = client.get("/admin/workflows/agreement_party").text
        source = re.search(r'<textarea id="source"[^>]*>(.*?)</textarea>', page, re.S).group(1)
        source = source.replace("&#39;", "'").replace("&#34;", '"').replace("&amp;", "&").replace("&lt;", "<")
        assert "version: 2" in source  # the editor proposes the next version
        broken = source.replace("dest: approved", "dest: approvd", 1)
        line = broken.splitlines().index(next(x for x in broken.splitlines() if "approvd" in x)) + 1
        r = client.post("/admin/workflows/agreement_party", data={"csrf_token": csrf_of(page), "source": broken})
        assert r.status_code == 422
        assert f'href="#line-{line}"' in r.text and f"Rivi {line}:" in r.text and "approvd" in r.text
        assert re.search(rf'<li id="line-{line}" class="problem-line">', r.text)
        assert 'aria-invalid="true"' in r.text
        wrong_version = source.replace("version: 2", "version: 7")
        r = client.post("/admin/workflows/agreement_party", data={"csrf_token": csrf_of(page), "source": wrong_version,
                                                                   "action": "save"})
        assert r.status_code == 422 and "must be 2" in r.text and 'href="#line-3"' in r.text
        checked = client.post("/admin/workflows/agreement_party", data={"csrf_token": csrf_of(page), "source": source})
        assert checked.status_code == 200 and "Versio 2 on kunnossa" in checked.text
        assert ctx.registry.latest_version("agreement_party") == 1  # checking stores nothing
        saved = client.post("/admin/workflows/agreement_party",
                            data={"csrf_token": csrf_of(page), "source": source, "action": "save"})
        assert saved.status_code == 303 and saved.headers["location"].endswith("notice=saved&count=2")
        after = client.get(saved.headers["location"]).text
        assert "Versio 2 on tallennettu" in after and "version: 3" in after
    assert ctx.registry.latest_version("agreement_party") == 2


def _nomination(ctx: AppContext, coordinator) -> int:  # type: ignore[no-untyped-def]
    body = NominationCreate(requester={"name": "Valtiovarainministeriö", "email": "kirjaamo@vm.example"},
                            group="Lainvalmisteluryhmä", seats=[{}], term_start=date(2026, 6, 1),
                            term_end=date(2027, 5, 31), deadline=date(2026, 4, 15),
                            asked={"organisations": ["regional_council:06", "regional_council:02"]})
    case = ctx.engine.run(lambda uow: nominations.create_nomination(uow, body, coordinator.actor))
    ctx.engine.run(lambda uow: nominations.waive(uow, case.id, "regional_council:06", WaiveIn(), coordinator.actor))
    return int(case.id)


def test_a_migration_that_would_strand_cases_is_refused_and_a_full_mapping_moves_them(ctx) -> None:
    admin = make_user(ctx, roles="admin")
    coordinator = make_user(ctx, org_key="regional_council:06", roles="coordinator")
    nomination_id = _nomination(ctx, coordinator)
    with web_client(ctx) as client:
        sign_in(client, ctx, admin.id)
        page = client.get("/admin/workflows/nomination_proposal").text
        saved = client.post("/admin/workflows/nomination_proposal",
                            data={"csrf_token": csrf_of(page), "source": proposal_v2(ctx), "action": "save"})
        assert saved.status_code == 303
        form = client.get("/admin/workflows/nomination_proposal/migrate?from_version=1&to_version=2").text
        assert 'name="old" value="waived"' in form and 'name="old" value="asked"' in form
        assert client.get("/admin/workflows/nomination_proposal/migrate?from_version=1&to_version=1").status_code == 200
        token = csrf_of(form)
        refused = client.post("/admin/workflows/nomination_proposal/migrate", data={
            "csrf_token": token, "from_version": "1", "to_version": "2", "old": ["asked", "waived"], "new": ["", ""]})
        assert refused.status_code == 422
        assert "Versiossa 2 ei ole tilaa waived" in refused.text and 'href="#map-waived"' in refused.text
        moved = client.post("/admin/workflows/nomination_proposal/migrate", data={
            "csrf_token": token, "from_version": "1", "to_version": "2", "old": ["asked", "waived"],
            "new": ["", "passed"]})
        assert moved.status_code == 303 and moved.headers["location"].endswith("notice=migrated&count=2")
    with Session(ctx.db.engine) as session:
        rows = session.execute(select(Case.workflow_version, Case.state).where(
            Case.parent_id == nomination_id).order_by(Case.id)).all()
    assert sorted(rows) == [(2, "asked"), (2, "passed")]


def test_the_simulation_marks_dates_moved_by_holidays_and_weekends(ctx) -> None:
    admin = make_user(ctx, roles="admin")
    with web_client(ctx) as client:
        sign_in(client, ctx, admin.id)
        page = client.get("/admin/workflows/agreement_party/simulate").text
        assert 'value="2.3.2026"' in page  # starts today by default
        r = client.post("/admin/workflows/agreement_party/simulate", data={
            "csrf_token": csrf_of(page), "start": "2.3.2026", "deadline": "24.12.2026", "offsets": "-P7D, -P1D"})
        assert r.status_code == 200
        moved = [row for row in r.text.split("<tr") if 'class="moved-row"' in row]
        assert any("Jouluaatto" in row and "to 24.12.2026" in row and "ma 28.12.2026" in row for row in moved)
        assert any("viikonloppu" in row and "ke 23.12.2026" in row for row in moved)  # -P1D: Sunday 27.12.
        assert "2 siirtyi viikonlopun tai pyhäpäivän vuoksi" in r.text
        bad = client.post("/admin/workflows/agreement_party/simulate", data={
            "csrf_token": csrf_of(page), "start": "", "offsets": "-P7D, viikko", "path": "approve"})
        assert bad.status_code == 422 and "Kohta 2: ”viikko”" in bad.text and 'href="#start"' in bad.text
        path = client.post("/admin/workflows/agreement_party/simulate", data={
            "csrf_token": csrf_of(page), "start": "2.3.2026", "path": "sign"})
        assert path.status_code == 422 and "allowed: approve, decline" in path.text
        unsaved = client.post("/admin/workflows/agreement_party/simulate", data={
            "csrf_token": csrf_of(page), "start": "2.3.2026", "source": "name: agreement_party\nversion: x\n"})
        assert unsaved.status_code == 422 and 'href="#line-2"' in unsaved.text


def test_templates_preview_in_the_sandbox_save_per_language_and_revert(ctx) -> None:
    admin = make_user(ctx, roles="admin")
    with web_client(ctx) as client:
        sign_in(client, ctx, admin.id)
        page = client.get("/admin/templates/party_reminder?lang=sv").text
        shown = page.split('class="preview-html"')[1].split("</div>")[0]
        assert "Maija Meikäläinen" in shown and "<a href=" in shown and "style=" not in shown  # sanitised
        form = {"csrf_token": csrf_of(page), "lang": "sv", "subject": "Ny påminnelse: {{ case.title }}",
                "txt": "Hej {{ person.name }}", "html": "<p>Hej {{ person.name }}</p>"}
        preview = client.post("/admin/templates/party_reminder", data={**form, "action": "preview"})
        assert preview.status_code == 200 and "Ny påminnelse: Pirkanmaan puitesopimus" in preview.text
        assert "Hej Maija Meikäläinen" in preview.text
        script = client.post("/admin/templates/party_reminder", data={
            **form, "html": '<p onclick="steal()">Hej</p><script>steal()</script>', "action": "preview"})
        shown = script.text.split('class="preview-html"')[1].split("</div>")[0]
        assert "<p>Hej</p>" in shown and "steal" not in shown
        unsafe = client.post("/admin/templates/party_reminder",
                             data={**form, "txt": "{{ person.__class__ }}", "action": "save"})
        assert unsafe.status_code == 422 and "Hiekkalaatikko torjui pohjan" in unsafe.text
        assert 'href="#template"' in unsafe.text and "__class__" in unsafe.text
        syntax = client.post("/admin/templates/party_reminder", data={**form, "subject": "{{ x", "action": "preview"})
        assert syntax.status_code == 422 and 'href="#subject"' in syntax.text and "line 1" in syntax.text
        saved = client.post("/admin/templates/party_reminder", data={**form, "action": "save"})
        assert saved.status_code == 303
        listing = client.get("/admin/templates").text
        assert re.search(r"party_reminder.*?muokattu", listing, re.S)
        again = client.get(saved.headers["location"]).text
        assert "Pohja on tallennettu" in again and "Ny påminnelse: {{ case.title }}" in again
        assert client.get("/admin/templates/party_reminder?lang=fi").text.count("Ny påminnelse") == 0
        reverted = client.post("/admin/templates/party_reminder/revert", data={"csrf_token": csrf_of(page),
                                                                                "lang": "sv"})
        assert reverted.status_code == 303
        assert "Ny påminnelse" not in client.get("/admin/templates/party_reminder?lang=sv").text
        assert client.get("/admin/templates/party_reminder?lang=de").status_code == 422
