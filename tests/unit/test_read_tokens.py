"""Read tokens: what a holder of one can read, and what a changed or stale one reads (nothing)."""

import base64
import json

import pytest

from contracts.read_tokens import (
    MAX_TOKEN_CHARS,
    ReadTokens,
    derive_token_key,
    ranges_of,
)

NOW = 1_800_000_000
TOKENS = ReadTokens(derive_token_key("the signing key"))


def test_a_token_reads_its_offsets_of_its_owner_only() -> None:
    scope = TOKENS.verify(TOKENS.mint("alice", expires=NOW + 60, offsets=[7, 8, 12]), now=NOW)
    assert scope is not None
    assert scope.offsets() == {7, 8, 12}
    assert scope.allows(7, owner="alice")
    assert scope.allows(12, owner="alice")
    assert not scope.allows(9, owner="alice")  # another offset
    assert not scope.allows(7, owner="bob")  # the offset, someone else's job
    assert not scope.allows(7, owner=None)  # a job scheduled with auth off


def test_a_batch_token_reads_the_owners_jobs_tagged_with_the_batch() -> None:
    scope = TOKENS.verify(TOKENS.mint("alice", expires=NOW + 60, batch="nightly"), now=NOW)
    assert scope is not None
    assert scope.allows(3, owner="alice", tags=["x", "batch:nightly"])
    assert not scope.allows(3, owner="alice", tags=["batch:other"])
    assert not scope.allows(3, owner="bob", tags=["batch:nightly"])


def test_an_expired_token_reads_nothing() -> None:
    token = TOKENS.mint("alice", expires=NOW + 60, offsets=[7])
    assert TOKENS.verify(token, now=NOW + 59) is not None
    assert TOKENS.verify(token, now=NOW + 60) is None


def test_a_token_with_any_one_character_changed_reads_nothing() -> None:
    token = TOKENS.mint("alice", expires=NOW + 60, offsets=[7])
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for index in range(len("jcr_"), len(token)):
        if token[index] == ".":
            continue
        for other in (alphabet[(alphabet.index(token[index]) + 1) % 64], "=", "!"):
            changed = token[:index] + other + token[index + 1 :]
            assert TOKENS.verify(changed, now=NOW) is None, (index, other)


def test_a_payload_rewritten_to_another_offset_reads_nothing() -> None:
    token = TOKENS.mint("alice", expires=NOW + 60, offsets=[7])
    _, mac = token.removeprefix("jcr_").split(".")
    forged = {"o": "alice", "e": NOW + 60, "r": [[0, 1000]]}
    text = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    assert TOKENS.verify(f"jcr_{text}.{mac}", now=NOW) is None


def test_another_keys_token_reads_nothing() -> None:
    other = ReadTokens(derive_token_key("another signing key"))
    assert TOKENS.verify(other.mint("alice", expires=NOW + 60, offsets=[7]), now=NOW) is None


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "jcr_",
        "jcr_.",
        "jcr_abc",
        "jcr_abc.def",
        "jk_abc.def",
        "jcr_é.é",
        "jcr_é.AAAA",  # a mac in base64url, a payload that is not ASCII (raised before)
        "x" * 100_000,
    ],
)
def test_junk_is_no_token(junk: str) -> None:
    assert TOKENS.verify(junk, now=NOW) is None


def test_a_token_too_long_is_refused_unread() -> None:
    token = TOKENS.mint("alice", expires=NOW + 60, offsets=list(range(0, 2000, 2)))
    assert len(token) <= MAX_TOKEN_CHARS  # a batch of 1,000 scattered offsets still fits
    assert TOKENS.verify(token + "A" * MAX_TOKEN_CHARS, now=NOW) is None


def test_the_token_key_is_not_the_signing_key() -> None:
    assert derive_token_key("k") != b"k"
    assert len(derive_token_key("k")) == 32


def test_consecutive_offsets_are_one_range() -> None:
    assert ranges_of([5, 3, 4, 9, 9]) == [(3, 5), (9, 9)]


def test_a_token_names_offsets_or_a_batch() -> None:
    with pytest.raises(ValueError, match="offsets or a batch"):
        TOKENS.mint("alice", expires=NOW, offsets=[1], batch="b")
    with pytest.raises(ValueError, match="offsets or a batch"):
        TOKENS.mint("alice", expires=NOW)
    with pytest.raises(ValueError, match="ranges"):
        TOKENS.mint("alice", expires=NOW, offsets=[])
