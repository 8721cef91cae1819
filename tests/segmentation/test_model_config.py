"""load_model_config: the COCO preset, a JSON file of matterport attributes, and clear errors for bad files."""

from __future__ import annotations

import json

import pytest

from backend.segmentation.model_config import ModelConfigError, load_model_config


def write(tmp_path, data, name="model.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_coco_preset_has_81_named_classes_and_one_image_per_batch():
    config, names = load_model_config("coco")
    assert config.NUM_CLASSES == len(names) == 81
    assert names[:3] == ["BG", "person", "bicycle"] and names[-1] == "toothbrush"
    assert config.BACKBONE == "resnet101"
    assert (config.GPU_COUNT, config.BATCH_SIZE) == (1, 1)


def test_a_json_file_sets_matterport_attributes(tmp_path):
    path = write(tmp_path, {
        "NAME": "balloon", "NUM_CLASSES": 2, "BACKBONE": "resnet50", "DETECTION_MIN_CONFIDENCE": 0.9,
        "RPN_ANCHOR_SCALES": [16, 32, 64, 128, 256], "IMAGES_PER_GPU": 2,
        "CLASS_NAMES": ["BG", "balloon"],
    })  # fmt: skip
    config, names = load_model_config(str(path))
    assert names == ["BG", "balloon"]
    assert (config.NAME, config.NUM_CLASSES, config.BACKBONE) == ("balloon", 2, "resnet50")
    assert config.DETECTION_MIN_CONFIDENCE == 0.9
    assert tuple(config.RPN_ANCHOR_SCALES) == (16, 32, 64, 128, 256)
    assert (config.IMAGES_PER_GPU, config.BATCH_SIZE) == (2, 2)


def test_inference_runs_on_one_device_with_one_image_unless_the_file_says(tmp_path):
    path = write(tmp_path, {"GPU_COUNT": 8, "CLASS_NAMES": ["BG", "a", "b"]})
    config, names = load_model_config(path)
    assert (config.GPU_COUNT, config.IMAGES_PER_GPU, config.BATCH_SIZE) == (1, 1, 1)
    assert config.NUM_CLASSES == 3  # taken from the class list when the file leaves it out


def test_the_parity_small_config_loads(tmp_path, parity_dir):
    values = json.loads((parity_dir / "config_small_b1.json").read_text())["values"]
    path = write(tmp_path, {**values, "CLASS_NAMES": ["BG", "a", "b", "c"]})
    config, _ = load_model_config(path)
    assert config.to_dict()["IMAGE_SHAPE"] == values["IMAGE_SHAPE"]
    assert config.BACKBONE == "resnet50"


def test_unknown_attribute_is_named(tmp_path):
    path = write(tmp_path, {"NUM_CLASSES": 2, "DETECTION_MIN_CONFIDENCY": 0.5, "CLASS_NAMES": ["BG", "a"]})
    with pytest.raises(ModelConfigError, match="DETECTION_MIN_CONFIDENCY") as info:
        load_model_config(path)
    assert str(path) in str(info.value)


def test_class_count_must_match_num_classes(tmp_path):
    path = write(tmp_path, {"NUM_CLASSES": 3, "CLASS_NAMES": ["BG", "a"]})
    with pytest.raises(ModelConfigError, match="CLASS_NAMES has 2 names but NUM_CLASSES is 3"):
        load_model_config(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"NUM_CLASSES": 2,', "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ({"NUM_CLASSES": 2}, "CLASS_NAMES is missing"),
        ({"CLASS_NAMES": ["cat", "dog"]}, "must start with 'BG'"),
        ({"CLASS_NAMES": ["BG", "cat", "cat"]}, r"repeats \['cat'\]"),
        ({"CLASS_NAMES": ["BG", 3]}, "list of non-empty strings"),
        ({"CLASS_NAMES": ["BG", "a"], "BACKBONE": "vgg16"}, "BACKBONE must be one of"),
    ],
)
def test_bad_files_get_a_clear_error(tmp_path, content, message):
    with pytest.raises(ModelConfigError, match=message):
        load_model_config(write(tmp_path, content))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ModelConfigError, match="no such file"):
        load_model_config(tmp_path / "nope.json")
