"""Benchmark DICOM conversion: medcat's codec against a plain pydicom + Pillow loop, side by side.

Not a test: it times things. Run on an otherwise idle machine and paste the printed Markdown
into ``docs/benchmarks.md`` (section "Convert")::

    python bench/convert.py                      # throughput, decoders, PNG encoders
    python bench/convert.py --rss                # adds peak RSS for 200 vs 2,000 images
    python bench/convert.py --convert-rss        # adds `medcat convert` peak RSS, 200 vs 2,000 images
    python bench/convert.py --count 5 --size 512 # a quick smoke run

Inputs are synthetic 12-bit DX radiographs (``mirror/synth/dicom.py``), uncompressed and JPEG 2000
lossless, written once under ``--work`` (default: a temporary folder). Bigger runs reuse a few
distinct files through symlinks, so 2,000 images do not need 16 GB of disk.

The "plain loop" is what most scripts do: ``pydicom.dcmread`` -> ``pixel_array`` -> min-max to
8 bits -> ``PIL.Image.save(png)`` with default settings. medcat decodes with
``decode_dicom(window="minmax")``, whose PNGs must decode to exactly the same pixels; the script
checks that on every image and fails loudly otherwise.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless

from medcat_data.converters.codecs.dicom import decode_dicom
from medcat_data.converters.codecs.image import ImageOptions, encode_png
from medcat_data.mirror.synth.dicom import make_dicom

SYNTAXES = {"uncompressed": "1.2.840.10008.1.2.1", "jpeg2000-lossless": JPEG2000Lossless}
DISTINCT_FILES = 4  # distinct synthetic images per syntax; more images are symlinks to these


# --------------------------------------------------------------------------------------------
# Inputs


def make_inputs(work: Path, syntax: str, count: int, size: int) -> list[Path]:
    """Return ``count`` input paths for ``syntax``: a few real files, the rest symlinks to them."""
    folder = work / f"{syntax}-{size}"
    folder.mkdir(parents=True, exist_ok=True)
    distinct = []
    for seed in range(min(DISTINCT_FILES, count)):
        path = folder / f"source-{seed}.dcm"
        if not path.exists():
            make_dicom(path, rows=size, columns=size, bits_stored=12, modality="DX", transfer_syntax=SYNTAXES[syntax], seed=seed)
        distinct.append(path)
    paths = []
    for i in range(count):
        link = folder / f"image-{i:05d}.dcm"
        if not link.exists():
            link.symlink_to(distinct[i % len(distinct)].name)
        paths.append(link)
    return paths


# --------------------------------------------------------------------------------------------
# The two contenders, per image


def plain_loop(path: Path) -> bytes:
    """The baseline: dcmread -> pixel_array -> min-max (float64, rounded) -> Pillow PNG defaults."""
    pixels = pydicom.dcmread(path).pixel_array.astype(np.float64)
    low, high = pixels.min(), pixels.max()
    scaled = np.rint((pixels - low) / (high - low) * 255.0).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(scaled).save(buffer, "PNG")
    return buffer.getvalue()


def medcat_codec(path: Path) -> bytes:
    """medcat: decode_dicom with the min-max window (the same mapping as the plain loop)."""
    return decode_dicom(path, ImageOptions(window="minmax"))[0].data


# ----------------------------------------------------------------------------------------------
# PLUG-IN POINT for the end-to-end comparison (`medcat convert`, --jobs 1 and --jobs 2).
# The writer/CLI work replaces this function with a real run of `medcat convert` over
# `input_dir` into `out_dir` and returns the wall-clock seconds. While it returns None, the
# end-to-end rows are left out of the report; never fill them with estimates.
def run_medcat_convert(input_dir: Path, out_dir: Path, jobs: int) -> float | None:
    """Run ``medcat convert input_dir --out out_dir --jobs N`` in a fresh process; return wall seconds.

    The output folder is removed first (an up-to-date output would make the run a no-op). The
    time includes interpreter start-up and, for ``--jobs 2``, starting the worker pool: what a
    user waits for.
    """
    import shutil

    shutil.rmtree(out_dir, ignore_errors=True)
    command = [sys.executable, "-m", "medcat_data", "convert", str(input_dir), "--out", str(out_dir)]
    start = time.perf_counter()
    subprocess.run([*command, "--jobs", str(jobs), "--window", "minmax", "--quiet"], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def convert_input(paths: list[Path], folder: Path) -> Path:
    """Return a folder holding exactly ``paths`` (as symlinks), the input of one ``medcat convert`` run."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in paths:
        link = folder / path.name
        if not link.exists():
            link.symlink_to(path.resolve())
    return folder


