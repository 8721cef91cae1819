"""The JAX backend runs the model in full float32 (TF32 breaks parity on GPUs), unless the operator chose."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.jax

PROBE = """
import jax
from backend.mrcnn import Config, MaskRCNN
MaskRCNN(Config(NAME="probe", BACKBONE="resnet50", NUM_CLASSES=2, IMAGE_MIN_DIM=128, IMAGE_MAX_DIM=128,
                GPU_COUNT=1, IMAGES_PER_GPU=1))
print(jax.config.jax_default_matmul_precision)
"""


def _precision(**env) -> str:
    full_env = {k: v for k, v in os.environ.items() if k != "JAX_DEFAULT_MATMUL_PRECISION"}
    full_env.update(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", **env)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], env=full_env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()[-1]


def test_model_sets_full_float32_matmuls_on_jax():
    assert _precision() == "highest"


def test_operator_choice_is_kept():
    assert _precision(JAX_DEFAULT_MATMUL_PRECISION="tensorfloat32") == "tensorfloat32"
