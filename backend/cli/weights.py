"""``maskweb weights download | verify | path``: the weights file from the command line
(the work is ``backend.segmentation.weights``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from backend.segmentation.weights import (
    DEFAULT_WEIGHTS,
    WEIGHTS_URL,
    Verified,
    WeightsCorrupt,
    WeightsError,
    check_and_record,
    download,
    read_record,
    weights_path,
    where_to_get_it,
)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "weights",
        help="download, verify or locate the Mask R-CNN weights file",
        description="Manage the weights file (mask_rcnn_coco.h5). Its path: --path, else $MASKWEB_WEIGHTS, "
        f"else {DEFAULT_WEIGHTS}.",
    )
    actions = parser.add_subparsers(dest="weights_command", metavar="ACTION", required=True)

    get = actions.add_parser("download", help="fetch matterport's COCO weights, resuming, then verify them")
    get.add_argument(
        "--url", default=None, help=f"where to fetch from (default: $MASKWEB_WEIGHTS_URL or {WEIGHTS_URL})"
    )
    get.add_argument("--path", type=Path, default=None, help="where to put the file")
    get.add_argument("--force", action="store_true", help="download again even if a verified file is there")
    get.add_argument("--no-progress", action="store_true", help="no progress bar")
    get.set_defaults(func=_cmd_download)

    check = actions.add_parser("verify", help="check the file's layers and shapes against the COCO model")
    check.add_argument("--path", type=Path, default=None, help="the file to check")
    check.set_defaults(func=_cmd_verify)

    where = actions.add_parser("path", help="print where the weights file is (or is expected)")
    where.add_argument("--path", type=Path, default=None, help=argparse.SUPPRESS)
    where.set_defaults(func=_cmd_path)


def _cmd_download(args) -> int:
    try:
        verified = download(
            args.url, args.path, force=args.force, progress=False if args.no_progress else None
        )
    except WeightsError as exc:
        return _fail(str(exc))
    _report(verified)
    return 0


def _cmd_verify(args) -> int:
    path = weights_path(args.path)
    if not path.is_file():
        return _fail(f"no weights file at {path}: {where_to_get_it(path)}")
    try:
        verified = check_and_record(path)
    except WeightsCorrupt as exc:
        return _fail(f"{exc}\n{where_to_get_it(path)}")
    _report(verified)
    return 0


def _cmd_path(args) -> int:
    path = weights_path(args.path)
    print(path)
    if not path.is_file():
        print(f"(missing: {where_to_get_it(path)})", file=sys.stderr)
    elif read_record(path) is None:
        print("(present, not verified yet: `maskweb weights verify`)", file=sys.stderr)
    return 0


def _report(verified: Verified) -> None:
    for warning in verified.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    how = "downloaded and verified" if verified.downloaded else "verified"
    print(f"{verified.path}: {how}, {verified.size:,} bytes, sha256 {verified.sha256}")


def _fail(message: str) -> int:
    print(f"maskweb weights: {message}", file=sys.stderr)
    return 1
