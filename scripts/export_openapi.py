"""Write each service's OpenAPI document to docs/openapi/<service>.json (`make openapi`).

`tests/shared/test_openapi.py` fails when a committed document drifts from the code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVICES = ("ingest", "scoring", "tasks")


def openapi_of(service: str) -> dict[str, Any]:
    import importlib

    from shared.settings import Settings

    module = importlib.import_module(f"services.{service}.main")
    app = module.create_app(Settings(env="test", jwt_secret="openapi-export-only"))
    spec: dict[str, Any] = app.openapi()
    return spec


def render(service: str) -> str:
    return json.dumps(openapi_of(service), ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def main() -> None:
    out = ROOT / "docs" / "openapi"
    out.mkdir(parents=True, exist_ok=True)
    for service in SERVICES:
        (out / f"{service}.json").write_text(render(service), encoding="utf-8")
        print(f"wrote docs/openapi/{service}.json")


if __name__ == "__main__":
    main()
