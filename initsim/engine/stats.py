"""Per-layer statistics and histograms, cheap next to a layer's matrix multiply.

Mean, std, min, max and the non-finite count are exact over the whole array. Histograms count a
fixed subsample of at most ``HIST_SAMPLE`` values (bin frequencies within ~1e-3 of the full array's)
on ``bins`` equal bins spanning the finite range, with np.bincount on precomputed bin indices.
Non-finite values (inf, NaN) are counted apart and never reach the histogram, so its edges stay finite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

HIST_SAMPLE = 65536


@dataclass(frozen=True)
class Histogram:
    edges: np.ndarray  # bins + 1 finite, increasing values
    counts: np.ndarray  # int64 counts of the subsample in each bin

    @cached_property
    def total(self) -> int:
        """The values counted (a view asks for it of every layer at every paint)."""
        return int(self.counts.sum())

    def to_dict(self) -> dict:
        return {"edges": [float(e) for e in self.edges], "counts": [int(c) for c in self.counts]}


@dataclass(frozen=True)
class Stats:
    mean: float
    std: float
    min: float
    max: float
    nonfinite: int  # count of inf and NaN values; the other fields describe the finite ones
    histogram: Histogram


def sample_stride(size: int, row: int) -> int:
    """A stride giving at most HIST_SAMPLE values that still visits every column of a row-major
    (batch, row) array (a stride sharing a factor with ``row`` would skip whole units)."""
    stride = max(1, -(-size // HIST_SAMPLE))
    while math.gcd(stride, row) != 1:
        stride += 1
    return stride


def histogram_span(low: float, high: float, bins: int) -> tuple[float, float]:
    """A finite range holding [low, high] whose ``bins`` equal bins have distinct edges.

    A constant array gets one bin of width 1 around its value, or a relative width of 2**-10 where
    1 is below the value's resolution (2.4e38 - 0.5 == 2.4e38); a range of a few ulps (subnormals)
    is widened to 4 ulps a bin; nothing passes the largest float64.
    """
    largest = float(np.finfo(np.float64).max)
    magnitude = max(abs(low), abs(high))
    least = 4.0 * bins * max(magnitude * 2.0**-52, 5e-324)  # 4 ulps (at least) a bin
    if not high - low >= least:
        half = max(0.5 if high == low and least <= 1.0 else 0.5 * least, magnitude * 2.0**-10 * (high == low))
        middle = 0.5 * low + 0.5 * high
        low, high = max(middle - half, -largest), min(middle + half, largest)
        if high - low < 2 * half:  # cut by the float64 limit: keep the width on the other side
            low, high = (high - 2 * half, high) if high == largest else (low, low + 2 * half)
    return low, high


def histogram(sample: np.ndarray, low: float, high: float, bins: int) -> Histogram:
    """Counts of the finite ``sample`` on ``bins`` equal bins over [low, high] (widened as
    ``histogram_span`` says when it is empty or too narrow to split)."""
    low, high = histogram_span(low, high, bins)
    values = sample.astype(np.float64, copy=False)
    # Halved when the width overflows (values near +-float64 max); exact powers of two either way.
    scale = 1.0 if math.isfinite(high - low) else 0.5
    with np.errstate(under="ignore"):
        fraction = (values * scale - low * scale) / (high * scale - low * scale)
        steps = np.arange(bins + 1) / bins
        edges = low * (1.0 - steps) + high * steps  # a mean of two, so no value can overflow
    np.clip(edges, low, high, out=edges)
    index = (fraction * bins).astype(np.intp)
    np.clip(index, 0, bins - 1, out=index)
    return Histogram(edges=edges, counts=np.bincount(index, minlength=bins).astype(np.int64))


_CANCELLATION = {np.float32: 1e-2, np.float64: 1e-6}  # variance / mean square where the sums lose it


def std_of(array: np.ndarray) -> float:
    """The population std of a finite array, with BLAS doing the square sum."""
    flat = array.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        mean = float(np.add.reduce(flat, dtype=np.float64)) / flat.size
        square_mean = float(np.dot(flat, flat)) / flat.size
        variance = square_mean - mean * mean
    # Overflow, or cancellation: a float32 dot product's rounding (~1e-6 of the square sum) would
    # give a constant array a std of ~1e-3 of its value.
    if not math.isfinite(variance) or variance < _CANCELLATION[flat.dtype.type] * square_mean:
        scale = float(np.abs(flat).max()) or 1.0  # float64 near its limit overflows the squares
        with np.errstate(under="ignore"):
            return float((flat / scale).std(dtype=np.float64)) * scale
    return math.sqrt(variance)


def summarize(array: np.ndarray, bins: int, scratch: np.ndarray | None = None) -> Stats:
    """Exact moments and extremes of ``array`` (2-D, row-major) and a subsampled histogram.

    ``scratch``, a buffer of the same size, avoids allocating one for the centred values.
    """
    flat = array.reshape(-1)
    n = flat.size
    stride = sample_stride(n, array.shape[-1])
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(np.add.reduce(flat, dtype=np.float64))
        finite = math.isfinite(total)
        if finite:
            low, high = float(flat.min()), float(flat.max())
            finite = math.isfinite(low) and math.isfinite(high)
        if finite:
            mean = total / n
            out = None if scratch is None else scratch.reshape(-1)
            # Values far from 1 are scaled by a power of two (exact) first: their squares would
            # underflow (a vanished signal's std read 0) or overflow.
            limit = np.finfo(flat.dtype).maxexp - 2  # the scale itself stays finite in the dtype
            exponent = min(max(math.frexp(max(abs(low), abs(high)))[1], -limit), limit)
            scale = 1.0 if abs(exponent) <= 30 else math.ldexp(1.0, -exponent)
            if scale == 1.0:
                centred = np.subtract(flat, flat.dtype.type(mean), out=out)
            else:
                centred = np.multiply(flat, flat.dtype.type(scale), out=out)
                centred -= flat.dtype.type(mean * scale)
            square_sum = float(np.dot(centred, centred))
            if math.isfinite(square_sum):
                std = math.sqrt(square_sum / n) / scale
                sample = flat[::stride][:HIST_SAMPLE]
                return Stats(mean, std, low, high, 0, histogram(sample, low, high, bins))
    # Values near the dtype's limit overflow the sums, or some are inf or NaN.
    return _summarize_extreme(flat, stride, bins)


def _summarize_extreme(flat: np.ndarray, stride: int, bins: int) -> Stats:
    """The rare path: some values are inf or NaN, or the sums overflow. Statistics of the finite
    values, in float64 over their largest magnitude."""
    mask = np.isfinite(flat)
    kept = flat[mask].astype(np.float64)
    nonfinite = int(flat.size - kept.size)
    sample = flat[::stride][:HIST_SAMPLE]
    sample = sample[np.isfinite(sample)]
    if kept.size == 0:
        nan = math.nan
        return Stats(nan, nan, nan, nan, nonfinite, histogram(sample, 0.0, 0.0, bins))
    low, high = float(kept.min()), float(kept.max())
    scale = max(abs(low), abs(high)) or 1.0
    with np.errstate(under="ignore"):
        unit = kept / scale
        mean = float(unit.mean()) * scale
        std = float(unit.std()) * scale
    return Stats(mean, std, low, high, nonfinite, histogram(sample, low, high, bins))


# The batch's first samples that `sample_geometry` reads: 8,128 pairs estimate the mean cosine to
# ~1e-3, at a quarter of `summarize`'s cost for a batch of 512.
GEOMETRY_SAMPLES = 128
_GEOMETRY_ROWS = 64  # samples converted to float64 at a time: a few hundred KB, whatever the width


@dataclass(frozen=True)
class SampleGeometry:
    """How a layer's samples and units relate, over the batch's first `GEOMETRY_SAMPLES` samples
    (rows: samples, columns: units).

    ``correlation``: the mean cosine similarity of two different samples' vectors, the measured
    mean-field c^l = q_ab / q_aa. Near 1, the samples have become nearly the same vector.
    ``unit_spread``: the spread of the units' values within a sample, sqrt(sum of the rows'
    variances across units / sum of their mean squares); 0 when every unit of a sample has the same
    value (identical units: a zeros or constant init), about 1 when the units are independent.
    Either is NaN where it is undefined: a non-finite value, or fewer than two nonzero samples for
    the correlation.
    """

    correlation: float
    unit_spread: float


def sample_geometry(array: np.ndarray) -> SampleGeometry:
    """`SampleGeometry` of a 2-D array, in O(size) work: the mean cosine over the m(m-1) ordered
    pairs of m unit vectors r_i is (|sum r_i|^2 - m) / (m (m - 1)), with no m x m Gram matrix."""
    read = array[:GEOMETRY_SAMPLES]
    with np.errstate(over="ignore", invalid="ignore"):
        largest = float(np.abs(read).max(initial=0.0))
    if not math.isfinite(largest):
        return SampleGeometry(math.nan, math.nan)
    # One power of two for all: float32's extremes (1e-40, 3e38) stay exact and finite in float64's
    # squares, and neither the cosines nor the ratio of sums change.
    exponent = -math.frexp(largest)[1] if largest > 0 else 0
    direction_sum = np.zeros(array.shape[1])
    samples = 0  # nonzero rows
    spread = square = 0.0
    for start in range(0, len(read), _GEOMETRY_ROWS):
        rows = np.ldexp(read[start:start + _GEOMETRY_ROWS], exponent, dtype=np.float64)  # no 2**1074 on the way
        norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))
        nonzero = norms > 0
        direction_sum += (rows[nonzero] / norms[nonzero, None]).sum(axis=0)
        samples += int(np.count_nonzero(nonzero))
        spread += float(rows.var(axis=1).sum())
        square += float(np.square(norms).sum()) / array.shape[1]
    correlation = ((float(direction_sum @ direction_sum) - samples) / (samples * (samples - 1))
                   if samples >= 2 else math.nan)
    return SampleGeometry(correlation, math.sqrt(spread / square) if square > 0 else 0.0)
