"""Region Proposal Network: the shared head over P2..P6 and the proposal layer.

``rpn_head(anchors_per_location, depth)`` is a small Keras model named ``rpn_model`` (the nested group of
matterport's weights file) applied to every pyramid level with the same weights. For a feature map
[B, h, w, depth] it gives, per anchor (row, column, ratio order):
  - rpn_class_logits [B, h*w*A, 2] and rpn_class (softmax; index 1 = object),
  - rpn_bbox [B, h*w*A, 4] deltas (dy, dx, log dh, log dw) before RPN_BBOX_STD_DEV.

``ProposalLayer`` turns all levels' scores and deltas into POST_NMS_ROIS_INFERENCE normalised proposals per
image, as matterport's: the PRE_NMS_LIMIT best anchors by object score, refined by their deltas, clipped to the
unit square, greedy NMS at RPN_NMS_THRESHOLD; rows past the last kept box are zeros.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from backend.mrcnn import kernels
from backend.mrcnn.boxes import apply_box_deltas, clip_boxes


def rpn_head(
    anchors_per_location: int, anchor_stride: int, depth: int, name: str = "rpn_model"
) -> keras.Model:
    features = keras.Input(shape=(None, None, depth), name="input_rpn_feature_map")
    shared = layers.Conv2D(
        512, 3, padding="same", activation="relu", strides=anchor_stride, name="rpn_conv_shared"
    )(features)
    # scores and deltas in float32 whatever the model's precision: top-k and NMS over them decide proposals
    x = layers.Conv2D(2 * anchors_per_location, 1, name="rpn_class_raw", dtype="float32")(shared)
    logits = layers.Reshape((-1, 2), dtype="float32")(x)
    probs = layers.Activation("softmax", name="rpn_class_xxx", dtype="float32")(logits)
    x = layers.Conv2D(4 * anchors_per_location, 1, name="rpn_bbox_pred", dtype="float32")(shared)
    deltas = layers.Reshape((-1, 4), dtype="float32")(x)
    return keras.Model(features, [logits, probs, deltas], name=name)


class ProposalLayer(layers.Layer):
    """[rpn_class [B, A, 2], rpn_bbox [B, A, 4], anchors [B, A, 4]] -> proposals [B, proposal_count, 4]."""

    def __init__(self, proposal_count, nms_threshold, pre_nms_limit, bbox_std_dev, **kwargs):
        super().__init__(**kwargs)
        self.proposal_count = int(proposal_count)
        self.nms_threshold = float(nms_threshold)
        self.pre_nms_limit = int(pre_nms_limit)
        self.bbox_std_dev = np.asarray(bbox_std_dev, dtype=np.float32).reshape(1, 1, 4)

    def call(self, rpn_class, rpn_bbox, anchors):
        k = min(self.pre_nms_limit, anchors.shape[1])
        scores = rpn_class[:, :, 1]
        deltas = rpn_bbox * self.bbox_std_dev
        top_scores, order = ops.top_k(scores, k, sorted=True)
        deltas = ops.take_along_axis(deltas, order[..., None], axis=1)
        anchors = ops.take_along_axis(anchors, order[..., None], axis=1)
        boxes = clip_boxes(apply_box_deltas(anchors, deltas), ops.array([0.0, 0.0, 1.0, 1.0], "float32"))
        proposals = []
        for b in range(rpn_class.shape[0]):
            kept, count = kernels.non_max_suppression(
                boxes[b], top_scores[b], self.proposal_count, self.nms_threshold
            )
            valid = ops.cast(ops.arange(self.proposal_count) < count, boxes.dtype)
            proposals.append(ops.take(boxes[b], kept, axis=0) * valid[:, None])
        return ops.stack(proposals, axis=0)
