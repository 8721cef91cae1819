"""Pages: the HTML shell of H6's frontend, its ES modules and vendored files.

- ``/``, ``/gallery``, ``/jobs/<id>``, ``/s/<token>`` render ``frontend/pages/{upload,gallery,job,shared}.html``
  (Jinja) with ``{weights_missing, job_id, share_token, og_image_url, og_title}``; the identity cookie is set
  on the first visit. When a template is missing (frontend not installed) a plain page says so.
- ``/assets/<path>`` serves ``frontend/src/<path>``; ``/vendor/<path>`` serves ``frontend/vendor/<path>``.
"""

from __future__ import annotations

from html import escape

from flask import Blueprint, render_template, request, send_from_directory
from jinja2 import ChoiceLoader, FileSystemLoader, TemplateNotFound

from backend.storage import repo

from .identity import require_user
from .services import app_services, get_db, services

TEMPLATES = {"upload": "upload.html", "gallery": "gallery.html", "job": "job.html", "shared": "shared.html"}


def _render(page: str, status: int = 200, **context):
    settings = services().settings
    context = {
        "weights_missing": settings.weights_missing,
        "job_id": None,
        "share_token": None,
        "og_image_url": None,
        "og_title": "maskweb: instance segmentation",
        **context,
    }
    try:
        return render_template(TEMPLATES[page], **context), status
    except TemplateNotFound:
        notice = f"<p>{escape(context['weights_missing'])}</p>" if context["weights_missing"] else ""
        body = (
            "<!doctype html><meta charset=utf-8><title>maskweb</title>"
            f"<h1>maskweb</h1>{notice}"
            f"<p>The frontend page {escape(TEMPLATES[page])} is not installed under {escape(str(settings.frontend_dir))}; "
            "the API is at <a href=/api/openapi.json>/api/openapi.json</a>.</p>"
        )
        return body, status


bp = Blueprint("pages", __name__)


@bp.record_once
def _templates(state) -> None:
    """The app's templates are the frontend's pages (``<frontend_dir>/pages``)."""
    frontend_dir = app_services(state.app).settings.frontend_dir
    state.app.jinja_loader = ChoiceLoader([FileSystemLoader(str(frontend_dir / "pages"))])


@bp.get("/")
def upload_page():
    require_user(get_db())
    return _render("upload")


@bp.get("/gallery")
def gallery_page():
    require_user(get_db())
    return _render("gallery")


@bp.get("/jobs/<job_id>")
def job_page(job_id: str):
    require_user(get_db())
    return _render("job", job_id=job_id)


@bp.get("/s/<token>")
def shared_page(token: str):
    job = repo.shared_job(get_db(), token)
    if job is None:
        return _render(
            "shared",
            status=404,
            share_token=None,
            og_title="This share link was revoked or never existed",
        )
    return _render(
        "shared",
        share_token=token,
        og_image_url=f"{request.url_root.rstrip('/')}/api/shared/{token}/thumbnail",
        og_title=f"maskweb: {job.filename}" if job.filename else "maskweb: a shared segmentation",
    )


@bp.get("/assets/<path:path>")
def assets(path: str):
    return send_from_directory(services().settings.frontend_dir / "src", path, max_age=0)


@bp.get("/vendor/<path:path>")
def vendor(path: str):
    return send_from_directory(services().settings.frontend_dir / "vendor", path, max_age=3600)
