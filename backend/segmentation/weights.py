"""The weights file on this machine: download it, verify it, find it.

``maskweb weights download`` fetches matterport's ``mask_rcnn_coco.h5`` (release v2.0) into ``weights/`` with a
progress bar, resuming a partial download (``<file>.part``, HTTP Range; a server that ignores Range is simply
read again from the start). The finished file is verified before it takes its name: it must open as a Keras-2
HDF5 weights file holding every layer of the COCO model with the model's shapes, and every array must read back
finite. A file that fails is renamed ``<file>.rejected-<UTC time>`` and never loaded. The sha256 of a good file
is written beside it (``<file>.sha256``, ``sha256sum`` format) and ``resolve_weights`` checks it on every load.

| variable | meaning | default |
| --- | --- | --- |
| ``MASKWEB_WEIGHTS`` | the weights file | ``weights/mask_rcnn_coco.h5`` |
| ``MASKWEB_WEIGHTS_URL`` | where ``download`` fetches it (a mirror, a test server) | matterport's release URL |

Importing this module is cheap: h5py, requests and Keras load inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backend.atomic import atomic_write_text
from backend.mrcnn import weights_io
from backend.settings import Settings

WEIGHTS_URL = "https://github.com/matterport/Mask_RCNN/releases/download/v2.0/mask_rcnn_coco.h5"
DEFAULT_WEIGHTS = Path("weights") / "mask_rcnn_coco.h5"
PUBLISHED_SIZE = 257_557_808  # bytes of matterport's file, as its users report it
CONNECT_TIMEOUT_S = 5.0  # offline machines fail fast
READ_TIMEOUT_S = 60.0  # a stalled transfer is given up (and resumed by the next attempt)
CHUNK_BYTES = 1 << 20


class WeightsError(RuntimeError):
    """Base of the weights errors; the message says what happened and what to do."""


class WeightsMissing(WeightsError):
    """No weights file where one is expected."""


class WeightsCorrupt(WeightsError):
    """The weights file is not what it should be (unreadable, wrong layout, or changed since verified)."""


class DownloadFailed(WeightsError):
    """The download could not be completed (offline, HTTP error, interrupted); a partial file is kept."""


@dataclass
class Verified:
    """A weights file that passed verification: its path, sha256, size in bytes, warnings for the user, and
    whether this call downloaded it (False: it was already there)."""

    path: Path
    sha256: str
    size: int
    warnings: list[str] = field(default_factory=list)
    downloaded: bool = False


# ---------------------------------------------------------------------------------------------- locations


def weights_url() -> str:
    """Where to download the weights: ``MASKWEB_WEIGHTS_URL`` (``Settings.weights_url``), else matterport's."""
    return Settings.from_env().weights_url or WEIGHTS_URL


def weights_path(path: str | Path | None = None) -> Path:
    """``path``, else ``MASKWEB_WEIGHTS`` (``Settings.weights``: ``weights/mask_rcnn_coco.h5`` by default,
    relative to the working dir)."""
    chosen = Path(path or Settings.from_env().weights).expanduser()
    return chosen if chosen.is_absolute() else chosen.resolve()


def record_path(path: Path) -> Path:
    """Where the sha256 of a verified ``path`` is kept: ``<file>.sha256``."""
    return path.with_name(path.name + ".sha256")


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + ".part")


def where_to_get_it(path: Path) -> str:
    return (
        f"run `maskweb weights download`, or download {weights_url()} yourself and put it at {path} "
        "(or point MASKWEB_WEIGHTS at it)"
    )


# ---------------------------------------------------------------------------------------------- loading


