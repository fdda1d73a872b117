"""Fault knobs of the simulator, set by CLI flags or `POST /admin/faults`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Faults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(default=0, ge=0, description="Added to every API response.")
    latency_jitter_ms: float = Field(default=0, ge=0, description="Uniform extra latency.")
    error_rate: float = Field(default=0, ge=0, le=1, description="Share of 500/502/503 replies.")
    rate_limit_rate: float = Field(default=0, ge=0, le=1, description="Share of 429 replies.")
    retry_after_s: float = Field(default=1, ge=0, description="Retry-After sent with a 429.")
    hang_rate: float = Field(default=0, ge=0, le=1, description="Share of requests that hang.")
    hang_s: float = Field(default=30, ge=0, description="How long a hanging request hangs.")
    garble_rate: float = Field(default=0, ge=0, le=1, description="Share of truncated bodies.")
    duplicate_rate: float = Field(
        default=0,
        ge=0,
        le=1,
        description="Share of follow-up pages that repeat up to 5 records of the previous page.",
    )
    invalid_rate: float = Field(
        default=0,
        ge=0,
        le=1,
        description="Share of dossiers served with an agency code no mapping knows yet "
        "(quarantined as unknown_agency until the mapping is added and the quarantine "
        "re-processed).",
    )
    unknown_status_rate: float = Field(
        default=0,
        ge=0,
        le=1,
        description="Share of dossiers in processing that the vendor dialects send with a "
        "status of the deployment's own (iGate id 11 'Chờ phê duyệt', OpenCPS 'approving'), "
        "which a connector does not know until the source's status_map maps it (to 4) and "
        "the quarantine is re-processed.",
    )
    advance_per_page_s: int = Field(
        default=0,
        ge=0,
        description="Clock seconds added before every follow-up page, so records change "
        "between pages (and move after the cursor).",
    )

    clock_skew_s: int = Field(
        default=0,
        ge=-10 * 365 * 86_400,
        le=10 * 365 * 86_400,
        description="Seconds every answer's HTTP Date header is ahead of the simulated "
        "system's clock (negative: behind): a source whose clock is off.",
    )
    date_header: bool = Field(
        default=True, description="Send the HTTP Date header at all (False: a source that "
        "reports no time in its vendor dialects).",
    )  # fmt: skip

    def any_request_fault(self) -> bool:
        return bool(self.error_rate or self.rate_limit_rate or self.hang_rate or self.garble_rate)
