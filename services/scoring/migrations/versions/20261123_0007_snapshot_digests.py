"""Snapshot digests over the canonical msgspec JSON of the document (keys sorted at every level,
compact), which the service now writes (`store.snapshots.encode_doc`), instead of
`json.dumps(sort_keys=True)`. Existing rows get their digest recomputed from their stored
document, so an unchanged scorecard still matches its latest version and no version is written
for a mere change of encoding. Downgrade restores the old form.

Revision ID: scoring_0007
Revises: scoring_0006
Create Date: 2026-11-23
"""

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
from alembic import op

revision: str = "scoring_0007"
down_revision: str | None = "scoring_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 2000
_SORTED = msgspec.json.Encoder(order="sorted")


def _canonical(doc: dict[str, Any]) -> bytes:
    return _SORTED.encode(doc)


def _legacy(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True).encode()


def _rewrite(encode: Callable[[dict[str, Any]], bytes]) -> None:
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
        keys, digests = [], []
        for u, p, f, v, total, max_total, applicable_max, groups, indicators, counters in rows:
            doc = {
                "total": total, "max_total": max_total, "applicable_max": applicable_max,
                "groups": json.loads(groups), "indicators": json.loads(indicators),
                "counters": json.loads(counters),
            }  # fmt: skip
            keys.append(json.dumps([u, p, f, v]))
            digests.append(hashlib.sha256(encode(doc)).hexdigest())
        conn.execute(
            sa.text("""
            UPDATE scoring.snapshots s SET digest = d.digest
            FROM unnest(CAST(:keys AS text[]), CAST(:digests AS text[])) AS d(k, digest)
            WHERE (s.unit_id, s.period, s.profile, s.version)
                = (d.k::jsonb ->> 0, d.k::jsonb ->> 1, d.k::jsonb ->> 2, (d.k::jsonb ->> 3)::int)
            """),
            {"keys": keys, "digests": digests},
        )
        last = rows[-1]
        after = (last[0], last[1], last[2], last[3])


def upgrade() -> None:
    _rewrite(_canonical)


def downgrade() -> None:
    _rewrite(_legacy)