def resolve_weights(path: str | Path | None = None) -> Path:
    """The weights file to load, checked: ``path`` or ``$MASKWEB_WEIGHTS`` or ``weights/mask_rcnn_coco.h5``.

    A file with a sha256 record (written when it passed verification) must still match it. A file without one
    (placed by hand, or fine-tuned weights for another config) must at least be a Keras-2 HDF5 weights file;
    its layers are checked against the model when the model loads it. Raises WeightsMissing (no file) or
    WeightsCorrupt (unreadable, or changed since it was verified); both messages say where to get the file.
    """
    path = weights_path(path)
    if not path.is_file():
        raise WeightsMissing(f"no weights file at {path}: {where_to_get_it(path)}")
    recorded = read_record(path)
    if recorded is not None:
        actual = sha256_of(path)
        if actual != recorded:
            raise WeightsCorrupt(
                f"weights file {path} changed since it was verified (sha256 {actual}, recorded {recorded}); "
                "run `maskweb weights verify` to check it again, or `maskweb weights download --force` "
                f"to fetch a fresh copy from {weights_url()}"
            )
        return path

    try:
        weights_io.read_layout(path)
    except (weights_io.WeightsFileError, OSError, KeyError) as exc:
        raise WeightsCorrupt(f"{path} is not a usable weights file ({exc}); {where_to_get_it(path)}") from exc
    return path


def read_record(path: Path) -> str | None:
    """The sha256 recorded for ``path`` (lower-case hex), or None when there is no readable record."""
    try:
        text = record_path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    digest = text.split()[0].lower() if text else ""
    return digest if re.fullmatch(r"[0-9a-f]{64}", digest) else None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_record(path: Path, sha256: str) -> None:
    """Write ``<file>.sha256`` atomically, in ``sha256sum -c`` format."""
    atomic_write_text(record_path(path), f"{sha256}  {path.name}\n", encoding="ascii")


# ---------------------------------------------------------------------------------------------- verification

_coco_layout_cache: dict = {}


def coco_layout():
    """{layer: {weight key: shape}} of the COCO model (ResNet-101, 81 classes), from the model itself.

    Builds the Keras model once per process (seconds); the layout is the one ``MaskRCNN.load_weights`` checks.
    """
    if "coco" not in _coco_layout_cache:
        from backend.mrcnn import CocoConfig, MaskRCNN  # lazily: building the model loads TensorFlow

        _coco_layout_cache["coco"] = MaskRCNN(CocoConfig()).weight_layout()
    return _coco_layout_cache["coco"]


def verify_weights(path: str | Path, layout=None, expected_size: int | None = PUBLISHED_SIZE) -> Verified:
    """Check that ``path`` holds every layer of ``layout`` (default: the COCO model) with the right shapes.

    Also reads every array and requires finite values. A size other than ``expected_size`` is a warning, not
    a failure. Returns Verified (with the sha256); raises WeightsCorrupt saying what is wrong. Does not move
    or record anything (``check_and_record`` does).
    """
    path = Path(path)
    layout = coco_layout() if layout is None else layout
    try:
        found = weights_io.read_layout(path)
        weights_io.check_layout(layout, found, path=path)
        for layer, arrays in weights_io.read_weights(path, layers=layout).items():
            for key, values in arrays.items():
                if values.dtype.kind not in "fiu":
                    raise WeightsCorrupt(f"{path}: weight {key} has dtype {values.dtype}, expected numbers")
                if values.dtype.kind == "f" and not _all_finite(values):
                    raise WeightsCorrupt(
                        f"{path}: weight {key} of layer {layer} holds NaN or infinite values"
                    )
    except (weights_io.WeightsFileError, weights_io.WeightsMismatchError, OSError, KeyError) as exc:
        raise WeightsCorrupt(f"{path} failed verification: {exc}") from exc
    size = path.stat().st_size
    warnings = []
    if expected_size is not None and size != expected_size:
        warnings.append(
            f"{path} is {size:,} bytes, not the {expected_size:,} of the published file; it holds every "
            "layer with the right shapes, so it is accepted"
        )
    return Verified(path, sha256_of(path), size, warnings)


def _all_finite(values) -> bool:
    return bool(np.isfinite(values).all())


