"""422 answers that say what is wrong without echoing what was sent.

FastAPI's own 422 repeats each error's `input`: up to the whole body (64 KiB) back to the sender,
and a lone surrogate in it made the answer itself fail (a 500). Here every string of an error
is made encodable and cut short: the sender's (`input`, `loc`) to `ECHO_CHARS` characters, and an
`input` that is not a string (an object, a list) is left out when its JSON is longer than that.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

ECHO_CHARS = 64
"""How much of the sender's text (an input, a field name) a 422 repeats; the rest is "…"."""

OWN_CHARS = 200
"""Bound on jobcast's and pydantic's own words (msg, ctx), which may quote a limit or pattern."""


def short_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """FastAPI's validation errors, each small and safe to encode as JSON."""
    return [_short_error(error) for error in errors]


def _short_error(error: Mapping[str, Any]) -> dict[str, Any]:
    short: dict[str, Any] = {
        "type": error.get("type"),
        "loc": [_text(part) if isinstance(part, str) else part for part in error.get("loc", ())],
        "msg": _text(str(error.get("msg", "")), OWN_CHARS),
    }
    if "input" in error:
        shown = error["input"]
        if isinstance(shown, str):
            short["input"] = _text(shown)
        elif _json_length(shown) <= ECHO_CHARS:
            short["input"] = shown
    if error.get("ctx"):
        short["ctx"] = {key: _context(value) for key, value in error["ctx"].items()}
    return short


def _text(value: str, limit: int = ECHO_CHARS) -> str:
    """At most `limit` characters of `value`, lone surrogates written as `\\udXXX`."""
    cut = value if len(value) <= limit else value[:limit] + "…"
    return cut.encode("utf-8", "backslashreplace").decode("utf-8")


def _context(value: object) -> object:
    """A ctx entry (a limit, a pattern, the error raised) as a number or short text."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    return _text(str(value), OWN_CHARS)


def _json_length(value: object) -> int:
    try:
        return len(orjson.dumps(value))
    except TypeError:  # not JSON at all: never echoed
        return ECHO_CHARS + 1
