"""Benchmark obtaining the figures of N LLaVA-Med records: ``medcat fetch llava-med`` against the official route.

Not a test: run it by hand, then copy the table into ``docs/benchmarks.md`` (## LLaVA-Med figures).

It builds, under ``--work`` (default a temporary folder, removed afterwards), a scaled synthetic
mirror root and serves it with ``MirrorServer`` on 127.0.0.1:

* a PMC bucket in the per-article cloud layout (as ``datasets/pmc_oa/replica.py`` lays it out) of
  ``--articles`` articles, each with a JATS-like XML of about 100 kB, a PDF of 1-2 MB and 4-8
  figures of 100-400 kB (random bytes between JPEG start and end markers, so neither gzip nor the
  transfer can shrink them), ``metadata/PMC<id>.1.json`` listing them with their md5;
* the article's legacy package ``pub/pmc/oa_package/<xx>/<yy>/PMC<id>.tar.gz`` (``PMC<id>/`` with
  the XML, the PDF and the figures, gzip level 6): what the official route downloads;
* the record host ``med_llava/...``: an alignment file of ``max(--records)`` records (1-3 figures
  per article, in article order, so the first N records name figures of about N/2 articles), the
  other record files empty, and ``llava_med_image_urls.jsonl`` with one line per figure of the bucket.

Then, for each N in ``--records``, ``--repeats`` rounds, the two contenders interleaved and each a
fresh process with a fresh destination:

* **medcat**: ``medcat fetch llava-med --mirror URL --limit N --accept-license --json`` (the record
  files and URL list, then per article one listing and its metadata record, then only the named
  figures, md5-verified; default ``--jobs``);
* **official route**: this file's ``official`` sub-command, emulating LLaVA-Med's
  ``download_images.py``: download the record file and the URL list, then, serially with
  ``urllib.request.urlretrieve``, each referenced article's package once, untar it into a temporary
  folder and copy the figure(s). (Upstream fetches once per URL-list *line*, so an article with k
  figures is downloaded k times; the emulation downloads it once, in the official route's favour;
  the per-line bytes are printed too.)

Bytes are counted by the mirror (body bytes sent, all requests of the run) and by each client (the
``bytes_transferred`` of medcat's report; the file sizes the emulation received).

Usage::

    .venv/bin/python bench/llava_med.py [--records 200,1000] [--repeats 3] [--work DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medcat_data.mirror.server import MirrorServer

HOST = "med_llava"
RECORD_FILE = "alignment/llava_med_alignment_500k.json"
URL_LIST = "llava_med_image_urls.jsonl"
EMPTY = {
    "instruct/llava_med_instruct_10k.json": "[]",
    "instruct/llava_med_instruct_60k.json": "[]",
    "instruct/llava_med_instruct_60k_inline_mention.json": "[]",
    "instruct/llava_med_instruct_fig_captions.json": "{}",
    "eval/llava_med_eval_qa50_qa.jsonl": "",
}
FIRST_PMCID = 7000000
_WORDS = ("the", "lesion", "cohort", "increased", "patients", "figure", "axial", "enhancement", "margin", "of", "and",
          "serum", "values", "were", "measured", "in", "controls", "follow-up", "significant", "tissue")


# -- the synthetic mirror root ---------------------------------------------------------------------

def _xml(rng: random.Random, pmcid: str, figures: list[str], size: int) -> bytes:
    figs = "".join(f'<fig id="F{i}"><label>Figure {i}</label><caption><p>Figure {i}.</p></caption>'
                   f'<graphic xlink:href="{name[:-4]}"/></fig>' for i, name in enumerate(figures, 1))
    head = ('<?xml version="1.0" encoding="UTF-8"?>\n<article xmlns:xlink="http://www.w3.org/1999/xlink">'
            f'<front><article-meta><article-id pub-id-type="pmc">{pmcid}</article-id></article-meta></front><body>')
    paragraphs: list[str] = []
    length = len(head) + len(figs)
    while length < size:
        paragraph = "<p>" + " ".join(rng.choice(_WORDS) for _ in range(60)) + ".</p>\n"
        paragraphs.append(paragraph)
        length += len(paragraph)
    return (head + "".join(paragraphs) + figs + "</body></article>\n").encode()


def _write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def package_path(pmcid: str) -> str:
    """The legacy package's path (as in the URL list's ``pmc_tar_url``, host left out)."""
    return f"pub/pmc/oa_package/{pmcid[-2:]}/{pmcid[-4:-2]}/{pmcid}.tar.gz"


@dataclass
class Corpus:
    articles: int
    records: list[tuple[str, str, str]] = field(default_factory=list)  # (pair_id, pmcid, figure name), record order
    package_bytes: dict[str, int] = field(default_factory=dict)
    figure_bytes: dict[tuple[str, str], int] = field(default_factory=dict)
    bucket_bytes: int = 0
    url_lines: int = 0


def build(root: Path, articles: int, records: int, seed: int = 0) -> Corpus:
    """Write the bucket, the packages and the record host under ``root``."""
    rng = random.Random(seed)
    corpus = Corpus(articles)
    url_lines: list[str] = []
    for k in range(articles):
        pmcid, prefix = f"PMC{FIRST_PMCID + k}", f"PMC{FIRST_PMCID + k}.1"
        names = [f"med-{k:05d}-g{i:03d}.jpg" for i in range(1, rng.randint(4, 8) + 1)]
        figures = {n: b"\xff\xd8\xff\xe0" + rng.randbytes(rng.randint(100_000, 400_000)) + b"\xff\xd9" for n in names}
        xml = _xml(rng, pmcid, names, rng.randint(90_000, 110_000))
        pdf = b"%PDF-1.7\n" + rng.randbytes(rng.randint(1_000_000, 2_000_000)) + b"\n%%EOF\n"
        folder = root / prefix
        media = [f"s3://pmc-oa-opendata/{prefix}/{n}?md5={_write(folder / n, data)}" for n, data in figures.items()]
        meta = {
            "pmcid": pmcid, "version": 1, "pmid": 30000000 + k, "doi": f"10.5555/bench.{k}", "mid": None,
            "title": f"A synthetic study ({pmcid})", "citation": "Synthetic J. 2026", "is_pmc_openaccess": True,
            "is_manuscript": False, "is_historical_ocr": False, "is_retracted": False, "license_code": "CC BY",
            "xml_url": f"s3://pmc-oa-opendata/{prefix}/{prefix}.xml?md5={_write(folder / f'{prefix}.xml', xml)}",
            "pdf_url": f"s3://pmc-oa-opendata/{prefix}/{prefix}.pdf?md5={_write(folder / f'{prefix}.pdf', pdf)}",
            "media_urls": sorted(media),
        }
        _write(root / "metadata" / f"{prefix}.json", (json.dumps(meta, indent=2) + "\n").encode())
        corpus.bucket_bytes += len(xml) + len(pdf) + sum(map(len, figures.values()))
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
            for name, data in [(f"{prefix}.xml", xml), (f"{prefix}.pdf", pdf), *figures.items()]:
                info = tarfile.TarInfo(f"{pmcid}/{name}")
                info.size, info.mtime = len(data), 1_700_000_000
                tar.addfile(info, io.BytesIO(data))
        _write(root / package_path(pmcid), buffer.getvalue())
        corpus.package_bytes[pmcid] = len(buffer.getvalue())
        for i, name in enumerate(names, 1):
            pair = f"{30000000 + k}_F{i}"
            corpus.figure_bytes[(pmcid, name)] = len(figures[name])
            url_lines.append(json.dumps({"pmc_tar_url": f"https://ftp.ncbi.nlm.nih.gov/{package_path(pmcid)}",
                                         "image_file_path": f"{pmcid}/{name}", "pair_id": pair}))
        for i in sorted(rng.sample(range(1, len(names) + 1), rng.randint(1, 3))):
            corpus.records.append((f"{30000000 + k}_F{i}", pmcid, names[i - 1]))
    if len(corpus.records) < records:
        raise SystemExit(f"{articles} articles give {len(corpus.records)} records, fewer than {records}; raise --articles")
    corpus.records = corpus.records[:records]
    host = root / HOST
    conversations = [{"id": pair, "image": f"{pair}.jpg", "conversations": [
        {"from": "human", "value": "<image>\nWhat does the figure show?"},
        {"from": "gpt", "value": " ".join(rng.choice(_WORDS) for _ in range(40)) + "."}]} for pair, _, _ in corpus.records]
    _write(host / RECORD_FILE, json.dumps(conversations).encode())
    for path, text in EMPTY.items():
        _write(host / path, text.encode())
    _write(host / URL_LIST, ("\n".join(url_lines) + "\n").encode())
    corpus.url_lines = len(url_lines)
    return corpus


# -- the official route, emulated (run as a fresh process) -------------------------------------------

def official(mirror: str, records: int, out: Path) -> dict[str, int]:
    """Download the record file and the URL list, then each article's package once; untar; copy the figures."""
    received = 0
    out.mkdir(parents=True, exist_ok=True)
    for path in (RECORD_FILE, URL_LIST):
        local, _ = urllib.request.urlretrieve(f"{mirror}/{HOST}/{path}", out / Path(path).name)
        received += Path(local).stat().st_size
    ids = [r["id"] for r in json.loads((out / Path(RECORD_FILE).name).read_text(encoding="utf-8"))[:records]]
    wanted = set(ids)
    lines = [json.loads(line) for line in (out / URL_LIST).read_text(encoding="utf-8").splitlines() if line.strip()]
    by_package: dict[str, list[str]] = {}
    for line in lines:
        if line["pair_id"] in wanted:
            by_package.setdefault(line["pmc_tar_url"], []).append(line["image_file_path"])
    images, copied = out / "images", 0
    images.mkdir(exist_ok=True)
    for url, paths in by_package.items():
        package = out / "pmc_articles" / url.rsplit("/", 1)[-1]
        package.parent.mkdir(exist_ok=True)
        local, _ = urllib.request.urlretrieve(mirror + "/" + url.split("/", 3)[3], package)
        received += package.stat().st_size
        with tempfile.TemporaryDirectory(dir=out) as tmp, tarfile.open(package) as tar:
            tar.extractall(tmp, filter="data")
            for path in paths:
                shutil.copyfile(Path(tmp) / path, images / path.split("/", 1)[1])
                copied += 1
        package.unlink()
    return {"bytes": received, "figures": copied, "packages": len(by_package)}


