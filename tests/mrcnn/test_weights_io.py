"""Keras-2 HDF5 reading: both layouts, bytes or str attributes, weightless entries, strict errors, exclude."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from backend.mrcnn import weights_io
from backend.mrcnn.weights_io import WeightsFileError, WeightsMismatchError, check_layout, read_layout

# A miniature of the real layout: a plain conv, a nested model group, a TimeDistributed head, weightless layers.
LAYERS = {
    "conv1": {"conv1/kernel:0": (3, 3, 3, 4), "conv1/bias:0": (4,)},
    "rpn_model": {"rpn_conv_shared/kernel:0": (3, 3, 4, 8), "rpn_class_raw/bias:0": (6,)},
    "mrcnn_class_logits": {"mrcnn_class_logits/kernel:0": (8, 5), "mrcnn_class_logits/bias:0": (5,)},
    "mrcnn_mask": {"mrcnn_mask/kernel:0": (1, 1, 8, 5)},
}
WEIGHTLESS = ["input_image", "activation_1", "ROI"]
EXPECTED = {layer: {name[:-2]: shape for name, shape in ws.items()} for layer, ws in LAYERS.items()}


def write_file(path, *, under_model_weights=False, as_bytes=False, layers=LAYERS, weightless=WEIGHTLESS):
    """A weights file as Keras 2 writes it; values encode their position so loading can be checked."""

    def text(values):
        return [v.encode() for v in values] if as_bytes else list(values)

    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if under_model_weights else f
        root.attrs["layer_names"] = text([*weightless[:1], *layers, *weightless[1:]])
        root.attrs["keras_version"] = b"2.0.8" if as_bytes else "2.0.8"
        root.attrs["backend"] = b"tensorflow" if as_bytes else "tensorflow"
        for name in weightless:
            root.create_group(name).attrs["weight_names"] = np.zeros((0,), dtype=np.float64)
        for i, (layer, weights) in enumerate(layers.items()):
            group = root.create_group(layer)
            group.attrs["weight_names"] = text(list(weights))
            for j, (wname, shape) in enumerate(weights.items()):
                group.create_dataset(wname, data=np.full(shape, 10 * i + j, dtype=np.float32))
    return path


@pytest.mark.parametrize("under_model_weights", [False, True])
@pytest.mark.parametrize("as_bytes", [False, True])
def test_reads_every_variant(tmp_path, under_model_weights, as_bytes):
    path = write_file(tmp_path / "w.h5", under_model_weights=under_model_weights, as_bytes=as_bytes)
    assert read_layout(path) == EXPECTED  # weightless layers are not listed
    weights = weights_io.read_weights(path)
    assert weights["rpn_model"]["rpn_class_raw/bias"].tolist() == [11.0] * 6
    assert weights["mrcnn_mask"]["mrcnn_mask/kernel"].shape == (1, 1, 8, 5)
    assert check_layout(EXPECTED, read_layout(path), path=path) == set(EXPECTED)


def test_read_weights_can_pick_layers(tmp_path):
    path = write_file(tmp_path / "w.h5")
    assert set(weights_io.read_weights(path, layers=["conv1"])) == {"conv1"}


def test_one_error_lists_every_problem(tmp_path):
    layers = dict(LAYERS)
    del layers["conv1"]  # missing
    layers["extra_dense"] = {"extra_dense/kernel:0": (2, 2)}  # unexpected, with weights
    layers["mrcnn_class_logits"] = {"mrcnn_class_logits/kernel:0": (8, 7), "mrcnn_class_logits/bias:0": (7,)}
    path = write_file(
        tmp_path / "w.h5", layers=layers, weightless=["input_image", "not_in_model_but_weightless"]
    )
    with pytest.raises(WeightsMismatchError) as info:
        check_layout(EXPECTED, read_layout(path), path=path)
    error = info.value
    assert error.missing == ["conv1"] and error.unexpected == ["extra_dense"]
    assert len(error.mismatched) == 2
    message = str(error)
    for needle in ("conv1", "extra_dense", "mrcnn_class_logits/kernel", "(8, 5)", "(8, 7)", str(path)):
        assert needle in message
    assert "not_in_model_but_weightless" not in message  # weightless entries are normal


def test_exclude_heads_skips_the_class_specific_layers(tmp_path):
    layers = dict(LAYERS)
    layers["mrcnn_class_logits"] = {"mrcnn_class_logits/kernel:0": (8, 3), "mrcnn_class_logits/bias:0": (3,)}
    layers["mrcnn_mask"] = {"mrcnn_mask/kernel:0": (1, 1, 8, 3)}
    path = write_file(tmp_path / "w.h5", layers=layers)
    found = read_layout(path)
    with pytest.raises(WeightsMismatchError):
        check_layout(EXPECTED, found)
    assert check_layout(EXPECTED, found, exclude="heads") == {"conv1", "rpn_model"}
    assert check_layout(EXPECTED, found, exclude=["mrcnn_class_logits", "mrcnn_mask"]) == {
        "conv1",
        "rpn_model",
    }
    assert check_layout(EXPECTED, found, exclude=[r"mrcnn_.*"]) == {"conv1", "rpn_model"}


def test_exclude_also_forgives_a_missing_layer(tmp_path):
    layers = {k: v for k, v in LAYERS.items() if k != "mrcnn_mask"}
    found = read_layout(write_file(tmp_path / "w.h5", layers=layers))
    assert "mrcnn_mask" not in check_layout(EXPECTED, found, exclude=["mrcnn_mask"])


def test_bad_exclude_pattern_is_named():
    with pytest.raises(ValueError, match=r"mrcnn_\("):
        check_layout(EXPECTED, EXPECTED, exclude=["mrcnn_("])


def test_not_a_weights_file(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(WeightsFileError, match="not a readable HDF5"):
        read_layout(text)
    empty = tmp_path / "empty.h5"
    h5py.File(empty, "w").close()
    with pytest.raises(WeightsFileError, match="layer_names"):
        read_layout(empty)
    with pytest.raises(FileNotFoundError):
        read_layout(tmp_path / "absent.h5")


def test_a_listed_weight_without_its_dataset_is_reported(tmp_path):
    path = write_file(tmp_path / "w.h5")
    with h5py.File(path, "a") as f:
        del f["conv1"]["conv1/bias:0"]
    with pytest.raises(WeightsFileError, match="conv1/bias:0"):
        read_layout(path)


def test_layout_json_matches_the_generated_file(parity_dir, small_weights):
    import json

    layout = weights_io.layout_from_json(json.loads((parity_dir / "layout_small.json").read_text()))
    assert read_layout(small_weights) == layout
