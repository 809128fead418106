"""The `vuosikello` command line, run in-process: db upgrade, organisations import, workflows check, admin-token."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, select
from sqlmodel import Session
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli
from api.context import build_context
from engine.clock import ManualClock
from engine.db import make_database
from engine.directory import DEFAULT_ORGANISATIONS
from engine.models import ApiToken, Organisation, Person
from engine.settings import Settings, get_settings
from tests.conftest import START
from workflows.registry import WORKFLOWS_DIR

Run = Callable[..., Any]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def run(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    """Invoke `vuosikello ARGS...` against a fresh SQLite file."""
    monkeypatch.setenv("VUOSIKELLO_DATABASE_URL", db_url)
    monkeypatch.delenv("VUOSIKELLO_ADMIN_TOKEN", raising=False)
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(cli, [str(a) for a in args])
    get_settings.cache_clear()


def count(url: str, model: Any) -> int:
    db = make_database(url)
    try:
        with Session(db.engine) as session:
            return int(session.execute(select(func.count()).select_from(model)).scalar_one())
    finally:
        db.dispose()


def test_help_lists_the_commands(run: Run) -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("serve", "db", "organisations", "workflows", "audit", "admin-token"):
        assert command in result.stdout


def test_db_upgrade_then_import_the_register(run: Run, db_url: str, tmp_path: Path) -> None:
    result = run("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "database at head" in result.stdout
    db = make_database(db_url)
    assert {"organisation", "person", "case", "event"} <= set(inspect(db.engine).get_table_names())
    db.dispose()
    result = run("organisations", "import", DEFAULT_ORGANISATIONS)
    assert result.exit_code == 0, result.output
    assert "368 created, 0 updated, 0 unchanged, 0 deactivated" in result.stdout
    again = run("organisations", "import", DEFAULT_ORGANISATIONS)
    assert "0 created, 0 updated, 368 unchanged, 0 deactivated" in again.stdout
    assert count(db_url, Organisation) == 368


@pytest.mark.parametrize(("edit", "message"), [
    (lambda text: text.replace("municipality,837,", "kingdom,837,"), "line 328.kind"),
    (lambda text: text + "municipality,837,Tampere kahdesti,,06,08\n", "municipality:837 appears twice"),
    (lambda text: text.replace("kind,code,", "sort,code,"), "missing columns kind"),
])
def test_a_bad_register_is_refused_whole(run: Run, db_url: str, tmp_path: Path,
                                         edit: Callable[[str], str], message: str) -> None:
    assert run("db", "upgrade").exit_code == 0
    bad = tmp_path / "organisations.csv"
    bad.write_text(edit(DEFAULT_ORGANISATIONS.read_text(encoding="utf-8")), encoding="utf-8")
    result = run("organisations", "import", bad)
    assert result.exit_code == 2
    assert "refused:" in result.stderr and message in result.stderr
    assert count(db_url, Organisation) == 0  # nothing half-imported


def test_import_of_a_missing_file_is_a_usage_error(run: Run, tmp_path: Path) -> None:
    result = run("organisations", "import", tmp_path / "nowhere.csv")
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_workflows_check_passes_the_shipped_definitions(run: Run) -> None:
    result = run("workflows", "check")
    assert result.exit_code == 0, result.output
    assert "ok  agreement v1" in result.stdout and "ok  agreement_party v1" in result.stdout
    folder = run("workflows", "check", WORKFLOWS_DIR / "agreement")
    assert folder.exit_code == 0 and "agreement v1" in folder.stdout


def test_workflows_check_names_file_path_and_problem(run: Run, tmp_path: Path) -> None:
    good = tmp_path / "defs" / "agreement.yaml"
    good.parent.mkdir()
    shutil.copy(WORKFLOWS_DIR / "agreement" / "v1.yaml", good)
    bad = tmp_path / "defs" / "broken.yaml"
    text = good.read_text(encoding="utf-8")
    assert "    dest: in_force\n" in text
    bad.write_text(text.replace("    dest: in_force\n", "    dest: in_forse\n", 1)
                   .replace("roles: [coordinator, admin]", "roles: [coordinator, mayor]", 1), encoding="utf-8")
    result = run("workflows", "check", tmp_path / "defs")
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("invalid  ")]
    assert any(line.startswith(f"invalid  {bad}: line ") and "transitions[" in line
               and "].roles: unknown role 'mayor'" in line for line in lines), lines
    assert not any("agreement.yaml" in line for line in lines)  # the good file passed
    syntax = tmp_path / "syntax.yaml"
    syntax.write_text("name: x\nversion: 1\nstates: {a: [\n", encoding="utf-8")
    result = run("workflows", "check", syntax)
    assert result.exit_code == 1 and f"{syntax}: line 4" in result.stderr and "not valid YAML" in result.stderr


def test_workflows_check_reports_a_bad_destination(run: Run, tmp_path: Path) -> None:
    bad = tmp_path / "party.yaml"
    text = (WORKFLOWS_DIR / "agreement_party" / "v1.yaml").read_text(encoding="utf-8")
    bad.write_text(text.replace("    dest: released\n", "    dest: relased\n"), encoding="utf-8")
    result = run("workflows", "check", bad)
    assert result.exit_code == 1
    line = (WORKFLOWS_DIR / "agreement_party" / "v1.yaml").read_text(encoding="utf-8").splitlines().index(
        "    dest: released") + 1
    assert f"{bad}: line {line}: transitions[" in result.stderr, result.stderr
    assert "].dest: unknown state 'relased'" in result.stderr


def test_admin_token_prints_a_working_token(run: Run, db_url: str) -> None:
    assert run("db", "upgrade").exit_code == 0
    first = run("admin-token")
    assert first.exit_code == 0, first.output
    token = first.stdout.strip()
    assert token.startswith("vk_") and len(token) > 40
    second = run("admin-token").stdout.strip()
    assert second != token
    assert count(db_url, Person) == 1 and count(db_url, ApiToken) == 2
    settings = Settings(environment="test", database_url=db_url, scheduler_enabled=False)
    ctx = build_context(settings, clock=ManualClock(START))
    try:
        client = TestClient(create_app(ctx=ctx))
        for t in (token, second):
            r = client.post("/api/v1/people", headers={"Authorization": f"Bearer {t}"},
                            json={"name": "Uusi", "email": f"{t[-6:]}@example.fi"})
            assert r.status_code == 201, r.text
    finally:
        ctx.db.dispose()


def test_audit_verify_on_an_empty_database(run: Run) -> None:
    assert run("db", "upgrade").exit_code == 0
    result = run("audit", "verify")
    assert result.exit_code == 0 and "checked 0 cases, 0 events: 0 problems" in result.stdout
