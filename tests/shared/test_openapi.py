"""Each service's OpenAPI document is complete, stable and committed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.export_openapi import SERVICES, openapi_of, render

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("service", SERVICES)
def test_committed_openapi_matches_the_code(service: str) -> None:
    committed = (ROOT / "docs" / "openapi" / f"{service}.json").read_text(encoding="utf-8")
    assert committed == render(service), f"docs/openapi/{service}.json drifted: `make openapi`"


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_is_identified_guarded_and_documents_its_errors(service: str) -> None:
    spec = openapi_of(service)
    ops = [(path, method, op) for path, methods in spec["paths"].items()
           for method, op in methods.items()]  # fmt: skip
    ids = [op["operationId"] for _, _, op in ops]
    assert len(ids) == len(set(ids))
    for path, method, op in ops:
        tag = op["tags"][0]
        assert op["operationId"].startswith(f"{tag}-"), (path, method)
        if tag == "health":
            assert "security" not in op, f"{method} {path} must stay open"
            continue
        assert op.get("security"), f"{method} {path} has no bearer security"
        assert "401" in op["responses"], f"{method} {path} does not document 401"
        for code, response in op["responses"].items():
            if code.startswith(("4", "5")):
                assert "application/problem+json" in response.get("content", {}), (
                    f"{method} {path} {code} is not problem+json"
                )
    assert "HTTPValidationError" not in json.dumps(spec)
