"""Statistics and histograms never fail: any finite or non-finite input, in both dtypes."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from initsim.engine.stats import histogram, std_of, summarize

DTYPES = (np.float32, np.float64)


def _edge_values(dtype) -> list[float]:
    info = np.finfo(dtype)
    tiny, smallest = float(info.smallest_normal), float(info.smallest_subnormal)
    return [0.0, -0.0, 1.0, -1.0, float(info.max), -float(info.max), tiny, -tiny, smallest, -smallest,
            3 * smallest, float(info.max) / 3, -2.4e38 if dtype is np.float32 else -1.7e308,
            math.inf, -math.inf, math.nan]


@st.composite
def arrays(draw):
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12))
    elements = st.one_of(st.sampled_from(_edge_values(dtype)),
                         st.floats(width=32 if dtype is np.float32 else 64))
    return draw(hnp.arrays(dtype, shape, elements=elements))


def _check(array: np.ndarray, bins: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or invalid-value warnings either
        stats = summarize(array, bins)
        spare = summarize(array, bins, np.empty_like(array))
    finite = array[np.isfinite(array)].astype(np.float64)
    assert stats.nonfinite == array.size - finite.size == spare.nonfinite
    edges = stats.histogram.edges
    assert edges.shape == (bins + 1,) and np.all(np.isfinite(edges)) and np.all(np.diff(edges) > 0)
    assert stats.histogram.counts.shape == (bins,) and stats.histogram.counts.min() >= 0
    if finite.size == 0:
        assert math.isnan(stats.mean) and stats.histogram.total == 0
        return
    assert stats.histogram.total >= 1
    assert stats.min == finite.min() and stats.max == finite.max()
    assert edges[0] <= stats.min and stats.max <= edges[-1]
    assert stats.min <= stats.mean <= stats.max or math.isclose(stats.mean, stats.min, rel_tol=1e-6)
    # The std of finite values is finite, and exact to the precision of the dtype (scaled by the
    # largest magnitude, so that the reference cannot overflow either).
    scale = float(np.abs(finite).max()) or 1.0
    with np.errstate(under="ignore"):
        expected = float((finite / scale).std()) * scale
    assert math.isfinite(stats.std) and stats.std >= 0
    tolerance = 1e-5 if array.dtype == np.float32 else 1e-9
    # A std below the dtype's resolution rounds either way: [5e-324, 0] has 2.5e-324.
    resolution = 2 * float(np.finfo(array.dtype).smallest_subnormal)
    assert stats.std == pytest.approx(expected, rel=tolerance, abs=max(tolerance * scale, resolution))


@settings(max_examples=400, deadline=None)
@given(arrays(), st.integers(2, 1024))
def test_summarize_never_fails(array, bins):
    _check(array, bins)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("value", ["max", "-max", "smallest_subnormal", "smallest_normal", 0.0, 3.0,
                                   -2.4e38])
def test_constant_arrays_of_any_magnitude(dtype, value):
    info = np.finfo(dtype)
    number = {"max": info.max, "-max": -info.max, "smallest_subnormal": info.smallest_subnormal,
              "smallest_normal": info.smallest_normal}.get(value, value)
    for shape in ((1, 1), (4, 5)):
        array = np.full(shape, number, dtype=dtype)
        _check(array, 64)
        stats = summarize(array, 64)
        value = float(array[0, 0])
        assert stats.min == stats.max == value
        # The sum of n equal float64 values may round: a relative error of a few ulps at most.
        assert stats.mean == pytest.approx(value, rel=1e-15)
        assert stats.std <= 1e-15 * abs(value)


def test_the_one_value_left_of_a_run_that_overflowed():
    # What a 60-layer net of width 8 can leave on some BLAS kernels: one finite value near the
    # float32 limit among infinities (the bin width of 1 around it was lost: -2.4e38 - 0.5 == -2.4e38).
    array = np.array([[-2.4179561e38, np.inf, -np.inf, np.nan]], dtype=np.float32)
    stats = summarize(array, 64)
    assert stats.nonfinite == 3 and stats.histogram.total == 1 and stats.std == 0


def test_histogram_of_values_spread_over_the_float64_range():
    values = np.array([-np.finfo(np.float64).max, 0.0, np.finfo(np.float64).max])
    h = histogram(values, float(values.min()), float(values.max()), 4)
    assert list(h.counts) == [1, 0, 1, 1] and np.all(np.isfinite(h.edges))


def test_a_std_below_the_resolution_rounds_to_a_neighbour():
    _check(np.array([[5e-324, 0.0]]), 2)  # found by the fuzz on another machine


def test_std_of_at_the_limits():
    big = np.array([[1.7e308, -1.7e308]])
    assert std_of(big) == pytest.approx(1.7e308)
    assert std_of(np.full((3, 3), 3e38, dtype=np.float32)) == 0
    assert std_of(np.array([[5e-324, 5e-324]])) == 0
