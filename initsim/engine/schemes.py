"""The registry of weight-initialization schemes and of bias inits.

Every scheme samples a weight matrix in numpy's layout, shape ``(fan_in, fan_out)`` for
``y = x @ W + b``. PyTorch stores the same matrix transposed, ``(out, in)``: load an exported matrix
with ``linear.weight.data.copy_(torch.from_numpy(W.T))``; Keras stores it as it is.

Names carry their framework's exact semantics:
``xavier_*`` and ``kaiming_*`` are PyTorch's ``torch.nn.init`` (normals NOT truncated);
``glorot_*``, ``he_*`` and ``lecun_*`` are Keras's initializers (normals truncated at 2 std and
rescaled by 1 / 0.8796 so that the std is still the nominal one).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError, lookup
from .params import ParamValue, resolve
from .products import linear

# The std of a standard normal truncated to (-2, 2); Keras divides by it.
KERAS_TRUNCATION_STD = 0.87962566103423978

# The generator's type as a string: numpy.random is imported by the first run, not at start-up.
Sampler = Callable[[int, int, "np.random.Generator", np.dtype, dict], np.ndarray]
Moments = Callable[[int, int, dict], tuple[float, float]]
Bounds = Callable[[int, int, dict], tuple[float, float] | None]


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """PyTorch's ``torch.nn.init.calculate_gain``, value for value."""
    linear_fns = ("linear", "conv1d", "conv2d", "conv3d",
                  "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif isinstance(param, bool) or not isinstance(param, (int, float)):
            raise ValueError(f"negative_slope {param} not a valid number")
        else:
            negative_slope = param
        return math.sqrt(2.0 / (1 + negative_slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


@dataclass(frozen=True)
class EntryLaw:
    """The exact distribution of one entry of an i.i.d. scheme at given fans.

    ``kind`` is "point" (every entry is ``loc``), "normal" (N(loc, scale^2)), "uniform" (U(low, high);
    loc is its centre, scale its half-width) or "truncated_normal" (N(loc, scale^2) restricted to
    [low, high], absolute bounds: PyTorch's trunc_normal_ and Keras's cut at +-2 scale alike)."""

    kind: str
    loc: float
    scale: float
    low: float = -math.inf
    high: float = math.inf

    @staticmethod
    def uniform(low: float, high: float) -> EntryLaw:
        return EntryLaw("uniform", (low + high) / 2, (high - low) / 2, low, high)

    def _standard_bounds(self) -> tuple[float, float]:
        return (self.low - self.loc) / self.scale, (self.high - self.loc) / self.scale

    def cut_mass(self) -> float:
        """The normal's mass outside [low, high] (0 for the other kinds)."""
        if self.kind != "truncated_normal":
            return 0.0
        from scipy import special

        a, b = self._standard_bounds()
        return float(special.ndtr(a) + special.ndtr(-b))

    def plain(self) -> EntryLaw:
        """The same law, with a truncated normal whose cut is below double precision's resolution of
        a probability (1e-12) written as the plain normal it is: trunc_normal_(std=0.02) with
        PyTorch's default bounds (-2, 2) cuts at 100 std."""
        if self.kind == "truncated_normal" and self.cut_mass() < 1e-12:
            return EntryLaw("normal", self.loc, self.scale)
        if self.kind in ("normal", "truncated_normal", "uniform") and self.scale == 0:
            return EntryLaw("point", self.loc, 0.0, self.loc, self.loc)
        return self

    def same_as(self, other: EntryLaw, rtol: float = 1e-9) -> bool:
        """Whether two laws are the same distribution: same kind and parameters to ``rtol`` (relative
        to the laws' scale for the location, so that 0 and 1e-17 agree)."""
        a, b = self.plain(), other.plain()
        if a.kind != b.kind:
            return False
        size = max(abs(a.scale), abs(b.scale), abs(a.loc), abs(b.loc))

        def close(x: float, y: float) -> bool:
            return x == y or abs(x - y) <= rtol * max(abs(x), abs(y), size)
        return all(close(x, y) for x, y in ((a.loc, b.loc), (a.scale, b.scale), (a.low, b.low), (a.high, b.high)))

    def cdf(self, x) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self.kind == "point":
            return (x >= self.loc).astype(np.float64)
        if self.kind == "uniform":
            return np.clip((x - self.low) / (self.high - self.low), 0.0, 1.0)
        from scipy import special

        z = (x - self.loc) / self.scale
        if self.kind == "normal":
            return special.ndtr(z)
        a, b = self._standard_bounds()
        low, mass = special.ndtr(a), special.ndtr(b) - special.ndtr(a)
        return np.clip((special.ndtr(np.clip(z, a, b)) - low) / mass, 0.0, 1.0)

    def pdf(self, x) -> np.ndarray:
        """The density (0 everywhere for a point mass, which has none)."""
        x = np.asarray(x, np.float64)
        if self.kind == "point":
            return np.zeros_like(x)
        inside = (x >= self.low) & (x <= self.high)
        if self.kind == "uniform":
            return np.where(inside, 1 / (self.high - self.low), 0.0)
        from scipy import special

        z = (x - self.loc) / self.scale
        density = np.exp(-0.5 * z * z) / (math.sqrt(2 * math.pi) * self.scale)
        if self.kind == "normal":
            return density
        a, b = self._standard_bounds()
        return np.where(inside, density / (special.ndtr(b) - special.ndtr(a)), 0.0)

    def moments(self) -> tuple[float, float]:
        """(mean, std) of one entry."""
        if self.kind == "point":
            return self.loc, 0.0
        if self.kind == "uniform":
            return self.loc, (self.high - self.low) / math.sqrt(12)
        if self.kind == "normal":
            return self.loc, self.scale
        from scipy import special

        a, b = self._standard_bounds()
        mass = float(special.ndtr(b) - special.ndtr(a))
        if mass < 1e-6:  # far out in a tail the closed form cancels: scipy's asymptotic branch
            from scipy import stats

            with np.errstate(all="ignore"):
                dist = stats.truncnorm(a, b, loc=self.loc, scale=self.scale)
                return float(dist.mean()), float(dist.std())
        pa = math.exp(-0.5 * a * a) / math.sqrt(2 * math.pi) if math.isfinite(a) else 0.0
        pb = math.exp(-0.5 * b * b) / math.sqrt(2 * math.pi) if math.isfinite(b) else 0.0
        shift = (pa - pb) / mass
        tails = ((a * pa if pa else 0.0) - (b * pb if pb else 0.0)) / mass
        return self.loc + self.scale * shift, self.scale * math.sqrt(max(0.0, 1 + tails - shift * shift))

    @property
    def std(self) -> float:
        return self.moments()[1]


Law = Callable[[int, int, dict], "EntryLaw | None"]


def _uniform_law(bounds: Bounds) -> Law:
    return lambda fi, fo, p: EntryLaw.uniform(*bounds(fi, fo, p))


def _normal_law(moments: Moments) -> Law:
    return lambda fi, fo, p: EntryLaw("normal", *moments(fi, fo, p))


def _not_iid(fan_in: int, fan_out: int, params: dict) -> None:
    return None


def fan(fan_in: int, fan_out: int, mode: str) -> float:
    return {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]


@dataclass(frozen=True)
class Scheme:
    """One initialization scheme: what it is, its exact formula, and how to sample it."""

    name: str
    family: str  # "PyTorch", "Keras" or "generic": whose semantics the name carries
    formula: str
    description: str
    moments: Moments  # (mean, std) of one entry, as functions of (fan_in, fan_out, params)
    bounds: Bounds  # (low, high) the entries lie in, or None when unbounded
    sampler: Sampler
    pytorch: str
    keras: str
    # The exact law of one entry at (fan_in, fan_out, params), or None when the entries are not
    # i.i.d. (orthogonal, identity, sparse, ...): what the checkpoint inspector matches samples against.
    law: Law
    defaults: dict[str, ParamValue] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    truncated: bool = False
    iid: bool = True  # entries independent and identically distributed
    # At initialization, once a layer's output h = x W + b is known: what the scheme does with the
    # data, (x, w, b, h, flush) -> None, changing W and h in place; None for a data-free scheme.
    fit_to_data: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool], None] | None = None
    check: Callable[[dict], None] | None = None
    # float64 arrays of the matrix's size held at once while sampling (numpy's QR copies its input
    # twice and its Q twice): what the memory estimate counts for one draw.
    draw_copies: int = 1

    @property
    def data_dependent(self) -> bool:
        """Whether the weights depend on the data the network sees (LSUV)."""
        return self.fit_to_data is not None

    def fit(self, x: np.ndarray, w: np.ndarray, b: np.ndarray, h: np.ndarray, flush: bool = False) -> None:
        """Fit a layer's fresh W to the data: its input x and its output h = x W + b, both kept up to
        date in place (`fit_to_data`); nothing for a data-free scheme."""
        if self.fit_to_data is not None:
            self.fit_to_data(x, w, b, h, flush)

    def params(self, given: dict[str, ParamValue] | None = None) -> dict[str, ParamValue]:
        """The scheme's parameters: defaults overlaid with ``given``, validated."""
        resolved = resolve(f"init {self.name}", self.defaults, given)
        if self.check:
            self.check(resolved)
        return resolved

    def std(self, fan_in: int, fan_out: int, params: dict | None = None) -> float:
        return self.moments(fan_in, fan_out, self.params(params))[1]

    def second_moment(self, fan_in: int, fan_out: int, params: dict | None = None) -> float:
        """E[W_ij^2]: what mean-field theory needs (sigma_w^2 = fan_in * E[W^2])."""
        mean, std = self.moments(fan_in, fan_out, self.params(params))
        return mean * mean + std * std

    def sample(self, fan_in: int, fan_out: int, rng: np.random.Generator,
               dtype=np.float32, params: dict | None = None) -> np.ndarray:
        """A (fan_in, fan_out) matrix. Drawn in float64 whatever ``dtype`` is, so that a seed gives
        the same network in float32 and float64 (up to rounding)."""
        # A std beyond the dtype's range gives infinite weights, which the run reports (non-finite
        # values from layer 1); numpy's overflow warning would only print to the terminal.
        with np.errstate(over="ignore"):
            w = self.sampler(fan_in, fan_out, rng, np.dtype(np.float64), self.params(params))
            return np.ascontiguousarray(w, dtype=dtype)

    @property
    def label(self) -> str:
        """The name as listed in menus, with the framework and truncation made visible."""
        detail = self.family
        if "distribution" in self.defaults:
            detail += f", {self.defaults['distribution'].replace('_', ' ')} by default"
        elif self.truncated:
            detail += ", truncated normal"
        elif "normal" in self.name and self.family == "PyTorch":
            detail += ", untruncated normal"
        return f"{self.name} ({detail})"


LSUV_TOLERANCE = 0.1
LSUV_MAX_ROUNDS = 10


def lsuv_rescale(x: np.ndarray, w: np.ndarray, b: np.ndarray, h: np.ndarray, flush: bool = False) -> None:
    """Mishkin & Matas: divide W (in place) by the std of the layer's output h = x W + b until its
    variance is ~1; h is kept up to date (multiplied as `linear` says)."""
    for _ in range(LSUV_MAX_ROUNDS):
        var = float(h.var(dtype=np.float64))
        if not math.isfinite(var) or var == 0 or abs(var - 1) < LSUV_TOLERANCE:
            return
        w /= w.dtype.type(math.sqrt(var))
        linear(x, w, b, h, flush)


# --- samplers ------------------------------------------------------------------------------

def _normal(rng, shape, dtype, std, mean=0.0):
    w = rng.standard_normal(shape, dtype=dtype)
    w *= std
    if mean:
        w += mean
    return w


def _uniform(rng, shape, dtype, limit):
    w = rng.random(shape, dtype=dtype)
    w *= 2 * limit
    w -= limit
    return w


def _keras_truncated_normal(rng, shape, dtype, std):
    """N(0, 1) redrawn outside (-2, 2) (Keras/TensorFlow), times ``std / 0.8796``."""
    z = rng.standard_normal(shape, dtype=dtype)
    outside = np.abs(z) >= 2
    while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum()), dtype=dtype)
        outside = np.abs(z) >= 2
    z *= std / KERAS_TRUNCATION_STD
    return z


