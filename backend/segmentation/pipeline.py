"""One image in, one SegmentationResult out: the step the CLI and the Celery worker share.

A ``Segmenter`` builds the Mask R-CNN model and loads its weights once (seconds, hundreds of MB), then segments
any number of images. Callers decode images themselves (``backend.segmentation.images``) and save results themselves; the
segmenter reports the two stages it owns, ``model`` (the network) and ``masks`` (turning detections into the
result: score order, boxes, run-length-encoded masks), through an optional ``progress(stage, fraction)``
callback, where ``fraction`` (0..1) is how much of that stage is done.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from backend.segmentation.result import SegmentationResult

__all__ = ["Segmenter", "Progress"]

Progress = Callable[[str, float], None]


def _no_progress(stage: str, fraction: float) -> None:
    pass


class Segmenter:
    """Mask R-CNN with its weights loaded, ready to segment images.

    ``config`` is a ``backend.mrcnn.config.Config``; ``class_names[class_id]`` names each class ("BG" at 0);
    ``weights_path`` a Keras-2 HDF5 file in the config's layout (None keeps Keras' random initialisation: for
    benchmarks only). Loading raises the engine's error for a weights file that does not fit the config (it
    lists the missing or mismatched layers).
    """

    def __init__(self, config, class_names: Sequence[str], weights_path: str | Path | None):
        from backend.mrcnn.model import MaskRCNN  # TensorFlow/keras load here, not at import

        if len(class_names) != config.NUM_CLASSES:
            raise ValueError(f"{len(class_names)} class names for a model of {config.NUM_CLASSES} classes")
        self.config = config
        self.class_names = list(class_names)
        self.weights_path = Path(weights_path) if weights_path is not None else None
        self.model = MaskRCNN(config)
        if self.weights_path is not None:
            self.model.load_weights(self.weights_path)

    @classmethod
    def from_settings(cls, settings) -> Segmenter:
        """The segmenter that ``settings.model_config`` ('coco' or a JSON file) and ``settings.weights`` name.

        Raises ``backend.segmentation.model_config.ModelConfigError`` for a bad config and ``backend.segmentation.weights.WeightsMissing``
        / ``WeightsCorrupt`` when the weights file is absent or fails its check.
        """
        from backend.segmentation.model_config import load_model_config
        from backend.segmentation.weights import resolve_weights

        config, class_names = load_model_config(settings.model_config)
        return cls(config, class_names, resolve_weights(settings.weights))

    @property
    def batch_size(self) -> int:
        """Images the model runs at once (config.BATCH_SIZE)."""
        return int(self.config.BATCH_SIZE)

    def warm_up(self) -> None:
        """Run the model once on a blank image, so the first real image does not pay for building the graph.

        The model compiles one graph per molded image shape (about 10 s for the COCO model on a 2-core CPU);
        in the default "square" resize mode every image molds to the same shape, so one run covers them all.
        """
        height, width = int(self.config.IMAGE_MIN_DIM), int(self.config.IMAGE_MAX_DIM)
        self.model.detect([np.full((height, width, 3), 128, np.uint8)] * self.batch_size)

    def segment(self, image: np.ndarray, progress: Progress | None = None) -> SegmentationResult:
        """``image`` uint8 [H, W, 3] RGB -> its SegmentationResult (masks at H x W)."""
        return self.segment_batch([image], progress)[0]

    def segment_batch(
        self, images: Sequence[np.ndarray], progress: Progress | None = None
    ) -> list[SegmentationResult]:
        """Segment ``images`` (each uint8 [H, W, 3], sizes may differ), config.BATCH_SIZE at a time.

        Returns one result per image, in order. ``progress('model', done/total)`` after each model batch, then
        ``progress('masks', done/total)`` after each result is built.
        """
        report = progress or _no_progress
        arrays = [_checked(image) for image in images]
        if not arrays:
            return []
        report("model", 0.0)
        detections = []
        for start in range(0, len(arrays), self.batch_size):
            detections.extend(self.model.detect(arrays[start : start + self.batch_size]))
            report("model", len(detections) / len(arrays))
        report("masks", 0.0)
        results = []
        for image, found in zip(arrays, detections, strict=True):
            results.append(SegmentationResult.from_detections(found, self.class_names, image.shape))
            report("masks", len(results) / len(arrays))
        return results


def _checked(image) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"expected an RGB image as uint8 [H, W, 3], got {array.dtype} {list(array.shape)}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"the image is empty ({array.shape[1]} x {array.shape[0]} pixels)")
    return array
