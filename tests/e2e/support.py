"""Helpers for the browser tests: Chromium through Playwright, the web app in a thread, synthetic results.

The upload flow runs against the real stack (``tests/service/stack.py``). The viewer's own behaviour (hover,
legend, sliders, sharing, the hover-cost measurement) is driven on results inserted through storage: the
generated random weights may find nothing in a photo, and the 12-megapixel, 50-instance case needs a result
whose masks we choose.
"""

from __future__ import annotations

import json
import shutil
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

CLASS_NAMES = ["person", "bicycle", "car", "dog", "cat", "teddy bear", "chair", "bottle"]


# The viewer has drawn its overlay (the root stops being aria-busy once the photo is loaded and drawn).
VIEWER_READY = "#viewer-root[aria-busy=false] [data-testid=overlay]"


def next_frames(page) -> None:
    """Wait until the page has rendered two more frames: the viewer redraws in the frame after a change."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


# --- the web app on an ephemeral port, in this process ---------------------------------------------------------


@dataclass
class RunningApp:
    base_url: str
    settings: object
    app: object


@contextmanager
def serve_web_app(settings) -> Iterator[RunningApp]:
    """H4's Flask app (pages, API, Socket.IO over long-polling) served by werkzeug in a thread."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    from backend.web.app import create_app

    app = create_app(settings, submit=lambda *_: None, cancel=lambda *_: None)

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args, **kwargs):  # keep test output to what matters
            pass

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="e2e-web", daemon=True)
    thread.start()
    try:
        yield RunningApp(f"http://127.0.0.1:{server.server_port}", settings, app)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


# --- synthetic results -----------------------------------------------------------------------------------------------


def synthetic_result(width: int, height: int, count: int, seed: int = 0) -> tuple[dict, Image.Image]:
    """A photo-like image with ``count`` overlapping elliptical objects, and its result JSON.

    Masks are ellipses (some overlapping, so the stacking order matters), encoded by pycocotools exactly as
    the worker does; instances are sorted by score, highest first, ``id`` = index.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.ogrid[:height, :width]
    scale = min(width, height)
    specs = []
    for _ in range(count):
        rx = rng.uniform(0.04, 0.12) * scale
        ry = rng.uniform(0.04, 0.12) * scale
        cx = rng.uniform(rx, width - rx)
        cy = rng.uniform(ry, height - ry)
        class_id = int(rng.integers(1, len(CLASS_NAMES) + 1))
        specs.append((float(rng.uniform(0.5, 0.999)), cx, cy, rx, ry, class_id))
    specs.sort(key=lambda s: -s[0])

    image = Image.new("RGB", (width, height))
    gradient = np.zeros((height, width, 3), np.uint8)
    gradient[..., 0] = np.linspace(40, 200, width, dtype=np.uint8)[None, :]
    gradient[..., 1] = np.linspace(60, 160, height, dtype=np.uint8)[:, None]
    gradient[..., 2] = 120
    image = Image.fromarray(gradient)
    draw = ImageDraw.Draw(image)
    instances = []
    for index, (score, cx, cy, rx, ry, class_id) in enumerate(specs):
        x0, x1 = int(max(0, cx - rx - 1)), int(min(width, cx + rx + 2))
        y0, y1 = int(max(0, cy - ry - 1)), int(min(height, cy + ry + 2))
        mask = np.zeros((height, width), np.uint8)
        sub = ((xx[:, x0:x1] - cx) / rx) ** 2 + ((yy[y0:y1] - cy) / ry) ** 2 <= 1.0
        mask[y0:y1, x0:x1] = sub
        rle = mask_utils.encode(np.asfortranarray(mask))
        ys, xs = np.nonzero(sub)
        box = [int(xs.min() + x0), int(ys.min() + y0), int(xs.max() + x0 + 1), int(ys.max() + y0 + 1)]
        shade = tuple(int(v) for v in rng.integers(30, 230, 3))
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=shade)
        instances.append(
            {
                "id": index,
                "class_id": class_id,
                "class_name": CLASS_NAMES[class_id - 1],
                "score": round(score, 4),
                "box": box,
                "mask": {"size": [height, width], "counts": rle["counts"].decode("ascii")},
            }
        )
    return {"width": width, "height": height, "instances": instances}, image


def decode_mask(rle: dict) -> np.ndarray:
    """A result's mask (counts as str) as a bool [H, W] array, by pycocotools."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pycocotools' __array__ under numpy 2
        return mask_utils.decode({**rle, "counts": rle["counts"].encode("ascii")}).astype(bool)


def top_instance_map(result: dict) -> np.ndarray:
    """The index of the instance on top at each pixel (-1 none): highest score wins, ties to the lower index."""
    height, width = result["height"], result["width"]
    owner = np.full((height, width), -1, np.int32)
    order = sorted(range(len(result["instances"])), key=lambda i: (-result["instances"][i]["score"], i))
    for index in reversed(order):  # paint bottom first, so the top one is written last
        owner[decode_mask(result["instances"][index]["mask"])] = index
    return owner