def _torch_trunc_normal(rng, shape, dtype, mean, std, low, high):
    """PyTorch's trunc_normal_: inverse CDF on the ABSOLUTE interval [low, high]."""
    from scipy import special  # a third of a second to import: not at the window's start-up
    cdf_low = special.ndtr((low - mean) / std)
    cdf_high = special.ndtr((high - mean) / std)
    u = rng.uniform(2 * cdf_low - 1, 2 * cdf_high - 1, size=shape)
    w = special.erfinv(u)
    w *= std * math.sqrt(2.0)
    w += mean
    np.clip(w, low, high, out=w)
    return w.astype(dtype, copy=False)


def _orthogonal(rng, fan_in, fan_out, dtype, gain):
    """PyTorch's orthogonal_ on the (out, in) weight, returned transposed to (in, out)."""
    rows, cols = fan_out, fan_in
    flat = rng.standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return (gain * q).T.astype(dtype, copy=False)


def _sparse(rng, fan_in, fan_out, dtype, sparsity, std):
    """PyTorch's sparse_ on the (out, in) weight: ceil(sparsity * out) zeros in every column."""
    w = _normal(rng, (fan_in, fan_out), dtype, std)
    zeros = math.ceil(sparsity * fan_out)
    if zeros:
        # PyTorch's column of the (out, in) weight is our row: pick `zeros` random entries per row.
        picked = np.argsort(rng.random((fan_in, fan_out)), axis=1)[:, :zeros]
        np.put_along_axis(w, picked, 0.0, axis=1)
    return w


