"""A person's walk through the dashboard in a real Chromium: signing in (a browser without a
session is sent to sign-in, never shown 401 JSON), the province overview, the rankings of
departments and communes (colour bands, search, sort), a unit with its lost points explained,
the remediation overview, the alerts feed, the commune grid, a phone-sized screen, and the
services' offline /docs — each number on screen checked against the API's, with screenshots
kept under .run/artifacts/dashboard/."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from services.dashboard.domain.figures import band, fmt
from shared.settings import Settings
from tests.dashboard.conftest import ARTIFACTS, CHROMIUM_ARGS, PERIODS, Stack, need_chromium

PERIOD = PERIODS[-1]
Auth = Callable[..., dict[str, str]]


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    path = need_chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield b
        await b.close()


async def new_page(browser: Browser, stack: Stack, **context: Any) -> Page:
    ctx = await browser.new_context(locale="vi-VN", **context)
    # Nothing but our own servers: a page needing the internet would fail here.
    local = (stack.dashboard, stack.scoring, stack.tasks)

    async def only_local(route: Any) -> None:
        if route.request.url.startswith(local):
            await route.continue_()
        else:
            await route.abort()

    await ctx.route("**/*", only_local)
    return await ctx.new_page()


async def sign_in(page: Page, stack: Stack, role: str, unit: str | None = None,
                  path: str = "/overview") -> None:  # fmt: skip
    await page.goto(f"{stack.dashboard}{path}")
    assert "/signin" in page.url, "a protected page sends the browser to sign in"
    assert "Đăng nhập" in await page.inner_text("h1")
    await page.select_option("#role", role)
    if unit:
        await page.evaluate(
            """([id, name]) => { const s = document.querySelector('#unit');
               if (![...s.options].some(o => o.value === id)) s.add(new Option(name, id)); }""",
            [unit, unit],
        )
        await page.select_option("#unit", unit)
    await page.click("#dev-signin")
    await page.wait_for_load_state("networkidle")


async def api(stack: Stack, auth: Auth, service: str, path: str, **params: Any) -> Any:
    base = stack.scoring if service == "scoring" else stack.tasks
    async with httpx.AsyncClient() as http:
        r = await http.get(base + path, params=params, headers=auth("viewer"))
        r.raise_for_status()
        return r.json()


async def test_unauthenticated_browser_is_sent_to_sign_in(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.dashboard) as http:
        r = await http.get("/rankings?level=department")
        assert r.status_code == 303
        assert r.headers["location"].startswith("/signin?next=%2Frankings")
        forged = await http.get("/overview", cookies={"cchc_session": "eyJ0b2tlbiI6IngifQ.AAAA"})
        assert forged.status_code == 303
        r = await http.post("/signin/dev", data={"role": "viewer", "next": "//evil.example/"})
        assert r.headers["location"] == "/", "no open redirect after sign-in"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie


async def test_leader_reads_the_province(browser: Browser, stack: Stack, auth: Auth) -> None:
    page = await new_page(browser, stack, viewport={"width": 1366, "height": 900})
    p = stack.province
    await sign_in(page, stack, "viewer")
    assert page.url.endswith("/overview")
    card = await api(stack, auth, "scoring", f"/api/v1/units/{p.id}/scores/{PERIOD}",
                     explain="false")  # fmt: skip
    prev = await api(stack, auth, "scoring", f"/api/v1/units/{p.id}/scores/{PERIODS[0]}",
                     explain="false")  # fmt: skip
    assert await page.inner_text("[data-testid=total]") == fmt(card["total"])
    for gid, g in card["groups"].items():
        assert await page.inner_text(f"[data-testid=group-{gid}]") == fmt(g["points"])
    delta = await page.inner_text("[data-testid=delta]")
    assert fmt(abs(card["total"] - prev["total"])) in delta or "không đổi" in delta
    assert "Số liệu tính đến" in await page.inner_text(".fresh")
    # The three indicators that lost the most points, most first, as the API explains them.
    full = await api(stack, auth, "scoring", f"/api/v1/units/{p.id}/scores/{PERIOD}")
    worst = sorted(full["explanation"], key=lambda e: -e["lost"])[:3]
    shown_issues = page.locator("ol.issues li")
    assert await shown_issues.evaluate_all("l => l.map(x => x.dataset.indicator)") == [
        e["indicator"] for e in worst
    ]
    # the sentence scoring writes in Vietnamese (its points in Vietnamese decimals)
    first_shown = await shown_issues.first.inner_text()
    assert first_shown.startswith(worst[0]["text"].rstrip("."))
    assert f"{fmt(worst[0]['lost'])}/" in first_shown
    assert p.id not in await page.inner_text("ol.issues"), "agencies by name"
    deps = await api(stack, auth, "scoring", "/api/v1/rankings", period=PERIOD,
                     level="department", under=p.id)  # fmt: skip
    coms = await api(stack, auth, "scoring", "/api/v1/rankings", period=PERIOD,
                     level="commune", under=p.id)  # fmt: skip
    moves = [r["rank_change"] for r in deps + coms if r["rank_change"] is not None]
    assert await page.inner_text("[data-testid=down]") == f"{sum(m < 0 for m in moves)}↓"
    assert await page.inner_text("[data-testid=up]") == f"{sum(m > 0 for m in moves)}↑"
    fell = await page.locator("ul.watch li").count()
    assert fell == min(10, sum(m < 0 for m in moves)) > 0
    # Ours is not published: our total ranks among the three neighbours' published totals.
    assert await page.inner_text("[data-testid=national]") == "3/4"
    assert await page.locator("svg.trend circle").count() == 2, "two scored months in the trend"
    await page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)

    # Departments, ranked as the API ranks them, coloured by band; sort by a group; search.
    await page.click("nav >> text=Sở, ngành")
    await page.wait_for_load_state("networkidle")
    rows = await api(stack, auth, "scoring", "/api/v1/rankings", period=PERIOD,
                     level="department", under=p.id)  # fmt: skip
    shown = await page.locator("#ranking tbody tr").evaluate_all(
        "rows => rows.map(r => [r.dataset.unit, r.cells[0].innerText, "
        "r.querySelector('[data-testid=total]').innerText, "
        "r.querySelector('[data-testid=total]').className])"
    )
    assert [s[0] for s in shown] == [r["unit_id"] for r in rows]
    assert [s[1] for s in shown] == [str(r["rank"]) for r in rows]
    assert [s[2] for s in shown] == [fmt(r["total"]) for r in rows]
    assert [s[3].split("band-")[1] for s in shown] == [band(r["total"], 100) for r in rows]
    await page.screenshot(path=str(ARTIFACTS / "rankings-departments.png"), full_page=True)
    # Click-sort by the "progress" group, descending.
    await page.click("#ranking th[data-group=progress]", position={"x": 2, "y": 2})
    order = await page.locator("#ranking tbody tr").evaluate_all("r => r.map(x => x.dataset.unit)")
    expected = sorted(rows, key=lambda r: -(r["groups"].get("progress") or -1))
    assert [r["groups"]["progress"] for r in expected] == [
        next(r for r in rows if r["unit_id"] == u)["groups"]["progress"] for u in order
    ]
    await page.fill("#search", "tu phap")  # accent-insensitive: "Sở Tư pháp"
    visible = await page.locator("#ranking tbody tr:not([hidden])").count()
    assert visible == 1
    assert "Sở Tư pháp" in await page.inner_text("#ranking tbody tr:not([hidden])")

    # Communes, then one unit: the lost points in Vietnamese with procedures and agencies.
    await page.click("nav >> text=Xã, phường")
    await page.wait_for_load_state("networkidle")
    communes = await api(stack, auth, "scoring", "/api/v1/rankings", period=PERIOD,
                         level="commune", under=p.id)  # fmt: skip
    assert await page.locator("#ranking tbody tr").count() == len(communes) == len(p.communes)
    await page.screenshot(path=str(ARTIFACTS / "rankings-communes.png"), full_page=True)

    unit = p.departments[0]
    await page.goto(f"{stack.dashboard}/units/{unit}?period={PERIOD}")
    snap = await api(stack, auth, "scoring", f"/api/v1/units/{unit}/scores/{PERIOD}")
    assert await page.inner_text("[data-testid=total]") == fmt(snap["total"])
    assert await page.inner_text("[data-testid=rank]") == str(snap["rank"])
    lost = page.locator("ol.lost > li")
    assert await lost.count() == len(snap["explanation"]) > 0
    first = snap["explanation"][0]
    text_ = await lost.first.inner_text()
    assert text_.startswith(first["text"].rstrip("."))
    assert f"mất {fmt(first['lost'])}/{fmt(first['max'])} điểm" in text_.lower()
    explained = await page.inner_text("ol.lost")
    assert unit not in explained and "Sở Nội vụ" in explained, "agencies by name, not id"
    assert "dossiers" not in explained, "in Vietnamese"
    with_contributors = [i for i, e in enumerate(snap["explanation"]) if e["contributors"]]
    assert with_contributors
    procedures = {c["procedure"] for c in snap["explanation"][with_contributors[0]]["contributors"]}
    shown_procs = (
        await lost.nth(with_contributors[0]).locator("tbody tr td:first-child").all_inner_texts()
    )
    assert set(shown_procs) == procedures
    items = await api(stack, auth, "tasks", "/api/v1/items", unit_id=unit)
    assert await page.locator("#items tbody tr").count() == len(items["items"]) == 2
    alerts = await api(stack, auth, "scoring", "/api/v1/alerts", unit_id=unit, status="open")
    assert await page.locator("ul.alerts li").count() == len(alerts)
    await page.screenshot(path=str(ARTIFACTS / "unit.png"), full_page=True)

    # Remediation overview: totals per agency as tasks reports them.
    await page.click("nav >> text=Khắc phục")
    await page.wait_for_load_state("networkidle")
    report = await api(stack, auth, "tasks", "/api/v1/reports/province")
    assert await page.inner_text("[data-testid=items-total]") == str(report["total"])
    assert await page.inner_text("[data-testid=items-overdue]") == str(
        report["by_timeliness"].get("overdue", 0)
    )
    row = page.locator(f"#agencies tr[data-unit='{unit}'] td")
    mine = next(a for a in report["agencies"] if a["unit_id"] == unit)
    assert await row.nth(1).inner_text() == str(mine["total"]) == "2"
    assert await page.locator("ul.conclusions li").count() >= 1
    await page.screenshot(path=str(ARTIFACTS / "remediation.png"), full_page=True)

    # Alerts feed and the commune grid.
    await page.click("nav >> text=Cảnh báo")
    all_open = await api(stack, auth, "scoring", "/api/v1/alerts", status="open", limit=300)
    assert await page.locator("#alerts tbody tr").count() == len(all_open)
    await page.screenshot(path=str(ARTIFACTS / "alerts.png"), full_page=True)
    await page.click("nav >> text=Bản đồ xã")
    tiles = page.locator("#grid a.tile")
    assert await tiles.count() == len(communes)
    await page.screenshot(path=str(ARTIFACTS / "communes.png"), full_page=True)
    await page.context.close()


async def test_officer_sees_their_agency_on_a_phone(
    browser: Browser, stack: Stack, auth: Auth
) -> None:
    p = stack.province
    unit = p.departments[1]
    page = await new_page(browser, stack, viewport={"width": 390, "height": 844},
                          is_mobile=True, has_touch=True)  # fmt: skip
    await sign_in(page, stack, "officer", unit)
    assert page.url.endswith(f"/units/{unit}"), "an officer lands on their agency"
    await page.goto(f"{stack.dashboard}/rankings?level=department&period={PERIOD}")
    units = await page.locator("#ranking tbody tr").evaluate_all("r => r.map(x => x.dataset.unit)")
    assert units == [unit], "the API confines an officer to their agency, and so does the page"
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, "no sideways scrolling of the page on a phone"
    await page.goto(f"{stack.dashboard}/units/{p.departments[0]}?period={PERIOD}")
    assert "Không tìm thấy" in await page.inner_text("h1")
    await page.goto(f"{stack.dashboard}/units/{unit}?period={PERIOD}")
    await page.screenshot(path=str(ARTIFACTS / "officer-phone.png"), full_page=True)
    await page.context.close()


async def test_service_docs_render_offline(browser: Browser, stack: Stack) -> None:
    page = await new_page(browser, stack)
    await page.goto(f"{stack.scoring}/docs")
    await page.wait_for_selector(".opblock", timeout=20_000)
    assert await page.locator(".opblock").count() > 10
    await page.screenshot(path=str(ARTIFACTS / "scoring-docs.png"))
    await page.goto(f"{stack.tasks}/redoc")
    await page.wait_for_selector("[data-section-id]", timeout=20_000)
    await page.goto(f"{stack.tasks}/")
    assert "Bảng điều hành" in await page.inner_text("body")
    await page.context.close()


async def test_a_service_down_shows_a_vietnamese_page_not_a_500(
    make_settings: Callable[..., Settings],
) -> None:
    from services.dashboard.main import create_app
    from services.dashboard.settings import DashboardSettings
    from tests.dashboard.conftest import free_port, serving

    dead = f"http://127.0.0.1:{free_port()}"
    app = create_app(DashboardSettings(scoring_url=dead, tasks_url=dead, ingest_url=dead,
                                       period="202609"), make_settings(service_name="dashboard"))  # fmt: skip
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        await http.post("/signin/dev", data={"role": "viewer"})
        r = await http.get("/rankings")
        assert r.status_code == 503 and "Chưa kết nối được dịch vụ" in r.text
