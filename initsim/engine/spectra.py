"""Spectra of the initialized network: the input-output Jacobian and each layer's weights.

Jacobian: for one input x_0, the network's output x_L = phi(... phi(x_0 W_1 + b_1) ...) has the
Jacobian J = W_1 D_1 W_2 D_2 ... W_L D_L (row vectors; D_l = diag(phi'(h_l))). Its singular values
say how the network stretches small changes of its input: all equal to 1 is dynamical isometry,
which orthogonal weights give deep linear and tanh nets near criticality and Gaussian weights do
not (Saxe et al. 2013; Pennington et al. 2017). Mean-field theory predicts their mean square: the
product over the layers of chi_1(q^l) = sigma_w^2 E[phi'(sqrt(q^l) z)^2] along the network's own
pre-activation variances q^l, which start from the input's, not at the fixed point q*.

A residual block x_l = x + alpha F(norm(x)) (pre-norm; no norm: norm(x) = x) has the Jacobian
I + alpha N(x) W1 D W2, post-norm's x_l = norm(y), y = x + alpha F(x), (I + alpha W1 D W2) N(y),
with N the layer or RMS norm's own Jacobian at its input (the per-sample norms; batch norm couples
the samples, as for plain layers, and is refused); the network's is their product, after the input
projection P when there is one.

Weights: the eigenvalues of W^T W / fan_in for a layer of i.i.d. entries of variance v follow, for
large fans, the Marchenko-Pastur law of ratio fan_out / fan_in and scale v; orthogonal weights put
them all at one point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .activations import get_activation
from .config import SimConfig
from .errors import ConfigError
from .network import NORM_EPS, Layer
from .simulate import ResidualWeights, initial_blocks, initial_weights
from .stats import Histogram, histogram
from .theory import config_at, config_prediction, config_sigmas


# --- the input-output Jacobian -------------------------------------------------------------

@dataclass(frozen=True)
class JacobianSpectrum:
    singular_values: np.ndarray  # descending, float64
    # mean-field theory's mean s^2 (`TheoryPrediction.jacobian_mean_square`); None for residual blocks
    mean_square_theory: float | None
    size: int = 0  # the larger side of the Jacobian, for the rank tolerance (0: count any s > 0)

    @property
    def max(self) -> float:
        return float(self.singular_values[0])

    @property
    def min(self) -> float:
        return float(self.singular_values[-1])

    @property
    def zero_tolerance(self) -> float:
        """Singular values at or below this are zeros up to rounding (numpy's matrix_rank
        tolerance, s_max * size * eps): a ReLU net's Jacobian at one input loses a rank for each
        unit that is off, and those singular values come out anywhere from 1e-16 to 1e-80 of s_max."""
        return self.max * self.size * float(np.finfo(np.float64).eps)

    @property
    def nonzero(self) -> np.ndarray:
        """The singular values that are not zeros up to rounding."""
        return self.singular_values[self.singular_values > self.zero_tolerance]

    @property
    def rank(self) -> int:
        return int(self.nonzero.size)

    @property
    def condition(self) -> float:
        """max / min: 1 for perfect isometry, inf when the Jacobian is singular (nan when zero)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.divide(self.max, self.min))

    @property
    def mean_square(self) -> float:
        """Mean of s^2 = tr(J J^T) / n; mean-field theory predicts ``mean_square_theory``."""
        return float(np.mean(self.singular_values**2))

    @property
    def log_spread(self) -> float:
        """Std of log10 s over the nonzero singular values, in decades: 0 for isometry."""
        nonzero = self.nonzero
        return float(np.std(np.log10(nonzero))) if nonzero.size else math.nan

    def histogram(self, bins: int = 64, log: bool = False) -> Histogram | None:
        """Counts on ``bins`` equal bins over [min, max] of s, or of log10 s over the nonzero ones
        (None when there are none: the Jacobian of zero weights is zero)."""
        values = np.log10(self.nonzero) if log else self.singular_values
        if not values.size:
            return None
        return histogram(values, float(values.min()), float(values.max()), bins)


def _checked(config: SimConfig) -> SimConfig:
    """The validated config; a plain network's normalization, and batch norm anywhere, refused."""
    config = config.validated()
    if config.norm == "batch" or (config.norm != "none" and config.residual == "none"):
        raise ConfigError("norm", "the Jacobian spectrum is of the plain network: a normalization "
                          "couples the samples of the batch (choose norm none)" if config.residual == "none"
                          else "the Jacobian spectrum is of one input: batch norm couples the samples of "
                          "the batch (choose layer or rms norm, or none)")
    return config


