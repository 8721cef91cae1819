"""``maskweb gc [--dry-run] [--min-age-hours H]``: remove the files of uploads that never got a database row.

Nothing else ever deletes such files: the app does not sweep at start (a new or mistyped database would make
every stored photo look orphaned). ``gc`` lists what it finds, removes it unless ``--dry-run``, and refuses
(exit 3, saying why, removing nothing) when the database has no jobs while job files exist.
"""

from __future__ import annotations

import argparse
import sys

from sqlalchemy import inspect

from backend.settings import Settings
from backend.storage.db import make_engine, session_scope
from backend.storage.files import open_file_store
from backend.storage.repo import ORPHAN_MIN_AGE_S, find_orphan_files

EXIT_REFUSED = 3


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "gc",
        help="remove the files of uploads interrupted before their database row was written",
        description="Find job files with no job in the database (DATABASE_URL), older than --min-age-hours, "
        "and remove them. Refuses when the database has no jobs at all while job files exist.",
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")
    parser.add_argument(
        "--min-age-hours",
        type=float,
        default=ORPHAN_MIN_AGE_S / 3600,
        help="only files last written at least this long ago (default %(default)s; an upload in flight is younger)",
    )
    parser.set_defaults(func=_cmd_gc)


def _cmd_gc(args: argparse.Namespace) -> int:

    settings = Settings.from_env()
    store = open_file_store(settings)
    engine = make_engine(settings.database_url)
    try:
        if not inspect(engine).has_table("jobs"):
            print(
                f"maskweb gc: refusing: the database {engine.url!r} has no jobs table: it is new or not "
                "maskweb's (check DATABASE_URL). Nothing removed.",
                file=sys.stderr,
            )
            return EXIT_REFUSED
        with session_scope(engine) as session:
            scan = find_orphan_files(session, store, args.min_age_hours * 3600)
    finally:
        engine.dispose()
    print(
        f"{store.describe()}: files of {scan.stored} jobs, {scan.known} of them in the database, "
        f"{len(scan.orphans)} orphaned for over {args.min_age_hours:g} h"
    )
    if scan.refusal:
        print(f"maskweb gc: refusing: {scan.refusal}", file=sys.stderr)
        return EXIT_REFUSED
    for job_id in scan.orphans:
        if not args.dry_run:
            store.remove_job(job_id)
        print(f"{'would remove' if args.dry_run else 'removed'} {job_id}")
    return 0
