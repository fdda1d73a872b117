"""HTTP API of the simulated provincial one-stop system (VNPT iGate-like, national field names)."""

import asyncio
import base64
import html
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Header, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from services.ingest.simulator import dialects, portal
from services.ingest.simulator.data import FEEDS, Feed, fmt, parse_ts
from services.ingest.simulator.faults import Faults
from services.ingest.simulator.state import DEFAULT_LIMIT, MAX_LIMIT, BadRequest, Simulator

TOKEN_TTL_S = 3600


def create_app(sim: Simulator) -> FastAPI:
    app = FastAPI(
        title="One-stop system simulator (iGate-like)",
        version="1.0",
        description="Deterministic stand-in for a provincial one-stop system.",
    )
    app.state.sim = sim

    @app.middleware("http")
    async def source_clock(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Every answer's Date header reads the simulated system's own clock (plus the
        `clock_skew_s` fault), as a real one-stop system's would read its own: the server
        running the simulator must not add its own (uvicorn: `date_header=False`)."""
        response = await call_next(request)
        if sim.faults.date_header:
            response.headers["Date"] = formatdate(sim.clock + sim.faults.clock_skew_s, usegmt=True)
        return response

    def authenticate(
        x_api_key: Annotated[str | None, Header()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> None:
        if x_api_key is not None and secrets.compare_digest(x_api_key, sim.api_key):
            return
        if authorization and authorization.lower().startswith("bearer "):
            expiry = sim.tokens.get(authorization[7:].strip())
            if expiry is not None and expiry > time.time():
                return
        raise HTTPException(
            401, "missing or invalid credentials", headers={"WWW-Authenticate": "Bearer"}
        )

    async def inject_faults(request: Request) -> random.Random:
        """Per-request RNG (deterministic in request order) and the request-level faults."""
        sim.requests += 1
        rng = random.Random(f"{sim.data.seed}:req:{sim.requests}")
        f = sim.faults
        delay = f.latency_ms + rng.random() * f.latency_jitter_ms
        if delay:
            await asyncio.sleep(delay / 1000)
        roll = rng.random()
        if roll < f.hang_rate:
            await asyncio.sleep(f.hang_s)
            raise HTTPException(504, "upstream timeout")
        roll -= f.hang_rate
        if roll < f.error_rate:
            raise HTTPException(rng.choice([500, 502, 503]), "simulated server error")
        roll -= f.error_rate
        if roll < f.rate_limit_rate:
            raise HTTPException(
                429, "too many requests", headers={"Retry-After": f"{f.retry_after_s:g}"}
            )
        roll -= f.rate_limit_rate
        request.state.garble = roll < f.garble_rate
        return rng

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def landing() -> str:
        d = sim.data
        rows = "".join(
            f"<tr><td>{html.escape(a.code)}</td><td>{html.escape(a.name)}</td>"
            f"<td>{a.level}</td></tr>"
            for a in d.agencies[:12]
        )
        faults = html.escape(sim.faults.model_dump_json())
        return f"""<!doctype html><html lang="vi"><head><meta charset="utf-8">
<title>Một cửa điện tử — simulator</title></head><body>
<h1>Hệ thống thông tin giải quyết TTHC — simulator</h1>
<p>A deterministic stand-in for a provincial one-stop system (VNPT iGate-like), serving the
national field names (MaHoSo, MaTTHC, TrangThaiHoSo, NgayHenTra, QuaTrinhXuLy…).
Seed <b>{d.seed}</b>; clock <b>{fmt(sim.clock)}</b> (Vietnam time, yyyyMMddHHmmss);
{len(d.agencies)} agencies, {len(d.procedures)} procedures, {len(d.dossiers)} dossiers,
{len(d.petitions)} petitions.</p>
<h2>API</h2><ul>
<li><code>GET /api/v1/{{dossiers|procedures|petitions}}</code>
(<code>updated_since, cursor, limit, agency</code>)
— ordered by (NgayCapNhat, code); <code>updated_since</code> inclusive; follow
<code>next_cursor</code> until it is null. Limit ≤ {MAX_LIMIT}.</li>
<li><code>GET /api/v1/agencies</code> — agency codes (MaDonVi).</li>
<li>Auth: header <code>X-API-Key</code>, or OAuth2 client credentials at
<code>POST /oauth/token</code> then <code>Authorization: Bearer</code>.</li>
<li>Admin: <code>GET /admin/state</code>, <code>POST /admin/advance?seconds=</code>,
<code>POST /admin/faults</code> (JSON body), <code>GET /admin/truth/{{feed}}</code>.</li>
</ul><h2>Faults</h2><pre>{faults}</pre>
<h2>Agencies (first 12)</h2><table>{rows}</table></body></html>"""

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/oauth/token")
    def token(
        grant_type: Annotated[str, Form()],
        client_id: Annotated[str, Form()],
        client_secret: Annotated[str, Form()],
    ) -> JSONResponse:
        if grant_type != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        if not (
            secrets.compare_digest(client_id, sim.client_id)
            and secrets.compare_digest(client_secret, sim.client_secret)
        ):
            return JSONResponse({"error": "invalid_client"}, 401)
        tok = secrets.token_urlsafe(24)
        sim.tokens[tok] = time.time() + TOKEN_TTL_S
        return JSONResponse(
            {"access_token": tok, "token_type": "Bearer", "expires_in": TOKEN_TTL_S}
        )

    @app.get("/api/v1/agencies", dependencies=[Depends(authenticate)])
    def agencies() -> dict[str, Any]:
        return {
            "items": [
                {"MaDonVi": a.code, "TenDonVi": a.name, "Cap": a.level} for a in sim.data.agencies
            ]
        }

    @app.post(
        "/api/v1/reporting/evaluation/{report}",
        dependencies=[Depends(authenticate), Depends(inject_faults)],
    )
    def portal_evaluation(report: str, body: dict[str, Any]) -> JSONResponse:
        """The national portal's 766 reporting API (see `simulator.portal`)."""
        if report not in portal.REPORT_GROUPS:
            raise HTTPException(404, f"unknown report {report}")
        try:
            year = int(body["year"])
            if body.get("timeType", "year") not in ("year", "quarter", "month"):
                raise ValueError("timeType")
            portal.window(body)
        except (KeyError, TypeError, ValueError) as e:
            raise HTTPException(400, f"bad request body: {e}") from e
        if not 2000 <= year <= 2100:
            raise HTTPException(400, "bad year")
        return JSONResponse(portal.evaluation(sim.data, sim.clock, report, body))

    @app.get("/api/v1/{feed}", dependencies=[Depends(authenticate)])
    def feed_page(
        feed: Feed,
        request: Request,
        rng: Annotated[random.Random, Depends(inject_faults)],
        updated_since: Annotated[str | None, Query(description="yyyyMMddHHmmss or ISO")] = None,
        cursor: Annotated[str | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        agency: Annotated[str | None, Query(description="MaDonVi filter")] = None,
    ) -> Response:
        try:
            body = sim.page(
                feed,
                updated_since=updated_since or None,
                cursor=cursor or None,
                limit=limit,
                agency=agency or None,
                rng=rng,
            )
        except BadRequest as exc:
            raise HTTPException(400, str(exc)) from exc
        if request.state.garble:
            # cut at a character boundary: a truncated body, still UTF-8 (the JSON is broken)
            cut = max(1, len(body) // 2)
            while cut > 1 and body[cut] & 0xC0 == 0x80:
                cut -= 1
            body = body[:cut]
        return Response(body, media_type="application/json")

    @app.get("/pa/dossier/search", dependencies=[Depends(authenticate)], tags=["vnpt-igate"])
    def igate_search(
        request: Request,
        rng: Annotated[random.Random, Depends(inject_faults)],
        page: Annotated[int, Query(ge=0)] = 0,
        size: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
        sort: str = "updatedDate,asc",
        updated_from: Annotated[str | None, Query(alias="updated-from")] = None,
        accepted_from: Annotated[str | None, Query(alias="accepted-from")] = None,
        accepted_to: Annotated[str | None, Query(alias="accepted-to")] = None,
        dossier_status: Annotated[str | None, Query(alias="dossier-status")] = None,
    ) -> Response:
        """VNPT iGate's dossier search (our reading): a Spring page of dossiers."""
        if sort.replace(" ", "") != "updatedDate,asc":
            raise HTTPException(400, "the simulator sorts by updatedDate,asc only")
        keep = _igate_filter(accepted_from, accepted_to, dossier_status)
        try:
            body = sim.dialect_page(
                "vnpt-igate", since=updated_from or None, offset=page * size, size=size,
                rng=rng, keep=keep,
            )  # fmt: skip
        except BadRequest as exc:
            raise HTTPException(400, str(exc)) from exc
        return _maybe_garbled(request, body)

    def opencps_auth(
        authorization: Annotated[str | None, Header()] = None,
        group_id: Annotated[str | None, Header(alias="groupId")] = None,
    ) -> None:
        want = "Basic " + base64.b64encode(f"{sim.client_id}:{sim.client_secret}".encode()).decode()
        if not authorization or not secrets.compare_digest(authorization, want):
            raise HTTPException(401, "Basic authentication required",
                                headers={"WWW-Authenticate": "Basic"})  # fmt: skip
        if group_id != sim.group_id:
            raise HTTPException(403, "unknown groupId")

    @app.get("/o/rest/v2/dossiers", dependencies=[Depends(opencps_auth)], tags=["opencps"])
    def opencps_dossiers(
        request: Request,
        rng: Annotated[random.Random, Depends(inject_faults)],
        start: Annotated[int, Query(ge=0)] = 0,
        end: Annotated[int | None, Query(ge=1)] = None,
        sort: str = "modified",
        order: str = "desc",
        status: str | None = None,
        agency: str | None = None,
        year: int | None = None,
        month: Annotated[int | None, Query(ge=1, le=12)] = None,
    ) -> Response:
        """OpenCPS's dossier list (our reading): offset paging, newest modified first."""
        if sort != "modified" or order != "desc":
            raise HTTPException(400, "the simulator lists by modified date, newest first, only")
        size = (end or start + 15) - start
        if not 1 <= size <= MAX_LIMIT:
            raise HTTPException(400, f"end - start must be within 1..{MAX_LIMIT}")
        keep = _opencps_filter(status, agency, year, month)
        body = sim.dialect_page("opencps", offset=start, size=size, rng=rng, keep=keep)
        return _maybe_garbled(request, body)

    def admin(x_api_key: Annotated[str | None, Header()] = None) -> None:
        if x_api_key is None or not secrets.compare_digest(x_api_key, sim.api_key):
            raise HTTPException(401, "admin needs X-API-Key")

    @app.get("/admin/state", dependencies=[Depends(admin)])
    def state() -> dict[str, Any]:
        return {
            "seed": sim.data.seed,
            "clock": fmt(sim.clock),
            "clock_epoch": sim.clock,
            "requests": sim.requests,
            "faults": sim.faults.model_dump(),
            "counts": {f: len(sim.index(f).keys) for f in FEEDS},
        }

    @app.post("/admin/advance", dependencies=[Depends(admin)])
    def advance(seconds: int = Query(default=3600, ge=0)) -> dict[str, Any]:
        return {"clock": fmt(sim.advance(seconds))}

    @app.post("/admin/faults", dependencies=[Depends(admin)])
    def set_faults(faults: Faults) -> Faults:
        if (faults.invalid_rate, faults.unknown_status_rate) != (
            sim.faults.invalid_rate, sim.faults.unknown_status_rate
        ):  # fmt: skip
            sim.clear_pages()  # served records change
        sim.faults = faults
        return faults

    @app.get("/admin/truth/{feed}", dependencies=[Depends(admin)])
    def truth(feed: Feed) -> dict[str, Any]:
        return {
            "clock": fmt(sim.clock),
            "items": list(sim.truth(feed).values()),
            "malformed": sim.malformed_codes() if feed == "dossiers" else {},
        }

    return app


def _maybe_garbled(request: Request, body: bytes) -> Response:
    if request.state.garble:
        body = body[: max(1, len(body) // 2)]
    return Response(body, media_type="application/json")


def _igate_filter(
    accepted_from: str | None, accepted_to: str | None, statuses: str | None
) -> Callable[[dict[str, Any]], bool] | None:
    if not (accepted_from or accepted_to or statuses):
        return None
    lo = fmt(parse_ts(accepted_from)) if accepted_from else None
    hi = fmt(parse_ts(accepted_to)) if accepted_to else None
    wanted = {int(x) for x in statuses.split(",") if x.strip()} if statuses else None

    def keep(r: dict[str, Any]) -> bool:
        accepted = r.get("NgayTiepNhan") or ""
        if lo and not (accepted and accepted >= lo):
            return False
        if hi and not (accepted and accepted <= hi):
            return False
        status = r.get("TrangThaiHoSo")
        st = dialects.IGATE_STATUS.get(status) if isinstance(status, int) else None
        return wanted is None or (st is not None and st[0] in wanted)

    return keep


def _opencps_filter(
    status: str | None, agency: str | None, year: int | None, month: int | None
) -> Callable[[dict[str, Any]], bool] | None:
    if not (status or agency or year or month):
        return None
    wanted = set(status.split(",")) if status else None

    def keep(r: dict[str, Any]) -> bool:
        status = r.get("TrangThaiHoSo")
        name = dialects.OPENCPS_STATUS.get(status) if isinstance(status, int) else None
        if wanted is not None and name not in wanted:
            return False
        if agency and r.get("MaDonVi") != agency:
            return False
        received = r.get("NgayTiepNhan") or ""
        if year and received[:4] != f"{year:04d}":
            return False
        return not (month and received[4:6] != f"{month:02d}")

    return keep
