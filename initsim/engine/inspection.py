"""What a checkpoint's tensors are (issue 14): per tensor its statistics, which scheme of the registry
its entries follow, and what is wrong with it, in plain words.

Kinds (``tensor_kind``), conservative, from the rank and the name's last part (``layers.0.bias``,
``dense_1/bias:0``, ``params/LayerNorm_0/scale``):

- rank >= 2: "weight", embedding tables included (an embedding is drawn like any weight and matched
  like one, at PyTorch's fans of a (num_embeddings, dim) matrix; but a name with ``embed``, ``wte`` or
  ``wpe`` gets no std flag: a lookup's rows are copied, not multiplied with a signal);
- rank 1 named ``bias``/``*_bias``/``b``/``b1``, ``b2``..., or ``beta`` (a norm's shift is a bias): "bias";
- rank 1 named ``gamma``, or ``weight``/``scale``/``g`` under a norm (a part of the name containing
  ``norm``, or starting ``ln``/``bn``/``gn``: ``ln_1``, ``bn1``): "norm scale";
- everything else, rank 0 included: "other" (BatchNorm's running_mean/var, num_batches_tracked,
  a rank-1 tensor with a name that says nothing; Keras 3's ``vars/1`` is one of these).

Matching: structural schemes first, tested exactly on the whole matrix (rank 2, at most MAX_MATRIX
entries): identity (exactly gain * eye), orthogonal (W^T W or W W^T, the smaller, is gain^2 I to
ORTHO_TOL), sparse (the same number of zeros in every row of W in numpy's layout, i.e. every column of
PyTorch's, and normal nonzeros). Then the i.i.d. schemes (``Scheme.law``), against a fixed random
subsample of at most MAX_SAMPLE entries: a candidate is accepted when its exact mean and std agree with
the tensor's within STD_Z standard errors and the one-sample KS statistic against its exact CDF is
below the KS critical value at KS_ALPHA. The accepted candidate of the first tier wins (tiers below;
within a tier the fewest parameters changed from the defaults, then the smallest KS: kaiming's a = 0
and a = 0.01 are closer than a sample can tell, a truncation is not):

0. schemes whose std depends on the fans (xavier/glorot, kaiming/he, lecun, pytorch_linear,
   variance_scaling...) at their default parameters;
1. the same with standard parameter values: every choice (mode, nonlinearity, distribution) and, for
   a number, NICE_VALUES (calculate_gain's gains, their squares for a variance scale, the usual leaky
   slopes);
2. the generic schemes (normal, uniform, trunc_normal...) with their spread (and mean) fitted to the
   tensor, written with as few digits as NICE_Z of its standard errors allow;
3. fan-based schemes with a spread parameter (gain, scale) fitted the same way (Keras's
   TruncatedNormal(stddev) is variance_scaling with a fitted scale).

Schemes that are data-dependent (lsuv) or not i.i.d. without a structural test are not matched, nor
is a tensor of fewer than MIN_SAMPLE finite entries (unless constant): so few are consistent with
nearly anything. Biases and norm scales are matched against the generic schemes only (they have no
fans); a constant tensor of any kind is ``zeros`` or ``constant(value)``, which is how a zero bias
and a unit norm scale (both standard, so not flagged) are reported.
``equivalent``: the other names whose exact law at these fans is the best's (``EntryLaw.same_as``,
parameters equal to 1e-9), at their defaults or standard values, and the generic schemes that can
give it; decided from the laws, never from the sample.

Flags, each a finding in plain words: non-finite values (any kind); for weights, all zeros, one
nonzero constant, a std below a third of both LeCun's 1/sqrt(fan_in) and Glorot's sqrt(2/(fan_in +
fan_out)) or above three times both He's sqrt(2/fan_in) and Glorot's (so every fan-based scheme at
its defaults, pytorch_linear's 1/sqrt(3 fan_in) and xavier at very unequal fans included, passes;
the generic schemes' fixed numbers may not: normal(std=1) at fan_in 256 is a finding), a name that
says normal on uniform values or the reverse, and a name with ``ortho`` on a matrix that is not
(checked up to MAX_MATRIX entries). A zero bias and a unit norm scale are standard: their ``best``
says so (``zeros``, ``constant(value=1)``) and no flag does.

``mp_ks``: the Marchenko-Pastur KS distance of the weight's spectrum (``spectra.weight_spectrum`` of
``as_matrix``), for finite weights of at most MAX_MATRIX entries whose smaller side is at most
MAX_SPECTRUM_SIDE (the eigendecomposition's cost), else None.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .layouts import as_matrix, check_layout, fans
from .params import NONLINEARITIES, PARAMS
from .schemes import SCHEMES, EntryLaw, Scheme, calculate_gain, get_scheme

KINDS = ("weight", "bias", "norm scale", "other")

CHUNK = 1 << 20  # entries converted to float64 at a time: a 1 GB tensor never gets a float64 copy
MAX_SAMPLE = 1 << 16  # entries the distribution tests see (a fixed random subsample beyond that)
SAMPLE_SEED = 14
KS_ALPHA = 1e-3
MIN_SAMPLE = 32  # fewer entries are consistent with nearly any scheme: no match is claimed
STD_Z = 4.5  # how many standard errors of the sample's std (and mean) a candidate may be off
NICE_Z = 3.0  # a fitted value is written with the fewest digits within this many standard errors
MAX_MATRIX = 1 << 22  # entries: structural tests and the spectrum read the whole matrix in float64
MAX_SPECTRUM_SIDE = 1024  # the eigendecomposition costs side^2 * other side: above this, mp_ks is None
ORTHO_TOL = 1e-3  # max |G / gain^2 - I|: float16's rounding is far below, a random matrix's far above
STD_FLAG_FACTOR = 3.0
# The parameters that set a scheme's spread, fitted to a tensor's std when no standard value fits.
SPREAD_PARAMS = ("gain", "std", "limit", "scale")
_GAINS = tuple(sorted({calculate_gain(name) for name in NONLINEARITIES}))
NICE_VALUES: dict[str, tuple[float, ...]] = {
    "gain": _GAINS,
    "scale": tuple(sorted({g * g for g in _GAINS} | {1 / 3})),  # 1/3: pytorch_linear's variance
    "negative_slope": (0.0, 0.01, 0.2, math.sqrt(5)),  # sqrt(5): nn.Linear's default
}


# --- kinds ----------------------------------------------------------------------------------

def _name_parts(name: str) -> list[str]:
    parts = [p for p in re.split(r"[./:]+", name.lower()) if p]
    while parts and parts[-1].isdigit():  # Keras's ":0", an index after the name
        parts.pop()
    return parts


def _under_norm(parts: list[str]) -> bool:
    return any("norm" in p or re.match(r"(ln|bn|gn)(_|\d|$)", p) for p in parts)


def tensor_kind(name: str, shape: tuple[int, ...]) -> str:
    """One of KINDS, by the rules in the module's docstring."""
    if len(shape) >= 2:
        return "weight"
    parts = _name_parts(name)
    if len(shape) == 0 or not parts:
        return "other"
    last = parts[-1]
    # b1, b2...: the biases `initsim weights` writes beside W1, W2 (as many numpy MLPs name them).
    if last in ("b", "beta") or re.fullmatch(r"b\d+", last) or last.startswith("bias") or last.endswith("_bias"):
        return "bias"
    if last == "gamma" or (last in ("weight", "scale", "g") and _under_norm(parts[:-1])):
        return "norm scale"
    return "other"


