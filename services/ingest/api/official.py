"""Official 766 scores from the national portal: read a source's reporting API and announce
what it published as an `OfficialScoresPublished` event (scoring stores it beside its own)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, model_validator

from services.ingest.connectors.base import ConnectorConfig, SourceError
from services.ingest.connectors.portal766 import Portal766Connector, PortalUnit
from services.ingest.runtime import keyring
from services.ingest.store.credentials import CredentialError
from services.ingest.store.models import Source
from shared.app import RuntimeDep, SessionDep
from shared.auth.principal import Principal, Role
from shared.auth.security import require_roles
from shared.events.budget import in_parts
from shared.events.payloads import (
    OfficialGroup,
    OfficialMetric,
    OfficialScoresPublished,
    OfficialUnitScores,
)
from shared.problems import NotFound, ServiceUnavailable, problem_responses

router = APIRouter(prefix="/api/v1/sources", tags=["official"])
Admin = Annotated[Principal, Depends(require_roles(Role.admin))]


class OfficialPull(BaseModel):
    root_department_id: str = Field(
        description="The province's department id on the portal (rootDepartmentId).",
        examples=["019d2be3-6a86-70a8-a0af-76e986804225"],
    )
    year: int = Field(ge=2022, le=2100, examples=[2026])
    time_type: Literal["year", "quarter", "month"] = "year"
    quarter: int | None = Field(default=None, ge=1, le=4)
    month: int | None = Field(default=None, ge=1, le=12)

    @model_validator(mode="after")
    def _period_parts(self) -> OfficialPull:
        if (self.time_type == "quarter") != (self.quarter is not None):
            raise ValueError("a quarter is given exactly when time_type is quarter")
        if (self.time_type == "month") != (self.month is not None):
            raise ValueError("a month is given exactly when time_type is month")
        return self

    @property
    def period(self) -> str:
        if self.time_type == "quarter":
            return f"{self.year}Q{self.quarter}"
        if self.time_type == "month":
            return f"{self.year}{self.month:02d}"
        return str(self.year)


class OfficialPulled(BaseModel):
    period: str
    units: int = Field(description="Units announced (mapped to ours).")
    unmapped: list[str] = Field(description="Portal unit codes without one of our units.")


def to_unit_scores(u: PortalUnit, unit_id: str) -> OfficialUnitScores:
    return OfficialUnitScores(
        unit_id=unit_id, external_code=u.code, name=u.name, total=u.total,
        total_max=u.total_max,
        groups=[OfficialGroup(code=c, score=s, max=m) for c, (s, m) in sorted(u.groups.items())],
        metrics=[OfficialMetric(code=m.code, numerator=m.numerator, denominator=m.denominator,
                                ratio=m.ratio, score=m.score, max=m.max, value=m.value)
                 for _, m in sorted(u.metrics.items())],
    )  # fmt: skip


@router.post(
    "/{source_id}/official-scores",
    response_model=OfficialPulled,
    summary="Read the 766 index the national portal publishes and announce it",
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def pull_official_scores(
    source_id: str, body: OfficialPull, session: SessionDep, runtime: RuntimeDep, _: Admin
) -> OfficialPulled:
    """The source's base URL serves the portal's reporting API; its agency mapping (portal
    unit code → our unit) says whose scores they are. Units it does not map are listed, not
    announced."""
    row = await session.get(Source, source_id)
    if row is None:
        raise NotFound(f"source {source_id} not found")
    try:  # credentials are sealed at rest (AES-GCM): opened here, never returned or logged
        auth = keyring(runtime).open(row.auth, source_id)
    except CredentialError as e:
        raise ServiceUnavailable("the source's credentials cannot be opened") from e
    config = ConnectorConfig(kind=Portal766Connector.kind, base_url=row.base_url, auth=auth,
                             timeout_s=row.timeout_s)  # fmt: skip
    connector = Portal766Connector(config)
    try:
        found = await connector.fetch_scores(
            root_department_id=body.root_department_id, year=body.year,
            time_type=body.time_type, quarter=body.quarter, month=body.month,
        )  # fmt: skip
    except SourceError as e:
        raise ServiceUnavailable(f"the portal did not answer: {e.kind}") from e
    finally:
        await connector.aclose()
    units = [to_unit_scores(u, row.agencies[u.code]) for u in found if u.code in row.agencies]
    unmapped = sorted(u.code for u in found if u.code not in row.agencies)
    now = datetime.now(UTC)
    await runtime.outbox.add_many(session, [
        (OfficialScoresPublished(source_id=source_id, source=f"Cổng DVCQG {now:%Y-%m-%d}",
                                 period=body.period, fetched_at=now, units=part),
         source_id, f"{source_id}/{body.period}")
        # ~12 KB a unit: a province's ~150 units in one event were 1.8 MB (`shared.events.budget`)
        for part in in_parts(units, lambda u: len(u.model_dump_json().encode()))
    ])  # fmt: skip
    return OfficialPulled(period=body.period, units=len(units), unmapped=unmapped)