def convert_peak_rss(work: Path, syntax: str, count: int, size: int, jobs: int) -> tuple[float, float]:
    """Run ``medcat convert`` over ``count`` images; return (peak RSS MiB of its largest process, seconds)."""
    folder = convert_input(make_inputs(work, syntax, count, size), work / f"convert-rss-{syntax}-{count}")
    code = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], check=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    out_dir = work / f"out-rss-{syntax}-{count}-j{jobs}"
    command = [sys.executable, "-m", "medcat_data", "convert", str(folder), "--out", str(out_dir), "--jobs", str(jobs), "--quiet"]
    import shutil

    shutil.rmtree(out_dir, ignore_errors=True)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *command], check=True, capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024, time.perf_counter() - start


# ----------------------------------------------------------------------------------------------


def timed(fn: Callable[[Path], bytes], paths: list[Path]) -> tuple[float, float, list[bytes]]:
    """Return (wall seconds, CPU seconds, outputs) of ``fn`` over ``paths``."""
    outputs = []
    wall, cpu = time.perf_counter(), time.process_time()
    for path in paths:
        outputs.append(fn(path))
    return time.perf_counter() - wall, time.process_time() - cpu, outputs


def compare(paths: list[Path], rounds: int) -> dict[str, float | bool]:
    """Time both contenders interleaved over ``rounds`` and check the PNGs are pixel-identical."""
    best = {"plain": float("inf"), "medcat": float("inf")}
    cpu = {"plain": 0.0, "medcat": 0.0}
    identical = True
    sizes = {"plain": 0, "medcat": 0}
    for _ in range(rounds):
        for name, fn in (("plain", plain_loop), ("medcat", medcat_codec)):
            wall, used, outputs = timed(fn, paths)
            if wall < best[name]:
                best[name], cpu[name] = wall, used
            sizes[name] = sum(len(o) for o in outputs)
            if name == "plain":
                reference = [np.asarray(Image.open(io.BytesIO(o))) for o in outputs]
            else:
                identical &= all(np.array_equal(np.asarray(Image.open(io.BytesIO(o))), r) for o, r in zip(outputs, reference))
    n = len(paths)
    return {
        "plain_img_s": n / best["plain"],
        "medcat_img_s": n / best["medcat"],
        "speedup": best["plain"] / best["medcat"],
        "plain_cpu_ms": 1000 * cpu["plain"] / n,
        "medcat_cpu_ms": 1000 * cpu["medcat"] / n,
        "plain_png_mb": sizes["plain"] / n / 1e6,
        "medcat_png_mb": sizes["medcat"] / n / 1e6,
        "identical": identical,
    }


def decoder_table(work: Path, size: int, rounds: int) -> list[tuple[str, str, float, float]]:
    """Time every installed pydicom decoding plugin per compressed syntax: (syntax, plugin, wall ms, cpu ms)."""
    rows = []
    for label, uid in (("JPEG 2000 lossless", JPEG2000Lossless), ("JPEG-LS lossless", JPEGLSLossless)):
        path = work / f"decoders-{uid}-{size}.dcm"
        if not path.exists():
            try:
                make_dicom(path, rows=size, columns=size, bits_stored=12, transfer_syntax=uid, seed=0)
            except Exception as err:  # an encoder that is not installed: say so in the table
                rows.append((label, f"(cannot encode: {err})", float("nan"), float("nan")))
                continue
        ds = pydicom.dcmread(path)
        for plugin in pydicom.pixels.get_decoder(uid).available_plugins:
            walls, cpus = [], []
            for _ in range(rounds):
                wall, cpu = time.perf_counter(), time.process_time()
                pydicom.pixels.pixel_array(ds, decoding_plugin=plugin)
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
            rows.append((label, plugin, 1000 * min(walls), 1000 * min(cpus)))
    return rows


