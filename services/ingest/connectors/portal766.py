"""The national portal's (Cổng DVCQG) reporting API: the 766 index as it publishes it.

`POST {base}/api/v1/reporting/evaluation/{report}` with `{rootDepartmentId, timeType, year,
quarter?, month?}` answers `{"data": {"evaluation": [node]}}`; a node is one unit
(`departmentId`, `code`, `name`, `score`, `groupScores[]{code, score, maxScore}`,
`metrics[]{code, numerator, denominator, ratio, score, maxScore}`) with its `children[]`. Each
report carries some of the six groups' metrics (transparency → CKMB, dvc-progress-tree → TDGQ,
provide-online-tree → CLGQ, formality-online-payment-tree → TTTT, handling-satisfaction → MDHL,
dossier-digitized → MDSH) and service-results the totals. `fetch_scores` reads all seven and
merges them per unit, values exactly as published (the ratio in percent).

Self-contained on purpose: the dossier connectors' package is being reworked; this one shares
only `ConnectorConfig`, the auth builder and `SourceError`. As a registered connector kind it
has no dossier feeds (`fetch_page` returns an empty last page), so a source of this kind only
serves official scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import httpx

from services.ingest.connectors.auth import build_auth
from services.ingest.connectors.base import ConnectorConfig, Feed, Page, SourceError

REPORTS: tuple[str, ...] = (
    "transparency",
    "dvc-progress-tree",
    "provide-online-tree",
    "formality-online-payment-tree",
    "handling-satisfaction",
    "dossier-digitized",
    "service-results",
)
TimeType = Literal["year", "quarter", "month"]


@dataclass
class PortalMetric:
    code: str
    numerator: float | None = None
    denominator: float | None = None
    ratio: float | None = None
    score: float | None = None
    max: float | None = None
    value: float | None = None


@dataclass
class PortalUnit:
    """One unit's published index, merged over the reports."""

    code: str
    name: str = ""
    department_id: str = ""
    parent_code: str | None = None
    total: float | None = None
    total_max: float | None = None
    groups: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    metrics: dict[str, PortalMetric] = field(default_factory=dict)


def _num(x: Any) -> float | None:
    """A published number, or None for null / absent / not a finite number."""
    if isinstance(x, bool) or not isinstance(x, int | float | str):
        return None
    try:
        v = float(x)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def merge_nodes(
    units: dict[str, PortalUnit], nodes: Any, report: str, parent: str | None = None
) -> None:
    """Fold one report's node tree into `units` (by unit code); a malformed part is a
    protocol error, never silently half-read."""
    if not isinstance(nodes, list):
        raise SourceError("protocol", f"{report}: evaluation is not a list")
    for node in nodes:
        if not isinstance(node, dict) or not isinstance(node.get("code"), str):
            raise SourceError("protocol", f"{report}: a unit without a code")
        u = units.setdefault(node["code"], PortalUnit(code=node["code"]))
        u.name = str(node.get("name") or u.name)
        u.department_id = str(node.get("departmentId") or u.department_id)
        u.parent_code = u.parent_code or parent
        if report == "service-results" or u.total is None:
            total = _num(node.get("totalScore", node.get("score")))
            if total is not None:
                u.total = total
        if _num(node.get("totalMaxScore")) is not None:
            u.total_max = _num(node.get("totalMaxScore"))
        for g in node.get("groupScores") or []:
            if isinstance(g, dict) and isinstance(g.get("code"), str):
                u.groups[g["code"]] = (_num(g.get("score")), _num(g.get("maxScore")))
        for m in node.get("metrics") or []:
            if not isinstance(m, dict) or not isinstance(m.get("code"), str):
                continue
            u.metrics[m["code"]] = PortalMetric(
                code=m["code"],
                numerator=_num(m.get("numerator")),
                denominator=_num(m.get("denominator")),
                ratio=_num(m.get("ratio")),
                score=_num(m.get("score")),
                max=_num(m.get("maxScore")),
                value=_num(m.get("value")),
            )
        merge_nodes(units, node.get("children") or [], report, parent=node["code"])


class Portal766Connector:
    kind = "portal-766"

    def __init__(
        self, config: ConnectorConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self._path = str(config.options.get("path_template", "/api/v1/reporting/evaluation/{r}"))
        self._client = httpx.AsyncClient(
            base_url=config.base_url,
            auth=build_auth(config.auth, config.base_url),
            timeout=httpx.Timeout(config.timeout_s),
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "cchc-monitor-ingest/1"},
        )

    async def fetch_page(
        self, feed: Feed, *, updated_since: datetime | None, cursor: str | None, limit: int
    ) -> Page:
        return Page(records=[], next_cursor=None)  # the portal serves no dossier feed

    async def _report(self, report: str, body: dict[str, Any]) -> Any:
        try:
            r = await self._client.post(self._path.format(r=report), json=body)
        except httpx.TimeoutException as e:
            raise SourceError("timeout", f"{report}: {e}") from e
        except httpx.HTTPError as e:
            raise SourceError("connect", f"{report}: {e}") from e
        if r.status_code in (401, 403):
            raise SourceError("auth", f"{report}: HTTP {r.status_code}", status=r.status_code)
        if r.status_code == 429:
            raise SourceError("rate_limited", report, status=429)
        if r.status_code >= 500:
            raise SourceError("http_5xx", f"{report}: HTTP {r.status_code}", status=r.status_code)
        if r.status_code >= 400:
            raise SourceError("client", f"{report}: HTTP {r.status_code}", status=r.status_code)
        try:
            doc = r.json()
        except ValueError as e:
            raise SourceError("protocol", f"{report}: not JSON") from e
        data = doc.get("data") if isinstance(doc, dict) else None
        if not isinstance(data, dict):
            raise SourceError("protocol", f"{report}: no data object")
        return data.get("evaluation", [])

    async def fetch_scores(
        self,
        *,
        root_department_id: str,
        year: int,
        time_type: TimeType = "year",
        quarter: int | None = None,
        month: int | None = None,
    ) -> list[PortalUnit]:
        """Every unit of the province's tree with its published groups and metrics."""
        body: dict[str, Any] = {
            "rootDepartmentId": root_department_id, "timeType": time_type, "year": year,
        }  # fmt: skip
        if quarter is not None:
            body["quarter"] = quarter
        if month is not None:
            body["month"] = month
        units: dict[str, PortalUnit] = {}
        for report in REPORTS:
            merge_nodes(units, await self._report(report, body), report)
        return list(units.values())

    async def aclose(self) -> None:
        await self._client.aclose()
