"""What the bench times: our model and its two peers, each as the network alone and as the whole job.

Each contender lives in its own process (``rounds``) and offers two timed calls on one batch of images:

- ``network()``: the network on already-molded input, to raw detections and their 28x28 masks (molding and
  normalising are done once, before timing; nothing is pasted to image size);
- ``job(paths, out)``: the whole job for those image files: decode -> model (molding, network, detection) ->
  full-size masks -> COCO RLE -> result files saved in ``out``.

Both return the number of detections found. Contenders:

- ``Ours``: maskweb's pipeline at one precision ("exact" or "fast"); its job also renders and saves the overlay
  PNG the service shows, which the peers do not do (so the ratios are, if anything, in the peers' favour).
- ``Torchvision``: ``maskrcnn_resnet50_fpn`` (ResNet-101 FPN on a GPU), float32, random weights, score threshold
  0 so 100 detections are kept, resized to the same side as our input; its job saves the result JSON.
- ``Matterport``: matterport's own code (``matterport_source``) with our config and weights; its job saves the
  result JSON the same way as torchvision's.

Every contender keeps up to DETECTION_MAX_INSTANCES (100) detections: the bench sets the minimum score to
``min_score`` (0 unless told) for all three, so post-processing is timed at its heaviest.
"""

from __future__ import annotations

import inspect
import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backend.atomic import atomic_write, atomic_write_text
from backend.segmentation.images import load_image, to_array
from backend.segmentation.model_config import load_model_config
from backend.segmentation.overlay import render_overlay
from backend.segmentation.pipeline import Segmenter
from backend.segmentation.result import encode_masks

from .matterport_source import load as load_matterport
from .torchvision_ops import install_cpu_ops


@dataclass(frozen=True)
class Spec:
    """What a contender process builds. ``weights`` None means Keras' random initialisation."""

    kind: str  # "ours" | "torchvision" | "matterport"
    batch: int
    config: str  # "coco" or a JSON file
    weights: str | None
    min_score: float
    precision: str = "exact"
    cache: str = ""  # a folder the contender may keep built helpers in
    extra: dict = field(default_factory=dict)


def build(spec: Spec):
    """The contender ``spec`` names, built and loaded (not warmed up)."""
    return {"ours": Ours, "torchvision": Torchvision, "matterport": Matterport}[spec.kind](spec)


def decode(path: Path) -> np.ndarray:
    """An image file -> uint8 [H, W, 3], through the same gate the service uses."""
    return to_array(load_image(path))


def in_threads(function, items: list) -> list:
    """``[function(item) for item in items]`` on a thread pool, in order: decoding, PNG and RLE encoding
    release the GIL, so a batch's images are handled side by side (as a worker with many cores would)."""
    if len(items) < 2:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(len(items), os.cpu_count() or 1)) as pool:
        return list(pool.map(function, items))


def save_result_json(path: Path, image_shape, boxes_xyxy, class_ids, scores, masks_hwn) -> None:
    """The result JSON (our result contract's fields) for a peer: boxes, classes, scores and COCO RLEs.

    ``masks_hwn`` bool [H, W, N]; encoded with pycocotools as ours are.
    """
    rles = encode_masks(masks_hwn)
    instances = [
        {"id": i, "class_id": int(c), "score": round(float(s), 6), "box": [int(v) for v in box], "mask": rle}
        for i, (box, c, s, rle) in enumerate(zip(boxes_xyxy, class_ids, scores, rles, strict=True))
    ]
    document = {"width": int(image_shape[1]), "height": int(image_shape[0]), "instances": instances}
    atomic_write_text(path, json.dumps(document))


def _config(spec: Spec):
    config, class_names = load_model_config(spec.config)
    values = {**config.to_dict(), "IMAGES_PER_GPU": spec.batch, "DETECTION_MIN_CONFIDENCE": spec.min_score}
    return type(config).from_dict(values), class_names


class Ours:
    """maskweb's model and pipeline at ``spec.precision``."""

    def __init__(self, spec: Spec):
        from backend.mrcnn.model import MaskRCNN  # Keras loads here, in the contender's process

        config, class_names = _config(spec)
        if "precision" in inspect.signature(Segmenter).parameters:
            self.segmenter = Segmenter(config, class_names, spec.weights, precision=spec.precision)
        elif spec.precision == "exact":
            self.segmenter = Segmenter(config, class_names, spec.weights)
        else:
            # The engine takes a precision before the pipeline passes one on: give the segmenter its model.
            self.segmenter = Segmenter(config, class_names, None)
            self.segmenter.model = MaskRCNN(config, precision=spec.precision)
            if spec.weights:
                self.segmenter.model.load_weights(spec.weights)
        self.spec = spec
        self.molded = None

    def describe(self) -> dict:
        import keras  # loaded by the model already; imported here so the CLI's --help stays light

        precision = self.segmenter.model.precision
        return {
            "name": f"maskweb {self.spec.precision}",
            "keras_backend": keras.backend.backend(),
            "policy": getattr(precision, "policy", str(precision)),
        }

    def prepare(self, images: list[np.ndarray]) -> None:
        molded, metas, _ = self.segmenter.model.mold(images)
        self.molded = (np.stack(molded), np.stack(metas))

    def network(self) -> int:
        out = self.segmenter.model.run_molded(*self.molded, names=("detections", "mrcnn_mask"))
        return int(np.count_nonzero(out["detections"][..., 4] > 0))

    def job(self, paths: list[Path], out: Path) -> int:
        images = in_threads(decode, paths)
        results = self.segmenter.segment_batch(images)

        def save(item):
            path, image, result = item
            atomic_write_text(out / f"{path.stem}.json", json.dumps(result.to_dict()))
            overlay = render_overlay(image, result)
            atomic_write(out / f"{path.stem}.overlay.png", lambda f: overlay.save(f, "PNG"))

        in_threads(save, list(zip(paths, images, results, strict=True)))
        return sum(len(result.instances) for result in results)


