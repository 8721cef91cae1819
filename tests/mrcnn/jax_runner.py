"""Run the parity cases on the JAX backend and write what the model computes to an npz (for test_parity_jax).

Keras picks its backend when it is first imported, so the JAX run needs its own process:

    python tests/mrcnn/jax_runner.py OUT.npz --parity-dir DIR --weights small=PATH --weights coco=PATH CASE...

For each case of ``DIR/MANIFEST.json`` it builds the case's config (once per config), loads the weights, feeds
the stored molded images, metas and anchors through ``run_molded`` (the network stages) and runs ``detect`` on
the case's input images (the whole API). Keys in the npz: ``<case>/<tensor>`` for graph outputs and
``<case>/result<b>_<field>`` for detect() results (masks packed with np.packbits over the last axis, as the
reference stores them). It also records, per config, how many XLA compilations the first graph run and detect()
caused (``<config>/first_compiles``: at least 1, the graph is compiled) and how many a detect() of other images
that mold to an already compiled shape caused beyond one per mask bucket used for the first time
(``<config>/recompiles``: must be 0).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ["KERAS_BACKEND"] = "jax"  # before anything imports keras
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402

GRAPH_NAMES = ("rpn_rois", "mrcnn_class", "mrcnn_bbox", "detections", "mrcnn_mask")
SMALL_EXTRA = ("rpn_class", "rpn_bbox")  # stored by the reference for the small config only


class CompileCounter:
    """Counts XLA backend compilations (jax.monitoring events) while active."""

    def __init__(self):
        import jax

        self.count = 0
        self.active = False
        jax.monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, event, duration, **kwargs):
        if self.active and "backend_compile" in event:
            self.count += 1

    def measure(self, fn, *args):
        """(compilations during fn(*args), its result)."""
        self.count, self.active = 0, True
        try:
            result = fn(*args)
        finally:
            self.active = False
        return self.count, result


def load_image(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("cases", nargs="+")
    parser.add_argument("--parity-dir", type=Path, required=True, help="the parity 'public' folder")
    parser.add_argument("--weights", action="append", default=[], help="LAYOUT=PATH (small, coco)")
    parser.add_argument(
        "--time", type=int, default=0, help="also time N detect() calls per case (benchmarks)"
    )
    args = parser.parse_args(argv)

    import keras

    from backend.mrcnn import Config, MaskRCNN

    assert keras.backend.backend() == "jax", keras.backend.backend()
    manifest = json.loads((args.parity_dir / "MANIFEST.json").read_text())
    weight_files = dict(item.split("=", 1) for item in args.weights)
    counter = CompileCounter()
    models, out = {}, {}
    for case in args.cases:
        info = manifest["cases"][case]
        config_name = info["config"] if "config" in info else info["config_json"]
        if config_name not in models:
            values = json.loads((args.parity_dir / info["config_json"]).read_text())["values"]
            layout = "coco" if info["layout"] == "layout_coco.json" else "small"
            models[config_name] = MaskRCNN(Config.from_dict(values)).load_weights(weight_files[layout])
        model = models[config_name]
        ref = np.load(args.parity_dir / info["file"])
        anchors = (
            ref["anchors"]
            if "anchors" in ref
            else np.load(args.parity_dir / "reference" / "anchors_coco.npz")["anchors"]
        )
        names = GRAPH_NAMES + (SMALL_EXTRA if "rpn_class" in ref else ())
        compiles, graph = counter.measure(
            model.run_molded, ref["molded_images"], ref["image_metas"], anchors, names
        )
        for name, value in graph.items():
            out[f"{case}/{name}"] = value

        images = [load_image(args.parity_dir / "inputs" / f"{name}.png") for name in info["images"]]
        first, results = counter.measure(model.detect, images)
        out.update(_results(case, results))
        out.setdefault(f"{config_name}/first_compiles", np.int32(compiles + first))
        # Other images that mold to the same shape (flipped, cropped: another original size) must reuse the
        # compiled graph: static shapes, no retracing per image.
        # (A mask bucket not used before compiles once: buckets are few, see MaskRCNN.mask_buckets.)
        others = [image[::-1, : max(1, image.shape[1] * 2 // 3)] for image in images]
        known = model.compiled_graphs
        again, _ = counter.measure(model.detect, others)
        again -= len(model.compiled_graphs - known)
        key = f"{config_name}/recompiles"
        out[key] = np.int32(max(again, int(out.get(key, 0))))
        if args.time:
            seconds = []
            for _ in range(args.time):
                start = time.perf_counter()
                model.detect(images)
                seconds.append((time.perf_counter() - start) / len(images))
            out[f"{case}/detect_seconds_per_image"] = np.asarray(seconds)
            print(f"{case}: detect() median {np.median(seconds):.4f} s per image", flush=True)
        print(
            f"{case}: done (compilations: graph {compiles}, detect {first}, other images {again})", flush=True
        )

    tmp = args.out.with_name(args.out.name + ".partial.npz")
    np.savez_compressed(tmp, **out)
    os.replace(tmp, args.out)
    return 0


def _results(case: str, results) -> dict:
    out = {}
    for b, result in enumerate(results):
        for field in ("rois", "class_ids", "scores"):
            out[f"{case}/result{b}_{field}"] = np.asarray(result[field])
        masks = np.asarray(result["masks"], dtype=bool)
        out[f"{case}/result{b}_masks_shape"] = np.asarray(masks.shape)
        out[f"{case}/result{b}_masks_packbits"] = np.packbits(masks, axis=-1)
    return out


if __name__ == "__main__":
    sys.exit(main())
