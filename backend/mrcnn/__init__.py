"""Mask R-CNN inference engine on Keras 3 (matterport Mask_RCNN v2.0 compatible).

Importing this package is cheap; Keras/TensorFlow load when a model is built.
"""

from backend.mrcnn.config import COCO_CLASS_NAMES, CocoConfig, Config

__all__ = ["COCO_CLASS_NAMES", "CocoConfig", "Config", "MaskRCNN"]


def __getattr__(name):
    if name == "MaskRCNN":
        from backend.mrcnn.model import MaskRCNN  # lazily: the model loads Keras and TensorFlow

        return MaskRCNN
    raise AttributeError(name)
