"""HTTP API of the tasks service: FastAPI routers and their request/response schemas."""

from fastapi import APIRouter

from services.tasks.api import conclusions, evidence, items, notifications, reports

routers: list[APIRouter] = [
    conclusions.router,
    items.router,
    evidence.router,
    notifications.router,
    reports.router,
]
