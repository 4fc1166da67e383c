"""Mean-field theory: quadrature against adaptive integration, the known values, the grid solver
against the plain iteration, the correlation map, the bridge between configs and the plane, and
the edges: no fixed point where the variance map stays above the diagonal, the Jacobian's mean s^2
along the network's own q^l, each layer's bias from its own fan_in."""

import math

import numpy as np
import pytest
from scipy import integrate, interpolate, optimize
from threadpoolctl import threadpool_limits

from initsim.cli import main
from initsim.engine import ACTIVATIONS, SimConfig, get_activation, simulate
from initsim.engine import theory as T
from initsim.engine.activations import SELU_SCALE
from initsim.engine.spectra import jacobian_spectrum


def adaptive(func, q: float) -> float:
    """E_z[func(sqrt(q) z)] by scipy's adaptive quadrature, each half-line split where |u| = 1, 5, 20."""
    scale = math.sqrt(q)

    def integrand(z):
        return float(func(np.array([scale * z]))[0]) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    breaks = [b / scale for b in (1.0, 5.0, 20.0) if b / scale < 12]
    total = 0.0
    for sign in (1, -1):
        edges = [0.0] + breaks + [12.0]
        for a, b in zip(edges, edges[1:]):
            total += sign * integrate.quad(integrand, sign * a, sign * b, epsabs=1e-15, epsrel=1e-13,
                                           limit=200)[0]
    return total


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_quadrature_matches_adaptive_integration_for_every_activation(name):
    act = get_activation(name)
    p = act.params()
    for q in (1e-4, 0.3, 1.0, 2.5, 40.0, 1e4):
        for moment, func in ((T.second_moment, lambda u: act.forward(u, p) ** 2),
                             (T.slope_moment, lambda u: act.derivative(u, p) ** 2)):
            assert float(moment(act, p, q)) == pytest.approx(adaptive(func, q), rel=1e-9, abs=1e-300), (q, moment)


def test_pair_expectation_matches_closed_forms_and_adaptive_integration():
    relu = get_activation("relu")
    q, c = 1.7, np.array([-0.9, -0.3, 0.0, 0.5, 0.99, 1.0])
    # ReLU: the arc-cosine kernel (Cho & Saul 2009).
    arccos = q / (2 * math.pi) * (np.sqrt(1 - c * c) + (math.pi - np.arccos(c)) * c)
    np.testing.assert_allclose(T.pair_expectation(lambda u: relu.forward(u, {}), q, c), arccos, rtol=1e-10)
    np.testing.assert_allclose(T.pair_expectation(lambda u: u, q, c), q * c, rtol=1e-12, atol=1e-15)
    rho = 0.6
    density = lambda y, x: (np.tanh(x) * np.tanh(y) * math.exp(-(x * x - 2 * rho * x * y + y * y)
                            / (2 * q * (1 - rho**2))) / (2 * math.pi * q * math.sqrt(1 - rho**2)))
    reference = integrate.dblquad(density, -15, 15, -15, 15, epsabs=1e-12)[0]
    assert float(T.pair_expectation(np.tanh, q, rho)) == pytest.approx(reference, rel=1e-8)


# --- known values -------------------------------------------------------------------------

def test_relu_is_critical_at_he_for_every_bias_and_chi1_is_half_sigma_w2():
    relu = get_activation("relu")
    np.testing.assert_allclose(T.critical_line(relu, {}, [0.0, 0.05, 0.3]), 2.0, rtol=1e-9)
    sw, sb = np.meshgrid([0.5, 1.0, 1.9, 2.5], [0.0, 0.1])
    q_star, chi = T.chi1_at_fixed_point(relu, {}, sw, sb)
    np.testing.assert_allclose(chi, sw / 2, rtol=1e-9)
    ordered = sw < 2
    np.testing.assert_allclose(q_star[ordered], (sb / (1 - sw / 2))[ordered], rtol=1e-7, atol=1e-10)
    assert np.all(np.isinf(q_star[~ordered]))
    assert float(T.fixed_point(relu, {}, 2.0, 0.0, q0=3.0)) == 3.0  # He without bias: every q is fixed


