"""Which model to run: the COCO preset or a JSON file describing a fine-tuned model.

``MASKWEB_MODEL_CONFIG`` (and ``--config`` on the command line) is either ``coco`` or the path of a JSON object
holding matterport Config attributes by their names plus ``CLASS_NAMES``:

    {"NAME": "balloon", "NUM_CLASSES": 2, "BACKBONE": "resnet101", "DETECTION_MIN_CONFIDENCE": 0.9,
     "CLASS_NAMES": ["BG", "balloon"]}

``CLASS_NAMES`` lists the name of every class id, "BG" (background) first; its length must equal NUM_CLASSES
(NUM_CLASSES may be left out, it is then taken from the list). The model always runs for inference on one
device: GPU_COUNT is 1 and IMAGES_PER_GPU (the batch size) comes from the file or is 1.
"""

from __future__ import annotations

import json
from pathlib import Path

from backend.mrcnn.config import CocoConfig, Config

__all__ = ["ModelConfigError", "load_model_config", "COCO"]

COCO = "coco"


class ModelConfigError(ValueError):
    """The model config spec cannot be used; the message names the file and what is wrong."""


def load_model_config(spec: str | Path | None = COCO):
    """``spec`` ('coco', or a JSON file path) -> ``(Config, class_names)``.

    ``class_names`` is a list of NUM_CLASSES str, index = class id, "BG" first. Raises ModelConfigError for a
    missing file, bad JSON, an unknown Config attribute, a bad value, or a class list that does not fit.
    """
    if spec is None or str(spec).strip().lower() == COCO:
        return _coco()
    return _from_file(Path(spec))


def _coco():
    config = CocoConfig()
    return config, list(config.class_names)


def _from_file(path: Path):
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelConfigError(f"model config {path}: no such file (use 'coco' or a JSON file)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelConfigError(f"model config {path}: cannot read it: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelConfigError(
            f"model config {path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(data, dict):
        raise ModelConfigError(f"model config {path}: expected a JSON object, got {type(data).__name__}")

    values = dict(data)
    class_names = _class_names(path, values.pop("CLASS_NAMES", None))
    values.setdefault("NUM_CLASSES", len(class_names))
    # Inference on one device; the batch size is IMAGES_PER_GPU.
    values["GPU_COUNT"] = 1
    values.setdefault("IMAGES_PER_GPU", 1)
    try:
        config = Config.from_dict(values)
    except (ValueError, TypeError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise ModelConfigError(f"model config {path}: {message}") from None
    if len(class_names) != config.NUM_CLASSES:
        raise ModelConfigError(
            f"model config {path}: CLASS_NAMES has {len(class_names)} names but NUM_CLASSES is "
            f"{config.NUM_CLASSES} (the list counts the background 'BG' too)"
        )
    return config, class_names


def _class_names(path: Path, names) -> list[str]:
    if names is None:
        raise ModelConfigError(f"model config {path}: CLASS_NAMES is missing (a list of names, 'BG' first)")
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        raise ModelConfigError(f"model config {path}: CLASS_NAMES must be a list of non-empty strings")
    if len(names) < 2:
        raise ModelConfigError(f"model config {path}: CLASS_NAMES needs 'BG' and at least one class")
    if names[0] != "BG":
        raise ModelConfigError(f"model config {path}: CLASS_NAMES must start with 'BG', got {names[0]!r}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ModelConfigError(f"model config {path}: CLASS_NAMES repeats {duplicates}")
    return list(names)
