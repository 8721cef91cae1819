"""Feature extraction: matterport's ResNet-50/101 (Keras-2 layer names, biased convolutions, frozen BN).

``resnet_features(image, architecture)`` maps the molded image [B, H, W, 3] to the stage outputs C2..C5
([B, H/4, W/4, 256], [B, H/8, W/8, 512], [B, H/16, W/16, 1024], [B, H/32, W/32, 2048]).
Every BatchNormalization is frozen (inference statistics, Keras' default epsilon 1e-3, as matterport's) and
folded into the convolution before it (``LayerBank.conv_bn``).
"""

from __future__ import annotations

from keras import layers

STAGE4_BLOCKS = {"resnet50": 5, "resnet101": 22}


def _bottleneck(bank, x, filters, stage: int, block: str, strides: int | None):
    """One bottleneck block; ``strides`` None = identity block, else a projection shortcut with that stride."""
    f1, f2, f3 = filters
    conv, bn = f"res{stage}{block}_branch", f"bn{stage}{block}_branch"
    y = bank.conv_bn(x, f1, 1, conv + "2a", bn + "2a", strides=strides or 1)
    y = layers.Activation("relu")(y)
    y = layers.Activation("relu")(bank.conv_bn(y, f2, 3, conv + "2b", bn + "2b", padding="same"))
    y = bank.conv_bn(y, f3, 1, conv + "2c", bn + "2c")
    if strides is None:
        shortcut = x
    else:
        shortcut = bank.conv_bn(x, f3, 1, conv + "1", bn + "1", strides=strides)
    return layers.Activation("relu", name=f"res{stage}{block}_out")(layers.Add()([y, shortcut]))


def _stage(bank, x, filters, stage: int, blocks: int, strides: int):
    x = _bottleneck(bank, x, filters, stage, "a", strides)
    for i in range(1, blocks):
        x = _bottleneck(bank, x, filters, stage, chr(ord("a") + i), None)
    return x


def resnet_features(bank, image, architecture: str):
    """C2, C3, C4, C5 of ResNet-50 or ResNet-101 for a Keras tensor ``image`` [B, H, W, 3].

    ``bank`` (a LayerBank) holds the weighted layers, so that every graph shares them.
    """
    if architecture not in STAGE4_BLOCKS:
        raise ValueError(f"backbone must be one of {sorted(STAGE4_BLOCKS)}, got {architecture!r}")
    x = layers.ZeroPadding2D(3)(image)
    x = layers.Activation("relu")(bank.conv_bn(x, 64, 7, "conv1", "bn_conv1", strides=2))
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    c2 = _stage(bank, x, (64, 64, 256), 2, 3, strides=1)
    c3 = _stage(bank, c2, (128, 128, 512), 3, 4, strides=2)
    c4 = _stage(bank, c3, (256, 256, 1024), 4, 1 + STAGE4_BLOCKS[architecture], strides=2)
    c5 = _stage(bank, c4, (512, 512, 2048), 5, 3, strides=2)
    return c2, c3, c4, c5
