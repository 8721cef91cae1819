"""Weighted layers kept by name, so that the graph wired again for another image shape reuses them."""

from __future__ import annotations


class LayerBank:
    """``bank(cls, *args, name=..., **kwargs)`` returns the layer called ``name``, creating it the first time.

    Only layers with weights need to go through the bank; stateless ones may be created per graph.
    """

    def __init__(self):
        self.layers = {}

    def __call__(self, cls, *args, name: str, **kwargs):
        if name not in self.layers:
            self.layers[name] = cls(*args, name=name, **kwargs)
        return self.layers[name]
