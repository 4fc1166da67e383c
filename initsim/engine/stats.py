"""Per-layer statistics and histograms, cheap next to a layer's matrix multiply.

Mean, std, min, max and the non-finite count are exact over the whole array. Histograms count a
fixed subsample of at most ``HIST_SAMPLE`` values (bin frequencies within ~1e-3 of the full array's)
on ``bins`` equal bins spanning the finite range, with np.bincount on precomputed bin indices.
Non-finite values (inf, NaN) are counted apart and never reach the histogram, so its edges stay finite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

HIST_SAMPLE = 65536


@dataclass(frozen=True)
class Histogram:
    edges: np.ndarray  # bins + 1 finite, increasing values
    counts: np.ndarray  # int64 counts of the subsample in each bin

    @property
    def total(self) -> int:
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


def histogram(sample: np.ndarray, low: float, high: float, bins: int) -> Histogram:
    """Counts of the finite ``sample`` on ``bins`` equal bins over [low, high]."""
    if not high > low:  # a constant array: one bin of width 1 around the value
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)
    scaled = (sample.astype(np.float64, copy=False) - low) * (bins / (high - low))
    index = scaled.astype(np.intp)
    np.clip(index, 0, bins - 1, out=index)
    return Histogram(edges=edges, counts=np.bincount(index, minlength=bins).astype(np.int64))


def std_of(array: np.ndarray) -> float:
    """The population std of a finite array, with BLAS doing the square sum."""
    flat = array.reshape(-1)
    mean = float(np.add.reduce(flat, dtype=np.float64)) / flat.size
    square_mean = float(np.dot(flat, flat)) / flat.size
    with np.errstate(over="ignore", invalid="ignore"):
        variance = square_mean - mean * mean
    if not math.isfinite(variance) or variance < 1e-6 * square_mean:  # overflow or cancellation
        return float(flat.std(dtype=np.float64))
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
            centred = np.subtract(flat, flat.dtype.type(mean),
                                  out=None if scratch is None else scratch.reshape(-1))
            square_sum = float(np.dot(centred, centred))
            if not math.isfinite(square_sum):  # values near the float32 limit: square in float64
                wide = flat.astype(np.float64) - mean
                square_sum = float(np.dot(wide, wide))
            sample = flat[::stride][:HIST_SAMPLE]
            return Stats(mean, math.sqrt(square_sum / n), low, high, 0,
                         histogram(sample, low, high, bins))
    return _summarize_nonfinite(flat, stride, bins)


def _summarize_nonfinite(flat: np.ndarray, stride: int, bins: int) -> Stats:
    """The rare path: some values are inf or NaN. Statistics of the finite ones, in float64."""
    mask = np.isfinite(flat)
    kept = flat[mask].astype(np.float64)
    nonfinite = int(flat.size - kept.size)
    sample = flat[::stride][:HIST_SAMPLE]
    sample = sample[np.isfinite(sample)]
    if kept.size == 0:
        nan = math.nan
        return Stats(nan, nan, nan, nan, nonfinite, histogram(sample, 0.0, 0.0, bins))
    low, high = float(kept.min()), float(kept.max())
    with np.errstate(over="ignore", invalid="ignore"):
        mean = float(kept.mean())
        std = float(kept.std()) if math.isfinite(mean) else math.nan
    return Stats(mean, std, low, high, nonfinite, histogram(sample, low, high, bins))
