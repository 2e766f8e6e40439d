"""Label vocabularies map upstream spellings exactly and refuse to guess."""

from __future__ import annotations

from pathlib import Path

import pytest

from medcat_data.converters import vocab
from medcat_data.converters.vocab.docs import render_markdown
from medcat_data.errors import SampleError

REPO = Path(__file__).resolve().parents[4]


def test_vindr_and_cbis_share_birads_names() -> None:
    vindr = vocab.BIRADS.map("vindr-mammo breast_birads", "BI-RADS 4", item="a.dicom", column="breast_birads")
    cbis = vocab.BIRADS.map("cbis-ddsm assessment", 4, item="P_00001", column="assessment")
    assert vindr == cbis == "BI-RADS 4"


def test_density_from_both_sources() -> None:
    assert vocab.DENSITY.map("vindr-mammo breast_density", "DENSITY C", item="x", column="breast_density") == "C"
    assert vocab.DENSITY.map("cbis-ddsm breast_density", "3", item="x", column="breast density") == "C"


def test_chexpert_four_states_stay_distinct() -> None:
    source = "mimic-cxr-jpg chexpert/negbio"
    states = {v: vocab.CHEXPERT_MENTION.map(source, v, item="s1", column="Edema") for v in ("1.0", "0.0", "-1.0", "")}
    assert states == {"1.0": "positive", "0.0": "negative", "-1.0": "uncertain", "": "unmentioned"}


def test_empty_finding_birads_is_unassessed() -> None:
    assert vocab.FINDING_BIRADS.map("vindr-mammo finding_birads", "", item="x", column="finding_birads") == "unassessed"


def test_unknown_value_is_a_sample_error_naming_column_and_value() -> None:
    with pytest.raises(SampleError) as info:
        vocab.DENSITY.map("vindr-mammo breast_density", "DENSITY E", item="images/s/i.dicom", column="breast_density")
    err = info.value
    assert err.path == "images/s/i.dicom" and err.stage == "labels"
    assert "breast_density" in err.reason and "'DENSITY E'" in err.reason


def test_cbis_laterality_is_normalised() -> None:
    assert vocab.LATERALITY.map("cbis-ddsm left or right breast", "LEFT", item="x", column="c") == "L"


def test_skin_cancers_are_marked() -> None:
    from medcat_data.converters.vocab.skin import CANCERS

    assert CANCERS == {"BCC", "MEL", "SCC"} and CANCERS <= set(vocab.SKIN_DIAGNOSIS.labels)


def test_docs_labels_md_is_in_sync() -> None:
    committed = (REPO / "docs" / "labels.md").read_text(encoding="utf-8")
    assert committed == render_markdown(), "regenerate: python -m medcat_data.converters.vocab.docs > docs/labels.md"