# --- statistics -----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Stats:
    finite: int
    nonfinite: int
    zeros: int
    mean: float
    std: float
    min: float
    max: float


def _blocks(array: np.ndarray):
    """The array's entries in 1-D pieces of at most CHUNK (views, or copies of one piece)."""
    if array.size <= CHUNK or array.ndim == 0:
        yield array.reshape(-1)
    elif array.ndim == 1:
        for start in range(0, array.size, CHUNK):
            yield array[start:start + CHUNK]
    elif array[0].size >= CHUNK:
        for row in array:
            yield from _blocks(row)
    else:
        step = CHUNK // array[0].size
        for start in range(0, array.shape[0], step):
            yield array[start:start + step].reshape(-1)


def statistics(array: np.ndarray) -> _Stats:
    """Mean, std (population), min, max over the finite entries, in float64, one CHUNK at a time
    (Chan et al.'s pairwise update of the mean and sum of squares); non-finite entries counted.
    Float64 values beyond ~1e150, whose squares overflow, are summed again scaled by a power of 2."""
    found = _statistics(array, 1.0)
    largest = max(abs(found.min), abs(found.max)) if found.finite else 0.0
    if found.finite and not math.isfinite(found.std) and math.isfinite(largest):
        scale = 2.0 ** -math.frexp(largest)[1]  # exact: the entries keep their digits
        again = _statistics(array, scale)
        found = _Stats(found.finite, found.nonfinite, found.zeros, again.mean / scale, again.std / scale,
                       found.min, found.max)
    return found


