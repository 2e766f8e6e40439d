"""Benchmark ``medcat normalize`` executors: ``--jobs 1``, ``--jobs 2``, ``--executor dask-local:2`` (not a test).

Paste the printed Markdown into ``docs/benchmarks.md`` (section "Normalize on Dask")::

    python bench/executors.py       # VinDr 2,000 and 200 DICOMs, MIMIC-CXR-JPG, Dask start-up, plan memory
    python bench/executors.py --studies 10 --size 128 --patients 20 --repeat 1 --plan-studies 20000   # a smoke run

Every command runs in a fresh process, as a user runs it; repeats are interleaved so that drift in
the machine's load hits all executors alike; medians are reported with the range. For each run the
process tree of the command is polled (psutil, every 0.1 s): the *driver* is the ``medcat``
process itself, a *worker* any descendant (pool workers, Dask worker processes, and also the
forkserver and multiprocessing's resource tracker). Peak RSS is the kernel's ``VmHWM`` of each
process, so short peaks are not missed; CPU is user + system time of each process at its last poll
(what a process burns in its last 0.1 s is lost). The 1-minute load average is recorded before
every run.

* ``vindr-mammo``: the replica of ``bench/normalize.py`` scaled to ``--studies`` studies of 4
  DICOMs, once with every DICOM explicit VR little endian (uncompressed) and once with every DICOM
  JPEG 2000 lossless; ``medcat normalize vindr-mammo --config birads``.
* ``mimic-cxr-jpg``: ``medcat normalize mimic-cxr-jpg --config chexpert`` (JPEGs passed through).
* Dask start-up: a fresh process starts ``dask-local:2`` through ``make_executor``, runs one
  trivial task, and closes the cluster; each phase timed.
* Plan memory: the driver side of ``medcat normalize mimic-cxr`` (survey, the three configs'
  plans, ``combine_units``) on index files of ``--plan-studies`` studies (the shape of MIMIC-CXR
  2.0.0: record list, study list, the companion's metadata, split and label files) with no images
  on disk (every listed file counts as fetched), in a fresh process: RSS after each stage and the
  stage's own peak, bytes per unit, the build key's stat records for as many files as such a fetch
  holds (its layout, in ``os.walk`` order), the resume key, the writer's close (manifest and card),
  and the next run's manifest read and up-to-date check.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from normalize import PY, _env, _medcat, build_mimic_jpg, build_vindr  # noqa: E402

EXECUTORS: dict[str, tuple[str, ...]] = {
    "--jobs 1": ("--jobs", "1"),
    "--jobs 2": ("--jobs", "2"),
    "dask-local:2": ("--executor", "dask-local:2"),
}
MIB = 2**20


# ----------------------------------------------------------------------------------------------
# Measuring a process tree


@dataclass(frozen=True)
class Usage:
    """One run of one command: wall seconds, CPU seconds and peak RSS (bytes) of driver and workers."""

    wall: float
    driver_cpu: float
    workers_cpu: float
    driver_peak: int
    worker_peak: int
    workers: int
    load: float


def _hwm(pid: int) -> int:
    """Return a process's peak resident set (``VmHWM``), in bytes."""
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def measure(command: list[str], env: dict[str, str], interval: float = 0.1) -> Usage:
    """Run ``command`` to completion, polling its process tree; return its ``Usage``."""
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    root = psutil.Process(proc.pid)
    peak: dict[int, int] = {}
    cpu: dict[int, float] = {}
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        for p in tree:
            try:
                times = p.cpu_times()
                cpu[p.pid] = times.user + times.system
                peak[p.pid] = max(peak.get(p.pid, 0), _hwm(p.pid))
            except (psutil.NoSuchProcess, psutil.ZombieProcess, FileNotFoundError, ProcessLookupError):
                continue
        time.sleep(interval)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited with {proc.returncode}")
    others = [pid for pid in peak if pid != proc.pid]
    return Usage(
        wall=wall,
        driver_cpu=cpu.get(proc.pid, 0.0),
        workers_cpu=sum(cpu.get(pid, 0.0) for pid in others),
        driver_peak=peak.get(proc.pid, 0),
        worker_peak=max((peak[pid] for pid in others), default=0),
        workers=len(others),
        load=load,
    )


