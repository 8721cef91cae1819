"""Anchors equal matterport's get_anchors() for both configs."""

from __future__ import annotations

import json

import numpy as np

from backend.mrcnn.anchors import backbone_shapes, denormalize_boxes, normalize_boxes, pyramid_anchors
from backend.mrcnn.config import Config


def test_coco_anchors_match_reference(parity_dir):
    config = Config.from_dict(json.loads((parity_dir / "config_coco.json").read_text())["values"])
    reference = np.load(parity_dir / "reference" / "anchors_coco.npz")["anchors"]
    np.testing.assert_array_equal(pyramid_anchors(config, (1024, 1024, 3)), reference)


def test_small_anchors_match_reference(parity_dir):
    config = Config.from_dict(json.loads((parity_dir / "config_small.json").read_text())["values"])
    reference = np.load(parity_dir / "reference" / "small_astronaut.npz")["anchors"]
    np.testing.assert_array_equal(pyramid_anchors(config, (256, 256, 3)), reference)


def test_level_shapes_round_up():
    assert backbone_shapes((100, 130), (4, 8, 16, 32, 64)) == [(25, 33), (13, 17), (7, 9), (4, 5), (2, 3)]


def test_normalize_and_denormalize_are_inverse():
    boxes = np.array([[0, 0, 10, 20], [3, 4, 9, 17]])
    np.testing.assert_array_equal(denormalize_boxes(normalize_boxes(boxes, (10, 20)), (10, 20)), boxes)
