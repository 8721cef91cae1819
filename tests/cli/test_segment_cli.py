"""``maskweb segment`` run as a subprocess on the small parity model: outputs for good images, one-line errors
for bad ones, and a clear stop when weights or the model config are missing."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image
from testkit import run_maskweb as maskweb

from backend.segmentation.result import SegmentationResult

SMALL_CLASS_NAMES = ["BG", "alpha", "beta", "gamma"]


@pytest.fixture(scope="module")
def small_config(tmp_path_factory, parity_dir) -> Path:
    values = json.loads((parity_dir / "config_small_b1.json").read_text())["values"]
    path = tmp_path_factory.mktemp("cfg") / "small.json"
    path.write_text(json.dumps({**values, "CLASS_NAMES": SMALL_CLASS_NAMES}))
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def huge_png(width: int, height: int) -> bytes:
    """A valid PNG header declaring width x height RGB pixels, with one tiny IDAT (never decoded)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + png_chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, parity_dir) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    not_image = folder / "notes.png"
    not_image.write_text("this is a text file with a .png name\n")
    good = (parity_dir / "inputs" / "chelsea.png").read_bytes()
    truncated = folder / "cut.png"
    truncated.write_bytes(good[: len(good) // 2])
    huge = folder / "huge.png"
    huge.write_bytes(huge_png(8_000, 8_000))  # 64 megapixels, over the 40 megapixel limit
    return {"not_image": not_image, "truncated": truncated, "huge": huge, "missing": folder / "absent.png"}


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory, parity_dir, small_weights, small_config, bad_inputs):
    out = tmp_path_factory.mktemp("out")
    inputs = parity_dir / "inputs"
    args = [
        bad_inputs["not_image"],
        inputs / "astronaut.png",
        bad_inputs["truncated"],
        bad_inputs["huge"],
        bad_inputs["missing"],
        inputs / "synthetic.png",
    ]
    proc = maskweb("segment", *args, "--weights", small_weights, "--config", small_config, "--out", out)
    return proc, out


def test_bad_images_fail_alone_and_the_exit_status_says_so(mixed_run, bad_inputs):
    proc, _ = mixed_run
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("maskweb segment:")]
    assert len(lines) == 4, proc.stderr
    by_file = {name: next(line for line in lines if str(path) in line) for name, path in bad_inputs.items()}
    assert "not an image" in by_file["not_image"]
    assert "truncated or corrupt" in by_file["truncated"]
    assert "8000 x 8000" in by_file["huge"] and "limit" in by_file["huge"]
    assert by_file["missing"] == f"maskweb segment: {bad_inputs['missing']}: no such file"


def test_good_images_get_an_overlay_and_a_result_json(mixed_run, parity_dir):
    proc, out = mixed_run
    for name in ("astronaut", "synthetic"):
        image = Image.open(parity_dir / "inputs" / f"{name}.png")
        document = json.loads((out / f"{name}.json").read_text())
        assert document["image"] == f"{name}.png"
        result = SegmentationResult.from_dict(document)
        assert (result.width, result.height) == image.size
        assert result.instances, f"the small model finds objects in {name}"
        assert {i.class_name for i in result.instances} <= set(SMALL_CLASS_NAMES[1:])
        overlay = Image.open(out / f"{name}.overlay.png")
        assert overlay.format == "PNG" and overlay.size == image.size
        assert f"{name}.png: {len(result.instances)} instance" in proc.stdout
    written = sorted(p.name for p in out.iterdir())
    assert written == ["astronaut.json", "astronaut.overlay.png", "synthetic.json", "synthetic.overlay.png"]


def test_min_score_drops_weaker_instances(tmp_path, parity_dir, small_weights, small_config):
    image = parity_dir / "inputs" / "astronaut.png"
    proc = maskweb(
        "segment", image, "--weights", small_weights, "--config", small_config, "--out", tmp_path, "--min-score",
        "0.9",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    scores = [i["score"] for i in json.loads((tmp_path / "astronaut.json").read_text())["instances"]]
    assert scores and min(scores) >= 0.9


def test_missing_weights_say_how_to_get_them(tmp_path, parity_dir, small_config):
    proc = maskweb(
        "segment", parity_dir / "inputs" / "astronaut.png", "--weights", tmp_path / "none.h5",
        "--config", small_config, "--out", tmp_path / "out",
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "maskweb weights download" in lines[0] and "MASKWEB_WEIGHTS" in lines[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_bad_model_config_stops_before_any_work(tmp_path, parity_dir, small_weights):
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"NUM_CLASSES": 3, "CLASS_NAMES": ["BG", "a"]}))
    proc = maskweb(
        "segment", parity_dir / "inputs" / "astronaut.png", "--weights", small_weights, "--config", config,
        "--out", tmp_path / "out",
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"maskweb segment: model config {config}: CLASS_NAMES has 2 names but NUM_CLASSES is 3 "
        "(the list counts the background 'BG' too)"
    ]


def test_weights_for_another_model_are_one_clear_line(tmp_path, parity_dir, small_weights):
    values = json.loads((parity_dir / "config_small_b1.json").read_text())["values"]
    config = tmp_path / "five.json"
    config.write_text(json.dumps({**values, "NUM_CLASSES": 5, "CLASS_NAMES": [*SMALL_CLASS_NAMES, "delta"]}))
    proc = maskweb(
        "segment", parity_dir / "inputs" / "astronaut.png", "--weights", small_weights, "--config", config,
        "--out", tmp_path / "out",
    )  # fmt: skip
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.startswith("maskweb segment:")]
    assert len(lines) == 1, proc.stderr
    assert f"weights file {small_weights} does not fit the model config" in lines[0]
    assert "shape mismatch" in lines[0] and "mrcnn_" in lines[0]
    assert not any((tmp_path / "out").iterdir())
