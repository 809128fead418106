"""Schemathesis, in-process against the app's own OpenAPI schema: no 5xx, and every response fits the schema.

SQLite only, one database for the module with a few agreements in it so that generated ids hit real rows;
bounded to a few examples per operation so that the whole module stays well under two minutes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance
from sqlalchemy import update
from sqlmodel import Session

from api.app import create_app
from api.context import AppContext, build_context
from api.schema import metadata
from engine.clock import ManualClock
from engine.db import make_database
from engine.directory import DEFAULT_ORGANISATIONS, import_organisations
from engine.models import Person
from engine.settings import Settings
from tests.conftest import START
from tests.support.builders import User, create_agreement, decision, make_user

MAX_EXAMPLES = 20
schemathesis.experimental.OPEN_API_3_1.enable()  # FastAPI publishes OpenAPI 3.1 (nullable as `type: null`)


@pytest.fixture(scope="module")
def api_ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppContext]:
    """A SQLite service with the register, an admin, and agreements in draft, circulating and in force."""
    url = f"sqlite:///{tmp_path_factory.mktemp('schemathesis') / 'vuosikello.db'}"
    db = make_database(url)
    metadata().create_all(db.engine)
    clock = ManualClock(START)
    settings_ = Settings(environment="test", database_url=url, admin_token=None, base_url="http://testserver",
                         scheduler_enabled=False)
    ctx = build_context(settings_, clock=clock, db=db)
    with Session(db.engine) as session:
        import_organisations(session, DEFAULT_ORGANISATIONS, clock.now())
        session.commit()
    yield ctx
    db.dispose()


@pytest.fixture(scope="module")
def admin(api_ctx: AppContext) -> User:
    user = make_user(api_ctx, roles="admin,coordinator", name="Pääkäyttäjä")
    create_agreement(api_ctx, parties=2, circulate=False, coordinator=user)
    live = create_agreement(api_ctx, parties=3, coordinator=user)
    done = create_agreement(api_ctx, parties=2, coordinator=user)
    with TestClient(create_app(ctx=api_ctx)) as client:
        key = live.keys[0]
        client.post(f"/api/v1/agreements/{live.id}/parties/{key}/decision", json=decision(),
                    headers=live.signatories[key][0].headers)
        for key in done.keys:
            headers = done.signatories[key][0].headers
            client.post(f"/api/v1/agreements/{done.id}/parties/{key}/decision", json=decision(), headers=headers)
            client.post(f"/api/v1/agreements/{done.id}/parties/{key}/signatures", headers=headers)
    return user


@pytest.fixture(scope="module")
def client(api_ctx: AppContext, admin: User) -> Iterator[TestClient]:
    """One client for every generated request; a 500 comes back as a response for the check to see."""
    with TestClient(create_app(ctx=api_ctx), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def api_schema(client: TestClient) -> Any:
    # from the app's own schema; requests go through our client, not schemathesis' ASGI transport, which
    # opens a client (and runs the lifespan) per call and leaks its streams
    return schemathesis.from_dict(client.app.openapi(), base_url=str(client.base_url))  # type: ignore[attr-defined]


schema = schemathesis.from_pytest_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported at once, time bounded
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: Any, api_ctx: AppContext, admin: User, client: TestClient) -> None:
    kwargs = case.as_requests_kwargs(base_url=str(client.base_url), headers=admin.headers)
    assert not kwargs.pop("cookies", None)  # the API takes no cookie parameters
    if isinstance(kwargs.get("data"), (bytes, str)):
        kwargs["content"] = kwargs.pop("data")  # httpx's name for a raw body
    # HTTP header values are latin-1 (as schemathesis generates them); httpx would encode str as ASCII
    kwargs["headers"] = {k: v.encode("latin-1") if isinstance(v, str) else v for k, v in kwargs["headers"].items()}
    try:
        response = client.request(**kwargs)
        case.validate_response(response, checks=(not_a_server_error, response_schema_conformance))
    finally:
        restore_admin(api_ctx, admin)  # generated PATCHes may demote or deactivate the caller


def restore_admin(ctx: AppContext, admin: User) -> None:
    with Session(ctx.db.engine) as session:
        session.execute(update(Person).where(Person.id == admin.id)  # type: ignore[arg-type]
                        .values(active=True, roles="admin,coordinator"))
        session.commit()
