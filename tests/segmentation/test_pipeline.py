"""Segmenter: batching and progress (unit, engine faked) and real segmentation on the small parity model."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from detections_kit import boxed_masks
from PIL import Image

from backend.segmentation.model_config import load_model_config
from backend.segmentation.pipeline import Segmenter
from backend.segmentation.result import SegmentationResult

SMALL_CLASS_NAMES = ["BG", "alpha", "beta", "gamma"]


def small_config_file(tmp_path: Path, parity_dir: Path, batch: int = 1) -> Path:
    """The parity 'small' model (resnet50, 4 classes, 256x256) as a maskweb model config file."""
    values = json.loads((parity_dir / "config_small_b1.json").read_text())["values"]
    path = tmp_path / f"small_b{batch}.json"
    path.write_text(json.dumps({**values, "IMAGES_PER_GPU": batch, "CLASS_NAMES": SMALL_CLASS_NAMES}))
    return path


# --- unit: the engine replaced by a fake that records its batches -------------------------------------------


class FakeMaskRCNN:
    """Stands in for backend.mrcnn.model.MaskRCNN: one detection covering the top-left quarter per image."""

    batches: list[int] = []
    shapes: list[tuple[int, ...]] = []

    def __init__(self, config, precision="auto"):
        self.config = config
        self.precision = precision
        self.loaded = None
        self.warmed = False

    def load_weights(self, path):
        self.loaded = path
        return self

    def warm_up(self):
        self.warmed = True

    def detect_instances(self, images):
        assert len(images) <= self.config.BATCH_SIZE
        FakeMaskRCNN.batches.append(len(images))
        FakeMaskRCNN.shapes.extend(image.shape for image in images)
        out = []
        for image in images:
            h, w = image.shape[:2]
            masks = np.zeros((h, w, 1), bool)
            masks[: h // 2, : w // 2, 0] = True
            out.append(boxed_masks([[0, 0, w // 2, h // 2]], [1], [0.9], masks))
        return out


@pytest.fixture
def fake_engine(monkeypatch):
    module = types.ModuleType("backend.mrcnn.model")
    module.MaskRCNN = FakeMaskRCNN
    monkeypatch.setitem(sys.modules, "backend.mrcnn.model", module)
    FakeMaskRCNN.batches = []
    FakeMaskRCNN.shapes = []
    return FakeMaskRCNN


def test_segment_batch_runs_config_batches_and_reports_progress(fake_engine, tmp_path, parity_dir):
    config, names = load_model_config(small_config_file(tmp_path, parity_dir, batch=2))
    segmenter = Segmenter(config, names, tmp_path / "w.h5")
    assert segmenter.model.loaded == tmp_path / "w.h5"
    images = [np.zeros((10 + i, 20, 3), np.uint8) for i in range(5)]
    events = []
    results = segmenter.segment_batch(images, progress=lambda stage, f: events.append((stage, round(f, 2))))
    assert fake_engine.batches == [2, 2, 1]
    assert [(r.height, r.width) for r in results] == [(10 + i, 20) for i in range(5)]
    assert results[0].instances[0].class_name == "alpha"
    assert events == [
        ("model", 0.0), ("model", 0.4), ("model", 0.8), ("model", 1.0),
        ("masks", 0.0), ("masks", 0.2), ("masks", 0.4), ("masks", 0.6), ("masks", 0.8), ("masks", 1.0),
    ]  # fmt: skip


def test_warm_up_compiles_the_model(fake_engine, tmp_path, parity_dir):
    config, names = load_model_config(small_config_file(tmp_path, parity_dir, batch=2))
    segmenter = Segmenter(config, names, tmp_path / "weights.h5")
    segmenter.warm_up()
    assert segmenter.model.warmed


def test_segment_rejects_what_is_not_an_rgb_image(fake_engine, tmp_path, parity_dir):
    config, names = load_model_config(small_config_file(tmp_path, parity_dir))
    segmenter = Segmenter(config, names, None)
    with pytest.raises(ValueError, match=r"uint8 \[H, W, 3\]"):
        segmenter.segment(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        segmenter.segment(np.zeros((0, 10, 3), np.uint8))


def test_class_names_must_fit_the_config(fake_engine, tmp_path, parity_dir):
    config, _ = load_model_config(small_config_file(tmp_path, parity_dir))
    with pytest.raises(ValueError, match="3 class names for a model of 4 classes"):
        Segmenter(config, ["BG", "a", "b"], None)


def test_from_settings_uses_the_model_config_and_weights_it_names(
    fake_engine, tmp_path, parity_dir, small_weights
):
    settings = types.SimpleNamespace(
        model_config=str(small_config_file(tmp_path, parity_dir)), weights=small_weights, precision="fast"
    )
    segmenter = Segmenter.from_settings(settings)
    assert segmenter.class_names == SMALL_CLASS_NAMES
    assert Path(segmenter.model.loaded) == Path(small_weights)
    assert segmenter.model.precision == "fast"  # MASKWEB_PRECISION reaches the engine


# --- integration: the real engine on the parity small weights ----------------------------------------------


@pytest.fixture(scope="module")
def small_segmenter(tmp_path_factory, parity_dir, small_weights):
    config, names = load_model_config(small_config_file(tmp_path_factory.mktemp("cfg"), parity_dir))
    return Segmenter(config, names, small_weights)


def reference_result(parity_dir: Path, name: str):
    """matterport's detect() result for a parity image, in the engine's detections interface."""
    ref = np.load(parity_dir / "reference" / f"small_{name}.npz")
    count = int(ref["result0_masks_shape"][2])
    masks = np.unpackbits(ref["result0_masks_packbits"], axis=-1, count=count).astype(bool)
    rois = ref["result0_rois"]  # matterport's (y1, x1, y2, x2)
    return boxed_masks(rois[:, [1, 0, 3, 2]], ref["result0_class_ids"], ref["result0_scores"], masks)


@pytest.mark.parametrize("name", ["astronaut", "chelsea"])
def test_segment_matches_the_reference_detections(small_segmenter, parity_dir, name):
    image = np.asarray(Image.open(parity_dir / "inputs" / f"{name}.png").convert("RGB"))
    stages = []
    result = small_segmenter.segment(image, progress=lambda stage, f: stages.append(stage))
    assert stages[0] == "model" and stages[-1] == "masks"
    assert (result.width, result.height) == (image.shape[1], image.shape[0])

    expected = SegmentationResult.from_detections(reference_result(parity_dir, name), SMALL_CLASS_NAMES)
    assert len(result.instances) == len(expected.instances) > 0
    scores = [i.score for i in result.instances]
    assert scores == sorted(scores, reverse=True)
    assert [i.id for i in result.instances] == list(range(len(scores)))
    # Near-tied scores may swap places, so pair each reference instance with one of ours by class, score and box.
    unmatched = list(result.instances)
    for theirs in expected.instances:
        candidates = [
            i
            for i in unmatched
            if i.class_id == theirs.class_id
            and abs(i.score - theirs.score) <= 1e-3
            and np.abs(np.array(i.box) - np.array(theirs.box)).max() <= 1
        ]
        assert candidates, f"no instance of ours matches the reference {theirs.class_name} {theirs.score}"
        ours = min(candidates, key=lambda i: abs(i.score - theirs.score))
        unmatched.remove(ours)
        a, b = ours.mask(), theirs.mask()
        # IoU >= 0.98, with 2 pixels of slack: masks in 1-pixel-wide border boxes have only a few pixels.
        assert (a ^ b).sum() <= max(0.02 * (a | b).sum(), 2)
    again = SegmentationResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result


def test_segment_is_the_engine_detections_in_result_form(small_segmenter, parity_dir):
    # 333 x 517: not square, so the masks must come back at the original size, not the molded 256 x 256.
    image = np.asarray(Image.open(parity_dir / "inputs" / "synthetic.png").convert("RGB"))
    detections = small_segmenter.model.detect_instances([image])[0]
    result = small_segmenter.segment(image)
    assert (result.height, result.width) == image.shape[:2]
    assert result == SegmentationResult.from_detections(detections, SMALL_CLASS_NAMES)
    order = np.argsort(-detections.scores, kind="stable")
    for inst, index in zip(result.instances, order, strict=True):
        np.testing.assert_array_equal(inst.mask(), detections.full_mask(index))


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "synthetic"])
def test_result_json_is_byte_identical_to_pycocotools_on_full_masks(small_segmenter, parity_dir, name):
    """Masks encoded box by box give the JSON that encoding each full-image mask with pycocotools gives."""
    from pycocotools import mask as mask_util

    image = np.asarray(Image.open(parity_dir / "inputs" / f"{name}.png").convert("RGB"))
    (detections,) = small_segmenter.detect([image])
    result = small_segmenter.to_results([image], [detections])[0]
    full = detections.to_matterport()  # [H, W, N] masks, as the result was built before issue 9
    order = np.argsort(-full["scores"].astype(np.float64), kind="stable")
    expected = []
    for new_id, index in enumerate(order):
        rle = mask_util.encode(np.asfortranarray(full["masks"][:, :, index].astype(np.uint8)))
        y1, x1, y2, x2 = (int(v) for v in full["rois"][index])
        expected.append({
            "id": new_id, "class_id": int(full["class_ids"][index]),
            "class_name": SMALL_CLASS_NAMES[int(full["class_ids"][index])],
            "score": round(float(full["scores"][index]), 6), "box": [x1, y1, x2, y2],
            "mask": {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")},
        })  # fmt: skip
    assert len(expected) > 0
    assert json.dumps(result.to_dict()) == json.dumps({"width": image.shape[1], "height": image.shape[0],
                                                       "instances": expected})  # fmt: skip