# --- variance scaling (Keras) --------------------------------------------------------------

def _vs_n(fan_in, fan_out, p):
    return max(1.0, fan(fan_in, fan_out, p["mode"]))


def _vs_moments(fan_in, fan_out, p):
    return 0.0, math.sqrt(p["scale"] / _vs_n(fan_in, fan_out, p))


def _vs_bounds(fan_in, fan_out, p):
    std = _vs_moments(fan_in, fan_out, p)[1]
    if p["distribution"] == "uniform":
        return -math.sqrt(3) * std, math.sqrt(3) * std
    if p["distribution"] == "truncated_normal":
        return -2 * std / KERAS_TRUNCATION_STD, 2 * std / KERAS_TRUNCATION_STD
    return None


def _vs_law(fan_in, fan_out, p):
    std = _vs_moments(fan_in, fan_out, p)[1]
    if p["distribution"] == "uniform":
        return EntryLaw.uniform(-math.sqrt(3) * std, math.sqrt(3) * std)
    if p["distribution"] == "truncated_normal":
        scale = std / KERAS_TRUNCATION_STD
        return EntryLaw("truncated_normal", 0.0, scale, -2 * scale, 2 * scale)
    return EntryLaw("normal", 0.0, std)


def _vs_sample(fan_in, fan_out, rng, dtype, p):
    std = _vs_moments(fan_in, fan_out, p)[1]
    shape = (fan_in, fan_out)
    if p["distribution"] == "uniform":
        return _uniform(rng, shape, dtype, math.sqrt(3) * std)
    if p["distribution"] == "truncated_normal":
        return _keras_truncated_normal(rng, shape, dtype, std)
    return _normal(rng, shape, dtype, std)


