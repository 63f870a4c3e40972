"""The latency histogram: percentiles within the bucket error, min/max/avg, clamping."""

from __future__ import annotations

import random

import pytest

from runtime._stats import Histogram


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentiles_are_within_the_bucket_error_of_the_exact_ones(seed: int) -> None:
    rng = random.Random(seed)
    values = [int(rng.lognormvariate(10, 1.5)) for _ in range(20_000)] + list(range(40))
    h = Histogram()
    for v in values:
        h.record(v)
    ordered = sorted(values)
    for q in (0.5, 0.9, 0.99, 0.999):
        exact = ordered[max(0, int(q * len(ordered) + 0.999999) - 1)]
        got = h.percentile(q)
        assert exact <= got <= max(exact * 1.032, exact + 1), (q, exact, got)
    assert (h.count, h.min, h.max, h.total) == (len(values), 0, max(values), sum(values))


def test_small_values_are_exact_and_negative_ones_count_as_zero() -> None:
    h = Histogram()
    for v in (-5, 0, 3, 31, 32, 33):
        h.record(v)
    assert h.min == 0 and h.max == 33
    assert [h.percentile(k / 6) for k in range(1, 7)] == [0, 0, 3, 31, 32, 33]
    h.reset()
    assert h.count == 0 and h.percentile(0.5) == 0