def _statistics(array: np.ndarray, scale: float) -> _Stats:
    count, mean, m2, zeros, nonfinite = 0, 0.0, 0.0, 0, 0
    low, high = math.inf, -math.inf
    with np.errstate(over="ignore", invalid="ignore"):
        for block in _blocks(array):
            x = block.astype(np.float64)
            if scale != 1.0:
                x *= scale
            finite = np.isfinite(x)
            bad = x.size - int(np.count_nonzero(finite))
            if bad:
                nonfinite += bad
                x = x[finite]
            if not x.size:
                continue
            k = x.size
            block_mean = float(x.mean())
            block_m2 = float(np.square(x - block_mean).sum())
            if count:
                delta, total = block_mean - mean, count + k
                mean += delta * k / total
                m2 += block_m2 + delta * delta * count * k / total
                count = total
            else:
                count, mean, m2 = k, block_mean, block_m2
            low, high = min(low, float(x.min())), max(high, float(x.max()))
            zeros += k - int(np.count_nonzero(x))
    if not count:
        return _Stats(0, nonfinite, 0, math.nan, math.nan, math.nan, math.nan)
    return _Stats(count, nonfinite, zeros, mean, math.sqrt(m2 / count), low / scale, high / scale)


def _subsample(array: np.ndarray) -> np.ndarray:
    """At most MAX_SAMPLE finite entries in float64: all of them, or a fixed random subset (the same
    every run, and read entry by entry: a memmap is not loaded)."""
    if array.size <= MAX_SAMPLE:
        x = np.asarray(array, dtype=np.float64).reshape(-1)
    else:
        picked = np.sort(np.random.default_rng(SAMPLE_SEED).choice(array.size, MAX_SAMPLE, replace=False))
        x = np.asarray(array[np.unravel_index(picked, array.shape)], dtype=np.float64)
    return x[np.isfinite(x)]


# --- matching -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Match:
    """A scheme and its parameters whose exact distribution at the tensor's fans is consistent with
    it; ``std`` is that distribution's std, ``ks`` the test's statistic: the one-sample KS distance
    for an i.i.d. scheme (and for sparse's nonzeros), max |G / gain^2 - I| for orthogonal, 0 for an
    exact identity or constant."""

    scheme: str
    params: dict
    std: float
    ks: float

    def to_json(self) -> dict:
        return {"scheme": self.scheme, "params": dict(self.params), "std": _json_float(self.std),
                "ks": _json_float(self.ks)}


@dataclass(frozen=True)
class _Candidate:
    scheme: str
    params: dict
    law: EntryLaw
    mean: float
    std: float
    tier: int
    changed: int  # parameters away from the scheme's defaults: fewer reads better among equals
    order: int


@lru_cache(maxsize=None)
def _fan_based_name(name: str) -> bool:
    scheme = SCHEMES[name]
    p = scheme.params()
    small, large = scheme.std(100, 100, p), scheme.std(400, 400, p)
    return small > 0 and abs(large / small - 1) > 0.1


def _fan_based(scheme: Scheme) -> bool:
    """Whether the scheme's spread follows the layer's fans (xavier, kaiming...) rather than being
    one number whatever the width (normal, uniform, sparse...)."""
    return _fan_based_name(scheme.name)


def _iid_schemes() -> list[Scheme]:
    return [s for s in SCHEMES.values() if not s.data_dependent and s.law(4, 4, s.params()) is not None]


