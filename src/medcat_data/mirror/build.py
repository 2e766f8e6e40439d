"""Build replica trees into a folder, with each replica's ``expected.json``, for ``medcat mirror serve``.

``build_replicas`` runs the replica builders of the chosen registry ids (all ids that have one,
by default) into one folder, at the URL paths the loopback server serves, and writes what each
replica promises to normalize to at ``<out>/.medcat-replicas/<id>/<source>/expected.json`` (from
the builder's own bookkeeping, ``Replica.write_expected``). The tree is built in a sibling staging
folder and renamed into place at the end, so ``<out>`` is either complete or absent. A seed gives
a byte-identical tree. Holds no dataset knowledge; never serves or fetches.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from medcat_data.catalog.registry import load_registry
from medcat_data.errors import UsageError
from medcat_data.mirror.replicas.base import Protection, Replica, load_builder

log = logging.getLogger(__name__)

EXPECTED_DIR = ".medcat-replicas"
"""Folder under the built tree holding ``<id>/<source>/expected.json``."""


@dataclass(frozen=True)
class BuiltReplica:
    """One source of one dataset as built: where its expectations are and what it needs."""

    dataset_id: str
    source: str
    expected_path: Path
    protections: tuple[Protection, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildReport:
    """What ``build_replicas`` made."""

    out: Path
    seed: int
    built: tuple[BuiltReplica, ...]
    without_builder: tuple[str, ...]

    def serve_command(self) -> str:
        """Return the ``medcat mirror serve`` line that serves the tree with the replicas' auth rules."""
        parts = ["medcat", "mirror", "serve", str(self.out)]
        seen: set[tuple[str, str]] = set()
        for replica in self.built:
            for p in replica.protections:
                flag = "--auth-any-client" if p.user_agents is None else "--auth"
                if (flag, p.prefix) not in seen:
                    seen.add((flag, p.prefix))
                    parts += [flag, f"{p.prefix}:{p.username}:{p.password}"]
        return " ".join(parts)

    def to_dict(self) -> dict[str, object]:
        return {
            "out": str(self.out),
            "seed": self.seed,
            "replicas": [
                {"dataset": r.dataset_id, "source": r.source, "expected": str(r.expected_path), "env": dict(r.env)}
                for r in self.built
            ],
            "without_builder": list(self.without_builder),
            "serve": self.serve_command(),
        }


def expected_path(out: Path, dataset_id: str, source: str) -> Path:
    """Return where the ``expected.json`` of one replica source goes under a built tree."""
    return out / EXPECTED_DIR / dataset_id / source / "expected.json"


def build_replicas(ids: Sequence[str], out: Path, *, seed: int = 0) -> BuildReport:
    """Build the replicas of ``ids`` (every id with a builder when empty) into ``out``.

    Raises:
        UnknownDatasetError: an id is not in the registry (with close matches).
        UsageError: ``out`` exists and is not an empty folder.
    """
    registry = load_registry()
    chosen = list(dict.fromkeys(ids)) or registry.ids
    for dataset_id in chosen:
        registry.get(dataset_id)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(
            f"{out} exists and is not an empty folder; build into a new folder (a seed rebuilds the same tree), "
            "or name every dataset you want in one `medcat mirror build` call."
        )
    staging = out.with_name(f".{out.name}.building")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    built: list[BuiltReplica] = []
    without: list[str] = []
    try:
        for dataset_id in chosen:
            builder = load_builder(dataset_id)
            if builder is None:
                without.append(dataset_id)
                continue
            replicas: list[Replica] = builder.build(staging, seed=seed)
            for replica in replicas:
                replica.write_expected(expected_path(staging, replica.dataset_id, replica.source))
                built.append(BuiltReplica(
                    replica.dataset_id, replica.source, expected_path(out, replica.dataset_id, replica.source),
                    tuple(replica.protections), dict(replica.env),
                ))
            log.info("%s: built %d replica source(s)", dataset_id, len(replicas))
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BuildReport(out=out, seed=seed, built=tuple(built), without_builder=tuple(without))
