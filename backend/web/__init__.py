"""The web process: Flask app (``create_app``), API, pages, Socket.IO (``socketio``), health and metrics.

Never imports TensorFlow, the model engine, or the worker's task module: it starts in a second.
"""

from .app import create_app
from .sockets import socketio

__all__ = ["create_app", "socketio"]
