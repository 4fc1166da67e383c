"""The layers' matrix products: x W + b, and products whose values cannot underflow.

A vanishing signal's products fall below the dtype's smallest normal, where many CPUs multiply a
hundred times slower: with ``flush`` (the config's default ``subnormals = "flush"``) such a product
is taken on its operands scaled by powers of two (see network.py's note on subnormals).
"""

from __future__ import annotations

import math

import numpy as np

UNDERFLOW_HEADROOM = 64  # binary orders of magnitude kept between the products and underflow
MAGNITUDE_SAMPLE = 4096  # values looked at to tell an array's magnitude


def _magnitude(array: np.ndarray) -> int | None:
    """The binary exponent (math.frexp's) of the largest magnitude among about MAGNITUDE_SAMPLE
    values of ``array`` spread over it; None when they are all zero or one is not finite."""
    flat = array.ravel(order="K")  # a view, also of a transposed array
    sample = flat[::max(1, flat.size // MAGNITUDE_SAMPLE)]
    if sample.size == 0:
        return None
    largest = max(float(sample.max()), -float(sample.min()))
    return math.frexp(largest)[1] if 0 < largest < math.inf else None


def scaled_matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None, flush: bool = False
                  ) -> tuple[np.ndarray, int]:
    """(a @ b * 2**-e, e), into ``out``. e is 0 unless ``flush`` is set and the values of a and b are
    so small that their products would fall near or below the dtype's smallest normal, where a CPU
    can multiply a hundred times slower (bench_subnormal.py and the README measure it). Then
    a and b are scaled by powers of two to magnitudes near 1 for the multiply. A power of two
    scales exactly, so this is a @ b bit for bit wherever that product has no subnormal value in
    it, and closer to the real product where it has: no product underflows."""
    if flush:
        exponents = _magnitude(a), _magnitude(b)
        if None not in exponents and sum(exponents) < np.finfo(a.dtype).minexp + UNDERFLOW_HEADROOM:
            ea, eb = exponents
            return np.matmul(np.ldexp(a, -ea), np.ldexp(b, -eb), out=out), ea + eb
    return np.matmul(a, b, out=out), 0


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None, flush: bool = False) -> np.ndarray:
    """a @ b into ``out``, multiplied as `scaled_matmul` says and scaled back (to subnormal values
    where the product has them: flushing them is the caller's)."""
    product, exponent = scaled_matmul(a, b, out, flush)
    if exponent:
        np.ldexp(product, exponent, out=product)
    return product


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray, out: np.ndarray | None = None,
           flush: bool = False) -> np.ndarray:
    """x W + b, into ``out`` (a new array when None); x W as `matmul` says."""
    out = matmul(x, w, out, flush)
    if b.any():
        out += b
    return out
