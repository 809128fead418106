"""Where a case opens in the web pages: the one map from a case's workflow to the page that shows it.

Every emailed link is a sign-in link that lands on `/cases/{id}` (`api/web/routes/signin.py`), and `/cases/{id}`
redirects to the page this map names. Each process adds its own entry here, next to the others, so a mail's link
and the page that answers it cannot drift apart; `tests/web` follows every template's link through this map.
A workflow without an entry has no page: `/cases/{id}` answers with a clear "not shown here" page.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.models import Case

__all__ = ["PAGES", "page_of"]


def _agreement(case: Case) -> str:
    return f"/agreements/{case.id}"


def _party(case: Case) -> str:
    if case.parent_id and any(c.get("outcome") == "pending" for c in (case.data or {}).get("claims") or []):
        return f"/agreements/{case.parent_id}/finality"  # a claim awaits its outcome: where it is recorded
    return f"/agreements/{case.parent_id}" if case.parent_id else f"/agreements/{case.id}"


def _nomination(case: Case) -> str:
    return f"/nominations/{case.id}"


def _proposal(case: Case) -> str:
    # the asked organisation's proposal form, on its request's page
    return f"/nominations/{case.parent_id}/proposals/{case.id}"


def _cycle(case: Case) -> str:
    return f"/cycles/{case.id}"


def _cycle_child(case: Case) -> str:
    # a report request (network or council) opens its report form on the cycle
    return f"/cycles/{case.parent_id}/reports/{case.id}" if case.parent_id else f"/cycles/{case.id}"


def _planner(case: Case) -> str:
    return f"/cycles/{case.parent_id}" if case.parent_id else f"/cycles/{case.id}"


def _review(case: Case) -> str:
    # a council-term review is run from its agreement's page
    agreement_id = (case.data or {}).get("agreement_id")
    return f"/agreements/{agreement_id}/review" if agreement_id else f"/cases/{case.id}"


PAGES: dict[str, Callable[[Case], str]] = {
    "agreement": _agreement,
    "agreement_party": _party,
    "nomination": _nomination,
    "nomination_proposal": _proposal,
    "cycle": _cycle,
    "cycle_report": _cycle_child,
    "cycle_planner": _planner,
    "review": _review,
}


def page_of(case: Case) -> str | None:
    """Return the path of the page that shows a case, or None when no page shows its workflow."""
    page = PAGES.get(case.workflow)
    return page(case) if page else None
