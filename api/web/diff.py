"""Comparing two versions of an agreement's text, line by line and within a changed line word by word.

Python's difflib finds the changes (`SequenceMatcher`, the same matching `difflib.HtmlDiff` uses); the page renders
them itself instead of `HtmlDiff.make_table`, whose table has no header cells, marks changes only by colour and
inline `nowrap` attributes, and puts navigation anchors in every row: here each row says in words whether a line
was added, removed or kept, changed words are `<ins>`/`<del>` (read out as such), and long runs of unchanged lines
are folded into one row naming how many there are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher

CONTEXT = 3  # unchanged lines kept around each change; longer runs are folded
_WORDS = re.compile(r"\s+|[^\s]+")


@dataclass(frozen=True)
class Part:
    """A piece of a line: unchanged, or changed (removed on an old line, added on a new one)."""

    text: str
    changed: bool = False


@dataclass
class Row:
    """One row of the comparison: a kept, removed or added line, or a fold of unchanged lines."""

    kind: str  # same | removed | added | folded
    old: int | None = None  # line number in the older version
    new: int | None = None  # line number in the newer version
    parts: list[Part] = field(default_factory=list)
    folded: int = 0  # how many unchanged lines a fold stands for


@dataclass
class Comparison:
    """The rows of a comparison and what changed, counted."""

    rows: list[Row]
    added: int
    removed: int

    @property
    def same(self) -> bool:
        """Tell whether the texts are equal line for line."""
        return not (self.added or self.removed)


def _words(old: str, new: str) -> tuple[list[Part], list[Part]]:
    a, b = _WORDS.findall(old), _WORDS.findall(new)
    left: list[Part] = []
    right: list[Part] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            left.append(Part("".join(a[i1:i2])))
            right.append(Part("".join(b[j1:j2])))
            continue
        if i2 > i1:
            left.append(Part("".join(a[i1:i2]), True))
        if j2 > j1:
            right.append(Part("".join(b[j1:j2]), True))
    return left, right


def _whole(line: str) -> list[Part]:
    """Return a line added or removed as a whole (an empty line has no part to mark)."""
    return [Part(line, True)] if line else []


def _fold(rows: list[Row]) -> list[Row]:
    """Fold runs of unchanged lines longer than twice the context, keeping CONTEXT lines at each end."""
    out: list[Row] = []
    run: list[Row] = []

    def flush(last: bool) -> None:
        head = 0 if not out else CONTEXT
        tail = 0 if last else CONTEXT
        if len(run) > head + tail + 1:
            out.extend(run[:head])
            out.append(Row("folded", folded=len(run) - head - tail))
            out.extend(run[len(run) - tail:] if tail else [])
        else:
            out.extend(run)
        run.clear()

    for row in rows:
        if row.kind == "same":
            run.append(row)
        else:
            flush(last=False)
            out.append(row)
    flush(last=True)
    return out


def compare(old: str, new: str) -> Comparison:
    """Compare two texts: every line kept, removed or added, changed words marked, long unchanged runs folded."""
    a, b = old.splitlines(), new.splitlines()
    rows: list[Row] = []
    added = removed = 0
    for op, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            rows += [Row("same", i1 + k + 1, j1 + k + 1, [Part(a[i1 + k])]) for k in range(i2 - i1)]
            continue
        pairs = min(i2 - i1, j2 - j1) if op == "replace" else 0
        for k in range(i2 - i1):
            left = _words(a[i1 + k], b[j1 + k])[0] if k < pairs else _whole(a[i1 + k])
            rows.append(Row("removed", old=i1 + k + 1, parts=left))
        for k in range(j2 - j1):
            right = _words(a[i1 + k], b[j1 + k])[1] if k < pairs else _whole(b[j1 + k])
            rows.append(Row("added", new=j1 + k + 1, parts=right))
        removed += i2 - i1
        added += j2 - j1
    return Comparison(_fold(rows), added, removed)
