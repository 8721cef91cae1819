"""``backend.segmentation.weights``: download with resume, verification, the sha256 record — against a real local HTTP server.

The server (``http.server`` in a thread, ephemeral port) serves a generated Keras-2 weights file and can cut a
transfer short, ignore Range, or answer with an error. Most tests use a small file in a small layout (passed as
``layout``); the slow ones run ``maskweb weights`` as a subprocess on the COCO-layout fixture (257 MB), verified
against the layout of the real COCO model.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import h5py
import numpy as np
import pytest

from backend.segmentation import weights
from backend.segmentation.weights import DownloadFailed, WeightsCorrupt, WeightsMissing

ROOT = Path(__file__).resolve().parents[2]

# A small file in the Keras-2 layout: a weightless layer, a conv layer, a nested model's layer, a big dense.
SMALL_LAYOUT = {
    "conv1": {"conv1/kernel": (3, 3, 3, 8), "conv1/bias": (8,)},
    "rpn_model": {"rpn_conv_shared/kernel": (3, 3, 8, 8), "rpn_conv_shared/bias": (8,)},
    "mrcnn_class_logits": {"mrcnn_class_logits/kernel": (512, 512), "mrcnn_class_logits/bias": (512,)},
}


def write_weights_file(path: Path, layout=SMALL_LAYOUT, seed=0, value=None) -> Path:
    """A Keras-2 HDF5 weights file as old Keras wrote it: byte-string attributes, a weightless layer."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"input_image", *(name.encode() for name in layout)]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.0.8"
        f.create_group("input_image").attrs["weight_names"] = np.array([], dtype="S1")
        for layer, arrays in layout.items():
            group = f.create_group(layer)
            group.attrs["weight_names"] = [f"{key}:0".encode() for key in arrays]
            for key, shape in arrays.items():
                data = rng.normal(size=shape).astype(np.float32) if value is None else np.full(shape, value)
                group.create_dataset(f"{key}:0", data=data.astype(np.float32))
    return path


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class WeightsServer:
    """Serves one file over HTTP on 127.0.0.1 with optional Range support and scripted failures.

    ``cuts``: byte counts after which the next responses drop the connection (one per request, in order).
    ``requests``: the Range header of every request received (None when absent).
    """

    def __init__(self, payload: Path, ranges: bool = True, status: int = 200):
        self.payload, self.ranges, self.status = payload, ranges, status
        self.cuts: list[int] = []
        self.requests: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.headers.get("Range"))
                if server.status != 200:
                    self.send_error(server.status)
                    return
                size = server.payload.stat().st_size
                start = 0
                wanted = self.headers.get("Range")
                if server.ranges and wanted and wanted.startswith("bytes=") and wanted.endswith("-"):
                    start = int(wanted[len("bytes=") : -1])
                    if start >= size:
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{size}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(size - start))
                self.end_headers()
                limit = server.cuts.pop(0) if server.cuts else None
                sent = 0
                with open(server.payload, "rb") as f:
                    f.seek(start)
                    while chunk := f.read(1 << 16):
                        if limit is not None and sent + len(chunk) > limit:
                            self.wfile.write(chunk[: limit - sent])
                            self.wfile.flush()
                            self.close_connection = True
                            self.connection.shutdown(socket.SHUT_RDWR)
                            return
                        self.wfile.write(chunk)
                        sent += len(chunk)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/mask_rcnn_coco.h5"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def small_file(tmp_path) -> Path:
    return write_weights_file(tmp_path / "served.h5")


@pytest.fixture
def serve():
    servers = []

    def start(payload: Path, **options) -> WeightsServer:
        servers.append(WeightsServer(payload, **options))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def fetch(server, target: Path, **options):
    options.setdefault("layout", SMALL_LAYOUT)
    options.setdefault("expected_size", None)
    options.setdefault("progress", False)
    return weights.download(server.url, target, **options)


