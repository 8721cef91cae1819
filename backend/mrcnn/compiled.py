"""A Keras model as one compiled function whose outputs stay on the device, per backend.

``compiled_call(model, precision)(inputs)`` runs ``model`` on a list of arrays and returns {name: tensor} as
backend tensors (TensorFlow tensors, JAX arrays), so that the detector's feature maps can go into the mask graph
without a round trip through host memory. Compiled once per input shapes, which are static here:
- TensorFlow: a ``tf.function`` (graph mode, Grappler and oneDNN; XLA is slower on CPUs, see the README);
- JAX: ``jax.jit`` of the model's stateless call, weights passed as arguments (not baked into the program), and
  for ``fast`` on a GPU, TF32 products for the float32 layers (``Precision.jax_matmul``).
"""

from __future__ import annotations

import contextlib

import keras

from backend.mrcnn.precision import Precision


class _Inference:
    """``model(inputs, training=False)`` as a callable object of its own. TensorFlow counts traces per Python
    code object: every ``compiled_call`` built from one shared lambda looked like a single function traced again
    and again (each model is traced once per shape, and a detector has several), and it logged a "triggered
    tf.function retracing" warning at every worker start. An object has no ``__code__``, so its traces are
    counted per model, and the warning keeps its meaning: it appears only if one model really retraces."""

    def __init__(self, model):
        self.model = model

    def __call__(self, inputs):
        return self.model(inputs, training=False)


def compiled_call(model, precision: Precision):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf  # lazily: needed only when Keras runs on TensorFlow

        return tf.function(_Inference(model), autograph=False)
    if backend == "jax":
        import jax  # lazily: needed only when Keras runs on JAX

        def pure(trainable, non_trainable, inputs):
            outputs, _ = model.stateless_call(trainable, non_trainable, inputs, training=False)
            return outputs

        jitted = jax.jit(pure)

        def run(inputs):
            context = (
                jax.default_matmul_precision(precision.jax_matmul)
                if precision.jax_matmul
                else contextlib.nullcontext()
            )
            with context:
                return jitted(
                    [v.value for v in model.trainable_variables],
                    [v.value for v in model.non_trainable_variables],
                    inputs,
                )

        return run
    raise RuntimeError(
        f"Keras backend {backend!r} is not supported; use tensorflow or jax (set KERAS_BACKEND)"
    )
