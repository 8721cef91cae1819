"""The WSGI entry point for gunicorn: ``gunicorn -w 1 --threads 64 backend.web.wsgi:app``.

One worker process (Flask-SocketIO in threading mode keeps its rooms per process; several web processes
share events through the Redis message queue but each needs sticky sessions), settings from the environment.
"""

from backend.settings import Settings
from backend.web import create_app

app = create_app(Settings.from_env())
