"""The latency histogram: percentiles within the bucket error, min/max/avg, clamping; the
compiled core (runtime/core/_histogram.pyx) and the pure-Python reference agree per bucket."""

from __future__ import annotations

import random

import pytest

from runtime.core import _stats
from runtime.core._stats import HistogramBase, PyHistogram

IMPLEMENTATIONS: list[type[HistogramBase]] = [PyHistogram]
if _stats.IMPLEMENTATION == "cython":
    IMPLEMENTATIONS.append(_stats.Histogram)


@pytest.fixture(params=IMPLEMENTATIONS, ids=lambda cls: cls.__name__)
def histogram(request: pytest.FixtureRequest) -> HistogramBase:
    return request.param()  # type: ignore[no-any-return]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentiles_are_within_the_bucket_error_of_the_exact_ones(
    seed: int, histogram: HistogramBase
) -> None:
    rng = random.Random(seed)
    values = [int(rng.lognormvariate(10, 1.5)) for _ in range(20_000)] + list(range(40))
    h = histogram
    for v in values:
        h.record(v)
    ordered = sorted(values)
    for q in (0.5, 0.9, 0.99, 0.999):
        exact = ordered[max(0, int(q * len(ordered) + 0.999999) - 1)]
        got = h.percentile(q)
        assert exact <= got <= max(exact * 1.032, exact + 1), (q, exact, got)
    assert (h.count, h.min, h.max, h.total) == (len(values), 0, max(values), sum(values))


def test_small_values_are_exact_and_negative_ones_count_as_zero(histogram: HistogramBase) -> None:
    h = histogram
    for v in (-5, 0, 3, 31, 32, 33):
        h.record(v)
    assert h.min == 0 and h.max == 33
    assert [h.percentile(k / 6) for k in range(1, 7)] == [0, 0, 3, 31, 32, 33]
    h.reset()
    assert h.count == 0 and h.percentile(0.5) == 0 and h.min == 0 and h.summary_us()["max"] == 0


def test_the_compiled_core_matches_the_reference_bucket_for_bucket() -> None:
    if _stats.IMPLEMENTATION != "cython":
        pytest.skip("runtime/core/_histogram.pyx not built (no C compiler at install)")
    # every power of two and its neighbours up to 2**62 (the total would pass 2**63: counts
    # only), then random ns values of all sizes up to 2**40 ns (18 minutes)
    edges = [v for k in range(63) for v in ((1 << k) - 1, 1 << k, (1 << k) + 1)]
    rng = random.Random(7)
    values = [rng.randrange(1 << rng.randrange(1, 41)) for _ in range(50_000)]
    for batch, whole in ((edges, False), (values, True)):
        ref, fast = PyHistogram(), _stats.Histogram()
        for v in batch:
            ref.record(v)
            fast.record(v)
        assert fast.counts == ref.counts
        assert (fast.count, fast.min, fast.max) == (ref.count, ref.min, ref.max)
        if whole:
            assert fast.total == ref.total and fast.summary_us() == ref.summary_us()
