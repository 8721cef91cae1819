"""``maskweb bench``: images per second and seconds per image of our model and its peers, in one run.

For each batch size (1, 2, 4, 8, 16 by default, as memory allows) our model runs at each precision ("exact",
"fast"); at ``--peer-batch`` (1) torchvision's Mask R-CNN and matterport's own code run alongside, in
alternating rounds (``rounds``). Each contender is timed twice per round on the same synthetic 1024x1024 photo
(seeded; saved as PNG so decoding is part of the job): the network alone, and the whole job (decode -> model ->
masks -> RLE -> files saved). Every contender keeps 100 detections per image (minimum score 0, as the peer is
asked to), so post-processing is timed at its heaviest. The output is a table per batch size, the ratios
(peer seconds / ours) and issue 9's targets, met or missed; ``--json`` writes all of it.

Weights do not change the speed once the detection count is fixed: real weights when a file is at hand,
generated ones in the same layout with ``--random-weights`` (shared/parity's generator when the checkout has
it), else Keras' random initialisation. The output says which. torch/torchvision, tf_keras and scikit-image are
a bench-only install (``make bench-deps``); without them the peers are reported unavailable and ours still runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from backend.atomic import atomic_write_text

from . import report
from .contenders import Spec
from .rounds import alternate

PROG = "maskweb bench"
ROOT = Path(__file__).resolve().parents[3]
CACHE = ROOT / ".cache" / "bench"
MATTERPORT_WHEEL = CACHE / "mrcnn_colab-2.1.0-py3-none-any.whl"
FAKE_WEIGHTS_SEED = 6
PRECISIONS = ("exact", "fast")
PEERS = ("torchvision", "matterport")
MEMORY_HEADROOM = 0.8  # use at most this share of the memory available when a batch size starts


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench",
        help="images/s and seconds per image of our model and its peers (torchvision, matterport)",
        description=(
            "Times the network alone and the whole job (decode, model, masks, RLE, files saved) per image, at "
            "each batch size and precision, alternating with torchvision's Mask R-CNN and matterport's code, "
            "and prints the ratios. Without real weights use --random-weights (the output says which)."
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
        "--batch", type=int, nargs="+", default=[1, 2, 4, 8, 16], metavar="B",
        help="batch sizes (default: 1 2 4 8 16; sizes that would not fit in memory are skipped)",
    )  # fmt: skip
    parser.add_argument(
        "--repeat", type=int, default=5, metavar="N", help="timed rounds per batch size (default 5)"
    )
    parser.add_argument("--precision", nargs="+", choices=PRECISIONS, default=list(PRECISIONS),
                        help="our precisions (default: both)")  # fmt: skip
    parser.add_argument("--peers", nargs="*", choices=PEERS, default=list(PEERS),
                        help="peers to run alongside (default: both; none: --peers with no name)")  # fmt: skip
    parser.add_argument("--peer-batch", type=int, nargs="+", default=[1], metavar="B",
                        help="batch sizes the peers run at (default 1)")  # fmt: skip
    parser.add_argument(
        "--min-score", type=float, default=0.0, metavar="S",
        help="minimum detection score for every contender (default 0: 100 detections per image)",
    )  # fmt: skip
    parser.add_argument(
        "--size", type=int, default=1024, metavar="PX", help="image side in pixels (default 1024)"
    )
    parser.add_argument(
        "--targets",
        choices=("cpu", "gpu"),
        default="cpu",
        help="which of issue 9's targets to check (default cpu)",
    )
    parser.add_argument(
        "--matterport-wheel", type=Path, default=MATTERPORT_WHEEL, metavar="WHEEL",
        help="the mrcnn-colab 2.1 wheel holding matterport's code (make bench-deps downloads it)",
    )  # fmt: skip
    parser.add_argument(
        "--json", type=Path, default=None, metavar="OUT", help="also write the figures as JSON"
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from backend.segmentation.model_config import ModelConfigError, load_model_config

    if min(args.batch + args.peer_batch) < 1 or args.repeat < 1 or args.size < 16:
        return _fail("--batch, --peer-batch and --repeat must be at least 1 and --size at least 16")
    if not 0.0 <= args.min_score <= 1.0:
        return _fail(f"--min-score must be between 0 and 1, got {args.min_score}")
    try:
        config, _ = load_model_config(args.config)
    except ModelConfigError as exc:
        return _fail(str(exc))

    with tempfile.TemporaryDirectory(prefix="maskweb-bench-") as scratch:
        scratch = Path(scratch)
        if args.random_weights:
            weights, weights_text = _generated_weights(config, scratch)
        else:
            from backend.segmentation.weights import WeightsCorrupt, WeightsMissing, resolve_weights

            try:
                weights = resolve_weights(args.weights)
            except (WeightsMissing, WeightsCorrupt) as exc:
                return _fail(f"{exc}; or time with generated weights: maskweb bench --random-weights")
            weights_text = str(weights)
        _measure(args, config, weights, weights_text, scratch)
    return 0


def _measure(args, config, weights, weights_text, scratch: Path) -> dict:
    """Run every batch size, print as it goes and, with ``--json``, rewrite the JSON after each batch size (a
    run stopped by a time limit keeps what it measured). Returns the JSON document."""
    default_precision = _default_precision()
    batches = sorted(set(args.batch) | set(args.peer_batch if args.peers else []))
    inputs = _inputs(scratch, args.size, max(batches))
    print(
        f"{PROG}: {args.config} config ({config.BACKBONE}, {config.NUM_CLASSES} classes), {args.size}x{args.size} "
        f"synthetic photo, minimum score {args.min_score:g}, {args.repeat} rounds per batch size, "
        f"{os.cpu_count()} CPUs ({_processor()}), Keras backend {_keras_backend()}; default precision here: "
        f"{default_precision}"
    )
    print(f"weights: {weights_text}")
    document = {
        "config": args.config,
        "weights": weights_text,
        "image_size": [args.size, args.size],
        "repeat": args.repeat,
        "min_score": args.min_score,
        "default_precision": default_precision,
        "keras_backend": _keras_backend(),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": _processor(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_1min": [os.getloadavg()[0]],
        },
        "batches": {},
        "skipped": [],
        "ratios": [],
        "targets": [],
    }
    by_batch = {}
    for batch in batches:
        specs = _specs(args, batch, weights)
        too_big = _memory_shortfall(by_batch, batch, len(specs))
        if too_big:
            document["skipped"].append({"batch": batch, "reason": too_big})
            print(f"batch {batch}: skipped, {too_big}")
            continue
        print(f"batch {batch}: {', '.join(report.label_spec(s) for s in specs)}")
        by_batch[batch] = alternate(specs, inputs[:batch], args.repeat)
        for line in report.table_lines(by_batch[batch]):
            print("  " + line)
        rows = [{**row, "batch": batch} for row in report.ratios(by_batch[batch], default_precision)]
        for line in report.ratio_lines(rows):
            print("  " + line)
        document["batches"][str(batch)] = [report.as_json(o) for o in by_batch[batch]]
        document["ratios"].extend(rows)
        _save(args.json, document)
    first_peer_batch = min((r["batch"] for r in document["ratios"]), default=None)
    if args.targets == "cpu":
        at_first = [r for r in document["ratios"] if r["batch"] == first_peer_batch]
        document["targets"] = report.target_lines(at_first, default_precision)
        print(f"targets (ratios at batch {first_peer_batch}):")
    else:
        document["targets"] = report.gpu_target_lines(by_batch, default_precision)
        print("targets:")
    for line in document["targets"]:
        print("  " + line)
    loads = document["machine"]["load_average_1min"]
    loads.append(os.getloadavg()[0])
    print(f"load average (1 min) before and after: {loads[0]:.1f}, {loads[1]:.1f} on {os.cpu_count()} CPUs")
    _save(args.json, document)
    return document


def _save(path: Path | None, document: dict) -> None:
    if path is not None:
        atomic_write_text(path, json.dumps(document, indent=2) + "\n")


def _specs(args, batch: int, weights) -> list[Spec]:
    common = dict(batch=batch, config=args.config, weights=str(weights) if weights else None,
                  min_score=args.min_score, cache=str(CACHE))  # fmt: skip
    specs = [Spec(kind="ours", precision=p, **common) for p in args.precision]
    if batch in args.peer_batch:
        extra = {"matterport_wheel": str(args.matterport_wheel)}
        specs += [Spec(kind=peer, extra=extra, **common) for peer in args.peers]
    return specs


def _memory_shortfall(by_batch: dict, batch: int, processes: int) -> str | None:
    """A sentence when ``batch`` would likely not fit in the memory available now, else None.

    The estimate extrapolates our contenders' peak memory linearly from the two largest batches measured.
    """
    measured = sorted(
        (b, max(o.peak_rss_mib for o in outcomes if o.spec.kind == "ours"))
        for b, outcomes in by_batch.items()
        if any(o.spec.kind == "ours" and o.peak_rss_mib for o in outcomes)
    )
    if len(measured) < 2:
        return None
    (b0, m0), (b1, m1) = measured[-2:]
    per_image = max((m1 - m0) / (b1 - b0), 0.0)
    need_mib = processes * (m1 + per_image * (batch - b1))
    available_mib = _available_mib()
    if available_mib is None or need_mib <= MEMORY_HEADROOM * available_mib:
        return None
    return (
        f"needs about {need_mib / 1024:.1f} GiB for {processes} model processes, "
        f"{available_mib / 1024:.1f} GiB available"
    )


def _available_mib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _inputs(scratch: Path, size: int, count: int) -> list[Path]:
    """``count`` copies of one seeded synthetic photo (smooth shapes and grain) as PNG files."""
    from PIL import Image  # lazy: `maskweb --help` imports this module

    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    image = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC), dtype=np.int16)
    image = np.clip(image + rng.integers(-12, 13, size=image.shape), 0, 255).astype(np.uint8)
    paths = []
    for index in range(count):
        path = scratch / f"photo{index:02d}.png"
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


def _default_precision() -> str:
    """The precision the service runs by default on this device (the engine decides)."""
    from backend.mrcnn.precision import default_precision  # imports Keras: only once the bench runs

    return default_precision()


def _keras_backend() -> str:
    import keras  # already loaded by default_precision()

    return keras.backend.backend()


def _processor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _generated_weights(config, scratch: Path) -> tuple[Path | None, str]:
    """A weights file in ``config``'s layout with generated values, or None (Keras' random init), and a line
    saying which."""
    generator, layout = _parity_layout_for(config)
    if generator is None:
        return None, "random (Keras initialisation; no parity generator or matching layout in this checkout)"
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


def _parity_layout_for(
    config, parity: Path = ROOT.parent / "shared" / "parity"
) -> tuple[Path | None, Path | None]:
    """The parity generator and the layout whose backbone depth and class count match ``config``, when the
    checkout sits beside the project's shared/parity folder (a plain clone has none)."""
    generator = parity / "make_fake_weights.py"
    if not generator.exists():
        return None, None
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


def _fail(line: str) -> int:
    print(f"{PROG}: {line}", file=sys.stderr)
    return 2
