"""Model configuration with matterport Mask_RCNN's attribute names, defaults and derived values.

A ``Config`` holds every attribute of matterport's ``mrcnn.config.Config`` (training ones too, so a
matterport config file round-trips), computes ``BATCH_SIZE``, ``IMAGE_SHAPE`` and ``IMAGE_META_SIZE`` from
the others, and rejects names it does not know. Sequences are stored as tuples and exported as lists.

``CocoConfig`` is the preset for matterport's ``mask_rcnn_coco.h5`` (80 classes + background), one image per
batch, with ``class_names`` in matterport's order.
"""

from __future__ import annotations

import copy
from typing import Any

RESIZE_MODES = ("none", "square", "pad64", "crop")
BACKBONES = ("resnet50", "resnet101")
DERIVED = ("BATCH_SIZE", "IMAGE_SHAPE", "IMAGE_META_SIZE")

# matterport's Config defaults (mrcnn/config.py); order kept for readable to_dict() output.
DEFAULTS: dict[str, Any] = {
    "NAME": None,
    "GPU_COUNT": 1,
    "IMAGES_PER_GPU": 2,
    "STEPS_PER_EPOCH": 1000,
    "VALIDATION_STEPS": 50,
    "BACKBONE": "resnet101",
    "COMPUTE_BACKBONE_SHAPE": None,
    "BACKBONE_STRIDES": (4, 8, 16, 32, 64),
    "FPN_CLASSIF_FC_LAYERS_SIZE": 1024,
    "TOP_DOWN_PYRAMID_SIZE": 256,
    "NUM_CLASSES": 1,
    "RPN_ANCHOR_SCALES": (32, 64, 128, 256, 512),
    "RPN_ANCHOR_RATIOS": (0.5, 1, 2),
    "RPN_ANCHOR_STRIDE": 1,
    "RPN_NMS_THRESHOLD": 0.7,
    "RPN_TRAIN_ANCHORS_PER_IMAGE": 256,
    "PRE_NMS_LIMIT": 6000,
    "POST_NMS_ROIS_TRAINING": 2000,
    "POST_NMS_ROIS_INFERENCE": 1000,
    "USE_MINI_MASK": True,
    "MINI_MASK_SHAPE": (56, 56),
    "IMAGE_RESIZE_MODE": "square",
    "IMAGE_MIN_DIM": 800,
    "IMAGE_MAX_DIM": 1024,
    "IMAGE_MIN_SCALE": 0,
    "IMAGE_CHANNEL_COUNT": 3,
    "MEAN_PIXEL": (123.7, 116.8, 103.9),
    "TRAIN_ROIS_PER_IMAGE": 200,
    "ROI_POSITIVE_RATIO": 0.33,
    "POOL_SIZE": 7,
    "MASK_POOL_SIZE": 14,
    "MASK_SHAPE": (28, 28),
    "MAX_GT_INSTANCES": 100,
    "RPN_BBOX_STD_DEV": (0.1, 0.1, 0.2, 0.2),
    "BBOX_STD_DEV": (0.1, 0.1, 0.2, 0.2),
    "DETECTION_MAX_INSTANCES": 100,
    "DETECTION_MIN_CONFIDENCE": 0.7,
    "DETECTION_NMS_THRESHOLD": 0.3,
    "LEARNING_RATE": 0.001,
    "LEARNING_MOMENTUM": 0.9,
    "WEIGHT_DECAY": 0.0001,
    "LOSS_WEIGHTS": {
        "rpn_class_loss": 1.0,
        "rpn_bbox_loss": 1.0,
        "mrcnn_class_loss": 1.0,
        "mrcnn_bbox_loss": 1.0,
        "mrcnn_mask_loss": 1.0,
    },
    "USE_RPN_ROIS": True,
    "TRAIN_BN": False,
    "GRADIENT_CLIP_NORM": 5.0,
}

