"""``maskweb segment IMAGE...``: segment images from the command line.

For every image it writes, into ``--out`` (default: the current directory), ``<stem>.overlay.png`` (the image
with instances drawn as matterport's display_instances draws them) and ``<stem>.json`` (the result JSON of
docs/ARCHITECTURE.md plus ``"image"``, the input's file name). A bad image (not an image, truncated, too large)
gets one line on stderr naming the file and what was wrong; the other images still run and the exit status is
1 at the end. A missing or damaged weights file or a bad model config stops the command at once (status 2).
Files are written whole or not at all (temp file, then rename).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from backend.atomic import atomic_write
from backend.settings import Settings

PROG = "maskweb segment"
EXIT_OK, EXIT_SOME_FAILED, EXIT_CANNOT_RUN = 0, 1, 2
WEIGHTS_HINT = "get them with `maskweb weights download`, or set MASKWEB_WEIGHTS (or --weights) to a mask_rcnn_coco.h5 file"


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "segment",
        help="segment images: overlay PNG and result JSON per image",
        description=(
            "Writes <stem>.overlay.png and <stem>.json into --out for every image. A bad image gets one line "
            "on stderr and exit status 1 at the end; the other images still run. Missing weights or a bad "
            "model config stop at once with status 2."
        ),
    )
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    parser.add_argument(
        "--weights", type=Path, default=None, help="weights file (default: $MASKWEB_WEIGHTS or weights/)"
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="coco|FILE.json",
        help="model config: 'coco' or a JSON file of Config attributes + CLASS_NAMES "
        "(default: $MASKWEB_MODEL_CONFIG or coco)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("."), metavar="DIR", help="output folder (default: .)"
    )
    parser.add_argument(
        "--min-score", type=_score, default=None, metavar="S", help="keep instances scoring at least S (0..1)"
    )
    parser.set_defaults(func=run)
    return parser


def _score(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    # imported when the command runs, so that `maskweb --help` loads none of a command's dependencies
    from backend.segmentation.images import ImageRejected
    from backend.segmentation.model_config import ModelConfigError, load_model_config
    from backend.segmentation.pipeline import decode, segment_and_save
    from backend.segmentation.weights import WeightsCorrupt, WeightsMissing, resolve_weights

    config_spec = args.config or Settings.from_env().model_config
    try:
        config, class_names = load_model_config(config_spec)
        weights = resolve_weights(args.weights)
    except ModelConfigError as exc:
        return _fail(str(exc))
    except (WeightsMissing, WeightsCorrupt) as exc:
        message = str(exc)
        return _fail(message if "weights download" in message else f"{message}; {WEIGHTS_HINT}")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _fail(f"cannot create the output folder {args.out}: {exc.strerror}")

    segmenter = None  # built at the first good image, so a run of bad files costs no model load
    stems: set[str] = set()
    failed = 0
    for path in args.images:
        try:
            decoded = decode(path)
        except ImageRejected as exc:
            failed += 1
            _error(f"{path}: {exc.message}")
            continue
        except FileNotFoundError:
            failed += 1
            _error(f"{path}: no such file")
            continue
        except OSError as exc:
            failed += 1
            _error(f"{path}: cannot read the file: {exc.strerror or exc}")
            continue
        if segmenter is None:
            from backend.mrcnn.weights_io import WeightsFileError, WeightsMismatchError  # lazily, as above
            from backend.segmentation.pipeline import Segmenter

            try:
                segmenter = Segmenter(config, class_names, weights)
            except WeightsMismatchError as exc:
                return _fail(_mismatch_line(exc, weights, config_spec))
            except WeightsFileError as exc:
                return _fail(str(exc))
        outputs = FolderOutputs(args.out, _unique_stem(path.stem, stems))
        result = segment_and_save(segmenter, decoded, outputs, min_score=args.min_score, image=path.name)
        found = ", ".join(f"{n} {name}" for name, n in result.class_counts().items()) or "nothing found"
        count = len(result.instances)
        noun = "instance" if count == 1 else "instances"
        print(f"{path}: {count} {noun} ({found}) -> {outputs.json_path}, {outputs.overlay_path}", flush=True)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _mismatch_line(exc, weights, config_spec) -> str:
    """One line for weights that do not fit the model: the counts and the first problem."""
    problems = [
        *(f"missing layer {n}" for n in exc.missing),
        *(f"unexpected layer {n}" for n in exc.unexpected),
        *(f"shape mismatch {m}" for m in exc.mismatched),
    ]
    return (
        f"weights file {weights} does not fit the model config '{config_spec}': {len(exc.missing)} missing "
        f"layers, {len(exc.unexpected)} unexpected, {len(exc.mismatched)} shape mismatches (first: "
        f"{problems[0] if problems else 'none'}); check --config or MASKWEB_MODEL_CONFIG"
    )


class FolderOutputs:
    """The pipeline's ``ResultSink`` for one image: ``<stem>.overlay.png`` and ``<stem>.json`` in ``out``,
    each written whole or not at all."""

    def __init__(self, out: Path, stem: str):
        self.overlay_path = out / f"{stem}.overlay.png"
        self.json_path = out / f"{stem}.json"

    def save_overlay(self, overlay) -> None:
        atomic_write(self.overlay_path, lambda f: overlay.save(f, format="PNG"))

    def save_result(self, document: dict) -> None:
        atomic_write(self.json_path, lambda f: f.write(json.dumps(document).encode("utf-8")))


def _unique_stem(stem: str, taken: set[str]) -> str:
    """``stem``, or ``stem-2``, ``stem-3``... when two inputs share a name (a/cat.jpg and b/cat.png)."""
    candidate, n = stem, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}-{n}"
    taken.add(candidate)
    return candidate


def _error(line: str) -> None:
    print(f"{PROG}: {line}", file=sys.stderr, flush=True)


def _fail(line: str) -> int:
    _error(line)
    return EXIT_CANNOT_RUN
