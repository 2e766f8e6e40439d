"""The task schemas: common columns everywhere, declared order, and datasets that concatenate."""

from __future__ import annotations

import io

import pytest
from datasets import ClassLabel, Dataset, Features, Image, List, Value, concatenate_datasets
from PIL import Image as PILImage

from medcat_data.catalog.schema import Task
from medcat_data.converters import schemas
from medcat_data.converters.schemas import MultiLabel

COMMON = ("source", "sample_id", "split")


def _all_task_features() -> dict[Task, Features]:
    return {
        Task.IMAGE_CLASSIFICATION: schemas.image_classification_features({"label": ["a", "b"]}),
        Task.OBJECT_DETECTION: schemas.object_detection_features(["mass", "calcification"]),
        Task.REPORT_GENERATION: schemas.report_generation_features({"Edema": ["negative", "positive"]}),
        Task.VQA: schemas.vqa_features(),
        Task.TEXT_QA: schemas.text_qa_features(),
        Task.IMAGE_TEXT: schemas.image_text_features(),
        Task.VARIANT_CALLING: schemas.variant_calling_features(),
        Task.TABULAR: schemas.tabular_features({"age": Value("int64")}),
    }


def test_every_task_has_a_builder() -> None:
    assert set(schemas.TASK_BUILDERS) == set(Task)


@pytest.mark.parametrize("task", list(Task), ids=lambda t: t.value)
def test_every_schema_carries_source_sample_id_and_split(task: Task) -> None:
    features = _all_task_features()[task]
    for name in COMMON:
        assert features[name] == Value("string")


@pytest.mark.parametrize("task", list(Task), ids=lambda t: t.value)
def test_every_schema_survives_the_arrow_schema_round_trip(task: Task) -> None:
    features = _all_task_features()[task]
    assert Features.from_arrow_schema(features.arrow_schema) == features


def test_image_classification_orders_image_labels_ids_then_common_then_extras() -> None:
    features = schemas.image_classification_features(
        {"birads": ["1", "2"], "findings": MultiLabel(["mass", "calc"])}, extras={"age": Value("int32")}
    )
    assert list(features) == [
        "image", "birads", "findings", "patient_id", "study_id", "view", "laterality", "modality",
        "source", "sample_id", "split", "age",
    ]  # fmt: skip
    assert features["image"] == Image()
    assert features["birads"] == ClassLabel(names=["1", "2"])
    assert features["findings"] == List(ClassLabel(names=["mass", "calc"]))


def test_unlabelled_image_classification_has_no_label_column() -> None:
    assert "label" not in schemas.image_classification_features()


def test_an_extra_may_not_shadow_a_core_column() -> None:
    with pytest.raises(ValueError, match="shadows"):
        schemas.image_classification_features(extras={"image": Image()})


def test_duplicate_class_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        schemas.label_feature(["a", "a"])


def test_object_detection_objects_are_a_dict_of_lists_with_xyxy_boxes() -> None:
    features = schemas.object_detection_features(["mass"], object_extras={"birads": ClassLabel(names=["3", "4"])})
    objects = features["objects"]
    assert objects["bbox"] == List(List(Value("float32"), length=4))
    assert objects["category"] == List(ClassLabel(names=["mass"]))
    assert objects["birads"] == List(ClassLabel(names=["3", "4"]))
    assert {"width", "height", "scale"} <= set(features)


def test_tabular_columns_may_not_clash_with_common_columns() -> None:
    with pytest.raises(ValueError, match="clash"):
        schemas.tabular_features({"split": Value("string")})


def _png() -> bytes:
    buf = io.BytesIO()
    PILImage.new("L", (4, 4), 7).save(buf, "PNG")
    return buf.getvalue()


def test_vqa_datasets_from_two_sources_concatenate() -> None:
    features = schemas.vqa_features()

    def rows(source: str, answer_type: str) -> Dataset:
        row = {
            "images": [{"bytes": _png(), "path": None}],
            "question": "is there an effusion?",
            "answer": "yes",
            "answer_type": answer_type,
            "options": ["yes", "no"] if answer_type == "closed" else [],
            "answer_idx": 0 if answer_type == "closed" else None,
            "source": source,
            "sample_id": f"{source}/1",
            "split": "train",
        }
        return Dataset.from_list([row], features=features)

    joined = concatenate_datasets([rows("vqa-rad@1", "closed"), rows("slake@1", "open")])
    assert joined.features == features
    assert joined["source"] == ["vqa-rad@1", "slake@1"]
    assert joined.features["answer_type"].int2str(joined["answer_type"]) == ["closed", "open"]
