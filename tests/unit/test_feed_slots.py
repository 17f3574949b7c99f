"""A key holds at most JOBCAST_MAX_FEEDS_PER_KEY feeds at once; each comes back when its
stream ends, is closed, or is dropped without ever being read."""

import gc
from collections.abc import AsyncIterator

import pytest

from contracts.principals import ANYONE, Principal
from query.feed_slots import FeedSlots, TooManyFeedsError

ALICE = Principal(name="alice", admin=False)
BOB = Principal(name="bob", admin=True)


async def events(n: int = 2) -> AsyncIterator[int]:
    for i in range(n):
        yield i


async def test_a_key_holds_at_most_its_feeds_and_another_key_is_not_held_back():
    slots = FeedSlots(per_key=2)
    held = [slots.hold(ALICE, events()), slots.hold(ALICE, events())]
    with pytest.raises(TooManyFeedsError, match=r"at most 2 at once \(JOBCAST_MAX_FEEDS_PER_KEY\)"):
        slots.hold(ALICE, events())
    held.append(slots.hold(BOB, events()))
    assert (slots.open_for(ALICE), slots.open_for(BOB)) == (2, 1)


async def test_a_feed_comes_back_when_its_stream_ends_or_is_closed():
    slots = FeedSlots(per_key=1)
    assert [event async for event in slots.hold(ALICE, events())] == [0, 1]
    assert slots.open_for(ALICE) == 0
    feed = slots.hold(ALICE, events(10))
    assert await anext(feed) == 0
    await feed.aclose()  # the client went away mid-stream: the server closes the generator
    assert slots.open_for(ALICE) == 0
    slots.hold(ALICE, events())


async def test_a_feed_never_read_comes_back_once_dropped():
    slots = FeedSlots(per_key=1)
    slots.hold(ALICE, events())  # the response was never sent: nothing iterates it
    gc.collect()
    assert slots.open_for(ALICE) == 0


async def test_with_auth_off_feeds_are_not_counted():
    slots = FeedSlots(per_key=1)
    for _ in range(5):
        slots.hold(ANYONE, events())
    assert slots.open_for(ANYONE) == 0