def test_tanh_critical_line_matches_the_literature():
    tanh = get_activation("tanh")
    line = T.critical_line(tanh, {}, [0.0, 0.01, 0.05, 0.1])
    np.testing.assert_allclose(line, [1.0, 1.424, 1.761, 1.986], atol=1.5e-3)
    q_star, chi = T.chi1_at_fixed_point(tanh, {}, (5 / 3) ** 2, 0.0)
    assert float(q_star) == pytest.approx(1.18, abs=0.005) and float(chi) == pytest.approx(1.21, abs=0.005)


def test_selu_with_lecun_weights_has_unit_fixed_point_and_chi1_near_1_07():
    selu = get_activation("selu")
    q_star, chi = T.chi1_at_fixed_point(selu, {}, 1.0, 0.0)
    assert float(q_star) == pytest.approx(1.0, abs=1e-6)
    assert float(chi) == pytest.approx(1.0716, abs=2e-4)
    prediction = T.predict(selu, {}, [1.0] * 5, [1.0] * 5, 0.0)
    assert prediction.q_star == pytest.approx(1.0, abs=1e-6) and prediction.chi1 == pytest.approx(1.0716, abs=2e-4)


def test_chi1_at_a_vanished_variance_is_the_limit_from_above():
    relu = get_activation("relu")
    prediction = T.predict(relu, {}, [1.0] * 5, [1.0] * 5, 0.0)  # q* = 0; ReLU'(0) is a convention
    assert prediction.q_star == 0.0 and prediction.chi1 == pytest.approx(0.5)


# --- the grid solver against the plain iteration ------------------------------------------

def iterate_to_fixed_point(act, p, sw, sb, q0=1.0, steps=20000):
    q = q0
    for _ in range(steps):
        new = float(T.variance_map(act, p, q, sw, sb))
        if not math.isfinite(new) or new > 1e12 or abs(new - q) <= 1e-14 * q:
            return new if math.isfinite(new) and new <= 1e12 else math.inf
        q = new
    return q


@pytest.mark.parametrize("name", ["tanh", "gelu", "elu", "sigmoid", "softplus", "selu"])
def test_grid_fixed_point_and_chi1_match_iteration_and_exact_quadrature(name):
    act = get_activation(name)
    p = act.params()
    rng = np.random.default_rng(3)
    sw = rng.uniform(0.2, 3.5, 12) * (20 if name == "sigmoid" else 1)
    sb = rng.uniform(0.01, 0.3, 12)
    q_star, chi = T.chi1_at_fixed_point(act, p, sw, sb)
    for k in range(sw.size):
        expected = iterate_to_fixed_point(act, p, sw[k], sb[k])
        assert q_star[k] == pytest.approx(expected, rel=1e-6), (sw[k], sb[k])
        if math.isfinite(expected):
            assert chi[k] == pytest.approx(float(T.chi1(act, p, expected, sw[k])), rel=1e-6)


def test_phase_diagram_is_ordered_left_of_the_critical_line_and_chaotic_right():
    tanh = get_activation("tanh")
    sigma_w2, sigma_b2 = T.phase_axes(tanh, {}, grid=40)
    assert sigma_w2[-1] == pytest.approx(3.0) and sigma_b2[-1] == pytest.approx(0.1)
    diagram = T.phase_diagram(tanh, {}, sigma_w2, sigma_b2)
    assert diagram.chi1.shape == diagram.q_star.shape == (40, 40)
    left = diagram.sigma_w2[None, :] < diagram.critical_sigma_w2[:, None] - 1e-9
    assert np.all(diagram.log_chi1[left] < 0) and np.all(diagram.log_chi1[~left] >= -1e-9)
    assert np.all(np.isinf(diagram.depth_scale[diagram.chi1 == 1.0]))
    np.testing.assert_allclose(diagram.depth_scale, 1 / np.abs(np.log(diagram.chi1)))


def test_depth_scale_keeps_floats_floats():
    assert T.depth_scale(math.e) == pytest.approx(1.0) and isinstance(T.depth_scale(0.5), float)
    assert T.depth_scale(1.0) == math.inf and T.depth_scale(0.0) == 0.0
    np.testing.assert_allclose(T.depth_scale(np.array([math.exp(-0.5), 1.0])), [2.0, math.inf])
    assert [T.phase_of(x) for x in (0.5, 1.0, 1.5, math.nan)] == ["ordered", "critical", "chaotic", "undefined"]


