"""PMC Open Access figures: JATS extraction (sentences, fig-group panels, xref rid lists, licences), the
image matching, the article options, and the whole chain (bucket replica → fetch over loopback →
verify → normalize --jobs 1/2 → load)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import datasets
import pytest
from click.testing import CliRunner
from PIL import Image

from medcat_data.cli import main
from medcat_data.converters.normalize import NormalizeRequest, normalize
from medcat_data.converters.recipe import RecipeOptions
from medcat_data.datasets.pmc_oa.jats import extract_figures, split_sentences
from medcat_data.datasets.pmc_oa.recipe import match_image
from medcat_data.errors import SampleError, UsageError
from medcat_data.mirror.server import MirrorServer
from tests.datasets.harness import normalize_folder, replicas, run_chain

DATASET = "pmc-oa"

DOCTYPE = '<!DOCTYPE article PUBLIC "-//NLM//DTD JATS (Z39.96) Journal Archiving and Interchange DTD v1.3//EN" "JATS-archivearticle1-3.dtd">'


ALI = 'xmlns:ali="http://www.niso.org/schemas/ali/1.0/"'


def _article(body: str, front: str = "") -> bytes:
    return (
        f'<?xml version="1.0"?>\n{DOCTYPE}\n<article xmlns:xlink="http://www.w3.org/1999/xlink" {ALI}>'
        f"<front><article-meta>{front}</article-meta></front><body>{body}</body></article>"
    ).encode()


def _sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two! Three? 4 is a digit.", ["One.", "Two!", "Three?", "4 is a digit."]),
        ("See Fig. 2 and Figs. 3-4. Next one.", ["See Fig. 2 and Figs. 3-4.", "Next one."]),
        ("Smith et al. Reported it, e.g. CT scans. Done.", ["Smith et al. Reported it, e.g. CT scans.", "Done."]),
        ("It rose (Fig. 1A). (Later) it fell.", ["It rose (Fig. 1A).", "(Later) it fell."]),
        ("a value of 3.5 mm. lower case after a period stays.", ["a value of 3.5 mm. lower case after a period stays."]),
        ("No final period", ["No final period"]),
    ],
)
def test_sentences_split_at_end_marks_but_not_after_abbreviations(text: str, expected: list[str]) -> None:
    assert _sentences(text) == expected


def test_a_rid_list_cites_every_figure_it_names_with_the_whole_sentence() -> None:
    data = _article(
        '<p>First sentence. Both grew (<xref ref-type="fig" rid="F1 F2">Figs. 1 and 2</xref>) in <italic>vivo</italic>. '
        'Only two shrank (<xref ref-type="fig" rid="F2">Fig. 2</xref>). A table (<xref ref-type="table" rid="F1">T1</xref>).</p>'
        '<fig id="F1"><label>Figure 1</label><caption><title>Growth.</title><p>Cells <bold>grow</bold>.</p></caption>'
        '<graphic xlink:href="gr1"/></fig>'
        '<fig id="F2"><label>Figure 2</label><caption><p>Shrinkage (see <xref ref-type="fig" rid="F1">Fig. 1</xref>).</p></caption>'
        '<graphic xlink:href="gr2.tif"/></fig>'
    )
    f1, f2 = extract_figures(data).figures
    assert f1.mentions == ("Both grew (Figs. 1 and 2) in vivo.",)
    assert f2.mentions == ("Both grew (Figs. 1 and 2) in vivo.", "Only two shrank (Fig. 2).")
    assert (f1.label, f1.caption, f1.href) == ("Figure 1", "Growth. Cells grow.", "gr1")
    assert f2.caption == "Shrinkage (see Fig. 1)."  # a caption's own xref is not a body mention


def test_fig_group_panels_are_figures_and_inherit_the_groups_mentions() -> None:
    data = _article(
        '<p>The pair differs (<xref ref-type="fig" rid="G3">Fig. 3</xref>). Panel B alone (<xref ref-type="fig" rid="G3B">Fig. 3B</xref>).</p>'
        '<fig-group id="G3"><label>Figure 3</label><caption><p>Two panels.</p></caption>'
        '<fig id="G3A"><label>Figure 3A</label><caption><p>Left.</p></caption><graphic xlink:href="g3a"/></fig>'
        '<fig id="G3B"><caption><p>Right.</p></caption><alternatives><graphic xlink:href="g3b"/></alternatives></fig>'
        "</fig-group>"
    )
    a, b = extract_figures(data).figures
    assert (a.figure_id, a.group_id, b.group_id) == ("G3A", "G3", "G3")
    assert a.mentions == ("The pair differs (Fig. 3).",)
    assert b.mentions == ("The pair differs (Fig. 3).", "Panel B alone (Fig. 3B).")
    assert b.label is None and b.href == "g3b"


def test_ids_and_licence_come_from_article_meta_and_no_dtd_is_loaded() -> None:
    front = (
        '<article-id pub-id-type="pmc">PMC42</article-id><article-id pub-id-type="pmid">4242</article-id>'
        '<article-id pub-id-type="doi">10.1/x</article-id>'
        '<permissions><license license-type="open-access" xlink:href="https://creativecommons.org/licenses/by/4.0/"/></permissions>'
    )
    article = extract_figures(_article('<fig><graphic xlink:href="a"/></fig>', front))
    assert (article.pmcid, article.pmid, article.doi, article.license) == ("PMC42", "4242", "10.1/x", "CC BY")
    assert article.figures[0].figure_id == "fig-1"


def test_entities_are_not_expanded_and_broken_xml_is_a_parse_error() -> None:
    evil = b'<?xml version="1.0"?><!DOCTYPE article [<!ENTITY x SYSTEM "file:///etc/passwd">]><article><body><p>&x;</p></body></article>'
    assert extract_figures(evil).figures == ()
    with pytest.raises(SampleError) as err:
        extract_figures(b"<article><body>")
    assert err.value.stage == "parse"


@pytest.mark.parametrize(
    ("href", "files", "name", "reason"),
    [
        ("gr1", {"gr1.jpg": "gr1.jpg", "gr1.gif": "gr1.gif"}, "gr1.jpg", None),
        ("gr1.tif", {"gr1.jpg": "gr1.jpg"}, "gr1.jpg", None),
        ("GR1", {"gr1.jpeg": "gr1.JPEG"}, "gr1.JPEG", None),
        ("gr1.jpg", {"gr1.jpg": "gr1.jpg"}, "gr1.jpg", None),
        ("gr1", {"gr1.gif": "gr1.gif"}, None, ".gif thumbnail"),
        ("gr1", {}, None, "no .jpg"),
        (None, {}, None, "no graphic"),
    ],
)
def test_the_image_is_the_jpg_matching_the_href_never_the_gif(href, files, name, reason) -> None:  # type: ignore[no-untyped-def]
    got, why = match_image(href, files)
    assert got == name
    assert (why is None) if reason is None else (reason in (why or ""))


def test_an_xref_starting_with_a_blank_belongs_to_the_sentence_it_opens() -> None:
    data = _article(
        '<p>Before it. <xref ref-type="fig" rid="F1"> Figure 1</xref> shows the rest. After it.</p>'
        '<fig id="F1"><graphic xlink:href="a"/></fig>'
    )
    (fig,) = extract_figures(data).figures
    assert fig.mentions == ("Figure 1 shows the rest.",)


SENTENCE = "This is an open access article distributed under the terms of the Creative Commons licence."


@pytest.mark.parametrize(
    ("license", "code"),
    [
        ('<license license-type="open-access" xlink:href="https://creativecommons.org/licenses/by-nc/4.0/"/>', "CC BY-NC"),
        (f'<license><ali:license_ref>https://creativecommons.org/licenses/by-nc-nd/4.0/</ali:license_ref><license-p>{SENTENCE}</license-p></license>', "CC BY-NC-ND"),
        ('<ali:license_ref start_date="2020-01-01">http://creativecommons.org/licenses/by-nc-sa/3.0/legalcode</ali:license_ref>', "CC BY-NC-SA"),
        ('<license license-type="open-access"><license-p>Under the <ext-link ext-link-type="uri" '
         'xlink:href="http://www.creativecommons.org/licenses/by-sa/4.0/">CC BY-SA licence</ext-link>.</license-p></license>', "CC BY-SA"),
        ('<license><license-p>See https://creativecommons.org/licenses/by-nd/4.0/deed.en for terms.</license-p></license>', "CC BY-ND"),
        ('<license xlink:href="https://creativecommons.org/publicdomain/zero/1.0/"/>', "CC0"),
        ('<license license-type="cc-by" xlink:href="https://creativecommons.org/licenses/by/4.0/"/>', "CC BY"),
        (f'<license license-type="open-access"><license-p>{SENTENCE}</license-p></license>', None),
        ('<license license-type="open-access" xlink:href="https://creativecommons.org/publicdomain/mark/1.0/"/>', None),
    ],
)
def test_the_xml_licence_code_comes_from_its_creativecommons_link_never_license_type_or_a_sentence(license: str, code: str | None) -> None:
    article = extract_figures(_article("", f"<permissions>{license}</permissions>"))
    assert article.license == code


@pytest.mark.parametrize(
    ("license", "expected"),
    [
        ('<license license-type="open-access" xlink:href="https://creativecommons.org/licenses/by-nc/4.0/"/>', ("CC BY-NC", False)),
        ('<license license-type="open-access" xlink:href="https://creativecommons.org/publicdomain/zero/1.0/"/>', ("CC0", True)),
        (f'<license license-type="open-access"><license-p>{SENTENCE}</license-p></license>', (None, None)),
    ],
)
def test_a_record_without_licence_takes_license_and_commercial_use_from_the_xml_link(
    license: str, expected: tuple[str | None, bool | None], tmp_path: Path
) -> None:
    """The metadata record names no licence (no ``license_code``): the article's XML decides."""
    _bucket(tmp_path / "raw", {7: license})
    [row] = _load(normalize_folder(DATASET, tmp_path / "raw", tmp_path / "out").out_dir)
    assert (row["license"], row["commercial_use"]) == expected