@lru_cache(maxsize=None)
def _variants(name: str) -> tuple[tuple[dict, int], ...]:
    """The scheme's parameter sets with standard values (every choice, NICE_VALUES for numbers) and
    how many parameters each changes from the defaults; the defaults themselves first."""
    scheme = SCHEMES[name]
    defaults = scheme.params()
    options = []
    for key, value in defaults.items():
        param = PARAMS[key]
        if param.is_choice:
            values = param.choices
        else:
            values = NICE_VALUES.get(key, ())
        options.append([value] + [v for v in values if v != value])
    found: list[tuple[dict, int]] = []
    for values in itertools.product(*options):
        try:
            params = scheme.params(dict(zip(defaults, values)))
        except ValueError:  # ConfigError: e.g. kaiming's fan_avg
            continue
        found.append((params, sum(params[k] != defaults[k] for k in defaults)))
    return tuple(found)


def _round_nice(value: float, ok, preferred: tuple[float, ...] = ()) -> float:
    """The standard value nearest ``value``, else ``value`` with the fewest significant digits, that
    ``ok`` accepts; ``value`` itself when none does."""
    for v in sorted(preferred, key=lambda v: abs(v - value)):
        if ok(v):
            return float(v)
    for digits in range(1, 8):
        v = float(f"{value:.{digits - 1}e}")
        if ok(v):
            return v
    return value


def _fit_spread(scheme: Scheme, params: dict, key: str, fan_in: int, fan_out: int,
                target: float) -> float | None:
    """The value of ``key`` that gives the scheme the std ``target`` at these fans (the others as in
    ``params``), or None: a root of the monotone std(value) on a log scale."""
    from scipy import optimize

    def log_ratio(log_value: float) -> float:
        law = scheme.law(fan_in, fan_out, scheme.params({**params, key: math.exp(log_value)}))
        return math.log(law.std / target)

    try:
        value = params[key] if params[key] > 0 else 1.0
        now = scheme.law(fan_in, fan_out, scheme.params({**params, key: value})).std
        # Exact for a spread proportional to the parameter (gain, std, limit), a start otherwise.
        start = math.log(value * target / now) if now > 0 else math.log(value)
        step = 1.0
        below, above = log_ratio(start - step), log_ratio(start + step)
        for _ in range(12):  # widen the bracket until the std crosses the target
            if below < 0 < above:
                return math.exp(optimize.brentq(log_ratio, start - step, start + step, xtol=1e-13, rtol=1e-13))
            step *= 2
            wider_below, wider_above = log_ratio(start - step), log_ratio(start + step)
            if wider_below >= below and wider_above <= above:  # saturated: no value reaches the target
                return None
            below, above = wider_below, wider_above
    except (ValueError, OverflowError, ZeroDivisionError):  # out of the parameter's range, std 0...
        return None
    return None


def _candidates(fan_in: int, fan_out: int, mean: float, std: float, std_tol: float, mean_tol: float,
                weight: bool) -> list[_Candidate]:
    """Every parameter set of the i.i.d. schemes to test, with its exact law at these fans."""
    found: list[_Candidate] = []

    def add(scheme: Scheme, params: dict, tier: int, changed: int) -> None:
        law = scheme.law(fan_in, fan_out, params)
        law_mean, law_std = law.moments()
        found.append(_Candidate(scheme.name, params, law, law_mean, law_std, tier, changed, len(found)))

    for scheme in _iid_schemes():
        if _fan_based(scheme):
            if not weight:  # a bias or a norm scale has no fans to follow
                continue
            for params, changed in _variants(scheme.name):
                add(scheme, params, 0 if changed == 0 else 1, changed)
        fits = [key for key in SPREAD_PARAMS if key in scheme.defaults]
        if not fits or std <= 0:
            continue
        params = scheme.params()
        if "mean" in params:
            params["mean"] = 0.0 if abs(mean) <= mean_tol else _round_nice(
                mean, lambda v: abs(v - mean) <= mean_tol * NICE_Z / STD_Z)
        key = fits[0]
        value = _fit_spread(scheme, params, key, fan_in, fan_out, std)
        if value is None:
            continue

        def close(v: float) -> bool:
            try:
                return abs(scheme.std(fan_in, fan_out, {**params, key: v}) / std - 1) <= std_tol * NICE_Z / STD_Z
            except ValueError:
                return False
        params[key] = _round_nice(value, close, NICE_VALUES.get(key, ()))
        params = scheme.params(params)
        defaults = scheme.params()
        add(scheme, params, 3 if _fan_based(scheme) else 2, sum(params[k] != defaults[k] for k in defaults))
    return found


