"""MaskRCNN on TensorFlow: weight loading by name, strictness and exclude, detect() inputs, run_graph()."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from mrcnn_parity import load_input

pytest.importorskip("tensorflow")

from backend.mrcnn import weights_io  # noqa: E402
from backend.mrcnn.model import MaskRCNN  # noqa: E402


def file_layout(parity_dir, name):
    return weights_io.layout_from_json(json.loads((parity_dir / f"layout_{name}.json").read_text()))


def test_small_model_layout_equals_the_file_layout(parity_dir, small_b1_model):
    assert small_b1_model.weight_layout() == file_layout(parity_dir, "small")
    shapes = small_b1_model.weight_shapes()
    layers = json.loads((parity_dir / "layout_small.json").read_text())["layers"]
    in_file_order = {
        la["name"]: [tuple(d["shape"]) for d in la["datasets"]] for la in layers if la["datasets"]
    }
    assert shapes == in_file_order
    assert shapes["rpn_model"][0] == (3, 3, 256, 512) and shapes["mrcnn_mask"] == [(1, 1, 256, 4), (4,)]


@pytest.mark.slow
def test_coco_model_layout_equals_the_file_layout(parity_dir, coco_model):
    layout = coco_model.weight_layout()
    assert layout == file_layout(parity_dir, "coco")
    assert len(layout) == 233 and sum(len(v) for v in layout.values()) == 690
    assert sum(int(np.prod(s)) for v in layout.values() for s in v.values()) == 64_158_584


def test_loaded_values_are_the_files(small_b1_model, small_weights):
    variables = small_b1_model._network.weighted_layers()
    with h5py.File(small_weights, "r") as f:
        for layer, key in [
            ("bn_conv1", "bn_conv1/moving_variance"),
            ("rpn_model", "rpn_bbox_pred/kernel"),
            ("mrcnn_mask_deconv", "mrcnn_mask_deconv/kernel"),
            ("fpn_p3", "fpn_p3/bias"),
        ]:
            np.testing.assert_array_equal(np.asarray(variables[layer][key]), f[layer][key + ":0"][()])


@pytest.mark.parametrize(
    ("conv", "norm"),
    [("conv1", "bn_conv1"), ("res4f_branch2c", "bn4f_branch2c"), ("mrcnn_class_conv1", "mrcnn_class_bn1"),
     ("mrcnn_mask_conv4", "mrcnn_mask_bn4")],
)  # fmt: skip
def test_batch_norms_are_folded_into_their_convolutions_on_load(small_b1_model, small_weights, conv, norm):
    variables = small_b1_model._network.weighted_layers()
    with h5py.File(small_weights, "r") as f:
        kernel, bias = (f[conv][f"{conv}/{k}:0"][()].astype(np.float64) for k in ("kernel", "bias"))
        gamma, beta, mean, var = (
            f[norm][f"{norm}/{k}:0"][()].astype(np.float64)
            for k in ("gamma", "beta", "moving_mean", "moving_variance")
        )
    scale = gamma / np.sqrt(var + 1e-3)
    np.testing.assert_allclose(np.asarray(variables[conv][f"{conv}/kernel"]), kernel * scale, rtol=1e-6)
    np.testing.assert_allclose(
        np.asarray(variables[conv][f"{conv}/bias"]), (bias - mean) * scale + beta, rtol=1e-5, atol=1e-6
    )
    graph = next(iter(small_b1_model._network.graphs.values()))
    assert not any(layer.name == norm for layer in graph.layers)  # not in the graph any more


def test_folded_and_unfolded_models_find_the_same(parity_dir, small_b1_model, small_weights):
    unfolded = MaskRCNN(small_b1_model.config, fold_batch_norms=False).load_weights(small_weights)
    graph = next(iter(unfolded._network.graphs.values()))
    assert any(layer.name == "bn_conv1" for layer in graph.layers)
    image = load_input(parity_dir, "chelsea")
    (folded,), (unfolded,) = small_b1_model.detect([image]), unfolded.detect([image])
    # folding rounds differently (one product instead of a product and an affine map): float32 noise only
    assert folded["class_ids"].tolist() == unfolded["class_ids"].tolist()
    assert np.abs(folded["rois"] - unfolded["rois"]).max() <= 1
    np.testing.assert_allclose(folded["scores"], unfolded["scores"], atol=1e-4)
    inter = (folded["masks"] & unfolded["masks"]).sum((0, 1))
    union = (folded["masks"] | unfolded["masks"]).sum((0, 1))
    assert (inter >= 0.99 * union).all()  # mask IoU >= 0.99 (empty masks on both sides count as equal)


def test_a_second_load_may_not_replace_a_folded_batch_norm_alone(parity_dir, small_weights):
    from backend.mrcnn.config import Config

    values = json.loads((parity_dir / "config_small_b1.json").read_text())["values"]
    model = MaskRCNN(Config.from_dict(values)).load_weights(small_weights)
    with pytest.raises(ValueError, match="res2a_branch2a"):
        model.load_weights(small_weights, exclude=["res.*"])
    model.load_weights(small_weights, exclude=["bn.*"])  # convolutions keep folded values: allowed


def test_mask_head_runs_on_the_smallest_bucket_that_holds_the_detections(parity_dir, small_b1_model):
    model, config = small_b1_model, small_b1_model.config
    assert model.mask_buckets == (8, 16, 32, 64, config.DETECTION_MAX_INSTANCES)
    rows = np.zeros((2, config.DETECTION_MAX_INSTANCES, 6), np.float32)
    assert model.mask_bucket(rows) == 0
    rows[0, :9, 4], rows[1, :3, 4] = 1, 2
    assert model.mask_bucket(rows) == 16
    rows[1, :, 4] = 3
    assert model.mask_bucket(rows) == config.DETECTION_MAX_INSTANCES

    out = model.run_graph([load_input(parity_dir, "chelsea")], ["detections", "mrcnn_mask", "class_masks"])
    count = int((out["detections"][0, :, 4] > 0).sum())
    bucket = model.mask_bucket(out["detections"])
    assert count <= bucket < 2 * count and out["mrcnn_mask"].shape[1] == bucket
    # the same rows as the mask head computes over all DETECTION_MAX_INSTANCES rows
    molded, metas, _ = model.mold([load_input(parity_dir, "chelsea")])
    found = model._compiled_detector(molded[0].shape, ("detections", "P2", "P3", "P4", "P5"))(
        [np.stack(molded), np.stack(metas).astype(np.float32), model_anchors(model, molded[0].shape)]
    )
    rows = np.asarray(found["detections"])
    full = model._compiled_masks(molded[0].shape, config.DETECTION_MAX_INSTANCES)(
        [*(found[p] for p in ("P2", "P3", "P4", "P5")), rows[..., :4], rows[..., 4].astype(np.int32),
         np.stack(metas).astype(np.float32)]
    )  # fmt: skip
    np.testing.assert_allclose(
        out["mrcnn_mask"][0, :count], np.asarray(full["mrcnn_mask"])[0, :count], atol=1e-6
    )
    classes = out["detections"][0, :count, 4].astype(int)
    np.testing.assert_array_equal(
        out["class_masks"][0, :count], out["mrcnn_mask"][0, np.arange(count), :, :, classes]
    )


def model_anchors(model, shape):
    from backend.mrcnn.anchors import pyramid_anchors

    return pyramid_anchors(model.config, shape)[None]


@pytest.fixture(scope="module")
def five_class_model(parity_dir):
    """The small model with another class count: the heads no longer fit the small weights file."""
    values = json.loads((parity_dir / "config_small_b1.json").read_text())["values"]
    from backend.mrcnn.config import Config

    return MaskRCNN(Config.from_dict({**values, "NUM_CLASSES": 5}))


def test_heads_of_another_class_count_fail_strictly_and_load_nothing(five_class_model, small_weights):
    before = np.asarray(five_class_model._network.weighted_layers()["conv1"]["conv1/kernel"]).copy()
    with pytest.raises(weights_io.WeightsMismatchError) as info:
        five_class_model.load_weights(small_weights)
    message = str(info.value)
    for head in ("mrcnn_class_logits/kernel", "mrcnn_bbox_fc/kernel", "mrcnn_mask/kernel"):
        assert head in message
    assert "missing" not in message and "unexpected" not in message
    assert "exclude='heads'" in message
    after = np.asarray(five_class_model._network.weighted_layers()["conv1"]["conv1/kernel"])
    np.testing.assert_array_equal(after, before)  # nothing assigned


def test_exclude_heads_loads_the_rest(five_class_model, small_weights):
    five_class_model.load_weights(small_weights, exclude="heads")
    variables = five_class_model._network.weighted_layers()
    with h5py.File(small_weights, "r") as f:
        np.testing.assert_array_equal(
            np.asarray(variables["fpn_p2"]["fpn_p2/kernel"]), f["fpn_p2/fpn_p2/kernel:0"][()]
        )
    image = random_image()
    (result,) = five_class_model.detect([image])
    assert result["masks"].shape[:2] == image.shape[:2]


def random_image():
    rng = np.random.default_rng(3)
    return rng.integers(0, 255, (120, 90, 3), dtype=np.uint8)


def test_missing_file_and_non_weights_file(small_b1_model, tmp_path):
    with pytest.raises(FileNotFoundError):
        small_b1_model.load_weights(tmp_path / "absent.h5")
    bogus = tmp_path / "bogus.h5"
    bogus.write_bytes(b"not hdf5")
    with pytest.raises(weights_io.WeightsFileError):
        small_b1_model.load_weights(bogus)


def same_result(a, b, score_atol=0.0):
    assert a["class_ids"].tolist() == b["class_ids"].tolist()
    np.testing.assert_array_equal(a["rois"], b["rois"])
    np.testing.assert_allclose(a["scores"], b["scores"], atol=score_atol)
    np.testing.assert_array_equal(a["masks"], b["masks"])


def test_detect_accepts_every_channel_layout_and_dtype(parity_dir, small_b1_model):
    rgb = load_input(parity_dir, "chelsea")
    gray = (rgb.mean(axis=2)).astype(np.uint8)
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 128, np.uint8)], axis=2)
    results = small_b1_model.detect(
        [rgb, rgba, rgb.astype(np.float32), gray, gray[..., None], np.stack([gray] * 3, -1)]
    )
    assert len(results) == 6
    assert len(results[0]["class_ids"]) > 0
    same_result(results[1], results[0])  # alpha dropped
    # float 0..255 works; it is not truncated to integers after resizing (as in matterport), so it may differ
    assert results[2]["masks"].shape == results[0]["masks"].shape and results[2]["scores"].dtype == np.float32
    same_result(results[3], results[5])  # grayscale HxW = gray RGB
    same_result(results[4], results[5])


def test_detect_batches_any_number_of_images(parity_dir, small_model):
    astronaut, synthetic = load_input(parity_dir, "astronaut"), load_input(parity_dir, "synthetic")
    assert small_model.config.BATCH_SIZE == 2
    three = small_model.detect([astronaut, synthetic, astronaut])  # last batch padded
    assert len(three) == 3
    same_result(three[2], three[0], score_atol=1e-4)
    assert small_model.detect([]) == []


def test_run_molded_rejects_empty_or_mismatched_input(small_b1_model):
    with pytest.raises(ValueError, match="molded images"):
        small_b1_model.run_molded(np.zeros((0, 256, 256, 3), np.float32), np.zeros((0, 16)))
    with pytest.raises(ValueError, match="molded images"):
        small_b1_model.run_molded(np.zeros((1, 256, 256, 3), np.float32), np.zeros((2, 16)))


def test_detect_rejects_bad_input_clearly(small_b1_model):
    with pytest.raises(TypeError, match="list of images"):
        small_b1_model.detect(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        small_b1_model.detect([np.zeros((64, 64, 2), np.uint8)])


def test_run_graph_returns_named_stages(parity_dir, small_b1_model):
    config = small_b1_model.config
    out = small_b1_model.run_graph(
        [load_input(parity_dir, "chelsea")],
        ["proposals", "class_probs", "mrcnn_bbox", "raw_detections", "P2"],
    )
    assert out["proposals"].shape == (1, config.POST_NMS_ROIS_INFERENCE, 4)
    assert out["class_probs"].shape == (1, config.POST_NMS_ROIS_INFERENCE, config.NUM_CLASSES)
    np.testing.assert_allclose(out["class_probs"].sum(-1), 1.0, rtol=1e-5)
    assert out["mrcnn_bbox"].shape == (1, config.POST_NMS_ROIS_INFERENCE, config.NUM_CLASSES, 4)
    assert out["raw_detections"].shape == (1, config.DETECTION_MAX_INSTANCES, 6)
    assert out["P2"].shape == (1, 64, 64, 256)
    with pytest.raises(ValueError, match="no_such_layer"):
        small_b1_model.run_graph([load_input(parity_dir, "chelsea")], ["no_such_layer"])


def test_pad64_mode_builds_one_graph_per_shape_with_shared_weights(parity_dir, small_weights):
    values = json.loads((parity_dir / "config_small_b1.json").read_text())["values"]
    from backend.mrcnn.config import Config

    config = Config.from_dict({**values, "IMAGE_RESIZE_MODE": "pad64", "IMAGE_MIN_DIM": 128})
    model = MaskRCNN(config).load_weights(small_weights)
    rng = np.random.default_rng(0)
    wide, tall = rng.integers(0, 255, (100, 150, 3), np.uint8), rng.integers(0, 255, (70, 64, 3), np.uint8)
    results = model.detect([wide, tall])
    assert [r["masks"].shape[:2] for r in results] == [(100, 150), (70, 64)]
    assert {(128, 192, 3), (192, 128, 3)} <= set(model._network.graphs)
    # the graphs share the weighted layers, so the second shape runs on the loaded weights too
    wide_graph, tall_graph = model._network.graphs[(128, 192, 3)], model._network.graphs[(192, 128, 3)]
    assert wide_graph.get_layer("conv1") is tall_graph.get_layer("conv1")
    assert wide_graph.get_layer("rpn_model") is tall_graph.get_layer("rpn_model")
    with pytest.raises(ValueError, match="multiple of 64"):
        model.run_molded(np.zeros((1, 100, 128, 3), np.float32), np.zeros((1, config.IMAGE_META_SIZE)))


def test_config_must_be_a_config():
    with pytest.raises(TypeError, match="Config"):
        MaskRCNN({"NUM_CLASSES": 2})
