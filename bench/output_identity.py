"""Prove that a refactor left every dataset's normalized output byte-identical (not a timing benchmark).

Runs the demo chain (every replica served on loopback, the real fetch, verify and normalize with
``--jobs 1``; every main source of every entry) into a temporary folder and hashes what each
normalize wrote: every parquet shard, the card ``README.md`` and ``errors.jsonl``
(``medcat-manifest.json`` is left out: it records seconds and the tool version)::

    python bench/output_identity.py record      # writes bench/output_hashes.json
    python bench/output_identity.py check       # compares a fresh run with it; exit 1 on any change

``--jobs 1`` against ``--jobs 2`` identity is checked by the chain harness of every dataset test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

from medcat_data.demo import demo_failed, run_demo

HASHES = Path(__file__).with_name("output_hashes.json")
_HASHED_NAMES = ("README.md", "errors.jsonl")


def output_hashes(out: Path) -> dict[str, str]:
    """Return ``{dataset-relative path: sha256}`` of every hashed file under a demo output."""
    hashes = {}
    for path in sorted(out.rglob("*")):
        if path.is_file() and (path.suffix == ".parquet" or path.name in _HASHED_NAMES):
            hashes[path.relative_to(out).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def _dataset_of(key: str) -> str:
    """Return the dataset id of a hashed path (``<id>/...`` or ``.sources/<source>/<id>/...``)."""
    parts = key.split("/")
    return parts[2] if parts[0] == ".sources" else parts[0]


def run(only: list[str]) -> dict[str, str]:
    with tempfile.TemporaryDirectory(prefix="medcat-identity-") as tmp:
        rows = run_demo(out=Path(tmp), only=only)
        failed = demo_failed(rows)
        if failed:
            sys.exit("demo failed: " + "; ".join(f"{r.dataset}/{r.source}: {r.status}" for r in failed))
        return output_hashes(Path(tmp))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("record", "check"))
    parser.add_argument("--only", action="append", default=[], help="limit to these dataset ids")
    args = parser.parse_args()
    fresh = run(args.only)
    if args.action == "record":
        HASHES.write_text(json.dumps(fresh, indent=1, sort_keys=True) + "\n")
        print(f"recorded {len(fresh)} files in {HASHES}")
        return 0
    recorded = json.loads(HASHES.read_text())
    if args.only:
        # A template entry is demonstrated under another id (physionet as physionet-demo-open-project).
        shown = set(args.only) | {_dataset_of(k) for k in fresh}
        recorded = {k: v for k, v in recorded.items() if _dataset_of(k) in shown}
    changed = sorted(k for k in recorded.keys() & fresh.keys() if recorded[k] != fresh[k])
    missing, added = sorted(recorded.keys() - fresh.keys()), sorted(fresh.keys() - recorded.keys())
    for label, names in (("changed", changed), ("missing", missing), ("new", added)):
        for name in names:
            print(f"{label}: {name}")
    print(f"{len(fresh)} files compared: {len(changed)} changed, {len(missing)} missing, {len(added)} new")
    return 1 if changed or missing or added else 0


if __name__ == "__main__":
    sys.exit(main())
