"""Wire formats: how a source's page bodies are read. Each format has ONE decode stage.

A connector declares its wire format by name (`Capabilities.wire`); the sync engine decodes every
body of that source with the format registered here, in a worker process when it has them. A
format is two plain functions (module-level, so they travel to worker processes by reference):

- `to_national(body, feed, ctx)`: the body translated into the national envelope
  (`{"items": [national-field records], "next_cursor": …, "server_time": …}` as JSON bytes),
  which the typed fast path (`domain.fast`) then reads like any national page. None for the
  national format itself: its bodies already are that envelope (keys may be renamed through
  the source's options `items_key` / `cursor_key`).
- `to_typed(body, feed, ctx)` (optional, dossiers): the same, decoded straight into the typed
  fast path's records in one pass (what `to_national` + the fast path's decode would give);
- `translate(record, options)` and `records(body)` (vendor formats): one record of the vendor's
  shape → national fields with the source's options, and a body's records as the vendor sent
  them; a rejected record is quarantined with its vendor record beside its translation, and
  re-processing translates that again with the options of the moment (a corrected
  `status_map`, say);
- `steps(steps, options)` (vendor formats): processing steps in the vendor's shape → national
  `QuaTrinhXuLy` items; the hot path stores a vendor's steps as sent (undecoded) and the
  dossier view translates them;
- `peek(tail, ctx)`: the next cursor guessed cheaply from the end of the body (or from the
  request alone, for offset paging), so the next fetch can start while a worker decodes this
  page. `(False, None)` means the body is truncated or malformed (the fetch is retried). The
  decoded page's cursor is authoritative: a wrong guess only costs a restarted fetch.

`descending` formats walk newest first (a source without an updated-since filter): their decode
stage ends the walk (next cursor None) at the first page reaching past `ctx.since`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.ingest.connectors.base import Feed


@dataclass(frozen=True, slots=True)
class PageContext:
    """What a decode stage may need beyond the body. Picklable: it travels to the workers."""

    cursor: str | None  # the cursor the page was fetched with (None: the first page)
    limit: int
    since: datetime | None
    options: Mapping[str, Any] = field(default_factory=dict)  # the source's connector options


@dataclass(slots=True)
class TypedPage:
    """A page decoded straight into the fast path's typed records (`domain.fast.RawDossier`),
    with the means to build the records as national dicts should the fast path defer one."""

    items: list[Any]
    next_cursor: str | None
    server_time: Any
    raws: Callable[[], list[Any]]
    # the records as the vendor sent them (in the order of `items`), for quarantine
    sources: Callable[[], list[Any]] | None = None
    # the shape of the items' raw processing steps (`RawDossier.QuaTrinhXuLy`): a wire format
    # whose `steps` translates them when shown; None: national fields
    steps_wire: str | None = None


ToNational = Callable[[bytes | memoryview, Feed, PageContext], bytes]
ToTyped = Callable[[bytes | memoryview, Feed, PageContext], TypedPage | None]
Peek = Callable[[bytes, PageContext], tuple[bool, str | None]]
Translate = Callable[[Any, Mapping[str, Any]], Any]
Steps = Callable[[list[Any], Mapping[str, Any]], list[Any]]
Records = Callable[[bytes | memoryview], list[Any]]


@dataclass(frozen=True, slots=True)
class WireFormat:
    name: str
    to_national: ToNational | None
    peek: Peek
    descending: bool = False
    tail: int = 16_384  # bytes at the end of a body `peek` is given
    # Optional, for dossier pages: one decode into the fast path's records (no national JSON
    # in between); None from it (an unexpected shape) falls back to `to_national`.
    to_typed: ToTyped | None = None
    translate: Translate | None = None
    records: Records | None = None
    steps: Steps | None = None


WIRE_FORMATS: dict[str, WireFormat] = {}


def register_wire(wire: WireFormat) -> WireFormat:
    known = WIRE_FORMATS.get(wire.name)
    if known is not None and known is not wire:
        raise ValueError(f"wire format {wire.name!r} already registered")
    WIRE_FORMATS[wire.name] = wire
    return wire


def wire_format(name: str) -> WireFormat:
    try:
        return WIRE_FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown wire format {name!r}; known: {sorted(WIRE_FORMATS)}") from None


def envelope_keys(options: Mapping[str, Any]) -> tuple[str, str]:
    """The national envelope's item and cursor keys (renamable per source)."""
    return str(options.get("items_key", "items")), str(options.get("cursor_key", "next_cursor"))
