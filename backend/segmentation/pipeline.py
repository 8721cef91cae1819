"""The segmentation pipeline, written once: decode -> model -> masks -> save (stage names: ``stages``).

The command line (``maskweb segment``) and the worker (``backend.jobs.work``) both run an image through these
steps; the worker only adds the job's state and events around them (through ``progress``).

- ``decode(source, limits)`` -> ``Decoded``: one file or its bytes, checked and normalised (``images``);
- ``Segmenter``: the model loaded once (seconds, hundreds of MB), then for any list of images
  ``detect`` (stage ``model``, config.BATCH_SIZE images per network call) and ``to_results`` (stage ``masks``);
- ``save(sink, decoded, result)``: the overlay PNG and the result JSON, handed to a ``ResultSink`` (a folder
  for the CLI, the job's file store for the worker);
- ``segment_and_save(segmenter, decoded, sink)``: model, masks and save for one decoded image.

Each step takes a list of images or works on one, so a caller may decode per job, run ``detect`` once for the
images of several jobs and build and save results per job. Progress goes to an optional
``progress(stage, fraction)`` callback, where ``fraction`` (0..1) is how much of that stage is done; a stage is
always announced with fraction 0 before its work starts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

import numpy as np
from PIL import Image

from backend.segmentation.images import ImageLimits, load_image, to_array
from backend.segmentation.model_config import load_model_config
from backend.segmentation.overlay import render_overlay
from backend.segmentation.result import SegmentationResult
from backend.segmentation.stages import MASKS, MODEL, SAVING
from backend.segmentation.weights import resolve_weights

if TYPE_CHECKING:  # the engine loads with the model (Segmenter), not when this module is imported
    from backend.mrcnn.detections import Detections

__all__ = ["Decoded", "Progress", "ResultSink", "Segmenter", "decode", "save", "segment_and_save"]

Progress = Callable[[str, float], None]


def _no_progress(stage: str, fraction: float) -> None:
    pass


@dataclass(frozen=True)
class Decoded:
    """One image ready for the model: ``image`` (PIL, 8-bit RGB, EXIF orientation applied) and ``pixels``
    (the same as uint8 [H, W, 3])."""

    image: Image.Image
    pixels: np.ndarray


class ResultSink(Protocol):
    """Where ``save`` puts one image's outputs; each call writes one whole file or raises."""

    def save_overlay(self, overlay: Image.Image) -> None: ...

    def save_result(self, document: dict[str, Any]) -> None: ...


def decode(source: bytes | str | Path | BinaryIO, limits: ImageLimits | None = None) -> Decoded:
    """Stage ``decode``: ``source`` (a path or the file's bytes) -> ``Decoded``.

    Raises ``images.ImageRejected`` (what was wrong and the limit) for a file that is not an image within
    ``limits`` (default ``ImageLimits()``), and ``OSError`` when a path cannot be read.
    """
    image = load_image(source, limits or ImageLimits())
    return Decoded(image, to_array(image))


