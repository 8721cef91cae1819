import importlib.util
import sys
from pathlib import Path


def _load_databases():
    name = "maskweb_test_databases"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("databases.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_db = _load_databases()
postgres_url = _db.postgres_url
database_url = _db.database_url
engine = _db.engine
