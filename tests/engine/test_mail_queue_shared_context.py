"""`deferred.queue` checks and encodes a context value the emails of one call share once (the entry into force's 26).

What each row keeps must be exactly what encoding `plain(context)` per email gave: dates and datetimes tagged,
nested values copied, the reader's name and the base address first and the email's own keys over them; and what
is not plain data is refused, shared or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from api.context import AppContext
from engine.models import OutboxMessage
from notifications import deferred
from notifications.render import NotPlainData, plain
from tests.support.builders import make_user


def _stored(ctx: AppContext, keys: list[str]) -> dict[str, Any]:
    return ctx.engine.run(lambda uow: {k: c for k, c in uow.session.execute(
        select(OutboxMessage.dedupe_key, OutboxMessage.render_context)
        .where(OutboxMessage.dedupe_key.in_(keys))).all()})  # type: ignore[attr-defined]


def test_shared_values_are_stored_as_encoding_each_context_gave(ctx: AppContext) -> None:
    readers = [make_user(ctx, name=f"Lukija {i}") for i in range(3)]
    shared: dict[str, Any] = {"case": {"id": 7, "title": "Sopimus", "deadline": date(2026, 6, 19)},
                              "when": datetime(2026, 3, 2, 7, 0, tzinfo=UTC), "actions": ["sign", "approve"],
                              "count": 3}
    mails = [deferred.Mail(template="agreement_in_force", key=f"shared-{i}", person_id=u.id or 0,
                           context={**shared, "offset": f"P{i}D", **({"person": {"name": "Ohitettu"}} if i == 2
                                                                      else {})})
             for i, u in enumerate(readers)]
    assert ctx.engine.run(lambda uow: deferred.queue(uow, mails)) == 3
    stored = _stored(ctx, [m.key for m in mails])
    for i, mail in enumerate(mails):
        got = stored[mail.key]["context"]
        want = deferred._encode(plain({"person": {"name": f"Lukija {i}"}, "base_url": ctx.settings.base_url,
                                       **mail.context}))
        assert got == want
    assert stored["shared-0"]["context"]["case"]["deadline"] == {"$date": "2026-06-19"}
    assert stored["shared-2"]["context"]["person"] == {"name": "Ohitettu"}
    assert deferred._decode(stored["shared-1"]["context"])["when"] == shared["when"]


@pytest.mark.parametrize("bad", ["object", "key"])
def test_what_is_not_plain_is_refused_shared_or_not(ctx: AppContext, bad: str) -> None:
    reader = make_user(ctx)
    value: Any = {"nested": object()} if bad == "object" else {1: "x"}
    shared = {"case": value}
    mails = [deferred.Mail(template="agreement_in_force", key=f"bad-{bad}-{i}", person_id=reader.id or 0,
                           context=dict(shared)) for i in range(2)]
    with pytest.raises(NotPlainData):
        ctx.engine.run(lambda uow: deferred.queue(uow, mails))
    top = [deferred.Mail(template="agreement_in_force", key=f"top-{bad}", person_id=reader.id or 0,
                         context={2: "x"} if bad == "key" else {"x": object()})]  # type: ignore[dict-item]
    with pytest.raises(NotPlainData):
        ctx.engine.run(lambda uow: deferred.queue(uow, top))


# -- the one-pass encoder against the two passes it replaces ----------------------------------------------------


@dataclass
class _Point:
    x: int
    when: date


_leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5),
                    st.dates(), st.datetimes(), st.times(), st.timedeltas(), st.decimals(allow_nan=False),
                    st.builds(_Point, st.integers(), st.dates()))
_plain_data = st.recursive(_leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.lists(inner, max_size=3).map(tuple),
    st.dictionaries(st.text(max_size=4), inner, max_size=4)), max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(_plain_data)
def test_one_pass_encoding_equals_plain_then_encode(value: Any) -> None:
    assert deferred._plain_json(value, 1) == deferred._encode(plain(value, 1))


@pytest.mark.parametrize("bad", [{1: "a"}, {"a": {2: "b"}}, [object()], {"a": [{"b": object()}]}])
def test_one_pass_encoding_refuses_what_plain_refuses(bad: Any) -> None:
    with pytest.raises(NotPlainData):
        deferred._plain_json(bad, 1)
    with pytest.raises(NotPlainData):
        plain(bad, 1)


def test_one_pass_encoding_refuses_data_nested_too_deep() -> None:
    deep: Any = "leaf"
    for _ in range(25):
        deep = {"k": deep}
    with pytest.raises(NotPlainData, match="too deep"):
        deferred._plain_json(deep, 1)
