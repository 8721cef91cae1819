"""The bench's figures: per-image statistics, the ratios against the peers and the targets, as text and JSON.

Per contender, batch size and mode (``network``: the network alone; ``job``: the whole job), from the timed
batches: p50 and p95 seconds per image (a batch's seconds / its images), images per second (images / median
batch seconds), CPU seconds per image (all threads), detections per image and the process's peak memory.
A ratio is the peer's p50 seconds per image over ours, measured in the same alternating rounds: above 1 means
we are faster.
"""

from __future__ import annotations

import numpy as np

from .rounds import MODES, Outcome

# (our precision, peer kind, mode, the ratio wanted): issue 9's CPU targets. "default" is the precision the
# service runs by default on this device.
CPU_TARGETS = (
    ("exact", "torchvision", "job", 2.0),
    ("fast", "torchvision", "job", 3.0),
    ("default", "matterport", "job", 1.6),
)
# Issue 9's GPU targets (H100/H200): whole-job images/s at the largest batch, network p50 at batch 1.
GPU_JOB_IMAGES_PER_S = 100.0
GPU_NETWORK_P50_S = 0.030

WIDTHS = (22, 14, 10, 10, 9, 10, 9, 9)
MODE_TEXT = {"network": "network alone", "job": "whole job"}


def statistics(outcome: Outcome) -> dict[str, dict]:
    """``{mode: {p50_s, p95_s, images_per_s, cpu_s, detections, runs_s}}`` per image, for timed modes."""
    batch = outcome.spec.batch
    figures = {}
    for mode in MODES:
        timings = outcome.timings.get(mode)
        if not timings or not timings.batch_seconds:
            continue
        per_image = np.asarray(timings.batch_seconds) / batch
        figures[mode] = {
            "p50_s": float(np.percentile(per_image, 50)),
            "p95_s": float(np.percentile(per_image, 95)),
            "images_per_s": float(batch / np.median(timings.batch_seconds)),
            "cpu_s": float(np.median(timings.cpu_seconds) / batch),
            "detections": float(np.mean(timings.detections) / batch),
            "runs_s": [float(v) for v in per_image],
        }
    return figures


def label_spec(spec) -> str:
    return f"maskweb {spec.precision}" if spec.kind == "ours" else spec.kind


def label(outcome: Outcome) -> str:
    return label_spec(outcome.spec)


def ratios(outcomes: list[Outcome], default_precision: str) -> list[dict]:
    """Peer p50 / our p50 per (our precision, peer, mode) among ``outcomes`` of one batch size."""
    ours = {o.spec.precision: statistics(o) for o in outcomes if o.spec.kind == "ours" and not o.unavailable}
    peers = {o.spec.kind: statistics(o) for o in outcomes if o.spec.kind != "ours" and not o.unavailable}
    rows = []
    for precision, our_figures in ours.items():
        for peer, peer_figures in peers.items():
            for mode in MODES:
                if mode in our_figures and mode in peer_figures:
                    rows.append(
                        {
                            "precision": precision,
                            "default": precision == default_precision,
                            "peer": peer,
                            "mode": mode,
                            "ratio": peer_figures[mode]["p50_s"] / our_figures[mode]["p50_s"],
                        }
                    )
    return rows


def target_lines(ratio_rows: list[dict], default_precision: str) -> list[str]:
    """One line per CPU target: the ratio measured, and met / missed / not measured."""
    lines = []
    for precision, peer, mode, wanted in CPU_TARGETS:
        actual = default_precision if precision == "default" else precision
        found = [
            r for r in ratio_rows if r["precision"] == actual and r["peer"] == peer and r["mode"] == mode
        ]
        name = f"{MODE_TEXT[mode]}, {actual}{' (default)' if precision == 'default' else ''} vs {peer}"
        if not found:
            lines.append(f"target {name} >= {wanted:.1f}x: not measured")
            continue
        ratio = found[0]["ratio"]
        verdict = "met" if ratio >= wanted else "MISSED"
        lines.append(f"target {name} >= {wanted:.1f}x: {ratio:.2f}x, {verdict}")
    return lines


def gpu_target_lines(by_batch: dict[int, list[Outcome]], precision: str) -> list[str]:
    """The two GPU targets for our model at ``precision``: whole-job images/s at the largest batch measured,
    network p50 at batch 1."""
    lines = []

    def ours(batch):
        return next(
            (statistics(o) for o in by_batch.get(batch, [])
             if o.spec.kind == "ours" and o.spec.precision == precision and not o.unavailable),
            {},
        )  # fmt: skip

    largest = max(by_batch) if by_batch else None
    job = ours(largest).get("job") if largest else None
    if job:
        verdict = "met" if job["images_per_s"] >= GPU_JOB_IMAGES_PER_S else "MISSED"
        lines.append(
            f"GPU target whole job >= {GPU_JOB_IMAGES_PER_S:.0f} images/s at batch {largest} ({precision}): "
            f"{job['images_per_s']:.1f} images/s, {job['detections']:.0f} detections/image, {verdict}"
        )
    network = ours(1).get("network")
    if network:
        verdict = "met" if network["p50_s"] <= GPU_NETWORK_P50_S else "MISSED"
        lines.append(
            f"GPU target network p50 <= {GPU_NETWORK_P50_S * 1000:.0f} ms at batch 1 ({precision}): "
            f"{network['p50_s'] * 1000:.1f} ms, {verdict}"
        )
    return lines


def table_lines(outcomes: list[Outcome]) -> list[str]:
    header = ("contender", "mode", "p50 s/img", "p95 s/img", "images/s", "CPU s/img", "dets/img", "peak MiB")
    lines = [_row(header)]
    for outcome in outcomes:
        if outcome.unavailable:
            lines.append(f"{label(outcome).ljust(WIDTHS[0])}  unavailable: {outcome.unavailable}")
            continue
        for mode, figures in statistics(outcome).items():
            cells = (
                label(outcome), MODE_TEXT[mode], f"{figures['p50_s']:.3f}", f"{figures['p95_s']:.3f}",
                f"{figures['images_per_s']:.2f}", f"{figures['cpu_s']:.2f}", f"{figures['detections']:.1f}",
                f"{outcome.peak_rss_mib:.0f}",
            )  # fmt: skip
            lines.append(_row(cells))
    return lines


def _row(cells) -> str:
    """Table cells in fixed widths: the two label columns left-aligned, the figures right-aligned."""
    return "  ".join(
        c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, WIDTHS, strict=True))
    )


def ratio_lines(ratio_rows: list[dict]) -> list[str]:
    return [
        f"{MODE_TEXT[r['mode']]:>14}: maskweb {r['precision']}{' (default)' if r['default'] else ''} is "
        f"{r['ratio']:.2f}x as fast as {r['peer']}"
        for r in ratio_rows
    ]


def as_json(outcome: Outcome) -> dict:
    spec = outcome.spec
    return {
        "contender": label(outcome),
        "kind": spec.kind,
        "precision": spec.precision if spec.kind == "ours" else None,
        "batch": spec.batch,
        "description": outcome.description,
        "unavailable": outcome.unavailable,
        "build_s": outcome.build_s,
        "warmup_s": outcome.warmup_s,
        "peak_rss_mib": outcome.peak_rss_mib,
        "modes": statistics(outcome),
    }
