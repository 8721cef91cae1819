"""The ``maskweb`` command line.

Each command has its module in this package (``run``, ``segment``, ``weights``, ``bench``); the module exposes ``add_parser(subparsers)``, which
registers the command and sets ``func`` (called with the parsed arguments, returning an exit code). Modules
listed here must import nothing heavy at import time (TensorFlow is imported inside the command), so that
``maskweb --help`` answers at once.
"""

from __future__ import annotations

import argparse
import importlib

from backend import __version__

COMMAND_MODULES = (
    "backend.cli.run",  # run: the whole app on one machine; web; worker
    "backend.cli.segment",  # segment IMAGE...
    "backend.cli.weights",  # weights download | verify | path
    "backend.cli.bench",  # bench
    "backend.cli.gc",  # gc: files of uploads that never got a row
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maskweb",
        description="Instance segmentation with Mask R-CNN: a web app, its workers and command-line tools.",
    )
    parser.add_argument("--version", action="version", version=f"maskweb {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # a command whose module is not written yet
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)
