"""A definition is checked completely before it is saved, so a saved one cannot fail when it runs: timer offsets with
the calendar's own parser, repeat and after fields, guards, and every email template in fi, sv and en; every
problem at its line. Two saves of one version at once: one is stored, the other is a 409 (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session

from api.app import create_app
from engine.definition import parse_definition
from engine.errors import DefinitionError
from engine.models import StoredDefinition
from engine.versions import check_version
from notifications.render import missing_templates
from tests.support.builders import create_agreement, make_user
from tests.web.support import csrf_of, sign_in, web_client
from workflows.registry import WORKFLOWS_DIR

PARTY_V1 = (WORKFLOWS_DIR / "agreement_party" / "v1.yaml").read_text(encoding="utf-8")
PARTY_V2 = PARTY_V1.replace("version: 1", "version: 2", 1)


def _line(text: str, needle: str, nth: int = 0) -> int:
    return [i for i, line in enumerate(text.splitlines(), 1) if needle in line][nth]


def _problems(text: str) -> list[dict[str, object]]:
    with pytest.raises(DefinitionError) as refused:
        parse_definition(text, "test")
    lines = refused.value.extra["lines"]
    assert isinstance(lines, list)
    return lines


def test_every_bad_timer_field_is_listed_at_its_line() -> None:
    bad = (PARTY_V2.replace("offsets: [-P14D, -P7D, -P1D, P1D]", "offsets: [-P14D, P1X, -P1D, P1Y]", 1)
           .replace("repeat_every: P7D", "repeat_every: PT12H", 1))
    found = {(p["line"], p["path"]) for p in _problems(bad)}
    offsets, repeat = _line(bad, "P1X"), _line(bad, "PT12H")
    assert (offsets, "states.invited.timers[0].offsets[1]") in found
    assert (offsets, "states.invited.timers[0].offsets[3]") in found
    assert (repeat, "states.invited.timers[0].repeat_every") in found


@pytest.mark.parametrize(("old", "new", "path", "words"), [
    ("        template: party_reminder\n", "", "timers[0].template", "needs the email template"),
    ("        repeat_every: P7D\n", "", "timers[0].repeat_every", "repeat_max needs repeat_every"),
    ("        repeat_max: 3\n", "        repeat_max: 100000\n", "timers[0].repeat_max", "less than or equal to 100"),
    ("offsets: [-P14D, -P7D, -P1D, P1D]", "offsets: []", "timers[0].offsets", "at least one offset"),
])
def test_a_timer_must_fit_its_kind(old: str, new: str, path: str, words: str) -> None:
    assert old in PARTY_V2
    problems = _problems(PARTY_V2.replace(old, new, 1))
    assert any(str(p["path"]).endswith(path) and words in str(p["message"]) for p in problems), problems


def test_a_relative_deadline_needs_its_after_and_after_is_parsed() -> None:
    deadline = "        name: approval_deadline\n        at: case_deadline\n"
    assert deadline in PARTY_V2
    missing = PARTY_V2.replace(deadline, "        name: approval_deadline\n        at: relative\n", 1)
    assert any(str(p["path"]).endswith("timers[1].after") and "needs `after`" in str(p["message"])
               for p in _problems(missing))
    bad = PARTY_V2.replace(deadline, "        name: approval_deadline\n        at: relative\n        after: P1X\n", 1)
    assert any(str(p["path"]).endswith("timers[1].after") and "invalid offset 'P1X'" in str(p["message"])
               for p in _problems(bad))
    good = PARTY_V2.replace(deadline, "        name: approval_deadline\n        at: relative\n        after: P30D\n", 1)
    assert parse_definition(good).states["invited"].timers[1].after == "P30D"


def test_whole_definition_problems_are_all_listed() -> None:
    bad = PARTY_V2.replace("dest: approved", "dest: approvd", 1).replace("dest: declined", "dest: declind", 1)
    paths = [str(p["path"]) for p in _problems(bad)]
    assert len([p for p in paths if p.endswith(".dest")]) == 2, paths


def test_templates_must_exist_in_every_language(ctx) -> None:
    registry = ctx.registry
    gone = PARTY_V2.replace("template: party_reminder", "template: no_such_reminder")
    with pytest.raises(DefinitionError) as refused:
        check_version(registry, gone, "agreement_party", templates=missing_templates)
    lines = refused.value.extra["lines"]
    assert [p["line"] for p in lines] == [_line(gone, "no_such_reminder", 0), _line(gone, "no_such_reminder", 1)]
    assert all("does not exist in fi, sv, en" in str(p["message"]) for p in lines)
    # a template edited only in Finnish is still missing in Swedish and English
    edits = (("fi/no_such_reminder.subject.j2", "x"), ("fi/no_such_reminder.txt.j2", "x"),
             ("fi/no_such_reminder.html.j2", "x"))
    assert missing_templates(["no_such_reminder", "party_reminder"], edits) == {"no_such_reminder": ["sv", "en"]}
    assert check_version(registry, PARTY_V2, "agreement_party", templates=missing_templates).version == 2


def _api(ctx) -> tuple[TestClient, dict[str, str]]:
    admin = make_user(ctx, roles="admin")
    return TestClient(create_app(ctx=ctx)), admin.headers


def test_the_api_refuses_what_would_fail_at_run_time_then_circulating_still_works(ctx) -> None:
    client, h = _api(ctx)
    bad = (PARTY_V2.replace("offsets: [-P14D, -P7D, -P1D, P1D]", "offsets: [P1X]", 1)
           .replace("template: party_declined", "template: no_such_notice"))
    r = client.post("/api/v1/workflows/agreement_party/versions", json={"source": bad}, headers=h)
    assert r.status_code == 422, r.text
    assert r.json()["problems"][0]["line"] == _line(bad, "P1X")
    notice = client.post("/api/v1/workflows/agreement_party/versions",
                         json={"source": PARTY_V2.replace("template: party_declined", "template: no_such_notice")},
                         headers=h)
    assert notice.status_code == 422 and notice.json()["problems"][0]["line"] == _line(notice.request.content.decode()
                                                                                       .replace("\\n", "\n"),
                                                                                       "no_such_notice")
    checked = client.post("/api/v1/workflows/agreement_party/validate",
                          json={"source": PARTY_V2.replace("template: party_declined", "template: no_such_notice")},
                          headers=h).json()
    assert checked["valid"] is False and "no_such_notice" in checked["problems"][0]["message"]
    with Session(ctx.db.engine) as s:
        assert s.execute(select(func.count()).select_from(StoredDefinition)).scalar() == 0
    create_agreement(ctx, parties=2)  # circulating still works: nothing broken was saved


def test_a_version_stored_meanwhile_by_another_process_is_a_409(ctx) -> None:
    client, h = _api(ctx)
    with Session(ctx.db.engine) as s:  # another process saved version 2; this one's registry does not know it
        s.add(StoredDefinition(name="agreement_party", version=2, source=PARTY_V2, created_at=ctx.clock.now()))
        s.commit()
    r = client.post("/api/v1/workflows/agreement_party/versions", json={"source": PARTY_V2},
                    headers={**h, "Accept-Language": "sv"})
    assert r.status_code == 409, r.text
    assert r.json()["message_id"] == "definition.error.version_taken" and "sparades nyss" in r.json()["message"]


def test_two_saves_at_once_store_one_version_and_answer_the_other_409(ctx) -> None:
    client, h = _api(ctx)
    barrier, answers = threading.Barrier(2), []

    def save() -> None:
        barrier.wait()
        answers.append(client.post("/api/v1/workflows/agreement_party/versions", json={"source": PARTY_V2},
                                   headers=h).status_code)

    threads = [threading.Thread(target=save) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(answers) == [201, 409], answers
    with Session(ctx.db.engine) as s:
        assert s.execute(select(func.count()).select_from(StoredDefinition)).scalar() == 1
    assert ctx.registry.latest_version("agreement_party") == 2


def test_the_editor_lists_the_problems_and_answers_a_racing_save_with_409(ctx) -> None:
    admin = make_user(ctx, roles="admin")
    with web_client(ctx) as client:
        sign_in(client, ctx, admin.id)
        page = client.get("/admin/workflows/agreement_party").text
        bad = PARTY_V2.replace("offsets: [-P14D, -P7D, -P1D, P1D]", "offsets: [P1X, -P7D]", 1).replace(
            "template: party_declined", "template: no_such_notice")
        r = client.post("/admin/workflows/agreement_party", data={"csrf_token": csrf_of(page), "source": bad,
                                                                 "action": "check"})
        assert r.status_code == 422
        assert f'href="#line-{_line(bad, "P1X")}"' in r.text and "P1X" in r.text
        gone = PARTY_V2.replace("template: party_declined", "template: no_such_notice")
        r = client.post("/admin/workflows/agreement_party", data={"csrf_token": csrf_of(page), "source": gone,
                                                                 "action": "save"})
        assert r.status_code == 422 and f'href="#line-{_line(gone, "no_such_notice")}"' in r.text
        with Session(ctx.db.engine) as s:
            s.add(StoredDefinition(name="agreement_party", version=2, source=PARTY_V2, created_at=ctx.clock.now()))
            s.commit()
        r = client.post("/admin/workflows/agreement_party", data={"csrf_token": csrf_of(page), "source": PARTY_V2,
                                                                 "action": "save"})
        assert r.status_code == 409, r.text[:300]
        assert "Versio 2 tallennettiin juuri toisaalla" in r.text and "repeat_every: P7D" in r.text  # text kept


def test_workflows_check_lists_every_problem_with_its_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from api.cli import app

    bad = tmp_path / "party.yaml"
    bad.write_text(PARTY_V1.replace("offsets: [-P14D, -P7D, -P1D, P1D]", "offsets: [P1X]"), encoding="utf-8")
    gone = tmp_path / "gone.yaml"
    gone.write_text(PARTY_V1.replace("template: party_reminder", "template: no_such_reminder"), encoding="utf-8")
    result = CliRunner().invoke(app, ["workflows", "check", str(tmp_path)])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("invalid  ")]
    text = bad.read_text()
    assert f"invalid  {bad}: line {_line(text, 'P1X', 0)}: states.invited.timers[0].offsets[0]" in lines[2] or any(
        f"{bad}: line {_line(text, 'P1X', 0)}:" in line for line in lines), lines
    assert any(f"{bad}: line {_line(text, 'P1X', 1)}:" in line for line in lines), lines
    assert len([line for line in lines if f"{gone}: line" in line and "no_such_reminder" in line]) == 2, lines
