"""Histograms on a common grid, and which layers get a panel.

The engine gives every layer its own bins, spanning that layer's finite range. To compare layers
(a shared x range, the depth heatmap) the views move every histogram onto one grid of equal bins.
Numpy only: the tests check what the window paints against these functions applied to the engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from initsim.engine import Histogram

MAX_PANELS = 16


def rebin(histogram: Histogram, grid: np.ndarray) -> np.ndarray:
    """The histogram's counts moved onto the bins with edges ``grid``.

    Each source bin's count is spread evenly over its width (linear interpolation of the
    cumulative count), so a source bin inside one grid bin lands there whole and the total is kept
    whenever the grid covers the histogram's range.
    """
    return rebin_rows([histogram], grid)[0]


def rebin_rows(histograms: Sequence[Histogram], grid: np.ndarray) -> np.ndarray:
    """`rebin` of each histogram, one row each, in whole-array steps: a deep net's heatmap rebins
    hundreds of layers whenever its grid widens, too slow for the GUI thread one at a time."""
    width = max(len(h.edges) for h in histograms) + 1
    # Rows of ``width`` edges padded by +inf and counts by 0 (no grid value reaches them), in one
    # flat array each, so that a row's value j is at row * width + j.
    edges, counts = np.full((len(histograms), width), np.inf), np.zeros((len(histograms), width))
    for row, h in enumerate(histograms):
        edges[row, :len(h.edges)] = h.edges
        counts[row, :len(h.counts)] = h.counts
    below = np.cumsum(counts, axis=1)
    below -= counts  # the count left of each edge
    edges, counts, below = edges.ravel(), counts.ravel(), below.ravel()
    start = np.arange(0, len(edges), width)[:, None]
    last = np.array([len(h.counts) for h in histograms])[:, None]  # each row's bin count
    bin_of = _bins_of(grid, edges, start, last)
    at = start + np.clip(bin_of, 0, last - 1)
    left = edges.take(at)
    with np.errstate(invalid="ignore", over="ignore"):
        cumulative = below.take(at) + counts.take(at) * ((grid - left) / (edges.take(at + 1) - left))
    cumulative = np.where(bin_of < 0, 0.0, np.where(bin_of < last, cumulative, below.take(start + last)))
    return np.diff(cumulative, axis=1)


def _bins_of(grid: np.ndarray, edges: np.ndarray, start: np.ndarray, last: np.ndarray) -> np.ndarray:
    """For each row of sorted edges (``last`` + 1 of them from ``start`` in the flat ``edges``),
    the bin that each grid value falls in: searchsorted(row, grid, "right") - 1, so -1 left of the
    first edge and ``last`` from the last edge on. Guessed as if the bins were equal, then moved a
    bin at a time until each value is in its bin: one step, or none, for the engine's bins."""
    low, high = edges.take(start), edges.take(start + last)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        guess = np.nan_to_num(np.floor((grid - low) / (high - low) * last))
    bin_of = np.clip(guess, -1, last).astype(np.intp)
    while True:
        down = (bin_of >= 0) & (edges.take(start + np.maximum(bin_of, 0)) > grid)
        up = (bin_of < last) & (edges.take(start + np.minimum(bin_of + 1, last)) <= grid)
        if not (down.any() or up.any()):
            return bin_of
        bin_of += up.astype(np.intp) - down


def common_grid(histograms: Iterable[Histogram], bins: int) -> np.ndarray:
    """Edges of ``bins`` equal bins spanning every given histogram that holds any value."""
    lows, highs = [], []
    for histogram in histograms:
        if histogram.total:
            lows.append(histogram.edges[0])
            highs.append(histogram.edges[-1])
    return _grid_spanning(min(lows), max(highs), bins) if lows else _grid_spanning(0.0, 0.0, bins)


def _grid_spanning(low: float, high: float, bins: int) -> np.ndarray:
    """Edges of ``bins`` equal bins from ``low`` to ``high``; a single value gets a unit span."""
    if not high > low:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, bins + 1)


def fractions(counts: np.ndarray) -> np.ndarray:
    """Counts as fractions of their total (zeros when there is nothing to count)."""
    total = float(np.sum(counts))
    return np.asarray(counts, dtype=np.float64) / total if total else np.zeros(len(counts))


def panel_stride(layers: int, most: int = MAX_PANELS) -> int:
    """The smallest round stride (1, 2, 5, 10, 20, 50, ...) that keeps the panels within ``most``."""
    stride = 1
    while len(panel_layers(layers, stride)) > most:
        stride = stride * 5 // 2 if str(stride)[0] == "2" else stride * 2
    return stride


def panel_layers(layers: int, stride: int) -> list[int]:
    """The 1-based layers that get a histogram panel: the first, every multiple of ``stride``, and
    the last."""
    return sorted({1, layers, *range(stride, layers + 1, stride)})


