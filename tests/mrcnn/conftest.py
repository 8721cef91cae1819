"""Models built once per test session (building and loading the COCO model takes seconds of both cores)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image


def config_from(parity_dir, name):
    from backend.mrcnn.config import Config

    return Config.from_dict(json.loads((parity_dir / f"config_{name}.json").read_text())["values"])


def load_input(parity_dir, name) -> np.ndarray:
    with Image.open(parity_dir / "inputs" / f"{name}.png") as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="session")
def small_b1_model(parity_dir, small_weights):
    from backend.mrcnn.model import MaskRCNN

    return MaskRCNN(config_from(parity_dir, "small_b1")).load_weights(small_weights)


@pytest.fixture(scope="session")
def small_model(parity_dir, small_weights):
    from backend.mrcnn.model import MaskRCNN

    return MaskRCNN(config_from(parity_dir, "small")).load_weights(small_weights)


@pytest.fixture(scope="session")
def coco_model(parity_dir, coco_weights):
    from backend.mrcnn.model import MaskRCNN

    return MaskRCNN(config_from(parity_dir, "coco")).load_weights(coco_weights)
