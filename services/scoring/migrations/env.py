from services.scoring.store import models  # noqa: F401  (registers every table on the metadata)
from services.scoring.store.models import SCHEMA, Base
from shared.migrate import run_env

run_env(Base.metadata, SCHEMA)
