"""The registry of activation functions.

Each activation has a forward function, its derivative (from the input, and where possible from the
output alone, which lets the backward pass keep only the layer's output), its PyTorch gain, the
scheme it is usually paired with, and what counts as dead or saturated.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .errors import lookup
from .gauss import gauss_expectation
from .params import ParamValue, resolve
from .schemes import calculate_gain

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_GELU_TANH_C = 0.044715

Elementwise = Callable[[np.ndarray, dict], np.ndarray]


# scipy.special takes a third of a second to import: imported by the activations that use it, on
# their first call, not when the window starts.
def _expit(u: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    from scipy import special
    return special.expit(u, out=out)


def _ndtr(u: np.ndarray) -> np.ndarray:
    from scipy import special
    return special.ndtr(u)


@dataclass(frozen=True)
class Activation:
    name: str
    formula: str
    forward: Elementwise  # phi(u); may work in place on u and return it
    derivative: Elementwise  # phi'(u), a new array; u unchanged
    recommended: str  # scheme name
    why: str  # one sentence: why that scheme
    defaults: dict[str, ParamValue] = field(default_factory=dict)
    derivative_from_output: Elementwise | None = None  # phi'(u) computed from y = phi(u) alone
    torch_gain: Callable[[dict], float] | None = None
    recommended_params: Callable[[dict], dict] = lambda p: {}
    can_die: Callable[[dict], bool] = lambda p: False  # a unit can pass zero gradient for every input
    saturation: tuple[float, float] | None = None  # outputs outside (low, high) count as saturated

    def params(self, given: dict | None = None) -> dict:
        return resolve(f"activation {self.name}", self.defaults, given)

    def apply(self, u: np.ndarray, params: dict | None = None) -> np.ndarray:
        """phi(u) in a new array (the in-place ``forward`` is for the simulation's own buffers)."""
        return self.forward(np.array(u, copy=True), self.params(params))

    def gain(self, params: dict | None = None) -> float:
        """PyTorch's gain where PyTorch defines one, else the mean-field gain 1/sqrt(E[phi(z)^2])."""
        p = self.params(params)
        if self.torch_gain is not None:
            return self.torch_gain(p)
        second = gauss_expectation(lambda z: self.forward(z, p) ** 2, np.array(1.0))
        return float(1 / math.sqrt(second))


# --- elementwise functions (float32 or float64 arrays; in place where noted) -----------------

def _identity(u, p):
    return u


def _ones(u, p):
    return np.ones_like(u)


def _relu(u, p):
    return np.maximum(u, 0, out=u)


def _positive(u, p):
    return (u > 0).astype(u.dtype)


def _leaky(u, p):
    np.multiply(u, p["slope"], out=u, where=u < 0)
    return u


def _leaky_d(u, p):
    return np.where(u > 0, 1, p["slope"]).astype(u.dtype)


def _elu(u, p, alpha_key="alpha", scale=1.0, alpha=None):
    a = p[alpha_key] if alpha is None else alpha
    neg = u <= 0
    u[neg] = a * np.expm1(u[neg])
    if scale != 1.0:
        u *= scale
    return u


def _elu_d(u, p, scale=1.0, alpha=None):
    a = p["alpha"] if alpha is None else alpha
    return (scale * np.where(u > 0, 1, a * np.exp(np.minimum(u, 0)))).astype(u.dtype)


def _elu_d_out(y, p, scale=1.0, alpha=None):
    a = p["alpha"] if alpha is None else alpha
    return np.where(y > 0, scale, y + scale * a).astype(y.dtype)


def _selu(u, p):
    return _elu(u, p, scale=SELU_SCALE, alpha=SELU_ALPHA)


def _selu_d(u, p):
    return _elu_d(u, p, scale=SELU_SCALE, alpha=SELU_ALPHA)


def _selu_d_out(y, p):
    return _elu_d_out(y, p, scale=SELU_SCALE, alpha=SELU_ALPHA)


def _gelu(u, p):
    if p["approximate"] == "tanh":
        inner = _SQRT_2_OVER_PI * (u + _GELU_TANH_C * u**3)
        return np.multiply(u, 0.5 * (1 + np.tanh(inner)), out=u)
    return np.multiply(u, _ndtr(u), out=u)


def _gelu_d(u, p):
    if p["approximate"] == "tanh":
        inner = _SQRT_2_OVER_PI * (u + _GELU_TANH_C * u**3)
        t = np.tanh(inner)
        d_inner = _SQRT_2_OVER_PI * (1 + 3 * _GELU_TANH_C * u**2)
        return (0.5 * (1 + t) + 0.5 * u * (1 - t * t) * d_inner).astype(u.dtype)
    pdf = np.exp(-0.5 * u * u) / math.sqrt(2 * math.pi)
    return (_ndtr(u) + u * pdf).astype(u.dtype)


def _silu(u, p):
    return np.multiply(u, _expit(u), out=u)


def _silu_d(u, p):
    s = _expit(u)
    return (s * (1 + u * (1 - s))).astype(u.dtype)


def _softplus(u, p):
    return np.logaddexp(0, u, out=u)


def _softplus_d_out(y, p):
    return -np.expm1(-y)


def _tanh(u, p):
    return np.tanh(u, out=u)


def _tanh_d(u, p):
    t = np.tanh(u)
    return 1 - t * t


def _tanh_d_out(y, p):
    return 1 - y * y


def _sigmoid(u, p):
    return _expit(u, out=u)


def _sigmoid_d_out(y, p):
    return y * (1 - y)


def _sigmoid_d(u, p):
    return _sigmoid_d_out(_expit(u), p)


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("linear", "phi(u) = u", _identity, _ones, "lecun_normal",
                   "Var(W) = 1/fan_in keeps the variance exactly 1 through a linear net.",
                   derivative_from_output=_ones, torch_gain=lambda p: calculate_gain("linear")),
        Activation("relu", "phi(u) = max(u, 0)", _relu, _positive, "kaiming_normal",
                   "ReLU zeroes half of a symmetric input, so it needs twice the variance: "
                   "Var(W) = 2/fan_in (He).",
                   derivative_from_output=_positive, torch_gain=lambda p: calculate_gain("relu"),
                   recommended_params=lambda p: {"nonlinearity": "relu"}, can_die=lambda p: True),
        Activation("leaky_relu", "phi(u) = u if u > 0 else slope * u", _leaky, _leaky_d,
                   "kaiming_normal",
                   "He with the slope in the gain: Var(W) = 2 / ((1 + slope^2) fan_in).",
                   defaults={"slope": 0.01}, derivative_from_output=_leaky_d,
                   torch_gain=lambda p: calculate_gain("leaky_relu", p["slope"]),
                   recommended_params=lambda p: {"nonlinearity": "leaky_relu",
                                                 "negative_slope": p["slope"]},
                   can_die=lambda p: p["slope"] == 0),
        Activation("elu", "phi(u) = u if u > 0 else alpha * (exp(u) - 1)", _elu, _elu_d,
                   "kaiming_normal", "ELU behaves like ReLU for positive inputs: He is the usual choice.",
                   defaults={"alpha": 1.0}, derivative_from_output=_elu_d_out,
                   recommended_params=lambda p: {"nonlinearity": "relu"},
                   can_die=lambda p: p["alpha"] == 0),
        Activation("selu", f"phi(u) = {SELU_SCALE:.4f} * (u if u > 0 else {SELU_ALPHA:.4f} * (exp(u) - 1))",
                   _selu, _selu_d, "lecun_normal",
                   "SELU's constants make mean 0, variance 1 a fixed point when Var(W) = 1/fan_in "
                   "(Klambauer et al. 2017).",
                   derivative_from_output=_selu_d_out, torch_gain=lambda p: calculate_gain("selu")),
        Activation("gelu", "phi(u) = u * Phi(u) (exact; tanh approximation optional)", _gelu, _gelu_d,
                   "kaiming_normal", "GELU is ReLU-like for large inputs: He is the usual choice.",
                   defaults={"approximate": "none"},
                   recommended_params=lambda p: {"nonlinearity": "relu"}),
        Activation("silu", "phi(u) = u * sigmoid(u) (swish)", _silu, _silu_d, "kaiming_normal",
                   "SiLU is ReLU-like for large inputs: He is the usual choice.",
                   recommended_params=lambda p: {"nonlinearity": "relu"}),
        Activation("softplus", "phi(u) = log(1 + exp(u))", _softplus,
                   lambda u, p: _expit(u), "kaiming_normal",
                   "Softplus is a smooth ReLU: He is the usual choice.",
                   derivative_from_output=_softplus_d_out,
                   recommended_params=lambda p: {"nonlinearity": "relu"}),
        Activation("tanh", "phi(u) = tanh(u)", _tanh, _tanh_d, "xavier_normal",
                   "tanh is linear near 0 with slope 1: Var(W) = 2/(fan_in + fan_out) (Xavier) keeps "
                   "it out of saturation.",
                   derivative_from_output=_tanh_d_out, torch_gain=lambda p: calculate_gain("tanh"),
                   saturation=(-0.97, 0.97)),
        Activation("sigmoid", "phi(u) = 1 / (1 + exp(-u))", _sigmoid, _sigmoid_d, "xavier_normal",
                   "Xavier keeps the sigmoid's inputs small enough to stay off its flat tails.",
                   derivative_from_output=_sigmoid_d_out, torch_gain=lambda p: calculate_gain("sigmoid"),
                   saturation=(0.015, 0.985)),
    )
}

ACTIVATION_ALIASES = {"swish": "silu", "identity": "linear", "leaky": "leaky_relu", "lrelu": "leaky_relu"}


def get_activation(name: str) -> Activation:
    return lookup("activation", name, ACTIVATIONS, ACTIVATION_ALIASES)