def _keras_preset(name, keras_class, scale, mode, distribution, summary, pytorch):
    fixed = {"scale": scale, "mode": mode, "distribution": distribution}
    # Var(W) = scale / n, n = fan_in or (fan_in + fan_out) / 2, written without nested fractions.
    factor, fans = {"fan_in": (scale, "fan_in"), "fan_avg": (2 * scale, "(fan_in + fan_out)")}[mode]
    if distribution == "uniform":
        formula = f"U(-a, a), a = sqrt({3 * factor:g} / {fans})"
    else:
        formula = (f"N(0, s^2) cut at +-2 s, s = sqrt({factor:g} / {fans}) / 0.8796 "
                   f"(std = sqrt({factor:g} / {fans}))")
    return Scheme(
        name=name, family="Keras", formula=formula, truncated=distribution == "truncated_normal",
        description=summary, draw_copies=2 if distribution == "truncated_normal" else 1,
        moments=lambda fi, fo, p: _vs_moments(fi, fo, fixed),
        bounds=lambda fi, fo, p: _vs_bounds(fi, fo, fixed),
        law=lambda fi, fo, p: _vs_law(fi, fo, fixed),
        sampler=lambda fi, fo, rng, dt, p: _vs_sample(fi, fo, rng, dt, fixed),
        pytorch=pytorch, keras=f"keras.initializers.{keras_class}()",
    )


# --- PyTorch kaiming -----------------------------------------------------------------------

def _kaiming_check(p):
    if p["mode"] == "fan_avg":
        raise ConfigError("init kaiming.mode", "got 'fan_avg', expected one of fan_in, fan_out "
                          "(PyTorch's kaiming_* has no fan_avg; use variance_scaling)")
    try:
        calculate_gain(p["nonlinearity"], p["negative_slope"])
    except ValueError as exc:
        raise ConfigError("init kaiming.nonlinearity", str(exc)) from None


def _kaiming_std(fan_in, fan_out, p):
    gain = calculate_gain(p["nonlinearity"], p["negative_slope"])
    return gain / math.sqrt(fan(fan_in, fan_out, p["mode"]))


_KAIMING_DEFAULTS = {"negative_slope": 0.0, "mode": "fan_in", "nonlinearity": "leaky_relu"}


def _trunc_moments(fan_in, fan_out, p):
    from scipy import stats  # a third of a second to import: only when a truncated normal is shown

    dist = stats.truncnorm((p["low"] - p["mean"]) / p["std"], (p["high"] - p["mean"]) / p["std"],
                           loc=p["mean"], scale=p["std"])
    with np.errstate(all="ignore"):  # bounds far out in the tail: scipy's asymptotic branch
        return float(dist.mean()), float(dist.std())


