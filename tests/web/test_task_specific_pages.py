"""Task-specific agreement pages through the whole app (CSRF, sessions, the request's unit of work): start one
from the framework's page, the link both ways, the warning about parties outside the framework, the framework's
review and termination as the coordinator meets them, in fi and sv. The browser walk is in
test_task_specific_browser.py."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import Session

from api.context import AppContext
from engine.models import Case, Event
from tests.support.builders import AgreementFixture, create_agreement, make_user
from tests.support.task_agreements import approve_all, create_task_agreement
from tests.web.scenario import set_language
from tests.web.support import csrf_of, sign_in, web_client


def in_force(ctx: AppContext, parties: int = 3) -> AgreementFixture:
    fx = create_agreement(ctx, parties=parties)
    approve_all(ctx, fx)
    return fx


def written(ctx: AppContext) -> tuple[int, int]:
    with Session(ctx.db.engine) as s:
        return (
            int(s.execute(select(func.count()).select_from(Case)).scalar_one()),
            int(s.execute(select(func.count()).select_from(Event)).scalar_one()),
        )


def state(ctx: AppContext, case_id: int) -> str:
    with Session(ctx.db.engine) as s:
        case = s.get(Case, case_id)
        assert case is not None
        return case.state


def form_data(page: str, **values: str) -> dict[str, str]:
    return {"csrf_token": csrf_of(page), "required_signatures": "1", **values}


def test_start_one_from_the_framework_page_with_a_party_outside_it(ctx: AppContext) -> None:
    fx = in_force(ctx)
    make_user(ctx, org_key="municipality:091", name="Helsingin allekirjoittaja")
    with web_client(ctx) as client:
        sign_in(client, ctx, fx.coordinator.id)
        page = client.get(f"/agreements/{fx.id}").text
        assert "Tehtäväkohtaiset yhteistyösopimukset" in page
        assert f'href="/agreements/{fx.id}/task-agreements/new"' in page
        new = client.get(f"/agreements/{fx.id}/task-agreements/new").text
        assert "<h1>Uusi tehtäväkohtainen yhteistyösopimus</h1>" in new
        assert all(k in new for k in fx.keys)  # the framework's parties are filled in
        before = written(ctx)
        past = client.post(
            f"/agreements/{fx.id}/task-agreements/new",
            data=form_data(
                new,
                title="LAPE-sopimus",
                theme="",
                deadline="1.3.2026",
                document="# LAPE\n",
                parties="\n".join(fx.keys[:2]),
            ),
        )
        assert past.status_code == 422 and 'href="#theme"' in past.text and 'href="#deadline"' in past.text
        assert written(ctx) == before
        empty = client.post(
            f"/agreements/{fx.id}/task-agreements/new",
            data=form_data(
                new, title="LAPE-sopimus", theme="LAPE", deadline="18.9.2026", document="# LAPE\n", parties=""
            ),
        )
        assert empty.status_code == 422 and 'href="#parties"' in empty.text
        unknown = client.post(
            f"/agreements/{fx.id}/task-agreements/new",
            data=form_data(
                new, title="LAPE-sopimus", theme="LAPE", deadline="18.9.2026", document="# LAPE\n", parties="Eikuntaa"
            ),
        )
        assert unknown.status_code == 422 and "Eikuntaa" in unknown.text
        assert written(ctx) == before
        done = client.post(
            f"/agreements/{fx.id}/task-agreements/new",
            data=form_data(
                new,
                title="LAPE-sopimus",
                theme="Lasten, nuorten ja perheiden palvelut",
                deadline="18.9.2026",
                document="# LAPE-sopimus\n",
                parties="\n".join([*fx.keys[:2], "municipality:091"]),
            ),
        )
        assert done.status_code == 303 and done.headers["location"].endswith("?notice=task_created")
        task = client.get(done.headers["location"]).text
        assert "Tehtäväkohtainen yhteistyösopimus on luotu luonnoksena." in task
        assert f'<a href="/agreements/{fx.id}">Pirkanmaan puitesopimus</a>' in task
        assert "eivät ole puitesopimuksen osapuolia: Helsinki" in task  # shown, and recorded
        framework = client.get(f"/agreements/{fx.id}").text
        assert "LAPE-sopimus" in framework.split('id="tasks-heading"')[1] and "Luonnos" in framework
        assert "Tehtäväkohtainen yhteistyösopimus aloitettu" in framework  # in the framework's history


def test_not_in_force_the_framework_offers_nothing_and_refuses_the_form(ctx: AppContext) -> None:
    fx = create_agreement(ctx, parties=2)  # circulating
    with web_client(ctx) as client:
        sign_in(client, ctx, fx.coordinator.id)
        page = client.get(f"/agreements/{fx.id}").text
        assert "task-agreements/new" not in page
        assert client.get(f"/agreements/{fx.id}/task-agreements/new").status_code == 403


def test_review_and_termination_in_swedish(ctx: AppContext) -> None:
    fx = in_force(ctx)
    task = create_task_agreement(ctx, fx, keys=fx.keys[:2])
    approve_all(ctx, task)
    set_language(ctx, fx.coordinator.id, "sv")
    with web_client(ctx) as client:
        sign_in(client, ctx, fx.coordinator.id)
        review = client.get(f"/agreements/{fx.id}/review").text
        client.post(f"/agreements/{fx.id}/review/start", data={"csrf_token": csrf_of(review), "deadline": ""})
        assert state(ctx, task.id) == "under_review"
        review = client.get(f"/agreements/{fx.id}/review").text
        listed = review.split('id="task-review-list-heading"')[1].split("</section>")[0]
        assert "Uppgiftsspecifika samarbetsavtal i denna översyn" in listed
        assert f'action="/agreements/{task.id}/confirm-unchanged"' in listed
        r = client.post(f"/agreements/{task.id}/confirm-unchanged", data={"csrf_token": csrf_of(review)})
        assert r.status_code == 303 and state(ctx, task.id) == "in_force"
        assert "Avtalet har bekräftats oförändrat." in client.get(r.headers["location"]).text
        # the framework is terminated: the task agreement's page flags it to its coordinator
        review = client.get(f"/agreements/{fx.id}/review").text
        client.post(
            f"/agreements/{fx.id}/review/terminate",
            data={"csrf_token": csrf_of(review), "reason": "Nytt ramavtal", "end_date": "31.12.2026"},
        )
        assert state(ctx, task.id) == "framework_ended"
        page = client.get(f"/agreements/{task.id}").text
        assert "Ramavtalet har sagts upp att upphöra" in page and "tors 31.12.2026" in page
        assert f'href="/agreements/{task.id}/review#terminate-heading"' in page
        before = written(ctx)
        empty = client.post(f"/agreements/{task.id}/continue-alone", data={"csrf_token": csrf_of(page), "reason": ""})
        assert empty.status_code == 422 and 'href="#continue-reason"' in empty.text and written(ctx) == before
        ok = client.post(
            f"/agreements/{task.id}/continue-alone",
            data={"csrf_token": csrf_of(page), "reason": "LAPE-samarbetet fortsätter"},
        )
        assert ok.status_code == 303 and state(ctx, task.id) == "in_force"
        page = client.get(ok.headers["location"]).text
        assert "Motivering: LAPE-samarbetet fortsätter" in page


def test_another_signatory_cannot_continue_or_confirm(ctx: AppContext) -> None:
    fx = in_force(ctx)
    task = create_task_agreement(ctx, fx, keys=fx.keys[:2])
    approve_all(ctx, task)
    signer = task.signatories[task.keys[0]][0]
    with web_client(ctx) as client:
        sign_in(client, ctx, signer.id)
        page = client.get(f"/agreements/{task.id}").text
        assert "Pirkanmaan puitesopimus" in page  # a party of both reads the framework's name
        before = written(ctx)
        for url in (f"/agreements/{task.id}/continue-alone", f"/agreements/{task.id}/confirm-unchanged"):
            r = client.post(url, data={"csrf_token": csrf_of(page), "reason": "x"})
            assert r.status_code == 403, url
        assert written(ctx) == before


def test_the_dashboard_groups_them_under_their_framework(ctx: AppContext) -> None:
    fx = in_force(ctx)
    other = create_agreement(ctx, parties=2, coordinator=fx.coordinator)  # circulating, no task-specific one
    done = create_task_agreement(ctx, fx, keys=fx.keys[:2])
    approve_all(ctx, done)
    asked = create_task_agreement(ctx, fx, keys=fx.keys[1:])  # circulating
    later = create_agreement(ctx, parties=1, coordinator=fx.coordinator)
    approve_all(ctx, later)  # in force after the task agreement: listed before it, newest first
    with web_client(ctx) as client:
        sign_in(client, ctx, fx.coordinator.id)
        page = client.get("/dashboard").text
    in_force_rows = page.split('id="in-force-heading"')[1].split("</table>")[0].split("<tr")[2:]
    ids = [int(r.split('href="/agreements/')[1].split('"')[0]) for r in in_force_rows]
    assert ids == [later.id, fx.id, done.id]  # the task agreement right after its framework
    assert "puitesopimus Pirkanmaan puitesopimus" in in_force_rows[2] and 'class="task-agreement"' in in_force_rows[2]
    under_way = page.split('id="agreements-heading"')[1].split("</table>")[0]
    assert f'href="/agreements/{asked.id}"' in under_way and f'href="/agreements/{other.id}"' in under_way
    assert under_way.count("Tehtäväkohtainen yhteistyösopimus – puitesopimus Pirkanmaan puitesopimus") == 1
