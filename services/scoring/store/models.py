from __future__ import annotations

from shared.db import make_base
from shared.events.outbox import define_event_tables

SCHEMA = "scoring"
Base = make_base(SCHEMA)
outbox_table, processed_events_table = define_event_tables(Base.metadata)
