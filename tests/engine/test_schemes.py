"""Every scheme against its formula, and the framework semantics that differ between them."""

import math

import numpy as np
import pytest
from scipy import stats

from initsim.engine import SCHEMES, ConfigError, calculate_gain, get_scheme
from initsim.engine.schemes import BIAS_INITS, KERAS_TRUNCATION_STD

SHAPES = [(256, 256), (512, 128), (100, 700)]


def sample(name, fan_in, fan_out, seed=0, **params):
    return get_scheme(name).sample(fan_in, fan_out, np.random.default_rng(seed), np.float64, params)


@pytest.mark.parametrize("name", sorted(SCHEMES))
@pytest.mark.parametrize("fan_in,fan_out", SHAPES)
def test_moments_and_bounds_match_the_formula(name, fan_in, fan_out):
    scheme = SCHEMES[name]
    w = sample(name, fan_in, fan_out)
    assert w.shape == (fan_in, fan_out)
    assert w.dtype == np.float64
    mean, std = scheme.moments(fan_in, fan_out, scheme.params())
    n = w.size
    # Sampling error of the std of n values is about std / sqrt(2n); allow 6 of them.
    assert w.std() == pytest.approx(std, rel=6 / math.sqrt(2 * n), abs=1e-12)
    assert w.mean() == pytest.approx(mean, abs=6 * std / math.sqrt(n) + 1e-12)
    bounds = scheme.bounds(fan_in, fan_out, scheme.params())
    if bounds is not None:
        low, high = bounds
        assert w.min() >= low - 1e-12 and w.max() <= high + 1e-12


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_float32_sampling_keeps_the_dtype(name):
    w = get_scheme(name).sample(64, 32, np.random.default_rng(1), np.float32)
    assert w.dtype == np.float32 and w.shape == (64, 32) and w.flags.c_contiguous


@pytest.mark.parametrize("fan_in,fan_out", SHAPES)
def test_exact_formulas(fan_in, fan_out):
    fa = (fan_in + fan_out) / 2
    expect = {
        "xavier_uniform": math.sqrt(2 / (fan_in + fan_out)),
        "xavier_normal": math.sqrt(2 / (fan_in + fan_out)),
        "kaiming_uniform": math.sqrt(2 / fan_in),
        "kaiming_normal": math.sqrt(2 / fan_in),
        "glorot_uniform": math.sqrt(1 / fa), "glorot_normal": math.sqrt(1 / fa),
        "he_uniform": math.sqrt(2 / fan_in), "he_normal": math.sqrt(2 / fan_in),
        "lecun_uniform": math.sqrt(1 / fan_in), "lecun_normal": math.sqrt(1 / fan_in),
        "pytorch_linear": 1 / math.sqrt(3 * fan_in),
    }
    for name, std in expect.items():
        assert get_scheme(name).std(fan_in, fan_out) == pytest.approx(std, rel=1e-12), name


def test_pytorch_normals_are_untruncated_and_keras_normals_truncated():
    fan = 400
    torch_w = sample("kaiming_normal", fan, fan, nonlinearity="relu")
    keras_w = sample("he_normal", fan, fan)
    nominal = math.sqrt(2 / fan)
    # Same std, different shape: Keras cuts at 2 s with s = nominal / 0.8796.
    assert torch_w.std() == pytest.approx(nominal, rel=0.01)
    assert keras_w.std() == pytest.approx(nominal, rel=0.01)
    cut = 2 * nominal / KERAS_TRUNCATION_STD
    assert np.abs(keras_w).max() < cut
    assert np.mean(np.abs(torch_w) > cut) == pytest.approx(2 * stats.norm.sf(2 / KERAS_TRUNCATION_STD), abs=0.002)
    # Kolmogorov-Smirnov against the exact distributions.
    assert stats.kstest(torch_w.ravel() / nominal, "norm").pvalue > 1e-3
    truncated = stats.truncnorm(-2, 2, scale=nominal / KERAS_TRUNCATION_STD)
    assert stats.kstest(keras_w.ravel(), truncated.cdf).pvalue > 1e-3
    assert SCHEMES["he_normal"].truncated and not SCHEMES["kaiming_normal"].truncated
    assert "truncated" in SCHEMES["he_normal"].label and "untruncated" in SCHEMES["kaiming_normal"].label