def _trunc_check(p):
    if not p["low"] < p["high"]:
        raise ConfigError("init trunc_normal.low", f"low ({p['low']:g}) must be below high ({p['high']:g})")
    if p["std"] <= 0:
        raise ConfigError("init trunc_normal.std", "got 0, expected a number in (0, inf]")


def _identity_moments(fan_in, fan_out, p):
    ones = min(fan_in, fan_out) / (fan_in * fan_out)  # the fraction of entries that are gain
    # gain * sqrt(f (1 - f)), not sqrt(gain^2 f - mean^2): gain^2 overflows for a gain near 1e155.
    return p["gain"] * ones, p["gain"] * math.sqrt(ones * (1 - ones))


def _sparse_moments(fan_in, fan_out, p):
    kept = 1 - math.ceil(p["sparsity"] * fan_out) / fan_out
    return 0.0, p["std"] * math.sqrt(kept)


SCHEMES: dict[str, Scheme] = {}
ALIASES: dict[str, str] = {}


def register(scheme: Scheme) -> Scheme:
    SCHEMES[scheme.name] = scheme
    for alias in scheme.aliases:
        ALIASES[alias] = scheme.name
    return scheme


def _sym(bound):
    return lambda fi, fo, p: (-bound(fi, fo, p), bound(fi, fo, p))


def _pytorch_linear_bound(fan_in, fan_out, p):
    return 1 / math.sqrt(fan_in)


def _xavier_bound(fan_in, fan_out, p):
    return p["gain"] * math.sqrt(6 / (fan_in + fan_out))


def _kaiming_bound(fan_in, fan_out, p):
    return math.sqrt(3) * _kaiming_std(fan_in, fan_out, p)


def _xavier_moments(fan_in, fan_out, p):
    return 0.0, p["gain"] * math.sqrt(2 / (fan_in + fan_out))


def _kaiming_moments(fan_in, fan_out, p):
    return 0.0, _kaiming_std(fan_in, fan_out, p)


