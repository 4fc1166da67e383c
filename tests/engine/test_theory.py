"""Mean-field theory: quadrature against adaptive integration, the known values, the grid solver
against the plain iteration, the correlation map, and the bridge between configs and the plane."""

import math

import numpy as np
import pytest
from scipy import integrate

from initsim.engine import ACTIVATIONS, SimConfig, get_activation, simulate
from initsim.engine import theory as T


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
