"""What post-processing costs next to the model, by photo size: ``python -m backend.segmentation.footprint``.

For each ``--megapixels`` size, in a fresh process (so peak memory is that job's alone): build the COCO model
keeping every detection (DETECTION_MIN_CONFIDENCE 0, so DETECTION_MAX_INSTANCES objects per image, as issue 9
measures), warm it up, then run one job on a seeded noise photo of that size — stage ``model``
(``Segmenter.detect``), stage ``masks`` (``to_results``: per-box masks and RLE) and the overlay PNG — and report
each stage's seconds, the masks stage as a share of the model's, and the process's peak resident memory. Random
weights give tiny boxes, so the masks stage and overlay are timed again with the same masks over boxes of 0.5-10%
of the image each (``large_boxes_*``). The
smallest size stands for "the model's memory"; the others are reported as peak minus that.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import resource
import time

import numpy as np


def _post_process(segmenter, image, found) -> tuple[float, float]:
    """Seconds of the masks stage and of rendering and encoding the overlay PNG, for one image's detections."""
    # Lazy here and below: only the child process of each size loads the model's modules, so the parent
    # stays free of TensorFlow and each size's peak memory is its own.
    from backend.segmentation.overlay import render_overlay

    started = time.perf_counter()
    (result,) = segmenter.to_results([image], [found])
    masks_s = time.perf_counter() - started
    started = time.perf_counter()
    render_overlay(image, result).save(io.BytesIO(), "PNG", compress_level=1)
    return masks_s, time.perf_counter() - started


def _job(weights: str | None, megapixels: float, precision: str) -> dict:
    from backend.mrcnn.config import CocoConfig
    from backend.segmentation.model_config import load_model_config
    from backend.segmentation.pipeline import Segmenter

    _, class_names = load_model_config("coco")
    config = CocoConfig.from_dict({**CocoConfig().to_dict(), "DETECTION_MIN_CONFIDENCE": 0.0})
    segmenter = Segmenter(config, class_names, weights, precision=precision)
    segmenter.warm_up()
    width = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    height = int(round(megapixels * 1e6 / width))
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    started = time.perf_counter()
    (found,) = segmenter.detect([image])
    model_s = time.perf_counter() - started
    masks_s, overlay_s = _post_process(segmenter, image, found)
    # Random weights give tiny boxes; real objects are larger. The same masks over boxes of 0.5-10% of the
    # image each (5% on average, 5x the image in all) show what the masks stage and overlay cost then.
    rng = np.random.default_rng(1)
    area = rng.uniform(0.005, 0.10, len(found)) * height * width
    aspect = rng.uniform(0.5, 2.0, len(found))
    box_w = np.minimum(np.sqrt(area * aspect), width).astype(int).clip(1)
    box_h = np.minimum(area / box_w, height).astype(int).clip(1)
    x1, y1 = rng.integers(0, width - box_w + 1), rng.integers(0, height - box_h + 1)
    large = type(found)(
        np.stack([x1, y1, x1 + box_w, y1 + box_h], 1).astype(np.int32),
        found.class_ids, found.scores, found.masks, found.image_size,
    )  # fmt: skip
    large_masks_s, large_overlay_s = _post_process(segmenter, image, large)
    return {
        "megapixels": round(height * width / 1e6, 2), "size": [width, height], "detections": len(found),
        "mean_box_megapixels": round(float(np.mean([(b[2] - b[0]) * (b[3] - b[1]) for b in found.boxes])) / 1e6, 3)
        if len(found) else 0.0,
        "model_s": round(model_s, 3), "masks_s": round(masks_s, 3), "overlay_s": round(overlay_s, 3),
        "masks_share_of_model": round(masks_s / model_s, 4),
        "large_boxes_masks_s": round(large_masks_s, 3), "large_boxes_overlay_s": round(large_overlay_s, 3),
        "large_boxes_masks_share_of_model": round(large_masks_s / model_s, 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m backend.segmentation.footprint", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--weights", default=None, help="COCO-layout weights file (default: Keras' random init)"
    )
    parser.add_argument("--megapixels", type=float, nargs="+", default=[1.0, 12.0, 40.0])
    parser.add_argument("--precision", default="exact")
    args = parser.parse_args(argv)
    context = multiprocessing.get_context("spawn")
    rows = []
    for megapixels in args.megapixels:
        with context.Pool(1) as pool:
            rows.append(pool.apply(_job, (args.weights, megapixels, args.precision)))
        rows[-1]["peak_above_smallest_mb"] = round(rows[-1]["peak_rss_mb"] - rows[0]["peak_rss_mb"], 1)
        print(json.dumps(rows[-1]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