for _scheme in (
    Scheme("zeros", "generic", "W = 0", "Every weight zero: symmetry is never broken.",
           moments=lambda fi, fo, p: (0.0, 0.0), bounds=lambda fi, fo, p: (0.0, 0.0),
           sampler=lambda fi, fo, rng, dt, p: np.zeros((fi, fo), dt),
           law=lambda fi, fo, p: EntryLaw("point", 0.0, 0.0, 0.0, 0.0),
           pytorch="nn.init.zeros_(w)", keras="keras.initializers.Zeros()", iid=True),
    Scheme("constant", "generic", "W = value", "Every weight the same constant: all units identical.",
           defaults={"value": 0.1},
           moments=lambda fi, fo, p: (p["value"], 0.0),
           bounds=lambda fi, fo, p: (p["value"], p["value"]),
           sampler=lambda fi, fo, rng, dt, p: np.full((fi, fo), p["value"], dt),
           law=lambda fi, fo, p: EntryLaw("point", p["value"], 0.0, p["value"], p["value"]),
           pytorch="nn.init.constant_(w, value)", keras="keras.initializers.Constant(value)"),
    Scheme("normal", "generic", "N(mean, std^2)", "Plain Gaussian with a fixed std, whatever the width.",
           defaults={"mean": 0.0, "std": 1.0},
           moments=lambda fi, fo, p: (p["mean"], p["std"]), bounds=lambda fi, fo, p: None,
           sampler=lambda fi, fo, rng, dt, p: _normal(rng, (fi, fo), dt, p["std"], p["mean"]),
           law=lambda fi, fo, p: EntryLaw("normal", p["mean"], p["std"]),
           pytorch="nn.init.normal_(w, mean, std)", keras="keras.initializers.RandomNormal(mean, stddev=std)"),
    Scheme("uniform", "generic", "U(-limit, limit)", "Plain symmetric uniform with a fixed width.",
           defaults={"limit": 0.05},
           moments=lambda fi, fo, p: (0.0, p["limit"] / math.sqrt(3)),
           bounds=lambda fi, fo, p: (-p["limit"], p["limit"]),
           sampler=lambda fi, fo, rng, dt, p: _uniform(rng, (fi, fo), dt, p["limit"]),
           law=lambda fi, fo, p: EntryLaw.uniform(-p["limit"], p["limit"]),
           pytorch="nn.init.uniform_(w, -limit, limit)",
           keras="keras.initializers.RandomUniform(-limit, limit)"),
    Scheme("trunc_normal", "PyTorch", "N(mean, std^2) restricted to [low, high] (absolute bounds)",
           "PyTorch's trunc_normal_: low/high are absolute values, so std=0.02 with the default "
           "bounds -2, 2 is practically untruncated.",
           defaults={"mean": 0.0, "std": 1.0, "low": -2.0, "high": 2.0}, truncated=True, draw_copies=2,
           check=_trunc_check, moments=_trunc_moments,
           bounds=lambda fi, fo, p: (p["low"], p["high"]),
           sampler=lambda fi, fo, rng, dt, p: _torch_trunc_normal(
               rng, (fi, fo), dt, p["mean"], p["std"], p["low"], p["high"]),
           law=lambda fi, fo, p: EntryLaw("truncated_normal", p["mean"], p["std"], p["low"], p["high"]),
           pytorch="nn.init.trunc_normal_(w, mean, std, a=low, b=high)",
           keras="none exact (keras TruncatedNormal cuts at mean +- 2 stddev, relative)"),
    Scheme("xavier_uniform", "PyTorch", "U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))",
           "Glorot & Bengio (2010), PyTorch's form; for tanh and sigmoid.",
           defaults={"gain": 1.0},
           moments=_xavier_moments, bounds=_sym(_xavier_bound), law=_uniform_law(_sym(_xavier_bound)),
           sampler=lambda fi, fo, rng, dt, p: _uniform(rng, (fi, fo), dt, _xavier_bound(fi, fo, p)),
           pytorch="nn.init.xavier_uniform_(w, gain)",
           keras="keras.initializers.GlorotUniform() when gain = 1"),
    Scheme("xavier_normal", "PyTorch", "N(0, s^2), s = gain * sqrt(2 / (fan_in + fan_out)), untruncated",
           "Glorot & Bengio (2010), PyTorch's form (untruncated normal); for tanh and sigmoid.",
           defaults={"gain": 1.0}, aliases=("xavier",),
           moments=_xavier_moments, bounds=lambda fi, fo, p: None, law=_normal_law(_xavier_moments),
           sampler=lambda fi, fo, rng, dt, p: _normal(rng, (fi, fo), dt,
                                                      p["gain"] * math.sqrt(2 / (fi + fo))),
           pytorch="nn.init.xavier_normal_(w, gain)",
           keras="keras.initializers.VarianceScaling(gain**2, 'fan_avg', 'untruncated_normal')"),
    Scheme("kaiming_uniform", "PyTorch",
           "U(-b, b), b = sqrt(3) * gain / sqrt(fan), gain = calculate_gain(nonlinearity, negative_slope)",
           "He et al. (2015), PyTorch's form; for ReLU-like activations.",
           defaults=dict(_KAIMING_DEFAULTS), check=_kaiming_check,
           moments=_kaiming_moments, bounds=_sym(_kaiming_bound), law=_uniform_law(_sym(_kaiming_bound)),
           sampler=lambda fi, fo, rng, dt, p: _uniform(rng, (fi, fo), dt, _kaiming_bound(fi, fo, p)),
           pytorch="nn.init.kaiming_uniform_(w, a, mode, nonlinearity)",
           keras="keras.initializers.HeUniform() with the defaults"),
    Scheme("kaiming_normal", "PyTorch",
           "N(0, s^2), s = gain / sqrt(fan), gain = calculate_gain(nonlinearity, negative_slope), untruncated",
           "He et al. (2015), PyTorch's form (untruncated normal); for ReLU-like activations.",
           defaults=dict(_KAIMING_DEFAULTS), check=_kaiming_check, aliases=("kaiming",),
           moments=_kaiming_moments, bounds=lambda fi, fo, p: None, law=_normal_law(_kaiming_moments),
           sampler=lambda fi, fo, rng, dt, p: _normal(rng, (fi, fo), dt, _kaiming_std(fi, fo, p)),
           pytorch="nn.init.kaiming_normal_(w, a, mode, nonlinearity)",
           keras="keras.initializers.VarianceScaling(2.0, 'fan_in', 'untruncated_normal') with the defaults"),
    Scheme("variance_scaling", "Keras",
           "n = max(1, fan of mode); truncated_normal: N(0, s^2) cut at +-2 s, s = sqrt(scale / n) / 0.8796; "
           "untruncated_normal: s = sqrt(scale / n); uniform: U(-a, a), a = sqrt(3 scale / n)",
           "Keras's general form; every Keras and JAX variance-based initializer is one of these.",
           defaults={"scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal"}, draw_copies=2,
           moments=_vs_moments, bounds=_vs_bounds, sampler=_vs_sample, law=_vs_law,
           pytorch="kaiming_*/xavier_* match the uniform and untruncated_normal variants",
           keras="keras.initializers.VarianceScaling(scale, mode, distribution)"),
    _keras_preset("glorot_uniform", "GlorotUniform", 1.0, "fan_avg", "uniform",
                  "Glorot uniform, Keras's Dense default; for tanh and sigmoid.",
                  "nn.init.xavier_uniform_(w) (same distribution)"),
    _keras_preset("glorot_normal", "GlorotNormal", 1.0, "fan_avg", "truncated_normal",
                  "Glorot normal, Keras's truncated form; for tanh and sigmoid.",
                  "no exact equivalent: xavier_normal_ has the same std but is untruncated"),
    _keras_preset("he_uniform", "HeUniform", 2.0, "fan_in", "uniform",
                  "He uniform, Keras's form; for ReLU.",
                  "nn.init.kaiming_uniform_(w, nonlinearity='relu') (same distribution)"),
    _keras_preset("he_normal", "HeNormal", 2.0, "fan_in", "truncated_normal",
                  "He normal, Keras's truncated form; for ReLU.",
                  "no exact equivalent: kaiming_normal_ has the same std but is untruncated"),
    _keras_preset("lecun_uniform", "LecunUniform", 1.0, "fan_in", "uniform",
                  "LeCun uniform, Keras's form; for SELU and linear.",
                  "nn.init.kaiming_uniform_(w, nonlinearity='linear') (same distribution)"),
    _keras_preset("lecun_normal", "LecunNormal", 1.0, "fan_in", "truncated_normal",
                  "LeCun normal, Keras's truncated form (Flax's Dense default); for SELU and linear.",
                  "no exact equivalent: kaiming_normal_(nonlinearity='linear') is untruncated"),
    Scheme("orthogonal", "generic", "gain * Q, Q from the QR of a N(0, 1) matrix, Q *= sign(diag(R))",
           "Saxe et al. (2013): all singular values equal gain; deep linear and tanh nets keep "
           "their signal (dynamical isometry).",
           defaults={"gain": 1.0}, iid=False, draw_copies=5,
           moments=lambda fi, fo, p: (0.0, p["gain"] / math.sqrt(max(fi, fo))),
           bounds=lambda fi, fo, p: (-p["gain"], p["gain"]), law=_not_iid,
           sampler=lambda fi, fo, rng, dt, p: _orthogonal(rng, fi, fo, dt, p["gain"]),
           pytorch="nn.init.orthogonal_(w, gain)", keras="keras.initializers.Orthogonal(gain)"),
    Scheme("identity", "generic", "gain * I (ones on the diagonal)",
           "The identity matrix: each unit copies its input.",
           defaults={"gain": 1.0}, iid=False, aliases=("eye",),
           moments=_identity_moments, bounds=lambda fi, fo, p: (min(0.0, p["gain"]), max(0.0, p["gain"])),
           law=_not_iid,
           sampler=lambda fi, fo, rng, dt, p: p["gain"] * np.eye(fi, fo, dtype=dt),
           pytorch="nn.init.eye_(w); w.mul_(gain)", keras="keras.initializers.Identity(gain)"),
    Scheme("sparse", "PyTorch", "N(0, std^2) with ceil(sparsity * fan_out) zeros per input unit",
           "Martens (2010), PyTorch's sparse_: each column of the (out, in) weight gets "
           "ceil(sparsity * out) zeros.",
           defaults={"sparsity": 0.1, "std": 0.01}, iid=False, draw_copies=3,
           moments=_sparse_moments, bounds=lambda fi, fo, p: None, law=_not_iid,
           sampler=lambda fi, fo, rng, dt, p: _sparse(rng, fi, fo, dt, p["sparsity"], p["std"]),
           pytorch="nn.init.sparse_(w, sparsity, std)", keras="no equivalent"),
    Scheme("pytorch_linear", "PyTorch", "U(-1/sqrt(fan_in), 1/sqrt(fan_in)) = kaiming_uniform_(a=sqrt(5))",
           "What nn.Linear does when you do nothing: std = 1/sqrt(3 fan_in), too small for ReLU "
           "(the std shrinks by about 0.41 per layer without bias).",
           aliases=("torch_default", "nn_linear"),
           moments=lambda fi, fo, p: (0.0, 1 / math.sqrt(3 * fi)),
           bounds=_sym(_pytorch_linear_bound), law=_uniform_law(_sym(_pytorch_linear_bound)),
           sampler=lambda fi, fo, rng, dt, p: _uniform(rng, (fi, fo), dt, 1 / math.sqrt(fi)),
           pytorch="nn.Linear default: nn.init.kaiming_uniform_(w, a=math.sqrt(5))",
           keras="keras.initializers.VarianceScaling(1/3, 'fan_in', 'uniform')"),
    Scheme("lsuv", "generic",
           "orthogonal, then per layer W <- W / sqrt(Var(x W)) on the batch until |Var - 1| < 0.1 "
           "(at most 10 rounds)",
           "Mishkin & Matas (2015), layer-sequential unit variance: data-dependent, so the std "
           "depends on the batch that the network sees.",
           iid=False, fit_to_data=lsuv_rescale, draw_copies=5,
           moments=lambda fi, fo, p: (0.0, 1 / math.sqrt(max(fi, fo))),
           bounds=lambda fi, fo, p: None, law=_not_iid,
           sampler=lambda fi, fo, rng, dt, p: _orthogonal(rng, fi, fo, dt, 1.0),
           pytorch="no built-in (orthogonal_ then rescale on a batch)", keras="no built-in"),
):
    register(_scheme)