# -- measuring -------------------------------------------------------------------------------------

@dataclass
class Run:
    route: str
    records: int
    seconds: float
    server_bytes: int
    client_bytes: int
    figures: int
    requests: dict[str, int]


def _server_bytes(server: MirrorServer) -> int:
    return sum(r.bytes_sent for r in server.requests)


def _requests(server: MirrorServer) -> dict[str, int]:
    """Count the run's requests by kind: record host, bucket listing, metadata record, figure, package, other."""
    kinds: dict[str, int] = {}
    for r in server.requests:
        kind = ("records" if r.path.startswith(f"/{HOST}/") else "listing" if r.path == "/" else
                "metadata" if r.path.startswith("/metadata/") else "package" if r.path.endswith(".tar.gz") else
                "figure" if r.path.endswith(".jpg") else "other")
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def run_medcat(server: MirrorServer, url: str, work: Path, n: int, tag: str) -> Run:
    env = {**os.environ, "MEDCAT_HOME": str(work / f"home-{tag}"), "HF_HOME": str(work / f"hf-{tag}")}
    dest = work / f"medcat-{tag}"
    cmd = [str(Path(sys.executable).with_name("medcat")), "fetch", "llava-med", "--mirror", url, "--dest", str(dest),
           "--limit", str(n), "--accept-license", "--json"]
    server.clear_log()
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}\n{done.stdout[-2000:]}")
    report = json.loads(done.stdout)
    figures = sum(1 for _ in (dest / "pmc").glob("PMC*/*.jpg"))
    run = Run("medcat", n, seconds, _server_bytes(server), int(report.get("bytes_transferred", 0)), figures,
              _requests(server))
    shutil.rmtree(dest)
    shutil.rmtree(env["MEDCAT_HOME"], ignore_errors=True)
    return run


