"""Storage: the database (``models``, ``db``, ``queue_order``) and job files (``files``: the data directory
or an S3-compatible bucket, behind one interface).

Knows neither the web nor the queue. See docs/ARCHITECTURE.md.
"""

from .db import make_engine, migrate, session_scope
from .files import FileStore, open_file_store
from .models import ApiToken, Job, ShareLink, User

__all__ = [
    "ApiToken",
    "FileStore",
    "Job",
    "ShareLink",
    "User",
    "make_engine",
    "migrate",
    "open_file_store",
    "session_scope",
]
