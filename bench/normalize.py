"""Benchmark ``medcat normalize`` on recipe-shaped data against named baselines (not a test).

Run on an otherwise idle machine and paste the printed Markdown into ``docs/benchmarks.md``
(section "Normalize")::

    python bench/normalize.py                     # VinDr-Mammo vs convert, --jobs 2, MIMIC-CXR-JPG passthrough
    python bench/normalize.py --rss               # adds peak RSS, 200 vs 2,000 images
    python bench/normalize.py --studies 10 --size 256 --repeat 1   # a quick smoke run

What it compares (every command in a fresh process, as a user runs it; repeats interleaved so
that drift in the machine's load hits all alike; medians reported):

* ``vindr-mammo``: the replica builder of the demo, scaled up (``--studies`` studies of 4 views,
  ``--size`` pixels per side; explicit VR little endian and JPEG 2000 lossless, MONOCHROME1 and 2,
  VOI LUTs as upstream), fetched over loopback into a private ``MEDCAT_HOME``. Then
  ``medcat normalize vindr-mammo --config birads`` (one output image per DICOM) against
  ``medcat convert`` of the very same DICOM folder, and ``--jobs 2`` against ``--jobs 1``.
* ``mimic-cxr-jpg``: the replica cohort scaled to ``--patients`` patients; ``medcat normalize
  --config chexpert`` (JPEGs passed through) against a plain loop that reads each JPEG's bytes and
  writes them with pyarrow (no labels, no hashing): the floor of any passthrough.
* ``--rss``: peak RSS of the largest process of ``medcat normalize vindr-mammo --config birads``
  at 200 and 2,000 images.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from medcat_data.mirror.replicas.base import REPLICA_PASSWORD

PY = sys.executable


def _env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MEDCAT_HOME": str(home),
        "HF_HOME": str(home / "hf"),
        "HF_DATASETS_OFFLINE": "1",
        "PHYSIONET_USERNAME": "replica-user",
        "PHYSIONET_PASSWORD": REPLICA_PASSWORD,
    }


def _run(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _peak_rss_mib(command: list[str], env: dict[str, str]) -> float:
    """Peak RSS (MiB) of the largest process among ``command``'s descendants."""
    code = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    out = subprocess.run([PY, "-c", code, *command], check=True, capture_output=True, text=True, env=env)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def _medcat(*args: str) -> list[str]:
    return [PY, "-m", "medcat_data", *args, "--quiet", "--max-errors", "100%"]


# ----------------------------------------------------------------------------------------------
# Inputs: the demo's replica builders, scaled up


def build_vindr(work: Path, studies: int, size: int) -> tuple[Path, int]:
    """Build a scaled VinDr-Mammo replica, fetch it into ``work/home``; return (home, images)."""
    from medcat_data.datasets.vindr_mammo import replica as vindr

    train = max(1, round(studies * 0.8))
    vindr.STUDIES = {"training": train, "test": max(1, studies - train)}
    vindr.DEVICES = tuple(
        (model, (size, int(size * 0.8)), photometric, syntax, lut) for model, _, photometric, syntax, lut in vindr.DEVICES
    )
    return _serve_and_fetch(work, "vindr-mammo", vindr.build), 4 * (vindr.STUDIES["training"] + vindr.STUDIES["test"])