def jacobian(config: SimConfig) -> np.ndarray:
    """d x_L / d x_0, shape (input width, width), in float64, at one input drawn from the config's
    input distribution (unit variance) with the config's seed; the weights are `initial_weights`
    (`initial_blocks` for residual blocks)."""
    config = _checked(config)
    if config.residual != "none":
        return _block_jacobian(config, initial_blocks(config))
    return _jacobian(config, initial_weights(config))


def _one_input(config: SimConfig) -> np.ndarray:
    rng = np.random.default_rng(config.seed)
    if config.input_dist == "uniform":
        return rng.uniform(-math.sqrt(3), math.sqrt(3), config.fan_in_first)
    return rng.standard_normal(config.fan_in_first)


def _norm_and_jacobian(x: np.ndarray, norm: str) -> tuple[np.ndarray, np.ndarray]:
    """(u, du/dx) of the per-sample norm at ``x`` (one sample's units), eps included: layer norm
    u = (x - mean) r, du_j/dx_i = r (delta_ij - 1/n - u_i u_j / n); rms u = x r, r (delta_ij - u_i u_j / n);
    none, the identity."""
    n = x.size
    if norm == "none":
        return x, np.eye(n)
    centred = x - x.mean() if norm == "layer" else x
    r = 1 / math.sqrt(float(np.mean(centred * centred)) + NORM_EPS)
    u = centred * r
    jac = np.eye(n) - np.outer(u, u) / n
    if norm == "layer":
        jac -= 1 / n
    return u, r * jac


def _block_jacobian(config: SimConfig, weights: ResidualWeights) -> np.ndarray:
    """d x_L / d x_0 of residual blocks (see the module's docstring), in float64."""
    act, params = get_activation(config.activation), config.activation_params
    alpha = config.branch_alpha
    x = _one_input(config)
    jac = None
    with np.errstate(all="ignore"):
        if weights.projection is not None:
            p, b = (array.astype(np.float64) for array in weights.projection)
            x, jac = x @ p + b, p
        for block in weights.blocks:
            w1, b1, w2, b2 = (array.astype(np.float64) for array in (block.w1, block.b1, block.w2, block.b2))
            u, norm_in = (_norm_and_jacobian(x, config.norm) if config.residual == "pre" and config.norm != "none"
                          else (x, None))
            a = u @ w1 + b1
            branch = (w1 * act.derivative(a.copy(), params)) @ w2  # du-to-F
            y = x + alpha * (act.forward(a, params) @ w2 + b2)
            step = np.eye(x.size) + alpha * (branch if norm_in is None else norm_in @ branch)
            if config.residual == "post":
                y, norm_out = _norm_and_jacobian(y, config.norm)
                step = step @ norm_out
            x = y
            jac = step if jac is None else jac @ step
    return jac


def _jacobian(config: SimConfig, layers: list[Layer]) -> np.ndarray:
    act, params = get_activation(config.activation), config.activation_params
    x = _one_input(config)
    jac = None
    with np.errstate(all="ignore"):
        for w, b in layers:
            w = w.astype(np.float64)
            h = x @ w + b
            slope = act.derivative(h.copy(), params)
            jac = w * slope if jac is None else (jac @ w) * slope
            x = act.forward(h, params)
    return jac


def jacobian_spectrum(config: SimConfig) -> JacobianSpectrum:
    """The singular values of `jacobian` (width 1024, 20 layers: one to a few seconds on 2 cores),
    with mean-field theory's mean s^2 for the same weights."""
    config = _checked(config)
    if config.residual != "none":
        jac, theory = _block_jacobian(config, initial_blocks(config)), None  # no mean-field s^2 for blocks
    else:
        layers = initial_weights(config)
        jac = _jacobian(config, layers)
        theory = config_prediction(config, [w for w, _ in layers]).jacobian_mean_square
    if not np.all(np.isfinite(jac)):
        raise ConfigError("config", "the Jacobian overflows float64: the signal explodes (fewer "
                          "layers or a smaller weight variance)")
    from scipy import linalg  # imported on first use: keeps the window's start-up lean

    return JacobianSpectrum(linalg.svdvals(jac), theory, max(jac.shape))


def isometry_pair(config: SimConfig) -> tuple[SimConfig, SimConfig]:
    """The config with Gaussian weights and with orthogonal weights of the same sigma_w^2 (and the
    same bias variance): the comparison that shows dynamical isometry."""
    sigma_w2, sigma_b2 = config_sigmas(config)
    gaussian = config_at(config, sigma_w2, sigma_b2)
    return gaussian, gaussian.replace(init="orthogonal", init_params={"gain": math.sqrt(sigma_w2)}).validated()


# --- the weights and Marchenko-Pastur ------------------------------------------------------