# --- correlations -------------------------------------------------------------------------

def test_correlation_map_fixes_1_with_slope_chi1_and_converges_by_phase():
    tanh = get_activation("tanh")
    sw, sb = 2.0, 0.05
    q_star = float(T.fixed_point(tanh, {}, sw, sb))
    assert float(T.correlation_map(tanh, {}, 1.0, q_star, sw, sb)) == pytest.approx(1.0, abs=1e-12)
    eps = 1e-5
    slope = (1 - float(T.correlation_map(tanh, {}, 1 - eps, q_star, sw, sb))) / eps
    assert slope == pytest.approx(float(T.chi1(tanh, {}, q_star, sw)), rel=1e-4)
    ordered = T.mean_field(tanh, {}, 0.8, 0.05, depth=60, c0=[0.1, 0.9])
    chaotic = T.mean_field(tanh, {}, 3.0, 0.05, depth=150, c0=[0.1, 0.9])
    np.testing.assert_allclose(ordered.c[-1], 1.0, atol=1e-6)  # every pair of inputs merges
    # Chaos: both pairs decorrelate to the same c* < 1.
    assert chaotic.c[-1][0] == pytest.approx(chaotic.c[-1][1], abs=1e-5) and chaotic.c[-1][0] < 0.5


def test_mean_field_agrees_with_predict():
    gelu = get_activation("gelu")
    field = T.mean_field(gelu, gelu.params(), 2.0, 0.1, depth=8, q0=1.0, c0=0.3)
    prediction = T.predict(gelu, gelu.params(), [2.0] * 8, [1.0] * 8, 0.1)
    np.testing.assert_allclose(np.sqrt(field.q), prediction.pre_std, rtol=1e-12)
    assert field.c[0] == pytest.approx((2.0 * 0.3 + 0.1) / 2.1)
    assert (field.q_star, field.chi1, field.depth_scale) == (prediction.q_star, prediction.chi1,
                                                             prediction.depth_scale)


# --- configs and the plane ------------------------------------------------------------------

def test_config_at_and_config_sigmas_round_trip_and_drive_the_simulation():
    base = SimConfig(layers=6, width=64, batch=32, activation="tanh", init="xavier_uniform")
    assert T.config_sigmas(base.validated()) == pytest.approx((1.0, 0.0))
    moved = T.config_at(base, 1.76, 0.05)
    assert moved.init == "variance_scaling" and moved.bias_init == "normal"
    assert T.config_sigmas(moved) == pytest.approx((1.76, 0.05))
    result = simulate(moved)
    assert result.theory.sigma_w2[-1] == pytest.approx(1.76) and result.theory.sigma_b2 == pytest.approx(0.05)
    assert result.theory.chi1 == pytest.approx(1.0, abs=3e-3)  # on the critical line


# --- at the edges: checked against adaptive quadrature and a root search written here ------
#
# The independent fixed point finds the variance map's first crossing of the diagonal on a log
# grid of q. It too splits off the map's growth at large q, phi(u)^2 ~ (a_+- u)^2, with the tails'
# slopes read from the activations' definitions: at q = 1e10 the excess map(q) - q of softplus at
# sigma_w^2 = 2 is ~1e-5, far below the rounding error of E[phi^2].

# (a_-, a_+): phi(u) ~ a_+- u as u -> +-inf, from each activation's formula.
TAIL_SLOPES = {
    "linear": lambda p: (1.0, 1.0), "relu": lambda p: (0.0, 1.0),
    "leaky_relu": lambda p: (p["slope"], 1.0), "elu": lambda p: (0.0, 1.0),
    "selu": lambda p: (0.0, SELU_SCALE), "gelu": lambda p: (0.0, 1.0), "silu": lambda p: (0.0, 1.0),
    "softplus": lambda p: (0.0, 1.0), "tanh": lambda p: (0.0, 0.0), "sigmoid": lambda p: (0.0, 0.0),
}
Q_MIN, Q_MAX = 1e-10, 1e10  # the engine reports a fixed point below as 0, above as inf
LOG_GRID = np.geomspace(Q_MIN, Q_MAX, 81)  # 4 points a decade



