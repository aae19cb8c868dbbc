"""The generic rate limiter: a sliding window per key, on a clock the test moves."""
from __future__ import annotations

import pytest

from services.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_hit_allows_limit_per_window_then_says_how_long_to_wait():
    clock = Clock()
    limiter = RateLimiter(3, 60.0, clock)
    assert [limiter.hit("ada") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.hit("ada") == pytest.approx(60.0)
    assert limiter.hit("bob") == 0.0  # keys are apart
    clock.now += 30
    assert limiter.retry_after("ada") == pytest.approx(30.0)
    clock.now += 30
    assert limiter.retry_after("ada") == 0.0 and limiter.hit("ada") == 0.0


def test_record_counts_even_when_over_and_reset_forgets():
    clock = Clock()
    limiter = RateLimiter(2, 10.0, clock)
    for _ in range(5):
        limiter.record("1.2.3.4")
    assert limiter.retry_after("1.2.3.4") > 0
    limiter.reset("1.2.3.4")
    assert limiter.retry_after("1.2.3.4") == 0.0


def test_memory_is_bounded_by_max_keys():
    limiter = RateLimiter(1, 10.0, Clock(), max_keys=3)
    for key in "abcde":
        limiter.record(key)
    assert limiter.retry_after("e") > 0 and limiter.retry_after("a") == 0.0  # the oldest was dropped


def test_bad_limits_are_refused():
    with pytest.raises(ValueError, match="limit >= 1"):
        RateLimiter(0, 1.0)
