"""JOBCAST_CORS_ORIGINS: which web pages on other origins may call the API and follow jobs.

Off by default (no header is sent, a browser refuses every cross-origin call). On, Starlette's
CORSMiddleware answers preflights itself, before any route or key check (a preflight carries no
key), and adds `Access-Control-Allow-Origin` to every answer for an origin listed, errors
included (a 401, 404, 413 or 429 is readable by the page, so it can say why). Credentials
(cookies, TLS client certificates) are never allowed: jobcast reads no cookie, and a key or
read token travels in `Authorization` or `?token=`, which need none.
"""

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

ANY_ORIGIN = "*"

METHODS = ("GET", "POST", "DELETE")
"""Every method the API has (a preflight for any other is refused)."""

REQUEST_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID")
"""What a page may send beyond the safelisted ones: the key or read token, a JSON body, the
idempotency key, and where a stream resumes (browsers send Last-Event-ID on a reconnect)."""

EXPOSED_HEADERS = ("Retry-After", "WWW-Authenticate")
"""What a page may read of an answer beyond the safelisted ones (a 429's or 503's wait)."""

MAX_AGE_SECONDS = 600
"""How long a browser may reuse a preflight's answer."""

DEFAULT_PORTS = {"http": 80, "https": 443}

_LABEL = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"
_HOST_AND_PORT = re.compile(rf"({_LABEL}(\.{_LABEL})*|\[[0-9a-f:.]+\])(:[0-9]{{1,5}})?")
"""A host (a DNS name, an IPv4 or a bracketed IPv6 address) and a port, lowercase."""


class OriginError(ValueError):
    """A JOBCAST_CORS_ORIGINS entry that no browser would ever send as an Origin."""


def allowed_origins(values: Iterable[str]) -> list[str]:
    """The entries of JOBCAST_CORS_ORIGINS, each checked (OriginError), without repeats: a
    lone `*`, or origins spelled exactly as a browser sends them."""
    origins = list(dict.fromkeys(value.strip() for value in values if value.strip()))
    if ANY_ORIGIN in origins and len(origins) > 1:
        raise OriginError("JOBCAST_CORS_ORIGINS: `*` (any page) stands alone, or list origins")
    for origin in origins:
        if origin != ANY_ORIGIN:
            check_origin(origin)
    return origins


def check_origin(value: str) -> None:
    """OriginError unless `value` is `scheme://host[:port]` as a browser serializes it."""
    example = "e.g. https://app.example.com or http://localhost:5173"
    if not value.isascii():
        raise OriginError(
            f"JOBCAST_CORS_ORIGINS: {value!r} is not ASCII: write an international host name "
            "in punycode (xn--...), as browsers send it"
        )
    if not value.isprintable():
        raise OriginError(f"JOBCAST_CORS_ORIGINS: {value!r} has a control character")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise OriginError(f"JOBCAST_CORS_ORIGINS: {value!r} is not an origin ({exc})") from exc
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise OriginError(
            f"JOBCAST_CORS_ORIGINS: {value!r} is not an http:// or https:// origin ({example})"
        )
    if "*" in value:
        raise OriginError(
            f"JOBCAST_CORS_ORIGINS: {value!r} has a wildcard: list each origin exactly, or `*` "
            "alone for any page"
        )
    canonical = f"{parts.scheme}://{parts.netloc.lower()}"
    if port == DEFAULT_PORTS[parts.scheme]:
        canonical = canonical.rsplit(":", 1)[0]
    if parts.username is not None or parts.password is not None:
        raise OriginError(f"JOBCAST_CORS_ORIGINS: {value!r} has a user name: an origin has none")
    if value != canonical:
        raise OriginError(
            f"JOBCAST_CORS_ORIGINS: {value!r} is not spelled as a browser sends its Origin "
            f"(scheme://host[:port], lowercase, no path, no default port): write {canonical!r}"
        )
    if not _HOST_AND_PORT.fullmatch(parts.netloc):
        raise OriginError(f"JOBCAST_CORS_ORIGINS: {value!r} has no valid host name ({example})")


def cors_middleware(origins: list[str]) -> list[Middleware]:
    """The gateway's CORS layer for `origins` (checked by `allowed_origins`); none if empty."""
    if not origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=METHODS,
            allow_headers=REQUEST_HEADERS,
            # NOTE: never: no cookie is read, and with `*` a browser would refuse it anyway.
            allow_credentials=False,
            expose_headers=EXPOSED_HEADERS,
            max_age=MAX_AGE_SECONDS,
        )
    ]
