"""Facts of the national portal's 2026 metrics, carried by the normalised records (and so by
the events): a dossier synced to the DVCQG personal data store or filled from national
population data; a procedure eligible for a full-process online service, connected to
population data, a certification procedure, offering e-certified copies; what a petition is
about. Existing rows get false / null (their sources did not send these fields).

Revision ID: ingest_0010
Revises: ingest_0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "ingest_0010"
down_revision: str | None = "ingest_0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DOSSIER_FLAGS = ("pds_synced", "citizen_data_used")
PROCEDURE_FLAGS = ("full_online_eligible", "citizen_data_connected", "certification",
                   "e_certified_copy")  # fmt: skip


def upgrade() -> None:
    op.execute(
        "ALTER TABLE ingest.dossiers "
        + ", ".join(f"ADD COLUMN {c} boolean NOT NULL DEFAULT false" for c in DOSSIER_FLAGS)
    )
    op.execute(
        "ALTER TABLE ingest.procedures "
        + ", ".join(f"ADD COLUMN {c} boolean NOT NULL DEFAULT false" for c in PROCEDURE_FLAGS)
    )
    op.execute("ALTER TABLE ingest.petitions ADD COLUMN category text")


def downgrade() -> None:
    op.execute("ALTER TABLE ingest.petitions DROP COLUMN category")
    op.execute(
        "ALTER TABLE ingest.procedures " + ", ".join(f"DROP COLUMN {c}" for c in PROCEDURE_FLAGS)
    )
    op.execute(
        "ALTER TABLE ingest.dossiers " + ", ".join(f"DROP COLUMN {c}" for c in DOSSIER_FLAGS)
    )