def interleaved(commands: dict[str, Callable[[], Usage]], repeat: int) -> dict[str, list[Usage]]:
    runs: dict[str, list[Usage]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, run in commands.items():
            runs[name].append(run())
    return runs


def _med(values: list[float]) -> float:
    return statistics.median(values)


def _range(values: list[float], fmt: str = "{:.1f}") -> str:
    med = fmt.format(_med(values))
    return med if len(values) == 1 else f"{med} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def usage_table(runs: dict[str, list[Usage]]) -> list[str]:
    """Markdown rows: one per executor, medians with ranges, speed-up against ``--jobs 1``."""
    base = _med([u.wall for u in runs["--jobs 1"]])
    lines = [
        "| executor | wall s | speed-up vs --jobs 1 | driver CPU s | workers CPU s | driver peak RSS MiB "
        "| largest worker peak RSS MiB | processes | load (1 min) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, us in runs.items():
        walls = [u.wall for u in us]
        loads = [u.load for u in us]
        lines.append(
            f"| `{name}` | {_range(walls, '{:.2f}')} | {base / _med(walls):.2f}x | {_range([u.driver_cpu for u in us])} "
            f"| {_range([u.workers_cpu for u in us])} | {_range([u.driver_peak / MIB for u in us], '{:.0f}')} "
            f"| {_range([u.worker_peak / MIB for u in us], '{:.0f}')} | {max(u.workers for u in us) + 1} "
            f"| {min(loads):.1f}-{max(loads):.1f} |"
        )
    return lines


def verdicts(runs: dict[str, list[Usage]], uncompressed: bool) -> list[str]:
    walls = {name: _med([u.wall for u in us]) for name, us in runs.items()}
    j2 = walls["--jobs 1"] / walls["--jobs 2"]
    dask = walls["dask-local:2"] / walls["--jobs 2"] - 1
    spread = max((max(u.wall for u in us) - min(u.wall for u in us)) / _med([u.wall for u in us]) for us in runs.values())
    lines = [
        f"- `--jobs 2` / `--jobs 1`: **{j2:.2f}x**"
        + (f" (target at least 1.7x: {'met' if j2 >= 1.7 else 'missed'})" if uncompressed else ""),
        f"- `dask-local:2` against `--jobs 2`: **{dask:+.0%}** wall (target within 15%: {'met' if abs(dask) <= 0.15 else 'missed'})",
        f"- noise: the widest range is {spread:.0%} of its median",
    ]
    return lines


# ----------------------------------------------------------------------------------------------
# Workloads


def build_vindr_syntax(work: Path, studies: int, size: int, syntax: str) -> tuple[Path, int]:
    """A scaled VinDr-Mammo replica whose every DICOM has one transfer syntax (``uncompressed`` or ``j2k``)."""
    from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless

    from medcat_data.datasets.vindr_mammo import replica as vindr

    uid = ExplicitVRLittleEndian if syntax == "uncompressed" else JPEG2000Lossless
    original = vindr.DEVICES
    devices = [(model, dims, photometric, uid, lut) for model, dims, photometric, _, lut in original]
    if uid != ExplicitVRLittleEndian:
        # The replica plants its truncated DICOM in the first training study, which must be uncompressed:
        # that one study (4 DICOMs) keeps explicit VR little endian, every other study is JPEG 2000.
        devices = [original[0][:3] + (ExplicitVRLittleEndian, original[0][4])] + devices * (studies // len(devices) + 1)
    vindr.DEVICES = tuple(devices)
    try:
        return build_vindr(work, studies, size)
    finally:
        vindr.DEVICES = original


def vindr_section(work: Path, studies: int, size: int, repeat: int, syntax: str) -> list[str]:
    home, images = build_vindr_syntax(work / syntax, studies, size, syntax)
    env = _env(home)
    out = work / syntax / "out"

    def run(name: str) -> Callable[[], Usage]:
        def go() -> Usage:
            target = out / name.replace(" ", "").replace(":", "")
            shutil.rmtree(target, ignore_errors=True)
            return measure(_medcat("normalize", "vindr-mammo", "--config", "birads", "--out", str(target), *EXECUTORS[name]), env)

        return go

    runs = interleaved({name: run(name) for name in EXECUTORS}, repeat)
    label = "explicit VR little endian (uncompressed)" if syntax == "uncompressed" else "JPEG 2000 lossless (but 4)"
    return [
        f"#### VinDr-Mammo, {images:,} DICOMs of {size} x {int(size * 0.8)} pixels, {label}",
        "",
        f"`medcat normalize vindr-mammo --config birads`, median of {repeat} (range):",
        "",
        *usage_table(runs),
        "",
        *verdicts(runs, syntax == "uncompressed"),
    ]


def passthrough_section(work: Path, patients: int, size: int, repeat: int) -> list[str]:
    home = build_mimic_jpg(work, patients, size)
    env = _env(home)
    jpgs = list((home / "raw" / "mimic-cxr-jpg" / "2.1.0" / "files").rglob("*.jpg"))
    mib = sum(p.stat().st_size for p in jpgs) / MIB

    def run(name: str) -> Callable[[], Usage]:
        def go() -> Usage:
            target = work / "out" / name.replace(" ", "").replace(":", "")
            shutil.rmtree(target, ignore_errors=True)
            return measure(_medcat("normalize", "mimic-cxr-jpg", "--config", "chexpert", "--out", str(target), *EXECUTORS[name]), env)

        return go

    runs = interleaved({name: run(name) for name in EXECUTORS}, repeat)
    return [
        f"#### MIMIC-CXR-JPG passthrough, {len(jpgs):,} JPEGs ({mib:.0f} MiB)",
        "",
        f"`medcat normalize mimic-cxr-jpg --config chexpert`, median of {repeat} (range):",
        "",
        *usage_table(runs),
        "",
        *verdicts(runs, False),
    ]


STARTUP = r'''
import json, sys, time
t0 = time.perf_counter()
from medcat_data.converters.executor import make_executor
t1 = time.perf_counter()
executor = make_executor("dask-local:2")
t2 = time.perf_counter()
assert list(executor.map(abs, [-1])) == [1]
t3 = time.perf_counter()
executor.close()
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "start": t2 - t1, "first task": t3 - t2, "close": t4 - t3}))
'''


def startup_section(repeat: int) -> list[str]:
    phases: dict[str, list[float]] = {}
    usages: list[Usage] = []
    for _ in range(repeat):
        load = os.getloadavg()[0]
        out = subprocess.run([PY, "-c", STARTUP], check=True, capture_output=True, text=True)
        for name, seconds in json.loads(out.stdout.strip().splitlines()[-1]).items():
            phases.setdefault(name, []).append(seconds)
        phases.setdefault("load", []).append(load)
        usages.append(measure([PY, "-c", STARTUP], dict(os.environ)))
    loads = phases.pop("load")
    rows = [f"| {name} | {_range(values, '{:.2f}')} |" for name, values in phases.items()]
    return [
        f"#### Dask start-up (`dask-local:2`), median of {repeat} (range), load {min(loads):.1f}-{max(loads):.1f}",
        "",
        "| phase | seconds |",
        "|---|---:|",
        *rows,
        f"| whole process (measured separately) | {_range([u.wall for u in usages], '{:.2f}')} |",
        "",
        f"Driver peak RSS {_med([u.driver_peak / MIB for u in usages]):.0f} MiB (scheduler and nannies run in it), "
        f"largest worker {_med([u.worker_peak / MIB for u in usages]):.0f} MiB, "
        f"CPU {_med([u.driver_cpu for u in usages]):.1f} s driver + {_med([u.workers_cpu for u in usages]):.1f} s workers.",
    ]


# ----------------------------------------------------------------------------------------------
# Plan memory (run in a fresh child process: ``--plan-child``)


def _rss() -> int:
    return psutil.Process().memory_info().rss


def write_index_files(root: Path, studies: int) -> tuple[Path, Path, int]:
    """Write MIMIC-CXR-shaped index files of ``studies`` studies (no images); return (dicom dir, jpg dir, images)."""
    from medcat_data.converters.vocab.chexpert import OBSERVATIONS
    from medcat_data.mirror.replicas.base import csv_bytes, gzip_bytes, project_dir
    from medcat_data.mirror.synth import mimic_cohort as mc

    cohort = mc.make_cohort(0, patients=(studies * 2 + 2) // 3)
    ordered = sorted(cohort.studies, key=lambda s: (s.subject_id, s.study_id))[:studies]
    dicom, jpg = project_dir(root, mc.DICOM_SLUG, mc.DICOM_VERSION), project_dir(root, mc.JPG_SLUG, mc.JPG_VERSION)
    dicom.mkdir(parents=True, exist_ok=True)
    jpg.mkdir(parents=True, exist_ok=True)
    records = [[s.subject_id, s.study_id, i.dicom_id, cohort.image_path(s, i, "dcm")] for s in ordered for i in s.images]
    meta = [[i.dicom_id, s.subject_id, s.study_id, "CHEST", i.view, i.rows, i.columns, s.date, s.time, "CHEST", "x", "Erect"]
            for s in ordered for i in s.images]
    split = [[i.dicom_id, s.study_id, s.subject_id, s.split] for s in ordered for i in s.images]
    (dicom / "cxr-record-list.csv.gz").write_bytes(gzip_bytes(csv_bytes(["subject_id", "study_id", "dicom_id", "path"], records)))
    (dicom / "cxr-study-list.csv.gz").write_bytes(
        gzip_bytes(csv_bytes(["subject_id", "study_id", "path"], [[s.subject_id, s.study_id, f"{s.folder}.txt"] for s in ordered]))
    )
    (jpg / "mimic-cxr-2.0.0-metadata.csv.gz").write_bytes(gzip_bytes(csv_bytes(mc.METADATA_COLUMNS, meta)))
    (jpg / "mimic-cxr-2.0.0-split.csv.gz").write_bytes(gzip_bytes(csv_bytes(mc.SPLIT_COLUMNS, split)))
    for which in ("chexpert", "negbio"):
        rows = [[s.subject_id, s.study_id, *(s.chexpert if which == "chexpert" else s.negbio)]
                for s in ordered if s.chexpert is not None and s.negbio is not None]
        (jpg / f"mimic-cxr-2.0.0-{which}.csv.gz").write_bytes(gzip_bytes(csv_bytes(["subject_id", "study_id", *OBSERVATIONS], rows)))
    return dicom, jpg, len(records)


def _deep(obj: Any, seen: set[int]) -> int:
    """Bytes of ``obj`` and what it references (containers, dataclasses), each object once."""
    if id(obj) in seen or obj is None or isinstance(obj, (bool, type)):
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict) or dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        items = obj.items() if isinstance(obj, dict) else ((f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj))
        size += sum(_deep(k, seen) + _deep(v, seen) for k, v in items)
    elif isinstance(obj, (tuple, list, set, frozenset)):
        size += sum(_deep(v, seen) for v in obj)
    return size


def _reset_peak() -> None:
    """Reset this process's ``VmHWM`` to its current RSS (Linux ``clear_refs`` 5), so each stage's peak is its own."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
        handle.write("5")


def _input_paths(studies: Any, prefix: str) -> Iterator[str]:
    """Yield the build key's recorded paths of a MIMIC-CXR fetch in ``os.walk`` order (as ``_files_under``).

    Per subject folder ``files/pXX/p<subject>/``: its reports ``s<study>.txt``, then each study
    folder's DICOMs. ``studies`` come sorted by subject and study (``write_index_files``).
    """
    for subject, own in itertools.groupby(studies, key=lambda st: st.subject_id):
        folder = f"{prefix}files/p{subject[:2]}/p{subject}/"
        mine = list(own)
        for st in mine:
            yield f"{folder}s{st.study_id}.txt"
        for st in mine:
            for dicom_id in sorted(st.dicom_ids):
                yield f"{folder}s{st.study_id}/{dicom_id}.dcm"


def plan_child(work: Path, studies: int) -> dict[str, Any]:
    """Measure the driver's memory as normalize holds it, stage by stage (RSS held after, peak during).

    Survey, lazy plans, every combined unit taken once, the build key's stat records, the resume
    key, the writer's close (manifest and card written), and the next run's manifest read and
    up-to-date check.
    """
    from medcat_data.catalog.refs import resolve
    from medcat_data.catalog.registry import load_registry
    from medcat_data.converters.build_manifest import BuildKey, InputFiles, read_manifest, up_to_date
    from medcat_data.converters.card import CardInfo
    from medcat_data.converters.normalize import _key_text, context_for, pick_source
    from medcat_data.converters.recipe import RecipeContext, RecipeOptions
    from medcat_data.converters.resume import ResumeStore
    from medcat_data.converters.writer import DatasetSpec, DatasetWriter, WriterOptions, _with_writer_options
    from medcat_data.datasets.mimic_cxr.recipe import RECIPE

    from medcat_data.mirror.replicas.base import project_dir
    from medcat_data.mirror.synth import mimic_cohort as mc

    resolved = resolve("mimic-cxr", load_registry())
    dicom, jpg = project_dir(work, mc.DICOM_SLUG, mc.DICOM_VERSION), project_dir(work, mc.JPG_SLUG, mc.JPG_VERSION)
    root = dicom.parents[2]  # the replica's files/<slug>/<version> layout: source and companion sit under root

    class IndexOnly(RecipeContext):
        """Every DICOM and loose report listed counts as fetched: the plan is built without images on disk."""

        def has(self, path: Path) -> bool:
            return path.is_relative_to(self.source_dir / "files") or path.is_file()

    base = context_for(resolved.entry, resolved.version, root, pick_source(resolved, None), RecipeOptions())
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    fields["source_dir"], fields["companions"] = dicom, {k: jpg for k in base.companions}
    ctx = IndexOnly(**fields)
    gc.collect()
    stages: dict[str, tuple[int, int]] = {}
    pid = os.getpid()

    def stage(name: str) -> None:
        gc.collect()
        stages[name] = (_rss(), _hwm(pid))
        _reset_peak()

    stage("imports")
    survey = RECIPE.survey(ctx)
    stage("survey")
    plans = {config: RECIPE.plan(config, ctx, survey) for config in RECIPE.CONFIGS}
    stage("plans (record-list pass, study-list index)")
    # What normalize does with the units: take each once (the executor's window holds a few); keep none.
    units = RECIPE.combine_units(plans)
    taken, sample_bytes, sampled = 0, 0, 0
    every = max(1, studies // 2000)
    for unit in units:
        if taken % every == 0:
            sample_bytes += _deep(unit, set())
            sampled += 1
        taken += 1
    del unit
    stage("every combined unit taken once")

    # The build key's stat records: one per DICOM and per loose report, as stat_inputs(..., root=) holds them.
    prefix = f"{dicom.relative_to(root).as_posix()}/"
    inputs = InputFiles(root)
    for n, path in enumerate(_input_paths(survey.labels.studies, prefix)):
        inputs.append(path, 1_000_000 + n, 1_700_000_000_000_000_000 + n, None, None)
    key = BuildKey(inputs=inputs, options={"configs": list(RECIPE.CONFIGS), "source": ctx.source, "recipe": ctx.options.as_json()})
    key_bytes = inputs.nbytes()
    stage("build key inputs")
    out = work / "out" / "mimic-cxr"
    shutil.rmtree(out.parent, ignore_errors=True)
    out.parent.mkdir(parents=True)
    writer = WriterOptions()
    store = ResumeStore(out, _key_text(key, writer))
    stage("resume key (hash of every input's stat)")
    spec = DatasetSpec(source=ctx.source_tag, configs=(), card=CardInfo("MIMIC-CXR", "bench"))
    with DatasetWriter(out, spec, _with_writer_options(key, writer), writer) as dataset:
        written = dataset.close()
    del written, dataset
    stage("writer close (manifest and card written)")
    existing = read_manifest(out)
    assert existing is not None and up_to_date(out, existing, _with_writer_options(key, writer), []) is not None
    stage("next run: manifest read + up-to-date check (held while it rebuilds)")
    del existing, store

    # The survey's parts (what stays on the driver for the whole run), every object once.
    seen: set[int] = set()
    folder = survey.labels
    in_survey = {
        "metadata (studies, views)": _deep(folder.studies, seen),
        "dicom_id -> (split, view): one dict for both": _deep(getattr(folder.split, "_facts", folder.split), seen),
        "dicom_id -> view (before: a dict of its own)": _deep(survey.views, seen),
        "study index (shared by the label files)": _deep(folder.index, seen),
    }
    in_survey.update({f"labels {name} (packed codes)": table.values.nbytes() for name, table in folder.labels.items()})  # type: ignore[attr-defined]
    records = survey.records(ctx)
    in_survey["record-list pass (not fetched, errors)"] = _deep(records, seen)

    return {
        "studies": len(survey.labels.studies), "units": taken, "unit_bytes": sample_bytes / max(1, sampled),
        "stages": stages, "survey": in_survey, "key_files": len(inputs), "key_bytes": key_bytes,
        "manifest_bytes": (out / "medcat-manifest.json").stat().st_size,
    }


def plan_section(work: Path, studies: int) -> list[str]:
    _, _, images = write_index_files(work, studies)  # here, so that the measured child only reads them
    load = os.getloadavg()[0]
    start = time.perf_counter()
    out = subprocess.run(
        [PY, __file__, "--plan-child", str(work), "--plan-studies", str(studies)], check=True, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    got = json.loads(out.stdout.strip().splitlines()[-1])
    stages: dict[str, list[int]] = got["stages"]
    base = stages["imports"][0]
    rows, previous = [], None
    for name, (rss, peak) in stages.items():
        delta = "" if previous is None else f"{(rss - previous) / MIB:+.0f}"
        rows.append(f"| {name} | {rss / MIB:.0f} | {delta} | {'' if previous is None else f'{(peak - base) / MIB:.0f}'} |")
        previous = rss
    run = [name for name in stages if not name.startswith("next run")]
    held = stages[run[-1]][0] - base
    peak_above = max(peak for name in run[1:] for _, peak in [stages[name]]) - base
    return [
        f"#### Driver memory of a MIMIC-CXR-shaped plan: {studies:,} studies, {images:,} DICOMs (no images on disk)",
        "",
        f"Survey, the plans of `reports`, `chexpert` and `negbio`, every unit of `combine_units` taken once and dropped "
        f"(as the executor's window does), the build key's inputs, the resume key, the writer's close (manifest, card), "
        f"then what the next run reads; one fresh process ({seconds:.0f} s, load {load:.1f}). Peak: the stage's own "
        f"(`VmHWM`, reset before each stage), above the imports:",
        "",
        "| after | RSS MiB | change MiB | peak MiB above imports |",
        "|---|---:|---:|---:|",
        *rows,
        "",
        f"Held at the end of the run: **{held / MIB:.0f} MiB** above the imports, peak {peak_above / MIB:.0f} MiB above them "
        f"(target under 300 MB: {'met' if max(held, peak_above) < 300e6 else 'missed'}); {got['units']:,} combined units, "
        f"{got['unit_bytes']:,.0f} bytes each by object sizes (only the executor's window of them is alive).",
        "",
        "The survey (object sizes; held for the whole run):",
        "",
        "| part of the survey | MiB | bytes per study |",
        "|---|---:|---:|",
        *(f"| {name} | {b / MIB:.0f} | {b / studies:,.0f} |" for name, b in got["survey"].items()),
        "",
        f"The build key's stat records (`stat_inputs`, {got['key_files']:,} inputs): {got['key_bytes'] / MIB:.0f} MiB "
        f"({got['key_bytes'] / got['key_files']:.0f} bytes per input); the manifest {got['manifest_bytes'] / MIB:.0f} MiB on disk.",
    ]


# ----------------------------------------------------------------------------------------------


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--studies", type=int, nargs="+", default=[500, 50], help="VinDr-Mammo studies (4 DICOMs each), one run per value")
    parser.add_argument("--size", type=int, default=512, help="VinDr image rows (columns = 0.8 x rows)")
    parser.add_argument("--patients", type=int, default=400, help="MIMIC-CXR-JPG patients")
    parser.add_argument("--jpg-size", type=int, default=1024, help="MIMIC-CXR-JPG image height in pixels (about)")
    parser.add_argument("--plan-studies", type=int, default=227_835, help="studies of the MIMIC-CXR-shaped plan")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=("uncompressed", "j2k", "jpg", "startup", "plan"), action="append")
    parser.add_argument("--work", type=Path, default=None, help="folder for inputs and outputs (kept)")
    parser.add_argument("--plan-child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plan_child is not None:
        print(json.dumps(plan_child(args.plan_child, args.plan_studies)))
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="medcat-bench-executors-"))
    work.mkdir(parents=True, exist_ok=True)
    only = set(args.only or ("uncompressed", "j2k", "jpg", "startup", "plan"))
    def show(lines: list[str]) -> None:
        print("\n".join(lines) + "\n", flush=True)

    if "plan" in only:
        show(plan_section(work / "plan", args.plan_studies))
    if "startup" in only:
        show(startup_section(args.repeat))
    if "jpg" in only:
        show(passthrough_section(work / "jpg", args.patients, args.jpg_size, args.repeat))
    for studies in args.studies:
        for syntax in ("uncompressed", "j2k"):
            if syntax in only:
                show(vindr_section(work / f"vindr-{studies}", studies, args.size, args.repeat, syntax))
    print(f"Machine: {machine()}; load average at the end {os.getloadavg()[0]:.1f}.")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
