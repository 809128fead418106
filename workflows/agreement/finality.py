"""When a party's decision becomes final (lainvoimainen / laga kraft vunnen) under the Local Government Act.

The counting rule, as `finality_of` applies it:

1. **Notification** (Local Government Act 410/2015 § 140). A resident (*kunnan jäsen*) is deemed notified on the
   7th day after the minutes were published online: `notified_on = published_on + 7 days`. When the decision was
   also sent to a party (*asianosainen*) as an electronic notice, that party is deemed notified on the 3rd day after
   it was sent: `notice_sent_on + 3 days`. A deemed notification day is a fact, not a deadline: it is not moved
   off a weekend or holiday.
2. **Claim period** (§ 134: a claim for rectification, *oikaisuvaatimus*, within 14 days of notification; Act on
   the Calculation of Statutory Time Limits 150/1930 § 2: the day of notification is not counted). The last day is
   `notified_on + 14 days`, for the later of the two notifications. By 150/1930 § 5 a last day falling on a
   Saturday, Sunday, public holiday, Independence Day, May Day, Christmas Eve or Midsummer Eve moves to the next
   business day (`engine.calendar.is_business_day`: a weekday that is none of Finland's default-category holidays,
   which include Midsummer Eve and Christmas Eve).
3. **Final** (*lainvoimainen*). With no claim, the decision is final on the day after the claim period ends:
   `final_on = claim_deadline + 1 day` (it is final from 00:00 Helsinki that day; the engine's timers treat the end
   of the claim deadline, 23:59:59 Helsinki, as that moment). A claim for rectification or an appeal recorded
   against the decision holds it not final while it is pending; an upheld one voids the decision (it never becomes
   final; the party is asked again); once every claim is rejected or withdrawn the decision is final on the later of
   the day after the claim period and the day after the last outcome was given.

What it does not compute: the 30-day appeal period (§ 135, § 138) against the decision on a claim, or against a
council's decision that is appealed directly; an appeal the coordinator records holds the decision not final until
its outcome is recorded. Without a publication date the dates are unknown (`status == "unpublished"`).

The function is pure (dates in, dates out; no database, no clock: `today` is passed in), so the sealed record,
the read model, the timers and the annual clock all compute the same dates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal, Protocol

from engine.calendar import is_business_day

RESIDENT_NOTICE_DAYS = 7  # 410/2015 § 140(3): the minutes published online
PARTY_NOTICE_DAYS = 3  # 410/2015 § 140(2): an ordinary electronic notice to a party
CLAIM_DAYS = 14  # 410/2015 § 134(1): claim for rectification

Status = Literal["unpublished", "claim_period", "contested", "final", "void"]
Outcome = Literal["pending", "upheld", "rejected", "withdrawn"]
OUTCOMES: tuple[Outcome, ...] = ("pending", "upheld", "rejected", "withdrawn")
KINDS = ("rectification", "appeal")


class DecisionDates(Protocol):
    """What finality needs of a decision (the `Decision` row, or anything with these attributes)."""

    @property
    def published_on(self) -> date | None: ...

    @property
    def notice_sent_on(self) -> date | None: ...


class ClaimDates(Protocol):
    """What finality needs of a claim (the `DecisionClaim` row, or anything with these attributes)."""

    @property
    def outcome(self) -> str: ...

    @property
    def outcome_on(self) -> date | None: ...


@dataclass(frozen=True)
class Finality:
    """A decision's notification date, last day for a claim, final date (None while not final) and status.

    `status`: unpublished (no publication date: nothing can be computed), claim_period (the claim period runs, or
    has not yet been counted out), contested (a claim awaits its outcome), final, void (a claim was upheld).
    `final_on` is set only when the decision is final by `today`; `expected_final_on` is the day it becomes final
    if no (further) claim is made (None while unpublished, contested or void).
    """

    notified_on: date | None
    claim_deadline: date | None
    final_on: date | None
    status: Status
    expected_final_on: date | None = None

    @property
    def is_final(self) -> bool:
        """Tell whether the decision is final."""
        return self.status == "final"


def claim_deadline_of(notified_on: date, business_day: Callable[[date], bool] = is_business_day) -> date:
    """Return the last day for a claim: 14 days after notification, moved off a non-business day (150/1930 § 5)."""
    last = notified_on + timedelta(days=CLAIM_DAYS)
    while not business_day(last):
        last += timedelta(days=1)
    return last


def notified_on_of(published_on: date | None, notice_sent_on: date | None = None) -> date | None:
    """Return the later deemed notification: a resident's (publication + 7) and a party's (notice + 3)."""
    dates = []
    if published_on is not None:
        dates.append(published_on + timedelta(days=RESIDENT_NOTICE_DAYS))
    if notice_sent_on is not None:
        dates.append(notice_sent_on + timedelta(days=PARTY_NOTICE_DAYS))
    return max(dates) if dates else None


def finality_of(decision: DecisionDates, claims: Iterable[ClaimDates], today: date,
                business_day: Callable[[date], bool] = is_business_day) -> Finality:
    """Return the decision's finality on `today` (a Helsinki date; the rule is in this module's docstring)."""
    notified = notified_on_of(decision.published_on, decision.notice_sent_on)
    if notified is None:
        return Finality(None, None, None, "unpublished")
    deadline = claim_deadline_of(notified, business_day)
    claims = list(claims)
    if any(c.outcome == "upheld" for c in claims):
        return Finality(notified, deadline, None, "void")
    if any(c.outcome == "pending" for c in claims):
        return Finality(notified, deadline, None, "contested")
    final_on = deadline + timedelta(days=1)
    outcomes = [c.outcome_on for c in claims if c.outcome_on is not None]
    if outcomes:
        final_on = max(final_on, max(outcomes) + timedelta(days=1))
    if today < final_on:
        return Finality(notified, deadline, None, "claim_period", final_on)
    return Finality(notified, deadline, final_on, "final", final_on)


@dataclass(frozen=True)
class SimpleDecision:
    """A decision's publication and notice dates, for `finality_of` when no `Decision` row is at hand."""

    published_on: date | None
    notice_sent_on: date | None = None


@dataclass(frozen=True)
class SimpleClaim:
    """A claim's outcome and its date, for `finality_of` when no `DecisionClaim` row is at hand."""

    outcome: str
    outcome_on: date | None = None


def _as_date(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


def read_fields(published_on: date | None, notice_sent_on: date | None,
                claims: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Return what the read model shows of a decision's finality, independent of the day it is read.

    `final_on` is the day the decision is or becomes final unless a (further) claim is made, and `finality` is
    unpublished, counting (final from final_on), contested or void: a reader compares final_on with today, so the
    answer can be cached (the agreement's ETag changes only with the data). `claims` are the party case's copies
    of its `decision_claim` rows (dates as ISO strings or dates).
    """
    shown = [{**c, "filed_on": _as_date(c.get("filed_on")), "outcome_on": _as_date(c.get("outcome_on"))}
             for c in claims]
    f = finality_of(SimpleDecision(published_on, notice_sent_on),
                    [SimpleClaim(str(c["outcome"]), c["outcome_on"]) for c in shown], date.min)
    status = "counting" if f.status == "claim_period" else f.status
    return {"published_on": published_on, "notice_sent_on": notice_sent_on, "notified_on": f.notified_on,
            "claim_deadline": f.claim_deadline, "final_on": f.expected_final_on, "finality": status,
            "claims": shown}