@lru_cache(maxsize=None)
def _ks_critical(n: int) -> float:
    from scipy import stats

    return float(stats.kstwo.isf(KS_ALPHA, n))


def _ks(sorted_sample: np.ndarray, law: EntryLaw) -> float:
    n = sorted_sample.size
    cdf = law.cdf(sorted_sample)
    steps = np.arange(1, n + 1) / n
    return float(max(np.max(steps - cdf), np.max(cdf - (steps - 1 / n))))


def _equivalent(best: _Candidate, candidates: list[_Candidate], fan_in: int, fan_out: int) -> tuple[str, ...]:
    """The other names whose law at these fans is best's: at their defaults or standard values, or,
    for the generic schemes, with the spread that gives best's std exactly."""
    names = []
    for c in candidates:
        if c.tier <= 1 and c.law.same_as(best.law):
            names.append(c.scheme)
    for scheme in _iid_schemes():
        fits = [key for key in SPREAD_PARAMS if key in scheme.defaults]
        if _fan_based(scheme) or not fits or best.std <= 0:
            continue
        params = scheme.params()
        if "mean" in params:
            params["mean"] = best.mean
        value = _fit_spread(scheme, params, fits[0], fan_in, fan_out, best.std)
        if value is not None and scheme.law(fan_in, fan_out, {**params, fits[0]: value}).same_as(best.law):
            names.append(scheme.name)
    return tuple(dict.fromkeys(n for n in names if n != best.scheme))


def _match_iid(sample: np.ndarray, stats: _Stats, fan_in: int, fan_out: int,
               weight: bool) -> tuple[_Candidate, float, tuple[str, ...]] | None:
    n = sample.size
    if n < MIN_SAMPLE or not stats.std > 0:
        return None
    centred = sample - sample.mean()
    centred /= np.max(np.abs(centred))  # the fourth powers of values near float64's limit stay finite
    kurtosis = float(np.mean(centred**4) / np.mean(centred**2) ** 2)
    # Var(s^2) = sigma^4 (kurtosis - 1) / N: the relative standard error of the std is half that.
    std_tol = STD_Z * 0.5 * math.sqrt(min(max(kurtosis - 1, 0.5), 10.0) / stats.finite)
    mean_tol = STD_Z * stats.std / math.sqrt(stats.finite)
    candidates = _candidates(fan_in, fan_out, stats.mean, stats.std, std_tol, mean_tol, weight)
    ordered = np.sort(sample)
    critical = _ks_critical(n)
    accepted: list[tuple[int, float, _Candidate]] = []
    tested: dict[EntryLaw, float] = {}  # many parameter sets give one law (every gain-1 nonlinearity)
    for c in candidates:
        if not (c.std > 0 and abs(c.std / stats.std - 1) <= std_tol and abs(c.mean - stats.mean) <= mean_tol):
            continue
        ks = tested.get(c.law)
        if ks is None:
            ks = tested[c.law] = _ks(ordered, c.law)
        if ks <= critical:
            accepted.append((c.tier, ks, c))
    if not accepted:
        return None
    # Within a tier the laws a sample accepts differ in shape (a truncation: the KS decides) or by
    # less than it can tell (kaiming's a = 0 or 0.01: the fewer changes from the defaults decide).
    tier, ks, first = min(accepted, key=lambda a: (a[0], a[2].changed, a[1]))
    # Among the names with that law in that tier, the one nearest its defaults, then the registry's.
    same = [c for t, _, c in accepted if t == tier and c.law.same_as(first.law)]
    # Then the fewest parameters: glorot_uniform says at once what xavier_uniform(gain=1) says.
    best = min(same, key=lambda c: (c.changed, len(SCHEMES[c.scheme].defaults), c.order))
    return best, ks, _equivalent(best, candidates, fan_in, fan_out)


def _orthogonality(matrix: np.ndarray) -> tuple[float, float] | None:
    """(gain, max |G / gain^2 - I|) for the smaller Gram matrix G of the rows or columns; None when
    the vectors' norms already differ (no Gram needed) or the matrix is all zeros."""
    w = np.asarray(matrix, np.float64)
    vectors = w if w.shape[0] <= w.shape[1] else w.T  # the shorter side's vectors are orthonormal
    norms = np.einsum("ij,ij->i", vectors, vectors)
    gain2 = float(norms.mean())
    if gain2 <= 0 or not math.isfinite(gain2):
        return None
    if np.max(np.abs(norms / gain2 - 1)) > ORTHO_TOL:
        return math.sqrt(gain2), float(np.max(np.abs(norms / gain2 - 1)))
    gram = vectors @ vectors.T / gain2
    gram[np.diag_indices_from(gram)] -= 1
    return math.sqrt(gain2), float(np.max(np.abs(gram)))