class VarianceMap:
    """q -> sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2 of one activation, as m q + R(q)."""

    def __init__(self, name: str, given: dict | None = None):
        self.act = get_activation(name)
        self.params = self.act.params(given)
        low, high = TAIL_SLOPES[name](self.params)
        self.growth = (low * low + high * high) / 2  # lim E[phi^2] / q
        self.slopes = (low, high)
        self.remainders = {}

    def remainder(self, q: float) -> float:
        """R(q) = E[phi^2 - (a_+- u)^2]."""
        if q not in self.remainders:
            low, high = self.slopes

            def beyond_the_tails(u):
                phi, tail = self.act.apply(u, self.params), np.where(u > 0, high, low) * u
                return (phi - tail) * (phi + tail)

            self.remainders[q] = adaptive(beyond_the_tails, q)
        return self.remainders[q]

    def excess(self, q: float, sigma_w2: float, sigma_b2: float) -> float:
        return (sigma_w2 * self.growth - 1) * q + sigma_w2 * self.remainder(q) + sigma_b2

    def fixed_point(self, sigma_w2: float, sigma_b2: float, q0: float = 1.0) -> float:
        """Where iterating the map from q0 ends: the first crossing of the diagonal on the log grid
        in the direction the map moves, refined by Brent's method; inf / 0 when there is none."""
        g0 = self.excess(q0, sigma_w2, sigma_b2)
        if abs(g0) <= 1e-12 * q0:
            return q0
        up = g0 > 0
        grid = LOG_GRID[LOG_GRID > q0] if up else LOG_GRID[LOG_GRID < q0][::-1]
        previous = q0
        for q in grid:
            if (self.excess(q, sigma_w2, sigma_b2) > 0) != up:
                low, high = sorted((previous, q))
                return math.exp(optimize.brentq(lambda x: self.excess(math.exp(x), sigma_w2, sigma_b2),
                                                math.log(low), math.log(high), xtol=1e-12, rtol=1e-13))
            previous = q
        return math.inf if up else 0.0


def sigma_w2_grid(growth: float) -> list[float]:
    """0, then around the edge sigma_w^2 m = 1 where the map's slope at large q is 1."""
    if growth == 0:  # bounded: the map always meets the diagonal
        return [0.0, 0.5, 1.0, 1.5, 4.0, 16.0]
    return [0.0, 0.5 / growth, 0.98 / growth, 1 / growth, 1.02 / growth, 2 / growth]


@pytest.mark.parametrize("name, given", [(name, {}) for name in ACTIVATIONS] + [
    ("leaky_relu", {"slope": 3.0}), ("elu", {"alpha": 2.0}), ("gelu", {"approximate": "tanh"})])
def test_fixed_point_matches_independent_quadrature_and_root_search_at_the_edges(name, given):
    assert set(TAIL_SLOPES) == set(ACTIVATIONS)  # a new activation needs its tails here
    reference = VarianceMap(name, given)
    table = T.moment_table(reference.act, reference.params)
    assert table.growth == pytest.approx(reference.growth, rel=1e-15)
    sigma_w2 = np.array(sigma_w2_grid(reference.growth))
    sigma_b2 = np.array([0.0, 0.05, 1.0])
    q_star = T.fixed_point(reference.act, reference.params, sigma_w2[None, :], sigma_b2[:, None])
    for i, sb in enumerate(sigma_b2):
        for j, sw in enumerate(sigma_w2):
            expected = reference.fixed_point(sw, sb)
            if math.isfinite(expected) and expected > 0:
                assert q_star[i, j] == pytest.approx(expected, rel=1e-6), (sw, sb)
            else:
                assert q_star[i, j] == expected, (sw, sb)


