"""SegmentationResult: from the engine's detections to the JSON contract and back."""

from __future__ import annotations

import json

import numpy as np
import pytest
from detections_kit import boxed_masks
from pycocotools import mask as mask_util

from backend.segmentation.result import Instance, SegmentationResult

CLASS_NAMES = ["BG", "person", "cat", "cup"]


def detections(height=40, width=60, class_ids=(2, 1, 3), scores=(0.80, 0.95, 0.90)):
    """Three detections, deliberately not in score order."""
    rng = np.random.default_rng(3)
    masks = np.zeros((height, width, 3), dtype=bool)
    masks[5:20, 10:30, 0] = True  # a rectangle
    masks[:, :, 1] = rng.random((height, width)) > 0.6  # scattered pixels: many runs
    masks[30:40, 50:60, 2] = True  # touches the bottom-right corner
    boxes = [[10, 5, 30, 20], [0, 0, 60, 40], [50, 30, 60, 40]]  # (x1, y1, x2, y2)
    return boxed_masks(boxes, class_ids, scores, masks)


def test_instances_are_sorted_by_score_and_numbered_in_that_order():
    result = SegmentationResult.from_detections(detections(), CLASS_NAMES)
    assert [i.score for i in result.instances] == pytest.approx([0.95, 0.90, 0.80])
    assert [i.id for i in result.instances] == [0, 1, 2]
    assert [(i.class_id, i.class_name) for i in result.instances] == [(1, "person"), (3, "cup"), (2, "cat")]


def test_boxes_stay_x1_y1_x2_y2():
    result = SegmentationResult.from_detections(detections(), CLASS_NAMES)
    cat = next(i for i in result.instances if i.class_name == "cat")
    assert cat.box == (10, 5, 30, 20)


def test_masks_round_trip_through_pycocotools_rle():
    dets = detections()
    result = SegmentationResult.from_detections(dets, CLASS_NAMES)
    order = np.argsort(-dets.scores)
    for inst, index in zip(result.instances, order, strict=True):
        rle = inst.to_dict()["mask"]
        assert isinstance(rle["counts"], str)
        assert rle["size"] == [40, 60]
        decoded = mask_util.decode({"size": rle["size"], "counts": rle["counts"].encode()})
        np.testing.assert_array_equal(decoded.astype(bool), dets.full_masks[:, :, index])
        assert inst.area == int(dets.full_masks[:, :, index].sum())


def test_json_round_trip_is_lossless():
    result = SegmentationResult.from_detections(detections(), CLASS_NAMES)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["width"] == 60 and data["height"] == 40
    assert set(data["instances"][0]) == {"id", "class_id", "class_name", "score", "box", "mask"}
    again = SegmentationResult.from_dict(data)
    assert again == result
    np.testing.assert_array_equal(again.instances[2].mask(), detections().full_masks[:, :, 0])


def test_no_detections_give_an_empty_result_with_the_image_size():
    empty = boxed_masks(np.zeros((0, 4)), [], [], np.zeros((30, 20, 0), bool))
    result = SegmentationResult.from_detections(empty, CLASS_NAMES)
    assert (result.width, result.height, result.instances) == (20, 30, ())
    assert result.summary() == {"instance_count": 0, "classes": [], "class_counts": {}}


def test_summary_counts_classes_most_frequent_first():
    dets = detections(class_ids=(2, 1, 2))
    summary = SegmentationResult.from_detections(dets, CLASS_NAMES).summary()
    assert summary == {
        "instance_count": 3,
        "classes": ["cat", "person"],
        "class_counts": {"cat": 2, "person": 1},
    }


def test_above_keeps_confident_instances_and_renumbers():
    result = SegmentationResult.from_detections(detections(), CLASS_NAMES).above(0.85)
    assert [(i.id, i.class_name) for i in result.instances] == [(0, "person"), (1, "cup")]


def test_a_class_id_without_a_name_is_an_error():
    dets = detections(class_ids=(2, 1, 7))
    with pytest.raises(ValueError, match=r"class ids \[7\] have no name"):
        SegmentationResult.from_detections(dets, CLASS_NAMES)


def test_the_json_is_byte_identical_to_pycocotools_on_the_full_masks():
    dets = detections()
    result = SegmentationResult.from_detections(dets, CLASS_NAMES)
    for inst, index in zip(result.instances, np.argsort(-dets.scores, kind="stable"), strict=True):
        full = mask_util.encode(np.asfortranarray(dets.full_masks[:, :, index].astype(np.uint8)))
        expected = {"size": [int(v) for v in full["size"]], "counts": full["counts"].decode("ascii")}
        assert json.dumps(inst.to_dict()["mask"]) == json.dumps(expected)


def test_instances_are_encoded_in_a_thread_pool_alike():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(3) as pool:
        in_pool = SegmentationResult.from_detections(detections(), CLASS_NAMES, pool)
    assert in_pool == SegmentationResult.from_detections(detections(), CLASS_NAMES)


def test_from_dict_names_a_missing_field():
    data = SegmentationResult.from_detections(detections(), CLASS_NAMES).to_dict()
    del data["instances"][1]["score"]
    with pytest.raises(ValueError, match="'score'"):
        SegmentationResult.from_dict(data)


def test_from_dict_rejects_a_mask_of_another_size():
    data = SegmentationResult.from_detections(detections(), CLASS_NAMES).to_dict()
    data["width"] = 61
    with pytest.raises(ValueError, match="mask in a 40x61 image"):
        SegmentationResult.from_dict(data)


def test_instance_from_dict_accepts_its_own_output():
    inst = SegmentationResult.from_detections(detections(), CLASS_NAMES).instances[0]
    assert Instance.from_dict(inst.to_dict()) == inst
