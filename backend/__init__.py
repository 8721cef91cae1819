"""maskweb: Mask R-CNN instance segmentation as a web service.

Subpackages: ``mrcnn`` (the model engine), ``segmentation`` (images, pipeline, results and weights around the
engine), ``storage`` (database and data directory), ``jobs`` (Celery queue), ``web`` (Flask app) and ``cli``
(the ``maskweb`` commands). Beside them: ``settings`` (the environment) and ``atomic`` (atomic file writes).
See docs/ARCHITECTURE.md.
"""

__version__ = "0.1.0"
