"""Croissant export: every entry validates with mlcroissant; files, record sets and fields say what they should."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import mlcroissant as mlc
import PIL.Image
import pytest
from click.testing import CliRunner

from medcat_data.catalog.croissant import CONFORMS_TO, CONTEXT, croissant_metadata, croissant_text, encoding_format, semantic_version
from medcat_data.catalog.registry import load_registry, parse_registry_text
from medcat_data.catalog.schema import Entry
from medcat_data.cli import main
from tests.unit.catalog.entries import registry_yaml, valid_entry

SHA = "ab" * 32
MD5 = "cd" * 16


def _entry(**changes: Any) -> Entry:
    return parse_registry_text(registry_yaml(valid_entry(**changes)), "<test>")[0]


def _validate(doc: dict[str, Any]) -> mlc.Dataset:
    """Validate through a JSON round trip, as a consumer reading the file would."""
    return mlc.Dataset(jsonld=json.loads(croissant_text(doc)))


def _by_id(nodes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n["@id"]: n for n in nodes}


@pytest.mark.parametrize("dataset_id", load_registry().ids)
def test_every_shipped_entry_validates_with_mlcroissant_without_warnings(dataset_id: str, caplog: pytest.LogCaptureFixture) -> None:
    """No error, no warning, and no "@context is not standard" log line (mlcroissant logs that one).

    The one warning allowed is a missing ``datePublished`` where the registry records no date at
    all (neither a release date nor a year in the citation): the document then says nothing rather
    than a made-up date.
    """
    entry = load_registry().get(dataset_id)
    caplog.set_level(logging.WARNING)
    dataset = _validate(croissant_metadata(entry))
    assert not dataset.metadata.ctx.issues.errors
    assert not [r.getMessage() for r in caplog.records if "@context" in r.getMessage()]
    dated = any(v.date for v in entry.versions if v.version == entry.default_version) or "year" in entry.citation.lower()
    allowed = set() if dated else {f'[Metadata({entry.name})] Property "https://schema.org/datePublished" is recommended, but does not exist.'}
    assert dataset.metadata.ctx.issues.warnings == allowed
    assert [rs.id for rs in dataset.metadata.record_sets][1:] == [c.name for c in entry.configs]


def test_context_holds_every_term_of_the_croissant_1_1_appendix_and_mlcroissant() -> None:
    from mlcroissant._src.core.context import Context, CroissantVersion
    from mlcroissant._src.core.rdf import make_context

    spec_terms = {
        "annotation", "arrayShape", "citeAs", "column", "conformsTo", "containedIn", "data", "dataType",
        "equivalentProperty", "examples", "excludes", "extract", "field", "fileProperty", "fileObject", "fileSet",
        "format", "includes", "isArray", "isLiveDataset", "jsonPath", "key", "md5", "parentField", "recordSet",
        "references", "regex", "readLines", "sdVersion", "separator", "source", "subField", "transform",
        "unArchive", "value", "sc", "cr", "rai", "dct", "@language", "@vocab",
    }
    ctx = Context()
    ctx.conforms_to = CroissantVersion.V_1_1
    # mlcroissant's 1.1 context declares name/description as language maps; plain strings mean the same.
    standard = {k for k in make_context(ctx) if k not in ("name", "description")}
    assert spec_terms | standard <= set(CONTEXT)


@pytest.mark.parametrize(
    ("label", "expected"),
    [("2.0.0", "2.0.0"), ("2.2", "2.2.0"), ("1", "1.0.0"), ("v4.2.1", "4.2.1"), ("2017-09-14", "0.0.0+2017-09-14"),
     ("32485b5", "0.0.0+32485b5"), ("unversioned", "0.0.0+unversioned"), ("1.2_rc", "0.0.0+1.2-rc")],
)
def test_versions_are_semantic_and_keep_upstreams_label(label: str, expected: str) -> None:
    assert semantic_version(label) == expected
    doc = croissant_metadata(_entry(versions=[{"version": label, "date": "2020-01-02"}], default_version=label))
    assert doc["version"] == expected
    assert not _validate(doc).metadata.ctx.issues.warnings


def test_date_published_is_the_release_date_else_the_citation_year_else_absent() -> None:
    dated = _entry(versions=[{"version": "1.0.0", "date": "2020-01-02"}])
    assert croissant_metadata(dated)["datePublished"] == "2020-01-02"
    cited = _entry(versions=[{"version": "1.0.0"}], citation="@article{a, title={T}, year = {2018}}\n@misc{b, year=2000}")
    assert croissant_metadata(cited)["datePublished"] == "2018"
    assert not _validate(croissant_metadata(cited)).metadata.ctx.issues.warnings
    undated = _entry(versions=[{"version": "1.0.0"}], citation="@misc{a, title={T}}")
    assert "datePublished" not in croissant_metadata(undated)


def test_document_carries_the_dataset_level_properties() -> None:
    entry = _entry(license={"spdx": "CC-BY-4.0", "name": "CC BY 4.0"}, versions=[{"version": "1.0.0", "date": "2020-01-02", "doi": "10.1/x"}])
    doc = croissant_metadata(entry)
    assert doc["@type"] == "sc:Dataset"
    assert doc["conformsTo"] == CONFORMS_TO
    assert doc["@context"]["cr"] == "http://mlcommons.org/croissant/"
    assert doc["name"] == entry.name and doc["url"] == entry.homepage
    assert doc["license"] == "https://spdx.org/licenses/CC-BY-4.0.html"
    assert doc["citeAs"] == entry.citation.strip()
    assert doc["version"] == "1.0.0" and doc["datePublished"] == "2020-01-02"
    assert doc["sameAs"] == "https://doi.org/10.1/x"
    assert doc["conditionsOfAccess"].startswith("credentialed: Ask the data office")


def test_licence_without_spdx_is_its_url() -> None:
    assert croissant_metadata(_entry())["license"] == "https://data.example.org/license"


def test_pinned_files_are_file_objects_with_their_hash_and_the_rest_a_file_set() -> None:
    source = {
        "name": "files",
        "kind": "urls",
        "files": [
            {"url": "https://h.example.org/d/a.zip", "path": "a.zip", "sha256": SHA, "size": 10},
            {"url": "https://h.example.org/d/b.csv", "path": "b.csv", "md5": MD5},
            {"url": "https://h.example.org/d/sub/c.json", "path": "c.json"},
        ],
    }
    doc = croissant_metadata(_entry(sources=[source]))
    nodes = _by_id(doc["distribution"])
    assert nodes["source/files/a.zip"] == {
        "@type": "cr:FileObject",
        "@id": "source/files/a.zip",
        "name": "a.zip",
        "contentUrl": "https://h.example.org/d/a.zip",
        "encodingFormat": "application/zip",
        "contentSize": "10 B",
        "sha256": SHA,
    }
    assert nodes["source/files/b.csv"]["md5"] == MD5 and "sha256" not in nodes["source/files/b.csv"]
    rest = nodes["source/files"]
    assert rest["@type"] == "cr:FileSet" and rest["includes"] == "c.json"
    assert rest["encodingFormat"] == "application/json"
    assert rest["contentUrl"] == "https://h.example.org/d/sub/"
    assert "trust-on-first-use" in rest["description"] or "pinned" in rest["description"]
    _validate(doc)


def test_a_fully_pinned_url_source_has_no_file_set() -> None:
    source = {"name": "files", "kind": "urls", "files": [{"url": "https://h.example.org/a.zip", "path": "a.zip", "sha256": SHA}]}
    ids = [n["@id"] for n in croissant_metadata(_entry(sources=[source]))["distribution"]]
    assert ids == ["source/files/a.zip", "normalized/labels"]


@pytest.mark.parametrize(
    ("source", "content_url", "includes", "media_type"),
    [
        ({"name": "p", "kind": "physionet", "slug": "demo", "version": "1.0"}, "https://physionet.org/files/demo/1.0/", "**", "application/octet-stream"),
        ({"name": "k", "kind": "kaggle", "owner": "o", "slug": "s"}, "https://www.kaggle.com/api/v1/datasets/download/o/s", "s.zip", "application/zip"),
        ({"name": "g", "kind": "gdrive", "file_id": "F1", "filename": "d.zip", "subdir": "g"}, "https://drive.google.com/uc?id=F1", "g/d.zip", "application/zip"),
        ({"name": "h", "kind": "hf", "repo_id": "o/r", "revision": "abc", "allow_patterns": ["*.json"]}, "https://huggingface.co/datasets/o/r/tree/abc", "*.json", "application/json"),
    ],
)
def test_unpinned_sources_are_file_sets_at_their_host(source: dict[str, Any], content_url: str, includes: str, media_type: str) -> None:
    doc = croissant_metadata(_entry(sources=[source]))
    file_set = _by_id(doc["distribution"])[f"source/{source['name']}"]
    assert (file_set["contentUrl"], file_set["includes"], file_set["encodingFormat"]) == (content_url, includes, media_type)
    _validate(doc)


def test_each_config_is_a_record_set_reading_the_normalized_parquet() -> None:
    entry = _entry(
        tasks=["text-qa", "object-detection"],
        configs=[
            {"name": "exam", "task": "text-qa", "splits": ["train", "test"], "description": "Questions."},
            {"name": "boxes", "task": "object-detection", "splits": ["train"], "description": "Boxes."},
        ],
    )
    doc = croissant_metadata(entry)
    distribution = _by_id(doc["distribution"])
    assert distribution["normalized/exam"]["includes"] == "exam/*.parquet"
    assert distribution["normalized/exam"]["encodingFormat"] == "application/x-parquet"
    record_sets = _by_id(doc["recordSet"])
    splits = record_sets["medcat-splits"]
    assert splits["dataType"] == "cr:Split"
    assert splits["data"] == [
        {"medcat-splits/name": "train", "medcat-splits/url": "cr:TrainingSplit"},
        {"medcat-splits/name": "test", "medcat-splits/url": "cr:TestSplit"},
    ]
    fields = _by_id(record_sets["exam"]["field"])
    assert fields["exam/question"]["dataType"] == "sc:Text"
    assert fields["exam/question"]["source"] == {"fileSet": {"@id": "normalized/exam"}, "extract": {"column": "question"}}
    assert fields["exam/answer_idx"]["dataType"] == "sc:Integer"
    options = fields["exam/options"]
    assert options["isArray"] is True and options["arrayShape"] == "-1"
    key = _by_id(options["subField"])["exam/options/key"]
    assert key["source"]["transform"] == {"jsonPath": "key"} and key["dataType"] == "sc:Text"
    assert fields["exam/split"]["references"] == {"field": {"@id": "medcat-splits/name"}}
    boxes = record_sets["boxes"]
    assert "Core fields of the task schema" in boxes["description"]
    assert [f["name"] for f in boxes["field"]] == ["source", "sample_id", "split"]
    _validate(doc)


def test_class_labels_are_integers_named_in_the_description() -> None:
    entry = _entry(tasks=["variant-calling"], configs=[{"name": "v", "task": "variant-calling", "splits": ["test"], "description": "Variants."}])
    fields = _by_id(_by_id(croissant_metadata(entry)["recordSet"])["v"]["field"])
    genotype = fields["v/genotype_class"]
    assert genotype["dataType"] == "sc:Integer"
    assert genotype["description"].endswith("ClassLabel: 0 = hom-ref, 1 = het, 2 = hom-alt.")
    assert fields["v/in_confident_region"]["dataType"] == "sc:Boolean"
    assert fields["v/pos"]["dataType"] == "sc:Integer"


def test_images_are_image_objects_and_image_lists_arrays() -> None:
    entry = _entry(tasks=["vqa"], configs=[{"name": "q", "task": "vqa", "splits": ["test"], "description": "VQA."}])
    fields = _by_id(_by_id(croissant_metadata(entry)["recordSet"])["q"]["field"])
    assert fields["q/images"]["dataType"] == "sc:ImageObject" and fields["q/images"]["isArray"] is True


def test_an_entry_without_configs_has_no_record_set() -> None:
    doc = croissant_metadata(_entry(configs=[]))
    assert "recordSet" not in doc
    _validate(doc)


def test_mlcroissant_rejects_a_broken_reference_so_validation_is_not_vacuous() -> None:
    doc = json.loads(croissant_text(croissant_metadata(_entry())))
    doc["recordSet"][1]["field"][0]["source"]["fileSet"]["@id"] = "normalized/nothing"
    with pytest.raises(mlc.ValidationError, match="normalized/nothing"):
        mlc.Dataset(jsonld=doc)


def test_output_is_deterministic_text() -> None:
    entry = load_registry().get("vindr-mammo")
    assert croissant_text(croissant_metadata(entry)) == croissant_text(croissant_metadata(entry))


@pytest.mark.parametrize(("name", "media_type"), [("x.csv.gz", "text/csv"), ("a/b.DICOM", "application/dicom"), ("r.tar.gz", "application/x-tar"), ("README", "application/octet-stream")])
def test_encoding_format_reads_the_longest_suffix(name: str, media_type: str) -> None:
    assert encoding_format(name) == media_type


def test_info_croissant_prints_the_document_of_the_entry() -> None:
    result = CliRunner().invoke(main, ["info", "vindr-mammo", "--croissant"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == json.loads(croissant_text(croissant_metadata(load_registry().get("vindr-mammo"))))


def test_info_croissant_of_any_physionet_project_points_at_its_files() -> None:
    result = CliRunner().invoke(main, ["info", "physionet:ptb-xl@1.0.3", "--croissant"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert _by_id(doc["distribution"])["source/physionet"]["contentUrl"] == "https://physionet.org/files/ptb-xl/1.0.3/"
    _validate(doc)


ITERATED = ("vqa-rad", "pad-ufes-20", "medqa", "precisionfda-truth-v2")
"""Entries whose normalized record sets are read back: a list of images (vqa-rad), one image per row
(pad-ufes-20), nested option structs (medqa), integers, booleans and class labels (precisionfda)."""


@pytest.mark.integration
def test_record_sets_iterate_with_mlcroissant_beside_the_normalized_data(tmp_path: Path) -> None:
    """The catalog's document, saved in the folder normalize wrote, reads every row of every config there.

    The data are the replicas run through the real chain (``medcat demo``: loopback mirror, fetch,
    verify, normalize), so the shards are the ones ``medcat normalize`` writes.
    """
    from medcat_data.demo import run_demo

    rows = [r for r in run_demo(out=tmp_path / "out", only=ITERATED) if r.status == "ok" and r.out_dir]
    assert {r.dataset for r in rows} == set(ITERATED)
    checked = 0
    for row in rows:
        folder = Path(str(row.out_dir))
        entry = load_registry().get(row.dataset)
        (folder / "catalog-croissant.json").write_text(croissant_text(croissant_metadata(entry)), encoding="utf-8")
        dataset = mlc.Dataset(jsonld=folder / "catalog-croissant.json")
        splits = [r["medcat-splits/name"] for r in dataset.records("medcat-splits")]
        assert sorted(splits) == sorted({s for c in entry.configs for s in c.splits})
        for config, counts in row.rows.items():
            records = list(dataset.records(config))
            assert len(records) == sum(counts.values()), (row.dataset, config)
            first = records[0]
            assert first[f"{config}/source"].decode() == f"{entry.id}@{entry.default_version}"
            record_set = _by_id(croissant_metadata(entry)["recordSet"])[config]
            for fld in record_set["field"]:
                if fld.get("dataType") == "sc:ImageObject":
                    images = first[fld["@id"]] if fld.get("isArray") else [first[fld["@id"]]]
                    assert images and all(isinstance(im, PIL.Image.Image) and im.size[0] > 0 for im in images), fld["@id"]
            checked += 1
    assert checked >= 8


@pytest.mark.integration
def test_every_normalized_output_carries_a_croissant_that_validates_and_reads_its_records(tmp_path: Path) -> None:
    """``OUT/<id>/croissant.json`` describes what normalize wrote, dynamic configs included (PhysioNet
    tables): mlcroissant validates it and every config's records iterate, images decoded."""
    from medcat_data.demo import run_demo

    wanted = ("vqa-rad", "mimic-iv-demo", "medqa")
    rows = [r for r in run_demo(out=tmp_path / "out", only=wanted) if r.status == "ok" and r.out_dir]
    assert {r.dataset for r in rows} == set(wanted)
    for row in rows:
        document = Path(str(row.out_dir)) / "croissant.json"
        dataset = mlc.Dataset(jsonld=document)
        assert not dataset.metadata.ctx.issues.errors, dataset.metadata.ctx.issues.errors
        assert not dataset.metadata.ctx.issues.warnings, dataset.metadata.ctx.issues.warnings
        assert [rs.id for rs in dataset.metadata.record_sets][1:] == list(row.rows), row.dataset
        for config, counts in row.rows.items():
            records = list(dataset.records(config))
            assert len(records) == sum(counts.values()), (row.dataset, config)
            if row.dataset == "vqa-rad":
                images = records[0]["vqa/images"]
                assert images and all(isinstance(im, PIL.Image.Image) and im.size[0] > 0 for im in images)
