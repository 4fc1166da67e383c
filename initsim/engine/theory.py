"""Mean-field theory of signal propagation (Poole et al. 2016; Schoenholz et al. 2017).

Weights with E[W^2] = sigma_w^2 / fan_in and biases with E[b^2] = sigma_b^2, in the infinite-width
limit, give the pre-activation variance recursion
    q^1 = sigma_w^2 E[x^2] + sigma_b^2,   q^l = sigma_w^2 E_z[phi(sqrt(q^{l-1}) z)^2] + sigma_b^2
and the backward recursion of the gradient variance, one factor sigma_w^2 E_z[phi'(sqrt(q^l) z)^2]
per layer (chi_1 at the fixed point q*).

Gaussian expectations use Gauss-Legendre quadrature on z in [-10, 0] and [0, 10] separately: every
activation here is smooth on each half-line and at most kinked at 0, where plain Gauss-Hermite loses
several digits (ReLU, leaky ReLU, ELU, SELU). All functions take numpy arrays of q and broadcast.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .activations import Activation

_HALF_NODES = 96
_Z_MAX = 10.0  # P(|z| > 10) ~ 1e-23: the tail is far below float64 resolution of the integrals


def _nodes() -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(_HALF_NODES)
    half_z = (x + 1) * (_Z_MAX / 2)  # map [-1, 1] to [0, Z_MAX]
    half_w = w * (_Z_MAX / 2)
    z = np.concatenate([-half_z[::-1], half_z])
    weights = np.concatenate([half_w[::-1], half_w]) * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return z, weights


_Z, _W = _nodes()


def gauss_expectation(func: Callable[[np.ndarray], np.ndarray], q) -> np.ndarray:
    """E_z[func(sqrt(q) z)], z ~ N(0, 1), for every entry of the array ``q`` (>= 0)."""
    q = np.asarray(q, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        values = func(np.sqrt(q)[..., None] * _Z)
        return np.sum(values * _W, axis=-1)


def second_moment(act: Activation, params: dict, q) -> np.ndarray:
    """E[phi(sqrt(q) z)^2]."""
    return gauss_expectation(lambda u: act.forward(u, params) ** 2, q)


def slope_moment(act: Activation, params: dict, q) -> np.ndarray:
    """E[phi'(sqrt(q) z)^2]."""
    return gauss_expectation(lambda u: act.derivative(u, params) ** 2, q)


def variance_map(act: Activation, params: dict, q, sigma_w2, sigma_b2) -> np.ndarray:
    """One layer of the forward recursion: q -> sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2."""
    return sigma_w2 * second_moment(act, params, q) + sigma_b2


def chi1(act: Activation, params: dict, q, sigma_w2) -> np.ndarray:
    """sigma_w^2 E[phi'(sqrt(q) z)^2]: the per-layer factor of the gradient variance."""
    return sigma_w2 * slope_moment(act, params, q)


def fixed_point(act: Activation, params: dict, sigma_w2, sigma_b2, q0=1.0,
                iterations: int = 2000, tol: float = 1e-12) -> np.ndarray:
    """q* by iterating the variance map from q0 (vectorised over the grid of sigma_w2, sigma_b2).

    Where the map has no finite attracting fixed point the iteration runs to inf (kept as inf).
    """
    sigma_w2, sigma_b2 = np.broadcast_arrays(np.asarray(sigma_w2, float), np.asarray(sigma_b2, float))
    q = np.full(sigma_w2.shape, float(q0))
    for _ in range(iterations):
        with np.errstate(over="ignore", invalid="ignore"):
            new = variance_map(act, params, q, sigma_w2, sigma_b2)
            new = np.where(np.isfinite(new) & (new < 1e30), new, np.inf)
            done = np.all((np.abs(new - q) <= tol * np.maximum(q, 1e-300)) | np.isinf(new))
        q = new
        if done:
            break
    return q


def depth_scale(chi: float) -> float:
    """Layers over which the gradient variance changes by a factor e: 1 / |ln chi_1|."""
    if not chi > 0 or math.isclose(chi, 1.0, rel_tol=1e-9):
        return math.inf
    return 1 / abs(math.log(chi))


@dataclass(frozen=True)
class TheoryPrediction:
    """Mean-field prediction for one network, next to which the measurement is shown."""

    pre_std: tuple[float, ...]  # per layer, std of the activation's input
    grad_std: tuple[float | None, ...]  # per layer, std of dL/dh (None where no theory applies)
    sigma_w2: tuple[float, ...]
    sigma_b2: float
    q_star: float | None
    chi1: float | None
    depth_scale: float | None


def predict(act: Activation, params: dict, sigma_w2: Sequence[float], fan_ratio: Sequence[float],
            sigma_b2: float, input_second_moment: float = 1.0, normalized: bool = False,
            pre_variance: Sequence[float] | None = None) -> TheoryPrediction:
    """The per-layer prediction.

    ``sigma_w2[l] = fan_in * E[W^2]`` and ``fan_ratio[l] = fan_out / fan_in`` of layer l (0-based);
    ``normalized``: a normalization before the activation fixes each pre-activation's variance at 1;
    ``pre_variance`` overrides the forward recursion (e.g. LSUV, which sets it to 1 by construction).
    The backward recursion starts from a unit-variance gradient at the network's output.
    """
    layers = len(sigma_w2)
    if normalized:
        q = np.ones(layers)
    elif pre_variance is not None:
        q = np.asarray(pre_variance, float)
    else:
        q = np.empty(layers)
        previous = sigma_w2[0] * input_second_moment + sigma_b2
        q[0] = previous
        for l in range(1, layers):
            previous = float(variance_map(act, params, previous, sigma_w2[l], sigma_b2))
            q[l] = previous if math.isfinite(previous) else math.inf
    with np.errstate(over="ignore", invalid="ignore"):
        slopes = slope_moment(act, params, np.where(np.isfinite(q), q, 1e300))
        grad_var = np.empty(layers)
        g = slopes[-1]
        grad_var[-1] = g
        for l in range(layers - 1, 0, -1):
            g = g * sigma_w2[l] * fan_ratio[l] * slopes[l - 1]
            grad_var[l - 1] = g
    grad = tuple(None if normalized else float(math.sqrt(v)) if v >= 0 else math.nan for v in grad_var)
    hidden_w2 = sigma_w2[1] if layers > 1 else sigma_w2[0]
    q_star = float(fixed_point(act, params, hidden_w2, sigma_b2, q0=float(q[0])))
    chi = float(chi1(act, params, min(q_star, 1e300), hidden_w2)) if not normalized else None
    return TheoryPrediction(
        pre_std=tuple(float(math.sqrt(v)) for v in q), grad_std=grad,
        sigma_w2=tuple(float(s) for s in sigma_w2), sigma_b2=float(sigma_b2),
        q_star=q_star if not normalized else 1.0, chi1=chi,
        depth_scale=depth_scale(chi) if chi is not None else None,
    )
