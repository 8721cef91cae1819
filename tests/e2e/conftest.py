"""Browser fixtures: Debian's Chromium driven headless by Playwright, and the web app with a temp data dir."""

from __future__ import annotations

import pytest
from testkit import require_service  # tests/conftest.py

from .support import CHROMIUM_ARGS, chromium_path, serve_web_app

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def browser():
    executable = chromium_path()
    if executable is None:
        require_service("chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def web_app(tmp_path_factory):
    """The web app alone (no queue, no worker) on an ephemeral port; results are inserted through storage."""
    from backend.settings import Settings

    data_dir = tmp_path_factory.mktemp("e2e-data")
    settings = Settings(
        data_dir=data_dir,
        secret_key="e2e-secret",
        weights=data_dir / "weights.h5",
        identity_rate_limit="10000 per minute",  # every browser context is a new visitor from 127.0.0.1
        address_upload_rate_limit="10000 per minute",
    )
    with serve_web_app(settings) as running:
        yield running


@pytest.fixture
def context(browser):
    """A fresh browser context (its own cookies) per test, at a laptop-sized viewport."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory, small_weights, parity_dir):
    """The real stack (tests/service/stack.py): gunicorn web, Celery worker with the small model and generated
    weights, private Redis, SQLite. The detection threshold is lowered so random weights still find objects."""
    import json

    try:
        from service.stack import Stack, write_model_config
    except ImportError as exc:
        require_service(f"the running-stack fixture tests/service/stack.py: {exc}")
    root = tmp_path_factory.mktemp("e2e-stack")
    config = write_model_config(parity_dir, root / "small.json")
    values = json.loads(config.read_text())
    values["DETECTION_MIN_CONFIDENCE"] = 0.5
    config.write_text(json.dumps(values))
    with Stack.start(root / "run", small_weights, config) as running:
        yield running
