"""Hover cost on a 12-megapixel photo with 50 instances, measured in Chromium (a figure, not an assertion).

Each of 100 pointer moves goes to a different instance, so every move changes the highlight (the most work a
move can cause). Per move we record the handler's time (``performance.now()`` around a dispatched
``pointermove``: hit test, highlight swap, label) and the same plus a forced rasterisation of the highlight
canvas (a 1-pixel ``getImageData``), which bounds what the frame has to paint. The figures go to
``test-artifacts/hover.json``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics

import pytest

from .support import (
    artifact,
    interior_point,
    open_result,
    synthetic_result,
    top_instance_map,
    write_json,
)

pytestmark = pytest.mark.browser

WIDTH, HEIGHT, COUNT = 4000, 3000, 50

MEASURE = """
async ([points, width, height]) => {
  const canvas = document.querySelector('[data-testid=overlay]');
  const highlight = document.querySelector('canvas.highlight').getContext('2d');
  const rect = canvas.getBoundingClientRect();
  const handler = [];
  const painted = [];
  for (const [x, y] of points) {
    const clientX = rect.left + (x + 0.5) * rect.width / width;
    const clientY = rect.top + (y + 0.5) * rect.height / height;
    const t0 = performance.now();
    canvas.dispatchEvent(new PointerEvent('pointermove', {clientX, clientY, bubbles: true}));
    const t1 = performance.now();
    highlight.getImageData(0, 0, 1, 1);
    const t2 = performance.now();
    handler.push(t1 - t0);
    painted.push(t2 - t0);
    await new Promise(requestAnimationFrame);
  }
  const label = document.querySelector('[data-testid=hover-label]').textContent;
  const renders = performance.getEntriesByType('measure').filter(m => m.name.startsWith('maskweb:')).map(m => [m.name, Math.round(m.duration)]);
  return {handler, painted, label, renders};
}
"""


def summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3),
        "max_ms": round(ordered[-1], 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
    }


def test_hover_cost_on_a_12_megapixel_photo_with_50_instances(context, web_app):
    result, image = synthetic_result(WIDTH, HEIGHT, COUNT, seed=12)
    owner = top_instance_map(result)
    visible = [i for i in range(COUNT) if (owner == i).any()]
    points = [interior_point(owner, i) for i in visible]

    page = context.new_page()
    open_result(page, web_app, result, image, "twelve-megapixels.png", timeout_ms=120_000)
    page.wait_for_timeout(1500)  # idle time: the viewer prepares the per-instance highlight patches

    moves = (points * 3)[:100]
    measured = page.evaluate(MEASURE, [moves, WIDTH, HEIGHT])
    last = visible[(len(moves) - 1) % len(visible)]
    assert measured["label"].startswith(result["instances"][last]["class_name"] + " ")
    assert len(measured["handler"]) == 100
    page.screenshot(path=artifact("viewer-12mp-hover.png"))

    figures = {
        "image": f"{WIDTH}x{HEIGHT}",
        "instances": COUNT,
        "moves": len(moves),
        "handler": summary(measured["handler"]),
        "handler_plus_raster": summary(measured["painted"]),
        "render_steps_ms": measured["renders"],
        "first_moves_ms": [round(v, 1) for v in measured["handler"][:5]],
        "browser": context.browser.version,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, headless Chromium --disable-gpu",
    }
    write_json("hover.json", figures)
    print("\nhover cost:", json.dumps(figures))