class Torchvision:
    """torchvision's Mask R-CNN: ResNet-50 FPN on the CPU, ResNet-101 FPN on a GPU; fp32, random weights."""

    def __init__(self, spec: Spec):
        self.operators = install_cpu_ops(Path(spec.cache))
        # torch is a bench-only install, imported in the peer's own process (after the stand-ins are loaded).
        import torch
        from torchvision.models.detection import MaskRCNN, maskrcnn_resnet50_fpn
        from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

        config, _ = load_model_config(spec.config)
        side = int(config.IMAGE_MAX_DIM)  # the side our model molds to: both networks see the same pixels
        self.torch = torch
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        torch.manual_seed(0)
        options = dict(box_score_thresh=spec.min_score, min_size=side, max_size=side)
        if self.device.type == "cuda":
            backbone = resnet_fpn_backbone(backbone_name="resnet101", weights=None, trainable_layers=0)
            self.variant = "maskrcnn R101-FPN"
            model = MaskRCNN(backbone, num_classes=91, **options)
        else:
            self.variant = "maskrcnn_resnet50_fpn"
            model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, **options)
        self.model = model.eval().to(self.device)
        self.prepared = None

    def describe(self) -> dict:
        return {
            "name": f"torchvision {self.variant}",
            "torch": self.torch.__version__,
            "device": str(self.device),
            "operators": self.operators,
        }

    def _tensors(self, images: list[np.ndarray]):
        return [
            self.torch.from_numpy(image).to(self.device).permute(2, 0, 1).float().div_(255.0)
            for image in images
        ]

    def prepare(self, images: list[np.ndarray]) -> None:
        with self.torch.inference_mode():
            self.prepared, _ = self.model.transform(self._tensors(images))

    def network(self) -> int:
        with self.torch.inference_mode():
            features = self.model.backbone(self.prepared.tensors)
            proposals, _ = self.model.rpn(self.prepared, features)
            detections, _ = self.model.roi_heads(features, proposals, self.prepared.image_sizes)
            self._sync()
        return sum(len(d["boxes"]) for d in detections)

    def job(self, paths: list[Path], out: Path) -> int:
        images = in_threads(decode, paths)
        with self.torch.inference_mode():
            outputs = self.model(self._tensors(images))
        count = 0
        for path, image, found in zip(paths, images, outputs, strict=True):
            masks = (found["masks"][:, 0] > 0.5).cpu().numpy()  # [N, H, W]
            save_result_json(
                out / f"{path.stem}.json", image.shape, found["boxes"].round().int().cpu().numpy(),
                found["labels"].cpu().numpy(), found["scores"].cpu().numpy(), masks.transpose(1, 2, 0),
            )  # fmt: skip
            count += len(masks)
        return count

    def _sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()


class Matterport:
    """matterport's Mask R-CNN (their code, ``matterport_source``), our config and weights."""

    def __init__(self, spec: Spec):
        modelmod = load_matterport(Path(spec.extra["matterport_wheel"]))
        import mrcnn.config  # exists only once load_matterport has run, in this process

        ours, _ = _config(spec)
        attributes = {
            k: (np.array(v) if isinstance(v, list) and k in ARRAY_ATTRIBUTES else v)
            for k, v in ours.to_dict().items()
            if k.isupper() and k not in DERIVED and hasattr(mrcnn.config.Config, k)
        }
        attributes["GPU_COUNT"] = 1
        config = type("BenchConfig", (mrcnn.config.Config,), attributes)()
        self.model = modelmod.MaskRCNN(mode="inference", config=config, model_dir=tempfile.mkdtemp())
        if spec.weights:
            self.model.load_weights(spec.weights, by_name=True)
        self.prepared = None

    def describe(self) -> dict:
        return {"name": "matterport Mask_RCNN", "source": "mrcnn-colab 2.1 (= matterport 3deaec5d), tf_keras"}

    def prepare(self, images: list[np.ndarray]) -> None:
        molded, metas, _ = self.model.mold_inputs(images)
        anchors = self.model.get_anchors(molded[0].shape)
        self.prepared = [
            molded,
            metas,
            np.ascontiguousarray(np.broadcast_to(anchors, (len(images), *anchors.shape))),
        ]

    def network(self) -> int:
        detections = self.model.keras_model.predict(self.prepared, verbose=0)[0]
        return int(np.count_nonzero(detections[..., 4] > 0))

    def job(self, paths: list[Path], out: Path) -> int:
        images = in_threads(decode, paths)
        count = 0
        for path, image, found in zip(paths, images, self.model.detect(images), strict=True):
            y1, x1, y2, x2 = found["rois"].T
            boxes = np.stack([x1, y1, x2, y2], axis=1)
            save_result_json(
                out / f"{path.stem}.json",
                image.shape,
                boxes,
                found["class_ids"],
                found["scores"],
                found["masks"],
            )
            count += len(found["class_ids"])
        return count


# matterport's Config attributes it computes itself, and those it keeps as numpy arrays.
DERIVED = ("BATCH_SIZE", "IMAGE_SHAPE", "IMAGE_META_SIZE")
ARRAY_ATTRIBUTES = ("MEAN_PIXEL", "RPN_BBOX_STD_DEV", "BBOX_STD_DEV")