# --- weights read from a file (issue 14) ----------------------------------------------------

CHECKPOINT = "checkpoint"


def _read_not_drawn(*_args) -> None:
    raise ConfigError("init", "checkpoint's weights are read layer by layer from its file, not drawn at "
                      "given fans")


# Schemes whose weights are read from a file, per layer (engine/chain.py), instead of drawn at a
# layer's fans: get_scheme finds them for a config, but they are not in SCHEMES, the distributions
# that the menus, the comparisons, the inspector's matching and the per-fan tests go through.
READ_SCHEMES: dict[str, Scheme] = {CHECKPOINT: Scheme(
    CHECKPOINT, "generic", "W, b = the checkpoint's dense layers whose shapes chain, as stored",
    "A checkpoint's own MLP: its depth and widths are the file's, its biases the file's (zeros where "
    "a layer has none); bias_init is ignored.",
    moments=_read_not_drawn, bounds=lambda fi, fo, p: None, sampler=_read_not_drawn, law=_not_iid,
    pytorch="model.load_state_dict(safetensors.torch.load_file(file))", keras="model.load_weights(file)",
    defaults={"file": "", "layout": "auto"}, iid=False)}


def get_scheme(name: str) -> Scheme:
    return lookup("init", name, SCHEMES | READ_SCHEMES, ALIASES)


