"""Loaded workflow definitions and their diagrams."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from api.deps import ActorDep, CtxDep
from api.schemas import ERROR_RESPONSES, WorkflowSummary
from api.unit import UnitOfWorkRoute
from engine.definition import to_mermaid

router = APIRouter(prefix="/workflows", tags=["workflows"], responses=ERROR_RESPONSES, route_class=UnitOfWorkRoute)


@router.get("", response_model=list[WorkflowSummary])
def list_workflows(ctx: CtxDep, _actor: ActorDep) -> list[WorkflowSummary]:
    """List every workflow with its newest version."""
    out = []
    for d in ctx.registry.definitions():
        versions = sorted(v for (n, v) in ctx.registry.machines if n == d.name)
        out.append(WorkflowSummary(name=d.name, version=d.version, versions=versions, title=d.title.model_dump(),
                                   description=d.description, states=list(d.states),
                                   triggers=sorted({t.trigger for t in d.transitions})))
    return out


@router.get("/{name}", response_model=dict[str, Any])
def get_workflow(name: str, ctx: CtxDep, _actor: ActorDep, version: int | None = Query(None, ge=1)) -> Any:
    """Return a definition (newest version unless asked)."""
    return ctx.registry.machine(name, version).definition.model_dump(mode="json")


@router.get("/{name}/diagram", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {}}, "description": "Mermaid stateDiagram-v2"}})
def get_diagram(name: str, ctx: CtxDep, _actor: ActorDep, version: int | None = Query(None, ge=1)) -> str:
    """Return the Mermaid state diagram of a definition."""
    return to_mermaid(ctx.registry.machine(name, version).definition)
