"""matterport's own Mask R-CNN, loaded for the bench from a pip-downloaded wheel and patched at run time.

matterport/Mask_RCNN is not on PyPI under its own name. The ``mrcnn-colab`` 2.1 wheel ships its three modules
(``mrcnn/model.py``, ``utils.py``, ``config.py``) unchanged (checked line by line against commit 3deaec5d when it
was pinned; ``WHEEL_SHA256`` holds the checked file). Nothing of it is copied into this repository: the bench
reads the modules out of the wheel, applies the API renames the parity reference used to run the same code on
TensorFlow 2.21 + tf_keras (shared/parity/README.md: keras -> tf_keras, ``tf.log`` -> ``tf.math.log``,
``tf.sets.set_intersection`` -> ``tf.sets.intersection``, ``tf.sparse_tensor_to_dense`` -> ``tf.sparse.to_dense``,
``tf.to_float`` -> a float32 cast, ``np.bool`` -> ``bool``, the ProposalLayer's declared output shape, the by-name
HDF5 loader from tf_keras) and imports the result as the package ``mrcnn`` in the bench's child process only.
The math is unchanged.

Failure modes: ``MatterportUnavailable`` with a sentence saying what is missing (the wheel, a hash mismatch,
tf_keras or scikit-image not installed).
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
import types
import zipfile
from pathlib import Path

WHEEL = "mrcnn_colab-2.1.0-py3-none-any.whl"
WHEEL_SHA256 = "4c518af09bb835a87f0d02c6fa9f556b06fddac6c5fadbbe6a18ef45b3d2c6f4"
MODULES = ("config", "utils", "model")

# (pattern, replacement) applied to every module, in order: the renames listed in shared/parity/README.md.
RENAMES = (
    (r"^import keras\.backend as K$", "import tf_keras.backend as K"),
    (r"^import keras\.layers as KL$", "import tf_keras.layers as KL"),
    (r"^import keras\.engine as KE$", "import tf_keras.layers as KE"),
    (r"^import keras\.models as KM$", "import tf_keras.models as KM"),
    (r"^import keras$", "import tf_keras as keras"),
    (r"\btf\.log\(", "tf.math.log("),
    (r"\btf\.sets\.set_intersection\(", "tf.sets.intersection("),
    (r"\btf\.sparse_tensor_to_dense\(", "tf.sparse.to_dense("),
    (r"\btf\.to_float\(", "tf.compat.v1.to_float("),
    (r"\bnp\.bool\b(?!_)", "bool"),
    (r"from keras\.engine import saving", "from tf_keras.src.saving.legacy import hdf5_format as saving"),
    # tf_keras' by-name loader takes the model (it reads model.layers) instead of a list of layers.
    (
        r"saving\.load_weights_from_hdf5_group_by_name\(f, layers\)",
        "saving.load_weights_from_hdf5_group_by_name(f, keras_model)",
    ),
    # The proposal count the original declares in compute_output_shape, which tf_keras no longer consults.
    (
        r"(proposals = utils\.batch_slice\(\[boxes, scores\], nms,\n\s+self\.config\.IMAGES_PER_GPU\)\n)",
        r"\1        proposals.set_shape([None, self.proposal_count, 4])\n",
    ),
)


class MatterportUnavailable(RuntimeError):
    """matterport's code cannot be loaded here; the message says what is missing."""


def patched_sources(wheel: Path) -> dict[str, str]:
    """``{module: patched source}`` for config, utils and model read out of ``wheel``.

    Raises MatterportUnavailable when the wheel is missing, is not the pinned file, or a rename no longer
    applies (the file changed under us).
    """
    if not wheel.is_file():
        raise MatterportUnavailable(
            f"no {WHEEL} at {wheel} (get it with: pip download --no-deps -d DIR mrcnn-colab==2.1)"
        )
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if WHEEL_SHA256 and digest != WHEEL_SHA256:
        raise MatterportUnavailable(f"{wheel} is not the checked mrcnn-colab 2.1 wheel (sha256 {digest})")
    sources = {}
    with zipfile.ZipFile(wheel) as archive:
        for name in MODULES:
            text = archive.read(f"mrcnn/{name}.py").decode("utf-8")
            for pattern, replacement in RENAMES:
                text = re.sub(pattern, replacement, text, flags=re.MULTILINE)
            sources[name] = text
    if "proposals.set_shape" not in sources["model"]:
        raise MatterportUnavailable(
            "the ProposalLayer of this mrcnn/model.py no longer has the expected form"
        )
    return sources


def load(wheel: Path) -> types.ModuleType:
    """Import the patched modules as the package ``mrcnn``; returns ``mrcnn.model``.

    Needs tf_keras and scikit-image (matterport's molding uses skimage.transform.resize).
    """
    for needed in ("tf_keras", "skimage"):
        if importlib.util.find_spec(needed) is None:
            raise MatterportUnavailable(f"{needed} is not installed (make bench-deps installs it)")
    sources = patched_sources(wheel)
    package = types.ModuleType("mrcnn")
    package.__path__ = []
    sys.modules["mrcnn"] = package
    for name in MODULES:
        module = types.ModuleType(f"mrcnn.{name}")
        module.__file__ = f"{wheel}/mrcnn/{name}.py"
        sys.modules[module.__name__] = module
        setattr(package, name, module)
        exec(compile(sources[name], module.__file__, "exec"), module.__dict__)
    return sys.modules["mrcnn.model"]
