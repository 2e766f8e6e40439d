"""Benchmark ``medcat normalize pubmedvision`` on PubMedVision-shaped JSON of growing size: peak RSS must stay flat.

Not a test: run it by hand, then copy the table into ``docs/benchmarks.md`` (## PubMedVision JSON).

For each size (default 100, 300 and 1000 MB of JSON) it:

1. synthesizes, under ``--work`` (default a temporary folder, removed afterwards), a Hub-like
   folder: ``PubMedVision_Alignment_VQA.json`` streamed to disk record by record (upstream's record
   shape: ``id``, 1-3 ``image`` paths, a human/gpt ``conversations`` pair of ~1 kB, ``modality``,
   ``body_part``; pretty-printed like a ``json.dump(indent=...)``), an empty instruction file,
   ``images_0.zip`` with a pool of small distinct JPEGs that the records draw from, and a README;
2. fetches it with ``medcat fetch pubmedvision --mirror file://...`` (the manual-download path:
   size + sha256 recorded), so normalize sees an ordinary verified cache;
3. runs ``medcat normalize pubmedvision --config alignment --jobs J`` as a child process and
   samples ``/proc/<pid>/smaps_rollup`` every 50 ms for the child and all its descendants
   (workers, forkserver): the peak of their summed PSS (shared pages counted once, so the sum is
   the memory the run really holds) and the peak RSS of the largest single process;
   ``ru_maxrss`` of the normalize process itself is reported too.

Images are tiny (about 0.7 kB) so that the JSON path dominates; real figures (~0.1 MB) add about
``UNIT_JSON_BYTES`` worth of records' images per unit in flight (see docs/benchmarks.md).

Usage::

    /work/venv/bin/python bench/pubmedvision.py [--sizes-mb 100,300,1000] [--jobs 2] [--work DIR] [--keep]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

MEDCAT = [str(Path(sys.executable).with_name("medcat"))]
ALIGNMENT = "PubMedVision_Alignment_VQA.json"
INSTRUCTION = "PubMedVision_InstructionTuning_VQA.json"
POOL = 2000
_WORDS = (
    "the figure shows a lesion with enhancement in the left lobe arrow indicates tissue stained cells "
    "microscopy scan axial coronal sagittal margin nodule contrast patient follow-up consistent with"
).split()


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words)).capitalize() + "."


def synthesize(folder: Path, size_bytes: int, seed: int = 0) -> int:
    """Write a PubMedVision-like repo folder whose alignment JSON has about ``size_bytes``; return its record count."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / "images_0.zip", "w") as archive:
        for n in range(POOL):
            out = io.BytesIO()
            Image.new("RGB", (16, 12), (n % 251, (n * 7) % 251, (n * 13) % 251)).save(out, "JPEG", quality=70)
            archive.writestr(f"images/pmc_{n}_0.jpg", out.getvalue())
    count = 0
    with open(folder / ALIGNMENT, "w", encoding="utf-8") as f:
        f.write("[\n")
        while f.tell() < size_bytes:
            record = {
                "id": f"Alignment_VQA_{count}",
                "image": [f"images/pmc_{rng.randrange(POOL)}_0.jpg" for _ in range(rng.choice((1, 1, 1, 2, 3)))],
                "conversations": [
                    {"from": "human", "value": _sentence(rng, rng.randint(8, 30)) + " What does the image show?"},
                    {"from": "gpt", "value": " ".join(_sentence(rng, rng.randint(10, 25)) for _ in range(rng.randint(3, 8)))},
                ],
                "modality": rng.choice(("Computed Tomography", "Microscopy Images", "Others")),
                "body_part": rng.choice(("Brain", "Cell", "Abdomen")),
            }
            f.write((",\n" if count else "") + json.dumps(record, indent=4))
            count += 1
        f.write("\n]\n")
    (folder / INSTRUCTION).write_text("[]\n", encoding="utf-8")
    (folder / "README.md").write_text("synthetic\n", encoding="utf-8")
    return count


def _tree(pid: int) -> list[int]:
    pids, stack = [], [pid]
    while stack:
        p = stack.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as handle:
                    stack.extend(int(c) for c in handle.read().split())
        except OSError:
            continue
    return pids


def _memory_bytes(pid: int) -> tuple[int, int]:
    """Return (RSS, PSS) of one process; PSS shares each shared page among its users, so PSS sums add up."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss, pss


@dataclass
class Run:
    size_mb: int
    json_bytes: int
    records: int
    jobs: int
    seconds: float
    peak_tree_mb: float
    peak_single_mb: float
    ru_maxrss_mb: float


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float, float]:
    """Run ``cmd``; return seconds, peak PSS sum of the process tree, peak RSS of its largest process, ru_maxrss (MB)."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peaks = [0, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            sizes = [_memory_bytes(p) for p in _tree(child.pid)]
            peaks[0] = max(peaks[0], sum(pss for _, pss in sizes))
            peaks[1] = max(peaks[1], max((rss for rss, _ in sizes), default=0))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.stderr is not None
    err = child.stderr.read().decode(errors="replace")
    if child.returncode not in (0, 1):  # 1: items in errors.jsonl (none expected here)
        raise SystemExit(f"{' '.join(cmd)} failed ({child.returncode}):\n{err[-3000:]}")
    return seconds, peaks[0] / 2**20, peaks[1] / 2**20, usage.ru_maxrss / 1024


def run_size(work: Path, size_mb: int, jobs: int) -> Run:
    src, raw, out = work / f"src-{size_mb}", work / f"raw-{size_mb}", work / f"out-{size_mb}"
    records = synthesize(src, size_mb * 1_000_000)
    env = {**os.environ, "MEDCAT_HOME": str(work / "home"), "HF_HOME": str(work / "hf")}
    subprocess.run([*MEDCAT, "fetch", "pubmedvision", "--mirror", src.as_uri(), "--dest", str(raw), "--quiet"], env=env, check=True)
    shutil.rmtree(src)
    seconds, tree, single, maxrss = measure(
        [*MEDCAT, "normalize", "pubmedvision", "--dest", str(raw), "--out", str(out), "--config", "alignment",
         "--jobs", str(jobs), "--quiet"],
        env,
    )
    errors = out / "pubmedvision" / "errors.jsonl"
    bad = sum(1 for _ in open(errors)) if errors.exists() else 0
    if bad:
        raise SystemExit(f"{bad} error(s) in {errors}; the synthetic data should have none")
    run = Run(size_mb, (raw / ALIGNMENT).stat().st_size, records, jobs, seconds, tree, single, maxrss)
    shutil.rmtree(raw)
    shutil.rmtree(out)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes-mb", default="100,300,1000")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="medcat-bench-pmv-"))
    work.mkdir(parents=True, exist_ok=True)
    runs = []
    try:
        for size in (int(s) for s in args.sizes_mb.split(",")):
            run = run_size(work, size, args.jobs)
            runs.append(run)
            print(f"{size} MB done: {run}", file=sys.stderr, flush=True)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print("| JSON size | records | --jobs | seconds | records/s | peak PSS, process tree | peak RSS, largest process | ru_maxrss (normalize process) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in runs:
        print(
            f"| {r.json_bytes / 1e6:,.0f} MB | {r.records:,} | {r.jobs} | {r.seconds:.1f} | {r.records / r.seconds:,.0f} "
            f"| {r.peak_tree_mb:,.0f} MB | {r.peak_single_mb:,.0f} MB | {r.ru_maxrss_mb:,.0f} MB |"
        )
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in runs], indent=1) + "\n")


if __name__ == "__main__":
    main()
