"""Activation functions: values, derivatives against finite differences, registry facts."""

import math

import numpy as np
import pytest
from scipy import special

from initsim.engine import ACTIVATIONS, SCHEMES, ConfigError, get_activation
from initsim.engine.activations import SELU_ALPHA, SELU_SCALE

PARAM_CASES = [(name, {}) for name in ACTIVATIONS] + [
    ("leaky_relu", {"slope": 0.2}), ("elu", {"alpha": 0.5}), ("gelu", {"approximate": "tanh"}),
]
# Avoid the kink at 0 for the finite differences.
U = np.concatenate([np.linspace(-6, -1e-3, 400), np.linspace(1e-3, 6, 400)])


@pytest.mark.parametrize("name,params", PARAM_CASES)
def test_derivative_matches_finite_differences(name, params):
    act = get_activation(name)
    p = act.params(params)
    eps = 1e-6
    numeric = (act.apply(U + eps, p) - act.apply(U - eps, p)) / (2 * eps)
    np.testing.assert_allclose(act.derivative(U.copy(), p), numeric, rtol=1e-6, atol=1e-7)


# Activations whose derivative follows from the output (the simulation then keeps only the output).
INVERTIBLE = [(n, p) for n, p in PARAM_CASES if ACTIVATIONS[n].derivative_from_output is not None]


def test_only_non_monotonic_activations_lack_an_output_derivative():
    assert {n for n, a in ACTIVATIONS.items() if a.derivative_from_output is None} == {"gelu", "silu"}


@pytest.mark.parametrize("name,params", INVERTIBLE)
def test_derivative_from_output_agrees(name, params):
    act = get_activation(name)
    p = act.params(params)
    np.testing.assert_allclose(act.derivative_from_output(act.apply(U, p), p), act.derivative(U.copy(), p),
                               rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name,params", PARAM_CASES)
def test_forward_in_place_equals_copy_and_keeps_float32(name, params):
    act = get_activation(name)
    p = act.params(params)
    u = np.linspace(-5, 5, 101, dtype=np.float32)
    out = act.forward(u.copy(), p)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, act.apply(u.astype(np.float64), p), rtol=2e-6, atol=2e-7)
    assert act.derivative(u, p).dtype == np.float32


def test_reference_values():
    u = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    np.testing.assert_allclose(get_activation("relu").apply(u), [0, 0, 0, 0.5, 2])
    np.testing.assert_allclose(get_activation("leaky_relu").apply(u), [-0.02, -0.005, 0, 0.5, 2])
    np.testing.assert_allclose(get_activation("elu").apply(u), np.where(u > 0, u, np.expm1(u)))
    np.testing.assert_allclose(get_activation("selu").apply(u),
                               SELU_SCALE * np.where(u > 0, u, SELU_ALPHA * np.expm1(u)))
    np.testing.assert_allclose(get_activation("gelu").apply(u), u * special.ndtr(u))
    np.testing.assert_allclose(get_activation("silu").apply(u), u * special.expit(u))
    np.testing.assert_allclose(get_activation("softplus").apply(u), np.log1p(np.exp(u)))
    np.testing.assert_allclose(get_activation("sigmoid").apply(u), special.expit(u))
    # GELU's tanh approximation stays within 1e-3 of the exact form.
    approx = get_activation("gelu").apply(np.linspace(-5, 5, 201), {"approximate": "tanh"})
    assert np.abs(approx - get_activation("gelu").apply(np.linspace(-5, 5, 201))).max() < 1e-3


def test_selu_constants():
    assert SELU_ALPHA == 1.6732632423543772 and SELU_SCALE == 1.0507009873554805


def test_gains_and_recommendations():
    gains = {a: ACTIVATIONS[a].gain() for a in ACTIVATIONS}
    assert gains["relu"] == math.sqrt(2) and gains["tanh"] == 5 / 3 and gains["selu"] == 0.75
    assert gains["linear"] == 1 and gains["sigmoid"] == 1
    assert get_activation("leaky_relu").gain({"slope": 0.2}) == math.sqrt(2 / 1.04)
    for act in ACTIVATIONS.values():
        assert act.recommended in SCHEMES
        SCHEMES[act.recommended].params(act.recommended_params(act.params()))  # valid parameters
    # Without a PyTorch gain, the mean-field gain makes E[phi(g z)^2] ... = 1 at unit input.
    elu = get_activation("elu")
    z = np.random.default_rng(0).standard_normal(2_000_000)
    assert np.mean(elu.apply(z) ** 2) * elu.gain() ** 2 == pytest.approx(1.0, rel=0.005)


def test_dead_and_saturation_rules():
    assert get_activation("relu").can_die({}) and not get_activation("tanh").can_die({})
    assert get_activation("leaky_relu").can_die({"slope": 0.0})
    assert not get_activation("leaky_relu").can_die({"slope": 0.01})
    assert get_activation("tanh").saturation == (-0.97, 0.97)
    assert get_activation("sigmoid").saturation == (0.015, 0.985)


def test_unknown_activation_suggests():
    with pytest.raises(ConfigError, match="did you mean 'relu'"):
        get_activation("rleu")
    assert get_activation("swish").name == "silu"