COCO_CLASS_NAMES = (
    "BG", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse",
    "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie",
    "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
    "skateboard", "surfboard", "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon",
    "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut",
    "cake", "chair", "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip


def _frozen(value: Any) -> Any:
    """Lists and arrays become tuples (nested too), so a Config cannot be changed through a shared list."""
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        value = value.tolist()
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


def _listed(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_listed(v) for v in value]
    if isinstance(value, dict):
        return {k: _listed(v) for k, v in value.items()}
    return value


class Config:
    """Mask R-CNN settings under matterport's names; subclass or pass overrides to change them.

    ``Config(NUM_CLASSES=4, IMAGES_PER_GPU=1)`` or a subclass with class attributes both work. Derived values:
    ``BATCH_SIZE = IMAGES_PER_GPU * GPU_COUNT``; ``IMAGE_SHAPE = (MIN, MIN, C)`` in "crop" mode else
    ``(MAX, MAX, C)``; ``IMAGE_META_SIZE = 12 + NUM_CLASSES``. Raises ValueError for an unknown name or a value
    the model cannot use.
    """

    CLASS_NAMES: tuple[str, ...] | None = None  # not a matterport attribute; see ``class_names``

    def __init__(self, **overrides: Any) -> None:
        unknown = sorted(set(overrides) - set(DEFAULTS) - set(DERIVED))
        if unknown:
            raise ValueError(
                f"unknown Config attribute(s) {unknown}; known names are matterport's: {sorted(DEFAULTS)}"
            )
        for name in DEFAULTS:
            value = overrides[name] if name in overrides else getattr(type(self), name, DEFAULTS[name])
            setattr(self, name, _frozen(copy.deepcopy(value)))
        self._derive()
        self._validate()

    def _derive(self) -> None:
        self.BATCH_SIZE = self.IMAGES_PER_GPU * self.GPU_COUNT
        side = self.IMAGE_MIN_DIM if self.IMAGE_RESIZE_MODE == "crop" else self.IMAGE_MAX_DIM
        self.IMAGE_SHAPE = (side, side, self.IMAGE_CHANNEL_COUNT)
        self.IMAGE_META_SIZE = 1 + 3 + 3 + 4 + 1 + self.NUM_CLASSES

    def _validate(self) -> None:
        problems = []
        if self.BACKBONE not in BACKBONES:
            problems.append(f"BACKBONE must be one of {BACKBONES}, got {self.BACKBONE!r}")
        if self.IMAGE_RESIZE_MODE not in RESIZE_MODES:
            problems.append(
                f"IMAGE_RESIZE_MODE must be one of {RESIZE_MODES}, got {self.IMAGE_RESIZE_MODE!r}"
            )
        for name in ("NUM_CLASSES", "IMAGES_PER_GPU", "GPU_COUNT", "POST_NMS_ROIS_INFERENCE",
                     "DETECTION_MAX_INSTANCES", "PRE_NMS_LIMIT", "POOL_SIZE", "MASK_POOL_SIZE"):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        if self.IMAGE_RESIZE_MODE == "square" and self.IMAGE_MAX_DIM % 64:
            problems.append(
                f"IMAGE_MAX_DIM must be a multiple of 64 in 'square' mode, got {self.IMAGE_MAX_DIM}"
            )
        if self.IMAGE_RESIZE_MODE in ("pad64", "crop") and self.IMAGE_MIN_DIM % 64:
            problems.append(
                f"IMAGE_MIN_DIM must be a multiple of 64 in {self.IMAGE_RESIZE_MODE!r} mode, "
                f"got {self.IMAGE_MIN_DIM}"
            )
        if len(self.MEAN_PIXEL) != self.IMAGE_CHANNEL_COUNT:
            problems.append(
                f"MEAN_PIXEL has {len(self.MEAN_PIXEL)} values for IMAGE_CHANNEL_COUNT {self.IMAGE_CHANNEL_COUNT}"
            )
        if len(self.RPN_ANCHOR_SCALES) != len(self.BACKBONE_STRIDES):
            problems.append(
                "RPN_ANCHOR_SCALES needs one scale per BACKBONE_STRIDES entry (one per level P2..P6)"
            )
        if problems:
            raise ValueError("invalid Config: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        """A Config from matterport attribute names (derived values, if given, are recomputed)."""
        if not isinstance(values, dict):
            raise TypeError(
                f"Config.from_dict expects a dict of attribute names, got {type(values).__name__}"
            )
        return cls(**{k: v for k, v in values.items() if k not in DERIVED})

    def to_dict(self) -> dict[str, Any]:
        """Every matterport attribute (derived ones too) with lists for sequences; JSON-serialisable."""
        return {name: _listed(getattr(self, name)) for name in sorted((*DEFAULTS, *DERIVED))}

    @property
    def class_names(self) -> tuple[str, ...]:
        """Names indexed by class id (0 = background); generic "class_<i>" unless the preset names them."""
        if self.CLASS_NAMES is not None and len(self.CLASS_NAMES) == self.NUM_CLASSES:
            return tuple(self.CLASS_NAMES)
        return ("BG", *(f"class_{i}" for i in range(1, self.NUM_CLASSES)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(NAME={self.NAME!r}, BACKBONE={self.BACKBONE!r}, NUM_CLASSES={self.NUM_CLASSES})"


# matterport's attributes as class-level defaults, so subclasses read like matterport's configs
for _name, _value in DEFAULTS.items():
    setattr(Config, _name, _frozen(_value))


class CocoConfig(Config):
    """matterport's COCO inference config (samples/coco, demo's InferenceConfig): 81 classes, 1 image/batch."""

    NAME = "coco"
    NUM_CLASSES = 1 + 80
    IMAGES_PER_GPU = 1
    GPU_COUNT = 1
    CLASS_NAMES = COCO_CLASS_NAMES
