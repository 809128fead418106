"""The OpenAPI document makes a good client: readable operation ids, the bearer scheme, each route's own errors,
examples on bodies; and a Python client generated from it (openapi-python-client) drives a whole agreement."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections import Counter
from datetime import date

from fastapi.testclient import TestClient

from api.app import create_app
from tests.support.builders import make_user, pirkanmaa_keys


def test_operation_ids_read_well_and_are_unique(ctx) -> None:
    spec = create_app(ctx=ctx).openapi()
    ops = {(path, method): op for path, methods in spec["paths"].items() for method, op in methods.items()}
    ids = Counter(op["operationId"] for op in ops.values())
    assert not [i for i, n in ids.items() if n > 1]
    assert ops[("/api/v1/agreements", "post")]["operationId"] == "agreements-create"
    assert ops[("/api/v1/agreements/{agreement_id}/parties/{organisation_key}/signatures", "post")][
        "operationId"] == "agreements-sign"
    assert all("_api_v1_" not in i and "_" not in i for i in ids)
    titles = Counter(m.get("title") for m in spec["components"]["schemas"].values())
    assert not [t for t, n in titles.items() if n > 1]  # two models of one title break generators


def test_the_bearer_scheme_and_each_routes_own_errors_are_declared(ctx) -> None:
    spec = create_app(ctx=ctx).openapi()
    scheme = spec["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer" and "token" in scheme["description"]
    get = spec["paths"]["/api/v1/agreements/{agreement_id}"]["get"]
    assert {"bearer": []} in get["security"]
    assert set(get["responses"]) == {"200", "304", "401", "403", "404", "422", "503"}  # a read does not conflict
    listing = spec["paths"]["/api/v1/workflows"]["get"]
    assert "404" not in listing["responses"] and "422" not in listing["responses"]
    health = spec["paths"]["/healthz"]["get"]
    assert "401" not in health["responses"]
    create = spec["paths"]["/api/v1/agreements"]["post"]
    assert {"409", "413", "422"} <= set(create["responses"])
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                assert "example" in body or "examples" in body, f"{method} {path} has no example body"


def test_a_generated_python_client_drives_an_agreement_into_force(ctx, tmp_path) -> None:
    app = create_app(ctx=ctx)
    (tmp_path / "spec.json").write_text(json.dumps(app.openapi()), encoding="utf-8")
    (tmp_path / "config.yaml").write_text("package_name_override: vk_client\npost_hooks: []\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "openapi_python_client", "generate", "--path", "spec.json",
                           "--config", "config.yaml", "--meta", "none", "--output-path", "vk_client"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "agreements" in done.stdout or (tmp_path / "vk_client" / "api" / "agreements").is_dir()
    sys.path.insert(0, str(tmp_path))
    try:
        client_mod = importlib.import_module("vk_client.client")
        create = importlib.import_module("vk_client.api.agreements.agreements_create")
        circulate = importlib.import_module("vk_client.api.agreements.agreements_circulate")
        decide = importlib.import_module("vk_client.api.agreements.agreements_decide")
        sign = importlib.import_module("vk_client.api.agreements.agreements_sign")
        get = importlib.import_module("vk_client.api.agreements.agreements_get")
        models = importlib.import_module("vk_client.models")

        def client_for(token: str):  # type: ignore[no-untyped-def]
            http = TestClient(app, base_url="http://testserver", headers={"Authorization": f"Bearer {token}"})
            return client_mod.AuthenticatedClient(base_url="http://testserver", token=token).set_httpx_client(http)

        coordinator = make_user(ctx, org_key="regional_council:06", roles="coordinator")
        keys = pirkanmaa_keys(ctx)[:3]
        signers = {k: make_user(ctx, org_key=k) for k in keys}
        as_coordinator = client_for(coordinator.token)
        made = create.sync(client=as_coordinator, body=models.AgreementCreate(
            title="Pirkanmaan puitesopimus", document="# Sopimus\n\nSovitaan yhteistyöstä.\n",
            deadline=date(2026, 6, 19), parties=[models.PartyIn(organisation=k, signatories=[signers[k].id])
                                                 for k in keys]))
        assert isinstance(made, models.AgreementRead) and made.state == "draft"
        assert circulate.sync(made.id, client=as_coordinator).state == "circulating"
        for key in keys:
            as_party = client_for(signers[key].token)
            decided = decide.sync(made.id, key, client=as_party, body=models.AgreementDecisionIn(
                outcome=models.AgreementDecisionInOutcome.APPROVED, body="Kunnanhallitus",
                decided_on=date(2026, 3, 2), section="§ 58", document_sha256=made.document_sha256))
            assert isinstance(decided, models.DecisionResult), decided
            signed = sign.sync(made.id, key, client=as_party, body=models.SignIn(document_sha256=made.document_sha256))
            assert isinstance(signed, models.SignatureResult), signed
        final = get.sync(made.id, client=as_coordinator)
        assert final.state == "in_force" and final.parties_signed == 3
        refused = decide.sync(made.id, keys[0], client=client_for(signers[keys[1]].token),
                              body=models.AgreementDecisionIn(outcome=models.AgreementDecisionInOutcome.APPROVED,
                                                              body="Kunnanhallitus", decided_on=date(2026, 3, 2),
                                                              section="§ 58"))
        assert isinstance(refused, models.ErrorBody) and refused.error == "NotPermitted"  # errors are typed too
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == "vk_client" or m.startswith("vk_client.")]:
            del sys.modules[name]
