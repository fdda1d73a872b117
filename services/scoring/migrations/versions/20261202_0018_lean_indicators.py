"""Snapshots store each indicator's figures only (numerator, denominator, ratio, points, empty,
and terms or value where there are any); what the profile version fixes — indicator id, code,
group, rule, max, external code, informational, and lost (max − points) — is taken from the
profile on reading (`engine.card_from_doc`). Repeated in every row it was half of each document
(10.6 → 5.0 KB per snapshot), and parsing, compressing and logging it was most of a rebuild's
snapshot insert.

Existing rows are rewritten in that form and get their digest recomputed over it (the canonical
msgspec JSON of `store.snapshots.encode_doc`, as scoring_0007 did), so an unchanged scorecard
still matches its latest version. The constants taken out are kept per (profile, indicator) in
``scoring.snapshot_indicator_constants`, which only the downgrade reads: it puts them back
(the service adds each profile version it writes snapshots of: `snapshots.record_constants`).

Revision ID: scoring_0018
Revises: scoring_0017
Create Date: 2026-12-02
"""

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
from alembic import op

revision: str = "scoring_0018"
down_revision: str | None = "scoring_0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTANTS = ("code", "group", "rule", "max", "external_code", "informational")
"""What a profile version fixes for each indicator (besides its id, the key it is stored under)."""
DP = 4
"""`engine.DP`, frozen: `lost` = round(max − points, DP)."""
BATCH = 2000
_SORTED = msgspec.json.Encoder(order="sorted")

Indicators = dict[str, dict[str, Any]]
Constants = dict[tuple[str, str], dict[str, Any]]


def _lean(profile: str, indicators: Indicators, constants: Constants) -> Indicators:
    out: Indicators = {}
    for key, r in indicators.items():
        if "code" not in r:  # already lean
            out[key] = r
            continue
        constants.setdefault((profile, key), {c: r[c] for c in CONSTANTS})
        lean = {k: r[k] for k in ("numerator", "denominator", "ratio", "points", "empty")}
        if r.get("terms"):
            lean["terms"] = r["terms"]
        if r.get("value") is not None:
            lean["value"] = r["value"]
        out[key] = lean
    return out


def _full(profile: str, indicators: Indicators, constants: Constants) -> Indicators:
    out: Indicators = {}
    for key, r in indicators.items():
        fixed = constants[(profile, key)]
        points = r["points"]
        out[key] = {
            **fixed, **r, "indicator": key, "terms": r.get("terms", {}),
            "value": r.get("value"),
            "lost": None if points is None else round(fixed["max"] - points + 0.0, DP),
        }  # fmt: skip
    return out


def _rewrite(transform: Callable[[str, Indicators, Constants], Indicators],
             constants: Constants) -> None:  # fmt: skip
    """Every snapshot's indicators through `transform`, and its digest over the document as it
    then is (the canonical JSON `store.snapshots.encode_doc` writes)."""
    conn = op.get_bind()
    after: tuple[str, str, str, int] = ("", "", "", 0)
    while True:
        rows = conn.execute(
            sa.text("""
            SELECT unit_id, period, profile, version, total, max_total, applicable_max,
                   groups::text, indicators::text, counters::text
            FROM scoring.snapshots
            WHERE (unit_id, period, profile, version) > (:u, :p, :f, :v)
            ORDER BY unit_id, period, profile, version
            LIMIT :n"""),
            {"u": after[0], "p": after[1], "f": after[2], "v": after[3], "n": BATCH},
        ).all()
        if not rows:
            return
        keys, docs, digests = [], [], []
        for u, p, f, v, total, max_total, applicable_max, groups, indicators, counters in rows:
            inds = transform(f, json.loads(indicators), constants)
            doc = {
                "total": total, "max_total": max_total, "applicable_max": applicable_max,
                "groups": json.loads(groups), "indicators": inds,
                "counters": json.loads(counters),
            }  # fmt: skip
            keys.append(json.dumps([u, p, f, v]))
            docs.append(_SORTED.encode(inds).decode())
            digests.append(hashlib.sha256(_SORTED.encode(doc)).hexdigest())
        conn.execute(
            sa.text("""
            UPDATE scoring.snapshots s SET digest = d.digest, indicators = CAST(d.doc AS jsonb)
            FROM unnest(CAST(:keys AS text[]), CAST(:docs AS text[]), CAST(:digests AS text[]))
                AS d(k, doc, digest)
            WHERE (s.unit_id, s.period, s.profile, s.version)
                = (d.k::jsonb ->> 0, d.k::jsonb ->> 1, d.k::jsonb ->> 2, (d.k::jsonb ->> 3)::int)
            """),
            {"keys": keys, "docs": docs, "digests": digests},
        )
        last = rows[-1]
        after = (last[0], last[1], last[2], last[3])


def upgrade() -> None:
    op.execute("""
        CREATE TABLE scoring.snapshot_indicator_constants (
            profile text NOT NULL,
            indicator text NOT NULL,
            constants jsonb NOT NULL,
            PRIMARY KEY (profile, indicator)
        )""")
    constants: Constants = {}
    _rewrite(_lean, constants)
    if constants:
        op.get_bind().execute(
            sa.text("""
            INSERT INTO scoring.snapshot_indicator_constants (profile, indicator, constants)
            SELECT p, i, CAST(c AS jsonb)
            FROM unnest(CAST(:p AS text[]), CAST(:i AS text[]), CAST(:c AS text[])) AS x(p, i, c)
            """),
            {"p": [p for p, _ in constants], "i": [i for _, i in constants],
             "c": [json.dumps(c) for c in constants.values()]},
        )  # fmt: skip


def downgrade() -> None:
    rows = op.get_bind().execute(
        sa.text("SELECT profile, indicator, constants::text FROM scoring.snapshot_indicator_constants")
    ).all()
    constants: Constants = {(p, i): json.loads(c) for p, i, c in rows}
    _rewrite(_full, constants)
    op.execute("DROP TABLE scoring.snapshot_indicator_constants")
