"""HTTP API of the ingest service: FastAPI routers and their request/response schemas."""

from fastapi import APIRouter

routers: list[APIRouter] = []
