"""Segmentation around the engine: what the command line and the workers share.

``images`` (decoding and limits), ``pipeline`` (images -> results with a loaded model), ``result`` (the result
contract), ``overlay`` (the rendered PNG), ``model_config`` (which model the app runs) and ``weights`` (the
weights file: download, verify, locate).

Importing this package is cheap: nothing is imported here, and TensorFlow/Keras load only when a model is built.
"""