def _match_structure(matrix: np.ndarray, dtype: np.dtype) -> Match | None:
    """identity, orthogonal or sparse, tested exactly on the whole (fan_in, fan_out) matrix."""
    w = np.asarray(matrix, np.float64)
    rows, cols = w.shape
    if min(rows, cols) < 2:
        return None
    diagonal = np.diagonal(w)
    eps = float(np.finfo(dtype).eps) if np.issubdtype(dtype, np.floating) else 0.0
    if diagonal[0] != 0 and np.all(diagonal == diagonal[0]) and np.count_nonzero(w) == diagonal.size:
        value = float(diagonal[0])
        gain = _round_nice(value, lambda v: abs(v - value) <= 2 * eps * abs(value), NICE_VALUES["gain"])
        return _structural("identity", {"gain": gain}, rows, cols, 0.0)
    found = _orthogonality(w)
    if found is not None and found[1] <= ORTHO_TOL:
        measured, deviation = found
        gain = _round_nice(measured, lambda v: abs(v / measured - 1) <= ORTHO_TOL / 2, NICE_VALUES["gain"])
        return _structural("orthogonal", {"gain": gain}, rows, cols, deviation)
    zeros = cols - np.count_nonzero(w, axis=1)
    if zeros[0] >= 1 and zeros[0] < cols and np.all(zeros == zeros[0]):
        return _match_sparse(w, int(zeros[0]))
    return None


def _structural(name: str, params: dict, fan_in: int, fan_out: int, statistic: float) -> Match:
    scheme = SCHEMES[name]
    params = scheme.params(params)
    return Match(name, params, scheme.std(fan_in, fan_out, params), statistic)


def _match_sparse(w: np.ndarray, zeros: int) -> Match | None:
    rows, cols = w.shape
    nonzero = w[w != 0]
    if nonzero.size > MAX_SAMPLE:
        nonzero = np.random.default_rng(SAMPLE_SEED).choice(nonzero, MAX_SAMPLE, replace=False)
    fitted = float(np.sqrt(np.mean(np.square(nonzero))))  # the nonzeros are N(0, std^2)
    tol = NICE_Z * 0.5 * math.sqrt(2 / nonzero.size)  # a normal sample's std's standard error
    std = _round_nice(fitted, lambda v: abs(v / fitted - 1) <= tol)
    ks = _ks(np.sort(nonzero), EntryLaw("normal", 0.0, std))
    if ks > _ks_critical(nonzero.size):
        return None
    # The shortest sparsity s with ceil(s * fan_out) == zeros.
    sparsity = _round_nice(zeros / cols, lambda v: math.ceil(v * cols) == zeros)
    return _structural("sparse", {"sparsity": sparsity, "std": std}, rows, cols, ks)


# --- the report -----------------------------------------------------------------------------

