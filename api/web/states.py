"""What a state counts as, for the pages' queries: asked of the definitions' tags (and final states), never named.

The agreement pages count parties, list open tasks and flag overdue parties over many rows at once, in SQL; the
sets of states they filter on come from the YAML (`tags:` on states) through the registry, so a new state or
version needs no change here.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.registry import Registry
from workflows.agreement.cases import AGREEMENT, PARTY

NOMINATION = "nomination"


@dataclass(frozen=True)
class StateSets:
    """The states the pages filter and count on."""

    agreement_awaiting: tuple[str, ...]  # the parties are still being asked (circulating, renegotiating)
    agreement_open: tuple[str, ...]  # parties can decide and sign now
    party_open: tuple[str, ...]  # a party with something still to do or to hear
    party_pending: tuple[str, ...]  # a party whose decision or signatures are still due
    party_approved: tuple[str, ...]
    party_signed: tuple[str, ...]
    party_acted: tuple[str, ...]
    nomination_done: tuple[str, ...]


def state_sets(registry: Registry) -> StateSets:
    """Return the state sets of the loaded definitions (every version)."""
    return StateSets(
        agreement_awaiting=tuple(registry.tagged(AGREEMENT, "awaiting_parties")),
        agreement_open=tuple(registry.tagged(AGREEMENT, "open_for_parties")),
        party_open=tuple(registry.tagged(PARTY, "open")),
        party_pending=tuple(registry.tagged(PARTY, "pending")),
        party_approved=tuple(registry.tagged(PARTY, "approved")),
        party_signed=tuple(registry.tagged(PARTY, "signed")),
        party_acted=tuple(registry.tagged(PARTY, "acted")),
        nomination_done=tuple(registry.final(NOMINATION)),
    )
