"""``MaskRCNN``: the inference model, reading like the paper — features, proposals, RoIAlign, heads.

    molded image -> ResNet (C2..C5) -> FPN (P2..P6) -> RPN + proposals -> RoIAlign -> class/box head
                 -> detections -> RoIAlign -> mask head

Keras graphs are wired per molded image shape (one shape in "square" mode) from layers created once, so every
graph shares the same weights; shapes inside are static (batch = BATCH_SIZE, POST_NMS_ROIS_INFERENCE
proposals, DETECTION_MAX_INSTANCES detections). The detector and the mask head are two graphs: the mask head runs
on the smallest bucket of detection rows that holds the batch's detections (``mask_buckets``), so its work
follows the objects while a few compiled graphs serve every image. Each graph runs as one compiled function
(``compiled.compiled_call``), the feature maps passing from one to the other as device tensors.
"""

from __future__ import annotations

import contextlib
import os

import keras
import numpy as np
from keras import layers, ops

from backend.mrcnn import weights_io
from backend.mrcnn.anchors import pyramid_anchors
from backend.mrcnn.backbone import resnet_features
from backend.mrcnn.compiled import compiled_call
from backend.mrcnn.config import Config
from backend.mrcnn.detection import DetectionLayer
from backend.mrcnn.detections import Detections
from backend.mrcnn.fpn import pyramid
from backend.mrcnn.heads import classifier_head, mask_head
from backend.mrcnn.imaging import mold_image
from backend.mrcnn.layer_bank import LayerBank
from backend.mrcnn.precision import Precision
from backend.mrcnn.precision import resolve as resolve_precision
from backend.mrcnn.roi_align import PyramidRoIAlign
from backend.mrcnn.rpn import ProposalLayer, rpn_head

# names accepted by run_graph(): matterport's tensor names, plus plain-word aliases
GRAPH_OUTPUTS = (
    "C2", "C3", "C4", "C5", "P2", "P3", "P4", "P5", "P6",
    "rpn_class_logits", "rpn_class", "rpn_bbox", "rpn_rois",
    "mrcnn_class_logits", "mrcnn_class", "mrcnn_bbox", "detections", "mrcnn_mask", "class_masks",
)  # fmt: skip
MASK_OUTPUTS = ("mrcnn_mask", "class_masks")  # computed by the mask graph, on the detections' bucket
MASK_BUCKET_MIN = 8
ALIASES = {
    "proposals": "rpn_rois",
    "class_probs": "mrcnn_class",
    "box_deltas": "mrcnn_bbox",
    "raw_detections": "detections",
    "raw_masks": "mrcnn_mask",
}


