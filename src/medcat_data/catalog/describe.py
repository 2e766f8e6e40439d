"""Describe an entry for people: sources in words, task schemas, the exact commands to run.

Shared by ``medcat info`` and the catalog pages so both say the same thing. Pure: no printing.
"""

from __future__ import annotations

from typing import Any

from medcat_data.catalog.refs import ResolvedDataset
from medcat_data.catalog.schema import (
    Entry,
    GoogleDriveSource,
    HuggingFaceSource,
    KaggleSource,
    OsfSource,
    PhysioNetSource,
    PmcSource,
    GcsSource,
    S3Source,
    Source,
    Task,
    TciaSource,
    UrlListSource,
)

TASK_FIELDS: dict[Task, str] = {
    Task.IMAGE_CLASSIFICATION: "image, label(s) as ClassLabel / multi-hot names, patient_id, study_id, view, laterality, modality, split",
    Task.OBJECT_DETECTION: "image, objects {bbox xyxy in output pixels, category, extra attributes}, patient_id, study_id",
    Task.REPORT_GENERATION: "images (list), findings, impression, labels",
    Task.VQA: "image(s), question, answer, answer_type (open/closed), options, answer_idx",
    Task.TEXT_QA: "question, options (list of {key, text}), answer_idx, answer, explanation, subject",
    Task.IMAGE_TEXT: "image, caption, inline_mentions, article_id, figure_label, license",
    Task.VARIANT_CALLING: "chrom, pos, ref, alt, genotype, genotype_class (hom-ref/het/hom-alt), in_confident_region, stratifications",
    Task.TABULAR: "one config per upstream table, typed columns",
}
"""Core fields of each task schema (DESIGN.md); every row also has ``source`` and ``sample_id``."""


def source_version(source: Source, version: str) -> str:
    """Return the version a source is fetched at: its pinned one, else the entry's."""
    if isinstance(source, PhysioNetSource) and source.version:
        return source.version
    return version


def describe_source(source: Source, version: str) -> dict[str, str]:
    """Return where a source's bytes come from and how they are verified, in words."""
    if isinstance(source, PhysioNetSource):
        ver = source_version(source, version)
        where = f"PhysioNet project {source.slug} {ver}: {source.base_url}/files/{source.slug}/{ver}/"
        if source.file_index:
            verify = (
                f"{source.checksum_file or 'no checksum file'} for the files it lists; the bulk files "
                f"listed in {source.file_index.path} by size and magic bytes, recorded as trust-on-first-use"
            )
        elif source.checksum_file:
            verify = f"sha256 from the project's {source.checksum_file}"
        else:
            verify = "size + trust-on-first-use sha256"
    elif isinstance(source, HuggingFaceSource):
        where = f"Hugging Face {source.repo_type} {source.repo_id} at revision {source.revision}"
        verify = "Hub LFS sha256 (git blob id for small files)"
    elif isinstance(source, KaggleSource):
        where = f"Kaggle dataset {source.owner}/{source.slug} ({source.archive or 'zip'})"
        verify = "size + trust-on-first-use sha256 (Kaggle publishes no checksum), zip integrity"
    elif isinstance(source, UrlListSource):
        where = f"{len(source.files)} file(s) over HTTPS, e.g. {source.files[0].url}"
        pinned = sum(1 for f in source.files if f.sha256 or f.md5)
        if any(c.format == "zenodo-record" for c in source.checksum_files):
            verify = "md5 and size from the Zenodo record API, read at fetch time (zenodo-md5)"
        elif pinned or source.checksum_files:
            verify = f"hashes pinned in the registry ({pinned} files) or published checksum lists"
        else:
            verify = "size + trust-on-first-use sha256 (upstream publishes no checksum)"
    elif isinstance(source, GoogleDriveSource):
        where = f"Google Drive file {source.file_id} ({source.filename})"
        verify = "magic bytes + trust-on-first-use sha256 (no checksum published)"
    elif isinstance(source, OsfSource):
        where = f"OSF project {source.project} ({source.storage})"
        verify = "OSF-reported hashes"
    elif isinstance(source, PmcSource):
        where = f"PMC Open Access cloud bucket {source.bucket_url} (per-article prefixes)"
        verify = "size + trust-on-first-use sha256"
    elif isinstance(source, TciaSource):
        where = f"TCIA collection {source.collection} through the NBIA REST API ({source.api_url})"
        verify = "series zips by size + trust-on-first-use sha256; CSVs as pinned"
    elif isinstance(source, (GcsSource, S3Source)):
        scheme = "gs" if isinstance(source, GcsSource) else "s3"
        where = f"{scheme}://{source.bucket}/{source.prefix}".replace("{version}", version)
        if isinstance(source, GcsSource) and source.requester_pays:
            where += (
                " (requester pays: --option billing_project=PROJECT is billed the egress, about $0.12/GB to the "
                "internet, free inside the bucket's region)"
            )
        elif source.anonymous:
            where += " (public: no account, no request signing)"
        store_md5 = "GCS md5Hash" if scheme == "gs" else "S3 ETag of one-part uploads"
        first = f"sha256 from {source.checksum_file}; other objects by " if source.checksum_file else ""
        verify = f"{first}the store's md5 ({store_md5}); composite or multipart objects by size + trust-on-first-use sha256"
    else:  # pragma: no cover - the union is closed
        raise AssertionError(f"unhandled source kind {source!r}")
    role = "companion" if source.companion else "main"
    return {"name": source.name, "kind": source.kind, "role": role, "where": where, "verification": verify}


def fetch_command(resolved: ResolvedDataset, source: str | None = None) -> str:
    """Return the exact ``medcat fetch`` command for a resolved reference."""
    parts = ["medcat fetch", str(resolved.ref)]
    if source:
        parts += ["--source", source]
    from medcat_data.loaders.credentials import needs_license_acceptance

    if needs_license_acceptance(resolved.entry):
        parts.append("--accept-license")
    return " ".join(parts)


def normalize_command(resolved: ResolvedDataset, config: str | None = None) -> str:
    """Return the exact ``medcat normalize`` command for a resolved reference."""
    cmd = f"medcat normalize {resolved.ref} --out data/"
    if config:
        cmd += f" --config {config}"
    return cmd


def entry_details(resolved: ResolvedDataset) -> dict[str, Any]:
    """Return everything ``medcat info`` shows, as JSON-ready data."""
    entry: Entry = resolved.entry
    data = entry.model_dump(mode="json", exclude_none=True)
    data["version"] = resolved.version
    data["reference"] = str(resolved.ref)
    data["source_descriptions"] = [describe_source(s, resolved.version) for s in entry.sources]
    data["commands"] = {
        "fetch": fetch_command(resolved),
        "verify": f"medcat verify {resolved.ref}",
        "normalize": normalize_command(resolved) if entry.configs else None,
    }
    data["config_schemas"] = {c.name: TASK_FIELDS[c.task] for c in entry.configs}
    return data