class Segmenter:
    """Mask R-CNN with its weights loaded: stages ``model`` and ``masks`` for any list of images.

    ``config`` is a ``backend.mrcnn.config.Config``; ``class_names[class_id]`` names each class ("BG" at 0);
    ``weights_path`` a Keras-2 HDF5 file in the config's layout (None keeps Keras' random initialisation: for
    benchmarks only). Loading raises the engine's error for a weights file that does not fit the config (it
    lists the missing or mismatched layers).
    """

    def __init__(
        self, config, class_names: Sequence[str], weights_path: str | Path | None, precision: str = "auto"
    ):
        from backend.mrcnn.model import MaskRCNN  # TensorFlow/keras load here, not at import

        if len(class_names) != config.NUM_CLASSES:
            raise ValueError(f"{len(class_names)} class names for a model of {config.NUM_CLASSES} classes")
        self.config = config
        self.class_names = list(class_names)
        self.weights_path = Path(weights_path) if weights_path is not None else None
        self.model = MaskRCNN(config, precision=precision)
        # masks -> RLE per instance: numpy and pycocotools release the GIL, so threads use every core
        self._pool = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="masks")
        if self.weights_path is not None:
            self.model.load_weights(self.weights_path)

    @classmethod
    def from_settings(cls, settings, batch_size: int | None = None) -> Segmenter:
        """The segmenter that ``settings.model_config`` ('coco' or a JSON file) and ``settings.weights`` name.

        Raises ``backend.segmentation.model_config.ModelConfigError`` for a bad config and ``backend.segmentation.weights.WeightsMissing``
        / ``WeightsCorrupt`` when the weights file is absent or fails its check.
        """
        config, class_names = load_model_config(settings.model_config)
        if batch_size is not None:  # images per network call, instead of the config's IMAGES_PER_GPU
            config = type(config).from_dict({**config.to_dict(), "IMAGES_PER_GPU": batch_size})
        return cls(config, class_names, resolve_weights(settings.weights), precision=settings.precision)

    @property
    def batch_size(self) -> int:
        """Images the model runs at once (config.BATCH_SIZE)."""
        return int(self.config.BATCH_SIZE)

    def warm_up(self) -> None:
        """Compile the model's graphs for the config's molded shape (the detector and every mask bucket), so the
        first real image does not pay for it (tens of seconds for the COCO model on a 2-core CPU); in the
        default "square" resize mode every image molds to that shape."""
        self.model.warm_up()

    def segment(self, image: np.ndarray, progress: Progress | None = None) -> SegmentationResult:
        """``image`` uint8 [H, W, 3] RGB -> its SegmentationResult (masks at H x W): stages model and masks."""
        return self.segment_batch([image], progress)[0]

    def detect(self, images: Sequence[np.ndarray], progress: Progress | None = None) -> list[Detections]:
        """Stage ``model``: the network on ``images`` (each uint8 [H, W, 3], sizes may differ),
        config.BATCH_SIZE at a time. Returns the engine's ``Detections`` per image, in order (boxes (x1, y1,
        x2, y2) pixels, per-box masks). ``progress('model', done/total)`` after each network call.
        """
        report = progress or _no_progress
        arrays = [_checked(image) for image in images]
        if not arrays:
            return []
        report(MODEL, 0.0)
        detections = []
        for start in range(0, len(arrays), self.batch_size):
            detections.extend(self.model.detect_instances(arrays[start : start + self.batch_size]))
            report(MODEL, len(detections) / len(arrays))
        return detections

    def to_results(
        self, images: Sequence[np.ndarray], detections: Sequence[Detections], progress: Progress | None = None
    ) -> list[SegmentationResult]:
        """Stage ``masks``: each image's detections (from ``detect``) -> its SegmentationResult, each mask
        encoded from its box (``SegmentationResult.from_detections``, instances in parallel).
        ``progress('masks', done/total)`` after each result."""
        report = progress or _no_progress
        if not images:
            return []
        report(MASKS, 0.0)
        results = []
        for image, found in zip(images, detections, strict=True):
            if tuple(found.image_size) != tuple(np.shape(image)[:2]):
                raise ValueError(
                    f"detections for a {found.image_size} image given with a {np.shape(image)} one"
                )
            results.append(SegmentationResult.from_detections(found, self.class_names, self._pool))
            report(MASKS, len(results) / len(images))
        return results

    def segment_batch(
        self, images: Sequence[np.ndarray], progress: Progress | None = None
    ) -> list[SegmentationResult]:
        """Stages ``model`` and ``masks`` for ``images``: one SegmentationResult per image, in order."""
        return self.to_results(images, self.detect(images, progress), progress)


def save(sink: ResultSink, decoded: Decoded, result: SegmentationResult, **extra: Any) -> None:
    """Stage ``saving``: the overlay PNG, then the result JSON (``result.to_dict()`` plus ``extra`` keys)."""
    sink.save_overlay(render_overlay(decoded.pixels, result))
    sink.save_result({**extra, **result.to_dict()})


def segment_and_save(
    segmenter: Segmenter,
    decoded: Decoded,
    sink: ResultSink,
    *,
    min_score: float | None = None,
    progress: Progress | None = None,
    **extra: Any,
) -> SegmentationResult:
    """Stages ``model``, ``masks`` and ``saving`` for one decoded image; returns its result (only instances
    scoring at least ``min_score`` when given). ``extra`` keys go into the result JSON."""
    report = progress or _no_progress
    result = segmenter.segment_batch([decoded.pixels], report)[0]
    if min_score is not None:
        result = result.above(min_score)
    report(SAVING, 0.0)
    save(sink, decoded, result, **extra)
    return result


def _checked(image) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"expected an RGB image as uint8 [H, W, 3], got {array.dtype} {list(array.shape)}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"the image is empty ({array.shape[1]} x {array.shape[0]} pixels)")
    return array
