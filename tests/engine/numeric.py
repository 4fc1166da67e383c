"""Central differences, the reference every exact gradient of the engine is tested against."""

from __future__ import annotations

import numpy as np


def numeric_gradient(f, array: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar f() w.r.t. every entry of ``array`` (changed in place,
    and restored)."""
    grad = np.empty_like(array)
    for i in np.ndindex(array.shape):
        kept = array[i]
        array[i] = kept + eps
        up = f()
        array[i] = kept - eps
        down = f()
        array[i] = kept
        grad[i] = (up - down) / (2 * eps)
    return grad
