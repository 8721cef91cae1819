"""The result of segmenting one image: instances with class, score, box and mask, and its JSON form.

This is the one shape a segmentation takes outside the model engine. The CLI writes it, the worker stores it,
the API serves it and the frontend draws it (docs/ARCHITECTURE.md, "Result contract"):

    {"width": W, "height": H,
     "instances": [{"id": 0, "class_id": 1, "class_name": "person", "score": 0.998,
                    "box": [x1, y1, x2, y2],
                    "mask": {"size": [H, W], "counts": "<COCO compressed RLE>"}}]}

Conventions, stated once here: ``box`` is in image pixels, (x1, y1) inclusive and (x2, y2) exclusive; ``mask``
is pycocotools' run-length encoding (column-major) with ``counts`` as an ASCII string; instances are sorted by
score, highest first, and ``id`` is the position in that order.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from pycocotools import mask as mask_util

from backend.segmentation.rle import encode_in_box

__all__ = ["Instance", "SegmentationResult", "encode_masks", "decode_mask"]

# Scores are stored to this many decimals: far below the 1e-3 that distinguishes detections, and the JSON
# stays readable (float32 scores otherwise print as 0.9980000257492065).
SCORE_DECIMALS = 6


def encode_masks(masks: np.ndarray) -> list[dict]:
    """Full-image masks bool/uint8 [H, W, N] -> N COCO compressed RLEs ``{"size": [H, W], "counts": str}``
    (for masks that come image-sized, e.g. a peer model's in the bench; ours are encoded by the box)."""
    if masks.ndim != 3:
        raise ValueError(f"masks must be [H, W, N], got shape {masks.shape}")
    if masks.shape[2] == 0:
        return []
    encoded = mask_util.encode(np.asfortranarray(masks.astype(np.uint8)))
    return [
        {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")} for rle in encoded
    ]


def decode_mask(rle: Mapping) -> np.ndarray:
    """A COCO RLE (counts as str or bytes) -> bool [H, W]."""
    with warnings.catch_warnings():
        # pycocotools 2.0.11 trips a numpy 2 DeprecationWarning inside decode; the result is correct.
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_util.decode({"size": list(rle["size"]), "counts": rle["counts"]}).astype(bool)


@dataclass(frozen=True)
class Instance:
    """One detected object.

    ``box`` is (x1, y1, x2, y2) in image pixels, x2/y2 exclusive. ``mask_rle`` is the COCO RLE of the full-image
    mask (``{"size": [H, W], "counts": str}``).
    """

    id: int
    class_id: int
    class_name: str
    score: float
    box: tuple[int, int, int, int]
    mask_rle: dict

    def mask(self) -> np.ndarray:
        """The mask as bool [H, W]."""
        return decode_mask(self.mask_rle)

    @property
    def area(self) -> int:
        """Mask area in pixels."""
        return int(mask_util.area(self.mask_rle))

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "class_id": self.class_id,
            "class_name": self.class_name,
            "score": self.score,
            "box": list(self.box),
            "mask": {"size": list(self.mask_rle["size"]), "counts": self.mask_rle["counts"]},
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Instance:
        """Inverse of ``to_dict``; raises ValueError naming the missing or malformed field."""
        try:
            box = tuple(int(v) for v in data["box"])
            mask = data["mask"]
            instance = cls(
                id=int(data["id"]),
                class_id=int(data["class_id"]),
                class_name=str(data["class_name"]),
                score=float(data["score"]),
                box=box,
                mask_rle={"size": [int(s) for s in mask["size"]], "counts": str(mask["counts"])},
            )
        except KeyError as exc:
            raise ValueError(f"instance is missing the field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"instance has a malformed field: {exc}") from None
        if len(box) != 4:
            raise ValueError(f"instance box must be [x1, y1, x2, y2], got {list(box)}")
        if len(instance.mask_rle["size"]) != 2:
            raise ValueError(f"instance mask size must be [height, width], got {instance.mask_rle['size']}")
        return instance


@dataclass(frozen=True)
class SegmentationResult:
    """All instances found in one image of ``width`` x ``height`` pixels, sorted by score (highest first)."""

    width: int
    height: int
    instances: tuple[Instance, ...] = field(default_factory=tuple)

    @classmethod
    def from_detections(cls, detections, class_names: Sequence[str], pool=None) -> SegmentationResult:
        """Build from the engine's ``Detections`` of one image (``backend.mrcnn.detections``: boxes (x1, y1,
        x2, y2) pixels, class_ids, scores, ``box_mask(i)`` bool at box resolution, ``image_size``).

        Each mask is encoded from its box alone (``rle.encode_in_box``), so the work follows the objects, not
        the image; ``pool`` (a ``concurrent.futures`` executor) runs the instances in parallel when given.
        ``class_names[class_id]`` names each class ("BG" at 0). Raises ValueError when a class id has no name.
        """
        height, width = (int(v) for v in detections.image_size)
        class_ids = np.asarray(detections.class_ids).reshape(-1)
        scores = np.asarray(detections.scores, dtype=np.float64).reshape(-1)
        boxes = np.asarray(detections.boxes).reshape(-1, 4)
        bad = [int(c) for c in class_ids if not 0 < int(c) < len(class_names)]
        if bad:
            raise ValueError(
                f"class ids {bad} have no name: the model config lists {len(class_names)} classes"
            )

        def encoded(index):
            x1, y1 = (max(int(v), 0) for v in boxes[index, :2])
            return encode_in_box(detections.box_mask(index), x1, y1, height, width)

        # Stable sort so equal scores keep the model's order.
        order = [int(i) for i in np.argsort(-scores, kind="stable")]
        rles = list(pool.map(encoded, order) if pool is not None else map(encoded, order))
        instances = tuple(
            Instance(
                id=new_id,
                class_id=int(class_ids[index]),
                class_name=class_names[int(class_ids[index])],
                score=round(float(scores[index]), SCORE_DECIMALS),
                box=tuple(int(v) for v in boxes[index]),
                mask_rle=rle,
            )
            for new_id, (index, rle) in enumerate(zip(order, rles, strict=True))
        )
        return cls(width=width, height=height, instances=instances)

    def above(self, min_score: float) -> SegmentationResult:
        """The instances scoring at least ``min_score``, renumbered from 0."""
        kept = [i for i in self.instances if i.score >= min_score]
        renumbered = tuple(
            Instance(n, i.class_id, i.class_name, i.score, i.box, i.mask_rle) for n, i in enumerate(kept)
        )
        return SegmentationResult(self.width, self.height, renumbered)

    def class_counts(self) -> dict[str, int]:
        """Instances per class name, most frequent first (ties by name)."""
        counts = Counter(i.class_name for i in self.instances)
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    def summary(self) -> dict:
        """What a job records when it is done: ``instance_count``, ``classes`` (names present, most frequent
        first) and ``class_counts`` ({name: count})."""
        counts = self.class_counts()
        return {"instance_count": len(self.instances), "classes": list(counts), "class_counts": counts}

    def to_dict(self) -> dict:
        return {
            "width": self.width,
            "height": self.height,
            "instances": [i.to_dict() for i in self.instances],
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> SegmentationResult:
        """Inverse of ``to_dict``; raises ValueError for a missing or malformed field."""
        try:
            width, height = int(data["width"]), int(data["height"])
            raw_instances = data["instances"]
        except KeyError as exc:
            raise ValueError(f"result is missing the field {exc.args[0]!r}") from None
        instances = tuple(Instance.from_dict(i) for i in raw_instances)
        for instance in instances:
            if list(instance.mask_rle["size"]) != [height, width]:
                raise ValueError(
                    f"instance {instance.id} has a {instance.mask_rle['size']} mask in a {height}x{width} image"
                )
        return cls(width=width, height=height, instances=instances)