def run_official(server: MirrorServer, url: str, work: Path, n: int, tag: str) -> Run:
    out = work / f"official-{tag}"
    cmd = [sys.executable, str(Path(__file__).resolve()), "official", "--mirror", url, "--records", str(n), "--out", str(out)]
    server.clear_log()
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"official route failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout)
    shutil.rmtree(out)
    return Run("official", n, seconds, _server_bytes(server), result["bytes"], result["figures"], _requests(server))


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _proxy(upstream: str, rtt_ms: float, mbit: float) -> tuple[subprocess.Popen[str], str]:
    """Start ``bench/latency_proxy.py`` in front of the mirror; return it and its URL."""
    cmd = [sys.executable, str(Path(__file__).with_name("latency_proxy.py")), "--upstream", upstream.split("//", 1)[1],
           "--rtt-ms", str(rtt_ms), "--mbit", str(mbit)]
    proxy = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proxy.stdout is not None
    port = proxy.stdout.readline().split()[1]
    return proxy, f"http://127.0.0.1:{port}"


def _table(sizes: list[int], runs: list[Run], corpus: Corpus) -> None:
    print("| records | articles | route | figures | MB sent by the mirror | MB, client's count | seconds, median (min-max) |"
          " bytes, official / medcat | time, official / medcat |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        picked = corpus.records[:n]
        arts = {p for _, p, _ in picked}
        mine = {route: [r for r in runs if r.route == route and r.records == n] for route in ("official", "medcat")}
        median = {route: (statistics.median(r.seconds for r in rs), statistics.median(r.server_bytes for r in rs))
                  for route, rs in mine.items()}
        for route, rs in mine.items():
            seconds, sent = median[route]
            ratios = ("", "") if route == "official" else (
                f"**{median['official'][1] / sent:.1f}x**", f"**{median['official'][0] / seconds:.2f}x**")
            print(f"| {n:,} | {len(arts):,} | {route} | {rs[0].figures:,} | {sent / 1e6:,.1f} | {rs[0].client_bytes / 1e6:,.1f} "
                  f"| {seconds:.2f} ({min(r.seconds for r in rs):.2f}-{max(r.seconds for r in rs):.2f}) | {ratios[0]} | {ratios[1]} |")
    for n in sizes:
        picked = corpus.records[:n]
        arts = {p for _, p, _ in picked}
        figure_bytes = sum(corpus.figure_bytes[(p, f)] for _, p, f in picked)
        per_line = sum(corpus.package_bytes[p] for _, p, _ in picked)
        package = sum(corpus.package_bytes[p] for p in arts)
        print(f"\nN={n}: the figures {figure_bytes / 1e6:,.1f} MB; the packages of their {len(arts)} articles "
              f"{package / 1e6:,.1f} MB ({package / figure_bytes:.1f}x); one package per record, as upstream's loop "
              f"downloads, {per_line / 1e6:,.1f} MB ({per_line / figure_bytes:.1f}x)")
    whole = sum(corpus.package_bytes.values())
    print(f"bucket: {corpus.articles} articles, {corpus.bucket_bytes / 1e6:,.0f} MB of files, {whole / 1e6:,.0f} MB of "
          f"packages; all figures {sum(corpus.figure_bytes.values()) / 1e6:,.0f} MB; {corpus.url_lines:,} URL-list lines")
    for n in sizes:
        for route in ("official", "medcat"):
            first = next(r for r in runs if r.route == route and r.records == n)
            print(f"requests, {route}, N={n}: {first.requests}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    emulate = sub.add_parser("official", help="The official route, emulated (used by the benchmark).")
    emulate.add_argument("--mirror", required=True)
    emulate.add_argument("--records", type=int, required=True)
    emulate.add_argument("--out", type=Path, required=True)
    parser.add_argument("--records", default="200,1000")
    parser.add_argument("--articles", type=int, default=None, help="Bucket articles (default: 0.55 x the largest --records).")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="Put bench/latency_proxy.py with this round trip in front.")
    parser.add_argument("--mbit", type=float, default=100.0, help="The proxy's shared rate per direction (with --rtt-ms).")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="Also write the runs here.")
    args = parser.parse_args()
    if args.command == "official":
        print(json.dumps(official(args.mirror.rstrip("/"), args.records, args.out)))
        return

    from medcat_data.mirror.server import MirrorServer

    sizes = [int(s) for s in args.records.split(",")]
    articles = args.articles or max(sizes) * 11 // 20
    work = args.work or Path(tempfile.mkdtemp(prefix="medcat-bench-llava-"))
    root = work / "root"
    runs: list[Run] = []
    proxy = None
    try:
        start = time.perf_counter()
        corpus = build(root, articles, max(sizes))
        print(f"built {articles} articles in {time.perf_counter() - start:.0f} s; load {_load()}", file=sys.stderr, flush=True)
        with MirrorServer(root) as server:
            url = server.url
            if args.rtt_ms > 0:
                proxy, url = _proxy(server.url, args.rtt_ms, args.mbit)
            print(f"load average at the start: {_load()}")
            for repeat in range(args.repeats):
                for n in sizes:
                    pair = [run_medcat, run_official] if repeat % 2 == 0 else [run_official, run_medcat]
                    for runner in pair:
                        run = runner(server, url, work, n, f"{n}-{repeat}")
                        runs.append(run)
                        print(f"{run}; load {_load()}", file=sys.stderr, flush=True)
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait()
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"load average at the end: {_load()}")
    link = f"latency proxy, {args.rtt_ms:g} ms round trip, {args.mbit:g} Mbit/s shared" if args.rtt_ms > 0 else "loopback"
    print(f"link: {link}; {args.repeats} rounds, interleaved\n")
    _table(sizes, runs, corpus)
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in runs], indent=1) + "\n")


if __name__ == "__main__":
    main()