def check_and_record(
    path: Path, final: Path | None = None, layout=None, expected_size=PUBLISHED_SIZE
) -> Verified:
    """Verify ``path``; if good, move it to ``final`` (default: stay) and record its sha256 beside it.

    A file that fails is renamed ``<final>.rejected-<UTC time>`` (kept for inspection, never loaded) and
    WeightsCorrupt is raised naming where it went.
    """
    final = path if final is None else final
    try:
        verified = verify_weights(path, layout=layout, expected_size=expected_size)
    except WeightsCorrupt as exc:
        aside = _set_aside(path, final)
        raise WeightsCorrupt(f"{exc}\nThe file was moved to {aside} and will not be loaded.") from exc
    record_path(final).unlink(missing_ok=True)  # never a stale record next to a new file
    if path != final:
        os.replace(path, final)
    write_record(final, verified.sha256)
    verified.path = final
    return verified


def _set_aside(path: Path, final: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = final.with_name(f"{final.name}.rejected-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = final.with_name(f"{final.name}.rejected-{stamp}-{n}")
    os.replace(path, aside)
    if path == final:
        record_path(final).unlink(missing_ok=True)
    return aside


# ---------------------------------------------------------------------------------------------- download


def download(
    url: str | None = None,
    path: str | Path | None = None,
    *,
    force: bool = False,
    attempts: int = 3,
    progress: bool | None = None,
    layout=None,
    expected_size: int | None = PUBLISHED_SIZE,
    connect_timeout: float = CONNECT_TIMEOUT_S,
    read_timeout: float = READ_TIMEOUT_S,
) -> Verified:
    """Download the weights to ``path`` (default ``weights_path()``), verify them, record their sha256.

    An existing file that still matches its record is kept unless ``force``. The transfer goes to
    ``<file>.part`` and resumes from it (up to ``attempts`` tries in this call; a later call resumes too).
    ``progress``: a tqdm bar on stderr (None: only on a terminal). ``layout``/``expected_size`` default to the
    COCO model's. Raises DownloadFailed (offline, HTTP error, interrupted: the message names the URL and the
    path to put the file at) or WeightsCorrupt (downloaded but failed verification: the file is set aside).
    """
    url = url or weights_url()
    path = weights_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    notes = []
    if path.is_file() and not force:
        try:
            return _already_there(path, layout, expected_size)
        except WeightsCorrupt as exc:
            notes.append(f"the file that was there failed its check: {exc}")
    part = partial_path(path)
    last_error = None
    for attempt in range(1, max(1, attempts) + 1):
        try:
            _fetch(url, part, progress, (connect_timeout, read_timeout))
            break
        except _Unreachable as exc:  # offline, refused or an HTTP error: retrying now will not help
            raise DownloadFailed(
                f"cannot download {url} ({exc}); download it on a machine that can and put it at {path} "
                "(or point MASKWEB_WEIGHTS at it)"
            ) from None
        except _Interrupted as exc:
            last_error = exc
            if attempt < attempts:
                time.sleep(0.5 * attempt)
        except OSError as exc:  # local: cannot write the partial file
            raise DownloadFailed(f"cannot write {part}: {exc}") from exc
    else:
        have = part.stat().st_size if part.exists() else 0
        raise DownloadFailed(
            f"download of {url} did not complete ({last_error}); {have:,} bytes are kept in {part}: "
            f"run `maskweb weights download` again to resume, or put the file at {path} yourself"
        )
    verified = check_and_record(part, path, layout=layout, expected_size=expected_size)
    verified.warnings[:0] = notes
    verified.downloaded = True
    return verified


def _already_there(path: Path, layout, expected_size) -> Verified:
    """The file at ``path`` if it is good: unchanged since verified, or verified now (and recorded).

    Raises WeightsCorrupt after setting a bad file aside.
    """
    recorded = read_record(path)
    if recorded is None:
        return check_and_record(path, layout=layout, expected_size=expected_size)
    if sha256_of(path) != recorded:
        aside = _set_aside(path, path)
        raise WeightsCorrupt(f"{path} no longer matches its recorded sha256; moved to {aside}")
    return Verified(path, recorded, path.stat().st_size)


class _Unreachable(Exception):
    """No connection could be made (or the server refused the request): not worth retrying."""


class _Interrupted(Exception):
    """The transfer started but did not finish; the partial file is kept for a resume."""


def _fetch(url: str, part: Path, progress: bool | None, timeout: tuple[float, float]) -> None:
    """Append the rest of ``url`` to ``part`` (creating it), until the server's full length is there."""
    import requests  # lazily: only a download needs the HTTP client (`maskweb --help` loads this module)

    have = part.stat().st_size if part.exists() else 0
    headers = {"Accept-Encoding": "identity"}  # byte ranges of the file itself, never of a compressed body
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = requests.get(url, headers=headers, stream=True, timeout=timeout)
    except requests.exceptions.ConnectTimeout as exc:
        raise _Unreachable(f"no connection within {timeout[0]:g} s") from exc
    except requests.exceptions.ConnectionError as exc:
        raise _Unreachable(_reason(exc)) from exc
    except requests.exceptions.Timeout as exc:
        raise _Interrupted(f"no answer within {timeout[1]:g} s") from exc
    except requests.exceptions.RequestException as exc:  # a malformed URL, too many redirects, ...
        raise _Unreachable(str(exc)) from exc
    with response:
        if response.status_code == 416 and have:
            total = _content_range_total(response.headers.get("Content-Range", ""))
            if total == have:
                return  # the partial file is already complete
            part.unlink()  # bigger than the file on the server: not a prefix of it
            raise _Interrupted("the partial file did not fit the server's file; starting again")
        if response.status_code == 206:
            start, total = _content_range(response.headers.get("Content-Range", ""))
            if start != have:
                part.unlink()
                raise _Interrupted(f"the server resumed at byte {start}, not {have}; starting again")
            mode = "ab"
        elif response.status_code == 200:
            total = _int_or_none(response.headers.get("Content-Length"))
            have, mode = 0, "wb"  # full body: the server ignored Range (or there was nothing to resume)
        else:
            raise _Unreachable(f"HTTP {response.status_code} {response.reason}")
        _stream_to(response, part, mode, have, total, progress)


def _stream_to(response, part: Path, mode: str, have: int, total: int | None, progress: bool | None) -> None:
    import urllib3  # lazily, with requests
    from tqdm import tqdm

    bar = tqdm(
        total=total,
        initial=have,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=part.name.removesuffix(".part"),
        disable=None if progress is None else not progress,
        file=sys.stderr,
    )
    written = have
    raw = response.raw  # read1: hands over every byte received, even when the connection drops next
    with bar, open(part, mode) as f:
        while True:
            try:
                chunk = raw.read1(CHUNK_BYTES)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise _Interrupted(f"connection lost after {written:,} bytes: {_reason(exc)}") from exc
            if not chunk:
                break
            f.write(chunk)
            written += len(chunk)
            bar.update(len(chunk))
    if total is not None and written < total:
        raise _Interrupted(f"the server sent {written:,} of {total:,} bytes")
    if total is not None and written > total:
        part.unlink()
        raise _Interrupted(f"the server sent {written:,} bytes, more than the announced {total:,}")


def _content_range(value: str) -> tuple[int, int | None]:
    """(first byte, total or None) of a ``bytes first-last/total`` header; (-1, None) if unreadable."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*", value)
    if not match:
        return -1, None
    return int(match.group(1)), _int_or_none(match.group(2))


def _content_range_total(value: str) -> int | None:
    match = re.fullmatch(r"\s*bytes\s+\*/(\d+)\s*", value)
    return int(match.group(1)) if match else None


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _reason(exc: BaseException) -> str:
    """The innermost, most telling part of a requests/urllib3 error, e.g. 'Connection refused'."""
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^')\]]+)", text)
    if match:
        return match.group(1).strip()
    return text.split(":")[-1].strip(" )'\"") or type(exc).__name__
