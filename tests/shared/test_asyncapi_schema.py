"""docs/asyncapi.yaml is a valid AsyncAPI 3.0 document: checked against the specification's own
JSON Schema (the `@asyncapi/specs` npm package, installed by `make install`)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "tools/asyncapi/node_modules/@asyncapi/specs/schemas/3.0.0-without-$id.json"


def validator() -> jsonschema.Draft7Validator:
    assert SCHEMA.exists(), "run `make install` (npm ci --prefix tools/asyncapi)"
    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))


def test_the_asyncapi_document_is_valid_asyncapi_3() -> None:
    document = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text())
    assert document["asyncapi"].startswith("3.0")
    errors = [f"{list(e.path)}: {e.message[:200]}" for e in validator().iter_errors(document)]
    assert errors == []


def test_the_schema_rejects_a_broken_document() -> None:
    document = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text())
    del document["info"]
    document["channels"] = {"x": {"address": 42}}
    assert len(list(validator().iter_errors(document))) >= 1
