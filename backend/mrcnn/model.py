"""``MaskRCNN``: the inference model, reading like the paper — features, proposals, RoIAlign, heads.

    molded image -> ResNet (C2..C5) -> FPN (P2..P6) -> RPN + proposals -> RoIAlign -> class/box head
                 -> detections -> RoIAlign -> mask head

The Keras graph is built per molded image shape (one shape in "square" mode) from layers created once, so
every graph shares the same weights; shapes inside are static (batch = BATCH_SIZE, POST_NMS_ROIS_INFERENCE
proposals, DETECTION_MAX_INSTANCES detections). Keras runs it compiled (``predict_on_batch``).
"""

from __future__ import annotations

import numpy as np

from backend.mrcnn import weights_io
from backend.mrcnn.anchors import pyramid_anchors
from backend.mrcnn.config import Config
from backend.mrcnn.imaging import mold_image, unmold_detections
from backend.mrcnn.layer_bank import LayerBank

# names accepted by run_graph(): matterport's tensor names, plus plain-word aliases
GRAPH_OUTPUTS = (
    "C2", "C3", "C4", "C5", "P2", "P3", "P4", "P5", "P6",
    "rpn_class_logits", "rpn_class", "rpn_bbox", "rpn_rois",
    "mrcnn_class_logits", "mrcnn_class", "mrcnn_bbox", "detections", "mrcnn_mask",
)  # fmt: skip
ALIASES = {
    "proposals": "rpn_rois",
    "class_probs": "mrcnn_class",
    "box_deltas": "mrcnn_bbox",
    "raw_detections": "detections",
    "raw_masks": "mrcnn_mask",
}


