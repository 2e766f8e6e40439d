"""Benchmark ``medcat demo`` cold, as a newcomer runs it (not a test).

Runs ``python -m medcat_data demo --json`` in a fresh process with a fresh ``HOME``, so nothing is
cached (replicas are built, served, fetched, verified, normalized and loaded from scratch), and
prints the wall time of the whole command against the 3-minute target, and seconds per dataset
source. Paste the Markdown into ``docs/benchmarks.md`` (section "Demo")::

    python bench/demo.py [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 180.0


def run_once() -> tuple[float, list[dict[str, object]]]:
    """Run the demo cold once; return (wall seconds, its rows)."""
    with tempfile.TemporaryDirectory(prefix="medcat-bench-demo-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDCAT_", "HF_"))}
        env.update({"HOME": home, "XDG_CACHE_HOME": str(Path(home) / ".cache")})
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "medcat_data", "demo", "--json"], env=env, capture_output=True, text=True
        )
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"medcat demo exited {done.returncode}")
    return seconds, json.loads(done.stdout)["rows"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    walls: list[float] = []
    per_row: dict[str, list[float]] = {}
    statuses: dict[str, str] = {}
    for _ in range(args.repeat):
        wall, rows = run_once()
        walls.append(wall)
        for row in rows:
            key = f"{row['dataset']} [{row['source']}]"
            per_row.setdefault(key, []).append(float(row["seconds"]))  # type: ignore[arg-type]
            statuses[key] = str(row["status"])
    median = statistics.median(walls)
    print(f"`medcat demo` cold, whole registry, median of {args.repeat}: **{median:.1f} s** "
          f"({', '.join(f'{w:.1f}' for w in walls)}); target under {TARGET_S:.0f} s: "
          f"{'met' if median < TARGET_S else 'missed'}.\n")
    print("| dataset [source] | status | seconds (median) |")
    print("|---|---|---:|")
    for key, values in per_row.items():
        print(f"| {key} | {statuses[key]} | {statistics.median(values):.1f} |")
    load = os.getloadavg()[0]
    print(f"\nMachine: {os.cpu_count()} cores, Python {platform.python_version()}, load average at the end {load:.1f}. "
          "The rest of the wall time is interpreter start-up, imports and replica building.")


if __name__ == "__main__":
    main()