# --- bias inits ----------------------------------------------------------------------------

@dataclass(frozen=True)
class BiasInit:
    name: str
    formula: str
    defaults: dict[str, ParamValue]
    moments: Callable[[int, dict], tuple[float, float]]  # (mean, std) from (fan_in, params)
    sampler: Callable[[int, int, np.random.Generator, np.dtype, dict], np.ndarray]
    pytorch: str

    def params(self, given: dict | None = None) -> dict:
        return resolve(f"bias_init {self.name}", self.defaults, given)

    def second_moment(self, fan_in: int, params: dict | None = None) -> float:
        mean, std = self.moments(fan_in, self.params(params))
        return mean * mean + std * std

    def sample(self, fan_in, fan_out, rng, dtype=np.float32, params=None) -> np.ndarray:
        b = self.sampler(fan_in, fan_out, rng, np.dtype(np.float64), self.params(params))
        return np.ascontiguousarray(b, dtype=dtype)


BIAS_INITS: dict[str, BiasInit] = {
    b.name: b
    for b in (
        BiasInit("zeros", "b = 0", {}, lambda fi, p: (0.0, 0.0),
                 lambda fi, fo, rng, dt, p: np.zeros(fo, dt), "nn.init.zeros_(b)"),
        BiasInit("constant", "b = value", {"value": 0.01}, lambda fi, p: (p["value"], 0.0),
                 lambda fi, fo, rng, dt, p: np.full(fo, p["value"], dt), "nn.init.constant_(b, value)"),
        BiasInit("pytorch_linear", "U(-1/sqrt(fan_in), 1/sqrt(fan_in))", {},
                 lambda fi, p: (0.0, 1 / math.sqrt(3 * fi)),
                 lambda fi, fo, rng, dt, p: _uniform(rng, (fo,), dt, 1 / math.sqrt(fi)),
                 "nn.Linear default bias"),
        BiasInit("normal", "N(0, std^2)", {"std": 0.1}, lambda fi, p: (0.0, p["std"]),
                 lambda fi, fo, rng, dt, p: _normal(rng, (fo,), dt, p["std"]), "nn.init.normal_(b, 0, std)"),
    )
}


def get_bias_init(name: str) -> BiasInit:
    return lookup("bias_init", name, BIAS_INITS)
