"""Models built once per test session (building and loading the COCO model takes seconds of both cores)."""

from __future__ import annotations

import pytest
from mrcnn_parity import config_from


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
