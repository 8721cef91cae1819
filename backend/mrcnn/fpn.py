"""Feature Pyramid Network: P2..P6 from the backbone's C2..C5 (layer names as matterport's).

Each P_k is [B, H/2^k, W/2^k, TOP_DOWN_PYRAMID_SIZE]. Top-down path: 1x1 lateral convs, nearest-neighbour x2
upsampling, addition; then a 3x3 conv per level. P6 (for the RPN only) keeps every other pixel of P5.
"""

from __future__ import annotations

from keras import layers


def pyramid(bank, c2, c3, c4, c5, depth: int):
    """[P2, P3, P4, P5, P6] Keras tensors; the convolutions come from ``bank`` (a LayerBank)."""
    p5 = bank(layers.Conv2D, depth, 1, name="fpn_c5p5")(c5)
    p4 = layers.Add(name="fpn_p4add")(
        [
            layers.UpSampling2D(2, name="fpn_p5upsampled")(p5),
            bank(layers.Conv2D, depth, 1, name="fpn_c4p4")(c4),
        ]
    )
    p3 = layers.Add(name="fpn_p3add")(
        [
            layers.UpSampling2D(2, name="fpn_p4upsampled")(p4),
            bank(layers.Conv2D, depth, 1, name="fpn_c3p3")(c3),
        ]
    )
    p2 = layers.Add(name="fpn_p2add")(
        [
            layers.UpSampling2D(2, name="fpn_p3upsampled")(p3),
            bank(layers.Conv2D, depth, 1, name="fpn_c2p2")(c2),
        ]
    )
    p2 = bank(layers.Conv2D, depth, 3, padding="same", name="fpn_p2")(p2)
    p3 = bank(layers.Conv2D, depth, 3, padding="same", name="fpn_p3")(p3)
    p4 = bank(layers.Conv2D, depth, 3, padding="same", name="fpn_p4")(p4)
    p5 = bank(layers.Conv2D, depth, 3, padding="same", name="fpn_p5")(p5)
    p6 = layers.MaxPooling2D(pool_size=1, strides=2, name="fpn_p6")(p5)
    return [p2, p3, p4, p5, p6]