def encoder_table(work: Path, size: int, rounds: int) -> list[tuple[str, float, float]]:
    """Time PNG encoders on one min-max 8-bit radiograph: (setting, ms, MB)."""
    path = make_inputs(work, "uncompressed", 1, size)[0]
    stored = pydicom.dcmread(path).pixel_array.astype(np.float64)
    pixels = np.rint((stored - stored.min()) / (stored.max() - stored.min()) * 255.0).astype(np.uint8)
    image = Image.fromarray(pixels)

    def pillow(**kwargs: int) -> Callable[[], bytes]:
        def run() -> bytes:
            buffer = io.BytesIO()
            image.save(buffer, "PNG", **kwargs)
            return buffer.getvalue()

        return run

    settings: list[tuple[str, Callable[[], bytes]]] = [
        ("Pillow default (level 6, adaptive filters)", pillow()),
        ("Pillow compress_level=1", pillow(compress_level=1)),
        ("Pillow compress_level=1, Z_RLE", pillow(compress_level=1, compress_type=3)),
        ("medcat encode_png (Sub filter, level 1, Z_RLE)", lambda: encode_png(pixels)),
    ]
    rows = []
    for name, run in settings:
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            data = run()
            times.append(time.perf_counter() - start)
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), pixels)
        rows.append((name, 1000 * min(times), len(data) / 1e6))
    return rows


