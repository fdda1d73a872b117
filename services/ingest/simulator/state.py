"""The simulator's mutable state: clock, faults, per-clock ordering index and page cache."""

from __future__ import annotations

import base64
import bisect
import random
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from services.ingest.simulator import dialects
from services.ingest.simulator.data import FEEDS, Dataset, Feed, fmt, parse_ts
from services.ingest.simulator.faults import Faults

MAX_LIMIT = 5_000
DEFAULT_LIMIT = 500


class BadRequest(ValueError):
    pass


# The agency code of the dossiers the `invalid_rate` fault makes invalid: one no mapping has
# until an administrator adds it (then re-processing the quarantine stores them).
UNMAPPED_AGENCY = "000.00.99.H33"


def invalid_pick(code: Any, rate: float) -> bool:
    """Whether the dossier `code` is one of the `rate` share the fault makes invalid (the same
    ones at every request)."""
    return isinstance(code, str) and zlib.crc32(code.encode()) % 10_000 < rate * 10_000


@dataclass(slots=True)
class _Index:
    """Visible items of a feed at one clock, ordered by (updated_at, code)."""

    keys: list[tuple[int, str]]
    items: list[Any]


def encode_cursor(updated: int, code: str) -> str:
    return base64.urlsafe_b64encode(f"{updated}|{code}".encode()).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        updated, code = raw.split("|", 1)
        return int(updated), code
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("invalid cursor") from exc


