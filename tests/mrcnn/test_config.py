"""Config: matterport's names and defaults, derived values, from_dict/to_dict, the COCO preset."""

from __future__ import annotations

import json

import pytest

from backend.mrcnn.config import COCO_CLASS_NAMES, CocoConfig, Config


@pytest.mark.parametrize("name", ["coco", "small", "small_b1"])
def test_round_trip_matches_the_reference_values(parity_dir, name):
    values = json.loads((parity_dir / f"config_{name}.json").read_text())["values"]
    config = Config.from_dict(values)
    assert config.to_dict() == values


def test_derived_values_are_recomputed_not_copied(parity_dir):
    values = json.loads((parity_dir / "config_small.json").read_text())["values"]
    values = {**values, "IMAGES_PER_GPU": 3, "NUM_CLASSES": 7, "IMAGE_MAX_DIM": 512}
    config = Config.from_dict(values)  # BATCH_SIZE, IMAGE_META_SIZE, IMAGE_SHAPE in the dict are stale
    assert config.BATCH_SIZE == 3
    assert config.IMAGE_META_SIZE == 12 + 7
    assert config.IMAGE_SHAPE == (512, 512, 3)
    crop = Config(IMAGE_RESIZE_MODE="crop", IMAGE_MIN_DIM=320, IMAGE_MAX_DIM=512)
    assert crop.IMAGE_SHAPE == (320, 320, 3)


def test_unknown_name_is_rejected_by_name():
    with pytest.raises(ValueError, match="DETECTION_MIN_CONFIDENCY"):
        Config.from_dict({"NUM_CLASSES": 2, "DETECTION_MIN_CONFIDENCY": 0.5})


def test_training_attributes_are_accepted_and_exported():
    config = Config.from_dict(
        {"LEARNING_RATE": 0.02, "LOSS_WEIGHTS": {"rpn_class_loss": 2.0}, "TRAIN_BN": True}
    )
    assert config.to_dict()["LEARNING_RATE"] == 0.02
    assert config.to_dict()["LOSS_WEIGHTS"] == {"rpn_class_loss": 2.0}


def test_lists_go_in_and_come_out_as_lists_without_sharing():
    scales = [16, 32, 64, 128, 256]
    config = Config.from_dict({"RPN_ANCHOR_SCALES": scales, "MEAN_PIXEL": [1.0, 2.0, 3.0]})
    scales.append(512)
    assert config.RPN_ANCHOR_SCALES == (16, 32, 64, 128, 256)
    assert config.to_dict()["MEAN_PIXEL"] == [1.0, 2.0, 3.0]
    json.dumps(config.to_dict())


def test_defaults_are_matterports():
    config = Config()
    assert (config.BACKBONE, config.NUM_CLASSES, config.IMAGES_PER_GPU, config.BATCH_SIZE) == (
        "resnet101",
        1,
        2,
        2,
    )
    assert config.IMAGE_SHAPE == (1024, 1024, 3) and config.IMAGE_META_SIZE == 13
    assert (config.PRE_NMS_LIMIT, config.POST_NMS_ROIS_INFERENCE, config.DETECTION_MAX_INSTANCES) == (
        6000,
        1000,
        100,
    )


@pytest.mark.parametrize(
    "values, message",
    [
        ({"BACKBONE": "resnet152"}, "BACKBONE"),
        ({"IMAGE_RESIZE_MODE": "stretch"}, "IMAGE_RESIZE_MODE"),
        ({"IMAGE_MAX_DIM": 1000}, "multiple of 64"),
        ({"NUM_CLASSES": 0}, "NUM_CLASSES"),
        ({"MEAN_PIXEL": [1.0, 2.0]}, "MEAN_PIXEL"),
    ],
)
def test_unusable_values_get_a_clear_error(values, message):
    with pytest.raises(ValueError, match=message):
        Config.from_dict(values)


def test_coco_preset(parity_dir):
    config = CocoConfig()
    assert config.to_dict() == json.loads((parity_dir / "config_coco.json").read_text())["values"]
    names = config.class_names
    assert len(names) == 81 and names == COCO_CLASS_NAMES
    assert names[:4] == ("BG", "person", "bicycle", "car")
    assert names[57] == "chair" and names[62] == "toilet" and names[-1] == "toothbrush"
    assert len(set(names)) == 81


def test_generic_class_names_for_other_configs():
    assert Config(NUM_CLASSES=3).class_names == ("BG", "class_1", "class_2")