def peak_rss(work: Path, syntax: str, count: int, size: int) -> float:
    """Run decode_dicom over ``count`` images in a fresh process; return its peak RSS in MiB."""
    paths = make_inputs(work, syntax, count, size)
    listing = work / f"rss-{syntax}-{count}.json"
    listing.write_text(json.dumps([str(p) for p in paths]))
    code = (
        "import json, resource, sys\n"
        "from pathlib import Path\n"
        "from medcat_data.converters.codecs.dicom import decode_dicom\n"
        "from medcat_data.converters.codecs.image import ImageOptions\n"
        "for p in json.load(open(sys.argv[1])):\n"
        "    decode_dicom(Path(p), ImageOptions())\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(listing)], check=True, capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "?")
    import pylibjpeg  # noqa: F401  (versions for the record)

    versions = {name: _version(name) for name in ("pydicom", "numpy", "Pillow", "pylibjpeg-openjpeg", "pyjpegls")}
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + f", load average {os.getloadavg()[0]:.2f}"
    )


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def scaling_table(work: Path, count: int, size: int, rounds: int) -> None:
    """Print `medcat convert --jobs 1` vs `--jobs 2` (fresh processes, interleaved, median of ``rounds``)."""
    import statistics

    print(f"Machine: {machine()}\n")
    print(f"`medcat convert` of {count} images of {size}x{size}, median of {rounds} interleaved runs:\n")
    print("| input | --jobs 1 s | --jobs 2 s | jobs 2 / jobs 1 | load average after |")
    print("|---|---|---|---|---|")
    for syntax in SYNTAXES:
        folder = convert_input(make_inputs(work, syntax, count, size), work / f"scaling-{syntax}-{count}")
        times: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(rounds):
            for jobs in (1, 2):
                seconds = run_medcat_convert(folder, work / f"scaling-out-{syntax}-j{jobs}", jobs)
                assert seconds is not None
                times[jobs].append(seconds)
        one, two = statistics.median(times[1]), statistics.median(times[2])
        print(f"| {syntax} | {one:.1f} | {two:.1f} | {one / two:.2f}x | {os.getloadavg()[0]:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10, help="images per syntax in the throughput runs")
    parser.add_argument("--size", type=int, default=2048, help="rows = columns of the synthetic images")
    parser.add_argument("--rounds", type=int, default=3, help="repeat each timing, keep the best")
    parser.add_argument("--rss", action="store_true", help="also measure peak RSS for 200 vs 2,000 images")
    parser.add_argument("--convert-rss", action="store_true", help="also measure `medcat convert` peak RSS, 200 vs 2,000 images")
    parser.add_argument("--work", type=Path, default=None, help="folder for the generated inputs (kept)")
    parser.add_argument("--scaling", type=int, default=None, metavar="N",
                        help="only the --jobs 1 vs --jobs 2 table: `medcat convert` of N images per syntax, runs interleaved")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="medcat-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.scaling:
        scaling_table(work, args.scaling, args.size, args.rounds)
        return

    print(f"Machine: {machine()}\n")
    print(f"Throughput, single process, {args.count} images of {args.size}x{args.size} 12-bit DX, best of {args.rounds}:\n")
    print("| input | plain loop img/s | medcat img/s | speed-up | CPU ms/img plain / medcat | PNG MB/img plain / medcat | pixel-identical |")
    print("|---|---|---|---|---|---|---|")
    failed = False
    for syntax in SYNTAXES:
        paths = make_inputs(work, syntax, args.count, args.size)
        r = compare(paths, args.rounds)
        failed |= not r["identical"]
        print(
            f"| {syntax} | {r['plain_img_s']:.2f} | {r['medcat_img_s']:.2f} | {r['speedup']:.1f}x | "
            f"{r['plain_cpu_ms']:.0f} / {r['medcat_cpu_ms']:.0f} | {r['plain_png_mb']:.2f} / {r['medcat_png_mb']:.2f} | "
            f"{'yes' if r['identical'] else 'NO'} |"
        )
        for jobs in (1, 2):
            folder = convert_input(paths, work / f"convert-{syntax}-{args.count}")
            seconds = run_medcat_convert(folder, work / f"out-{syntax}-j{jobs}", jobs)
            if seconds is not None:
                print(f"| {syntax}, `medcat convert --jobs {jobs}` | | {args.count / seconds:.2f} | | | | |")

    print(f"\nDecoders per transfer syntax (one {args.size}x{args.size} image, best of {args.rounds}; CPU > wall means threads):\n")
    print("| syntax | plugin | wall ms | CPU ms |")
    print("|---|---|---|---|")
    for label, plugin, wall, cpu in decoder_table(work, args.size, args.rounds):
        print(f"| {label} | {plugin} | {wall:.0f} | {cpu:.0f} |")

    print(f"\nPNG encoders (the same {args.size}x{args.size} 8-bit image, lossless, best of {args.rounds}):\n")
    print("| setting | ms | MB |")
    print("|---|---|---|")
    for name, ms, mb in encoder_table(work, args.size, args.rounds):
        print(f"| {name} | {ms:.0f} | {mb:.2f} |")

    if args.rss:
        print("\nPeak RSS of decode_dicom over N images, fresh process each:\n")
        print("| input | 200 images MiB | 2,000 images MiB | growth |")
        print("|---|---|---|---|")
        for syntax in SYNTAXES:
            small, large = peak_rss(work, syntax, 200, args.size), peak_rss(work, syntax, 2000, args.size)
            print(f"| {syntax} | {small:.0f} | {large:.0f} | {100 * (large / small - 1):+.1f}% |")
    if args.convert_rss:
        print("\nPeak RSS of `medcat convert` (largest process of the run), uncompressed input:\n")
        print("| --jobs | 200 images MiB | 2,000 images MiB | growth | img/s at 2,000 |")
        print("|---|---|---|---|---|")
        for jobs in (1, 2):
            (small, _), (large, seconds) = (convert_peak_rss(work, "uncompressed", n, args.size, jobs) for n in (200, 2000))
            print(f"| {jobs} | {small:.0f} | {large:.0f} | {100 * (large / small - 1):+.1f}% | {2000 / seconds:.2f} |")
    if failed:
        raise SystemExit("medcat PNGs differ from the plain loop's pixels")


if __name__ == "__main__":
    main()
