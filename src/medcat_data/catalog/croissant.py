"""Describe a registry entry as MLCommons Croissant 1.1 JSON-LD metadata.

``distribution`` says where the upstream bytes are: a ``cr:FileObject`` for every file whose hash
the registry pins, a ``cr:FileSet`` for the rest of each source (with the where and how-verified
in words, since upstream publishes no per-file hash we could state here). ``recordSet`` has one
record set per normalized config, whose fields read the parquet shards ``medcat normalize``
writes (``<config>/<split>-NNNNN-of-NNNNN.parquet``), plus a ``cr:Split`` record set naming the
splits. Those shards are hosted nowhere, so their file sets carry no ``contentUrl``: paths are
relative to the document, and the records iterate (``mlcroissant``, images decoded) once the
document sits in the folder normalize wrote, ``DIR/<id>/``. The splits record set holds its
records inline and iterates anywhere.

Versions follow the spec's ``MAJOR.MINOR.PATCH`` (``semantic_version``); ``datePublished`` is
the version's release date, else the year of the cited publication, else absent (the registry
records no date, and none is made up). Pure: builds a dict, never reads the network; validated in the
tests with ``mlcroissant``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from medcat_data.catalog.describe import TASK_FIELDS, describe_source
from medcat_data.catalog.schema import (
    Entry,
    GoogleDriveSource,
    HuggingFaceSource,
    KaggleSource,
    NormalizedConfig,
    OsfSource,
    PhysioNetSource,
    PinnedFile,
    PmcSource,
    Source,
    TciaSource,
    UrlListSource,
)
from medcat_data.catalog.site.columns import CORE_COLUMN_NOTES, feature_kind
from medcat_data.catalog.site.hooks import column_notes, config_schema

CONFORMS_TO = "http://mlcommons.org/croissant/1.1"

CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "sc": "https://schema.org/",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "dct": "http://purl.org/dc/terms/",
    "annotation": "cr:annotation",
    "arrayShape": "cr:arrayShape",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "excludes": "cr:excludes",
    "extract": "cr:extract",
    "field": "cr:field",
    "fileObject": "cr:fileObject",
    "fileProperty": "cr:fileProperty",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isArray": "cr:isArray",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "readLines": "cr:readLines",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sdVersion": "cr:sdVersion",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
    "unArchive": "cr:unArchive",
    "value": "cr:value",
}
"""The JSON-LD context of Croissant 1.1: every term of the spec's Appendix 1, plus the 1.0 terms
(``path``, ``repeated``, ``replace``, ``samplingRate``) that ``mlcroissant`` still expects in a
standard context. schema.org is ``https://`` as in the published Croissant files of the Hub and
the mlcroissant examples (the spec's appendix writes ``http://``; both name the same vocabulary).
"""

PARQUET = "application/x-parquet"
OCTET_STREAM = "application/octet-stream"
_FORMATS: tuple[tuple[str, str], ...] = (
    (".tar.gz", "application/x-tar"),
    (".csv.gz", "text/csv"),
    (".vcf.gz", "text/x-vcf"),
    (".fastq.gz", "text/x-fastq"),
    (".nii.gz", "application/x-nifti"),
    (".tbi", "application/x-tabix"),
    (".zip", "application/zip"),
    (".tar", "application/x-tar"),
    (".gz", "application/gzip"),
    (".csv", "text/csv"),
    (".tsv", "text/tab-separated-values"),
    (".bed", "text/x-bed"),
    (".json", "application/json"),
    (".jsonl", "application/jsonlines"),
    (".parquet", PARQUET),
    (".dcm", "application/dicom"),
    (".dicom", "application/dicom"),
    (".png", "image/png"),
    (".jpg", "image/jpeg"),
    (".jpeg", "image/jpeg"),
    (".txt", "text/plain"),
    (".md", "text/markdown"),
    (".xml", "application/xml"),
    (".nii", "application/x-nifti"),
)
"""Media types by file suffix, longest suffix first; anything else is ``application/octet-stream``."""

_RELEASE_NUMBER = re.compile(r"v?(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*))?(?:\.(0|[1-9][0-9]*))?")
_BIBTEX_YEAR = re.compile(r"\byear\s*=\s*[{\"]?\s*([12][0-9]{3})\b", re.IGNORECASE)
_SPLIT_TYPES = {"train": "cr:TrainingSplit", "validation": "cr:ValidationSplit", "test": "cr:TestSplit"}
SPLITS_RECORD_SET = "medcat-splits"


def encoding_format(name: str) -> str:
    """Return the media type of a file name or glob from its suffix."""
    lowered = name.lower()
    for suffix, media_type in _FORMATS:
        if lowered.endswith(suffix):
            return media_type
    return OCTET_STREAM


def license_url(entry: Entry) -> str:
    """Return the licence as Croissant wants it: an SPDX page, else the licence URL, else its name."""
    lic = entry.license
    if lic.spdx:
        return f"https://spdx.org/licenses/{lic.spdx}.html"
    return lic.url or lic.name


def croissant_text(doc: Mapping[str, Any]) -> str:
    """Serialize a Croissant document the one way every copy of it uses (sorted keys, 2-space indent)."""
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def semantic_version(label: str) -> str:
    """Return an upstream version label as the semantic version Croissant asks for.

    A release number keeps its numbers: ``v4.2.1`` becomes ``4.2.1`` and ``2.2`` ``2.2.0``.
    Anything else (a date ``2017-09-14``, a commit ``32485b5``, ``unversioned``, ``latest``)
    is not turned into made-up numbers: it becomes ``0.0.0`` ("no release number") with the
    label kept verbatim as SemVer build metadata, ``0.0.0+2017-09-14``.
    """
    match = _RELEASE_NUMBER.fullmatch(label)
    if match is not None:
        return ".".join(part or "0" for part in match.groups())
    return "0.0.0+" + ".".join(re.sub(r"[^0-9A-Za-z-]", "-", part) or "0" for part in label.split("."))


def citation_year(citation: str) -> str | None:
    """Return the first ``year`` a BibTeX citation gives (a year-only ISO 8601 date), or None."""
    match = _BIBTEX_YEAR.search(citation)
    return match.group(1) if match else None


def croissant_metadata(entry: Entry, version: str | None = None) -> dict[str, Any]:
    """Return the Croissant JSON-LD document of an entry at ``version`` (default: its default version)."""
    ver = version or entry.default_version
    released = next((v for v in entry.versions if v.version == ver), None)
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": entry.name,
        "alternateName": entry.id,
        "description": entry.description,
        "url": entry.homepage,
        "license": license_url(entry),
        "citeAs": entry.citation.strip(),
        "version": semantic_version(ver),
        "keywords": [*entry.modalities, *(t.value for t in entry.tasks), *entry.tags],
        "conditionsOfAccess": f"{entry.access.value}: " + " ".join(entry.access_info.steps),
    }
    published = released.date if released is not None and released.date else citation_year(entry.citation)
    if published is not None:
        doc["datePublished"] = published
    if released is not None and released.doi:
        doc["sameAs"] = f"https://doi.org/{released.doi}"
    doc["distribution"] = [obj for source in entry.sources for obj in _distribution(source, ver)]
    doc["distribution"] += [_normalized_file_set(entry, cfg) for cfg in entry.configs]
    if entry.configs:
        doc["recordSet"] = [_splits_record_set(entry)] + [_record_set(entry, cfg) for cfg in entry.configs]
    return doc


def output_croissant(entry: Entry, version: str, configs: Mapping[str, Any], splits: Mapping[str, Any]) -> dict[str, Any]:
    """Return the Croissant document of one normalized output, for ``OUT/<id>/croissant.json``.

    ``configs`` maps each config the output holds to its features (what was written, dynamic
    configs included); ``splits`` maps it to the splits written. Its file sets name the shards
    beside the document, so mlcroissant validates it and iterates every config's records there.
    """
    doc = croissant_metadata(entry, version)
    notes = {**CORE_COLUMN_NOTES, **column_notes(entry)}
    described = {cfg.name: cfg for cfg in entry.configs}
    doc["distribution"] = [d for d in doc["distribution"] if not str(d.get("@id", "")).startswith("normalized/")]
    doc["distribution"] += [
        {
            "@type": "cr:FileSet",
            "@id": f"normalized/{name}",
            "name": f"{name} parquet shards",
            "description": f"The shards of config {name}, beside this document.",
            "encodingFormat": PARQUET,
            "includes": f"{name}/*.parquet",
        }
        for name in configs
    ]
    names = [s for s in ("train", "validation", "test") if any(s in splits.get(c, ()) for c in configs)]
    record_sets = [_splits_record_set(entry)]
    record_sets[0]["data"] = [{f"{SPLITS_RECORD_SET}/name": n, f"{SPLITS_RECORD_SET}/url": _SPLIT_TYPES[n]} for n in names]
    for name, features in configs.items():
        cfg = described.get(name)
        fields = [_field(name, col, feature, notes, (col,)) for col, feature in features.items()]
        for fld in fields:
            if fld["name"] == "split":
                fld["references"] = {"field": {"@id": f"{SPLITS_RECORD_SET}/name"}}
        description = f"{cfg.task.value}: {cfg.description}" if cfg is not None else f"Config {name} of {entry.id}."
        record_sets.append({"@type": "cr:RecordSet", "@id": name, "name": name, "description": description, "field": fields})
    doc["recordSet"] = record_sets
    return doc


def _distribution(source: Source, version: str) -> list[dict[str, Any]]:
    """Return the FileObjects (pinned files) and the FileSet (everything else) of one source."""
    said = describe_source(source, version)
    text = f"{said['where']}. Verified by {said['verification']}. Role: {said['role']}."
    if source.description:
        text = source.description.strip() + " " + text
    files: list[PinnedFile] = list(source.files) if isinstance(source, (UrlListSource, TciaSource)) else []
    pinned = [f for f in files if f.sha256 or f.md5]
    unpinned = [f for f in files if not (f.sha256 or f.md5)]
    out = [_file_object(source, f) for f in pinned]
    if pinned and not unpinned and isinstance(source, UrlListSource):
        return out
    includes, formats = _file_set_contents(source, unpinned)
    file_set: dict[str, Any] = {
        "@type": "cr:FileSet",
        "@id": f"source/{source.name}",
        "name": source.name,
        "description": text,
        "encodingFormat": formats if len(formats) > 1 else formats[0],
        "includes": includes if len(includes) > 1 else includes[0],
    }
    base = _base_url(source, version, unpinned)
    if base:
        file_set["contentUrl"] = base
    out.append(file_set)
    return out


def _file_object(source: Source, pinned: PinnedFile) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "@type": "cr:FileObject",
        "@id": f"source/{source.name}/{pinned.path}",
        "name": pinned.path,
        "contentUrl": pinned.url,
        "encodingFormat": encoding_format(pinned.path),
    }
    if pinned.size is not None:
        obj["contentSize"] = f"{pinned.size} B"
    if pinned.sha256:
        obj["sha256"] = pinned.sha256
    else:
        obj["md5"] = pinned.md5
    return obj


def source_globs(source: Source) -> list[str]:
    """Return what a source fetches as paths or globs inside its cache folder (its ``subdir`` first).

    Pinned files by path, else the source's patterns or its one download; ``**`` means every
    file upstream lists (PhysioNet's checksum file, the Hub's tree, a bucket prefix).
    """
    prefix = f"{source.subdir.strip('/')}/" if source.subdir else ""
    files: list[PinnedFile] = list(source.files) if isinstance(source, (UrlListSource, TciaSource)) else []
    if files:
        globs = [f.path for f in files]
    elif isinstance(source, HuggingFaceSource) and source.allow_patterns:
        globs = list(source.allow_patterns)
    elif isinstance(source, KaggleSource):
        globs = [source.archive or f"{source.slug}.zip"]
    elif isinstance(source, GoogleDriveSource):
        globs = [source.filename]
    else:
        globs = list(source.include) or ["**"]
    return [prefix + g for g in globs]


def _file_set_contents(source: Source, unpinned: list[PinnedFile]) -> tuple[list[str], list[str]]:
    """Return the include globs and media types of a source's unpinned files."""
    prefix = f"{source.subdir.strip('/')}/" if source.subdir else ""
    if unpinned:
        globs = [prefix + f.path for f in unpinned]
    elif isinstance(source, TciaSource):
        # Its pinned CSVs are FileObjects already; the file set is the series the API lists.
        globs = [prefix + g for g in source.include] or [prefix + "**"]
    else:
        globs = source_globs(source)
    return globs, sorted({encoding_format(g) for g in globs})


def _base_url(source: Source, version: str, unpinned: list[PinnedFile]) -> str | None:
    if isinstance(source, PhysioNetSource):
        ver = source.version or version
        return f"{source.base_url}/files/{source.slug}/{ver}/"
    if isinstance(source, HuggingFaceSource):
        kind = "datasets/" if source.repo_type == "dataset" else ""
        return f"https://huggingface.co/{kind}{source.repo_id}/tree/{source.revision}"
    if isinstance(source, KaggleSource):
        return f"{source.base_url}/api/v1/datasets/download/{source.owner}/{source.slug}"
    if isinstance(source, GoogleDriveSource):
        return f"{source.base_url}/uc?id={source.file_id}"
    if isinstance(source, OsfSource):
        return f"https://osf.io/{source.project}/"
    if isinstance(source, PmcSource):
        return source.bucket_url + "/"
    if isinstance(source, TciaSource) and source.manifest_url:
        return source.manifest_url
    if unpinned:
        return _common_dir([f.url for f in unpinned])
    return None


def _common_dir(urls: list[str]) -> str:
    """Return the longest directory URL every URL starts with (the scheme and host at least)."""
    dirs = [u.rsplit("/", 1)[0] + "/" for u in urls]
    common = dirs[0]
    for d in dirs[1:]:
        while not d.startswith(common):
            common = common.rstrip("/").rsplit("/", 1)[0] + "/"
    parts = urlsplit(urls[0])
    return common if len(common) > len(f"{parts.scheme}://{parts.netloc}") else f"{parts.scheme}://{parts.netloc}/"


def _normalized_file_set(entry: Entry, cfg: NormalizedConfig) -> dict[str, Any]:
    return {
        "@type": "cr:FileSet",
        "@id": f"normalized/{cfg.name}",
        "name": f"{cfg.name} parquet shards",
        "description": (
            f"Written by `medcat normalize {entry.id} --out DIR --config {cfg.name}` under DIR/{entry.id}/; "
            "not hosted anywhere, so the path is relative to this document: saved in DIR/"
            f"{entry.id}/ (e.g. `medcat info {entry.id} --croissant > DIR/{entry.id}/catalog-croissant.json`) "
            "it reads the records there."
        ),
        "encodingFormat": PARQUET,
        "includes": f"{cfg.name}/*.parquet",
    }


def _splits_record_set(entry: Entry) -> dict[str, Any]:
    names = [s for s in ("train", "validation", "test") if any(s in cfg.splits for cfg in entry.configs)]
    rid = SPLITS_RECORD_SET
    return {
        "@type": "cr:RecordSet",
        "@id": rid,
        "name": rid,
        "description": "The splits of the normalized configs.",
        "dataType": "cr:Split",
        "key": {"@id": f"{rid}/name"},
        "field": [
            {"@type": "cr:Field", "@id": f"{rid}/name", "name": "name", "dataType": "sc:Text"},
            {"@type": "cr:Field", "@id": f"{rid}/url", "name": "url", "dataType": "sc:URL"},
        ],
        "data": [{f"{rid}/name": n, f"{rid}/url": _SPLIT_TYPES[n]} for n in names],
    }


def _record_set(entry: Entry, cfg: NormalizedConfig) -> dict[str, Any]:
    schema = config_schema(entry, cfg)
    notes = {**CORE_COLUMN_NOTES, **column_notes(entry)}
    description = f"{cfg.task.value}: {cfg.description}"
    if schema.features is None:
        description += f" Core fields of the task schema: {TASK_FIELDS[cfg.task]}; columns are typed at normalize time."
        features: Mapping[str, Any] = _common_only()
    else:
        features = schema.features
        if schema.origin == "task-schema":
            description += " Core columns of the task schema; the recipe adds the dataset's label columns."
    fields = [_field(cfg.name, name, feature, notes, (name,)) for name, feature in features.items()]
    for fld in fields:
        if fld["name"] == "split":
            fld["references"] = {"field": {"@id": f"{SPLITS_RECORD_SET}/name"}}
    return {"@type": "cr:RecordSet", "@id": cfg.name, "name": cfg.name, "description": description, "field": fields}


def _common_only() -> dict[str, Any]:
    """Describe the three common columns without importing ``datasets``: every row has them."""
    return {"source": _TextFeature(), "sample_id": _TextFeature(), "split": _TextFeature()}


class _TextFeature:
    _type = "Value"
    dtype = "string"


def _data_type(feature: Any) -> str:
    kind = feature_kind(feature)
    if kind == "Image":
        return "sc:ImageObject"
    if kind == "ClassLabel":
        return "sc:Integer"
    if kind == "Value":
        dtype = str(feature.dtype)
        if dtype.startswith(("int", "uint")):
            return "sc:Integer"
        if dtype.startswith("float"):
            return "sc:Float"
        if dtype == "bool":
            return "sc:Boolean"
        if dtype.startswith("timestamp"):
            return "sc:DateTime"
        if dtype.startswith("date"):
            return "sc:Date"
    return "sc:Text"


def _field(record: str, name: str, feature: Any, notes: Mapping[str, str], path: tuple[str, ...]) -> dict[str, Any]:
    """Return the Croissant field of one feature; lists become arrays, structs sub-fields."""
    shape: list[int] = []
    inner = feature
    while feature_kind(inner) in ("List", "LargeList", "Sequence"):
        length = getattr(inner, "length", -1)
        shape.append(-1 if length in (None, -1) else int(length))
        inner = inner.feature
    source: dict[str, Any] = {"fileSet": {"@id": f"normalized/{record}"}, "extract": {"column": path[0]}}
    inside = list(path[1:])
    if feature_kind(inner) == "Image":
        # HF `Image` is stored in parquet as a struct {bytes, path}; the encoded file is `bytes`.
        inside.append("bytes")
    if inside:
        source["transform"] = {"jsonPath": ".".join(inside)}
    dotted = ".".join(path)
    description = notes.get(dotted) or notes.get(name, "")
    if feature_kind(inner) == "ClassLabel":
        labels = ", ".join(f"{i} = {n}" for i, n in enumerate(inner.names))
        description = (description + " " if description else "") + f"ClassLabel: {labels}."
    fld: dict[str, Any] = {"@type": "cr:Field", "@id": f"{record}/{'/'.join(path)}", "name": name}
    if description:
        fld["description"] = description
    if isinstance(inner, Mapping):
        fld["subField"] = [_field(record, sub, f, notes, (*path, sub)) for sub, f in inner.items()]
    else:
        fld["dataType"] = _data_type(inner)
        fld["source"] = source
    if shape:
        fld["isArray"] = True
        fld["arrayShape"] = ",".join(str(n) for n in shape)
        if feature_kind(inner) == "Image":
            # mlcroissant 1.1 decodes the items of an image list only for the 1.0 term `repeated`.
            fld["repeated"] = True
    return fld
