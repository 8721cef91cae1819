"""Reading Keras-2 HDF5 weight files (matterport's ``mask_rcnn_coco.h5``) by layer name, strictly.

A Keras-2 weights file lists its layers in the root attribute ``layer_names`` (weightless layers included);
each layer is a group whose attribute ``weight_names`` lists its datasets, e.g. ``conv1/kernel:0`` or, for a
nested model, ``rpn_conv_shared/kernel:0`` inside group ``rpn_model``. Files saved with the whole model hold all
that under a ``model_weights`` group. Attributes may be ``bytes`` (old h5py) or ``str``.

Weights are keyed here by layer name, then by *weight key*: the weight name without the ``:0`` suffix
(``conv1/kernel``). The model states what it expects in the same form; ``check_layout`` compares the two and
raises one ``WeightsMismatchError`` that lists every problem.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

# The class-specific heads: their shapes depend on NUM_CLASSES, so fine-tuned files differ here.
HEAD_LAYERS = ("mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_mask")
EXCLUDE_PRESETS = {"heads": HEAD_LAYERS}

Layout = dict[str, dict[str, tuple[int, ...]]]  # layer name -> weight key -> shape


class WeightsFileError(ValueError):
    """The file is not a readable Keras-2 HDF5 weights file."""


class WeightsMismatchError(ValueError):
    """The file's layers do not fit the model; ``missing``, ``unexpected`` and ``mismatched`` list why."""

    def __init__(self, path, missing, unexpected, mismatched):
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        lines = [f"weights file {path} does not fit the model:"]
        if missing:
            lines.append(f"  missing layers ({len(missing)}): {', '.join(missing)}")
        if unexpected:
            lines.append(f"  unexpected layers with weights ({len(unexpected)}): {', '.join(unexpected)}")
        for item in mismatched:
            lines.append(f"  shape mismatch: {item}")
        lines.append(
            "  (to load a file fine-tuned for another number of classes, pass exclude='heads' or the layer "
            "names to skip)"
        )
        super().__init__("\n".join(lines))


def _text(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes | np.bytes_) else str(value)


def _weight_key(weight_name: str) -> str:
    return weight_name[:-2] if weight_name.endswith(":0") else weight_name


def _open(path):
    import h5py  # lazily: `maskweb --help` loads this module (through the weights command), not h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise WeightsFileError(f"{path} is not a readable HDF5 file ({exc})") from exc


def _layer_groups(f, path):
    """Yield (layer name, group or None) for each entry of ``layer_names``."""
    root = f["model_weights"] if "model_weights" in f else f
    if "layer_names" not in root.attrs:
        raise WeightsFileError(
            f"{path} has no 'layer_names' attribute: not a Keras-2 HDF5 weights file "
            "(expected layers at the root or under 'model_weights')"
        )
    for raw in root.attrs["layer_names"]:
        name = _text(raw)
        yield name, root[name] if name in root else None


def _datasets(group, layer):
    """(weight key, dataset) pairs of one layer group, in its ``weight_names`` order."""
    if group is None:
        return []
    names = group.attrs.get("weight_names", [])
    pairs = []
    for raw in names:
        weight_name = _text(raw)
        if weight_name not in group:
            raise WeightsFileError(f"layer {layer!r} lists weight {weight_name!r} but holds no such dataset")
        pairs.append((_weight_key(weight_name), group[weight_name]))
    return pairs


def read_layout(path) -> Layout:
    """{layer: {weight key: shape}} for every layer that carries weights; reads no weight values."""
    with _open(path) as f:
        layout = {}
        for name, group in _layer_groups(f, path):
            pairs = _datasets(group, name)
            if pairs:
                layout[name] = {key: tuple(int(d) for d in ds.shape) for key, ds in pairs}
        return layout


def read_weights(path, layers: Iterable[str] | None = None) -> dict[str, dict[str, np.ndarray]]:
    """{layer: {weight key: float array}} for the weighted layers (only ``layers`` if given)."""
    wanted = None if layers is None else set(layers)
    with _open(path) as f:
        weights = {}
        for name, group in _layer_groups(f, path):
            if wanted is not None and name not in wanted:
                continue
            pairs = _datasets(group, name)
            if pairs:
                weights[name] = {key: np.asarray(ds[()]) for key, ds in pairs}
        return weights


def excluded_layers(names: Iterable[str], exclude) -> set[str]:
    """The layer names that ``exclude`` selects: exact names, regular expressions, or the preset "heads"."""
    if isinstance(exclude, str):
        exclude = (exclude,)
    patterns = []
    for item in exclude or ():
        if item in EXCLUDE_PRESETS:
            patterns.extend(re.escape(n) for n in EXCLUDE_PRESETS[item])
        else:
            patterns.append(item)
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise ValueError(
                f"exclude entry {pattern!r} is neither a layer name nor a valid regex: {exc}"
            ) from exc
    return {n for n in names if any(p.fullmatch(n) for p in compiled)}


def check_layout(expected: Layout, found: Layout, exclude=(), path="<weights>") -> set[str]:
    """Compare the model's layout with the file's; return the layer names to load.

    Raises WeightsMismatchError listing every layer the model needs that the file lacks, every weighted
    layer of the file the model does not have, and every weight whose shape differs. Layers selected by
    ``exclude`` (names, regexes or "heads") are skipped on both sides.
    """
    skip = excluded_layers(set(expected) | set(found), exclude)
    missing = sorted(n for n in expected if n not in found and n not in skip)
    unexpected = sorted(n for n in found if n not in expected and n not in skip)
    mismatched = []
    for layer in expected:
        if layer in skip or layer not in found:
            continue
        want, have = expected[layer], found[layer]
        if set(want) != set(have):
            mismatched.append(f"{layer}: model has weights {sorted(want)}, file has {sorted(have)}")
            continue
        for key, shape in want.items():
            if tuple(have[key]) != tuple(shape):
                mismatched.append(f"{key}: model {tuple(shape)}, file {tuple(have[key])}")
    if missing or unexpected or mismatched:
        raise WeightsMismatchError(path, missing, unexpected, mismatched)
    return {n for n in expected if n not in skip}


def layout_from_json(layout_json: Mapping) -> Layout:
    """The Layout of a parity ``layout_*.json`` description (as written by make_fake_weights' input)."""
    return {
        layer["name"]: {_weight_key(d["name"]): tuple(d["shape"]) for d in layer["datasets"]}
        for layer in layout_json["layers"]
        if layer["datasets"]
    }
