"""GET /client.js and /client.d.ts: the same bytes for everyone, cacheable, importable from any
page (they hold no job; what a page may call is JOBCAST_CORS_ORIGINS's to say)."""

import hashlib
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import Response

FILES = {
    "client.js": "text/javascript; charset=utf-8",
    "client.d.ts": "application/typescript; charset=utf-8",
}

CACHE_SECONDS = 3600
"""How long a browser or proxy may use its copy before asking again (with its ETag)."""


def _headers(body: bytes) -> dict[str, str]:
    return {
        "ETag": '"' + hashlib.sha256(body).hexdigest()[:32] + '"',
        "Cache-Control": f"public, max-age={CACHE_SECONDS}",
        "X-Content-Type-Options": "nosniff",
        # NOTE: a module script is fetched in CORS mode: without this a page on another origin
        # could not import it. Public code, the same for all, so any page may load it; a listed
        # origin gets its own name instead (JOBCAST_CORS_ORIGINS).
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
    }


def router() -> APIRouter:
    """The two files, read once, each with an ETag (304 when a browser's copy is current)."""
    routes = APIRouter(include_in_schema=False)
    files = {name: resources.files(__package__).joinpath(name).read_bytes() for name in FILES}

    def serve(name: str, if_none_match: str | None) -> Response:
        body = files[name]
        headers = _headers(body)
        if name == "client.js":
            headers["X-TypeScript-Types"] = "./client.d.ts"  # Deno and esm.sh read this
        if if_none_match is not None and headers["ETag"] in {
            tag.strip().removeprefix("W/") for tag in if_none_match.split(",")
        }:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=FILES[name], headers=headers)

    @routes.get("/client.js")
    async def client_js(if_none_match: Annotated[str | None, Header()] = None) -> Response:
        return serve("client.js", if_none_match)

    @routes.get("/client.d.ts")
    async def client_types(if_none_match: Annotated[str | None, Header()] = None) -> Response:
        return serve("client.d.ts", if_none_match)

    return routes