def test_no_fixed_point_where_the_map_stays_above_the_diagonal(capsys):
    """Softplus, ELU and SELU at sigma_w^2 m = 1 approach the diagonal from above (by ~1/sqrt(q),
    alpha^2 and (scale alpha)^2 / 2 times sigma_w^2): the variance grows without bound, and
    chi_1 tends to 1."""
    for name, sigma_w2 in (("softplus", 2.0), ("elu", 2.0), ("selu", 2 / SELU_SCALE**2)):
        reference = VarianceMap(name)
        assert all(reference.excess(q, sigma_w2, 0.0) > 0 for q in LOG_GRID)
        act = get_activation(name)
        field = T.mean_field(act, act.params(), sigma_w2, 0.0, depth=30)
        assert field.q_star == math.inf and np.all(np.diff(field.q) > 0), name
        assert field.chi1 == pytest.approx(1.0, abs=1e-12) and T.phase_of(field.chi1) == "critical"
        diagram = T.phase_diagram(act, act.params(), [sigma_w2], [0.0])  # the grid solver agrees
        assert diagram.q_star[0, 0] == math.inf and diagram.chi1[0, 0] == pytest.approx(1.0, abs=1e-12)
    assert main(["theory", "--activation", "softplus", "--sigma-w2", "2", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"q_star": null' in out and '"phase": "critical"' in out


# --- the Jacobian's mean s^2 along the network's own q^l ------------------------------------

def chi_product(name: str, sigma_w2: float, sigma_b2: float, layers: int, q1: float) -> float:
    """prod_l sigma_w^2 E[phi'(sqrt(q^l) z)^2] from q^1 = q1 on, by adaptive quadrature."""
    act = get_activation(name)
    p = act.params()
    product, q = 1.0, q1
    for _ in range(layers):
        product *= sigma_w2 * adaptive(lambda u: act.derivative(u, p) ** 2, q)
        q = sigma_w2 * adaptive(lambda u: act.apply(u, p) ** 2, q) + sigma_b2
    return product


# tanh on the critical line: chi_1(q*) = 1, but the input (q^1 = 1.81) is far from q* (0.56).
CRITICAL_TANH = (1.76, 0.05)


@pytest.mark.parametrize("input_width", [64, 256, 1024])
def test_jacobian_mean_square_is_the_product_of_chi_along_q_l(input_width):
    sigma_w2, sigma_b2 = CRITICAL_TANH
    layers, width = 6, 256
    config = T.config_at(SimConfig(layers=layers, width=width, batch=1, activation="tanh",
                                   input_width=input_width), sigma_w2, sigma_b2)
    # tr(J J^T) = fan_in_1 * (width / fan_in_1) * prod chi, spread over min(fan_in_1, width) values.
    spread = width / min(input_width, width)
    expected = chi_product("tanh", sigma_w2, sigma_b2, layers, sigma_w2 + sigma_b2) * spread
    prediction = T.config_prediction(config)
    assert prediction.jacobian_mean_square == pytest.approx(expected, rel=1e-9)
    tanh = get_activation("tanh")
    at_fixed_point = T.mean_field(tanh, {}, sigma_w2, sigma_b2, depth=1).chi1 ** layers
    assert at_fixed_point == pytest.approx(1.0, abs=2e-3)
    assert expected < 0.5 * at_fixed_point * spread


def test_measured_jacobian_mean_square_agrees_with_the_prediction_within_sampling_error():
    """Each seed draws new weights and a new input; the mean s^2 of one network scatters by ~10%
    (each layer's average of phi'^2 over 512 units, and q^1 from one input). The mean over seeds
    meets the prediction within 4 standard errors, chi_1(q*)^L (1.0) lies far outside."""
    sigma_w2, sigma_b2 = CRITICAL_TANH
    base = T.config_at(SimConfig(layers=6, width=512, batch=1, activation="tanh", input_width=256),
                       sigma_w2, sigma_b2)
    with threadpool_limits(1):
        spectra = [jacobian_spectrum(base.replace(seed=seed)) for seed in range(8)]
    measured = np.array([s.mean_square for s in spectra])
    predicted = spectra[0].mean_square_theory
    assert all(s.mean_square_theory == predicted for s in spectra)
    assert predicted == pytest.approx(T.config_prediction(base).jacobian_mean_square, rel=1e-12)
    error = measured.std(ddof=1) / math.sqrt(measured.size)
    assert abs(measured.mean() - predicted) < 4 * error
    tanh = get_activation("tanh")
    at_fixed_point = T.mean_field(tanh, {}, sigma_w2, sigma_b2, depth=1).chi1 ** 6 * 512 / 256
    assert abs(measured.mean() - at_fixed_point) > 20 * error


# --- each layer's bias from its own fan_in --------------------------------------------------

def test_layer_one_bias_variance_uses_the_input_width():
    """A pytorch_linear bias is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), E[b^2] = 1 / (3 fan_in): layer
    1's fan_in is the input's (2), not the width (1024)."""
    config = SimConfig(layers=3, width=1024, batch=2048, activation="tanh", init="lecun_uniform",
                       bias_init="pytorch_linear", input_width=2, input_dist="uniform", seed=5)
    result = simulate(config)
    q1 = 1.0 + 1 / (3 * 2)  # lecun_uniform: fan_in E[W^2] = 1; the inputs have unit variance
    tanh = get_activation("tanh")
    q2 = adaptive(lambda u: tanh.apply(u) ** 2, q1) + 1 / (3 * 1024)
    q3 = adaptive(lambda u: tanh.apply(u) ** 2, q2) + 1 / (3 * 1024)
    np.testing.assert_allclose(np.square(result.theory.pre_std), [q1, q2, q3], rtol=1e-9)
    assert result.theory.sigma_b2 == pytest.approx(1 / (3 * 1024))
    # The measured layer-1 variance is the mean over 1024 units of |w|^2 + b^2 (|w|^2 of two
    # U(-sqrt(3/2), sqrt(3/2)) entries: variance 0.4) with the input's second moment over 2048
    # samples (variance of x^2 0.8 per input): standard error sqrt(0.4 / 1024 + 0.8 / 4096) ~ 0.024.
    # The bias's share, 1/6, is 7 of them.
    measured = result.forward[0].pre.std ** 2
    assert measured == pytest.approx(q1, abs=4 * 0.024)


@pytest.mark.parametrize("nodes", [4, 5, 9, 1281])
def test_the_moment_tables_spline_is_scipys_not_a_knot_cubic_spline(nodes):
    """At the nodes, between them and beyond the ends; NaN stays NaN."""
    x = np.linspace(-23.0, 23.0, nodes)
    rng = np.random.default_rng(nodes)
    queries = np.concatenate([x, rng.uniform(-25.0, 25.0, 2000), [-23.0, 23.0]])
    for y in (np.sin(x / 3), np.log1p(np.exp(x)), np.exp(-x * x / 50) * 1e-7):
        expected = interpolate.CubicSpline(x, y)(queries)
        np.testing.assert_allclose(T.UniformCubicSpline(x, y)(queries), expected,
                                   rtol=1e-9, atol=1e-12 * np.abs(y).max())
    assert np.isnan(T.UniformCubicSpline(x, np.sin(x))(np.array([np.nan, 0.0]))).tolist() == [True, False]


def test_a_configs_prediction_is_computed_once_and_shared_unless_it_depends_on_weights(monkeypatch):
    """The run, the views and the exports ask for the same config's prediction: it is computed
    once. LSUV's depends on the weights it ended up with: computed for each set."""
    computed = []
    predict = T.predict
    monkeypatch.setattr(T, "predict", lambda *args, **kwargs: computed.append(1) or predict(*args, **kwargs))
    config = SimConfig(layers=4, width=16, activation="tanh", init="xavier_normal").validated()
    first = T.config_prediction(config)
    assert T.config_prediction(config) is first and T.config_prediction(config, [np.ones((16, 16))] * 4) is first
    assert len(computed) == 1
    assert T.config_prediction(config.replace(layers=5).validated()).pre_std[:4] == first.pre_std
    assert len(computed) == 2
    lsuv = config.replace(init="lsuv", init_params={}).validated()
    a = T.config_prediction(lsuv, [np.full((16, 16), 0.25)] * 4)
    b = T.config_prediction(lsuv, [np.full((16, 16), 0.5)] * 4)
    assert a.sigma_w2 != b.sigma_w2 and len(computed) == 4
