"""Text a sender chooses (names, idempotency keys): printable, so every ledger stores it.

A NUL is refused by PostgreSQL (TEXT and JSONB), a lone surrogate cannot be encoded as UTF-8 at
all, and control characters in a name or key are never meant: all three are refused at the
contract, with the position of the first one, before anything is stored or echoed.
"""

import re
from typing import Annotated

from pydantic import AfterValidator, Field

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
"""C0 controls, DEL, C1 controls (Unicode category Cc) and surrogates (Cs)."""

IDEMPOTENCY_KEY_LENGTH = 200


def printable(value: str) -> str:
    """`value` unchanged; ValueError if it holds a control character or a lone surrogate."""
    found = _UNPRINTABLE.search(value)
    if found is None:
        return value
    raise ValueError(
        "must not contain control characters or lone surrogates "
        f"(U+{ord(found.group()):04X} at index {found.start()})"
    )


PRINTABLE = AfterValidator(printable)
"""Annotate a `str` with this to refuse control characters and lone surrogates."""

IdempotencyKey = Annotated[str, Field(min_length=1, max_length=IDEMPOTENCY_KEY_LENGTH), PRINTABLE]
"""The `Idempotency-Key` of POST /schedule, or the `message_id` of an AMQP submission."""
