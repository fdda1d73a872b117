"""The commune map: an admin uploads the province's boundaries (GeoJSON, generated here) to
the unit registry, and the dashboard draws the communes coloured by their scores; bad uploads
are refused with problem+json and change nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, async_playwright

from services.dashboard.domain.figures import band
from tests.dashboard.conftest import ARTIFACTS, CHROMIUM_ARGS, PERIODS, Stack, need_chromium

Auth = Callable[..., dict[str, str]]


def squares(unit_ids: list[str], lon: float = 106.0, lat: float = 20.9) -> dict[str, Any]:
    """A row-by-row grid of 0.05° squares, one per unit: a small synthetic province."""
    features = []
    for i, uid in enumerate(unit_ids):
        x, y = lon + 0.05 * (i % 3), lat - 0.05 * (i // 3)
        ring = [[x, y], [x + 0.05, y], [x + 0.05, y - 0.05], [x, y - 0.05], [x, y]]
        features.append({"type": "Feature", "properties": {"unit_id": uid, "name": uid},
                         "geometry": {"type": "Polygon", "coordinates": [ring]}})  # fmt: skip
    return {"type": "FeatureCollection", "features": features}


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    path = need_chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield b
        await b.close()


async def test_upload_boundaries_and_see_the_map(browser: Browser, stack: Stack,
                                                 auth: Auth) -> None:  # fmt: skip
    p = stack.province
    url = f"{stack.scoring}/api/v1/units/{p.id}/boundaries"
    doc = squares(p.communes)
    async with httpx.AsyncClient() as http:
        assert (await http.get(url, headers=auth("viewer"))).status_code == 404
        page = await browser.new_page()
        await page.goto(f"{stack.dashboard}/communes?period={PERIODS[-1]}")
        await page.select_option("#role", "viewer")
        await page.click("#dev-signin")
        await page.wait_for_load_state("networkidle")
        assert await page.locator("#map").count() == 0
        assert await page.locator("#grid a.tile").count() == len(p.communes), "grid without map"

        r = await http.put(url, json=doc, headers=auth("viewer"))
        assert r.status_code == 403
        for bad in ({"type": "Feature"}, {"type": "FeatureCollection", "features": [
                {"type": "Feature", "properties": {}, "geometry": doc["features"][0]["geometry"]}]},
                squares([*p.communes[:2], f"{p.id}.NOPE"]),
                {**doc, "features": [{**doc["features"][0], "geometry": {
                    "type": "Polygon", "coordinates": [[[500, 1], [1, 1], [1, 2], [500, 1]]]}}]}):  # fmt: skip
            r = await http.put(url, json=bad, headers=auth("admin"))
            assert r.status_code == 400, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
        r = await http.put(url, content=b"{not json", headers={**auth("admin"),
                           "Content-Type": "application/geo+json"})  # fmt: skip
        assert r.status_code == 400
        assert (await http.get(url, headers=auth("viewer"))).status_code == 404, "nothing stored"

        r = await http.put(url, json=doc, headers=auth("admin"))
        assert r.status_code == 200 and r.json()["features"] == len(p.communes)
        stored = (await http.get(url, headers=auth("viewer"))).json()
        assert [f["properties"]["unit_id"] for f in stored["features"]] == p.communes
        rankings = (await http.get(f"{stack.scoring}/api/v1/rankings", headers=auth("viewer"),
                                   params={"period": PERIODS[-1], "level": "commune",
                                           "under": p.id})).json()  # fmt: skip

    await page.reload()
    shapes = page.locator("#map a")
    assert await shapes.count() == len(p.communes)
    drawn = await shapes.evaluate_all(
        "as => as.map(a => [a.dataset.unit, a.querySelector('path').getAttribute('class')])"
    )
    expected = {r["unit_id"]: f"band-{band(r['total'], 100)}" for r in rankings}
    assert dict(drawn) == expected
    await page.screenshot(path=str(ARTIFACTS / "communes-map.png"), full_page=True)
    target = p.communes[4]
    await page.click(f"#map a[data-unit='{target}']")
    await page.wait_for_load_state("networkidle")
    assert f"/units/{target}" in page.url
    assert "Xã Đông Hòa 5" in await page.inner_text("h1")
    await page.close()
