"""compiled_call on TensorFlow: one compiled function per model, and TensorFlow's retracing warning only for a
model that really retraces (a detector compiles several graphs, one per shape, each traced once)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402

from backend.mrcnn.compiled import compiled_call  # noqa: E402
from backend.mrcnn.precision import resolve  # noqa: E402


@pytest.fixture
def retracing_warnings():
    """The "triggered tf.function retracing" messages TensorFlow logs while the test runs."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("compiled_call compiles with tf.function only on the TensorFlow backend")
    found: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            if "retracing" in record.getMessage():
                found.append(record.getMessage())

    handler = Collect()
    logger = logging.getLogger("tensorflow")
    logger.addHandler(handler)
    yield found
    logger.removeHandler(handler)


def dense_model(length: int | None) -> keras.Model:
    """A one-input model taking its inputs as a list, the way compiled_call passes them (as the detector's)."""
    inputs = keras.Input((length, 3))
    return keras.Model([inputs], {"y": keras.layers.Dense(2)(inputs)})


def test_many_models_each_compiled_once_log_no_retracing_warning(retracing_warnings):
    for length in range(1, 9):  # more than TensorFlow's threshold of five traces
        outputs = compiled_call(dense_model(length), resolve("exact"))([np.ones((1, length, 3), "float32")])
        assert tuple(outputs["y"].shape) == (1, length, 2)
    assert retracing_warnings == []


def test_one_model_called_with_ever_new_shapes_still_warns(retracing_warnings):
    run = compiled_call(dense_model(None), resolve("exact"))
    for length in range(1, 9):
        run([np.ones((1, length, 3), "float32")])
    assert retracing_warnings, "a model that retraces on every call must still be reported"
