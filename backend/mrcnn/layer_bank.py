"""Weighted layers kept by name, so that the graph wired again for another image shape reuses them.

The bank also knows which frozen BatchNorm follows which convolution. At inference a frozen BatchNorm is an
affine map per channel, ``y = (x - mean) * gamma / sqrt(var + eps) + beta``, so it folds into the convolution
before it (see ``fold``): the graph then has one biased convolution where it had a convolution and a
normalisation over the whole activation. The BatchNorm layers are still created and built, so the weights file's
layout (which holds them) is unchanged.
"""

from __future__ import annotations

import numpy as np
from keras import layers


class LayerBank:
    """``bank(cls, *args, name=..., **kwargs)`` returns the layer called ``name``, creating it the first time.

    Only layers with weights need to go through the bank; stateless ones may be created per graph.
    ``fold_batch_norms``: wire ``conv_bn`` as the folded convolution alone (the default) or as convolution then
    BatchNorm (to measure what folding saves).
    """

    def __init__(self, fold_batch_norms: bool = True):
        self.layers = {}
        self.fold_batch_norms = bool(fold_batch_norms)
        self.batch_norm_of: dict[str, str] = {}  # convolution name -> name of the BatchNorm that follows it

    def __call__(self, cls, *args, name: str, **kwargs):
        if name not in self.layers:
            self.layers[name] = cls(*args, name=name, **kwargs)
        return self.layers[name]

    def conv_bn(self, x, filters: int, kernel_size: int, name: str, bn_name: str, **conv_kwargs):
        """Conv2D ``name`` then the frozen BatchNorm ``bn_name`` (epsilon 1e-3, Keras' default as matterport's)
        on Keras tensor ``x``; the BatchNorm is folded into the convolution unless the bank was told not to."""
        conv = self(layers.Conv2D, filters, kernel_size, name=name, **conv_kwargs)
        y = conv(x)
        norm = self(layers.BatchNormalization, epsilon=1e-3, name=bn_name)
        self.batch_norm_of[name] = bn_name
        if self.fold_batch_norms:
            if not norm.built:
                norm.build(y.shape)  # its weights exist (the file holds them) but it is not in the graph
            return y
        return norm(y, training=False)

    def fold(self, conv_names) -> None:
        """Fold each named convolution's BatchNorm into its kernel and bias, in float64, rounded once to float32.

        The BatchNorm's own variables keep the file's values; the convolution's variables hold the folded ones
        afterwards (so folding twice would be wrong: the caller tracks which convolutions hold raw values).
        """
        for conv_name in conv_names:
            conv, norm = self.layers[conv_name], self.layers[self.batch_norm_of[conv_name]]
            gamma, beta, mean, variance = (
                np.asarray(v, dtype=np.float64)
                for v in (norm.gamma, norm.beta, norm.moving_mean, norm.moving_variance)
            )
            scale = gamma / np.sqrt(variance + norm.epsilon)
            kernel = np.asarray(conv.kernel, dtype=np.float64) * scale  # [kh, kw, in, out]: scale the outputs
            bias = (np.asarray(conv.bias, dtype=np.float64) - mean) * scale + beta
            conv.kernel.assign(kernel.astype(np.float32))
            conv.bias.assign(bias.astype(np.float32))
