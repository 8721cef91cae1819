"""The model's two precisions, ``exact`` and ``fast``, and which one suits the device at hand.

- ``exact``: float32 everywhere, full float32 matrix products on GPUs: what the parity tests hold to
  matterport's results.
- ``fast``: the convolutions of the backbone, the FPN, the RPN's shared 3x3 convolution and both heads compute
  in bfloat16 (Keras' ``mixed_bfloat16``: weights stay float32, each layer casts them), where the hardware does
  bfloat16 natively: CPUs with AVX512-BF16 or AMX, GPUs, TPUs. Everything that decides which boxes survive —
  RPN scores and deltas, top-k, NMS, class probabilities, box deltas, the detection layer, RoIAlign and the mask
  probabilities — stays float32; on GPUs those float32 products may use TF32 (JAX backend). On a CPU without
  bfloat16 ``fast`` is the same as ``exact``: emulated bfloat16 is slower than float32.

``default_precision()`` is the one each device gets when none is asked for; README "Measured" gives the figures
behind the choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import keras

PRECISIONS = ("exact", "fast")
STAGES = ("backbone", "fpn", "rpn", "classifier", "mask")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")

# The default per device kind (see default_precision for why).
DEFAULTS = {"gpu": "exact", "tpu": "exact", "cpu-bf16": "exact", "cpu": "exact"}


@dataclass(frozen=True)
class Precision:
    """How a model computes: ``name`` (exact | fast), the Keras dtype policy of its convolutions
    (``float32`` or ``mixed_bfloat16``), and ``jax_matmul`` (None: full float32; "tensorfloat32")."""

    name: str
    policy: str
    jax_matmul: str | None
    stages: tuple[str, ...] = STAGES  # the stages whose convolutions take ``policy``; the others: float32

    def policy_of(self, stage: str | None) -> str:
        """The Keras dtype policy for layers made in ``stage`` (None: any stage, the model's widest)."""
        return self.policy if stage is None or stage in self.stages else "float32"


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (Linux); empty where /proc/cpuinfo cannot be read."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


@cache
def device_kind() -> str:
    """'gpu', 'tpu', 'cpu-bf16' (a CPU with AVX512-BF16 or AMX) or 'cpu': where the active Keras backend runs."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax  # lazily: needed only when Keras runs on JAX

        platform = jax.default_backend()
        if platform in ("gpu", "cuda", "rocm"):
            return "gpu"
        if platform == "tpu":
            return "tpu"
    elif backend == "tensorflow":
        import tensorflow as tf  # lazily: needed only when Keras runs on TensorFlow

        if tf.config.list_physical_devices("GPU"):
            return "gpu"
    return "cpu-bf16" if cpu_flags() & set(BF16_CPU_FLAGS) else "cpu"


def default_precision(kind: str | None = None) -> str:
    """The precision a device gets by default: ``exact`` on every device kind, today.

    Why, from the figures in the README (tests/mrcnn/test_precision.py, python -m backend.mrcnn.speed): on this
    CPU with AVX512-BF16, ``fast`` runs the COCO model about 3x faster than ``exact``, but measured against the
    parity reference it keeps only ~85% of the detections (small config; mean mask IoU 0.78), short of the 95% /
    0.95 the issue sets; the parity weights are random, which exaggerates bfloat16's effect, but they are what
    we can measure. No GPU was at hand to measure bf16/TF32 there. So ``fast`` is the operator's choice
    (``MASKWEB_PRECISION=fast``) until it meets the target on a device.
    """
    return DEFAULTS[kind or device_kind()]


def fast(stages: tuple[str, ...] = STAGES) -> Precision:
    """``fast`` on this device with bfloat16 convolutions in ``stages`` only (a subset of STAGES; the others
    float32): mixed_bfloat16 where the device has bfloat16, float32 on a CPU without it. Raises ValueError for an
    unknown stage."""
    stages = tuple(stages)
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; stages are {STAGES}")
    kind = device_kind()
    if kind == "cpu":
        return Precision("fast", "float32", None, stages)  # no native bfloat16: emulating it is slower
    return Precision("fast", "mixed_bfloat16", "tensorfloat32" if kind == "gpu" else None, stages)


def resolve(precision: str | Precision | None) -> Precision:
    """The Precision for "exact", "fast", None/"auto" (the device's default) or a Precision (returned as it is).
    Raises ValueError otherwise."""
    if isinstance(precision, Precision):
        return precision
    name = default_precision() if precision in (None, "auto") else precision
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS} or 'auto', got {precision!r}")
    if name == "exact":
        return Precision("exact", "float32", None)
    return fast()
