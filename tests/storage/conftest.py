"""Storage tests run on SQLite and PostgreSQL (fixtures in tests/databases.py)."""

import databases

postgres_url, database_url, engine = databases.postgres_url, databases.database_url, databases.engine
