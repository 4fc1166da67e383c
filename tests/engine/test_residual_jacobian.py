"""The input-output Jacobian of residual blocks (issue 13) against finite differences of a forward
pass written here from the README's definition, in float64; the identity where every block starts
as one (alpha = 0, Fixup); batch norm refused."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initsim.engine import ConfigError, SimConfig, initial_blocks
from initsim.engine.network import NORM_EPS
from initsim.engine.spectra import jacobian, jacobian_spectrum

TINY = SimConfig(layers=3, width=6, batch=4, activation="tanh", init="xavier_normal", bias_init="normal",
                 residual="pre", branch_scale="0.7", expansion=2, seed=5)


def norm(x: np.ndarray, kind: str) -> np.ndarray:
    if kind == "none":
        return x
    centred = x - x.mean() if kind == "layer" else x
    return centred / math.sqrt(np.mean(centred**2) + NORM_EPS)


def output(config: SimConfig, x: np.ndarray) -> np.ndarray:
    """x_L from the definition: pre x + a F(norm(x)), post norm(x + a F(x)), F(u) = tanh(u W1 + b1) W2 + b2."""
    weights = initial_blocks(config)
    if weights.projection is not None:
        p, b = weights.projection
        x = x @ p.astype(np.float64) + b
    for block in weights.blocks:
        w1, b1, w2, b2 = (a.astype(np.float64) for a in (block.w1, block.b1, block.w2, block.b2))
        branch = (lambda u: np.tanh(u @ w1 + b1) @ w2 + b2)
        if config.residual == "pre":
            x = x + config.branch_alpha * branch(norm(x, config.norm))
        else:
            x = norm(x + config.branch_alpha * branch(x), config.norm)
    return x


@pytest.mark.parametrize("form", ["pre", "post"])
@pytest.mark.parametrize("kind", ["none", "layer", "rms"])
@pytest.mark.parametrize("input_width", [None, 4])
def test_the_jacobian_is_the_derivative_of_the_blocks(form, kind, input_width):
    config = TINY.replace(residual=form, norm=kind, input_width=input_width).validated()
    rng = np.random.default_rng(config.seed)
    x = rng.standard_normal(config.fan_in_first)  # the input `jacobian` draws
    eps = 1e-6
    numeric = np.empty((config.fan_in_first, config.width))
    for i in range(config.fan_in_first):
        step = np.zeros_like(x)
        step[i] = eps
        numeric[i] = (output(config, x + step) - output(config, x - step)) / (2 * eps)
    np.testing.assert_allclose(jacobian(config), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("changes", [{"branch_scale": "0", "norm": "layer"}, {"fixup": True}])
def test_blocks_that_start_as_the_identity_have_every_singular_value_1(changes):
    config = TINY.replace(width=32, layers=20, **changes).validated()
    spectrum = jacobian_spectrum(config)
    np.testing.assert_allclose(spectrum.singular_values, 1, rtol=1e-12)
    assert spectrum.mean_square_theory is None  # no mean-field s^2 for blocks


def test_batch_norm_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="batch norm couples the samples"):
        jacobian_spectrum(TINY.replace(norm="batch"))
