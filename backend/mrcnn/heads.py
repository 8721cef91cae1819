"""The per-region heads: classifier + box regressor, and the mask head (matterport's layer names).

Both take RoIAlign crops [B, N, pool, pool, C] and apply the same layers to every region; regions are folded
into the batch axis (what Keras-2 ``TimeDistributed`` did, whose names the weights file keeps).
  - ``classifier_head`` -> mrcnn_class_logits [B, N, K], mrcnn_class (softmax) [B, N, K],
    mrcnn_bbox [B, N, K, 4] deltas (dy, dx, log dh, log dw) before BBOX_STD_DEV; K = NUM_CLASSES.
  - ``mask_head`` -> mrcnn_mask [B, N, 2*pool, 2*pool, K], per-class sigmoid masks.
The layers that produce scores, deltas and mask probabilities always compute in float32 (they are small); the
convolutions before them follow the model's precision (see ``model.MaskRCNN``).
"""

from __future__ import annotations

from keras import layers, ops


def _fold(x):
    return ops.reshape(x, (-1, *x.shape[2:]))


def _unfold(x, batch, count):
    return ops.reshape(x, (batch, count, *x.shape[1:]))


def classifier_head(bank, crops, num_classes: int, fc_size: int):
    batch, count, pool = crops.shape[0], crops.shape[1], crops.shape[2]
    x = bank.conv_bn(_fold(crops), fc_size, pool, "mrcnn_class_conv1", "mrcnn_class_bn1", padding="valid")
    x = layers.Activation("relu")(x)
    x = layers.Activation("relu")(bank.conv_bn(x, fc_size, 1, "mrcnn_class_conv2", "mrcnn_class_bn2"))
    shared = ops.reshape(x, (-1, fc_size))
    logits = bank(layers.Dense, num_classes, name="mrcnn_class_logits", dtype="float32")(shared)
    probs = layers.Activation("softmax", name="mrcnn_class", dtype="float32")(logits)
    deltas = bank(layers.Dense, num_classes * 4, name="mrcnn_bbox_fc", dtype="float32")(shared)
    return (
        _unfold(logits, batch, count),
        _unfold(probs, batch, count),
        ops.reshape(deltas, (batch, count, num_classes, 4)),
    )


def mask_head(bank, crops, num_classes: int):
    batch, count = crops.shape[0], crops.shape[1]
    x = _fold(crops)
    for i in range(1, 5):
        x = bank.conv_bn(x, 256, 3, f"mrcnn_mask_conv{i}", f"mrcnn_mask_bn{i}", padding="same")
        x = layers.Activation("relu")(x)
    x = bank(layers.Conv2DTranspose, 256, 2, strides=2, activation="relu", name="mrcnn_mask_deconv")(x)
    x = bank(layers.Conv2D, num_classes, 1, activation="sigmoid", name="mrcnn_mask", dtype="float32")(x)
    return _unfold(x, batch, count)
