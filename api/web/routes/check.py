"""The public check page (/check): anyone, signed in or not, uploads a file or pastes a SHA-256 and learns whether
it is a sealed record or an agreement text issued by this service (workflows/agreement/check.py: what is shown).

The form is a POST with the CSRF token like every form here: before sign-in it is the signed double-submit
cookie (api/web/csrf.py), so another site cannot make a visitor's browser spend their checks. The upload comes
through Starlette's form parse, which the CSRF check runs first: the file is spooled (memory up to 1 MB, then a
temporary file) and the service's body limit (api/limits.py) bounds it; it is hashed a chunk at a time from
there. The limiter is the API's (api/routes/check.py): per client address, 429 with Retry-After.
"""

from __future__ import annotations

import math

from fastapi import Request
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

from api.deps import SessionDep
from api.routes.check import check_config, check_key, service_cert, throttle
from api.web.i18n import choose_language
from api.web.render import render
from api.web.routing import OptionalUser, web_router
from workflows.agreement.check import TooLarge, check, hash_stream, normalise

router = web_router()


def _lang(request: Request, user: OptionalUser) -> str:
    return user.lang if user else choose_language(request)


@router.get("/check")
def check_page(request: Request, user: OptionalUser) -> Response:
    """Show the public check: a file or a SHA-256."""
    return render(request, "check.html", _lang(request, user), user=user, errors={}, sha256="", result=None)


@router.post("/check")
async def check_submit(request: Request, user: OptionalUser, session: SessionDep) -> Response:
    """Check an uploaded file or a typed SHA-256 and show what it is (or that it is not recognised)."""
    form = await request.form()  # parsed already by the CSRF check: the same form comes back
    try:
        return await _check(request, user, session, form)
    finally:
        await form.close()  # the spooled upload's temporary file goes at once


async def _check(request: Request, user: OptionalUser, session: Session, form: FormData) -> Response:
    lang = _lang(request, user)
    ctx, config = request.app.state.ctx, check_config(request)
    typed = form.get("sha256")
    typed = typed.strip() if isinstance(typed, str) else ""
    upload = form.get("file")
    upload = upload if isinstance(upload, UploadFile) and (upload.filename or upload.size) else None

    def page(status: int, errors: dict[str, str], result: object = None, **extra: object) -> Response:
        return render(
            request,
            "check.html",
            lang,
            status=status,
            user=user,
            errors=errors,
            sha256=typed[:200],
            result=result,
            **extra,
        )

    wait = await run_in_threadpool(throttle, session, config, check_key(request), ctx.clock.now())
    if wait is not None:
        minutes = max(1, math.ceil(wait / 60))
        response = page(429, {"sha256": f"check.error.rate_limited|{minutes}"})
        response.headers["Retry-After"] = str(wait)
        return response
    if upload is not None and typed:
        return page(422, {"sha256": "check.error.both"})
    size: int | None = None
    if upload is not None:
        try:
            digest, size = await run_in_threadpool(hash_stream, upload.file, config.check_max_bytes)
        except TooLarge:
            megabytes = max(1, config.check_max_bytes // (1024 * 1024))
            return page(413, {"file": f"check.error.too_large|{megabytes}"})
    elif typed:
        found = normalise(typed)
        if found is None:
            return page(422, {"sha256": "check.error.sha256"})
        digest = found
    else:
        return page(422, {"file": "check.error.nothing"})
    matches = await run_in_threadpool(check, session, digest, service_cert(request))
    return page(200, {}, result={"sha256": digest, "size": size, "matches": matches})
