"""What the engine's own choices save, measured as ratios in one run: ``python -m backend.mrcnn.speed``.

Builds the variants below from one config and one weights file, warms each up, then times them in turn on the
same images (round-robin, so a busy machine slows all of them alike) and prints the median seconds per image
of ``detect_instances`` and each variant's ratio to the first:

- ``exact``: float32, BatchNorms folded, mask head on the detections' bucket (what runs by default);
- ``unfolded``: the same with every BatchNorm as its own layer;
- ``all-rows``: the same with the mask head on all DETECTION_MAX_INSTANCES rows, as before buckets;
- ``fast``: bfloat16 convolutions (``backend.mrcnn.precision``).

Random weights without ``--weights`` (Keras' initialisation: detection counts then differ from a trained model's,
which matters for ``all-rows``); images are seeded noise of ``--size`` pixels, molded as the config says.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from backend.mrcnn.config import CocoConfig, Config
from backend.mrcnn.model import MaskRCNN

VARIANTS = ("exact", "unfolded", "all-rows", "fast")


def build(variant: str, config, weights):
    model = MaskRCNN(
        config, precision="fast" if variant == "fast" else "exact", fold_batch_norms=variant != "unfolded"
    )
    if weights:
        model.load_weights(weights)
    if variant == "all-rows":
        model.mask_buckets = (config.DETECTION_MAX_INSTANCES,)
    return model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m backend.mrcnn.speed", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--config", default="coco", help="'coco' or a JSON file of Config values")
    parser.add_argument("--weights", default=None, help="Keras-2 HDF5 weights file in the config's layout")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds (default 3)")
    parser.add_argument("--size", type=int, default=1024, help="image side in pixels (default 1024)")
    args = parser.parse_args(argv)

    if args.config == "coco":
        config = CocoConfig()
    else:
        config = Config.from_dict(json.loads(Path(args.config).read_text()))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (args.size, args.size, 3), np.uint8) for _ in range(config.BATCH_SIZE)]
    models = {}
    for variant in args.variants:
        models[variant] = model = build(variant, config, args.weights)
        model.warm_up()
        found = model.detect_instances(images)
        print(
            f"{variant}: {model.precision}, {np.mean([len(f) for f in found]):.1f} detections per image",
            flush=True,
        )
    seconds = {v: [] for v in models}
    for _ in range(args.repeat):
        for variant, model in models.items():
            start = time.perf_counter()
            model.detect_instances(images)
            seconds[variant].append((time.perf_counter() - start) / len(images))
    base = statistics.median(seconds[args.variants[0]])
    for variant, times in seconds.items():
        median = statistics.median(times)
        print(
            f"{variant:>9}: {median:.3f} s/image median of {len(times)}; {base / median:.2f}x the speed of {args.variants[0]}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