def test_keras_truncation_constant_is_the_std_of_the_cut_normal():
    assert stats.truncnorm(-2, 2).std() == pytest.approx(KERAS_TRUNCATION_STD, rel=1e-12)


def test_trunc_normal_bounds_are_absolute():
    w = sample("trunc_normal", 300, 300, std=0.02)  # bounds -2, 2 are 100 std away: no truncation
    assert w.std() == pytest.approx(0.02, rel=0.01)
    w = sample("trunc_normal", 300, 300, std=1.0, low=-1.0, high=0.5)
    assert w.min() >= -1.0 and w.max() <= 0.5
    expected = stats.truncnorm(-1.0, 0.5)
    assert stats.kstest(w.ravel(), expected.cdf).pvalue > 1e-3
    with pytest.raises(ConfigError, match="low"):
        get_scheme("trunc_normal").params({"low": 1.0, "high": 0.0})


@pytest.mark.parametrize("fan_in,fan_out", [(64, 64), (128, 32), (32, 128)])
@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_orthogonal(fan_in, fan_out, gain):
    w = sample("orthogonal", fan_in, fan_out, gain=gain)
    # PyTorch's (out, in) weight has orthonormal rows when out <= in: our columns, and vice versa.
    gram = w.T @ w if fan_in >= fan_out else w @ w.T
    np.testing.assert_allclose(gram, gain**2 * np.eye(min(fan_in, fan_out)), atol=1e-10)


def test_orthogonal_sign_fix_makes_it_haar_distributed():
    # Without Q *= sign(diag(R)) the diagonal of Q is biased positive; with it its mean is 0.
    diagonals = np.array([np.diag(sample("orthogonal", 32, 32, seed=s)) for s in range(200)])
    assert abs(diagonals.mean()) < 4 * diagonals.std() / math.sqrt(diagonals.size)


def test_sparse_zeros_per_input_unit():
    w = sample("sparse", 50, 40, sparsity=0.25, std=0.01)
    zeros_per_row = (w == 0).sum(axis=1)
    assert np.all(zeros_per_row == math.ceil(0.25 * 40))


def test_identity_and_constants():
    np.testing.assert_array_equal(sample("identity", 4, 6), np.eye(4, 6))
    np.testing.assert_array_equal(sample("identity", 3, 3, gain=2.0), 2 * np.eye(3))
    assert np.all(sample("zeros", 5, 5) == 0)
    assert np.all(sample("constant", 5, 5, value=0.3) == 0.3)


def test_variance_scaling_is_keras_general_form():
    for dist in ("truncated_normal", "untruncated_normal", "uniform"):
        for mode, n in (("fan_in", 300), ("fan_out", 200), ("fan_avg", 250)):
            std = get_scheme("variance_scaling").std(300, 200, {"scale": 3.0, "mode": mode,
                                                               "distribution": dist})
            assert std == pytest.approx(math.sqrt(3.0 / n))
    w = sample("variance_scaling", 300, 200, scale=2.0, mode="fan_in", distribution="uniform")
    assert np.abs(w).max() <= math.sqrt(3 * 2.0 / 300)


@pytest.mark.parametrize("name", ["he_uniform", "he_normal", "glorot_uniform", "glorot_normal",
                                  "lecun_uniform", "lecun_normal"])
def test_keras_presets_equal_variance_scaling(name):
    scale, mode = {"he": (2.0, "fan_in"), "glorot": (1.0, "fan_avg"), "lecun": (1.0, "fan_in")}[name.split("_")[0]]
    dist = "uniform" if name.endswith("uniform") else "truncated_normal"
    a = sample(name, 120, 80, seed=3)
    b = sample("variance_scaling", 120, 80, seed=3, scale=scale, mode=mode, distribution=dist)
    np.testing.assert_array_equal(a, b)