def panel_curve(histogram: Histogram, grid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """What a histogram panel draws: bin edges and the fraction of values in each bin, on the
    layer's own bins (``grid`` None) or moved onto ``grid``."""
    if grid is None:
        return histogram.edges, fractions(histogram.counts)
    return grid, fractions(rebin(histogram, grid))


# The log-density heatmap shows four decades below each layer's peak; emptier bins are floored.
LOG_DECADES = 4


def density_rows(histograms: Sequence[Histogram], grid: np.ndarray) -> np.ndarray:
    """Rows of the depth heatmap: each histogram on ``grid``, relative to its own peak."""
    counts = rebin_rows(histograms, grid)
    return counts / counts.max(axis=1, keepdims=True)


def depth_image(histograms: list[Histogram | None], grid: np.ndarray, log: bool) -> np.ndarray:
    """The depth heatmap: one row per layer (NaN for a layer not there yet or without a finite
    value), one column per bin of ``grid``, each row's density relative to its own peak (in
    [0, 1], or its log10 in [-LOG_DECADES, 0] with ``log``), so that a narrow layer and a wide one
    are both visible."""
    image = np.full((len(histograms), len(grid) - 1), np.nan)
    # A layer not there yet, or without a finite value, stays NaN.
    held = [row for row, histogram in enumerate(histograms) if histogram is not None and histogram.total]
    if held:
        image[held] = density_rows([histograms[row] for row in held], grid)
    return _logged(image) if log else image


def _logged(image: np.ndarray) -> np.ndarray:
    """``image`` (changed in place) as log10 of its densities, floored LOG_DECADES below 1; NaN
    rows stay NaN."""
    return np.log10(np.maximum(image, 10.0**-LOG_DECADES), out=image)


class DepthImage:
    """The depth heatmap of one run's layers, kept as they arrive (``add``). A paint of a deep net
    touches only the layers that arrived since the last one: the grid comes from the layers'
    bounds kept in arrays, and a row is rebinned when its layer arrives or the grid moves (a new
    layer outside it): walking all the layers of a deep net at every paint stalled the GUI thread.
    ``image`` gives common_grid(histograms, bins) and depth_image(histograms, that grid, log)."""

    def __init__(self, layers: int, bins: int) -> None:
        self.bins = bins
        self._histograms: list[Histogram | None] = [None] * layers
        # Each layer's range, NaN where it has no finite value (or has not arrived).
        self._lows, self._highs = np.full(layers, np.nan), np.full(layers, np.nan)
        self._rows = np.full((layers, bins), np.nan)  # linear density, for self._grid
        self._grid: np.ndarray | None = None
        self._stale: set[int] = set()  # rows to rebin on self._grid

    def add(self, layer: int, histogram: Histogram) -> None:
        """The histogram of 1-based ``layer`` (a new one replaces the old)."""
        i = layer - 1
        self._histograms[i] = histogram
        self._rows[i] = np.nan
        if histogram.total:
            self._lows[i], self._highs[i] = histogram.edges[0], histogram.edges[-1]
            self._stale.add(i)
        else:
            self._lows[i] = self._highs[i] = np.nan

    def grid(self) -> np.ndarray:
        """common_grid of the layers added so far."""
        held = ~np.isnan(self._lows)
        if not held.any():
            return _grid_spanning(0.0, 0.0, self.bins)
        return _grid_spanning(float(self._lows[held].min()), float(self._highs[held].max()), self.bins)

    def image(self, log: bool) -> tuple[np.ndarray, np.ndarray]:
        """(grid, image) of the layers added so far; the image is a new array."""
        grid = self.grid()
        if self._grid is None or not np.array_equal(grid, self._grid):
            self._grid = grid
            self._stale = set(np.flatnonzero(~np.isnan(self._lows)).tolist())
        if self._stale:
            stale = sorted(self._stale)
            self._rows[stale] = density_rows([self._histograms[i] for i in stale], grid)
            self._stale.clear()
        image = self._rows.copy()
        return grid, (_logged(image) if log else image)


# A bin taller than this many times the next tallest is clipped in a panel, so that the rest of
# the distribution stays readable (ReLU puts half of its outputs in the bin at 0).
SPIKE_RATIO = 4.0


def panel_height(fractions_: np.ndarray) -> tuple[float, bool]:
    """The y extent of a panel and whether its tallest bin is clipped to get it."""
    if len(fractions_) < 2:
        return max(float(np.max(fractions_, initial=0.0)), 1e-12), False
    second, top = np.partition(fractions_, -2)[-2:]
    if second > 0 and top > SPIKE_RATIO * second:
        return 2.0 * float(second), True
    return max(float(top), 1e-12), False
