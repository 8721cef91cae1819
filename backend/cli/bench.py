"""``maskweb bench``: seconds per image and peak memory of the whole segmentation step on this machine.

What is timed is ``Segmenter.segment_batch`` (molding, the network, detection, unmolding the masks to full size
and their run-length encoding): what a worker spends per image. For each batch size the model is built once
and warmed up (the first call traces and compiles), then ``--repeat`` batches of ``--size`` x ``--size`` images
are timed. Reported per batch size: median and 90th percentile seconds per image, images per second, mean
detections per image (unmolding cost grows with it), CPU seconds per image (all threads; on a machine shared
with other work, CPU seconds / cores is closer to what the image would take alone than the wall time is) and
peak resident memory. Each batch size runs in a
fresh process (spawned), so its peak memory is that of one worker holding one model, nothing else. The images
are seeded random noise: content changes the detections, not the network's cost.

Weights do not change the speed, only the number of detections; without real weights ``--random-weights``
generates a file in the model's real layout with ``shared/parity/make_fake_weights.py`` (seed 6, which gives
a realistic 10-25 detections per image on COCO) when that script and a matching layout are found, and
otherwise keeps Keras' random initialisation. The output says which weights were used.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from backend.atomic import atomic_write_text

PROG = "maskweb bench"
FAKE_WEIGHTS_SEED = 6
ROOT = Path(__file__).resolve().parents[2]


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench",
        help="seconds per image and peak memory at batch 1 and 2",
        description=(
            "Times segmentation (network, detection, full-size masks, RLE) per image after a warm-up, for each "
            "batch size, and reports median and p90 seconds per image and peak resident memory. Without real "
            "weights use --random-weights (the output says which weights were used)."
        ),
    )
    parser.add_argument("--weights", type=Path, default=None, help="weights file (default: $MASKWEB_WEIGHTS)")
    parser.add_argument(
        "--random-weights", action="store_true", help="time with generated weights instead of a weights file"
    )
    parser.add_argument(
        "--config", default="coco", metavar="coco|FILE.json", help="model config (default: coco)"
    )
    parser.add_argument(
        "--batch", type=int, nargs="+", default=[1, 2], metavar="B", help="batch sizes (default: 1 2)"
    )
    parser.add_argument(
        "--repeat", type=int, default=5, metavar="N", help="timed batches per size (default 5)"
    )
    parser.add_argument(
        "--size", type=int, default=1024, metavar="PX", help="image side in pixels (default 1024)"
    )
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="also time Keras' own ResNet-101 (no weights) at the same size: a yardstick for a busy machine",
    )
    parser.add_argument(
        "--json", type=Path, default=None, metavar="OUT", help="also write the figures as JSON"
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from backend.segmentation.model_config import ModelConfigError, load_model_config

    if min(args.batch) < 1 or args.repeat < 1 or args.size < 16:
        return _fail("--batch and --repeat must be at least 1 and --size at least 16")
    try:
        config, class_names = load_model_config(args.config)
    except ModelConfigError as exc:
        return _fail(str(exc))

    with tempfile.TemporaryDirectory(prefix="maskweb-bench-") as scratch:
        if args.random_weights:
            weights, weights_text = _generated_weights(config, Path(scratch))
        else:
            from backend.segmentation.weights import WeightsCorrupt, WeightsMissing, resolve_weights

            try:
                weights = resolve_weights(args.weights)
            except (WeightsMissing, WeightsCorrupt) as exc:
                return _fail(f"{exc}; or time with generated weights: maskweb bench --random-weights")
            weights_text = str(weights)
        report = _measure(args, config, class_names, weights, weights_text)

    _print_table(report)
    if args.json:
        _write_json(args.json, report)
    return 0


def _measure(args, config, class_names, weights, weights_text) -> dict:
    # Each batch size runs in a fresh process, so its peak memory is its own and not the previous model's.
    load_before = os.getloadavg()[0]
    context = multiprocessing.get_context("spawn")
    rows = []
    for batch in args.batch:
        with context.Pool(1) as pool:
            rows.append(pool.apply(_measure_batch, (args.config, batch, weights, args.size, args.repeat)))
    return {
        "config": args.config,
        "backbone": config.BACKBONE,
        "num_classes": config.NUM_CLASSES,
        "weights": weights_text,
        "keras_backend": rows[0]["keras_backend"],
        "image_size": [args.size, args.size],
        "repeat": args.repeat,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1min": [load_before, os.getloadavg()[0]],
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "rows": rows,
        "calibration": _calibrate(context, args.size, args.repeat) if args.calibrate else None,
    }


def _calibrate(context, size: int, repeat: int) -> dict:
    with context.Pool(1) as pool:
        return pool.apply(_time_plain_resnet101, (size, repeat))


def _time_plain_resnet101(size: int, repeat: int) -> dict:
    """Keras' ResNet-101 (random init, no top) on one size x size image: median wall and CPU seconds."""
    import keras
    import numpy as np

    net = keras.applications.ResNet101(weights=None, include_top=False, input_shape=(size, size, 3))
    image = np.random.default_rng(0).random((1, size, size, 3), dtype=np.float32)
    net.predict_on_batch(image)
    wall, cpu = [], []
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        net.predict_on_batch(image)
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    return {"resnet101_s": float(np.median(wall)), "resnet101_cpu_s": float(np.median(cpu))}


