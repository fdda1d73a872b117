"""`make bench`: run every bench/*_bench.py in turn; each prints its own figures.

Benchmarks need the same infrastructure as tests (DATABASE_URL or an embedded PostgreSQL;
KAFKA_BOOTSTRAP_SERVERS or tansu where a benchmark publishes). Record results in
docs/benchmarks.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    failures = 0
    for script in sorted((ROOT / "bench").glob("*_bench.py")):
        print(f"\n=== {script.relative_to(ROOT)} ===", flush=True)
        rc = subprocess.call([sys.executable, str(script), *sys.argv[1:]], cwd=ROOT)
        failures += rc != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
