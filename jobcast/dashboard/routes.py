"""GET / (the page), GET /dashboard/{asset} (its scripts and styles), GET /pipelines."""

import logging
from collections.abc import Sequence
from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.params import Depends
from fastapi.responses import Response

from consumer.builtin import default_fn
from consumer.pipelines import load_registry
from jobcast.settings import Settings

logger = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
"""Only this gateway's own files run or style the page: no inline script or style, no other
origin; a value from a job that slipped into the page as markup could not run."""

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # NOTE: no-cache, not no-store: a browser revalidates, so a new version shows at once.
    "Cache-Control": "no-cache",
}


def _assets() -> dict[str, tuple[bytes, str]]:
    """Every file of static/, by name, with its media type (read once: a few kilobytes)."""
    found: dict[str, tuple[bytes, str]] = {}
    for entry in resources.files(__package__).joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in MEDIA_TYPES:
            found[entry.name] = (entry.read_bytes(), MEDIA_TYPES[suffix])
    return found


def pipeline_names(settings: Settings) -> list[str]:
    """The pipelines of this process's JOBCAST_PIPELINES and the built-in ones, by name."""
    # NOTE: the gateway imports the same modules a worker would (names only; it runs no
    # step): set JOBCAST_PIPELINES on a gateway as on its workers for the form to offer them.
    builtin = [default_fn(step_seconds=settings.step_seconds)]
    try:
        return load_registry(settings.pipelines, builtin=builtin).names()
    except ImportError as exc:
        # NOTE: a gateway may lack what its workers' pipelines import; it still serves,
        # and a worker that cannot import them fails on its own start.
        logger.warning(
            "JOBCAST_PIPELINES cannot be imported by this gateway (%s): GET /pipelines lists "
            "the built-in pipelines only",
            exc,
        )
        return [pipeline.name for pipeline in builtin]


def router(pipelines: Sequence[str], guard: Sequence[Depends] = ()) -> APIRouter:
    """The page and its files (open to anyone: they hold no job), and GET /pipelines answering
    `pipelines` (behind `guard`: an API key with JOBCAST_AUTH=on)."""
    routes = APIRouter()
    assets = _assets()
    names = sorted(pipelines)

    def serve(name: str) -> Response:
        if name not in assets:
            raise HTTPException(404, "Not found")
        body, media_type = assets[name]
        return Response(body, media_type=media_type, headers=HEADERS)

    @routes.get("/", include_in_schema=False)
    async def dashboard() -> Response:
        return serve("index.html")

    @routes.get("/dashboard/{name}", include_in_schema=False)
    async def dashboard_asset(name: str) -> Response:
        return serve(name)

    @routes.get("/pipelines", response_model=list[str], tags=["jobs"], dependencies=list(guard))
    async def list_pipelines() -> list[str]:
        """The pipeline names (`fn`) this gateway knows: the built-in ones and those of its
        JOBCAST_PIPELINES, sorted."""
        return names

    return routes