def test_subset_sorts_an_article_by_its_xml_licence_when_the_record_names_none(tmp_path: Path) -> None:
    _bucket(tmp_path / "raw", {
        7: '<license xlink:href="https://creativecommons.org/licenses/by/4.0/"/>',
        8: '<license license-type="open-access" xlink:href="https://creativecommons.org/licenses/by-nc/4.0/"/>',
    })
    for subset, wanted in (("commercial", ["PMC7"]), ("noncommercial", ["PMC8"])):
        options = RecipeOptions(extra={"subset": subset})
        rows = _load(normalize_folder(DATASET, tmp_path / "raw", tmp_path / subset, options=options).out_dir)
        assert rows["article_id"] == wanted and rows["commercial_use"] == [subset == "commercial"]


def test_normalize_help_lists_the_article_options_and_a_bad_value_is_refused(tmp_path: Path) -> None:
    """The recipe takes the fetch side's options, with their help, as ``--option KEY=VALUE``."""
    result = CliRunner().invoke(main, ["normalize", DATASET, "--help"])
    assert result.exit_code == 0, result.output
    assert "--option articles=FILE" in result.output and "only the articles listed in FILE" in result.output
    assert "--option subset=commercial|noncommercial" in result.output
    _bucket(tmp_path / "raw", {7: ""})
    with pytest.raises(UsageError, match="option subset must be one of commercial, noncommercial, not 'some'"):
        normalize_folder(DATASET, tmp_path / "raw", tmp_path / "out", options=RecipeOptions(extra={"subset": "some"}))


