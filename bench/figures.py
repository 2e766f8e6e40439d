"""Benchmark the pmc-oa ``figures`` config against a plain lxml loop extracting the same fields.

Not a test: it times things. Run on an otherwise idle machine and paste the printed Markdown into
``docs/benchmarks.md`` (section "PMC figures")::

    python bench/figures.py                    # 600 articles, about 1,200 figures
    python bench/figures.py --copies 10        # a quick smoke run

Inputs: the pmc-oa replica (``datasets/pmc_oa/replica.py``, 10 articles in the per-article cloud
layout) copied ``--copies`` times under new PMCIDs into a fetched-dataset folder, each article's
body padded with ``--paragraphs`` filler paragraphs (real articles are tens of kB of XML) and each
figure a ``--image-px`` square JPEG (real PMC figures are tens to hundreds of kB).

* **medcat**: ``normalize(...)`` of config ``figures`` (``--jobs 1``, then ``--jobs 2``): plan,
  JATS extraction, image check, parquet shards, card, manifest, errors.jsonl.
* **recipe alone**: the recipe's ``plan`` and ``convert_unit`` in this process, rows discarded
  (what the recipe costs without the shared executor, Arrow encoding and writer).
* **plain loop**: one process reading each article's metadata record and XML with lxml (the same
  parser settings), and per ``<fig>``: id, label, caption, href, the matching ``.jpg`` bytes, and
  the sentences of body paragraphs whose fig xrefs name it (one regex split); rows kept in a list,
  nothing written.

Both rates are figures per second over the same input; the target is medcat ``--jobs 1`` >= 0.8x
the plain loop.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from lxml import etree
from PIL import Image

from medcat_data.catalog.refs import resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.converters.normalize import NormalizeRequest, normalize
from medcat_data.datasets.pmc_oa import replica

XLINK = "{http://www.w3.org/1999/xlink}href"
FILLER = (
    "<p>Participants were recruited between 2019 and 2023 from three centres. Measurements were repeated "
    "twice by blinded observers, and the mean of both readings was analysed. Missing values were handled "
    "by multiple imputation with twenty data sets, e.g. for laboratory values. Results were pooled with "
    "Rubin's rules and reported with 95% confidence intervals.</p>"
)


def make_corpus(work: Path, copies: int, paragraphs: int, image_px: int) -> tuple[Path, int]:
    """Write the enlarged corpus under ``work/raw``; return the folder and its figure count."""
    seedroot = work / "replica"
    replica.build(seedroot)
    raw = work / "raw"
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, size=(image_px, image_px, 3), dtype=np.uint8)).save(buffer, "JPEG", quality=85)
    jpeg = buffer.getvalue()
    pad = FILLER * paragraphs
    figures = 0
    # The newest version of each article only: both runs then read exactly the same articles.
    newest: dict[str, Path] = {}
    for path in sorted((seedroot / "metadata").glob("PMC*.json"), key=lambda p: int(p.stem.split(".")[1])):
        newest[path.stem.split(".")[0]] = path
    records = sorted(newest.values())
    for copy in range(copies):
        for record_path in records:
            meta = json.loads(record_path.read_text())
            old = f"{meta['pmcid']}.{meta['version']}"
            number = int(meta["pmcid"][3:]) + 1_000_000 * (copy + 1)
            new = f"PMC{number}.{meta['version']}"
            folder = raw / new
            folder.mkdir(parents=True, exist_ok=True)
            for item in (seedroot / old).iterdir():
                if item.suffix == ".jpg":
                    (folder / item.name).write_bytes(jpeg)
                elif item.suffix == ".gif":
                    shutil.copyfile(item, folder / item.name)
            xml = (seedroot / old / f"{old}.xml").read_text().replace(meta["pmcid"], f"PMC{number}")
            xml = xml.replace("<body><sec><title>Results</title>", "<body><sec><title>Results</title>" + pad, 1)
            (folder / f"{new}.xml").write_text(xml)
            figures += xml.count("<fig ")
            meta.update(pmcid=f"PMC{number}", xml_url=f"s3://pmc-oa-opendata/{new}/{new}.xml")
            (raw / "metadata").mkdir(exist_ok=True)
            (raw / "metadata" / f"{new}.json").write_text(json.dumps(meta))
    return raw, figures


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")


def plain_loop(raw: Path) -> int:
    """Extract the same fields with a straightforward lxml loop; return the figure rows made."""
    parser = etree.XMLParser(load_dtd=False, no_network=True, resolve_entities=False)
    rows = []
    for record_path in sorted((raw / "metadata").glob("PMC*.json")):
        meta = json.loads(record_path.read_text())
        prefix = record_path.stem
        folder = raw / prefix
        root = etree.parse(str(folder / f"{prefix}.xml"), parser).getroot()
        mentions: dict[str, list[str]] = {}
        for p in root.iter("p"):
            if p.find(".//xref[@ref-type='fig']") is None or next(p.iterancestors("fig", "caption", "fig-group"), None) is not None:
                continue
            for sentence in _SENTENCE.split("".join(p.itertext())):
                for xref in p.iterfind(".//xref[@ref-type='fig']"):
                    if (xref.text or "") in sentence:
                        for rid in (xref.get("rid") or "").split():
                            mentions.setdefault(rid, []).append(" ".join(sentence.split()))
        names = {n.lower(): n for n in os.listdir(folder)}
        for fig in root.iter("fig"):
            graphic = fig.find(".//graphic")
            href = graphic.get(XLINK) if graphic is not None else ""
            stem = (href or "").rsplit(".", 1)[0].lower() if (href or "").lower().endswith((".jpg", ".tif")) else (href or "").lower()
            name = names.get(stem + ".jpg")
            if name is None:
                continue
            rows.append({
                "image": (folder / name).read_bytes(),
                "caption": " ".join("".join(fig.find("caption").itertext()).split()) if fig.find("caption") is not None else "",
                "inline_mentions": mentions.get(fig.get("id") or "", []),
                "article_id": meta["pmcid"],
                "figure_label": fig.findtext("label"),
                "figure_id": fig.get("id"),
                "license": meta.get("license_code"),
                "pmid": meta.get("pmid"),
                "doi": meta.get("doi"),
                "retracted": meta.get("is_retracted"),
            })
    return len(rows)


def recipe_alone(raw: Path) -> int:
    """Run the recipe's plan and convert_unit in-process, rows discarded (no encoding, no writer)."""
    from medcat_data.converters.recipe import RecipeContext
    from medcat_data.converters.units import Row
    from medcat_data.datasets.pmc_oa.recipe import RECIPE

    ctx = RecipeContext("pmc-oa", "current", raw, "pmc", raw)
    rows = 0
    for unit in RECIPE.plan("figures", ctx, RECIPE.survey(ctx)).units:
        rows += sum(1 for item in RECIPE.convert_unit(unit) if isinstance(item, Row))
    return rows


