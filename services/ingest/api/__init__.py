"""HTTP API of the ingest service: FastAPI routers and their request/response schemas."""

from fastapi import APIRouter

from services.ingest.api.official import router as official
from services.ingest.api.routes import dossiers, push, quarantine, runs, sources

routers: list[APIRouter] = [sources, runs, quarantine, dossiers, push, official]
