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


def compiled_call(model, precision: Precision):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf  # lazily: needed only when Keras runs on TensorFlow

        return tf.function(lambda inputs: model(inputs, training=False), autograph=False)
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
