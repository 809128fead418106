"""A client-friendly OpenAPI document: readable operation ids, the bearer scheme, the errors each route can give.

- Operation ids are `<tag>-<function>` (`agreements-create`, `webhooks-rotate-secret`), so generated clients get
  methods that read well instead of `create_api_v1_agreements_post`.
- The `Authorization: Bearer` header is declared as a security scheme (`api.deps.BEARER`), so `/docs` has
  "Authorize" and generators add the token to every call.
- Error responses are the ones the route can really give, read off the route itself: 401/403 when it
  authenticates, 404 when its path names something, 409 when it writes (a state that does not allow it, a stale
  version), 413 and 422 when it takes a body or parameters, 503 always (the database was busy). The routers
  declare every code (`api.schemas.ERROR_RESPONSES`); this prunes the ones a route cannot reach.
- A request body without an example gets one made from its schema (field examples, defaults, formats), so that
  `/docs` and generated documentation show a body a person can start from.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from api.deps import BEARER

__all__ = ["client_friendly", "operation_id"]

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def operation_id(route: APIRoute) -> str:
    """Return `<first tag>-<function name>` with hyphens, the tag's own word left out: `organisations-list`."""
    tag = str(route.tags[0]) if route.tags else "service"
    words = [w for w in route.name.lower().split("_") if w not in (tag, tag.removesuffix("s"))]
    return "-".join([tag.replace("_", "-"), *words]) if words else tag


def _calls(dependant: Dependant) -> set[Callable[..., Any]]:
    found: set[Callable[..., Any]] = set()
    for sub in dependant.dependencies:
        if sub.call is not None:
            found.add(sub.call)
        found |= _calls(sub)
    return found


def _codes(route: APIRoute, authenticates: Callable[..., Any]) -> set[str]:
    codes = {"503"}
    methods = set(route.methods or ())
    calls = _calls(route.dependant)
    if authenticates in calls or BEARER in calls:  # BEARER alone: the route authenticates by hand (agreements.get)
        codes |= {"401", "403"}
    if route.dependant.path_params:
        codes.add("404")
    if methods & WRITES:
        codes.add("409")
    if route.dependant.body_params:
        codes |= {"413", "422"}
    if route.dependant.query_params or route.dependant.header_params or route.dependant.path_params:
        codes.add("422")
    # a route that reads its body by hand (POST /api/v1/check streams its upload) names its codes itself
    codes |= {str(c) for c in (route.openapi_extra or {}).get("x-error-codes", ())}
    return codes


def _example(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> Any:
    if depth > 6:
        return None
    if "$ref" in schema:
        return _example(components.get(schema["$ref"].rsplit("/", 1)[-1], {}), components, depth + 1)
    for key in ("example", "default"):
        if schema.get(key) is not None:
            return schema[key]
    if schema.get("examples"):
        return schema["examples"][0]
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return _example(options[0], components, depth + 1) if options else None
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        required = set(schema.get("required", ()))
        return {name: _example(prop, components, depth + 1) for name, prop in schema.get("properties", {}).items()
                if name in required or depth == 0}
    if kind == "array":
        return [_example(schema.get("items", {}), components, depth + 1)]
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return False
    if kind == "string":
        fmt = schema.get("format")
        return {"date": "2026-12-21", "date-time": "2026-12-21T09:00:00+02:00", "email": "maija.meikalainen@tampere.fi",
                "uri": "https://vuosikello.example/"}.get(fmt or "", "teksti")
    return None


def _unique_model_names(schema: dict[str, Any]) -> dict[str, Any]:
    """Rename models FastAPI had to qualify by module (`workflows__nomination__schemas__DecisionIn`) to a readable
    unique name (`NominationDecisionIn`), so no two models share a title and generators make both."""
    components = schema.get("components", {}).get("schemas", {})
    renames: dict[str, str] = {}
    for key in list(components):
        if "__" in key:
            parts = key.split("__")
            area = next((p for p in reversed(parts[:-1]) if p not in ("schemas", "models", "read", "api", "routes")),
                        "")
            new = "".join(w.capitalize() for w in area.split("_")) + parts[-1]
            if new not in components and new not in renames.values():
                renames[key] = new
    if not renames:
        return schema
    text = json.dumps(schema)
    for old, new in renames.items():
        text = text.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
    out: dict[str, Any] = json.loads(text)
    models = out["components"]["schemas"]
    for old, new in renames.items():
        models[new] = models.pop(old)
        models[new]["title"] = new
    return out


def client_friendly(app: FastAPI, authenticates: Callable[..., Any]) -> None:
    """Make `app.openapi()` produce the document described above (computed once, then cached)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.get("components", {}).get("schemas", {})
        by_path = {(c.path_format, m.lower()): c.original_route for c in routing.iter_route_contexts(app.routes)
                   if isinstance(c.original_route, APIRoute) for m in (c.original_route.methods or ())}
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                route = by_path.get((path, method))
                if route is None:
                    continue
                keep = _codes(route, authenticates)
                operation.pop("x-error-codes", None)
                operation["responses"] = {code: r for code, r in operation.get("responses", {}).items()
                                          if not (code.isdigit() and int(code) >= 400) or code in keep}
                body = operation.get("requestBody", {}).get("content", {}).get("application/json")
                if body is not None and "example" not in body and "examples" not in body:
                    body["example"] = _example(body.get("schema", {}), components)
        app.openapi_schema = _unique_model_names(schema)
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]
