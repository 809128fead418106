"""`deferred.queue` checks and encodes a context value the emails of one call share once (the entry into force's 26).

What each row keeps must be exactly what encoding `plain(context)` per email gave: dates and datetimes tagged,
nested values copied, the reader's name and the base address first and the email's own keys over them; and what
is not plain data is refused, shared or not.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
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