def _json_float(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass(frozen=True)
class TensorReport:
    name: str
    shape: tuple[int, ...]
    dtype: str
    kind: str  # one of KINDS
    fan_in: int | None  # None where not a weight
    fan_out: int | None
    mean: float  # over the finite entries (nan when there are none)
    std: float
    min: float
    max: float
    nonfinite: int
    zero_fraction: float  # of the finite entries
    best: Match | None
    equivalent: tuple[str, ...]
    mp_ks: float | None  # Marchenko-Pastur KS distance of the weight's spectrum (None: not computed)
    flags: tuple[str, ...]

    def to_json(self) -> dict:
        return {
            "name": self.name, "shape": list(self.shape), "dtype": self.dtype, "kind": self.kind,
            "fan_in": self.fan_in, "fan_out": self.fan_out, "mean": _json_float(self.mean),
            "std": _json_float(self.std), "min": _json_float(self.min), "max": _json_float(self.max),
            "nonfinite": self.nonfinite, "zero_fraction": _json_float(self.zero_fraction),
            "best": None if self.best is None else self.best.to_json(),
            "equivalent": list(self.equivalent), "mp_ks": _json_float(self.mp_ks), "flags": list(self.flags),
        }


def _std_flag(std: float, fan_in: int, fan_out: int) -> str | None:
    """Far (STD_FLAG_FACTOR) below LeCun's, He's and Glorot's std at these fans, or above all three:
    the signal's std changes by about that factor per layer. Glorot's keeps xavier at very unequal
    fans and orthogonal's 1/sqrt(max fan) unflagged; pytorch_linear's 1/sqrt(3 fan_in) is within."""
    lecun, he = 1 / math.sqrt(fan_in), math.sqrt(2 / fan_in)
    glorot = math.sqrt(2 / (fan_in + fan_out))
    said = (f"std {std:.3g} is {std / he:.2g}x the He std sqrt(2/fan_in) = {he:.3g} for fan_in {fan_in} "
            f"({std / lecun:.2g}x the LeCun std 1/sqrt(fan_in))")
    if std < min(lecun, glorot) / STD_FLAG_FACTOR:
        return (f"{said}: a signal vanishes through such layers, about {he / std:.2g}x smaller per layer "
                f"with ReLU, {lecun / std:.2g}x with tanh or linear")
    if std > max(he, glorot) * STD_FLAG_FACTOR:
        return (f"{said}: a signal explodes through such layers, about {std / he:.2g}x larger per layer "
                f"with ReLU, {std / lecun:.2g}x linear (tanh and sigmoid saturate)")
    return None


def _is_embedding(name: str) -> bool:
    """A lookup table (``embed_tokens``, GPT-2's ``wte``/``wpe``): its rows are copied into the network,
    not multiplied with a signal, so no per-layer growth follows from its std (PyTorch draws
    nn.Embedding from N(0, 1))."""
    return any("embed" in part or part in ("wte", "wpe") for part in _name_parts(name))


def _shape_flag(name: str, law: EntryLaw | None) -> str | None:
    """A name that says normal on uniform values, or uniform on normal ones."""
    if law is None:
        return None
    words = name.lower()
    if ("normal" in words or "gauss" in words) and law.plain().kind == "uniform":
        return "the name says normal, but the values are uniform"
    if "uniform" in words and law.plain().kind in ("normal", "truncated_normal"):
        return "the name says uniform, but the values are normal"
    return None


def inspect_tensor(name: str, array: np.ndarray, layout: str) -> TensorReport:
    """Everything the inspector says about one tensor. ``array`` may be a memmap of any size: it is
    read in CHUNKs and at MAX_SAMPLE places, and only weights of at most MAX_MATRIX entries are read
    whole (for the structural tests and the spectrum)."""
    check_layout(layout)
    array = np.asarray(array)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_) \
            or np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"tensor {name}: dtype {array.dtype} is not real numbers")
    shape = tuple(int(n) for n in array.shape)
    kind = tensor_kind(name, shape)
    stats = statistics(array)
    fan_in = fan_out = None
    if kind == "weight":
        fan_in, fan_out = fans(shape, layout)
    flags: list[str] = []
    if stats.nonfinite:
        values = "value" if stats.nonfinite == 1 else "values"
        flags.append(f"{stats.nonfinite} non-finite {values} (NaN or inf): one reaches every later activation "
                     "and gradient")
    best, equivalent, law = None, (), None
    matrix = None
    if kind == "weight" and array.size <= MAX_MATRIX and stats.finite == array.size and array.size:
        matrix = np.asarray(as_matrix(array, layout), np.float64)
    if stats.finite and stats.std == 0:  # every finite entry the same value
        value = stats.min
        scheme = "zeros" if value == 0 else "constant"
        if value != 0:  # 0.1 stored in float32 is 0.10000000149...: say 0.1
            eps = float(np.finfo(array.dtype).eps) if np.issubdtype(array.dtype, np.floating) else 0.0
            value = _round_nice(value, lambda v: abs(v - value) <= 0.5 * eps * abs(value))  # rounds to it
        best = Match(scheme, {} if value == 0 else SCHEMES["constant"].params({"value": value}), 0.0, 0.0)
        law = EntryLaw("point", value, 0.0, value, value)
        if kind == "weight" and value == 0:
            flags.append("all zeros: the layer outputs only its bias and every unit gets the same gradient, "
                         "so the units never differ (symmetry is never broken)")
        elif kind == "weight":
            flags.append(f"every entry is {value:g}: all units compute the same output and get the same "
                         "gradient, so they stay identical (symmetry is never broken)")
    elif stats.finite:
        if matrix is not None and len(shape) == 2 and math.isfinite(stats.std):
            best = _match_structure(matrix, array.dtype)
        if best is None:
            found = _match_iid(_subsample(array), stats, fan_in or 1, fan_out or 1, kind == "weight")
            if found is not None:
                candidate, ks, equivalent = found
                best = Match(candidate.scheme, candidate.params, candidate.std, ks)
                law = candidate.law
    if kind == "weight" and fan_in and stats.std > 0:
        flag = None if _is_embedding(name) else _std_flag(stats.std, fan_in, fan_out)
        if flag:
            flags.append(flag)
        flag = _shape_flag(name, law)
        if flag:
            flags.append(flag)
        if "ortho" in name.lower() and matrix is not None and min(matrix.shape) >= 2:
            found = _orthogonality(matrix)
            if found is not None and found[1] > ORTHO_TOL:
                flags.append(f"the name says orthogonal, but the rows are not: the largest entry of "
                             f"W W^T / gain^2 - I is {found[1]:.2g} (orthogonal: below {ORTHO_TOL:g})")
    mp_ks = None
    # The Gram matrix sums fan_in squares: values beyond ~1e150 would overflow it.
    squares_fit = max(abs(stats.min), abs(stats.max)) < 1e150 / math.sqrt(max(fan_in or 1, 1))
    if matrix is not None and stats.std > 0 and squares_fit and min(matrix.shape) <= MAX_SPECTRUM_SIDE:
        from .spectra import weight_spectrum

        distance = weight_spectrum(matrix).ks_distance()
        mp_ks = distance if math.isfinite(distance) else None
    zero_fraction = stats.zeros / stats.finite if stats.finite else math.nan
    return TensorReport(name, shape, str(array.dtype), kind, fan_in, fan_out, stats.mean, stats.std,
                        stats.min, stats.max, stats.nonfinite, zero_fraction, best, equivalent, mp_ks,
                        tuple(flags))


