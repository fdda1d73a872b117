"""Every service's /docs and /redoc load only local assets (no CDN), describe the API in
Vietnamese beside English, and the service root answers a page pointing to them."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from scripts.export_openapi import SERVICES
from shared.settings import Settings
from tests.conftest import running


@pytest.mark.parametrize("service", SERVICES)
async def test_docs_use_local_assets(service: str, make_settings: Callable[..., Settings]) -> None:
    module = __import__(f"services.{service}.main", fromlist=["create_app"])
    app = module.create_app(make_settings(service_name=service, workers_enabled=False))
    async with running(app) as client:
        for page in ("/docs", "/redoc"):
            r = await client.get(page)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
            urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", r.text)
            urls += re.findall(r"url: ?'([^']+)'", r.text)
            assert urls, page
            for url in urls:
                assert not url.startswith(("http://", "https://", "//")), (page, url)
                asset = await client.get(url)
                assert asset.status_code == 200, (page, url)
            assert "fonts.googleapis" not in r.text
        spec = (await client.get("/openapi.json")).json()
        assert "English:" in spec["info"]["description"]
        tags = {t["name"]: t["description"] for t in spec["tags"]}
        assert tags["health"].startswith("Tình trạng hoạt động")
        root = await client.get("/")
        assert root.status_code == 200 and 'href="docs"' in root.text
        assert "Bảng điều hành" in root.text
