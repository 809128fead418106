"""Page templates are compiled when the app is built, not by the first request that needs one (issue 11)."""

from __future__ import annotations

from api.web import render


def test_every_page_template_is_compiled_when_the_app_is_built(ctx) -> None:
    from api.app import create_app

    render.environment.cache.clear()  # type: ignore[union-attr]
    create_app(ctx=ctx)
    names = [n for n in render.environment.list_templates() if n.endswith(".html")]
    cached = {key[1] for key in render.environment.cache}  # type: ignore[union-attr]
    assert len(names) > 40 and set(names) <= cached
