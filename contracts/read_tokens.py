"""Scoped read tokens: `jcr_<payload>.<mac>`, minted by a gateway for a key's own jobs, so a
browser can read those jobs (and nothing else) without holding the key.

The payload (base64url of compact JSON) names the owner, the offsets or the batch it may read,
and when it expires; the mac is HMAC-SHA256 over the payload's base64 text with the token key.
Nothing is stored: any gateway with the same key verifies it, and none can revoke one before it
expires (keep the TTL short; revoking the owner's key ends them, as the owner check fails).
"""

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

from pydantic import Field

from contracts.batches import BatchAccepted
from contracts.messages import MAX_OFFSET, JobAccepted

PREFIX = "jcr_"
"""Every read token starts so: an API key never does, so one bearer header takes either."""

MAX_TOKEN_CHARS = 32 * 1024
"""The longest token read at all: a batch of 1,000 scattered offsets fits; refused unread
beyond (no base64 or JSON work for a hostile megabyte)."""

MAX_RANGES = 1000
"""The most offset ranges one token names (a batch's offsets, run together where consecutive)."""

_CONTEXT = b"jobcast read tokens v1"
"""Derives the token key from JOBCAST_SIGNING_KEY, so a mac over a message body can never be
passed off as a token's, nor the other way round."""


@dataclass(frozen=True)
class ReadScope:
    """What a valid token allows: reading `owner`'s jobs at `ranges` (inclusive) or of `batch`."""

    owner: str
    expires: int
    ranges: tuple[tuple[int, int], ...] = ()
    batch: str | None = None

    def allows(self, offset: int, *, owner: str | None, tags: list[str] | None = None) -> bool:
        """True if the token reads `offset`, a job of `owner` carrying `tags`."""
        if owner != self.owner:
            return False
        if any(lo <= offset <= hi for lo, hi in self.ranges):
            return True
        return self.batch is not None and f"batch:{self.batch}" in (tags or [])

    def offsets(self) -> frozenset[int]:
        """Every offset the token names (empty for a batch token)."""
        return frozenset(o for lo, hi in self.ranges for o in range(lo, hi + 1))


_READ_TOKEN = Field(
    None,
    description="With JOBCAST_AUTH=on only (absent otherwise): a read token for these jobs, "
    "to hand to a browser (GET /messages, /jobs/{offset}, the stream; also as ?token=), "
    "read only, until JOBCAST_READ_TOKEN_TTL has passed.",
    examples=["jcr_eyJvIjoiYWxpY2UiLCJlIjoxNzY0NTAwMDAwfQ.bWFj"],
)


class JobAcceptedWithToken(JobAccepted):
    """POST /schedule's answer: the offset, and with JOBCAST_AUTH=on a read token for it."""

    read_token: str | None = _READ_TOKEN


class BatchAcceptedWithToken(BatchAccepted):
    """POST /schedule/batch's answer: the offsets, and with JOBCAST_AUTH=on a read token for the
    batch (by its name) or for its offsets."""

    read_token: str | None = _READ_TOKEN


def ranges_of(offsets: list[int]) -> list[tuple[int, int]]:
    """`offsets` as sorted inclusive ranges of consecutive numbers."""
    runs: list[tuple[int, int]] = []
    for offset in sorted(set(offsets)):
        if runs and runs[-1][1] == offset - 1:
            runs[-1] = (runs[-1][0], offset)
        else:
            runs.append((offset, offset))
    return runs


def derive_token_key(signing_key: str) -> bytes:
    """The read tokens' key, derived from the signing key with a context of its own."""
    return hmac.new(signing_key.encode(), _CONTEXT, hashlib.sha256).digest()


class ReadTokens:
    """Mints and verifies read tokens with one key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def mint(
        self,
        owner: str,
        *,
        expires: int,
        offsets: list[int] | None = None,
        batch: str | None = None,
    ) -> str:
        """A token for `owner`'s `offsets` or `batch` (one of them), valid until `expires`
        (seconds since the epoch)."""
        if (offsets is None) == (batch is None):
            raise ValueError("a read token names offsets or a batch, not both, not neither")
        payload: dict[str, object] = {"o": owner, "e": expires}
        if offsets is not None:
            runs = ranges_of(offsets)
            if not runs or len(runs) > MAX_RANGES:
                raise ValueError(f"a read token names 1 to {MAX_RANGES} ranges of offsets")
            payload["r"] = [list(run) for run in runs]
        else:
            payload["b"] = batch
        text = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{PREFIX}{text}.{_b64(self._mac(text))}"

    def verify(self, token: str, *, now: float) -> ReadScope | None:
        """The scope of `token` if this key signed it and it has not expired; None otherwise
        (malformed, tampered, another key's, expired: the caller cannot tell which)."""
        if len(token) > MAX_TOKEN_CHARS or not token.startswith(PREFIX):
            return None
        text, _, mac = token[len(PREFIX) :].partition(".")
        if not text.isascii():  # NOTE: its mac is of its ASCII bytes; anything else raised
            return None
        try:
            given = _unb64(mac)
        except ValueError:
            return None
        # NOTE: the mac is checked before the payload is parsed: nothing forged is read.
        if not hmac.compare_digest(self._mac(text), given):
            return None
        try:
            scope = _scope(json.loads(_unb64(text)))
        except (ValueError, TypeError, KeyError):
            return None
        if scope is None or scope.expires <= now:
            return None
        return scope

    def _mac(self, text: str) -> bytes:
        return hmac.new(self._key, text.encode("ascii"), hashlib.sha256).digest()


def _scope(data: object) -> ReadScope | None:
    """A payload this module wrote, checked anyway (a leaked key must not crash a reader)."""
    if not isinstance(data, dict):
        return None
    owner, expires = data["o"], data["e"]
    if not isinstance(owner, str) or type(expires) is not int:
        return None
    if "b" in data:
        batch = data["b"]
        return ReadScope(owner, expires, batch=batch) if isinstance(batch, str) else None
    runs = []
    for run in data["r"]:
        lo, hi = run
        if not (type(lo) is int and type(hi) is int and 0 <= lo <= hi <= MAX_OFFSET):
            return None
        runs.append((lo, hi))
    return ReadScope(owner, expires, ranges=tuple(runs))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """base64url without padding, in its one canonical spelling; ValueError otherwise."""
    if not text or not text.isascii():
        raise ValueError("not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc
    # NOTE: the decoder skips stray characters and ignores a last character's spare bits, so
    # another spelling could decode to the same mac: only the canonical one is accepted.
    if _b64(data) != text:
        raise ValueError("not canonical base64url")
    return data
