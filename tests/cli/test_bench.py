"""``maskweb bench``: the table and JSON it reports (no timing asserts), and where generated weights come from."""

from __future__ import annotations

import json
import re
from pathlib import Path

from testkit import run_maskweb as maskweb

from backend.cli.bench import _parity_layout_for
from backend.segmentation.model_config import load_model_config


def small_config(tmp_path: Path, parity_dir: Path, num_classes: int = 4) -> Path:
    values = json.loads((parity_dir / "config_small_b1.json").read_text())["values"]
    names = ["BG", *(f"class{i}" for i in range(1, num_classes))]
    path = tmp_path / "small.json"
    path.write_text(json.dumps({**values, "NUM_CLASSES": num_classes, "CLASS_NAMES": names}))
    return path


def test_bench_reports_batch_1_and_2(tmp_path, parity_dir, small_weights):
    out = tmp_path / "bench.json"
    config = small_config(tmp_path, parity_dir)
    proc = maskweb(
        "bench", "--config", config, "--weights", small_weights, "--batch", "1", "2", "--repeat", "1",
        "--size", "200", "--calibrate", "--json", out,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("maskweb bench:") and "resnet50, 4 classes" in lines[0]
    assert lines[1] == f"weights: {small_weights}"
    assert "200x200" in lines[2]
    header = next(i for i, line in enumerate(lines) if "s/image median" in line)
    rows = [line.split() for line in lines[header + 1 : header + 3]]
    assert [row[0] for row in rows] == ["1", "2"]
    assert all(re.fullmatch(r"\d+\.\d+", cell) for row in rows for cell in row[1:6])

    assert any(line.startswith("yardstick: Keras' ResNet-101 alone") for line in lines)

    report = json.loads(out.read_text())
    assert report["calibration"]["resnet101_s"] > 0
    assert report["weights"] == str(small_weights)
    assert report["image_size"] == [200, 200] and report["repeat"] == 1
    assert [row["batch"] for row in report["rows"]] == [1, 2]
    for row in report["rows"]:
        assert row["median_s_per_image"] > 0 and row["p90_s_per_image"] >= row["median_s_per_image"]
        assert row["peak_rss_mib"] > 100  # a model of 179 MB of weights is resident
        assert len(row["runs_s_per_image"]) == 1


def test_bench_without_weights_points_to_random_weights(tmp_path, parity_dir):
    proc = maskweb("bench", "--config", small_config(tmp_path, parity_dir), "--weights", tmp_path / "none.h5")
    assert proc.returncode == 2
    assert "--random-weights" in proc.stderr and "maskweb weights download" in proc.stderr


def test_generated_weights_use_the_parity_layout_that_fits_the_config(tmp_path, parity_dir):
    coco, _ = load_model_config("coco")
    assert _parity_layout_for(coco)[1].name == "layout_coco.json"
    small, _ = load_model_config(small_config(tmp_path, parity_dir))
    assert _parity_layout_for(small)[1].name == "layout_small.json"
    other, _ = load_model_config(small_config(tmp_path, parity_dir, num_classes=5))
    assert _parity_layout_for(other) == (None, None)  # falls back to Keras' random initialisation