def _bucket(root: Path, licences: dict[int, str]) -> None:
    """Write articles in the per-article cloud layout whose metadata records carry no ``license_code``."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, "JPEG")
    (root / "metadata").mkdir(parents=True)
    for number, license in licences.items():
        prefix = f"PMC{number}.1"
        (root / prefix).mkdir()
        front = f'<article-id pub-id-type="pmc">PMC{number}</article-id><permissions>{license}</permissions>'
        (root / prefix / f"{prefix}.xml").write_bytes(_article('<fig id="F1"><graphic xlink:href="gr1"/></fig>', front))
        (root / prefix / "gr1.jpg").write_bytes(buffer.getvalue())
        record = {"pmcid": f"PMC{number}", "version": 1, "license_code": None, "is_retracted": False}
        (root / "metadata" / f"{prefix}.json").write_text(json.dumps(record))


def _load(out_dir: Path) -> datasets.Dataset:
    # Several outputs share one folder name (pmc-oa) in a test: a cache of their own keeps the
    # datasets cache from handing back (or checking against) a previous output.
    return datasets.load_dataset(str(out_dir), "figures", cache_dir=str(out_dir.parent / "hf-cache"))["train"]


@pytest.mark.integration
def test_pmc_oa_chain_one_row_per_figure_and_the_gif_only_figure_reported(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain(DATASET, mirror, tmp_path)
    train = result.loaded["figures"]["train"]
    assert set(train.features) >= {"image", "caption", "inline_mentions", "article_id", "figure_label", "figure_id",
                                   "pmid", "doi", "license", "commercial_use", "retracted"}
    # Every figure image is a decodable JPEG (never the GIF thumbnail).
    for row in train.select(range(3)):
        assert row["image"].format == "JPEG"
    # The newer of the two versions is the one normalized.
    versions = {(r["article_id"], r["article_version"]) for r in train}
    ids = [a for a, _ in versions]
    assert len(ids) == len(set(ids))
    assert any(v == 2 for _, v in versions)
    # Licences travel with their rows; CC BY and CC0 only are commercial.
    for row in train:
        assert row["commercial_use"] == (row["license"] in ("CC BY", "CC0"))
    # The retracted article is kept and flagged.
    assert any(train["retracted"])
    # fig-group panels are rows of their own and cite the group's sentences too.
    panels = [r for r in train if r["figure_id"].endswith(("A", "B")) and r["figure_label"].endswith(("A", "B"))]
    assert len(panels) == 2
    assert all(r["inline_mentions"] for r in panels)
    b = next(r for r in panels if r["figure_id"].endswith("B"))
    a = next(r for r in panels if r["figure_id"].endswith("A"))
    assert len(b["inline_mentions"]) == len(a["inline_mentions"]) + 1
    errors = [json.loads(line) for line in (result.out_dir / "errors.jsonl").read_text().splitlines() if line]
    assert errors[0]["stage"] == "read" and ".gif thumbnail" in errors[0]["message"]


@pytest.mark.integration
def test_pmc_oa_normalize_selects_articles_subset_and_limit(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain(DATASET, mirror, tmp_path / "all")
    expected = replicas(DATASET, mirror)[0].expected
    commercial = {p.split(".")[0] for p in expected["commercial_articles"]}

    out = normalize(NormalizeRequest(result.resolved, tmp_path / "commercial", options=RecipeOptions(extra={"subset": "commercial"})))
    ds = _load(out.out_dir)
    assert set(ds["article_id"]) == commercial
    assert all(ds["commercial_use"])

    listed = tmp_path / "articles.txt"
    first, second = sorted(expected["articles"])[:2]
    listed.write_text(f"# two articles\n{first.split('.')[0]}\n{second}\n")
    out = normalize(NormalizeRequest(result.resolved, tmp_path / "listed", options=RecipeOptions(extra={"articles": str(listed)})))
    ds = _load(out.out_dir)
    assert set(ds["article_id"]) == {first.split(".")[0], second.split(".")[0]}
    assert any(f"articles listed in {listed.name}" in line for line in (out.out_dir / "README.md").read_text().splitlines())

    out = normalize(NormalizeRequest(result.resolved, tmp_path / "limited", options=RecipeOptions(limit=3)))
    ds = _load(out.out_dir)
    assert len(set(ds["article_id"])) == 3
