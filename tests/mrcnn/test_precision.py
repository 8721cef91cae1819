"""The two precisions: what each resolves to, and how close ``fast`` comes to the parity reference.

The accuracy measure (issue 9): detections matched to the reference's by class and box IoU >= 0.9, and the mask
IoU of the matched pairs. Targets: >= 95% of the reference's detections matched, mean mask IoU >= 0.95. On the
parity weights (random values) ``exact`` meets them by far (tested here, so the measure itself is checked), and
``fast`` does not. The measure itself is unstable on these weights: the random ResNet amplifies any change
(~19x from the input to C5 on COCO) and detection scores crowd the 0.7 threshold, so rounding only the first
convolution's weights to bfloat16 already costs detections and mask IoU; that calibration is measured here too
(``exact_conv1_weights_bfloat16``). All figures go to test-artifacts/precision.json and the README; the small
config's floor keeps ``fast`` from getting worse unnoticed (COCO's ``fast`` figure is below the measure's noise,
recorded only). On a CPU without native bfloat16 ``fast`` computes in float32 and must equal ``exact``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mrcnn_parity import iou_matrix, load_input, reference_result

from backend.mrcnn import precision

pytest.importorskip("tensorflow")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TARGET_MATCHED, TARGET_MASK_IOU = 0.95, 0.95
# what fast keeps at least on the random parity weights (measured, TF 2.21 CPU with AVX512-BF16, minus margin)
# (small only: on COCO one bfloat16-sized change of one layer already drops exact to ~50%, so fast's COCO figure
# is noise, recorded but not held; see README "Precision")
FAST_FLOOR = {"small": (0.75, 0.65)}
IMAGES = ("astronaut", "chelsea", "synthetic")


def agreement(ref, ours) -> tuple[int, int, list[float]]:
    """(reference detections, matched, mask IoUs of the matched): pairs of one class with box IoU >= 0.9, by
    highest IoU first, each detection used once."""
    iou = iou_matrix(ref["rois"], ours["rois"])
    ok = (ref["class_ids"][:, None] == ours["class_ids"][None, :]) & (iou >= 0.9)
    pairs, used = {}, set()
    for flat in np.argsort(np.where(ok, -iou, np.inf), axis=None, kind="stable"):
        i, j = (int(v) for v in np.unravel_index(flat, iou.shape))
        if not ok[i, j]:
            break
        if i not in pairs and j not in used:
            pairs[i] = j
            used.add(j)
    mask_ious = []
    for i, j in pairs.items():
        a, b = ref["masks"][..., i], ours["masks"][..., j]
        union = np.logical_or(a, b).sum()
        mask_ious.append(float(np.logical_and(a, b).sum() / union) if union else 1.0)
    return len(ref["rois"]), len(pairs), mask_ious


def measure(parity_dir, model, config_name) -> dict:
    manifest = json.loads((parity_dir / "MANIFEST.json").read_text())
    total, matched, mask_ious = 0, 0, []
    for name in IMAGES:
        case = manifest["cases"][f"{config_name}_{name}"]
        ref = reference_result(dict(np.load(parity_dir / case["file"])), 0)
        (ours,) = model.detect([load_input(parity_dir, name)])
        n, m, ious = agreement(ref, ours)
        total, matched, mask_ious = total + n, matched + m, mask_ious + ious
    return {"matched": matched / total, "mean_mask_iou": float(np.mean(mask_ious)), "detections": total}


def record(key, figures):
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "precision.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = figures
    path.write_text(json.dumps(data, indent=2))


def measure_conv1_in_bfloat16(parity_dir, model, config_name) -> dict:
    """The measure for ``exact`` with only the first convolution's weights rounded to bfloat16 (what ``fast``
    does to that one layer), all else float32: how far one bfloat16-sized change moves the measure on these
    random weights. The weights are restored afterwards."""
    from keras import ops

    conv1 = model.graphs(model.config.IMAGE_SHAPE, model.mask_buckets[0])[0].get_layer("conv1")
    kernel = np.asarray(conv1.kernel)
    conv1.kernel.assign(ops.cast(ops.cast(kernel, "bfloat16"), "float32"))
    assert not np.array_equal(np.asarray(conv1.kernel), kernel)
    try:
        return measure(parity_dir, model, config_name)
    finally:
        conv1.kernel.assign(kernel)


def check(parity_dir, config_name, model_exact, weights):
    from backend.mrcnn.model import MaskRCNN

    exact = measure(parity_dir, model_exact, config_name)
    assert exact["matched"] >= TARGET_MATCHED and exact["mean_mask_iou"] >= TARGET_MASK_IOU, exact
    calibration = measure_conv1_in_bfloat16(parity_dir, model_exact, config_name)
    fast_model = MaskRCNN(model_exact.config, precision="fast").load_weights(weights)
    fast = measure(parity_dir, fast_model, config_name)
    record(config_name, {"device": precision.device_kind(), "fast": fast, "exact": exact,
                         "exact_conv1_weights_bfloat16": calibration,
                         "fast_policy": fast_model.precision.policy})  # fmt: skip
    if fast_model.precision.policy == "float32":  # no native bfloat16 here: fast is exact
        assert fast == exact
    elif config_name in FAST_FLOOR:
        floor_matched, floor_iou = FAST_FLOOR[config_name]
        assert fast["matched"] >= floor_matched and fast["mean_mask_iou"] >= floor_iou, fast


def test_fast_against_the_reference_small(parity_dir, small_b1_model, small_weights):
    check(parity_dir, "small", small_b1_model, small_weights)


@pytest.mark.slow
def test_fast_against_the_reference_coco(parity_dir, coco_model, coco_weights):
    check(parity_dir, "coco", coco_model, coco_weights)


def test_precision_names_resolve():
    assert precision.resolve("exact").policy == "float32"
    fast = precision.resolve("fast")
    assert fast.name == "fast"
    assert fast.policy == ("float32" if precision.device_kind() == "cpu" else "mixed_bfloat16")
    assert (
        fast.policy_of("backbone") == fast.policy and precision.resolve("exact").policy_of(None) == "float32"
    )
    assert precision.resolve(None).name == precision.default_precision()
    assert precision.resolve("auto").name == precision.default_precision()
    with pytest.raises(ValueError, match="precision must be one of"):
        precision.resolve("half")


def test_bfloat16_cpus_are_recognised_by_their_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16\n")
    assert "avx512_bf16" in precision.cpu_flags(info)
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2\n")
    assert not precision.cpu_flags(info) & set(precision.BF16_CPU_FLAGS)
    assert precision.cpu_flags(tmp_path / "absent") == set()
    assert (
        precision.default_precision("cpu-bf16") == "exact" and precision.default_precision("cpu") == "exact"
    )


def test_fast_in_some_stages_only_resolves_per_device():
    subset = precision.fast(("rpn",))
    assert precision.resolve(subset) is subset
    expected = "float32" if precision.device_kind() == "cpu" else "mixed_bfloat16"
    assert subset.policy == expected and subset.policy_of("rpn") == expected
    assert subset.policy_of("backbone") == "float32"
    with pytest.raises(ValueError, match="unknown stage"):
        precision.fast(("backbone", "roi_align"))
