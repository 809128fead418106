"""Text people type, checked the same way everywhere: no control characters in a line, no NUL anywhere.

A title, a name or a subject is one line: it becomes an email's Subject header and a page's heading, and a control
character there made every mail of its case fail. NUL is refused in every text: PostgreSQL refuses to store it,
SQLite stores it, so without this the same request is a 422 on one database and a poisoned row on the other.
Longer texts (an agreement's text, a note, a reason) keep tabs and line breaks.

`SingleLine` and `MultiLine` are the pydantic types request schemas use; `control_character_problem` is the check
the web forms share (`api/web/forms.py`).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

# C0 controls, DEL and C1 controls; the line and paragraph separators are line breaks in disguise
_IN_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # keeps \t, \n and \r

SINGLE_LINE_PROBLEM = "must not contain control characters (a line break, a tab, NUL and the like)"
MULTI_LINE_PROBLEM = "must not contain control characters other than tabs and line breaks (NUL and the like)"


def control_character_problem(value: str, *, multiline: bool = False) -> str | None:
    """Return what is wrong with a text's characters, or None when it has no forbidden control character."""
    if multiline:
        return MULTI_LINE_PROBLEM if _IN_TEXT.search(value) else None
    return SINGLE_LINE_PROBLEM if _IN_LINE.search(value) else None


def _single_line(value: str) -> str:
    problem = control_character_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _multi_line(value: str) -> str:
    problem = control_character_problem(value, multiline=True)
    if problem:
        raise ValueError(problem)
    return value


SingleLine = Annotated[str, AfterValidator(_single_line)]
MultiLine = Annotated[str, AfterValidator(_multi_line)]
