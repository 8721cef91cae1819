"""What the engine's own choices save, measured as ratios in one run: ``python -m backend.mrcnn.speed``.

Builds the variants below from one config and one weights file, warms each up, then times them in turn on the
same images (round-robin, so a busy machine slows all of them alike) and prints the median seconds per image
of ``detect_instances`` and each variant's ratio to the first:

- ``exact``: float32, BatchNorms folded, mask head on the detections' bucket (what runs by default);
- ``unfolded``: the same with every BatchNorm as its own layer;
- ``all-rows``: the same with the mask head on all DETECTION_MAX_INSTANCES rows, as before buckets;
- ``fast``: bfloat16 convolutions (``backend.mrcnn.precision``);
- ``fast:STAGE+STAGE``: bfloat16 convolutions in those stages only (``precision.STAGES``), e.g. ``fast:backbone``.

On a CPU without AVX512-BF16/AMX every ``fast`` variant computes in float32 (see ``precision.fast``).

``--profile`` times the network's parts instead (see ``profile``): backbone, FPN, RPN head, proposal layer,
RoIAlign + classifier head, detection layer, RoIAlign + mask head, each as its own compiled sub-graph fed the
tensors the full network computed, round-robin, with the multiply-adds of its convolutions and dense layers.

Random weights without ``--weights`` (Keras' initialisation: detection counts then differ from a trained model's,
which matters for ``all-rows``); images are seeded noise of ``--size`` pixels, molded as the config says.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import keras
import numpy as np

from backend.mrcnn import precision
from backend.mrcnn.anchors import pyramid_anchors
from backend.mrcnn.compiled import compiled_call
from backend.mrcnn.config import CocoConfig, Config
from backend.mrcnn.model import MaskRCNN

VARIANTS = ("exact", "unfolded", "all-rows", "fast")
# a part of the network: its inputs and outputs, by the detector's tensor names ("masks": the mask graph)
PARTS = {
    "backbone": (("input_image",), ("C2", "C3", "C4", "C5")),
    "fpn": (("C2", "C3", "C4", "C5"), ("P2", "P3", "P4", "P5", "P6")),
    "rpn_head": (("P2", "P3", "P4", "P5", "P6"), ("rpn_class", "rpn_bbox")),
    "proposals": (("rpn_class", "rpn_bbox", "input_anchors"), ("rpn_rois",)),
    "classifier": (("rpn_rois", "input_image_meta", "P2", "P3", "P4", "P5"), ("mrcnn_class", "mrcnn_bbox")),
    "detection": (("rpn_rois", "mrcnn_class", "mrcnn_bbox", "input_image_meta"), ("detections",)),
    "masks": None,
}


def precision_of(variant: str):
    """The ``precision`` argument of MaskRCNN for a variant name: "fast", "fast:backbone+fpn", else "exact"."""
    if variant.startswith("fast:"):
        return precision.fast(tuple(variant.split(":", 1)[1].split("+")))
    return "fast" if variant == "fast" else "exact"


def variant_name(value: str) -> str:
    """argparse type: a VARIANTS name or ``fast:`` and stages joined by "+"; ArgumentTypeError otherwise."""
    if value in VARIANTS:
        return value
    if value.startswith("fast:"):
        try:
            precision.fast(tuple(value.split(":", 1)[1].split("+")))
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        return value
    raise argparse.ArgumentTypeError(f"unknown variant {value!r}; one of {VARIANTS} or fast:STAGE+STAGE")


def build(variant: str, config, weights):
    model = MaskRCNN(config, precision=precision_of(variant), fold_batch_norms=variant != "unfolded")
    if weights:
        model.load_weights(weights)
    if variant == "all-rows":
        model.mask_buckets = (config.DETECTION_MAX_INSTANCES,)
    return model


def multiply_adds(graph: keras.Model) -> int:
    """Multiply-adds of ``graph``'s convolutions and dense layers for its static input shapes (whole batch).

    Counts Conv2D (output pixels x kh x kw x cin x cout), Conv2DTranspose (input pixels x kh x kw x cin x cout)
    and Dense (rows x in x out); nested models (the RPN head) count their layers at the shape they are called
    with, which needs their convolutions to keep the spatial size (stride 1; NotImplementedError otherwise).
    Elementwise work, RoIAlign's interpolation, top-k and NMS are not counted.
    """
    total = 0
    for nodes in graph._nodes_by_depth.values():  # Keras' own record of the calls that make up this graph
        for node in nodes:
            inputs = [tuple(t.shape) for t in node.input_tensors]
            outputs = [tuple(t.shape) for t in node.output_tensors]
            total += _layer_multiply_adds(
                node.operation, inputs[0] if inputs else (), outputs[0] if outputs else ()
            )
    return total


def _layer_multiply_adds(layer, in_shape, out_shape) -> int:
    if isinstance(layer, keras.Model):  # nested: each layer at the call's spatial size
        pixels = int(np.prod(in_shape[:-1]))
        count = 0
        for inner in layer.layers:
            if isinstance(inner, keras.layers.Conv2D):
                if tuple(inner.strides) != (1, 1):
                    raise NotImplementedError(
                        f"{layer.name}/{inner.name}: strided convolution in a nested model"
                    )
                count += pixels * int(np.prod(inner.kernel.shape))
        return count
    if isinstance(layer, keras.layers.Conv2DTranspose):  # kernel [kh, kw, out, in]
        return int(np.prod(in_shape[:-1])) * int(np.prod(layer.kernel.shape))
    if isinstance(layer, keras.layers.Conv2D):  # kernel [kh, kw, in, out]
        return int(np.prod(out_shape[:-1])) * int(np.prod(layer.kernel.shape))
    if isinstance(layer, keras.layers.Dense):
        return int(np.prod(in_shape[:-1])) * int(np.prod(layer.kernel.shape))
    return 0


def part_graphs(model: MaskRCNN, image_shape, bucket: int) -> dict[str, keras.Model]:
    """{part name: Keras model} for PARTS: sub-graphs of the detector for molded images of ``image_shape``
    (sharing its layers, inputs named as in PARTS), and the mask graph of ``bucket`` detections for "masks"."""
    detector, masks = model.graphs(image_shape, bucket)
    named = dict(detector.output)
    named.update({t.name: t for t in detector.inputs})  # input_image, input_image_meta, input_anchors
    parts = {}
    for part, spec in PARTS.items():
        if spec is None:
            parts[part] = masks
        else:
            ins, outs = spec
            parts[part] = keras.Model([named[n] for n in ins], {n: named[n] for n in outs}, name=part)
    return parts


def profile(models: dict[str, MaskRCNN], images, repeat: int) -> dict[str, dict[str, dict]]:
    """Seconds per image (median of ``repeat`` rounds) and multiply-adds per image of each part, per model.

    Each part runs as its own compiled graph (``compiled_call``) on the tensors that the whole network computed
    for ``images`` (one batch of BATCH_SIZE molded to one shape); parts and models alternate within a round so
    that a busy machine slows all alike. Returns {variant: {part: {"seconds", "multiply_adds"}}}, parts in
    network order plus "sum" (of the parts) and "network" (the detector and the mask graph run as detect() runs
    them, i.e. with the tensors handed over on the device).
    """
    runs = {}
    for variant, model in models.items():
        molded, metas, _ = model.mold(images)
        molded, metas = np.stack(molded), np.stack(metas)
        names = sorted({n for spec in PARTS.values() if spec for n in spec[1]} | {"mrcnn_mask"})
        found = model.run_molded(molded, metas, names=names)
        bucket = model.mask_bucket(found["detections"]) or model.mask_buckets[0]
        found.update(input_image=molded, input_image_meta=metas)
        anchors = pyramid_anchors(model.config, molded.shape[1:])
        found["input_anchors"] = np.broadcast_to(anchors, (len(molded), *anchors.shape))
        rows = found["detections"][:, :bucket]
        mask_inputs = [found[p] for p in ("P2", "P3", "P4", "P5")]
        mask_inputs += [np.ascontiguousarray(rows[..., :4]), rows[..., 4].astype(np.int32), metas]
        calls = {}
        for part, graph in part_graphs(model, molded.shape[1:], bucket).items():
            inputs = mask_inputs if PARTS[part] is None else [found[n] for n in PARTS[part][0]]
            calls[part] = (compiled_call(graph, model.precision), inputs, multiply_adds(graph))
        calls["network"] = (lambda m=model, x=molded, y=metas: m.run_molded(x, y), None, None)
        for fn, inputs, _ in calls.values():
            _finished(fn(inputs) if inputs is not None else fn())  # compile and warm up
        runs[variant] = calls
    seconds = {v: {p: [] for p in calls} for v, calls in runs.items()}
    for _ in range(repeat):
        for part in (*PARTS, "network"):
            for variant, calls in runs.items():
                fn, inputs, _ = calls[part]
                start = time.perf_counter()
                _finished(fn(inputs) if inputs is not None else fn())
                seconds[variant][part].append((time.perf_counter() - start) / len(images))
    result = {}
    for variant, calls in runs.items():
        rows = {
            part: {"seconds": statistics.median(seconds[variant][part]),
                   "multiply_adds": calls[part][2] // len(images) if calls[part][2] is not None else None}
            for part in (*PARTS, "network")
        }  # fmt: skip
        rows["sum"] = {
            "seconds": sum(rows[p]["seconds"] for p in PARTS),
            "multiply_adds": sum(rows[p]["multiply_adds"] for p in PARTS),
        }
        result[variant] = rows
    return result


def _finished(outputs):
    """Wait for a call's outputs (every backend tensor converted to numpy)."""
    values = outputs.values() if isinstance(outputs, dict) else outputs
    return [np.asarray(v) for v in values]


