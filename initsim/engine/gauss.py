"""Expectations over Gaussians by quadrature, for the mean-field theory and the activations' gains.

Gauss-Legendre quadrature on z in [-10, 0] and [0, 10] separately: every activation here is smooth
on each half-line and at most kinked at 0, where plain Gauss-Hermite loses several digits (ReLU,
leaky ReLU, ELU, SELU). Each half-line is cut where |u| = sqrt(q) |z| reaches 20, beyond which every
activation is flat or linear to double precision, so that a large q does not hide the activation's
bend between two nodes. All functions take numpy arrays and broadcast.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

_NODES_PER_SEGMENT = 48
_Z_MAX = 10.0  # P(|z| > 10) ~ 1e-23: the tail is far below float64 resolution of the integrals
_FEATURE_U = 20.0  # beyond |u| = 20, every activation is flat or linear to double precision


@functools.cache
def _unit_rule(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [0, 1]."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    return (x + 1) / 2, w / 2


def _graded_nodes(start: np.ndarray, end: np.ndarray, feature: np.ndarray,
                  nodes: int = _NODES_PER_SEGMENT) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights from ``start`` towards ``end`` (either direction): one segment within
    ``feature`` of the start, where the integrand bends, and one over the rest, ``nodes`` each."""
    x, wx = _unit_rule(nodes)
    length = end - start
    near = np.sign(length) * np.minimum(np.abs(length), feature)
    points = np.concatenate(np.broadcast_arrays(start + near * x, start + near + (length - near) * x), -1)
    weights = np.concatenate(np.broadcast_arrays(np.abs(near) * wx, np.abs(length - near) * wx), -1)
    return points, weights


def _normal_pdf(z: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _z_rule(scale: np.ndarray, nodes: int = _NODES_PER_SEGMENT) -> tuple[np.ndarray, np.ndarray]:
    """Nodes z and weights (density included) for E_z[f(scale z)], shape scale.shape + (4 nodes,)."""
    scale = scale[..., None]
    with np.errstate(divide="ignore"):
        feature = _FEATURE_U / scale
    zero = np.zeros_like(scale)
    up, up_w = _graded_nodes(zero, zero + _Z_MAX, feature, nodes)
    down, down_w = _graded_nodes(zero, zero - _Z_MAX, feature, nodes)
    z = np.concatenate([down, up], -1)
    return z, np.concatenate([down_w, up_w], -1) * _normal_pdf(z)


def gauss_expectation(func: Callable[[np.ndarray], np.ndarray], q) -> np.ndarray:
    """E_z[func(sqrt(q) z)], z ~ N(0, 1), for every entry of the array ``q`` (>= 0)."""
    scale = np.sqrt(np.asarray(q, dtype=np.float64))
    z, weights = _z_rule(scale)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.sum(func(scale[..., None] * z) * weights, axis=-1)


_PAIR_CHUNK = 16  # (q, c) points per block of the 2-D rule: 16 x 192 x 192 nodes, ~5 MB an array


def pair_expectation(func: Callable[[np.ndarray], np.ndarray], q, c,
                     nodes: int = _NODES_PER_SEGMENT) -> np.ndarray:
    """E[func(u_1) func(u_2)] for (u_1, u_2) jointly normal, variances ``q``, correlation ``c``
    (arrays that broadcast); ``nodes`` per segment of each of the rule's two dimensions.

    With u_1 = sqrt(q) z_1 and u_2 = sqrt(q) (c z_1 + sqrt(1 - c^2) z_2), the inner integral over z_2
    is cut where u_2 changes sign, so kinked activations stay accurate.
    """
    q, c = np.broadcast_arrays(np.asarray(q, np.float64), np.clip(np.asarray(c, np.float64), -1, 1))
    flat_q, flat_c = q.ravel(), c.ravel()
    out = np.empty(flat_q.shape)
    for start in range(0, out.size, _PAIR_CHUNK):
        part = slice(start, start + _PAIR_CHUNK)
        out[part] = _pair_block(func, flat_q[part], flat_c[part], nodes)
    return out.reshape(q.shape)


def _pair_block(func: Callable[[np.ndarray], np.ndarray], q: np.ndarray, c: np.ndarray,
                nodes: int) -> np.ndarray:
    scale = np.sqrt(q)
    z1, w1 = _z_rule(scale, nodes)  # (points, n)
    slant = np.sqrt(1 - c * c)[:, None, None]
    c3, scale3 = c[:, None, None], scale[:, None, None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        kink = np.clip(np.nan_to_num(-c3 * z1[..., None] / slant), -_Z_MAX, _Z_MAX)  # (points, n, 1)
        feature = _FEATURE_U / (scale3 * slant)
        up, up_w = _graded_nodes(kink, np.full_like(kink, _Z_MAX), feature, nodes)
        down, down_w = _graded_nodes(kink, np.full_like(kink, -_Z_MAX), feature, nodes)
        z2 = np.concatenate([down, up], -1)  # (points, n, m)
        w2 = np.concatenate([down_w, up_w], -1) * _normal_pdf(z2)
        inner = np.sum(func(scale3 * (c3 * z1[..., None] + slant * z2)) * w2, axis=-1)
        return np.sum(func(scale[:, None] * z1) * inner * w1, axis=-1)
