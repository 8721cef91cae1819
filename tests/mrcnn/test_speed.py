"""``backend.mrcnn.speed``: its variants name precisions, and ``--profile`` splits the network into parts that
chain back to the whole network, each with its multiply-adds."""

from __future__ import annotations

import numpy as np
import pytest
from mrcnn_parity import load_input

pytest.importorskip("tensorflow")

import keras  # noqa: E402
from keras import layers  # noqa: E402

from backend.mrcnn import speed  # noqa: E402


def test_multiply_adds_count_convolutions_dense_layers_and_nested_models():
    x = keras.Input((8, 8, 3), batch_size=2)
    y = layers.Conv2D(4, 3, strides=2, padding="same")(x)  # 2 * 4*4 pixels * 3*3*3*4
    y = layers.Conv2DTranspose(5, 2, strides=2)(y)  # 2 * 4*4 input pixels * 2*2*4*5
    inner_in = keras.Input((None, None, 5))
    inner = keras.Model(inner_in, layers.Conv2D(6, 1)(layers.Conv2D(7, 3, padding="same")(inner_in)))
    y = inner(y)  # 2 * 8*8 * (3*3*5*7 + 1*1*7*6)
    y = layers.Dense(9)(layers.Flatten()(y))  # 2 * (8*8*6) * 9
    expected = 2 * (16 * 108 + 16 * 80 + 64 * (315 + 42) + 384 * 9)
    assert speed.multiply_adds(keras.Model(x, y)) == expected


def test_variants_name_a_precision_per_stage_subset():
    assert speed.precision_of("exact") == "exact" and speed.precision_of("fast") == "fast"
    subset = speed.precision_of("fast:backbone+fpn")
    assert subset.stages == ("backbone", "fpn") and subset.policy_of("mask") == "float32"
    assert speed.variant_name("fast:mask") == "fast:mask"
    with pytest.raises(Exception, match="unknown stage"):
        speed.variant_name("fast:backbone+heads")
    with pytest.raises(Exception, match="unknown variant"):
        speed.variant_name("half")


def test_parts_chain_back_to_the_whole_network(parity_dir, small_b1_model):
    model = small_b1_model
    molded, metas, _ = model.mold([load_input(parity_dir, "astronaut")])
    molded, metas = np.stack(molded), np.stack(metas)
    names = sorted({n for spec in speed.PARTS.values() if spec for n in spec[1]} | {"class_masks"})
    whole = model.run_molded(molded, metas, names=names)
    bucket = model.mask_bucket(whole["detections"])
    assert bucket > 0
    whole.update(input_image=molded, input_image_meta=metas)
    anchors = speed.pyramid_anchors(model.config, molded.shape[1:])
    whole["input_anchors"] = anchors[None]
    parts = speed.part_graphs(model, molded.shape[1:], bucket)
    assert list(parts) == list(speed.PARTS)
    for part, (inputs, outputs) in ((p, s) for p, s in speed.PARTS.items() if s):
        found = parts[part]([whole[n] for n in inputs], training=False)
        for name in outputs:
            np.testing.assert_allclose(
                np.asarray(found[name]), whole[name], rtol=1e-4, atol=1e-5, err_msg=part
            )
    rows = whole["detections"][:, :bucket]
    masks = parts["masks"](
        [*(whole[p] for p in ("P2", "P3", "P4", "P5")), rows[..., :4], rows[..., 4].astype(np.int32), metas]
    )
    np.testing.assert_allclose(np.asarray(masks["class_masks"]), whole["class_masks"], atol=1e-5)
    macs = {part: speed.multiply_adds(graph) for part, graph in parts.items()}
    assert macs["proposals"] == 0 and macs["detection"] == 0
    assert macs["backbone"] > macs["fpn"] > 0 and macs["rpn_head"] > 0 and macs["classifier"] > 0


def test_profile_times_every_part_of_each_variant(parity_dir, small_b1_model):
    result = speed.profile({"exact": small_b1_model}, [load_input(parity_dir, "chelsea")], repeat=1)
    rows = result["exact"]
    assert list(rows) == [*speed.PARTS, "network", "sum"]
    assert all(row["seconds"] > 0 for row in rows.values())
    assert rows["sum"]["seconds"] == pytest.approx(sum(rows[p]["seconds"] for p in speed.PARTS))
    assert rows["sum"]["multiply_adds"] == sum(rows[p]["multiply_adds"] for p in speed.PARTS)
    assert rows["backbone"]["multiply_adds"] > 1e9  # ResNet-50 on 256x256: billions