class _Network:
    """The Keras layers of Mask R-CNN (created once, in a LayerBank) and a graph per molded image shape.

    Each graph is wired from the same weighted layers with every shape static, as XLA needs.
    """

    def __init__(self, config: Config):
        import keras

        self.config = config
        self.bank = LayerBank()
        self.graphs: dict[tuple[int, int, int], keras.Model] = {}
        # wiring one graph creates the layers, so the weights can be listed and loaded before any image comes
        h, w, channels = config.IMAGE_SHAPE
        self.graph((-(-h // 64) * 64, -(-w // 64) * 64, channels))

    def graph(self, image_shape):
        """The model for molded images of ``image_shape`` (H, W, C); H and W must be multiples of 64."""
        import keras

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
            self.graphs[image_shape] = keras.Model(inputs, self._wire(*inputs), name="mask_rcnn")
        return self.graphs[image_shape]

    def _wire(self, image, image_meta, anchors):
        from keras import layers

        from backend.mrcnn.backbone import resnet_features
        from backend.mrcnn.detection import DetectionLayer
        from backend.mrcnn.fpn import pyramid
        from backend.mrcnn.heads import classifier_head, mask_head
        from backend.mrcnn.roi_align import PyramidRoIAlign
        from backend.mrcnn.rpn import ProposalLayer, rpn_head

        c = self.config
        out = {}
        # 1. feature extraction
        bank = self.bank
        out["C2"], out["C3"], out["C4"], out["C5"] = resnet_features(bank, image, c.BACKBONE)
        levels = pyramid(bank, out["C2"], out["C3"], out["C4"], out["C5"], c.TOP_DOWN_PYRAMID_SIZE)
        out.update(zip(("P2", "P3", "P4", "P5", "P6"), levels, strict=True))
        # 2. region proposals
        head = bank(
            rpn_head, len(c.RPN_ANCHOR_RATIOS), c.RPN_ANCHOR_STRIDE, c.TOP_DOWN_PYRAMID_SIZE, name="rpn_model"
        )
        per_level = [head(p) for p in levels]
        for i, name in enumerate(("rpn_class_logits", "rpn_class", "rpn_bbox")):
            out[name] = layers.Concatenate(axis=1, name=name)([level[i] for level in per_level])
        out["rpn_rois"] = ProposalLayer(
            c.POST_NMS_ROIS_INFERENCE, c.RPN_NMS_THRESHOLD, c.PRE_NMS_LIMIT, c.RPN_BBOX_STD_DEV, name="ROI"
        )(out["rpn_class"], out["rpn_bbox"], anchors)
        # 3. RoIAlign + class/box head, detections
        head_maps = levels[:4]
        crops = PyramidRoIAlign(c.POOL_SIZE, name="roi_align_classifier")(
            out["rpn_rois"], image_meta, head_maps
        )
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
        )(out["rpn_rois"], out["mrcnn_class"], out["mrcnn_bbox"], image_meta)
        # 4. RoIAlign + mask head on the detections
        mask_crops = PyramidRoIAlign(c.MASK_POOL_SIZE, name="roi_align_mask")(
            out["detections"][..., :4], image_meta, head_maps
        )
        out["mrcnn_mask"] = mask_head(bank, mask_crops, c.NUM_CLASSES)
        return out

    def weighted_layers(self):
        """{file layer name: {weight key: variable}}; the nested RPN model counts as one layer, as in the file."""
        import keras

        found = {}
        for layer in self.bank.layers.values():
            if isinstance(layer, keras.Model):
                variables = {f"{sub.name}/{v.name}": v for sub in layer.layers for v in sub.weights}
            else:
                variables = {f"{layer.name}/{v.name}": v for v in layer.weights}
            if variables:
                found[layer.name] = variables
        return found


def _full_float32_on_jax() -> None:
    """On the JAX backend, make matrix products and convolutions full float32 unless the operator chose.

    JAX's default on Ampere/Hopper GPUs is TF32 (10-bit mantissa), which moves RPN scores by ~8e-3: proposals
    and detections then differ from matterport's (measured on an H200: 14 instead of 15 detections on
    coco_astronaut). Setting ``JAX_DEFAULT_MATMUL_PRECISION`` (e.g. ``tensorfloat32``) keeps the operator's
    choice. No effect on other backends or on the CPU's arithmetic.
    """
    import os

    import keras

    if keras.backend.backend() == "jax" and not os.environ.get("JAX_DEFAULT_MATMUL_PRECISION"):
        import jax

        jax.config.update("jax_default_matmul_precision", "highest")


class MaskRCNN:
    """Mask R-CNN inference on any Keras 3 backend with kernels (TensorFlow by default, JAX).

    ``detect(images)`` takes any number of images (HxW, HxWx1, HxWx3, HxWx4; uint8 or float 0..255) and
    returns one dict per image: rois int32 [N, 4] (y1, x1, y2, x2 original pixels), class_ids int32 [N],
    scores float32 [N], masks bool [H, W, N].
    """

    def __init__(self, config: Config):
        if not isinstance(config, Config):
            raise TypeError(f"MaskRCNN needs a backend.mrcnn.Config, got {type(config).__name__}")
        self.config = config
        _full_float32_on_jax()
        self._network = _Network(config)
        self._runners = {}

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
        weights_io.WeightsMismatchError (missing/unexpected layers, shape mismatches — all listed at once).
        Nothing is assigned unless the whole file fits.
        """
        variables = self._layout_vars()
        expected = {n: {k: tuple(v.shape) for k, v in vs.items()} for n, vs in variables.items()}
        found = weights_io.read_layout(path)
        to_load = weights_io.check_layout(expected, found, exclude=exclude, path=path)
        values = weights_io.read_weights(path, layers=to_load)
        for name in to_load:
            for key, variable in variables[name].items():
                variable.assign(values[name][key].astype(variable.dtype))
        return self

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
        the last one padded with zeros.
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
        runner = self._runner(shape, wanted)
        batch = self.config.BATCH_SIZE
        results = {n: [] for n in wanted}
        for start in range(0, count, batch):
            stop = min(start + batch, count)
            inputs = [_padded(a[start:stop], batch) for a in (molded_images, image_metas, anchors)]
            outputs = runner.predict_on_batch(inputs)
            for n in wanted:
                results[n].append(np.asarray(outputs[n])[: stop - start])
        return {name: np.concatenate(results[w]) for name, w in zip(names, wanted, strict=True)}

    def _runner(self, shape, wanted):
        import keras

        key = (tuple(shape), wanted)
        if key not in self._runners:
            graph = self._network.graph(shape)
            outputs = {n: graph.output[n] for n in wanted}
            self._runners[key] = keras.Model(graph.inputs, outputs)
        return self._runners[key]

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

    def detect(self, images) -> list[dict[str, np.ndarray]]:
        """One result dict per image (see the class docstring), in input order.

        Images are molded as they come and run BATCH_SIZE at a time (images that mold to different shapes,
        possible in "pad64"/"none" modes, go in different batches), so memory stays bounded for long lists.
        Raises ValueError naming the problem for an image that cannot be made RGB.
        """
        if isinstance(images, np.ndarray) and images.ndim in (2, 3):
            raise TypeError("detect() takes a list of images; wrap a single image as [image]")
        results: list[dict | None] = []
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

    def _detect_batch(self, group, results) -> None:
        out = self.run_molded(
            np.stack([item[1] for item in group]), np.stack([item[2] for item in group]),
            names=("detections", "mrcnn_mask"),
        )  # fmt: skip
        for j, (index, _, _, molding) in enumerate(group):
            results[index] = unmold_detections(
                out["detections"][j], out["mrcnn_mask"][j],
                molding.original_shape, molding.molded_shape, molding.window,
            )  # fmt: skip


def _padded(array, batch):
    array = np.asarray(array)
    if len(array) == batch:
        return array
    pad = np.zeros((batch - len(array), *array.shape[1:]), dtype=array.dtype)
    return np.concatenate([array, pad])
