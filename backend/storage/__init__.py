"""Storage: the database (``models``, ``db``, ``queue_order``) and the data directory (``files``).

Knows neither the web nor the queue. See docs/ARCHITECTURE.md.
"""

from .db import make_engine, migrate, session_scope
from .files import DataDir
from .models import ApiToken, Job, ShareLink, User

__all__ = ["ApiToken", "DataDir", "Job", "ShareLink", "User", "make_engine", "migrate", "session_scope"]