def _measure_batch(config_spec: str, batch: int, weights: Path | None, size: int, repeat: int) -> dict:
    """Build the model for ``batch`` images at once, warm it up, time ``repeat`` batches (in a child process)."""
    import keras
    import numpy as np

    from backend.segmentation.model_config import load_model_config
    from backend.segmentation.pipeline import Segmenter

    config, class_names = load_model_config(config_spec)
    batch_config = type(config).from_dict({**config.to_dict(), "IMAGES_PER_GPU": batch})
    started = time.perf_counter()
    segmenter = Segmenter(batch_config, class_names, weights)
    build_s = time.perf_counter() - started
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8) for _ in range(batch)]
    started = time.perf_counter()
    segmenter.segment_batch(images)
    warmup_s = time.perf_counter() - started
    per_image, cpu_per_image, detections = [], [], []
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        results = segmenter.segment_batch(images)
        per_image.append((time.perf_counter() - started) / batch)
        cpu_per_image.append((time.process_time() - cpu_started) / batch)
        detections.extend(len(r.instances) for r in results)
    return {
        "batch": batch,
        "median_s_per_image": float(np.median(per_image)),
        "p90_s_per_image": float(np.percentile(per_image, 90)),
        "images_per_s": float(1.0 / np.median(per_image)),
        "cpu_s_per_image": float(np.median(cpu_per_image)),
        "detections_per_image": float(np.mean(detections)),
        "build_s": build_s,
        "warmup_s": warmup_s,
        "peak_rss_mib": _peak_rss_mib(),
        "runs_s_per_image": per_image,
        "keras_backend": keras.backend.backend(),
    }


def _peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _generated_weights(config, scratch: Path) -> tuple[Path | None, str]:
    """A weights file in ``config``'s layout with generated values, or None (Keras' random init), and a line
    saying which."""
    generator, layout = _parity_layout_for(config)
    if generator is None:
        return None, "random (Keras initialisation; no parity generator or matching layout found)"
    out = scratch / "weights.h5"
    proc = subprocess.run(
        [sys.executable, str(generator), str(layout), str(FAKE_WEIGHTS_SEED), str(out)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"random (Keras initialisation; the generator failed: {tail})"
    return out, f"generated (layout {layout.name}, make_fake_weights.py seed {FAKE_WEIGHTS_SEED})"


def _parity_layout_for(config) -> tuple[Path | None, Path | None]:
    """The parity generator and the layout whose backbone depth and class count match ``config``."""
    candidates = [
        os.environ.get("MASKWEB_PARITY_DIR"),
        ROOT.parent / "shared" / "parity",
        "/work/shared/parity",
    ]
    for candidate in filter(None, candidates):
        parity = Path(candidate)
        generator = parity / "make_fake_weights.py"
        if not generator.exists():
            continue
        for layout in sorted((parity / "public").glob("layout_*.json")):
            if _layout_matches(layout, config):
                return generator, layout
    return None, None


def _layout_matches(layout: Path, config) -> bool:
    try:
        layers = {entry["name"]: entry for entry in json.loads(layout.read_text())["layers"]}
        logits = layers["mrcnn_class_logits"]["datasets"]
        class_count = next(int(d["shape"][-1]) for d in logits if d["name"].endswith("bias:0"))
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        return False
    deep = "res4w_branch2a" in layers  # ResNet-101 has res4 blocks a..w, ResNet-50 a..f
    return deep == (config.BACKBONE == "resnet101") and class_count == config.NUM_CLASSES


def _print_table(report: dict) -> None:
    print(
        f"{PROG}: {report['config']} config ({report['backbone']}, {report['num_classes']} classes), "
        f"Keras backend {report['keras_backend']}, {report['machine']['cpus']} CPUs"
    )
    print(f"weights: {report['weights']}")
    size = report["image_size"]
    print(f"images: {size[1]}x{size[0]}, {report['repeat']} timed batches per size after 1 warm-up batch")
    header = (
        "batch",
        "s/image median",
        "s/image p90",
        "images/s",
        "CPU s/image",
        "detections/image",
        "peak RSS MiB",
    )
    print("  ".join(f"{h:>16}" for h in header))
    for row in report["rows"]:
        cells = (
            f"{row['batch']}",
            f"{row['median_s_per_image']:.3f}",
            f"{row['p90_s_per_image']:.3f}",
            f"{row['images_per_s']:.2f}",
            f"{row['cpu_s_per_image']:.2f}",
            f"{row['detections_per_image']:.1f}",
            f"{row['peak_rss_mib']:.0f}",
        )
        print("  ".join(f"{c:>16}" for c in cells))
    if report.get("calibration"):
        cal = report["calibration"]
        print(
            f"yardstick: Keras' ResNet-101 alone (no weights) on one image: {cal['resnet101_s']:.3f} s, "
            f"{cal['resnet101_cpu_s']:.2f} CPU s"
        )
    load = report["machine"]["load_average_1min"]
    print(
        f"load average (1 min) before and after: {load[0]:.1f}, {load[1]:.1f} on {report['machine']['cpus']} CPUs"
    )


def _write_json(path: Path, report: dict) -> None:
    atomic_write_text(path, json.dumps(report, indent=2) + "\n")


def _fail(line: str) -> int:
    print(f"{PROG}: {line}", file=sys.stderr)
    return 2
