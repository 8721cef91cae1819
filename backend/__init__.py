"""maskweb: Mask R-CNN instance segmentation as a web service.

Subpackages: ``mrcnn`` (the model engine), ``storage`` (database and data directory), ``jobs`` (Celery queue),
``web`` (Flask app). See docs/ARCHITECTURE.md.
"""

__version__ = "0.1.0"