class _Network:
    """The Keras layers of Mask R-CNN (created once, in a LayerBank) and the graphs wired from them.

    Two graphs per molded image shape, every shape static as XLA needs:
      - the detector: image, image_meta, anchors -> backbone, FPN, RPN, proposals, class/box head, detections
        (and every named tensor on the way, see GRAPH_OUTPUTS);
      - the mask graph, one per bucket of ``count`` detections: P2..P5, boxes [B, count, 4] (normalised y1, x1,
        y2, x2), class ids [B, count], image_meta -> RoIAlign and the mask head, ``mrcnn_mask`` [B, count, mh,
        mw, K] and ``class_masks`` [B, count, mh, mw] (each row's own class).
    Layers are created under ``precision.policy`` (float32 or mixed_bfloat16); those that decide detections pin
    float32 themselves.
    """

    def __init__(self, config: Config, precision: Precision, fold_batch_norms: bool = True):
        self.config = config
        self.precision = precision
        self.bank = LayerBank(fold_batch_norms)
        self.graphs: dict[tuple[int, int, int], keras.Model] = {}
        self.mask_graphs: dict[tuple, keras.Model] = {}
        # wiring the graphs creates the layers, so the weights can be listed and loaded before any image comes
        h, w, channels = config.IMAGE_SHAPE
        shape = (-(-h // 64) * 64, -(-w // 64) * 64, channels)
        self.graph(shape)
        self.mask_graph(shape, mask_buckets(config.DETECTION_MAX_INSTANCES)[0])

    def _wiring(self, stage: str | None = None):
        """Context in which new layers take the dtype policy of ``stage`` (None: the model's widest) — Keras
        reads the global policy when a layer is made, and the bank makes each layer once."""

        @contextlib.contextmanager
        def policy():
            before = keras.config.dtype_policy()
            keras.config.set_dtype_policy(self.precision.policy_of(stage))
            try:
                yield
            finally:
                keras.config.set_dtype_policy(before)

        return policy()

    def graph(self, image_shape):
        """The detector for molded images of ``image_shape`` (H, W, C); H and W must be multiples of 64."""
        image_shape = tuple(int(v) for v in image_shape)
        if image_shape not in self.graphs:
            h, w = image_shape[:2]
            if h % 64 or w % 64:
                raise ValueError(
                    f"molded image size {h}x{w} is not a multiple of 64 (the FPN halves it 6 times); "
                    "use IMAGE_RESIZE_MODE 'square' or 'pad64'"
                )
            c = self.config
            num_anchors = len(pyramid_anchors(c, image_shape))
            inputs = [
                keras.Input(shape=image_shape, batch_size=c.BATCH_SIZE, name="input_image"),
                keras.Input(shape=(c.IMAGE_META_SIZE,), batch_size=c.BATCH_SIZE, name="input_image_meta"),
                keras.Input(shape=(num_anchors, 4), batch_size=c.BATCH_SIZE, name="input_anchors"),
            ]
            with self._wiring():
                self.graphs[image_shape] = keras.Model(inputs, self._wire(*inputs), name="mask_rcnn")
        return self.graphs[image_shape]

    def mask_graph(self, image_shape, count: int):
        """The mask graph for ``count`` detections per image of molded ``image_shape``."""
        key = (tuple(int(v) for v in image_shape), int(count))
        if key not in self.mask_graphs:
            c, detector = self.config, self.graph(key[0])
            maps = [
                keras.Input(
                    batch_shape=detector.output[name].shape, dtype=detector.output[name].dtype, name=name
                )
                for name in ("P2", "P3", "P4", "P5")
            ]
            boxes = keras.Input(shape=(count, 4), batch_size=c.BATCH_SIZE, name="input_boxes")
            class_ids = keras.Input(
                shape=(count,), batch_size=c.BATCH_SIZE, dtype="int32", name="input_class_ids"
            )
            meta = keras.Input(shape=(c.IMAGE_META_SIZE,), batch_size=c.BATCH_SIZE, name="input_image_meta")
            inputs = [*maps, boxes, class_ids, meta]
            with self._wiring():
                self.mask_graphs[key] = keras.Model(
                    inputs, self._wire_masks(maps, boxes, class_ids, meta), name="mask_rcnn_masks"
                )
        return self.mask_graphs[key]

    def _wire(self, image, image_meta, anchors):
        c = self.config
        out = {}
        # 1. feature extraction
        bank = self.bank
        with self._wiring("backbone"):
            out["C2"], out["C3"], out["C4"], out["C5"] = resnet_features(bank, image, c.BACKBONE)
        with self._wiring("fpn"):
            levels = pyramid(bank, out["C2"], out["C3"], out["C4"], out["C5"], c.TOP_DOWN_PYRAMID_SIZE)
        out.update(zip(("P2", "P3", "P4", "P5", "P6"), levels, strict=True))
        # 2. region proposals
        with self._wiring("rpn"):
            head = bank(
                rpn_head,
                len(c.RPN_ANCHOR_RATIOS),
                c.RPN_ANCHOR_STRIDE,
                c.TOP_DOWN_PYRAMID_SIZE,
                name="rpn_model",
            )
            per_level = [head(p) for p in levels]
        for i, name in enumerate(("rpn_class_logits", "rpn_class", "rpn_bbox")):
            out[name] = layers.Concatenate(axis=1, name=name, dtype="float32")(
                [level[i] for level in per_level]
            )
        out["rpn_rois"] = ProposalLayer(
            c.POST_NMS_ROIS_INFERENCE, c.RPN_NMS_THRESHOLD, c.PRE_NMS_LIMIT, c.RPN_BBOX_STD_DEV, name="ROI",
            dtype="float32",
        )(out["rpn_class"], out["rpn_bbox"], anchors)  # fmt: skip
        # 3. RoIAlign + class/box head, detections
        crops = PyramidRoIAlign(c.POOL_SIZE, name="roi_align_classifier", dtype="float32")(
            out["rpn_rois"], image_meta, levels[:4]
        )
        with self._wiring("classifier"):
            out["mrcnn_class_logits"], out["mrcnn_class"], out["mrcnn_bbox"] = classifier_head(
                bank, crops, c.NUM_CLASSES, c.FPN_CLASSIF_FC_LAYERS_SIZE
            )
        out["detections"] = DetectionLayer(
            c.NUM_CLASSES,
            c.DETECTION_MAX_INSTANCES,
            c.DETECTION_MIN_CONFIDENCE,
            c.DETECTION_NMS_THRESHOLD,
            c.BBOX_STD_DEV,
            name="mrcnn_detection",
            dtype="float32",
        )(out["rpn_rois"], out["mrcnn_class"], out["mrcnn_bbox"], image_meta)
        return out

    def _wire_masks(self, maps, boxes, class_ids, image_meta):
        c = self.config
        # 4. RoIAlign + mask head on the detections
        crops = PyramidRoIAlign(c.MASK_POOL_SIZE, name="roi_align_mask", dtype="float32")(
            boxes, image_meta, maps
        )
        with self._wiring("mask"):
            masks = mask_head(self.bank, crops, c.NUM_CLASSES)
        # each row's own class: a one-hot sum is exact (x * 1 plus zeros) and has static shapes on every backend
        one_hot = ops.one_hot(class_ids, c.NUM_CLASSES, dtype=masks.dtype)[:, :, None, None, :]
        return {"mrcnn_mask": masks, "class_masks": ops.sum(masks * one_hot, axis=-1)}

    def weighted_layers(self):
        """{file layer name: {weight key: variable}}; the nested RPN model counts as one layer, as in the file."""
        found = {}
        for layer in self.bank.layers.values():
            if isinstance(layer, keras.Model):
                variables = {f"{sub.name}/{v.name}": v for sub in layer.layers for v in sub.weights}
            else:
                variables = {f"{layer.name}/{v.name}": v for v in layer.weights}
            if variables:
                found[layer.name] = variables
        return found


def mask_buckets(max_instances: int) -> tuple[int, ...]:
    """The detection counts the mask graph is compiled for: 8, 16, 32, ... below ``max_instances``, then it.

    An image's masks run in the smallest bucket that holds its detections, so the mask head's work follows
    the objects (at most 2x the real count, 8 rows at least) while a handful of compiled graphs serve all.
    """
    sizes, n = [], MASK_BUCKET_MIN
    while n < max_instances:
        sizes.append(n)
        n *= 2
    return (*sizes, int(max_instances))


def _full_float32_on_jax() -> None:
    """On the JAX backend, make matrix products and convolutions full float32 unless the operator chose.

    JAX's default on Ampere/Hopper GPUs is TF32 (10-bit mantissa), which moves RPN scores by ~8e-3: proposals
    and detections then differ from matterport's (measured on an H200: 14 instead of 15 detections on
    coco_astronaut). Setting ``JAX_DEFAULT_MATMUL_PRECISION`` (e.g. ``tensorfloat32``) keeps the operator's
    choice. No effect on other backends or on the CPU's arithmetic.
    """
    # JAX's own variable, read to respect an operator who set it: the engine reads no setting of the app.
    if keras.backend.backend() == "jax" and not os.environ.get("JAX_DEFAULT_MATMUL_PRECISION"):
        import jax  # lazily: needed only when Keras runs on JAX

        jax.config.update("jax_default_matmul_precision", "highest")


class MaskRCNN:
    """Mask R-CNN inference on any Keras 3 backend with kernels (TensorFlow by default, JAX).

    ``precision``: "exact" (float32, matterport's results), "fast" (bfloat16 convolutions where the hardware
    has them), None/"auto" (the device's default) or a ``Precision`` (e.g. ``precision.fast(stages)``: bfloat16
    in some stages only); see ``backend.mrcnn.precision``.
    ``fold_batch_norms``: fold each frozen BatchNorm into its convolution (default); False keeps them as separate
    layers, only to measure what folding saves.

    ``detect_instances(images)`` -> one ``Detections`` per image (typed; boxes (x1, y1, x2, y2) pixels, per-box
    masks). ``detect(images)`` -> matterport's dicts: rois int32 [N, 4] (y1, x1, y2, x2 original pixels),
    class_ids int32 [N], scores float32 [N], masks bool [H, W, N]. Both take any number of images (HxW, HxWx1,
    HxWx3, HxWx4; uint8 or float 0..255) of any sizes.
    """

    def __init__(
        self, config: Config, precision: str | Precision | None = "exact", fold_batch_norms: bool = True
    ):
        if not isinstance(config, Config):
            raise TypeError(f"MaskRCNN needs a backend.mrcnn.Config, got {type(config).__name__}")
        self.config = config
        self.precision = resolve_precision(precision)
        _full_float32_on_jax()
        self._network = _Network(config, self.precision, fold_batch_norms)
        self._compiled = {}
        self.mask_buckets = mask_buckets(config.DETECTION_MAX_INSTANCES)
        # convolutions whose variables hold unfolded values (all of them until weights are loaded or a run folds)
        self._unfolded = set(self._network.bank.batch_norm_of) if fold_batch_norms else set()

    # ---- weights ----
    def weight_shapes(self) -> dict[str, list[tuple[int, ...]]]:
        """{layer name: [shape, ...]} as the weights file must hold them (order as the file's weight_names)."""
        return {
            name: [tuple(v.shape) for v in variables.values()]
            for name, variables in self._layout_vars().items()
        }

    def weight_layout(self) -> weights_io.Layout:
        """{layer name: {weight key: shape}}, the form ``weights_io.check_layout`` compares."""
        return {
            name: {key: tuple(v.shape) for key, v in variables.items()}
            for name, variables in self._layout_vars().items()
        }

    def _layout_vars(self):
        return self._network.weighted_layers()

    def load_weights(self, path, exclude=()) -> MaskRCNN:
        """Load a Keras-2 HDF5 weights file by layer name; strict unless layers are excluded.

        ``exclude``: layer names, regexes (full match) or "heads" (mrcnn_class_logits, mrcnn_bbox_fc,
        mrcnn_mask) to skip, e.g. for a file trained with another number of classes; skipped layers keep
        their initial values. Raises FileNotFoundError, weights_io.WeightsFileError (not a weights file) or
        weights_io.WeightsMismatchError (missing/unexpected layers, shape mismatches — all listed at once), and
        ValueError when a second load would replace a BatchNorm already folded into a convolution it keeps.
        Nothing is assigned unless the whole file fits. The BatchNorms are folded into their convolutions here.
        """
        variables = self._layout_vars()
        expected = {n: {k: tuple(v.shape) for k, v in vs.items()} for n, vs in variables.items()}
        found = weights_io.read_layout(path)
        to_load = weights_io.check_layout(expected, found, exclude=exclude, path=path)
        norms = self._network.bank.batch_norm_of
        stale = sorted(
            c for c, bn in norms.items() if bn in to_load and c not in to_load and c not in self._unfolded
        )
        if stale:
            raise ValueError(
                f"{path}: the BatchNorms of {', '.join(stale)} are already folded into those convolutions; load "
                "each convolution with its BatchNorm, or load into a new MaskRCNN"
            )
        values = weights_io.read_weights(path, layers=to_load)
        for name in to_load:
            for key, variable in variables[name].items():
                variable.assign(values[name][key].astype(variable.dtype))
        self._unfolded |= {c for c in norms if c in to_load} if self._network.bank.fold_batch_norms else set()
        self._fold()
        return self

    def _fold(self) -> None:
        if self._unfolded:
            self._network.bank.fold(sorted(self._unfolded))
            self._unfolded.clear()

    # ---- inference ----
    def mold(self, images):
        """Lists of molded images ([H, W, 3] float32), image metas ([M] float64) and Moldings, one per image."""
        molded, metas, moldings = [], [], []
        for image in images:
            m, meta, molding = mold_image(image, self.config)
            molded.append(m)
            metas.append(meta)
            moldings.append(molding)
        return molded, metas, moldings

    def run_molded(self, molded_images, image_metas, anchors=None, names=("detections", "mrcnn_mask")):
        """Run the graph on molded inputs; {name: array [N, ...]} for ``names`` (see GRAPH_OUTPUTS/ALIASES).

        molded_images [N, H, W, 3] float32 (all the same shape), image_metas [N, M]; anchors [A, 4] or
        [N, A, 4] (computed from the molded shape if None). N may be any count: batches of BATCH_SIZE are run,
        the last one padded with zeros. ``mrcnn_mask`` [N, n, mh, mw, K] holds the rows of the mask bucket the
        detections needed (n >= the most detections of an image; rows past an image's detections are masks of
        empty boxes); ``class_masks`` [N, n, mh, mw] the same rows, each for its detection's class.
        """
        names = tuple(names)
        wanted = tuple(ALIASES.get(n, n) for n in names)
        unknown = [n for n, w in zip(names, wanted, strict=True) if w not in GRAPH_OUTPUTS]
        if unknown:
            raise ValueError(
                f"unknown graph output(s) {unknown}; known: {list(GRAPH_OUTPUTS) + list(ALIASES)}"
            )
        molded_images = np.asarray(molded_images, dtype=np.float32)
        image_metas = np.asarray(image_metas, dtype=np.float32)
        if molded_images.ndim != 4 or len(molded_images) == 0 or len(image_metas) != len(molded_images):
            raise ValueError(
                f"run_molded needs molded images [N>0, H, W, C] and as many metas; got {molded_images.shape} "
                f"and {image_metas.shape}"
            )
        count, shape = len(molded_images), molded_images.shape[1:]
        if anchors is None:
            anchors = pyramid_anchors(self.config, shape)
        anchors = np.asarray(anchors, dtype=np.float32)
        if anchors.ndim == 2:
            anchors = np.broadcast_to(anchors, (count, *anchors.shape))
        batch = self.config.BATCH_SIZE
        parts = {n: [] for n in wanted}
        for start in range(0, count, batch):
            stop = min(start + batch, count)
            inputs = [_padded(a[start:stop], batch) for a in (molded_images, image_metas, anchors)]
            outputs = self._run(inputs, wanted, stop - start)
            for n in wanted:
                parts[n].append(outputs[n][: stop - start])
        return {name: _concatenated(parts[w]) for name, w in zip(names, wanted, strict=True)}

    def _run(self, inputs, wanted, real: int) -> dict[str, np.ndarray]:
        """One batch: the detector, then the mask graph of the bucket that fits the first ``real`` images'
        detections (skipped when none has any). {name: numpy array [BATCH_SIZE, ...]} for ``wanted``."""
        self._fold()
        shape = tuple(inputs[0].shape[1:])
        mask_names = [n for n in wanted if n in MASK_OUTPUTS]
        detector_names = tuple(dict.fromkeys([n for n in wanted if n not in MASK_OUTPUTS] + (
            ["detections", "P2", "P3", "P4", "P5"] if mask_names else []
        )))  # fmt: skip
        found = self._compiled_detector(shape, detector_names)(inputs)
        results = {n: np.asarray(found[n]) for n in wanted if n in found}
        if mask_names:
            rows = np.asarray(found["detections"]) if "detections" not in results else results["detections"]
            bucket = self.mask_bucket(rows[:real])
            if bucket:
                masks = self._compiled_masks(shape, bucket)(
                    [*(found[p] for p in ("P2", "P3", "P4", "P5")),
                     np.ascontiguousarray(rows[:, :bucket, :4]), rows[:, :bucket, 4].astype(np.int32), inputs[1]]
                )  # fmt: skip
                results.update({n: np.asarray(masks[n]) for n in mask_names})
            else:
                batch, (mh, mw) = len(rows), self.config.MASK_SHAPE
                empty = {
                    "mrcnn_mask": (batch, 0, mh, mw, self.config.NUM_CLASSES),
                    "class_masks": (batch, 0, mh, mw),
                }
                results.update({n: np.zeros(empty[n], np.float32) for n in mask_names})
        return results

    def mask_bucket(self, rows) -> int:
        """The mask graph size for detection rows [B, D, 6]: the smallest bucket holding every image's
        detections (rows before the first of class 0), 0 when there are none."""
        counts = [int(np.argmax(r[:, 4] == 0)) if (r[:, 4] == 0).any() else len(r) for r in np.asarray(rows)]
        most = max(counts, default=0)
        return next((b for b in self.mask_buckets if b >= most), self.mask_buckets[-1]) if most else 0

    def graphs(self, image_shape, bucket: int) -> tuple[keras.Model, keras.Model]:
        """The detector for molded images of ``image_shape`` and its mask graph for ``bucket`` detections, as
        Keras models (uncompiled; for inspection and profiling, see ``backend.mrcnn.speed``)."""
        return self._network.graph(image_shape), self._network.mask_graph(image_shape, bucket)

    @property
    def compiled_graphs(self) -> frozenset:
        """Keys of the graphs compiled so far: ("detector", shape, outputs) and ("masks", shape, bucket)."""
        return frozenset(self._compiled)

    def _compiled_detector(self, shape, names):
        key = ("detector", tuple(shape), names)
        if key not in self._compiled:
            graph = self._network.graph(shape)
            model = keras.Model(graph.inputs, {n: graph.output[n] for n in names})
            self._compiled[key] = compiled_call(model, self.precision)
        return self._compiled[key]

    def _compiled_masks(self, shape, bucket):
        key = ("masks", tuple(shape), bucket)
        if key not in self._compiled:
            self._compiled[key] = compiled_call(self._network.mask_graph(shape, bucket), self.precision)
        return self._compiled[key]

    def warm_up(self, image_shape=None) -> None:
        """Compile the graphs for molded images of ``image_shape`` (default: the config's molded shape): the
        detector and every mask bucket, so that no real image waits for a compilation."""
        c = self.config
        h, w, channels = image_shape or c.IMAGE_SHAPE
        shape = (-(-h // 64) * 64, -(-w // 64) * 64, channels)
        batch = c.BATCH_SIZE
        images = np.zeros((batch, *shape), np.float32)
        metas = np.zeros((batch, c.IMAGE_META_SIZE), np.float32)
        metas[:, 4:7] = shape
        anchors = np.broadcast_to(pyramid_anchors(c, shape), (batch, *pyramid_anchors(c, shape).shape))
        self._fold()
        found = self._compiled_detector(shape, ("detections", "P2", "P3", "P4", "P5"))(
            [images, metas, anchors]
        )
        for bucket in self.mask_buckets:
            self._compiled_masks(shape, bucket)(
                [*(found[p] for p in ("P2", "P3", "P4", "P5")), np.zeros((batch, bucket, 4), np.float32),
                 np.ones((batch, bucket), np.int32), metas]
            )  # fmt: skip

    def run_graph(self, images, names) -> dict[str, np.ndarray]:
        """Named intermediate tensors for raw images (molded as detect() does); arrays [len(images), ...]."""
        molded, metas, _ = self.mold(list(images))
        if not molded:
            raise ValueError("run_graph needs at least one image")
        by_shape = {}
        for i, m in enumerate(molded):
            by_shape.setdefault(m.shape, []).append(i)
        if len(by_shape) > 1:
            raise ValueError("run_graph needs images that mold to one shape; call it per image in this mode")
        return self.run_molded(np.stack(molded), np.stack(metas), names=names)

    def detect_instances(self, images) -> list[Detections]:
        """One ``Detections`` per image, in input order (see ``backend.mrcnn.detections``).

        Images are molded as they come and run BATCH_SIZE at a time in one model call (images of any sizes
        share a call when they mold to one shape, as in "square" mode; others go in different calls), so
        memory stays bounded for long lists. Raises ValueError naming the problem for an image that cannot be
        made RGB.
        """
        if isinstance(images, np.ndarray) and images.ndim in (2, 3):
            raise TypeError("detect() takes a list of images; wrap a single image as [image]")
        results: list[Detections | None] = []
        pending: dict[tuple, list] = {}  # molded shape -> [(index, molded, meta, molding)]
        for index, image in enumerate(images):
            molded, meta, molding = mold_image(image, self.config)
            results.append(None)
            group = pending.setdefault(molded.shape, [])
            group.append((index, molded, meta, molding))
            if len(group) == self.config.BATCH_SIZE:
                self._detect_batch(pending.pop(molded.shape), results)
        for group in pending.values():
            self._detect_batch(group, results)
        return results

    def detect(self, images) -> list[dict[str, np.ndarray]]:
        """matterport's result dict per image (see the class docstring), in input order."""
        return [found.to_matterport() for found in self.detect_instances(images)]

    def _detect_batch(self, group, results) -> None:
        out = self.run_molded(
            np.stack([item[1] for item in group]), np.stack([item[2] for item in group]),
            names=("detections", "class_masks"),
        )  # fmt: skip
        for j, (index, _, _, molding) in enumerate(group):
            results[index] = Detections.from_graph(
                out["detections"][j], out["class_masks"][j],
                molding.original_shape, molding.molded_shape, molding.window,
            )  # fmt: skip


def _concatenated(parts):
    """Batches joined along the first axis; mask outputs of different buckets padded to the largest."""
    if len(parts) > 1 and len({p.shape[1:] for p in parts}) > 1:
        rows = max(p.shape[1] for p in parts)
        parts = [np.pad(p, [(0, 0), (0, rows - p.shape[1])] + [(0, 0)] * (p.ndim - 2)) for p in parts]
    return np.concatenate(parts)


def _padded(array, batch):
    array = np.asarray(array)
    if len(array) == batch:
        return array
    pad = np.zeros((batch - len(array), *array.shape[1:]), dtype=array.dtype)
    return np.concatenate([array, pad])