def interior_point(owner: np.ndarray, index: int) -> tuple[int, int]:
    """A pixel (x, y) owned by ``index`` whose 15x15 neighbourhood it also owns (robust to rounding)."""
    own = owner == index
    ys, xs = np.nonzero(own)
    if len(xs) == 0:
        raise AssertionError(f"instance {index} is not visible anywhere")
    best = None
    cy, cx = ys.mean(), xs.mean()
    for y, x in sorted(
        zip(ys.tolist(), xs.tolist(), strict=True), key=lambda p: (p[0] - cy) ** 2 + (p[1] - cx) ** 2
    ):
        if own[max(0, y - 7) : y + 8, max(0, x - 7) : x + 8].all():
            best = (x, y)
            break
    if best is None:
        best = (int(xs[len(xs) // 2]), int(ys[len(ys) // 2]))
    return best


def insert_done_job(settings, user_id: str, image: Image.Image, result: dict, filename: str) -> str:
    """A finished job owned by ``user_id``, written through storage as the worker would leave it."""
    return _insert_job(
        settings,
        user_id,
        image,
        filename,
        result=result,
        state="done",
        progress=1.0,
        instance_count=len(result["instances"]),
        classes=sorted({i["class_name"] for i in result["instances"]}),
    )


def insert_failed_job(settings, user_id: str, image: Image.Image, filename: str) -> str:
    """A job owned by ``user_id`` that the worker gave up on (its original kept, no result)."""
    return _insert_job(
        settings,
        user_id,
        image,
        filename,
        state="failed",
        progress=0.0,
        error="The model ran out of memory on this photo.",
        error_code="worker_error",
    )


def _insert_job(settings, user_id: str, image: Image.Image, filename: str, result=None, **columns) -> str:
    from backend.storage.db import make_engine, session_scope
    from backend.storage.files import open_file_store
    from backend.storage.models import Job, User, new_id, utcnow

    job_id = new_id()
    data = open_file_store(settings)
    data.save_original(job_id, image)
    if result is not None:
        data.save_result(job_id, result)
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            if session.get(User, user_id) is None:
                session.add(User(id=user_id))
            now = utcnow()
            session.add(
                Job(
                    id=job_id,
                    user_id=user_id,
                    stage=None,
                    filename=filename,
                    width=image.width,
                    height=image.height,
                    created_at=now,
                    started_at=now,
                    finished_at=now,
                    timings={},
                    **columns,
                )
            )
    finally:
        engine.dispose()
    return job_id


def open_result(
    page, web_app, result: dict, image: Image.Image, filename: str, timeout_ms: int = 30_000
) -> str:
    """Give the page's visitor a finished job holding ``result`` and open its viewer; returns the job id."""
    page.goto(web_app.base_url + "/gallery")
    user_id = page.evaluate("fetch('/api/session').then(r => r.json())")["user_id"]
    job_id = insert_done_job(web_app.settings, user_id, image, result, filename)
    page.goto(f"{web_app.base_url}/jobs/{job_id}")
    page.wait_for_selector(VIEWER_READY, timeout=timeout_ms)
    return job_id


def upload_not_an_image(page, tmp_path):
    """Pick a .png that is text; returns its card once the server has refused it."""
    bogus = tmp_path / "notes.png"
    bogus.write_text("this is not a picture")
    page.get_by_test_id("upload-input").set_input_files(str(bogus))
    card = page.locator("[data-testid=job-card][data-state=failed]").first
    card.wait_for()
    return card


def photo_files(tmp_path, count: int, fmt: str = "PNG", size=(48, 36)) -> list[str]:
    """``count`` small photos on disk, each a different colour."""
    paths = []
    for n in range(count):
        path = tmp_path / f"photo-{n:02d}.{fmt.lower()}"
        Image.new("RGB", size, (40 + 6 * n, 120, 200 - 5 * n)).save(path, fmt)
        paths.append(str(path))
    return paths


def upload_answers(page) -> list:
    """The page's POST /api/jobs responses, as they come (read them once the page is done)."""
    responses = []
    page.on(
        "response",
        lambda r: responses.append(r) if r.url.endswith("/api/jobs") and r.request.method == "POST" else None,
    )
    return responses


def accepted_photos(responses) -> list[int]:
    """How many photos each accepted upload request carried (its jobs), in the order they were answered."""
    return [len(r.json()["jobs"]) for r in responses if r.status == 202]


def to_screen(page, result: dict, x: int, y: int) -> tuple[float, float]:
    """Viewport position of image pixel (x, y), through the overlay canvas' on-screen rectangle; scrolls the
    page first when that pixel is outside the window."""
    for _ in range(2):
        box = page.get_by_test_id("overlay").bounding_box()
        sx = box["x"] + (x + 0.5) * box["width"] / result["width"]
        sy = box["y"] + (y + 0.5) * box["height"] / result["height"]
        height = page.viewport_size["height"]
        if 8 <= sy <= height - 8:
            break
        page.evaluate("dy => window.scrollBy(0, dy)", sy - height / 2)
    return sx, sy


def label_text(page) -> str | None:
    """The hover label's text, or None while it is hidden."""
    label = page.get_by_test_id("hover-label")
    return label.inner_text() if label.is_visible() else None


def write_json(name: str, payload: dict) -> Path:
    path = artifact(name)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
