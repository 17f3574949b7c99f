"""Rate limits per key, on a clock the test moves."""

import pytest

from producer import rate_limit
from producer.rate_limit import RateLimit, RateLimitedError, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_setting_reads_rate_and_burst() -> None:
    assert RateLimit.parse("20/s,burst=40") == RateLimit(20.0, 40)
    assert RateLimit.parse(" 0.5 / s , burst = 3 ") == RateLimit(0.5, 3)
    assert RateLimit.parse("20/s") == RateLimit(20.0, 20)
    assert RateLimit.parse("0.2/s") == RateLimit(0.2, 1)
    assert RateLimit.parse(None) is None
    assert RateLimit.parse("off") is None
    assert RateLimit.parse("") is None


@pytest.mark.parametrize("text", ["20", "20/m", "-1/s", "0/s", "20/s,burst=0", "x/s", "20/s,b=2"])
def test_a_setting_that_is_no_rate_limit_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        RateLimit.parse(text)


def test_after_the_burst_a_key_waits_then_recovers() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimit(2.0, 4), clock=clock)
    assert [limiter.take("alice") for _ in range(4)] == [0, 0, 0, 0]
    assert limiter.take("alice") == 1  # half a second away: said as 1 s, never 0
    clock.now += 0.5
    assert limiter.take("alice") == 0
    assert limiter.take("alice") == 1
    clock.now += 10
    assert [limiter.take("alice") for _ in range(4)] == [0, 0, 0, 0]  # no more than the burst
    assert limiter.take("alice") == 1


def test_retry_after_is_whole_seconds_until_enough_has_come_back() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimit(0.25, 1), clock=clock)
    assert limiter.take("alice") == 0
    assert limiter.take("alice") == 4
    clock.now += 3.9
    assert limiter.take("alice") == 1
    clock.now += 0.1
    assert limiter.take("alice") == 0


def test_other_keys_are_unaffected() -> None:
    limiter = RateLimiter(RateLimit(1.0, 2), clock=Clock())
    assert [limiter.take("alice") for _ in range(3)] == [0, 0, 1]
    assert [limiter.take("bob") for _ in range(3)] == [0, 0, 1]
    assert limiter.take(None) == 0


def test_a_batch_costs_its_jobs_and_one_beyond_the_burst_passes_on_a_full_bucket() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimit(10.0, 20), clock=clock)
    assert limiter.take("alice", cost=15) == 0
    assert limiter.take("alice", cost=15) == 1
    clock.now += 5
    assert limiter.take("alice", cost=1000) == 0
    assert limiter.take("alice") == 1


def test_the_buckets_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rate_limit, "MAX_BUCKETS", 10)
    clock = Clock()
    limiter = RateLimiter(RateLimit(1.0, 1), clock=clock)
    for n in range(50):
        assert limiter.take(f"key-{n}") == 0
    assert len(limiter._buckets) <= 10
    assert limiter.take("key-49") == 1  # the newest is still remembered


def test_check_raises_with_the_wait_and_counts_it() -> None:
    counted: list[None] = []
    limiter = RateLimiter(RateLimit(1.0, 1), clock=Clock(), limited=lambda: counted.append(None))
    limiter.check("alice")
    with pytest.raises(RateLimitedError, match="retry in 1 s") as refused:
        limiter.check("alice")
    assert refused.value.retry_after == 1
    assert len(counted) == 1