# --- the matched scheme's density -----------------------------------------------------------

def _orthogonal_entry_pdf(x: np.ndarray, gain: float, n: int) -> np.ndarray:
    """One entry of gain * u, u uniform on the unit sphere of R^n (a column of a Haar orthogonal
    matrix): Gamma(n/2) / (Gamma((n-1)/2) sqrt(pi)) (1 - t^2)^((n-3)/2) / gain, t = x / gain."""
    t = x / gain
    inside = np.abs(t) < 1
    log_c = math.lgamma(n / 2) - math.lgamma((n - 1) / 2) - 0.5 * math.log(math.pi)
    with np.errstate(divide="ignore", invalid="ignore"):
        density = np.exp(log_c + (n - 3) / 2 * np.log1p(-np.where(inside, t * t, 0.0))) / gain
    return np.where(inside, density, 0.0)


def scheme_density(match: Match, fan_in: int | None, fan_out: int | None, x) -> np.ndarray:
    """The exact density of one entry of the matched scheme at these fans, at x (a bias's or norm
    scale's generic match ignores the fans: pass None). Point masses (zeros, constant, identity's
    ones and zeros) have no density: 0. Sparse: the nonzeros' part, (1 - zeros / fan_out) N(0, std^2),
    without the atom at 0. Orthogonal (matched on 2-D weights only): a column's entry, exactly."""
    x = np.asarray(x, np.float64)
    fi, fo = fan_in or 1, fan_out or 1
    scheme = get_scheme(match.scheme)
    params = scheme.params(match.params)
    law = scheme.law(fi, fo, params)
    if law is not None:
        return law.pdf(x)
    if match.scheme == "orthogonal":
        return _orthogonal_entry_pdf(x, params["gain"], max(fi, fo))
    if match.scheme == "sparse":
        kept = 1 - math.ceil(params["sparsity"] * fo) / fo
        return kept * EntryLaw("normal", 0.0, params["std"]).pdf(x)
    return np.zeros_like(x)