def rejected_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.rejected-*"))


# ---------------------------------------------------------------------------------------------- download


def test_full_download_is_verified_recorded_and_resolvable(tmp_path, small_file, serve, capsys):
    server = serve(small_file)
    target = tmp_path / "weights" / "mask_rcnn_coco.h5"
    verified = fetch(server, target, progress=True)
    data = small_file.read_bytes()
    assert target.read_bytes() == data
    assert verified.downloaded and verified.path == target and verified.size == len(data)
    assert verified.sha256 == sha256_hex(data) and not verified.warnings
    assert (target.parent / "mask_rcnn_coco.h5.sha256").read_text().split() == [sha256_hex(data), target.name]
    assert not weights.partial_path(target).exists()
    assert weights.resolve_weights(target) == target
    assert server.requests == [None]
    assert "100%" in capsys.readouterr().err  # the tqdm progress bar


def test_size_other_than_published_is_a_warning(tmp_path, small_file, serve):
    target = tmp_path / "mask_rcnn_coco.h5"
    verified = fetch(serve(small_file), target, expected_size=weights.PUBLISHED_SIZE)
    assert target.exists() and len(verified.warnings) == 1
    assert f"{small_file.stat().st_size:,} bytes" in verified.warnings[0]
    assert "257,557,808" in verified.warnings[0]


def test_truncated_transfer_is_kept_and_resumed_by_the_next_run(tmp_path, small_file, serve):
    server = serve(small_file)
    server.cuts = [300_000]
    target = tmp_path / "mask_rcnn_coco.h5"
    with pytest.raises(DownloadFailed) as failed:
        fetch(server, target, attempts=1)
    part = weights.partial_path(target)
    assert part.stat().st_size == 300_000
    assert str(part) in str(failed.value) and "resume" in str(failed.value)
    assert not target.exists()

    verified = fetch(server, target)
    assert target.read_bytes() == small_file.read_bytes()
    assert server.requests == [None, "bytes=300000-"]
    assert verified.sha256 == sha256_hex(small_file.read_bytes())


def test_interrupted_transfers_resume_within_one_call(tmp_path, small_file, serve):
    server = serve(small_file)
    server.cuts = [200_000, 100_000]
    target = tmp_path / "mask_rcnn_coco.h5"
    fetch(server, target, attempts=3)
    assert target.read_bytes() == small_file.read_bytes()
    assert server.requests == [None, "bytes=200000-", "bytes=300000-"]


def test_server_ignoring_range_restarts_from_the_beginning(tmp_path, small_file, serve):
    server = serve(small_file, ranges=False)
    target = tmp_path / "mask_rcnn_coco.h5"
    weights.partial_path(target).write_bytes(b"\0" * 123_456)  # not even a prefix of the file
    fetch(server, target)
    assert target.read_bytes() == small_file.read_bytes()
    assert server.requests == ["bytes=123456-"]


def test_complete_partial_file_needs_no_more_bytes(tmp_path, small_file, serve):
    server = serve(small_file)
    target = tmp_path / "mask_rcnn_coco.h5"
    weights.partial_path(target).write_bytes(small_file.read_bytes())
    fetch(server, target)
    assert target.read_bytes() == small_file.read_bytes()
    assert server.requests == [f"bytes={small_file.stat().st_size}-"]  # answered 416: nothing left to fetch


