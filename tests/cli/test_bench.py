"""``maskweb bench``: it runs ours and both peers in one run and reports figures and ratios (no timing asserts);
the pieces that can fail on another machine say why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from testkit import run_maskweb as maskweb

from backend.cli.bench import MATTERPORT_WHEEL, _parity_layout_for
from backend.cli.bench.contenders import Spec
from backend.cli.bench.matterport_source import MatterportUnavailable, patched_sources
from backend.cli.bench.rounds import alternate
from backend.segmentation.model_config import load_model_config


def small_config(tmp_path: Path, parity_dir: Path, num_classes: int = 4) -> Path:
    values = json.loads((parity_dir / "config_small_b1.json").read_text())["values"]
    names = ["BG", *(f"class{i}" for i in range(1, num_classes))]
    path = tmp_path / "small.json"
    path.write_text(json.dumps({**values, "NUM_CLASSES": num_classes, "CLASS_NAMES": names}))
    return path


@pytest.mark.slow
def test_bench_times_ours_and_both_peers_and_reports_the_ratios(tmp_path, parity_dir, small_weights):
    out = tmp_path / "bench.json"
    proc = maskweb(
        "bench", "--config", small_config(tmp_path, parity_dir), "--weights", small_weights, "--batch", "1",
        "--repeat", "1", "--precision", "exact", "--size", "96", "--json", out,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("maskweb bench:") and "resnet50, 4 classes" in lines[0] and "96x96" in lines[0]
    assert lines[1] == f"weights: {small_weights}"
    assert "batch 1: maskweb exact, torchvision, matterport" in lines

    report = json.loads(out.read_text())
    outcomes = {o["contender"]: o for o in report["batches"]["1"]}
    assert set(outcomes) == {"maskweb exact", "torchvision", "matterport"}
    for name, outcome in outcomes.items():
        assert outcome["unavailable"] is None, (name, outcome["unavailable"])
        assert set(outcome["modes"]) == {"network", "job"}
        for figures in outcome["modes"].values():
            assert figures["p95_s"] >= figures["p50_s"] > 0 and len(figures["runs_s"]) == 1
            assert figures["detections"] > 0
        assert outcome["peak_rss_mib"] > 100  # a model is resident
    # Minimum score 0 for every contender: each keeps DETECTION_MAX_INSTANCES (the small config's 50 at most).
    assert outcomes["torchvision"]["modes"]["job"]["detections"] == 100
    assert (
        outcomes["maskweb exact"]["modes"]["job"]["detections"]
        == outcomes["matterport"]["modes"]["job"]["detections"]
    )
    assert "compiled CPU operators" in outcomes["torchvision"]["description"]["operators"]

    pairs = {(r["peer"], r["mode"]) for r in report["ratios"] if r["precision"] == "exact"}
    assert pairs == {(peer, mode) for peer in ("torchvision", "matterport") for mode in ("network", "job")}
    for row in report["ratios"]:
        ours, peer = (
            outcomes["maskweb exact"]["modes"][row["mode"]],
            outcomes[row["peer"]]["modes"][row["mode"]],
        )
        assert row["ratio"] == pytest.approx(peer["p50_s"] / ours["p50_s"])
        assert f"is {row['ratio']:.2f}x as fast as {row['peer']}" in proc.stdout
    assert any("target whole job, exact vs torchvision >= 2.0x: " in line for line in report["targets"])
    assert any("fast vs torchvision >= 3.0x: not measured" in line for line in report["targets"])


def test_a_peer_that_cannot_run_is_reported_and_the_rest_still_runs(tmp_path, parity_dir):
    missing = tmp_path / "nowhere" / "mrcnn_colab-2.1.0-py3-none-any.whl"
    spec = Spec(kind="matterport", batch=1, config=str(small_config(tmp_path, parity_dir)), weights=None,
                min_score=0.0, extra={"matterport_wheel": str(missing)})  # fmt: skip
    image = tmp_path / "photo.png"
    from PIL import Image

    Image.new("RGB", (64, 64), (90, 120, 150)).save(image)
    [outcome] = alternate([spec], [image], repeat=1, progress=lambda line: None)
    assert outcome.unavailable.startswith("MatterportUnavailable: no mrcnn_colab-2.1.0-py3-none-any.whl at ")
    assert "pip download --no-deps -d DIR mrcnn-colab==2.1" in outcome.unavailable
    assert outcome.timings == {}


def test_matterport_code_is_patched_only_by_the_listed_renames(tmp_path):
    if not MATTERPORT_WHEEL.is_file():
        pytest.skip("make bench-deps downloads the mrcnn-colab wheel")  # CI runs make test, which does
    sources = patched_sources(MATTERPORT_WHEEL)
    model = sources["model"]
    assert "import tf_keras as keras" in model and "\nimport keras" not in model
    for gone in (
        "tf.log(",
        "tf.sets.set_intersection(",
        "tf.sparse_tensor_to_dense(",
        "tf.to_float(",
        "np.bool)",
    ):
        assert gone not in model and gone not in sources["utils"], gone
    assert model.count("proposals.set_shape([None, self.proposal_count, 4])") == 1

    tampered = tmp_path / MATTERPORT_WHEEL.name
    tampered.write_bytes(MATTERPORT_WHEEL.read_bytes() + b"\0")
    with pytest.raises(MatterportUnavailable, match="is not the checked mrcnn-colab 2.1 wheel"):
        patched_sources(tampered)


def test_bench_without_weights_points_to_random_weights(tmp_path, parity_dir):
    proc = maskweb("bench", "--config", small_config(tmp_path, parity_dir), "--weights", tmp_path / "none.h5")
    assert proc.returncode == 2
    assert "--random-weights" in proc.stderr and "maskweb weights download" in proc.stderr


def test_generated_weights_use_the_parity_layout_that_fits_the_config(tmp_path, parity_dir):
    parity = parity_dir.parent
    coco, _ = load_model_config("coco")
    assert _parity_layout_for(coco, parity)[1].name == "layout_coco.json"
    small, _ = load_model_config(small_config(tmp_path, parity_dir))
    assert _parity_layout_for(small, parity)[1].name == "layout_small.json"
    other, _ = load_model_config(small_config(tmp_path, parity_dir, num_classes=5))
    assert _parity_layout_for(other, parity) == (None, None)  # falls back to Keras' random initialisation
    assert _parity_layout_for(coco, tmp_path) == (None, None)  # a plain clone has no shared/parity beside it
