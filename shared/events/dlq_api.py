"""Admin-only endpoints, on every service, over the dead-letter topics (shared.events.dlq)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, model_validator

from shared.auth.principal import Principal, Role
from shared.auth.security import require_roles
from shared.events import dlq
from shared.events.payloads import TOPICS
from shared.problems import NotFound, ServiceUnavailable, problem_responses
from shared.settings import Settings

MAX_OFFSET = 2**62
Admin = Annotated[Principal, Depends(require_roles(Role.admin))]


class DeadLetterPage(BaseModel):
    topic: str = Field(examples=["ingest.dossiers"])
    entries: list[dlq.DeadLetter]


class ReplayRequest(BaseModel):
    topic: str = Field(examples=["ingest.dossiers"], description="The original topic")
    partition: int = Field(default=0, ge=0, le=10_000, description="Of the dead-letter topic")
    offsets: list[int] = Field(
        default_factory=list,
        max_length=1000,
        examples=[[3, 7]],
        description="Offsets in the dead-letter topic (see the listing)",
    )
    event_ids: list[str] = Field(
        default_factory=list,
        max_length=1000,
        examples=[["6f1c2a9e-0b7d-4c1e-9a57-3c1d8e2b4f10"]],
        description="CloudEvents ids",
    )

    @model_validator(mode="after")
    def _something(self) -> ReplayRequest:
        if not self.offsets and not self.event_ids:
            raise ValueError("give offsets or event_ids to replay")
        if any(o < 0 or o > MAX_OFFSET for o in self.offsets):
            raise ValueError("offsets are between 0 and 2^62")
        if any(len(i) > 200 for i in self.event_ids):
            raise ValueError("an event id is at most 200 characters")
        return self


def _known(topic: str) -> str:
    if topic not in TOPICS:
        raise NotFound(f"no topic '{topic[:100]}' (known: {', '.join(TOPICS)})")
    return topic


def dlq_router(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/api/v1/admin/dlq", tags=["dead-letters"])

    @router.get(
        "",
        summary="Dead-lettered events of a topic, with the reason (admin)",
        response_model=DeadLetterPage,
        responses=problem_responses(401, 403, 404, 503),
    )
    async def list_dead_letters(
        principal: Admin,
        topic: Annotated[str, Query(max_length=200, examples=["ingest.dossiers"])],
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        after_offset: Annotated[int, Query(ge=-1, le=MAX_OFFSET)] = -1,
    ) -> DeadLetterPage:
        try:
            entries = await dlq.list_dead_letters(
                settings, _known(topic), limit=limit, after_offset=after_offset
            )
        except NotFound:
            raise
        except Exception as exc:
            raise ServiceUnavailable("the broker is not reachable; try again") from exc
        return DeadLetterPage(topic=topic, entries=entries)

    @router.post(
        "/replay",
        summary="Put chosen dead letters back on their topic, through the idempotent path",
        response_model=dlq.Replayed,
        responses=problem_responses(401, 403, 404, 503),
    )
    async def replay_dead_letters(principal: Admin, body: ReplayRequest) -> dlq.Replayed:
        try:
            return await dlq.replay(
                settings,
                _known(body.topic),
                offsets=body.offsets,
                event_ids=body.event_ids,
                partition=body.partition,
            )
        except NotFound:
            raise
        except Exception as exc:
            raise ServiceUnavailable("the broker is not reachable; try again") from exc

    return router
