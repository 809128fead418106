"""Forgotten passwords: ask for a reset link by email, open it (a form; GET changes nothing), set a new password.

Setting it ends every session the person had (`api.web.passwords`) and signs this browser in afresh.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from starlette.responses import Response

from api.deps import SessionDep, WorkDep
from api.web.auth import MIN_PASSWORD_LENGTH, person_by_email
from api.web.i18n import choose_language
from api.web.passwords import open_reset, send_reset, use_reset
from api.web.render import render
from api.web.routes.signin import _failed, _now, _signed_in, _throttle
from api.web.routing import OptionalUser, web_router

router = web_router()


@router.get("/signin/reset")
def reset_request_page(request: Request, user: OptionalUser) -> Response:
    """Ask for the address to send a reset link to."""
    lang = user.lang if user else choose_language(request)
    return render(request, "password_reset.html", lang, user=user, stage="ask", errors={}, email="", notice=None)


@router.post("/signin/reset")
def reset_request(work: WorkDep, request: Request, email: Annotated[str, Form()] = "") -> Response:
    """Email a reset link to a coordinator or administrator; the answer is the same whether or not one exists."""
    _throttle(request, email[:320] or None)
    lang = choose_language(request)
    if "@" not in email or len(email) > 320:
        return render(request, "password_reset.html", lang, status=422, stage="ask", email=email, notice=None,
                      errors={"email": "signin.error.email"})
    _failed(request, "reset", email)  # each request counts against the address and the account: no mail bombing

    def _do(uow) -> None:  # type: ignore[no-untyped-def]
        person = person_by_email(uow.session, email)
        if person is not None:
            send_reset(uow, person)
    work.run(_do)
    return render(request, "password_reset.html", lang, stage="ask", email="", errors={},
                  notice="password.reset.sent")


@router.api_route("/signin/reset/{token}", methods=["GET", "HEAD"])
def reset_page(session: SessionDep, request: Request, token: str, user: OptionalUser) -> Response:
    """Show the new-password form for a valid link (opening it, by a person or a mail scanner, uses nothing)."""
    lang = user.lang if user else choose_language(request)
    if open_reset(session, token, _now(request)) is None:
        return render(request, "password_reset.html", lang, status=410, user=user, stage="invalid", errors={},
                      email="", notice=None)
    return render(request, "password_reset.html", lang, user=user, stage="set", token=token, errors={}, email="",
                  notice=None, min_length=MIN_PASSWORD_LENGTH)


@router.post("/signin/reset/{token}")
def reset_use(request: Request, token: str, password: Annotated[str, Form()] = "",
              again: Annotated[str, Form()] = "") -> Response:
    """Set the new password, use the link up, end every other session, and sign this browser in."""
    from api.web.routes.signin import _session

    _throttle(request)
    lang = choose_language(request)
    session = _session(request)
    errors: dict[str, str] = {}
    if len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = "password.error.short"  # noqa: S105 - a message id, not a password
    elif password != again:
        errors["again"] = "password.error.mismatch"
    if errors:
        status = 422 if open_reset(session, token, _now(request)) is not None else 410
        return render(request, "password_reset.html", lang, status=status, token=token,
                      stage="set" if status == 422 else "invalid", errors=errors, email="", notice=None,
                      min_length=MIN_PASSWORD_LENGTH)
    person_id = use_reset(session, token, password, _now(request))
    if person_id is None:
        _failed(request, "reset")
        return render(request, "password_reset.html", lang, status=410, stage="invalid", errors={}, email="",
                      notice=None)
    return _signed_in(request, person_id, "password", "/tasks")