def marchenko_pastur_support(ratio: float, variance: float) -> tuple[float, float]:
    """The edges v (1 -+ sqrt(ratio))^2 of the law's continuous part."""
    return variance * (1 - math.sqrt(ratio)) ** 2, variance * (1 + math.sqrt(ratio)) ** 2


def marchenko_pastur_pdf(x, ratio: float, variance: float) -> np.ndarray:
    """Density of the continuous part, sqrt((b - x)(x - a)) / (2 pi v ratio x) on [a, b]; for
    ratio > 1 the law also has an atom of mass 1 - 1/ratio at 0, which this leaves out."""
    x = np.asarray(x, np.float64)
    low, high = marchenko_pastur_support(ratio, variance)
    inside = (x > low) & (x < high) & (x > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        density = np.sqrt((high - x) * (x - low)) / (2 * math.pi * variance * ratio * x)
    return np.where(inside, density, 0.0)


def marchenko_pastur_cdf(x, ratio: float, variance: float) -> np.ndarray:
    """The law's distribution function, atom included, in closed form.

    With x = m + r cos t (m = v (1 + ratio), r = 2 v sqrt(ratio)) the density becomes
    r^2 sin^2 t / (2 pi v ratio (m + r cos t)) dt, whose integral is elementary."""
    x = np.asarray(x, np.float64)
    m, r = variance * (1 + ratio), 2 * variance * math.sqrt(ratio)
    root = variance * abs(1 - ratio)  # sqrt(m^2 - r^2)

    def integral(t):  # of sin^2 s / (m + r cos s) over [0, t]
        return (-np.sin(t) / r + m * t / r**2
                - 2 * root / r**2 * np.arctan(math.sqrt((m - r) / (m + r)) * np.tan(t / 2)))

    t = np.arccos(np.clip((x - m) / r, -1, 1))
    continuous = r**2 / (2 * math.pi * variance * ratio) * (integral(np.pi) - integral(t))
    atom = max(0.0, 1 - 1 / ratio)
    return np.where(x >= 0, atom, 0.0) + continuous


@dataclass(frozen=True)
class WeightSpectrum:
    eigenvalues: np.ndarray  # of W^T W / fan_in, ascending, fan_out of them
    fan_in: int
    fan_out: int
    variance: float  # of the entries, E[W^2]: the Marchenko-Pastur law's scale

    @property
    def ratio(self) -> float:
        return self.fan_out / self.fan_in

    @property
    def support(self) -> tuple[float, float]:
        return marchenko_pastur_support(self.ratio, self.variance)

    def density(self, x) -> np.ndarray:
        """The Marchenko-Pastur density to lay over the histogram (divide its counts by
        total * bin width to compare)."""
        return marchenko_pastur_pdf(x, self.ratio, self.variance)

    def histogram(self, bins: int = 64) -> Histogram:
        """Counts over the eigenvalues' range joined with the law's support."""
        low, high = self.support
        return histogram(self.eigenvalues, min(low, float(self.eigenvalues[0])),
                         max(high, float(self.eigenvalues[-1])), bins)

    def ks_distance(self) -> float:
        """Kolmogorov-Smirnov distance between the eigenvalues and the law's continuous part (the
        fan_out - fan_in zeros of a widening layer are its atom, exact by construction): ~0.01 for
        a Gaussian layer of width 1024, above 0.5 for an orthogonal one."""
        if self.variance == 0:  # all weights zero: there is no law to compare with
            return math.nan
        atom = max(0, self.fan_out - self.fan_in)
        mass = min(1.0, 1 / self.ratio)

        def continuous_cdf(x):
            return (marchenko_pastur_cdf(x, self.ratio, self.variance) - (1 - mass)) / mass

        from scipy import stats  # imported on first use: keeps the window's start-up lean

        return float(stats.kstest(self.eigenvalues[atom:], continuous_cdf).statistic)


def weight_spectrum(w: np.ndarray, variance: float | None = None) -> WeightSpectrum:
    """The spectrum of one layer's W (shape (fan_in, fan_out)); the law's scale is ``variance``,
    by default the entries' mean square."""
    w = np.asarray(w, np.float64)
    fan_in, fan_out = w.shape
    variance = float(np.mean(w * w)) if variance is None else float(variance)
    # W^T W and W W^T share their nonzero eigenvalues: decompose the smaller, pad with zeros.
    gram = w.T @ w if fan_out <= fan_in else w @ w.T
    from scipy import linalg

    eigenvalues = np.clip(linalg.eigvalsh(gram / fan_in), 0, None)
    eigenvalues = np.concatenate([np.zeros(fan_out - eigenvalues.size), eigenvalues])
    return WeightSpectrum(eigenvalues, fan_in, fan_out, variance)
