"""Jacobian and weight spectra: isometry of orthogonal linear nets, Marchenko-Pastur for Gaussian
layers, and the law's own density and distribution function."""

import math

import numpy as np
import pytest
from scipy import integrate
from threadpoolctl import threadpool_limits

from initsim.engine import ConfigError, SimConfig, initial_weights
from initsim.engine import spectra as S


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Multi-threaded BLAS slows down tenfold when other processes hold the cores (shared CI)."""
    with threadpool_limits(limits=1):
        yield


def test_orthogonal_linear_net_has_every_singular_value_equal_to_the_gain_power():
    gain = 1.1
    config = SimConfig(layers=5, width=96, batch=8, activation="linear", init="orthogonal",
                       init_params={"gain": gain}, seed=4)
    spectrum = S.jacobian_spectrum(config)
    assert spectrum.singular_values.shape == (96,)
    np.testing.assert_allclose(spectrum.singular_values, gain**5, rtol=1e-5)
    assert spectrum.condition == pytest.approx(1.0, abs=1e-4) and spectrum.log_spread < 1e-5


def test_jacobian_matches_finite_differences_of_the_network():
    config = SimConfig(layers=3, width=16, batch=4, input_width=10, activation="tanh",
                       init="xavier_normal", bias_init="normal", seed=2).validated()
    jac = S.jacobian(config)
    layers = [(w.astype(np.float64), b.astype(np.float64)) for w, b in initial_weights(config)]

    def network(x):
        for w, b in layers:
            x = np.tanh(x @ w + b)
        return x

    x0 = np.random.default_rng(config.seed).standard_normal(10)
    eps = 1e-6
    numeric = np.array([(network(x0 + eps * e) - network(x0 - eps * e)) / (2 * eps) for e in np.eye(10)])
    assert jac.shape == (10, 16)
    np.testing.assert_allclose(jac, numeric, rtol=1e-6, atol=1e-9)


def test_orthogonal_weights_keep_a_deep_tanh_jacobian_far_better_conditioned_than_gaussian():
    base = SimConfig(layers=30, width=128, batch=8, activation="tanh", init="xavier_normal",
                     bias_init="normal", bias_params={"std": 0.0}, seed=1)
    gaussian, orthogonal = S.isometry_pair(base)
    assert gaussian.init == "variance_scaling" and orthogonal.init == "orthogonal"
    assert orthogonal.init_params["gain"] == pytest.approx(1.0)
    g, o = S.jacobian_spectrum(gaussian), S.jacobian_spectrum(orthogonal)
    assert o.log_spread < g.log_spread / 3  # dynamical isometry (Pennington et al. 2017)
    assert o.histogram(32, log=True).total == 128 and g.histogram(32).total == 128


def test_jacobian_refuses_normalization_and_overflow():
    with pytest.raises(ConfigError, match="norm"):
        S.jacobian(SimConfig(layers=2, width=8, batch=4, norm="batch"))
    with pytest.raises(ConfigError, match="explodes"):
        S.jacobian_spectrum(SimConfig(layers=200, width=8, batch=4, activation="linear", init="normal",
                                      init_params={"std": 100.0}))


@pytest.mark.parametrize("ratio", [0.25, 1.0, 3.0])
def test_marchenko_pastur_cdf_integrates_the_density_plus_the_atom(ratio):
    variance = 0.7
    low, high = S.marchenko_pastur_support(ratio, variance)
    atom = max(0.0, 1 - 1 / ratio)
    total = integrate.quad(lambda x: S.marchenko_pastur_pdf(x, ratio, variance), low, high, limit=200)[0]
    assert total + atom == pytest.approx(1.0, abs=1e-7)
    for x in np.linspace(low, high, 7)[1:-1]:
        part = integrate.quad(lambda t: S.marchenko_pastur_pdf(t, ratio, variance), low, x, limit=200)[0]
        assert float(S.marchenko_pastur_cdf(x, ratio, variance)) == pytest.approx(atom + part, abs=1e-8)
    assert float(S.marchenko_pastur_cdf(-1.0, ratio, variance)) == 0.0
    assert float(S.marchenko_pastur_cdf(high * 2, ratio, variance)) == pytest.approx(1.0)


@pytest.mark.parametrize("fan_in,fan_out", [(1024, 1024), (1024, 512), (512, 1024)])
def test_gaussian_layer_follows_marchenko_pastur_and_orthogonal_does_not(fan_in, fan_out):
    config = SimConfig(layers=1, width=fan_out, input_width=fan_in, batch=1, init="kaiming_normal")
    w = initial_weights(config)[0][0]
    spectrum = S.weight_spectrum(w, variance=2 / fan_in)  # the scheme's own variance
    assert spectrum.eigenvalues.shape == (fan_out,) and spectrum.ratio == fan_out / fan_in
    assert spectrum.ks_distance() < 0.02
    assert spectrum.histogram(50).total == fan_out
    orthogonal = S.weight_spectrum(initial_weights(config.replace(init="orthogonal"))[0][0])
    assert orthogonal.ks_distance() > 0.3
    kept = orthogonal.eigenvalues[max(0, fan_out - fan_in):]
    np.testing.assert_allclose(kept, kept[0], rtol=1e-4)  # collapsed to one point


def test_weight_spectrum_density_is_the_law_on_its_support():
    spectrum = S.weight_spectrum(np.random.default_rng(0).standard_normal((300, 100)))
    low, high = spectrum.support
    assert low == pytest.approx(spectrum.variance * (1 - math.sqrt(1 / 3)) ** 2)
    x = np.linspace(0, 2 * high, 50)
    np.testing.assert_array_equal(spectrum.density(x)[(x < low) | (x > high)], 0.0)


def test_rank_counts_the_singular_values_above_rounding():
    # A ReLU net at one input: each unit that is off takes a rank away, and its singular value
    # comes out at rounding level, not 0; the spread is over the nonzero ones only.
    relu = S.jacobian_spectrum(SimConfig(layers=20, width=64, batch=8))
    assert 0 < relu.rank < 64
    assert np.all(relu.nonzero > relu.zero_tolerance) and relu.nonzero.size == relu.rank
    assert relu.histogram(16, log=True).total == relu.rank
    zero = S.jacobian_spectrum(SimConfig(layers=3, width=16, batch=8, init="zeros"))
    assert zero.rank == 0 and zero.histogram(8, log=True) is None and math.isnan(zero.log_spread)
