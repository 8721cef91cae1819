"""The model's two precisions, ``exact`` and ``fast``, and which one suits the device at hand.

- ``exact``: float32 everywhere, full float32 matrix products on GPUs: what the parity tests hold to
  matterport's results.
- ``fast``: the convolutions of the backbone, the FPN, the RPN's shared 3x3 convolution and both heads compute
  in bfloat16 (Keras' ``mixed_bfloat16``: weights stay float32, each layer casts them), where the hardware does
  bfloat16 natively: CPUs with AVX512-BF16 or AMX, GPUs, TPUs. Everything that decides which boxes survive —
  RPN scores and deltas, top-k, NMS, class probabilities, box deltas, the detection layer, RoIAlign and the mask
  probabilities — stays float32; on GPUs those float32 products may use TF32 (JAX backend). On a CPU without
  bfloat16 ``fast`` is the same as ``exact``: emulated bfloat16 is slower than float32.

``fast(stages)`` puts bfloat16 in some of STAGES only (for measuring which stages tolerate it; ``python -m
backend.mrcnn.speed --variants fast:classifier+mask``). ``default_precision()`` is the one each device gets when
none is asked for; README "Precision" gives the figures behind the choice.
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

    Why, from the figures in the README "Precision" (tests/mrcnn/test_precision.py, python -m
    backend.mrcnn.speed): on a CPU with AVX512-BF16, ``fast`` ran the COCO network about 2-3x faster than
    ``exact``, but on the parity weights (random) it keeps 82-85% of the reference's detections on the small
    config (mask IoU 0.70-0.78) and 2-10% on COCO, short of issue 9's 95% / 0.95. That is the measure's
    instability more than bfloat16's error: the random ResNet-101 amplifies any change ~19x from input to C5,
    and rounding only conv1's weights to bfloat16 already leaves ``exact`` at 49% / 0.81 on COCO. Only bfloat16
    in the heads (``fast(("classifier", "mask"))``) meets the target on both configs (98% / 0.96), and it
    touches ~5% of the multiply-adds, too little to be worth a mode. So no device's default is ``fast`` until a
    trained network can be measured; ``MASKWEB_PRECISION=fast`` is the operator's choice.
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
