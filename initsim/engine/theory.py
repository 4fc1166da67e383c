"""Mean-field theory of signal propagation (Poole et al. 2016; Schoenholz et al. 2017).

Weights with E[W^2] = sigma_w^2 / fan_in and biases with E[b^2] = sigma_b^2, in the infinite-width
limit, give the pre-activation variance recursion
    q^1 = sigma_w^2 E[x^2] + sigma_b^2,   q^l = sigma_w^2 E_z[phi(sqrt(q^{l-1}) z)^2] + sigma_b^2,
the correlation map of two inputs
    c^l = (sigma_w^2 E[phi(u_1) phi(u_2)] + sigma_b^2) / q^l,  (u_1, u_2) ~ N(0, q^{l-1} [[1, c], [c, 1]]),
and the backward recursion of the gradient variance, one factor sigma_w^2 E_z[phi'(sqrt(q^l) z)^2]
per layer (chi_1 at the fixed point q*): chi_1 < 1 ordered, > 1 chaotic, = 1 critical.

Gaussian expectations are integrated by quadrature (`gauss`). All functions take numpy arrays and
broadcast.

Residual networks (`residual_moments`) follow the stream x_l = x_{l-1} + alpha F(norm(x_{l-1})) (or
its post-norm form) instead: the branch adds alpha^2 (s2_W2 E[phi(h)^2] + Var(b2)) to the stream's
variance, so it has no fixed point to speak of, and the gradient's variance gains a factor
1 + alpha^2 s2_W1 s2_W2 E[phi'(h)^2] (times the norm's 1 / variance) per block.

Grids (the phase diagram, the critical line) do not integrate per point: E[phi^2] and E[phi'^2]
depend on q alone, so `moment_table` integrates them once on a log grid of q and interpolates.

Whether the variance map has a fixed point is decided by its asymptotics, not by where an iteration
stops: every activation here grows at most linearly, phi(u) ~ a_+- u as u -> +-inf, so the map
grows like sigma_w^2 m q with m = (a_+^2 + a_-^2) / 2 = lim E[phi^2] / q. Its excess over the
diagonal is evaluated as (sigma_w^2 m - 1) q + sigma_w^2 R(q) + sigma_b^2, with the remainder
R(q) = E[phi^2] - m q integrated as such: where sigma_w^2 m = 1 (softplus, ELU, GELU at
sigma_w^2 = 2) the excess is R alone, O(1) or O(1/sqrt(q)) at a q where E[phi^2] itself carries
rounding errors far larger, and its sign says whether the map stays above the diagonal for ever.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .activations import Activation, get_activation
from .chain import load_chain
from .config import SimConfig
from .gauss import gauss_expectation, pair_expectation
from .network import NORM_EPS
from .schemes import CHECKPOINT, get_bias_init, get_scheme

_TAIL_U = 1e3  # where the tails' slopes a_+- = phi'(+-u) are read

# The moment table spans q in [1e-10, 1e10]: a fixed point below is reported as 0, above as inf.
_Q_MIN, _Q_MAX = 1e-10, 1e10
_TABLE_PER_DECADE = 64  # cubic-spline interpolation error ~5e-9 relative
_SEARCH_STRIDE = 8  # the first crossing of the variance map is searched on every 8th table node
_BISECTIONS = 48  # halves a search cell (ln q width 0.29) down to ~1e-15
_CHUNK = 8192  # grid points per block of the crossing search (bounds its memory to ~10 MB)


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
    """sigma_w^2 E[phi'(sqrt(q) z)^2]: the per-layer factor of the gradient variance.

    q is taken as at least 1e-10: at q = 0 the limit from above is meant (phi' of a kinked activation
    at exactly 0 is a convention, its average near 0 is not)."""
    return sigma_w2 * slope_moment(act, params, np.maximum(q, _Q_MIN))


def correlation_map(act: Activation, params: dict, c, q, sigma_w2, sigma_b2) -> np.ndarray:
    """One layer of the correlation map: two inputs whose pre-activations have variance ``q`` and
    correlation ``c`` come out of the next layer with correlation
    (sigma_w^2 E[phi(u_1) phi(u_2)] + sigma_b^2) / (sigma_w^2 E[phi(u)^2] + sigma_b^2)."""
    covariance = sigma_w2 * pair_expectation(lambda u: act.forward(u, params), q, c) + sigma_b2
    return covariance / variance_map(act, params, q, sigma_w2, sigma_b2)


_CRITICAL_TOLERANCE = 1e-9  # |chi_1 - 1| below this counts as critical


def depth_scale(chi):
    """Layers over which the gradient variance changes by a factor e: 1 / |ln chi_1| (inf at 1).

    A float for a float, an array for an array."""
    chi = np.asarray(chi, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(np.abs(chi - 1) <= _CRITICAL_TOLERANCE, np.inf, 1 / np.abs(np.log(chi)))
    return float(scale) if scale.ndim == 0 else scale


def phase_of(chi: float) -> str:
    """"ordered" (gradients vanish), "chaotic" (they explode), "critical" or "undefined" (NaN)."""
    if math.isnan(chi):
        return "undefined"
    if abs(chi - 1) <= _CRITICAL_TOLERANCE:
        return "critical"
    return "ordered" if chi < 1 else "chaotic"


# --- the moment table and the fixed point, vectorised over grids ---------------------------

def tail_slopes(act: Activation, params: dict) -> tuple[float, float]:
    """(a_-, a_+): phi(u) ~ a_+- u as u -> +-inf (0 for a flat tail)."""
    with np.errstate(over="ignore", invalid="ignore"):
        slopes = act.derivative(np.array([-_TAIL_U, _TAIL_U]), params)
    return float(slopes[0]), float(slopes[1])


def _beyond_the_tails(act: Activation, params: dict) -> Callable[[np.ndarray], np.ndarray]:
    """u -> phi(u)^2 - (a_+- u)^2, whose mean is R(q) = E[phi(sqrt(q) z)^2] - m q: integrated as
    such, R has no cancellation (relative accuracy at any q; exactly 0 where phi is linear)."""
    low, high = tail_slopes(act, params)

    def integrand(u: np.ndarray) -> np.ndarray:
        tail = np.where(u > 0, high, low) * u
        phi = act.forward(u.copy(), params)
        return (phi - tail) * (phi + tail)

    return integrand


class UniformCubicSpline:
    """The not-a-knot cubic spline through (x[i], y[i]) on four or more equally spaced nodes x
    (scipy's CubicSpline's, up to rounding), a cubic per cell, extrapolated with the end cells'.
    Built with numpy alone: scipy.interpolate takes half a second to import on a slow machine, and
    the window's first run needs the moment table before its first layer."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        n = len(x) - 1
        self.x0, self.h, self.n = float(x[0]), float(x[1] - x[0]), n
        h = self.h
        self.y = y = np.asarray(y, np.float64)
        # The second derivatives M: M[i-1] + 4 M[i] + M[i+1] = 6 (y[i+1] - 2 y[i] + y[i-1]) / h^2 at
        # the inner nodes. Not-a-knot (a third derivative continuous at nodes 1 and n - 1) gives
        # M[0] = 2 M[1] - M[2], which makes the first row 6 M[1] = its right-hand side; likewise at
        # the other end. The rows between are tridiagonal, solved by elimination (Thomas).
        rhs = 6.0 / (h * h) * (y[2:] - 2.0 * y[1:-1] + y[:-2])
        m = np.empty(n + 1)
        m[1], m[n - 1] = rhs[0] / 6.0, rhs[-1] / 6.0
        d = rhs[1:-1].copy()  # the rows between, with M[1] and M[n - 1] moved to the right
        if len(d):
            d[0] -= m[1]
            d[-1] -= m[n - 1]
        c = np.empty(len(d))
        previous_c = previous_d = 0.0
        for i in range(len(d)):
            c[i] = previous_c = 1.0 / (4.0 - previous_c)
            d[i] = previous_d = (d[i] - previous_d) * previous_c
        for i in range(len(d) - 2, -1, -1):
            d[i] -= c[i] * d[i + 1]
        m[2:n - 1] = d
        m[0], m[n] = 2.0 * m[1] - m[2], 2.0 * m[n - 1] - m[n - 2]
        self.m = m

    def __call__(self, x) -> np.ndarray:
        h, y, m = self.h, self.y, self.m
        s = (np.asarray(x, np.float64) - self.x0) / h
        i = np.clip(np.nan_to_num(np.floor(s)), 0, self.n - 1).astype(np.intp)  # NaN: any cell
        t = (s - i) * h  # NaN stays NaN
        slope = (y[i + 1] - y[i]) / h - h * (2.0 * m[i] + m[i + 1]) / 6.0
        return y[i] + t * (slope + t * (m[i] / 2.0 + t * (m[i + 1] - m[i]) / (6.0 * h)))


@dataclass(frozen=True)
class MomentTable:
    """E[phi(sqrt(q) z)^2] = m q + R(q) and E[phi'(sqrt(q) z)^2] of one activation, with m the
    growth at large q (see the module's docstring), R a cubic spline of ln q and the slope moment
    one of its log: both are smooth functions of q, even for kinked activations (the Gaussian
    averages the kink).

    R's spline keeps its relative accuracy at large q, where R is a power of q of order at most
    1/2; at small q, where R or E[phi^2] is ~ q, the grid is dense enough for ~5e-9. Queries
    outside [1e-10, 1e10] get the value at the nearer end (the limits q -> 0+ and q -> inf)."""

    log_q: np.ndarray
    growth: float  # m = lim E[phi^2] / q
    remainder: UniformCubicSpline
    log_slope: UniformCubicSpline

    def _x(self, q) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.clip(np.log(np.asarray(q, np.float64)), self.log_q[0], self.log_q[-1])

    def excess(self, sigma_w2, sigma_b2, log_q) -> np.ndarray:
        """map(q) - q at q = exp(log_q) (inside the table), the linear terms taken together first:
        exactly R's where sigma_w^2 m = 1."""
        return (sigma_w2 * self.growth - 1) * np.exp(log_q) + sigma_w2 * self.remainder(log_q) + sigma_b2

    def slope(self, q) -> np.ndarray:
        return np.exp(self.log_slope(self._x(q)))

    def second(self, q) -> np.ndarray:
        """E[phi(sqrt(q) z)^2] = m q + R(q); for q beyond the table m q + R at its end, R growing
        slower than q (and inf at an infinite q unless m = 0, where E[phi^2] is R's limit)."""
        linear = self.growth * np.asarray(q, np.float64) if self.growth else 0.0
        return linear + self.remainder(self._x(q))


def moment_table(act: Activation, params: dict) -> MomentTable:
    """The two moments of ``act`` with ``params`` on a log grid of q, integrated once per process
    (about 20 ms: every simulation run asks for it before its first layer)."""
    return _moment_table(act.name, tuple(sorted(params.items())))


@functools.lru_cache(maxsize=64)
def _moment_table(name: str, params: tuple[tuple[str, object], ...]) -> MomentTable:
    act, params = get_activation(name), dict(params)
    decades = round(math.log10(_Q_MAX / _Q_MIN))
    log_q = np.linspace(math.log(_Q_MIN), math.log(_Q_MAX), decades * _TABLE_PER_DECADE + 1)
    q = np.exp(log_q)
    low, high = tail_slopes(act, params)
    beyond_the_tails = _beyond_the_tails(act, params)
    # One quadrature rule for both: building it costs more than either integrand.
    remainder, slope = gauss_expectation(
        lambda u: np.stack([beyond_the_tails(u), act.derivative(u, params) ** 2]), q)
    return MomentTable(log_q, (low * low + high * high) / 2, UniformCubicSpline(log_q, remainder),
                       UniformCubicSpline(log_q, np.log(slope)))


def _first_crossing(table: MomentTable, sigma_w2: np.ndarray, sigma_b2: np.ndarray, q0: float,
                    up: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For flat arrays: the table cell in which the variance map, iterated from q0, stops moving.

    The map q -> sigma_w^2 E[phi^2] + sigma_b^2 is increasing in q, so its iterates move
    monotonically, up or down, to the nearest fixed point in that direction. Returns (ln q low,
    ln q high, found); in that cell the map's excess g(q) = map(q) - q goes from >= 0 to <= 0.
    """
    nodes = table.log_q[::_SEARCH_STRIDE]
    x0 = math.log(q0)
    low, high = np.empty(up.shape), np.empty(up.shape)
    found = np.zeros(up.shape, bool)
    for start in range(0, up.size, _CHUNK):
        part = slice(start, start + _CHUNK)
        excess = table.excess(sigma_w2[part, None], sigma_b2[part, None], nodes)
        going_up = up[part, None]
        # Upward: the first node above q0 where the map no longer rises; downward: the last below.
        stop = np.where(going_up, (nodes > x0) & (excess <= 0), (nodes < x0) & (excess >= 0))
        first = np.argmax(stop, axis=1)
        last = nodes.size - 1 - np.argmax(stop[:, ::-1], axis=1)
        k = np.where(up[part], first, last)
        found[part] = stop.any(axis=1)
        low[part] = np.where(up[part], np.maximum(nodes[np.maximum(k - 1, 0)], x0), nodes[k])
        high[part] = np.where(up[part], nodes[k], np.minimum(nodes[np.minimum(k + 1, nodes.size - 1)], x0))
    return low, high, found


def _fixed_point(table: MomentTable, sigma_w2: np.ndarray, sigma_b2: np.ndarray, q0: float) -> np.ndarray:
    """q* of flat arrays of (sigma_w2, sigma_b2), as iterating the variance map from q0 finds it."""
    q0 = float(np.clip(q0, _Q_MIN, _Q_MAX))
    # A variance that overflowed float64 has no fixed point; it stands in as 1 (inf * R(q) = 0 * inf
    # would be NaN), and huge finite ones make the excess overflow to inf, whose sign is still right.
    unbounded = np.isposinf(sigma_w2) | np.isposinf(sigma_b2)
    sigma_w2, sigma_b2 = np.where(unbounded, 1.0, sigma_w2), np.where(unbounded, 0.0, sigma_b2)
    with np.errstate(over="ignore"):
        step = table.excess(sigma_w2, sigma_b2, math.log(q0))
        up = step > 0
        low, high, found = _first_crossing(table, sigma_w2, sigma_b2, q0, up)
        for _ in range(_BISECTIONS):
            mid = (low + high) / 2
            rising = table.excess(sigma_w2, sigma_b2, mid) > 0
            low, high = np.where(rising, mid, low), np.where(rising, high, mid)
    q = np.exp((low + high) / 2)
    q = np.where(found, q, np.where(up, np.inf, 0.0))
    q = np.where(np.abs(step) <= 1e-12 * q0, q0, q)  # q0 is itself a fixed point (e.g. ReLU + He)
    return np.where(np.isnan(step), np.nan, np.where(unbounded, np.inf, q))


def fixed_point(act: Activation, params: dict, sigma_w2, sigma_b2, q0: float = 1.0,
                table: MomentTable | None = None) -> np.ndarray:
    """q*: where iterating the variance map from q0 ends (vectorised over sigma_w2, sigma_b2).

    0 where the variance dies out (below 1e-10), inf where it grows without bound: the map stays
    above the diagonal for ever (its excess is evaluated so that its sign holds at any q, see the
    module's docstring), or it meets it only above 1e10. Pass ``table`` to reuse one activation's
    `moment_table` across calls."""
    table = table or moment_table(act, params)
    sigma_w2, sigma_b2 = np.broadcast_arrays(np.asarray(sigma_w2, np.float64), np.asarray(sigma_b2, np.float64))
    return _fixed_point(table, sigma_w2.ravel(), sigma_b2.ravel(), q0).reshape(sigma_w2.shape)


def chi1_at_fixed_point(act: Activation, params: dict, sigma_w2, sigma_b2, q0: float = 1.0,
                        table: MomentTable | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(q*, chi_1 at q*) over a grid, from the moment table (relative accuracy ~1e-8).

    Where q* is infinite, chi_1 is its limit sigma_w^2 m (phi'(u) -> a_+- too), not its value at
    the table's end: softplus at sigma_w^2 = 2 is critical, as it is where ReLU's is."""
    table = table or moment_table(act, params)
    q_star = fixed_point(act, params, sigma_w2, sigma_b2, q0, table)
    return q_star, np.where(np.isinf(q_star), sigma_w2 * table.growth, sigma_w2 * table.slope(q_star))


# --- the order/chaos phase diagram ---------------------------------------------------------

_CRITICAL_SCAN = np.geomspace(1e-2, 1e3, 96)  # sigma_w^2 values scanned for the critical line
_CRITICAL_BISECTIONS = 40


def critical_line(act: Activation, params: dict, sigma_b2, q0: float = 1.0,
                  table: MomentTable | None = None) -> np.ndarray:
    """For each sigma_b^2, the smallest sigma_w^2 in [0.01, 1000] where chi_1 = 1: ordered below
    it, chaotic above. NaN where chi_1 does not cross 1 in that range."""
    table = table or moment_table(act, params)
    sigma_b2 = np.asarray(sigma_b2, np.float64)
    flat_b2 = sigma_b2.ravel()

    def log_chi(sw: np.ndarray, sb: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(chi1_at_fixed_point(act, params, sw, sb, q0, table)[1])

    scan = np.broadcast_to(_CRITICAL_SCAN, (flat_b2.size, _CRITICAL_SCAN.size))
    chaotic = log_chi(scan, flat_b2[:, None]) > 0
    crosses = chaotic[:, 1:] & ~chaotic[:, :-1]
    k = np.argmax(crosses, axis=1)
    low, high = np.log(_CRITICAL_SCAN[k]), np.log(_CRITICAL_SCAN[k + 1])
    for _ in range(_CRITICAL_BISECTIONS):
        mid = (low + high) / 2
        above = log_chi(np.exp(mid), flat_b2) > 0
        low, high = np.where(above, low, mid), np.where(above, mid, high)
    line = np.where(crosses.any(axis=1), np.exp((low + high) / 2), np.nan)
    return line.reshape(sigma_b2.shape)


@dataclass(frozen=True)
class PhaseDiagram:
    """q* and chi_1 over a grid: rows are sigma_b^2 (``sigma_b2[i]``), columns sigma_w^2."""

    activation: str
    sigma_w2: np.ndarray  # (columns,)
    sigma_b2: np.ndarray  # (rows,)
    q_star: np.ndarray  # (rows, columns)
    chi1: np.ndarray  # (rows, columns)
    critical_sigma_w2: np.ndarray  # (rows,): the critical line, NaN where there is none in range

    @property
    def log_chi1(self) -> np.ndarray:
        """ln chi_1: negative ordered, positive chaotic, 0 on the critical line."""
        with np.errstate(divide="ignore"):
            return np.log(self.chi1)

    @property
    def depth_scale(self) -> np.ndarray:
        return depth_scale(self.chi1)


def phase_axes(act: Activation, params: dict, grid: int = 200, sigma_w2_max: float | None = None,
               sigma_b2_max: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Default axes that put the critical line in view: sigma_w^2 in (0, 3 w0], sigma_b^2 in
    [0, 0.1 w0], w0 the critical sigma_w^2 at sigma_b^2 = 0 (1 for tanh, 2 for ReLU)."""
    if sigma_w2_max is None or sigma_b2_max is None:
        w0 = float(critical_line(act, params, 0.0))
        w0 = w0 if math.isfinite(w0) else 1.0
        sigma_w2_max = 3 * w0 if sigma_w2_max is None else sigma_w2_max
        sigma_b2_max = 0.1 * w0 if sigma_b2_max is None else sigma_b2_max
    return (np.linspace(sigma_w2_max / grid, sigma_w2_max, grid), np.linspace(0.0, sigma_b2_max, grid))


def phase_diagram(act: Activation, params: dict, sigma_w2: Sequence[float], sigma_b2: Sequence[float],
                  q0: float = 1.0) -> PhaseDiagram:
    """The order/chaos diagram on the grid sigma_b2 x sigma_w2 (a 200 x 200 grid in ~0.1 s)."""
    table = moment_table(act, params)
    sigma_w2, sigma_b2 = np.asarray(sigma_w2, np.float64), np.asarray(sigma_b2, np.float64)
    q_star, chi = chi1_at_fixed_point(act, params, sigma_w2[None, :], sigma_b2[:, None], q0, table)
    return PhaseDiagram(act.name, sigma_w2, sigma_b2, q_star, chi,
                        critical_line(act, params, sigma_b2, q0, table))


# --- one network: per-layer prediction ----------------------------------------------------

def _variances(act: Activation, params: dict, sigma_w2: Sequence[float], sigma_b2: Sequence[float],
               input_second_moment: float) -> np.ndarray:
    """q^1..q^L of the forward recursion, layer l with its own sigma_w2[l] and sigma_b2[l]."""
    q = np.empty(len(sigma_w2))
    previous = sigma_w2[0] * input_second_moment + sigma_b2[0]
    q[0] = previous
    with np.errstate(over="ignore"):  # a variance past float64's range is inf, as it should read
        for l in range(1, len(sigma_w2)):
            previous = float(variance_map(act, params, previous, sigma_w2[l], sigma_b2[l]))
            q[l] = previous if math.isfinite(previous) else math.inf
    return q


_CORRELATION_NODES = 32  # per segment of the 2-D rule: within 2e-7 of E[phi^2] of the 48-node rule, twice as fast


def _correlations(act: Activation, params: dict, sigma_w2: Sequence[float], sigma_b2: Sequence[float],
                  q: np.ndarray) -> np.ndarray:
    """c^1..c^L: the correlation of two inputs' pre-activations, from independent inputs (c^0 = 0,
    as the simulation's), layer l with its own sigma_w2[l], sigma_b2[l] and variance q[l]. NaN from
    a layer whose variance died out (0) or left float64's range: the correlation is undefined."""
    c = np.full(len(q), math.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        c[0] = sigma_b2[0] / q[0]
        for l in range(1, len(q)):
            if not (0 < q[l - 1] < math.inf and 0 < q[l] < math.inf and math.isfinite(c[l - 1])):
                break
            pair = pair_expectation(lambda u: act.forward(u, params), q[l - 1], c[l - 1], _CORRELATION_NODES)
            c[l] = (sigma_w2[l] * pair + sigma_b2[l]) / q[l]
    return np.clip(c, -1.0, 1.0)


def _q_star_and_chi1(act: Activation, params: dict, sigma_w2: float, sigma_b2: float,
                     q0: float) -> tuple[float, float]:
    """The fixed point, and chi_1 there integrated exactly (not interpolated; at an infinite q*,
    its limit, as `chi1_at_fixed_point`)."""
    table = moment_table(act, params)
    q_star = float(fixed_point(act, params, sigma_w2, sigma_b2, q0, table))
    if math.isinf(q_star):
        return q_star, float(sigma_w2 * table.growth)
    return q_star, float(chi1(act, params, q_star, sigma_w2))


@dataclass(frozen=True)
class TheoryPrediction:
    """Mean-field prediction for one network, next to which the measurement is shown."""

    pre_std: tuple[float | None, ...]  # per layer, std of the activation's input (None: no prediction)
    grad_std: tuple[float | None, ...]  # per layer, std of dL/dh (None where no theory applies)
    sigma_w2: tuple[float, ...]
    sigma_b2: float  # of the hidden layers (layer 1's, from its own fan_in, is in pre_std[0])
    q_star: float | None
    chi1: float | None
    depth_scale: float | None
    # Mean s^2 of the input-output Jacobian d x_L / d x_0: the product of the layers' own
    # chi_1(q^l), not chi_1(q*)^L (the input is not at q*); None with a normalization.
    jacobian_mean_square: float | None
    # Per layer, the correlation c^l of two independent inputs' pre-activations (None with a
    # normalization, which the theory here does not model, or where the variance died out or left
    # float64's range).
    sample_correlation: tuple[float | None, ...]
    # Per layer, std of the layer's output: a residual block's stream x_l (None for a plain layer,
    # whose activation's mean the theory here does not track)
    post_std: tuple[float | None, ...]
    # Per layer, std of what a residual block's branch adds, alpha F (None for a plain layer)
    branch_std: tuple[float | None, ...]


def predict(act: Activation, params: dict, sigma_w2: Sequence[float], fan_ratio: Sequence[float],
            sigma_b2: float | Sequence[float], input_second_moment: float = 1.0, normalized: bool = False,
            pre_variance: Sequence[float] | None = None) -> TheoryPrediction:
    """The per-layer prediction.

    ``sigma_w2[l] = fan_in * E[W^2]``, ``fan_ratio[l] = fan_out / fan_in`` and ``sigma_b2[l] =
    E[b^2]`` (one number: the same for every layer) of layer l (0-based); ``normalized``: a
    normalization before the activation fixes each pre-activation's variance at 1;
    ``pre_variance`` overrides the forward recursion (e.g. LSUV, which sets it to 1 by construction).
    The backward recursion starts from a unit-variance gradient at the network's output.

    The Jacobian's mean s^2 is tr(J J^T) / min(fan_in_1, fan_out_L): each of J's fan_in_1 rows has
    a squared norm of prod_l sigma_w2[l] fan_ratio[l] E[phi'(sqrt(q^l) z)^2].
    """
    layers = len(sigma_w2)
    sigma_b2 = np.broadcast_to(np.asarray(sigma_b2, float), (layers,))
    if normalized:
        q = np.ones(layers)
    elif pre_variance is not None:
        q = np.asarray(pre_variance, float)
    else:
        q = _variances(act, params, sigma_w2, sigma_b2, input_second_moment)
    with np.errstate(over="ignore", invalid="ignore"):
        slopes = slope_moment(act, params, np.where(np.isfinite(q), q, 1e300))
        grad_var = np.empty(layers)
        g = slopes[-1]
        grad_var[-1] = g
        for l in range(layers - 1, 0, -1):
            g = g * sigma_w2[l] * fan_ratio[l] * slopes[l - 1]
            grad_var[l - 1] = g
        widening = float(np.prod(fan_ratio))  # fan_out_L / fan_in_1
        row_square = float(np.prod(np.asarray(sigma_w2) * np.asarray(fan_ratio) * slopes))
        jacobian_square = row_square * max(1.0, 1 / widening)
    grad = tuple(None if normalized else float(math.sqrt(v)) if v >= 0 else math.nan for v in grad_var)
    correlation = np.full(layers, math.nan) if normalized else _correlations(act, params, sigma_w2, sigma_b2, q)
    hidden = 1 if layers > 1 else 0
    q_star, chi = _q_star_and_chi1(act, params, sigma_w2[hidden], float(sigma_b2[hidden]), float(q[0]))
    return TheoryPrediction(
        pre_std=tuple(float(math.sqrt(v)) for v in q), grad_std=grad,
        sigma_w2=tuple(float(s) for s in sigma_w2), sigma_b2=float(sigma_b2[hidden]),
        q_star=q_star if not normalized else 1.0, chi1=chi if not normalized else None,
        depth_scale=depth_scale(chi) if not normalized else None,
        jacobian_mean_square=None if normalized else jacobian_square,
        sample_correlation=tuple(float(v) if math.isfinite(v) else None for v in correlation),
        post_std=(None,) * layers, branch_std=(None,) * layers,
    )


@dataclass(frozen=True)
class MeanField:
    """Two inputs through a deep net of one (sigma_w^2, sigma_b^2), layer by layer."""

    activation: str
    sigma_w2: float
    sigma_b2: float
    q: np.ndarray  # (depth,): pre-activation variance q^l
    c: np.ndarray  # (depth,) + shape of c0: correlation of the two inputs' pre-activations
    q_star: float
    chi1: float
    depth_scale: float


def mean_field(act: Activation, params: dict, sigma_w2: float, sigma_b2: float, depth: int,
               q0: float = 1.0, c0=0.5) -> MeanField:
    """q^l and c^l for l = 1..depth from inputs with E[x^2] = q0 and correlation c0 (one or many)."""
    q = _variances(act, params, [sigma_w2] * depth, [sigma_b2] * depth, q0)
    c0 = np.asarray(c0, np.float64)
    c = np.empty((depth,) + c0.shape)
    # A variance that died out (0) or left float64's range leaves the correlation undefined:
    # NaN from there on, without a warning each layer.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        c[0] = (sigma_w2 * q0 * c0 + sigma_b2) / q[0]
        for l in range(1, depth):
            c[l] = correlation_map(act, params, c[l - 1], min(q[l - 1], 1e300), sigma_w2, sigma_b2)
    q_star, chi = _q_star_and_chi1(act, params, sigma_w2, sigma_b2, float(q[0]))
    return MeanField(act.name, float(sigma_w2), float(sigma_b2), q, c, q_star, chi, depth_scale(chi))


# --- configs and the (sigma_w^2, sigma_b^2) plane -------------------------------------------

def layer_sigmas(config: SimConfig, layer: int) -> tuple[float, float]:
    """(sigma_w^2, sigma_b^2) of 1-based ``layer``: fan_in E[W^2] and E[b^2], from the scheme's and
    the bias init's formulas at the layer's own fans (for LSUV, the orthogonal start it rescales);
    for a checkpoint, fan_in mean(W^2) and mean(b^2) of its file's layer, measured."""
    if config.init == CHECKPOINT:
        return load_chain(config.init_params["file"], config.init_params["layout"]).sigmas()[layer - 1]
    fan_in, fan_out = config.fans(layer)
    sigma_w2 = fan_in * get_scheme(config.init).second_moment(fan_in, fan_out, config.init_params)
    return sigma_w2, get_bias_init(config.bias_init).second_moment(fan_in, config.bias_params)


def config_sigmas(config: SimConfig) -> tuple[float, float]:
    """(sigma_w^2, sigma_b^2) of a config's hidden layers (layer 1's fan_in is the input's)."""
    return layer_sigmas(config, 2 if config.layers > 1 else 1)


_PREDICTION = "_prediction"  # where a config keeps its prediction (see config_prediction)


def config_prediction(config: SimConfig, weights: Sequence[np.ndarray] | None = None) -> TheoryPrediction:
    """The mean-field prediction for a validated config's network, each layer with its own fans.

    A data-dependent scheme (LSUV) sets each pre-activation's variance to 1, and its sigma_w^2 are
    those of ``weights``, the weights it ended up with (NaN while they are not known).

    Computed once per config and kept on it (a config is immutable), for the run, the views and
    the exports that ask for it, unless it depends on ``weights``."""
    data_dependent = get_scheme(config.init).data_dependent
    depends_on_weights = data_dependent and weights is not None
    if not depends_on_weights and _PREDICTION in config.__dict__:
        return config.__dict__[_PREDICTION]
    if config.residual != "none":
        prediction = _residual_prediction(config)
        object.__setattr__(config, _PREDICTION, prediction)
        return prediction
    layers = range(1, config.layers + 1)
    sigma_w2, sigma_b2 = zip(*(layer_sigmas(config, layer) for layer in layers))
    if data_dependent:
        sigma_w2 = [config.fans(layer)[0] * float(np.mean(np.square(weights[layer - 1], dtype=np.float64)))
                    if weights else math.nan for layer in layers]
    ratio = [fan_out / fan_in for fan_in, fan_out in map(config.fans, layers)]
    # Every norm sets q = 1. Mean-field pre-activations are centred Gaussians, h ~ N(0, q) for each
    # unit, so the mean and the mean square over a layer's many units (or a unit's many samples) are 0
    # and q: layer and batch norm give u = h / sqrt(q), and so does rms, which divides by the root
    # mean square without subtracting the mean (0 anyway). The norm's eps scales q = 1 by
    # q_h / (q_h + eps), q_h the variance of h: 1 but for 1e-5 relative at q_h = 1, less only when
    # q_h itself nears eps.
    prediction = predict(get_activation(config.activation), config.activation_params, sigma_w2, ratio, sigma_b2,
                         normalized=config.norm != "none",
                         pre_variance=[1.0] * config.layers if data_dependent else None)
    if not depends_on_weights:
        object.__setattr__(config, _PREDICTION, prediction)
    return prediction


@dataclass(frozen=True)
class BlockSigmas:
    """What the mean-field recursion of a residual block needs of its weights: sigma_w^2 = fan_in
    E[W^2] of W1 (width, E width) and W2 (E width, width) at their own fans (W1's with Fixup's
    L^(-1/2) applied, W2's 0 with Fixup), and each bias's mean and variance about it (a constant
    bias init is all mean: the stream adds it up block after block, see `residual_moments`)."""

    w1: float
    w2: float
    b1_mean: float
    b1_var: float
    b2_mean: float
    b2_var: float


@dataclass(frozen=True)
class ResidualMoments:
    """The mean-field moments of a residual network's blocks, each array (blocks,), block l at l - 1.

    The stream x_l has, per unit, the mean m_l (the same for every unit and sample: what constant
    biases add up to) and about it the variance ``stream_var`` (all that random weights and
    inputs give), so E[x^2] = stream_var + stream_mean^2; ``stream_covariance`` is what two
    independent inputs' streams share about that mean, E[x_a x_b] - m^2. The branch's hidden
    pre-activation a = u W1 + b1 has E[a^2] = ``hidden`` and the correlation ``hidden_correlation``
    of two inputs' a (as cosines over units, what `stats.sample_geometry` measures); ``branch`` is
    the variance of alpha F about its mean; ``grad`` the per-unit variance of dL/dx_l from a unit
    one injected at x_L, and ``grad_factor`` block l's g_{l-1} / g_l (so g_l is the product of the
    factors of the blocks above l)."""

    hidden: np.ndarray
    hidden_correlation: np.ndarray
    branch: np.ndarray
    stream_var: np.ndarray
    stream_mean: np.ndarray
    stream_covariance: np.ndarray
    grad: np.ndarray
    grad_factor: np.ndarray


def residual_moments(act: Activation, params: dict, sigmas: BlockSigmas, form: str, norm: str, alpha: float,
                     blocks: int, input_var: float = 1.0, input_mean: float = 0.0,
                     input_covariance: float = 0.0, batch: int = 2**62, eps: float = NORM_EPS
                     ) -> ResidualMoments:
    """The residual block's mean-field recursion over ``blocks`` blocks (README's "Residual networks").

    ``form`` "pre" (pre-norm, or no norm) or "post" (post-norm) and ``norm`` one of config.NORMS
    (the stream's); the input x_0 has per unit the mean ``input_mean``, the variance ``input_var``
    about it, and two independent inputs share ``input_covariance`` about it. Forward, per block:
    the branch's input u has the second moment q_u (q_{l-1} without a norm or for post-norm; after
    a norm q/(q + eps), 1 but where q itself nears eps) and the covariance Q_u of two inputs' u;
    a = u W1 + b1 has v = s2_W1 q_u + E[b1^2] and correlation (s2_W1 Q_u + E[b1^2]) / v; alpha F adds
    alpha^2 (s2_W2 E[phi(a)^2] + Var(b2)) to the stream's variance, alpha^2 (s2_W2 E[phi(a_1)
    phi(a_2)] + Var(b2)) to its covariance, alpha E[b2] to its mean (the cross term of x_{l-1} and
    alpha F is 0 on average over W2, whose entries have mean 0). Backward: the branch multiplies
    dL/dx_l's variance by alpha^2 s2_W1 s2_W2 E[phi'(a)^2] (through W2^T by W Var(W2) = s2_W2 / E,
    phi' by E[phi'^2], W1^T by E W Var(W1) = E s2_W1), and a norm by n = 1 / (its variance + eps):
    r^2, its inverse std's square, with the projections it also makes (out of u's direction and
    the mean's, two of W or B dimensions) dropped, 1/W or 1/B of it. Pre-norm:
    g_{l-1} = g_l (1 + n k); post-norm: g_{l-1} = g_l n (1 + k), n the norm of y = x_{l-1} + alpha F.

    What each norm divides by: layer norm the variance over a sample's units (the stream's
    variance about m: the spread of the per-sample mean over W units is 1/W of it), RMSNorm the mean
    square over units (variance + m^2), batch norm each unit's variance over the batch, which loses
    what the samples share (variance - covariance; its 1/B corrections dropped but for one: a unit
    less its mean over ``batch`` samples leaves two of them a covariance of -1/(B - 1) its variance,
    which the samples' correlation shows at a small batch).
    """
    table = moment_table(act, params)
    pair = functools.partial(pair_expectation, lambda u: act.forward(u, params), nodes=_CORRELATION_NODES)
    hidden, correlation, branch = np.empty(blocks), np.empty(blocks), np.empty(blocks)
    stream_var, stream_mean, stream_cov = np.empty(blocks), np.empty(blocks), np.empty(blocks)
    branch_gain, norm_gain = np.empty(blocks), np.ones(blocks)
    var, mean, cov = float(input_var), float(input_mean), float(input_covariance)
    b1_square = sigmas.b1_mean ** 2 + sigmas.b1_var

    def normalized(var: float, mean: float, cov: float) -> tuple[float, float, float, float]:
        """The stream after the norm: (variance, mean, covariance, n) of norm(x) from x's."""
        if norm == "layer":  # each sample's mean over its units, m, subtracted
            return var / (var + eps), 0.0, cov / (var + eps), 1 / (var + eps)
        if norm == "rms":
            square = var + mean * mean + eps
            return var / square, mean / math.sqrt(square), cov / square, 1 / square
        # batch: each unit less its mean over the batch, which is what the samples share (cov + m^2)
        spread = var - cov
        return spread / (spread + eps), 0.0, -spread / (spread + eps) / (batch - 1), 1 / (spread + eps)

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for l in range(blocks):
            if form == "pre" and norm != "none":
                u_var, u_mean, u_cov, norm_gain[l] = normalized(var, mean, cov)
            else:
                u_var, u_mean, u_cov = var, mean, cov
            # u W1 mixes u's mean into a zero-mean sum: it enters v through u's second moment
            v = sigmas.w1 * (u_var + u_mean * u_mean) + b1_square
            c = (sigmas.w1 * (u_cov + u_mean * u_mean) + b1_square) / v if v > 0 else 1.0
            finite = math.isfinite(v)
            phi_square = table.second(v)
            phi_pair = float(pair(min(v, 1e300), c)) if finite and v > 0 else phi_square
            hidden[l], correlation[l] = v, c
            branch[l] = alpha * alpha * (sigmas.w2 * phi_square + sigmas.b2_var)
            branch_gain[l] = alpha * alpha * sigmas.w1 * sigmas.w2 * table.slope(v)
            var += branch[l]
            cov += alpha * alpha * (sigmas.w2 * phi_pair + sigmas.b2_var)
            mean += alpha * sigmas.b2_mean
            if form == "post" and norm != "none":
                var, mean, cov, norm_gain[l] = normalized(var, mean, cov)
            stream_var[l], stream_mean[l], stream_cov[l] = var, mean, cov
        factor = (1 + norm_gain * branch_gain) if form == "pre" else norm_gain * (1 + branch_gain)
        # g_L = 1; block l's factor carries dL/dx_l to dL/dx_{l-1}, so g_l is the product of the
        # factors of the blocks above l
        grad = np.concatenate([np.cumprod(factor[:0:-1])[::-1], [1.0]])
    return ResidualMoments(hidden, correlation, branch, stream_var, stream_mean, stream_cov, grad, factor)


def block_sigmas(config: SimConfig) -> BlockSigmas:
    """A validated residual config's `BlockSigmas`, from the scheme and bias init at each matrix's fans."""
    scheme, bias = get_scheme(config.init), get_bias_init(config.bias_init)
    width, hidden = config.width, config.hidden_width
    w1 = width * scheme.second_moment(width, hidden, config.init_params)
    w2 = hidden * scheme.second_moment(hidden, width, config.init_params)
    b1_mean, b1_std = bias.moments(width, bias.params(config.bias_params))
    b2_mean, b2_std = bias.moments(hidden, bias.params(config.bias_params))
    if config.fixup:  # W2 = 0, W1 x L^(-1/2) (network.Network.sample_block)
        w1, w2 = w1 / config.layers, 0.0
    return BlockSigmas(w1, w2, b1_mean, b1_std ** 2, b2_mean, b2_std ** 2)


def _mean_free(config: SimConfig) -> bool:
    """Whether every matrix of a residual network is drawn with mean 0, as the recursion assumes
    (its cross terms vanish on average over W2): not for constant or identity weights, nor a normal
    of nonzero mean."""
    scheme = get_scheme(config.init)
    fans = [(config.width, config.hidden_width), (config.hidden_width, config.width),
            (config.fan_in_first, config.width)]
    return all(scheme.moments(*f, scheme.params(config.init_params))[0] == 0 for f in fans)


def _residual_prediction(config: SimConfig) -> TheoryPrediction:
    """A residual network's prediction per block (`residual_moments`): pre_std the branch's hidden
    pre-activation's std, post_std the stream's, branch_std alpha F's, grad_std dL/dx_l's, and
    sample_correlation that of the hidden pre-activation for two independent inputs.

    None everywhere where the recursion does not hold: weights of nonzero mean, batch norm on a
    batch of 1 (which sets every value to 0). A residual stream has no fixed point: q_star, chi1,
    depth_scale and jacobian_mean_square are None. sigma_w2 and sigma_b2 are W1's and b1's (facts of
    the weights, Fixup's scaling included)."""
    sigmas = block_sigmas(config)
    bias = get_bias_init(config.bias_init)
    none = (None,) * config.layers
    facts = {"sigma_w2": (sigmas.w1,) * config.layers,
             "sigma_b2": bias.second_moment(config.width, config.bias_params),
             "q_star": None, "chi1": None, "depth_scale": None, "jacobian_mean_square": None}
    if not _mean_free(config) or (config.norm == "batch" and config.batch == 1):
        return TheoryPrediction(pre_std=none, grad_std=none, sample_correlation=none, post_std=none,
                                branch_std=none, **facts)
    # The input: unit variance, independent samples; projected, x_0 = input P + b adds b's mean and
    # variance, the latter shared by every sample (the same b for all)
    input_var, input_mean, input_cov = 1.0, 0.0, 0.0
    if config.fan_in_first != config.width:
        scheme = get_scheme(config.init)
        fan_in = config.fan_in_first
        p_mean, p_std = bias.moments(fan_in, bias.params(config.bias_params))
        input_var = fan_in * scheme.second_moment(fan_in, config.width, config.init_params) + p_std ** 2
        input_mean, input_cov = p_mean, p_std ** 2
    moments = residual_moments(get_activation(config.activation), config.activation_params, sigmas,
                               config.residual, config.norm, config.branch_alpha, config.layers,
                               input_var, input_mean, input_cov, config.batch)

    def stds(variances: np.ndarray) -> tuple[float, ...]:
        return tuple(float(math.sqrt(v)) if v >= 0 else math.nan for v in variances)

    correlation = np.clip(moments.hidden_correlation, -1.0, 1.0)
    return TheoryPrediction(
        # the hidden pre-activation's std: its second moment less b1's mean, by which it is offset
        pre_std=stds(moments.hidden - sigmas.b1_mean ** 2), grad_std=stds(moments.grad),
        sample_correlation=tuple(float(c) if math.isfinite(c) else None for c in correlation),
        post_std=stds(moments.stream_var), branch_std=stds(moments.branch), **facts)


def config_at(config: SimConfig, sigma_w2: float, sigma_b2: float) -> SimConfig:
    """``config`` moved to a point of the phase diagram: Gaussian weights of variance
    sigma_w2 / fan_in (variance_scaling, untruncated) and a normal bias of variance sigma_b2."""
    return config.replace(
        init="variance_scaling",
        init_params={"scale": float(sigma_w2), "mode": "fan_in", "distribution": "untruncated_normal"},
        bias_init="normal", bias_params={"std": math.sqrt(sigma_b2)}).validated()
