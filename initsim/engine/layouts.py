"""How checkpoints store a weight (issue 14): PyTorch as (out, in, *kernel), numpy and Keras as
(in, out) or (*kernel, in, out); a weight's fans and its matrix W of ``y = x @ W`` in either layout. The
inspector (inspection.py) and the checkpoint scheme's chains (chain.py) both use these."""

from __future__ import annotations

import math

import numpy as np

LAYOUTS = ("torch", "numpy")


def check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")


def fans(shape: tuple[int, ...], layout: str) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight: PyTorch's ``_calculate_fan_in_and_fan_out`` for torch's layout
    (out, in, *kernel), fan_in = in * prod(kernel); Keras's for numpy's (in, out) and its conv
    kernels (*kernel, in, out)."""
    check_layout(layout)
    shape = tuple(int(n) for n in shape)
    if len(shape) < 2:
        raise ValueError(f"fans need a tensor of at least 2 dimensions, got shape {shape}")
    if layout == "torch":
        receptive = math.prod(shape[2:])
        return shape[1] * receptive, shape[0] * receptive
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def as_matrix(array: np.ndarray, layout: str) -> np.ndarray:
    """The weight as the matrix W of ``y = x @ W`` (numpy's layout), a view where the layout allows:
    (fan_in, fan_out) for a dense weight; for a conv kernel the matrix each patch meets,
    (C_in * prod(kernel), C_out) (its rows are fan_in; fan_out counts the kernel too)."""
    check_layout(layout)
    array = np.asarray(array)
    if array.ndim < 2:
        raise ValueError(f"a matrix needs a tensor of at least 2 dimensions, got shape {array.shape}")
    if layout == "torch":
        return array.reshape(array.shape[0], -1).T
    return array.reshape(-1, array.shape[-1])