def run_medcat(raw: Path, out: Path, jobs: int) -> int:
    resolved = resolve("pmc-oa", load_registry())
    result = normalize(NormalizeRequest(resolved, out, dest=raw, jobs=jobs))
    return sum(n for per in result.write.rows.values() for n in per.values())


def timed(label: str, fn, repeats: int) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    best = float("inf")
    count = 0
    for _ in range(repeats):
        start = time.perf_counter()
        count = fn()
        best = min(best, time.perf_counter() - start)
    print(f"  {label}: {count} figures, best of {repeats}: {best:.2f} s", file=sys.stderr)
    return best, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=60, help="copies of the 10-article replica")
    parser.add_argument("--paragraphs", type=int, default=40, help="filler paragraphs per article body")
    parser.add_argument("--image-px", type=int, default=256, help="side of each figure JPEG")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="medcat-bench-figures-"))
    os.environ.setdefault("MEDCAT_HOME", str(work / "home"))
    os.environ.setdefault("HF_HOME", str(work / "hf"))
    raw, figures = make_corpus(work, args.copies, args.paragraphs, args.image_px)
    articles = len(list((raw / "metadata").glob("*.json")))
    xml_kb = sum(p.stat().st_size for p in raw.glob("PMC*/*.xml")) / articles / 1024
    jpg_kb = next(p for p in raw.glob("PMC*/*.jpg")).stat().st_size / 1024
    print(f"corpus: {articles} articles, {figures} <fig>, XML {xml_kb:.0f} kB/article, JPEG {jpg_kb:.0f} kB", file=sys.stderr)

    plain_s, plain_n = timed("plain lxml loop", lambda: plain_loop(raw), args.repeats)
    alone_s, alone_n = timed("recipe alone", lambda: recipe_alone(raw), args.repeats)
    runs = {}
    for jobs in (1, 2):
        def once(jobs: int = jobs) -> int:
            out = work / f"out-{jobs}"
            shutil.rmtree(out, ignore_errors=True)
            return run_medcat(raw, out, jobs)
        runs[jobs] = timed(f"medcat normalize --jobs {jobs}", once, args.repeats)

    plain_rate = plain_n / plain_s
    print(f"\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"Corpus: {articles} articles, {plain_n} figures with a .jpg, {xml_kb:.0f} kB XML/article, {jpg_kb:.0f} kB JPEG/figure\n")
    print("| run | figures | seconds (best of %d) | figures/s | vs plain loop |" % args.repeats)
    print("|---|---:|---:|---:|---:|")
    print(f"| plain lxml loop (no output written) | {plain_n} | {plain_s:.2f} | {plain_rate:.0f} | 1.00x |")
    alone_rate = alone_n / alone_s
    print(f"| recipe alone: plan + convert_unit, rows discarded | {alone_n} | {alone_s:.2f} | {alone_rate:.0f} | {alone_rate / plain_rate:.2f}x |")
    for jobs, (seconds, count) in runs.items():
        rate = count / seconds
        print(f"| medcat normalize figures --jobs {jobs} | {count} | {seconds:.2f} | {rate:.0f} | {rate / plain_rate:.2f}x |")


if __name__ == "__main__":
    main()