def corrupt_truncated(path: Path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def corrupt_html(path: Path):
    path.write_bytes(b"<!DOCTYPE html><html><body>Not Found</body></html>\n" * 100)


def corrupt_shape(path: Path):
    layout = {**SMALL_LAYOUT, "conv1": {"conv1/kernel": (3, 3, 3, 16), "conv1/bias": (16,)}}
    write_weights_file(path, layout)


def corrupt_missing_layer(path: Path):
    write_weights_file(path, {k: v for k, v in SMALL_LAYOUT.items() if k != "rpn_model"})


def corrupt_values(path: Path):
    write_weights_file(path, value=np.nan)


@pytest.mark.parametrize(
    "corrupt, reason",
    [
        (corrupt_truncated, "failed verification"),
        (corrupt_html, "not a readable HDF5 file"),
        (corrupt_shape, "shape mismatch"),
        (corrupt_missing_layer, "missing layers"),
        (corrupt_values, "NaN or infinite"),
    ],
)
def test_corrupted_download_is_rejected_and_kept_aside(tmp_path, small_file, serve, corrupt, reason):
    corrupt(small_file)
    served = small_file.read_bytes()
    target = tmp_path / "mask_rcnn_coco.h5"
    with pytest.raises(WeightsCorrupt) as rejected:
        fetch(serve(small_file), target)
    assert reason in str(rejected.value)
    assert not target.exists() and not weights.record_path(target).exists()
    assert not weights.partial_path(target).exists()
    [aside] = rejected_files(tmp_path)
    assert aside.name.startswith("mask_rcnn_coco.h5.rejected-") and aside.read_bytes() == served
    assert str(aside) in str(rejected.value)
    with pytest.raises(WeightsMissing):
        weights.resolve_weights(target)


def test_offline_fails_fast_naming_url_and_path(tmp_path):
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/mask_rcnn_coco.h5"
    target = tmp_path / "weights" / "mask_rcnn_coco.h5"
    with pytest.raises(DownloadFailed) as failed:
        weights.download(url, target, layout=SMALL_LAYOUT, progress=False)
    message = str(failed.value)
    assert url in message and str(target) in message and "refused" in message.lower()
    assert not target.exists()


def test_http_error_names_status_url_and_path(tmp_path, small_file, serve):
    server = serve(small_file, status=404)
    target = tmp_path / "mask_rcnn_coco.h5"
    with pytest.raises(DownloadFailed) as failed:
        fetch(server, target)
    assert (
        "HTTP 404" in str(failed.value)
        and server.url in str(failed.value)
        and str(target) in str(failed.value)
    )
    assert server.requests == [None]  # an HTTP error is not retried


def test_verified_file_is_not_downloaded_again_unless_forced(tmp_path, small_file, serve):
    server = serve(small_file)
    target = tmp_path / "mask_rcnn_coco.h5"
    fetch(server, target)
    again = fetch(server, target)
    assert not again.downloaded and server.requests == [None]
    forced = fetch(server, target, force=True)
    assert forced.downloaded and server.requests == [None, None]


# ---------------------------------------------------------------------------------------------- loading


def test_tampered_file_is_detected_on_load(tmp_path, small_file, serve):
    target = tmp_path / "mask_rcnn_coco.h5"
    fetch(serve(small_file), target)
    data = bytearray(target.read_bytes())
    data[-10] ^= 0xFF  # one byte of weight values: still a well-formed file
    target.write_bytes(bytes(data))
    with pytest.raises(WeightsCorrupt) as corrupt:
        weights.resolve_weights(target)
    assert "changed since it was verified" in str(corrupt.value) and "maskweb weights" in str(corrupt.value)
    # `maskweb weights verify` accepts a file that is structurally good again and records its new hash
    verified = weights.check_and_record(target, layout=SMALL_LAYOUT, expected_size=None)
    assert verified.sha256 == sha256_hex(bytes(data))
    assert weights.resolve_weights(target) == target


def test_tampered_file_is_set_aside_by_the_next_download(tmp_path, small_file, serve):
    server = serve(small_file)
    target = tmp_path / "mask_rcnn_coco.h5"
    fetch(server, target)
    target.write_bytes(b"garbage")
    verified = fetch(server, target)
    assert verified.downloaded and target.read_bytes() == small_file.read_bytes()
    assert [p.read_bytes() for p in rejected_files(tmp_path)] == [b"garbage"]
    assert "failed its check" in verified.warnings[0]


def test_missing_weights_name_url_and_path(tmp_path, monkeypatch):
    target = tmp_path / "nowhere" / "mask_rcnn_coco.h5"
    monkeypatch.setenv("MASKWEB_WEIGHTS", str(target))
    monkeypatch.setenv("MASKWEB_WEIGHTS_URL", "http://mirror.example/mask_rcnn_coco.h5")
    with pytest.raises(WeightsMissing) as missing:
        weights.resolve_weights()
    assert str(target) in str(missing.value)
    assert "http://mirror.example/mask_rcnn_coco.h5" in str(missing.value)
    assert "maskweb weights download" in str(missing.value)


def test_unrecorded_file_must_be_a_weights_file(tmp_path):
    good = write_weights_file(tmp_path / "fine_tuned.h5")
    assert weights.resolve_weights(good) == good  # no record yet: the model checks its layers on load
    bad = tmp_path / "photo.h5"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(WeightsCorrupt) as corrupt:
        weights.resolve_weights(bad)
    assert str(bad) in str(corrupt.value) and weights.WEIGHTS_URL in str(corrupt.value)


def test_environment_overrides_path_and_url(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKWEB_WEIGHTS", str(tmp_path / "w.h5"))
    monkeypatch.setenv("MASKWEB_WEIGHTS_URL", "http://127.0.0.1:9/x.h5")
    assert weights.weights_path() == tmp_path / "w.h5"
    assert weights.weights_url() == "http://127.0.0.1:9/x.h5"
    monkeypatch.delenv("MASKWEB_WEIGHTS")
    monkeypatch.delenv("MASKWEB_WEIGHTS_URL")
    assert weights.weights_path() == (Path.cwd() / "weights" / "mask_rcnn_coco.h5")
    assert weights.weights_url() == weights.WEIGHTS_URL


def test_weights_path_command_prints_the_path(tmp_path, monkeypatch, capsys):
    from backend.cli import main

    monkeypatch.setenv("MASKWEB_WEIGHTS", str(tmp_path / "w.h5"))
    assert main(["weights", "path"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(tmp_path / "w.h5") and "missing" in err


# ---------------------------------------------------------------------------------------------- the real layout


def run_cli(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", "weights", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_cli_downloads_and_verifies_a_coco_layout_file(tmp_path, coco_weights, small_weights, serve):
    """`maskweb weights download` end to end, verified against the COCO model's own layout."""
    target = tmp_path / "weights" / "mask_rcnn_coco.h5"
    server = serve(coco_weights)
    server.cuts = [50_000_000]  # one interruption, resumed within the call
    env = {"MASKWEB_WEIGHTS": str(target), "MASKWEB_WEIGHTS_URL": server.url}
    done = run_cli("download", "--no-progress", env=env)
    assert done.returncode == 0, done.stderr
    assert "257,573,848 bytes" in done.stderr and "warning" in done.stderr  # the fixture is 16 kB bigger
    assert target.stat().st_size == coco_weights.stat().st_size
    assert server.requests == [None, "bytes=50000000-"]
    digest = weights.sha256_of(coco_weights)
    assert weights.read_record(target) == digest and digest in done.stdout
    assert weights.resolve_weights(target) == target

    assert run_cli("path", env=env).stdout.strip() == str(target)
    assert run_cli("verify", env=env).returncode == 0

    # the small parity config's weights (ResNet-50, 4 classes) are not the COCO file: rejected, kept aside
    wrong = tmp_path / "other" / "mask_rcnn_coco.h5"
    env = {"MASKWEB_WEIGHTS": str(wrong), "MASKWEB_WEIGHTS_URL": serve(small_weights).url}
    done = run_cli("download", "--no-progress", env=env)
    assert done.returncode == 1
    assert "missing layers" in done.stderr and "shape mismatch" in done.stderr
    assert not wrong.exists() and len(rejected_files(wrong.parent)) == 1