def print_profile(result) -> None:
    variants = list(result)
    print(f"{'part':>11} | " + " | ".join(f"{v} s/image" for v in variants) + " | share | GMACs | GMAC/s")
    base = result[variants[0]]
    for part, row in base.items():
        times = " | ".join(f"{result[v][part]['seconds']:.3f}" for v in variants)
        macs = row["multiply_adds"]
        share = row["seconds"] / base["network"]["seconds"]
        rate = f"{macs / 1e9 / row['seconds']:.1f}" if macs else "-"
        print(f"{part:>11} | {times} | {share:5.1%} | {(macs or 0) / 1e9:7.2f} | {rate}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m backend.mrcnn.speed", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--config", default="coco", help="'coco' or a JSON file of Config values")
    parser.add_argument("--weights", default=None, help="Keras-2 HDF5 weights file in the config's layout")
    parser.add_argument(
        "--variants", nargs="+", default=list(VARIANTS), type=variant_name,
        help=f"some of {VARIANTS}, or fast:STAGE+STAGE with stages of {precision.STAGES}",
    )  # fmt: skip
    parser.add_argument("--profile", action="store_true", help="time the network's parts (see profile())")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds (default 3)")
    parser.add_argument("--size", type=int, default=1024, help="image side in pixels (default 1024)")
    args = parser.parse_args(argv)

    if args.config == "coco":
        config = CocoConfig()
    else:
        config = Config.from_dict(json.loads(Path(args.config).read_text()))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (args.size, args.size, 3), np.uint8) for _ in range(config.BATCH_SIZE)]
    if args.profile:
        models = {v: build(v, config, args.weights) for v in args.variants}
        print(f"profile, {config.BATCH_SIZE} image(s) of {args.size}x{args.size} per call:", flush=True)
        print_profile(profile(models, images, args.repeat))
        return 0
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