def build_mimic_jpg(work: Path, patients: int, size: int) -> Path:
    """Build a MIMIC-CXR-JPG replica of ``patients`` with images about ``size`` pixels high; fetch it."""
    from medcat_data.datasets.mimic_cxr_jpg import replica as jpg
    from medcat_data.mirror.synth import mimic_cohort

    import dataclasses

    original = mimic_cohort.make_cohort

    def cohort(seed: int = 0) -> mimic_cohort.Cohort:
        drawn = original(seed, patients=patients)
        studies = tuple(
            dataclasses.replace(
                study,
                images=tuple(
                    dataclasses.replace(i, rows=i.rows * size // 100, columns=i.columns * size // 100) for i in study.images
                ),
            )
            for study in drawn.studies
        )
        return dataclasses.replace(drawn, studies=studies)

    mimic_cohort.make_cohort = cohort  # type: ignore[assignment]
    return _serve_and_fetch(work, "mimic-cxr-jpg", jpg.build)


def _serve_and_fetch(work: Path, dataset_id: str, build: Callable[..., object]) -> Path:
    from medcat_data.mirror.server import MirrorServer

    home = work / f"home-{dataset_id}"
    if (home / "raw").exists():
        return home
    mirror_root = work / f"mirror-{dataset_id}"
    replicas = build(mirror_root, seed=0)
    with MirrorServer(mirror_root) as server:
        for replica in replicas:  # type: ignore[attr-defined]
            for p in replica.protections:
                server.protect(p.prefix, p.username, p.password, user_agents=p.user_agents)
        command = [PY, "-m", "medcat_data", "fetch", dataset_id, "--mirror", server.url, "--accept-license", "--quiet"]
        subprocess.run(command, check=True, env=_env(home))
    return home


# ----------------------------------------------------------------------------------------------
# Baselines


PLAIN_PASSTHROUGH = r'''
import sys, pathlib, pyarrow as pa, pyarrow.parquet as pq
root, out = pathlib.Path(sys.argv[1]), sys.argv[2]
schema = pa.schema([("path", pa.string()), ("image", pa.binary())])
with pq.ParquetWriter(out, schema, compression="none") as writer:
    batch = []
    for path in sorted(root.rglob("*.jpg")):
        batch.append((str(path.relative_to(root)), path.read_bytes()))
        if len(batch) == 100:
            writer.write_table(pa.table({"path": [p for p, _ in batch], "image": [b for _, b in batch]}, schema=schema))
            batch = []
    if batch:
        writer.write_table(pa.table({"path": [p for p, _ in batch], "image": [b for _, b in batch]}, schema=schema))
'''


def interleaved(commands: dict[str, Callable[[], float]], repeat: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, run in commands.items():
            times[name].append(run())
    return times


def _fmt(values: list[float]) -> str:
    med = statistics.median(values)
    return f"{med:.2f} s" if len(values) == 1 else f"{med:.2f} s ({min(values):.2f}-{max(values):.2f})"


def vindr_table(work: Path, studies: int, size: int, repeat: int) -> list[str]:
    home, images = build_vindr(work, studies, size)
    env = _env(home)
    raw_images = home / "raw" / "vindr-mammo" / "1.0.0" / "images"
    out = work / "out"

    def normalize(jobs: int) -> Callable[[], float]:
        def run() -> float:
            shutil.rmtree(out / f"n{jobs}", ignore_errors=True)
            return _run(_medcat("normalize", "vindr-mammo", "--config", "birads", "--out", str(out / f"n{jobs}"), "--jobs", str(jobs)), env)

        return run

    def convert(jobs: int) -> Callable[[], float]:
        def run() -> float:
            shutil.rmtree(out / f"c{jobs}", ignore_errors=True)
            return _run(_medcat("convert", str(raw_images), "--out", str(out / f"c{jobs}"), "--jobs", str(jobs)), env)

        return run

    times = interleaved(
        {"normalize j1": normalize(1), "convert j1": convert(1), "normalize j2": normalize(2), "convert j2": convert(2)},
        repeat,
    )
    med = {k: statistics.median(v) for k, v in times.items()}
    lines = [
        f"VinDr-Mammo replica scaled to {images} DICOMs of {size} x {int(size * 0.8)} pixels (half JPEG 2000 lossless), "
        f"median of {repeat}:",
        "",
        "| command | --jobs 1 | --jobs 2 | jobs 2 / jobs 1 |",
        "|---|---:|---:|---:|",
        f"| `medcat normalize vindr-mammo --config birads` | {_fmt(times['normalize j1'])} | {_fmt(times['normalize j2'])} "
        f"| {med['normalize j1'] / med['normalize j2']:.2f}x |",
        f"| `medcat convert` of the same DICOM folder | {_fmt(times['convert j1'])} | {_fmt(times['convert j2'])} "
        f"| {med['convert j1'] / med['convert j2']:.2f}x |",
        "",
        f"normalize / convert: {med['normalize j1'] / med['convert j1']:.2f} (jobs 1), "
        f"{med['normalize j2'] / med['convert j2']:.2f} (jobs 2); target: at most 1.10.",
    ]
    return lines


def passthrough_table(work: Path, patients: int, size: int, repeat: int) -> list[str]:
    home = build_mimic_jpg(work, patients, size)
    env = _env(home)
    project = home / "raw" / "mimic-cxr-jpg" / "2.1.0"
    jpg_paths = list((project / "files").rglob("*.jpg"))
    jpgs, mib = len(jpg_paths), sum(p.stat().st_size for p in jpg_paths) / 2**20
    out = work / "out"

    def normalize() -> float:
        shutil.rmtree(out / "jpg", ignore_errors=True)
        return _run(_medcat("normalize", "mimic-cxr-jpg", "--config", "chexpert", "--out", str(out / "jpg")), env)

    def plain() -> float:
        return _run([PY, "-c", PLAIN_PASSTHROUGH, str(project / "files"), str(work / "plain.parquet")], env)

    times = interleaved({"normalize": normalize, "plain": plain}, repeat)
    ratio = statistics.median(times["plain"]) / statistics.median(times["normalize"])
    return [
        f"MIMIC-CXR-JPG replica scaled to {patients} patients ({jpgs} JPEGs of about {size} pixels high, "
        f"{mib:.0f} MiB), median of {repeat}:",
        "",
        "| command | wall |",
        "|---|---:|",
        f"| `medcat normalize mimic-cxr-jpg --config chexpert` | {_fmt(times['normalize'])} |",
        f"| plain loop: read each JPEG, write path + bytes with pyarrow | {_fmt(times['plain'])} |",
        "",
        f"normalize speed / plain loop speed: {ratio:.2f}x (target: at least 0.8x).",
    ]


def rss_table(work: Path, size: int) -> list[str]:
    rows = ["| images | peak RSS MiB (largest process) | seconds |", "|---:|---:|---:|"]
    for studies in (50, 500):
        sub = work / f"rss-{studies}"
        home, images = build_vindr(sub, studies, size)
        out = sub / "out"
        start = time.perf_counter()
        rss = _peak_rss_mib(_medcat("normalize", "vindr-mammo", "--config", "birads", "--out", str(out)), _env(home))
        rows.append(f"| {images} | {rss:.0f} | {time.perf_counter() - start:.1f} |")
    return [f"`medcat normalize vindr-mammo --config birads --jobs 1`, {size}-pixel images:", "", *rows]


def machine() -> str:
    load = os.getloadavg()
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average at the end {load[0]:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=60, help="VinDr-Mammo studies (4 images each)")
    parser.add_argument("--size", type=int, default=1024, help="VinDr image rows (columns = 0.8 x rows)")
    parser.add_argument("--patients", type=int, default=400, help="MIMIC-CXR-JPG patients")
    parser.add_argument("--jpg-size", type=int, default=1024, help="MIMIC-CXR-JPG image height in pixels (about)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rss", action="store_true", help="also measure peak RSS at 200 and 2,000 images")
    parser.add_argument("--work", type=Path, default=None, help="folder for inputs and outputs (kept)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="medcat-bench-normalize-"))
    work.mkdir(parents=True, exist_ok=True)
    sections = [vindr_table(work / "vindr", args.studies, args.size, args.repeat)]
    sections.append(passthrough_table(work / "jpg", args.patients, args.jpg_size, args.repeat))
    if args.rss:
        sections.append(rss_table(work / "rss", 256))
    for lines in sections:
        print("\n".join(lines) + "\n")
    print(f"Machine: {machine()}; peak RSS of this script {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB.")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
