"""Equality Act (609/1986) §4 a: a woman and a man proposed per seat, and the 40 % shares of the decision."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine.errors import InvalidInput

LAW = "Equality Act 609/1986 §4 a"
MIN_SHARE = 0.4


def lacking(seats: dict[int, bool], proposed: Iterable[tuple[int, str, str]],
            exceptions: set[tuple[int, str]]) -> list[tuple[int, str, list[str]]]:
    """Return (seat, position, genders lacking) for each seat position without a woman and a man or an exception.

    `seats` maps seat number to whether it has a deputy; `proposed` holds (seat, position, gender).
    """
    genders: dict[tuple[int, str], set[str]] = {}
    for seat, position, gender in proposed:
        genders.setdefault((seat, position), set()).add(gender)
    out = []
    for seat in sorted(seats):
        for position in ("member", "deputy") if seats[seat] else ("member",):
            if (seat, position) in exceptions:
                continue
            have = genders.get((seat, position), set())
            missing = [g for g in ("woman", "man") if g not in have]
            if missing:
                out.append((seat, position, missing))
    return out


def missing_pairs(seats: dict[int, bool], proposed: Iterable[tuple[int, str, str]],
                  exceptions: set[tuple[int, str]]) -> list[str]:
    """Return what each seat lacks, e.g. "seat 2 deputy: no man proposed", skipping seats with an exception."""
    return [f"seat {seat} {position}: nobody proposed" if len(missing) == 2
            else f"seat {seat} {position}: no {missing[0]} proposed"
            for seat, position, missing in lacking(seats, proposed, exceptions)]


def check_proposal(seats: dict[int, bool], proposed: Iterable[tuple[int, str, str]],
                   exceptions: set[tuple[int, str]]) -> None:
    """Raise InvalidInput("candidates") listing every seat that lacks a woman or a man without an exception."""
    proposed = list(proposed)
    problems = missing_pairs(seats, proposed, exceptions)
    if problems:
        where = sorted({seat for seat, _position, _missing in lacking(seats, proposed, exceptions)})
        raise InvalidInput("candidates", "; ".join(problems) + ". Propose a woman and a man for each seat, "
                           f"or give an exception with its reason ({LAW})", message_id="nomination.error.pairs",
                           params={"seats": ", ".join(map(str, where))})


@dataclass(frozen=True)
class Shares:
    """Counts of women and men among the members and among the deputies."""

    members: int
    women_members: int
    men_members: int
    deputies: int
    women_deputies: int
    men_deputies: int

    @staticmethod
    def of(chosen: Iterable[tuple[str, str]]) -> Shares:
        """Count (position, gender) pairs."""
        counts = {("member", "woman"): 0, ("member", "man"): 0, ("deputy", "woman"): 0, ("deputy", "man"): 0}
        totals = {"member": 0, "deputy": 0}
        for position, gender in chosen:
            totals[position] += 1
            if (position, gender) in counts:
                counts[(position, gender)] += 1
        return Shares(totals["member"], counts[("member", "woman")], counts[("member", "man")],
                      totals["deputy"], counts[("deputy", "woman")], counts[("deputy", "man")])

    @staticmethod
    def pct(part: int, whole: int) -> float | None:
        """Return part of whole in per cent, one decimal, or None for an empty group."""
        return round(100 * part / whole, 1) if whole else None

    def shortfalls(self) -> list[str]:
        """Return each group below 40 %, e.g. "men are 33 % of the members (1 of 3)"."""
        out = []
        for label, group, total in (("members", "members", self.members), ("deputies", "deputies", self.deputies)):
            if not total:
                continue
            for sex in ("women", "men"):
                count = getattr(self, f"{sex}_{group}")
                if count < MIN_SHARE * total:
                    out.append(f"{sex} are {round(100 * count / total)} % of the {label} ({count} of {total})")
        return out


def check_shares(shares: Shares, justification: str | None) -> None:
    """Raise InvalidInput("justification") when a share is below 40 % and no written justification is given."""
    low = shares.shortfalls()
    if low and not (justification and justification.strip()):
        def pct(part: int, whole: int) -> str:
            return str(round(100 * part / whole)) if whole else "–"
        raise InvalidInput("justification", "; ".join(low) + f": below 40 % needs a written justification ({LAW})",
                           message_id="nomination.error.justification",
                           params={"women_members": pct(shares.women_members, shares.members),
                                   "men_members": pct(shares.men_members, shares.members),
                                   "women_deputies": pct(shares.women_deputies, shares.deputies),
                                   "men_deputies": pct(shares.men_deputies, shares.deputies)})