def test_kaiming_parameters_follow_pytorch():
    scheme = get_scheme("kaiming_normal")
    assert scheme.std(100, 50) == pytest.approx(math.sqrt(2) / 10)  # a=0, leaky_relu, fan_in
    assert scheme.std(100, 50, {"mode": "fan_out"}) == pytest.approx(math.sqrt(2 / 50))
    assert scheme.std(100, 50, {"nonlinearity": "tanh"}) == pytest.approx(5 / 3 / 10)
    assert scheme.std(100, 50, {"negative_slope": math.sqrt(5)}) == pytest.approx(1 / math.sqrt(3) / 10)
    # nn.Linear's default is kaiming_uniform with a = sqrt(5): U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    assert get_scheme("kaiming_uniform").bounds(100, 50, get_scheme("kaiming_uniform").params(
        {"negative_slope": math.sqrt(5)}))[1] == pytest.approx(get_scheme("pytorch_linear").bounds(100, 50, {})[1])
    with pytest.raises(ConfigError, match="fan_avg"):
        scheme.params({"mode": "fan_avg"})


def test_gain_table_is_pytorchs():
    assert calculate_gain("linear") == 1 and calculate_gain("conv2d") == 1
    assert calculate_gain("conv_transpose3d") == 1 and calculate_gain("sigmoid") == 1
    assert calculate_gain("tanh") == 5 / 3
    assert calculate_gain("relu") == math.sqrt(2)
    assert calculate_gain("leaky_relu") == pytest.approx(1.41414, abs=1e-5)  # slope 0.01
    assert calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    assert calculate_gain("leaky_relu", 0) == math.sqrt(2)
    assert calculate_gain("selu") == 3 / 4
    with pytest.raises(ValueError):
        calculate_gain("gelu")
    with pytest.raises(ValueError):
        calculate_gain("leaky_relu", True)


def test_unknown_names_and_parameters_give_clear_errors():
    with pytest.raises(ConfigError, match="did you mean 'he_normal'"):
        get_scheme("he_nrmal")
    with pytest.raises(ConfigError, match="gain.*it takes"):
        get_scheme("he_normal").params({"gain": 2.0})
    with pytest.raises(ConfigError, match="std"):
        get_scheme("normal").params({"std": -1.0})
    assert get_scheme("Xavier").name == "xavier_normal"  # alias, case-insensitive


def test_every_scheme_documents_its_frameworks():
    for scheme in SCHEMES.values():
        assert scheme.formula and scheme.description and scheme.pytorch and scheme.keras
        assert scheme.family in ("PyTorch", "Keras", "generic")


@pytest.mark.parametrize("name", sorted(BIAS_INITS))
def test_bias_inits(name):
    init = BIAS_INITS[name]
    b = init.sample(400, 3000, np.random.default_rng(0), np.float64)
    assert b.shape == (3000,)
    mean, std = init.moments(400, init.params())
    assert b.std() == pytest.approx(std, rel=0.1, abs=1e-12)
    assert b.mean() == pytest.approx(mean, abs=0.1 * std + 1e-12)
    if name == "pytorch_linear":
        assert np.abs(b).max() <= 1 / 20


@pytest.mark.parametrize("name", ["glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
                                  "lecun_uniform", "lecun_normal", "xavier_uniform", "kaiming_uniform"])
def test_the_formula_text_gives_the_std(name):
    # The formula shown in menus and docs, evaluated, is the scheme's std (uniform: a / sqrt(3)).
    scheme = SCHEMES[name]
    fan_in, fan_out = 300, 100
    text = scheme.formula
    expression = (text.split("(std = ")[1][:-1] if "std = " in text
                  else text.split(", ", 1)[1].split(" = ", 1)[1].split(", gain")[0])
    value = eval(expression, {"sqrt": math.sqrt, "fan_in": fan_in, "fan_out": fan_out, "gain": 1.0,
                              "fan": fan_in})
    if "U(" in text:
        value /= math.sqrt(3)
    params = {"nonlinearity": "relu"} if name == "kaiming_uniform" else {}
    expected = scheme.std(fan_in, fan_out, params) / (math.sqrt(2) if name == "kaiming_uniform" else 1)
    assert value == pytest.approx(expected, rel=1e-12)
