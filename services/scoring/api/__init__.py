"""HTTP API of the scoring service: FastAPI routers and their request/response schemas."""

from fastapi import APIRouter

from services.scoring.api import boundaries, exports, par, scores, units

routers: list[APIRouter] = [
    units.router,
    boundaries.router,
    scores.profiles_router,
    scores.router,
    par.router,
    scores.alerts_router,
    scores.official_router,
    exports.router,
]
