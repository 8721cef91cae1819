"""Pages render the frontend's templates with the documented context; assets and vendored files are served."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from webtools import Visitor, complete, png

from backend.web import create_app

REPO_FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
CONTEXT = "weights={{ weights_missing }}|job={{ job_id }}|share={{ share_token }}|og={{ og_image_url }}|title={{ og_title }}"


@pytest.fixture
def frontend(settings):
    pages = settings.frontend_dir / "pages"
    pages.mkdir(parents=True)
    for name in ("upload", "gallery", "job", "shared"):
        (pages / f"{name}.html").write_text(f"{name}|{CONTEXT}")
    (settings.frontend_dir / "src").mkdir()
    (settings.frontend_dir / "src" / "api.js").write_text("export const x = 1;\n")
    (settings.frontend_dir / "vendor").mkdir()
    (settings.frontend_dir / "vendor" / "socket.io.esm.min.js").write_text("// vendored\n")
    (settings.data_dir).mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "private.txt").write_text("secret")
    return settings.frontend_dir


def test_first_visit_to_a_page_sets_the_identity_cookie(app, frontend):
    response = app.test_client().get("/")
    assert response.status_code == 200
    assert response.get_data(as_text=True).startswith("upload|")
    assert "maskweb_id=" in response.headers["Set-Cookie"] and "HttpOnly" in response.headers["Set-Cookie"]


def test_pages_say_how_to_get_missing_weights(app, settings, frontend):
    text = app.test_client().get("/gallery").get_data(as_text=True)
    assert text.startswith("gallery|") and "maskweb weights download" in text and "MASKWEB_WEIGHTS" in text
    settings.weights.write_bytes(b"weights")
    assert "weights=None" in app.test_client().get("/gallery").get_data(as_text=True)
    status = app.test_client().get("/api/status").get_json()
    assert status["weights_missing"] is None


def test_job_page_gets_its_id(app, frontend):
    text = app.test_client().get("/jobs/" + "a" * 32).get_data(as_text=True)
    assert text.startswith("job|") and f"job={'a' * 32}" in text


def test_shared_page_carries_og_image_and_404s_when_revoked(app, frontend):
    visitor = Visitor(app)
    (job,) = visitor.upload((png(), "beach.png"))
    complete(app, job["id"])
    token = visitor.post(f"/api/jobs/{job['id']}/share").get_json()["token"]
    response = app.test_client().get(f"/s/{token}")
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and text.startswith("shared|")
    assert f"og=http://localhost/api/shared/{token}/thumbnail" in text and "beach.png" in text
    assert "job=None" in text  # the page works from the token alone
    visitor.delete(f"/api/jobs/{job['id']}/share")
    gone = app.test_client().get(f"/s/{token}")
    assert gone.status_code == 404 and "share=None" in gone.get_data(as_text=True)


def test_assets_and_vendor_files_are_served_and_nothing_else(app, frontend):
    client = app.test_client()
    assert client.get("/assets/api.js").get_data(as_text=True) == "export const x = 1;\n"
    assert client.get("/vendor/socket.io.esm.min.js").status_code == 200
    for path in ("/assets/../pages/upload.html", "/assets/%2e%2e/%2e%2e/data/private.txt", "/assets/nope.js"):
        assert client.get(path).status_code == 404


def test_without_the_frontend_pages_still_answer(app):
    text = app.test_client().get("/").get_data(as_text=True)
    assert "upload.html is not installed" in text and "maskweb weights download" in text


@pytest.mark.skipif(
    not (REPO_FRONTEND / "pages" / "upload.html").exists(), reason="frontend pages not present"
)
def test_the_real_frontend_templates_render(settings, queue):
    settings.frontend_dir = REPO_FRONTEND
    app = create_app(settings, submit=queue.submit, cancel=queue.cancel)
    visitor = Visitor(app)
    (job,) = visitor.upload(png())
    token = visitor.post(f"/api/jobs/{job['id']}/share").get_json()["token"]
    for url in ("/", "/gallery", f"/jobs/{job['id']}", f"/s/{token}"):
        response = visitor.get(url)
        assert response.status_code == 200, url
        assert "<html" in response.get_data(as_text=True).lower()
    shared = visitor.get(f"/s/{token}").get_data(as_text=True)
    assert f"/api/shared/{token}/thumbnail" in shared


@pytest.fixture
def real_frontend_app(settings):
    """The app serving the repository's own frontend templates."""
    app = create_app(replace(settings, frontend_dir=REPO_FRONTEND))
    yield app
    app.extensions["maskweb"].engine.dispose()


BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_an_unknown_page_answers_an_html_404_in_the_apps_style(real_frontend_app):
    client = real_frontend_app.test_client()
    response = client.get("/no/such/page", headers=BROWSER)
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    text = response.get_data(as_text=True)
    assert "<h1>Page not found</h1>" in text and 'class="topbar"' in text and 'href="/"' in text
    # The API keeps answering JSON, whatever the client accepts.
    api = client.get("/api/no-such-thing", headers=BROWSER)
    assert api.status_code == 404 and api.mimetype == "application/json"
    assert api.get_json()["error"]["code"] == "not_found"
    # A client asking for JSON gets JSON everywhere.
    plain = client.get("/no/such/page", headers={"Accept": "application/json"})
    assert plain.status_code == 404 and plain.get_json()["error"]["status"] == 404


def test_a_failing_page_answers_an_html_500_and_the_api_json(real_frontend_app):
    client = real_frontend_app.test_client()
    engine = real_frontend_app.extensions["maskweb"].engine
    # The users table goes missing: every request that needs it fails.
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE users RENAME TO users_gone")
    try:
        page = client.get("/gallery", headers=BROWSER)
        assert page.status_code == 500 and page.mimetype == "text/html"
        text = page.get_data(as_text=True)
        assert "Something went wrong on our side" in text and "it has been logged" in text
        api = client.get("/api/jobs", headers=BROWSER)
        assert api.status_code == 500 and api.get_json()["error"]["code"] == "internal_error"
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE users_gone RENAME TO users")
