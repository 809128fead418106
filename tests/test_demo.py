"""The demo a newcomer walks through: its banner's sign-in links work, its data is there, and `scripts/demo` installs
only when the project's install files changed."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from api.context import AppContext
from api.demo import banner, load_demo, sign_in_links
from engine.calendar import HELSINKI
from engine.clock import ManualClock
from engine.db import Database
from engine.models import Case, Organisation, OutboxMessage, Person
from tests.conftest import context_for
from tests.web.support import csrf_of, web_client

BASE = "http://testserver"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def demo(database: Database, clock: ManualClock) -> AppContext:
    return context_for(database, clock, environment="development")


def _link(lines: list[str], label: str) -> str:
    line = next(line for line in lines if line.strip().startswith(label))
    found = re.search(rf"{BASE}(/link/\S+)", line)
    assert found, line
    return found.group(1)


def _sign_in_with(client, path: str) -> str:  # type: ignore[no-untyped-def]
    client.cookies.clear()
    page = client.get(path)
    assert page.status_code == 200, page.text[:300]
    used = client.post(path, data={"csrf_token": csrf_of(page.text)})
    assert used.status_code == 303
    landing = client.get(used.headers["location"])
    while landing.status_code == 303:
        landing = client.get(landing.headers["location"])
    assert landing.status_code == 200, landing.text[:300]
    return str(landing.url.path) + "\n" + landing.text


def test_the_banner_signs_in_each_kind_of_person_to_what_they_have_to_do(demo: AppContext) -> None:
    info = sign_in_links(demo, load_demo(demo), BASE)
    lines = banner(info, BASE)
    with web_client(demo) as client:
        landed = _sign_in_with(client, _link(lines, "sign in as a signatory"))
        assert landed.startswith(f"/agreements/{info.agreement_id}\n")
        assert f'action="/agreements/{info.agreement_id}/decision"' in landed  # Tampere's board has to decide

        landed = _sign_in_with(client, _link(lines, "sign in as the coordinator"))
        assert landed.startswith(f"/agreements/{info.agreement_id}\n")
        assert f'action="/agreements/{info.agreement_id}/remind"' in landed
        overdue = client.get(f"/agreements/{info.overdue_agreement_id}")
        assert overdue.status_code == 200 and "Ylöjärvi" in overdue.text
        assert client.get(f"/nominations/{info.nomination_id}").status_code == 200
        assert client.get(f"/cycles/{info.cycle_id}").status_code == 200
        assert client.get("/people").status_code == 200  # the coordinator adds their own signatories

        landed = _sign_in_with(client, _link(lines, "sign in as administrator"))
        assert landed.startswith("/tasks\n")
        for path in ("/admin", "/people", "/people/new", "/mail"):
            assert client.get(path).status_code == 200, path
        shown = {m.group(1) for line in lines for m in re.finditer(rf"{BASE}(/[^\s)]*)", line)}
        pages = {p for p in shown if not p.startswith("/link/")}
        assert {"/admin", "/people", "/docs", "/mail", f"/cycles/{info.cycle_id}"} <= pages
        for path in pages:  # every other address the banner prints opens for the administrator
            assert client.get(path).status_code == 200, path
        for path in {p for p in shown if p.startswith("/link/")}:  # and each link worked only once
            assert client.get(path).status_code == 410, path


def test_the_demo_has_an_overdue_party_a_nomination_a_cycle_reporting_and_two_regions(demo: AppContext) -> None:
    info = load_demo(demo)
    today = demo.clock.now().astimezone(HELSINKI).date()
    with Session(demo.db.engine) as session:
        parties = {c.title.rsplit(": ", 1)[1]: c for c in session.execute(
            select(Case).where(Case.parent_id == info.overdue_agreement_id)).scalars()}
        assert {k: c.state for k, c in parties.items()} == {
            "Pirkanmaan hyvinvointialue": "signed", "Kangasala": "signed", "Ylöjärvi": "invited"}
        assert parties["Ylöjärvi"].deadline < today  # past its deadline, and the coordinator was told
        told = session.execute(select(OutboxMessage.template).where(
            OutboxMessage.case_id == info.overdue_agreement_id)).scalars().all()
        assert "deadline_passed" in told
        nomination = session.get(Case, info.nomination_id)
        asked = session.execute(select(Case.state).where(Case.parent_id == info.nomination_id)).scalars().all()
        assert nomination.state == "requested" and nomination.deadline > today and asked == ["asked", "asked"]
        cycle = session.get(Case, info.cycle_id)
        requests = session.execute(select(Case).where(Case.parent_id == info.cycle_id)).scalars().all()
        assert cycle.state == "reporting" and cycle.data["year"] == today.year
        assert len(requests) == 2 and {r.state for r in requests} == {"requested"}
        assert session.execute(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.template == "cycle_report_requested")).scalar_one() >= 2
        regions = session.execute(select(Organisation.region_code).join(
            Person, Person.organisation_id == Organisation.id).where(Person.roles.contains("signatory"))
            .distinct()).scalars().all()
        assert {"06", "02"} <= set(regions)
        cases = session.execute(select(func.count()).select_from(Case)).scalar_one()
    demo.clock.advance(timedelta(hours=1))
    again = load_demo(demo)  # loading again adds nothing and finds the same cases
    assert (again.agreement_id, again.overdue_agreement_id, again.nomination_id, again.cycle_id) == (
        info.agreement_id, info.overdue_agreement_id, info.nomination_id, info.cycle_id)
    with Session(demo.db.engine) as session:
        assert session.execute(select(func.count()).select_from(Case)).scalar_one() == cases


def _fake_checkout(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of scripts/demo beside a pyproject.toml and setup.py, with a .venv whose tools only log their use."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "demo").write_text((ROOT / "scripts" / "demo").read_text(encoding="utf-8"))
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "vuosikello"\n')
    (tmp_path / "setup.py").write_text("from setuptools import setup\nsetup()\n")
    log = tmp_path / "calls.log"
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("python", "pip", "vuosikello"):
        (bin_dir / tool).write_text(f'#!/usr/bin/env bash\necho "{tool} $*" >> "{log}"\n')
        (bin_dir / tool).chmod(0o755)
    return tmp_path / "scripts" / "demo", log


def test_scripts_demo_installs_only_when_pyproject_or_setup_changed(tmp_path: Path) -> None:
    script, log = _fake_checkout(tmp_path)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}

    def run() -> list[str]:
        log.write_text("")
        subprocess.run(["bash", str(script), "--port", "8123"], check=True, env=env, timeout=30)
        return log.read_text().splitlines()

    assert run() == ["pip install -q -e .", "vuosikello serve --demo --port 8123"]  # first time: installs
    assert run() == ["vuosikello serve --demo --port 8123"]  # nothing changed: straight to serving
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "vuosikello"\ndependencies = ["x"]\n')
    assert run()[0] == "pip install -q -e ."
    assert run() == ["vuosikello serve --demo --port 8123"]
    (tmp_path / "setup.py").write_text("from setuptools import setup\nsetup(name='vuosikello')\n")
    assert run()[0] == "pip install -q -e ."
