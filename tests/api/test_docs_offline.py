"""/docs and /redoc work without internet: every asset they load is served by this service itself."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from api.app import create_app

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\s*:\s*["']([^"']+)["']|url\(["']?([^"')]+)""")


def _assets(html: str) -> list[str]:
    return [next(g for g in m.groups() if g) for m in ASSET.finditer(html)]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # the docs do not depend on the database
@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_api_docs_load_only_local_assets_and_they_are_served(ctx, path: str) -> None:
    client = TestClient(create_app(ctx=ctx))
    page = client.get(path)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assets = _assets(page.text)
    scripts = [a for a in assets if a.endswith(".js")]
    assert scripts, f"{path} loads no script: {assets}"
    foreign = [a for a in assets if urlsplit(a).scheme or urlsplit(a).netloc or a.startswith("//")]
    assert not foreign, f"{path} loads assets from elsewhere: {foreign}"
    assert "/openapi.json" in assets or "/openapi.json" in page.text
    for asset in assets:
        r = client.get(asset)
        assert r.status_code == 200, (asset, r.status_code)
        if asset.endswith(".js"):
            assert len(r.content) > 100_000 and "javascript" in r.headers["content-type"], asset
    assert client.get("/openapi.json").json()["info"]["title"] == "Vuosikello"