class Simulator:
    def __init__(
        self,
        dataset: Dataset,
        api_key: str = "demo-key",
        client_id: str = "cchc-monitor",
        client_secret: str = "demo-secret",
        faults: Faults | None = None,
        group_id: str = "35417",
    ) -> None:
        self.data = dataset
        self.group_id = group_id  # OpenCPS's site id (the `groupId` header)
        self.clock = dataset.start_clock
        self.api_key = api_key
        self.client_id = client_id
        self.client_secret = client_secret
        self.faults = faults or Faults()
        self.tokens: dict[str, float] = {}  # bearer token → expiry (epoch)
        self.requests = 0
        self._lock = threading.Lock()
        self._index: dict[tuple[Feed, int], _Index] = {}
        self._pages: dict[tuple[Any, ...], bytes] = {}

    # ------------------------------------------------------------------ clock

    def advance(self, seconds: int) -> int:
        with self._lock:
            self.clock += seconds
            self._index = {k: v for k, v in self._index.items() if k[1] == self.clock}
            self._pages.clear()
        return self.clock

    def clear_pages(self) -> None:
        with self._lock:
            self._pages.clear()

    def index(self, feed: Feed, clock: int | None = None) -> _Index:
        clock = self.clock if clock is None else clock
        cached = self._index.get((feed, clock))
        if cached is not None:
            return cached
        data = self.data
        rows = []
        for item in data.feed_items(feed):
            u = data.updated_at(feed, item, clock)
            if u:
                rows.append((u, data.key(feed, item), item))
        rows.sort(key=lambda r: (r[0], r[1]))
        idx = _Index(keys=[(u, c) for u, c, _ in rows], items=[r[2] for r in rows])
        self._index[(feed, clock)] = idx
        return idx

    # ------------------------------------------------------------------ pages

    def render(self, feed: Feed, item: Any, clock: int) -> dict[str, Any]:
        """A record as served: the dataset's, made invalid by the `invalid_rate` fault for a
        fixed share of dossiers (an agency code no source mapping knows yet)."""
        rec = self.data.render(feed, item, clock)
        rate = self.faults.invalid_rate
        if rate and feed == "dossiers" and invalid_pick(rec.get("MaHoSo"), rate):
            rec["MaDonVi"] = UNMAPPED_AGENCY
        return rec

    def page(
        self,
        feed: Feed,
        *,
        updated_since: str | None,
        cursor: str | None,
        limit: int,
        agency: str | None,
        rng: random.Random | None = None,
    ) -> bytes:
        """One page as JSON bytes. `rng` drives the duplicate fault (None = no faults)."""
        if feed not in FEEDS:
            raise BadRequest(f"unknown feed {feed!r}")
        if not 1 <= limit <= MAX_LIMIT:
            raise BadRequest(f"limit must be within 1..{MAX_LIMIT}")
        faults = self.faults if rng is not None else Faults()
        if cursor and faults.advance_per_page_s:
            self.advance(faults.advance_per_page_s)
        clock = self.clock
        cache_key = (feed, clock, updated_since, cursor, limit, agency)
        dup = rng is not None and cursor is not None and rng.random() < faults.duplicate_rate
        if not dup:
            hit = self._pages.get(cache_key)
            if hit is not None:
                return hit
        body = self._render_page(
            feed,
            clock,
            updated_since,
            cursor,
            limit,
            agency,
            dup_count=(rng.randint(1, 5) if dup and rng else 0),
        )
        if not dup:
            self._pages[cache_key] = body
        return body

    def _render_page(
        self,
        feed: Feed,
        clock: int,
        updated_since: str | None,
        cursor: str | None,
        limit: int,
        agency: str | None,
        dup_count: int,
    ) -> bytes:
        idx = self.index(feed, clock)
        if cursor:
            pos = bisect.bisect_right(idx.keys, decode_cursor(cursor))
        elif updated_since:
            try:
                since = parse_ts(updated_since)
            except ValueError as exc:
                raise BadRequest("invalid updated_since") from exc
            pos = bisect.bisect_left(idx.keys, (since, ""))
        else:
            pos = 0
        data = self.data
        chosen: list[int] = []
        scan = pos
        n = len(idx.keys)
        while scan < n and len(chosen) < limit:
            if agency is None or data.agency_code(feed, idx.items[scan]) == agency:
                chosen.append(scan)
            scan += 1
        # A page is the last one when nothing after it matches.
        more = False
        if len(chosen) == limit:
            while scan < n:
                if agency is None or data.agency_code(feed, idx.items[scan]) == agency:
                    more = True
                    break
                scan += 1
        records = []
        if dup_count and pos > 0:  # repeat records of the previous page
            for j in range(max(0, pos - dup_count), pos):
                records.append(self.render(feed, idx.items[j], clock))
        records.extend(self.render(feed, idx.items[j], clock) for j in chosen)
        next_cursor = encode_cursor(*idx.keys[chosen[-1]]) if more and chosen else None
        doc = {
            "items": records,
            "next_cursor": next_cursor,
            "server_time": fmt(clock),
            "count": len(records),
        }
        # orjson: the same bytes as json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
        # (a test checks), several times faster for the pre-generated million-dossier pull.
        return orjson.dumps(doc)

    def pregenerate(self, feed: Feed, limit: int) -> int:
        """Render and cache the full-pull page sequence of `feed` at the current clock, so a
        benchmark client is served pre-serialised bytes."""
        idx = self.index(feed)
        n = len(idx.keys)
        cursor: str | None = None
        pages = 0
        for start in range(0, max(n, 1), limit):
            self.page(feed, updated_since=None, cursor=cursor, limit=limit, agency=None)
            pages += 1
            end = min(start + limit, n)
            if end >= n:
                break
            cursor = encode_cursor(*idx.keys[end - 1])
        return pages

    # ------------------------------------------------------------------ vendor dialects

    def dialect_page(
        self, dialect: str, *, since: str | None = None, offset: int, size: int,
        rng: random.Random | None = None, keep: Callable[[dict[str, Any]], bool] | None = None,
    ) -> bytes:  # fmt: skip
        """A dossier page in a vendor's shape. iGate: records from `since` (an updatedDate,
        inclusive) in (updated, code) order, page `offset // size`, as a Spring page. OpenCPS:
        every record newest first, from `offset`, as `{"total", "data"}`. `keep` filters on
        the national record (iGate's accepted-from/to and dossier-status, OpenCPS's status,
        agency, year, month). Faults as for the national API."""
        if not 1 <= size <= MAX_LIMIT:
            raise BadRequest(f"size must be within 1..{MAX_LIMIT}")
        faults = self.faults if rng is not None else Faults()
        if offset and faults.advance_per_page_s:
            self.advance(faults.advance_per_page_s)
        clock = self.clock
        dup = rng is not None and offset > 0 and rng.random() < faults.duplicate_rate
        key = (dialect, clock, since, offset, size, keep is None)
        if not dup and keep is None:
            hit = self._pages.get(key)
            if hit is not None:
                return hit
        idx = self.index("dossiers", clock)
        order: Any = range(len(idx.keys))
        if dialect == "opencps":
            order = range(len(idx.keys) - 1, -1, -1)
        elif since:
            try:
                at = parse_ts(since)
            except ValueError as exc:
                raise BadRequest("invalid updated-from") from exc
            order = range(bisect.bisect_left(idx.keys, (at, "")), len(idx.keys))
        rendered: dict[int, dict[str, Any]] = {}

        def render(j: int) -> dict[str, Any]:
            rec = rendered.get(j)
            if rec is None:
                rec = rendered[j] = self.render("dossiers", idx.items[j], clock)
            return rec

        if keep is not None:
            order = [j for j in order if keep(render(j))]
        total = len(order)
        chosen = list(order[offset : offset + size])
        if dup:
            chosen = list(order[max(0, offset - rng.randint(1, 5)) : offset]) + chosen  # type: ignore[union-attr]
        odd = faults.unknown_status_rate

        def own_status(rec: dict[str, Any]) -> bool:
            """The dossier is sent with the deployment's own status (the fault)."""
            return (
                bool(odd)
                and rec.get("TrangThaiHoSo") == 4
                and invalid_pick(f"status:{rec.get('MaHoSo')}", odd)
            )

        if dialect == "opencps":
            data = []
            for j in chosen:
                item = dialects.to_opencps(render(j), j)
                if own_status(render(j)):
                    item["dossierStatus"] = dialects.OPENCPS_UNKNOWN_STATUS
                data.append(item)
            doc: dict[str, Any] = {"total": total, "data": data}
        else:
            page = offset // size
            content = []
            for j in chosen:
                item = dialects.to_igate(render(j))
                if own_status(render(j)):
                    item["dossierStatus"] = dict(dialects.IGATE_UNKNOWN_STATUS)
                content.append(item)
            doc = {
                "content": content, "totalElements": total,
                "totalPages": (total + size - 1) // size, "size": size, "number": page,
                "numberOfElements": len(content), "first": page == 0,
                "last": offset + size >= total,
            }  # fmt: skip
        body = orjson.dumps(doc)
        if not dup and keep is None:
            self._pages[key] = body
        return body

    def pregenerate_dialect(self, dialect: str, size: int) -> int:
        """Cache the full pull of `dialect` (as the connector walks it) for a benchmark."""
        n = len(self.index("dossiers").keys)
        pages = 0
        if dialect == "opencps":
            for offset in range(0, max(n, 1), size):
                self.dialect_page("opencps", offset=offset, size=size)
                pages += 1
            return pages
        idx = self.index("dossiers")
        since: str | None = None
        k = 0
        while True:
            self.dialect_page("vnpt-igate", since=since, offset=k * size, size=size)
            pages += 1
            start = (bisect.bisect_left(idx.keys, (parse_ts(since), "")) if since else 0) + k * size
            end = min(start + size, n)
            if end >= n:
                return pages
            last = fmt(idx.keys[end - 1][0])
            stamp = dialects.iso(last)
            if since is not None and stamp == since:
                k += 1
            else:
                since, k = stamp, 0

    # ------------------------------------------------------------------ truth (tests, admin)

    def truth(self, feed: Feed) -> dict[str, dict[str, Any]]:
        """Every visible record of `feed` at the current clock, by ordering code."""
        idx = self.index(feed)
        return {
            code: self.render(feed, item, self.clock)
            for (_, code), item in zip(idx.keys, idx.items, strict=True)
        }

    def malformed_codes(self) -> dict[str, str]:
        """Dossier code → malformation, for visible malformed dossiers."""
        idx = self.index("dossiers")
        return {d.code: d.malformed for d in idx.items if d.malformed}
