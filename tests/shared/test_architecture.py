"""The architecture rules, checked on the import statements of every module:
- `shared` never imports a service;
- a service imports `shared` and itself, never another service (data flows through Kafka only);
- a service's `domain` (pure logic) never imports its `store`, its `api` or its `events`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "main.py").exists())


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """Absolute module names a file imports (relative imports resolved against its package)."""
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:  # `from services import tasks` names a service too
                yield node.lineno, f"{module}.{alias.name}"


def sources(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "migrations" not in p.parts)


def violations(files: list[Path], forbidden: list[str]) -> list[str]:
    found = []
    for path in files:
        for line, module in imported_modules(path):
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return found


def test_there_are_services_to_check() -> None:
    assert {"ingest", "scoring", "tasks"} <= set(SERVICES)


def test_shared_never_imports_a_service() -> None:
    assert violations(sources("shared"), ["services"]) == []


def test_services_never_import_each_other() -> None:
    found = []
    for service in SERVICES:
        others = [f"services.{s}" for s in SERVICES if s != service]
        found += violations(sources(f"services/{service}"), others)
    assert found == []


def test_domain_never_imports_store_api_or_events() -> None:
    found = []
    for service in SERVICES:
        if not (ROOT / "services" / service / "domain").exists():
            continue
        layers = [f"services.{service}.{layer}" for layer in ("store", "api", "events")]
        found += violations(sources(f"services/{service}/domain"), layers)
    assert found == []


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    # the rule must be able to fail: a module that imports another service is reported
    bad = ROOT / "services" / "tasks" / "domain" / "_architecture_probe.py"
    bad.write_text("from services.scoring.store import models\nfrom ..store import repo\n")
    try:
        assert violations([bad], ["services.scoring"]) != []
        assert violations([bad], ["services.tasks.store"]) != []
    finally:
        bad.unlink()
