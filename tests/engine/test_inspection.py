"""The checkpoint inspector's analysis (issue 14): statistics, kinds, fans, which registered scheme a
tensor follows (checked on tensors drawn by the engine's own samplers), equivalents, flags."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import integrate, stats

from initsim.engine import inspection
from initsim.engine.inspection import (Match, as_matrix, fans, inspect_tensor, scheme_density, statistics,
                                       tensor_kind)
from initsim.engine.schemes import SCHEMES, EntryLaw, get_scheme

DATA_FREE = [name for name, s in SCHEMES.items() if not s.data_dependent]
FAN_BASED = {"xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "variance_scaling",
             "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal",
             "pytorch_linear", "orthogonal", "identity"}
TORCH_SHAPES = [(256, 256), (512, 128), (64, 1024), (64, 32, 3, 3)]  # (out, in, *kernel)


def draw(name: str, fan_in: int, fan_out: int, seed: int = 0, **params) -> np.ndarray:
    """A (fan_in, fan_out) matrix from the engine's own sampler, numpy's layout."""
    return get_scheme(name).sample(fan_in, fan_out, np.random.default_rng(seed), np.float32, params)


def torch_tensor(name: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """The scheme's weight in PyTorch's layout: a Linear's (out, in) is the matrix transposed; a conv
    kernel (out, in, kh, kw) takes as many i.i.d. entries drawn at the conv's fans (PyTorch's
    fan_in = in * kh * kw, fan_out = out * kh * kw, computed here by hand)."""
    if len(shape) == 2:
        return draw(name, shape[1], shape[0], seed).T
    out, inp, kh, kw = shape
    entries = draw(name, inp * kh * kw, out * kh * kw, seed).reshape(-1)
    return entries[:out * inp * kh * kw].reshape(shape)


# --- the laws the schemes declare ---------------------------------------------------------------

@pytest.mark.parametrize("name", list(SCHEMES))
@pytest.mark.parametrize("fan_in, fan_out", [(256, 256), (300, 50), (7, 900)])
def test_every_scheme_declares_its_law_with_its_own_moments_and_bounds(name, fan_in, fan_out):
    scheme = SCHEMES[name]
    params = scheme.params()
    law = scheme.law(fan_in, fan_out, params)
    assert (law is None) == (not scheme.iid)
    if law is None:
        return
    mean, std = scheme.moments(fan_in, fan_out, params)
    assert law.moments() == pytest.approx((mean, std), rel=1e-10, abs=1e-15)
    bounds = scheme.bounds(fan_in, fan_out, params)
    if bounds is None:
        assert (law.low, law.high) == (-math.inf, math.inf)
    else:
        assert (law.low, law.high) == pytest.approx(bounds, rel=1e-12)


@pytest.mark.parametrize("law", [EntryLaw("normal", 0.3, 2.0), EntryLaw.uniform(-0.5, 1.5),
                                 EntryLaw("truncated_normal", 0.0, 1 / 0.8796, -2 / 0.8796, 2 / 0.8796),
                                 EntryLaw("truncated_normal", 0.5, 2.0, -1.0, 3.0)])
def test_a_law_s_cdf_pdf_and_moments_agree_with_scipy(law):
    x = np.linspace(-7, 7, 301)
    if law.kind == "uniform":
        reference = stats.uniform(law.low, law.high - law.low)
    elif law.kind == "normal":
        reference = stats.norm(law.loc, law.scale)
    else:
        reference = stats.truncnorm((law.low - law.loc) / law.scale, (law.high - law.loc) / law.scale,
                                    loc=law.loc, scale=law.scale)
    np.testing.assert_allclose(law.cdf(x), reference.cdf(x), atol=1e-12)
    np.testing.assert_allclose(law.pdf(x), reference.pdf(x), rtol=1e-10, atol=1e-14)
    assert law.moments() == pytest.approx((reference.mean(), reference.std()), rel=1e-9)


def test_same_as_compares_exact_laws_and_reads_a_negligible_cut_as_no_cut():
    assert EntryLaw.uniform(-math.sqrt(6 / 512), math.sqrt(6 / 512)).same_as(
        EntryLaw.uniform(-math.sqrt(3 / 256), math.sqrt(3 / 256)))
    assert not EntryLaw("normal", 0, 1).same_as(EntryLaw("normal", 0, 1 + 1e-6))
    assert EntryLaw("truncated_normal", 0, 0.02, -2, 2).same_as(EntryLaw("normal", 0, 0.02))
    assert not EntryLaw("truncated_normal", 0, 1, -2, 2).same_as(EntryLaw("normal", 0, 1))
    assert not EntryLaw("normal", 0, 1).same_as(EntryLaw.uniform(-math.sqrt(3), math.sqrt(3)))


# --- fans, matrices, kinds -----------------------------------------------------------------------

def test_fans_follow_pytorch_for_torch_layout_and_keras_for_numpy_layout():
    assert fans((3, 5), "torch") == (5, 3)  # Linear(5, 3).weight is (3, 5)
    assert fans((64, 32, 3, 3), "torch") == (32 * 9, 64 * 9)  # Conv2d(32, 64, 3)
    assert fans((8, 4, 5), "torch") == (20, 40)  # Conv1d(4, 8, 5)
    assert fans((5, 3), "numpy") == (5, 3)
    assert fans((3, 3, 32, 64), "numpy") == (32 * 9, 64 * 9)  # Keras Conv2D kernel (kh, kw, in, out)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        fans((7,), "torch")
    with pytest.raises(ValueError, match="layout 'keras' is not one of torch, numpy"):
        fans((3, 5), "keras")


def test_as_matrix_is_the_matrix_of_y_equals_x_at_w():
    rng = np.random.default_rng(0)
    linear = rng.standard_normal((3, 5))  # PyTorch (out, in)
    x = rng.standard_normal((2, 5))
    np.testing.assert_array_equal(x @ as_matrix(linear, "torch"), x @ linear.T)
    np.testing.assert_array_equal(as_matrix(linear.T, "numpy"), linear.T)
    conv = rng.standard_normal((64, 32, 3, 3))
    matrix = as_matrix(conv, "torch")
    assert matrix.shape == (32 * 9, 64)
    assert matrix[5 * 9 + 2 * 3 + 1, 7] == conv[7, 5, 2, 1]  # im2col's row (c, i, j), column o
    keras = rng.standard_normal((3, 3, 32, 64))
    assert as_matrix(keras, "numpy").shape == (9 * 32, 64)
    assert as_matrix(keras, "numpy")[(2 * 3 + 1) * 32 + 5, 7] == keras[2, 1, 5, 7]


@pytest.mark.parametrize("name, shape, kind", [
    ("layers.0.weight", (4, 4), "weight"), ("embed_tokens.weight", (100, 8), "weight"),
    ("conv1.weight", (8, 3, 3, 3), "weight"), ("layers.0.bias", (4,), "bias"),
    ("dense_1/bias:0", (4,), "bias"), ("attn.in_proj_bias", (12,), "bias"), ("bn1.beta", (4,), "bias"),
    ("b2", (4,), "bias"), ("W2", (4, 4), "weight"), ("bn1.num_batches", (4,), "other"),
    ("layers.0.norm.weight", (4,), "norm scale"), ("h.0.ln_1.weight", (4,), "norm scale"),
    ("bn1.weight", (4,), "norm scale"), ("batch_normalization/gamma:0", (4,), "norm scale"),
    ("params/LayerNorm_0/scale", (4,), "norm scale"), ("bn1.running_mean", (4,), "other"),
    ("bn1.running_var", (4,), "other"), ("bn1.num_batches_tracked", (), "other"),
    ("prelu.weight", (4,), "other"), ("layers/dense/vars/1", (4,), "other"), ("scale", (4,), "other"),
])
def test_kinds_are_read_conservatively_from_rank_and_name(name, shape, kind):
    assert tensor_kind(name, shape) == kind


# --- statistics -----------------------------------------------------------------------------------

def test_statistics_of_a_float16_memmap_are_float64_exact_chunk_by_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(inspection, "CHUNK", 1000)  # many blocks, and rows split across blocks
    path = tmp_path / "w.f16"
    values = np.random.default_rng(3).normal(0.25, 2.0, (70, 3001)).astype(np.float16)
    values[3, :17] = 0
    values[5, 9] = np.nan
    values[6, 1] = -np.inf
    stored = np.memmap(path, np.float16, "w+", shape=values.shape)
    stored[:] = values
    stored.flush()
    array = np.memmap(path, np.float16, "r", shape=values.shape)
    found = statistics(array)
    finite = values[np.isfinite(values)].astype(np.float64)
    assert (found.finite, found.nonfinite, found.zeros) == (finite.size, 2, int(np.sum(finite == 0)))
    assert found.mean == pytest.approx(finite.mean(), rel=1e-12)
    assert found.std == pytest.approx(finite.std(), rel=1e-12)
    assert (found.min, found.max) == (finite.min(), finite.max())
    report = inspect_tensor("w", array, "numpy")
    assert report.nonfinite == 2 and report.zero_fraction == pytest.approx(found.zeros / finite.size)
    assert report.dtype == "float16"
    # A transposed (non-contiguous) view gives the same numbers, still piece by piece.
    assert statistics(array.T).std == pytest.approx(found.std, rel=1e-12)


def test_reports_are_deterministic_and_their_json_is_strict(monkeypatch):
    monkeypatch.setattr(inspection, "MAX_SAMPLE", 5000)  # a subsample is drawn
    w = draw("he_uniform", 300, 200)
    first, second = inspect_tensor("w", w, "numpy"), inspect_tensor("w", w.copy(), "numpy")
    assert first == second and first.best.scheme == "he_uniform"
    text = json.dumps(first.to_json(), allow_nan=False)
    assert json.loads(text)["best"]["scheme"] == "he_uniform"
    empty = inspect_tensor("e", np.zeros((0, 4), np.float32), "numpy").to_json()
    json.dumps(empty, allow_nan=False)
    assert empty["mean"] is None and empty["best"] is None and empty["fan_in"] == 0
    keys = {"name", "shape", "dtype", "kind", "fan_in", "fan_out", "mean", "std", "min", "max", "nonfinite",
            "zero_fraction", "best", "equivalent", "mp_ks", "flags"}
    assert set(first.to_json()) == keys and set(first.to_json()["best"]) == {"scheme", "params", "std", "ks"}


def test_bad_input_is_one_clear_error():
    with pytest.raises(ValueError, match="layout 'keras'"):
        inspect_tensor("w", np.zeros((2, 2)), "keras")
    with pytest.raises(ValueError, match="tensor w: dtype complex128 is not real numbers"):
        inspect_tensor("w", np.zeros((2, 2), complex), "torch")


# --- matching the registry ----------------------------------------------------------------------

CASES = [(name, shape) for shape in TORCH_SHAPES for name in DATA_FREE
         # identity, sparse and orthogonal are matched on 2-D weights (their tests are structural)
         if len(shape) == 2 or SCHEMES[name].iid]


@pytest.mark.parametrize("name, shape", CASES, ids=[f"{n}-{'x'.join(map(str, s))}" for n, s in CASES])
def test_every_scheme_is_named_at_its_own_fans(name, shape):
    report = inspect_tensor("layer.weight", torch_tensor(name, shape), "torch")
    assert (report.fan_in, report.fan_out) == fans(shape, "torch")
    best = report.best
    assert best is not None
    assert name == best.scheme or name in report.equivalent, (best, report.equivalent)
    scheme = SCHEMES[name]
    if best.scheme == name:
        expected = scheme.params()
        assert best.params.keys() == expected.keys()
        for key, value in expected.items():
            assert best.params[key] == (pytest.approx(value, rel=0.01) if isinstance(value, float) else value)
        assert best.std == pytest.approx(scheme.std(report.fan_in, report.fan_out), rel=0.01)
    if name in FAN_BASED:
        assert report.flags == ()
    else:  # the generic schemes' fixed numbers may be a finding at these fans; nothing else is
        assert all(flag.startswith(("std ", "all zeros", "every entry is")) for flag in report.flags)


@pytest.mark.parametrize("shape", [(256, 256), (64, 1024)])
def test_keras_truncated_and_pytorch_untruncated_normals_are_told_apart(shape):
    keras = inspect_tensor("w", torch_tensor("he_normal", shape), "torch")
    torch = inspect_tensor("w", torch_tensor("kaiming_normal", shape), "torch")
    assert keras.best.scheme == "he_normal" and "kaiming_normal" not in keras.equivalent
    assert torch.best.scheme == "kaiming_normal" and "he_normal" not in torch.equivalent
    glorot = inspect_tensor("w", torch_tensor("glorot_normal", shape), "torch")
    assert glorot.best.scheme == "glorot_normal" and "xavier_normal" not in glorot.equivalent


def test_equivalents_come_from_the_exact_laws_at_these_fans():
    square = inspect_tensor("w", draw("xavier_uniform", 256, 256), "numpy")
    names = {square.best.scheme, *square.equivalent}
    assert {"xavier_uniform", "glorot_uniform", "lecun_uniform", "uniform"} <= names
    assert "he_uniform" not in names and "pytorch_linear" not in names
    wide = inspect_tensor("w", draw("xavier_uniform", 512, 128), "numpy")
    names = {wide.best.scheme, *wide.equivalent}
    assert {"xavier_uniform", "glorot_uniform"} <= names and "lecun_uniform" not in names
    linear = inspect_tensor("w", draw("kaiming_uniform", 256, 128, negative_slope=math.sqrt(5)), "numpy")
    assert linear.best.scheme == "pytorch_linear" and "kaiming_uniform" in linear.equivalent
    normal = inspect_tensor("w", draw("xavier_normal", 256, 256), "numpy")
    assert {"normal", "kaiming_normal"} <= set(normal.equivalent) and "lecun_normal" not in normal.equivalent


def test_standard_parameter_values_are_named_before_generic_fits():
    tanh = inspect_tensor("w", draw("kaiming_normal", 512, 128, nonlinearity="tanh"), "numpy")
    assert tanh.best == Match("kaiming_normal", {"negative_slope": 0.0, "mode": "fan_in", "nonlinearity": "tanh"},
                              pytest.approx(5 / 3 / math.sqrt(512)), tanh.best.ks)
    gain = inspect_tensor("w", draw("xavier_normal", 512, 128, gain=5 / 3), "numpy")
    assert gain.best.scheme == "xavier_normal" and gain.best.params == {"gain": 5 / 3}
    fan_out = inspect_tensor("w", draw("kaiming_uniform", 256, 128, mode="fan_out"), "numpy")
    assert fan_out.best.params["mode"] == "fan_out" and fan_out.best.params["negative_slope"] == 0.0
    # Keras's TruncatedNormal(stddev) at no standard scale: variance_scaling with its scale fitted.
    keras = inspect_tensor("w", draw("variance_scaling", 256, 256, scale=0.37), "numpy")
    assert keras.best.scheme == "variance_scaling"
    assert keras.best.params["scale"] == pytest.approx(0.37, rel=0.01)
    assert keras.best.params["distribution"] == "truncated_normal"
    # GPT-2's normal(0.02) is, at PyTorch's absolute bounds, trunc_normal_(std=0.02) too.
    gpt = inspect_tensor("w", draw("normal", 256, 256, std=0.02, mean=0.5), "numpy")
    assert gpt.best == Match("normal", {"mean": 0.5, "std": 0.02}, 0.02, gpt.best.ks)


def test_a_std_off_by_a_tenth_is_not_the_named_scheme():
    w = draw("he_normal", 256, 256) * np.float32(1.1)
    report = inspect_tensor("w", w, "numpy")
    assert report.best.scheme == "variance_scaling"  # the fitted scale: 2 * 1.21
    assert report.best.params["scale"] == pytest.approx(2.42, rel=0.01)
    assert "he_normal" not in report.equivalent


def test_structural_matches_fit_their_parameters():
    ortho = inspect_tensor("w", draw("orthogonal", 128, 64, gain=math.sqrt(2)), "numpy")
    assert ortho.best.scheme == "orthogonal" and ortho.best.params == {"gain": math.sqrt(2)}
    eye = inspect_tensor("w", draw("identity", 96, 64, gain=5 / 3).T, "torch")
    assert eye.best.scheme == "identity" and eye.best.params == {"gain": 5 / 3}
    sparse = inspect_tensor("w", draw("sparse", 200, 300, sparsity=0.25, std=0.05), "numpy")
    assert sparse.best.scheme == "sparse"
    assert sparse.best.params["sparsity"] == 0.25 and sparse.best.params["std"] == pytest.approx(0.05, rel=0.01)


def test_biases_and_norm_scales_report_constants_without_flags():
    zero = inspect_tensor("fc.bias", np.zeros(64, np.float32), "torch")
    assert zero.kind == "bias" and zero.best == Match("zeros", {}, 0.0, 0.0) and zero.flags == ()
    assert zero.fan_in is None and zero.mp_ks is None
    ones = inspect_tensor("ln_f.weight", np.ones(64, np.float32), "torch")
    assert ones.kind == "norm scale" and ones.best == Match("constant", {"value": 1.0}, 0.0, 0.0)
    assert ones.flags == ()
    tenth = inspect_tensor("fc.bias", np.full(64, 0.1, np.float32), "torch")
    assert tenth.best.params == {"value": 0.1}
    default_bias = np.random.default_rng(0).uniform(-1 / 16, 1 / 16, 4096)
    drawn = inspect_tensor("fc.bias", default_bias, "torch")
    assert drawn.best.scheme == "uniform" and drawn.best.params["limit"] == pytest.approx(1 / 16, rel=0.03)
    assert inspect_tensor("fc.bias", default_bias[:20], "torch").best is None  # too few to tell


# --- flags ------------------------------------------------------------------------------------------

def test_all_zeros_and_constant_weights_are_flagged():
    zeros = inspect_tensor("w", np.zeros((16, 8), np.float32), "numpy")
    assert zeros.best.scheme == "zeros" and len(zeros.flags) == 1 and zeros.flags[0].startswith("all zeros")
    constant = inspect_tensor("w", np.full((16, 8), 0.5, np.float32), "numpy")
    assert constant.flags == ("every entry is 0.5: all units compute the same output and get the same "
                              "gradient, so they stay identical (symmetry is never broken)",)


def test_non_finite_values_are_counted_and_flagged():
    w = draw("he_normal", 256, 256)
    w[3, 4], w[0, 0], w[9, 9] = np.nan, np.inf, -np.inf
    report = inspect_tensor("w", w, "numpy")
    assert report.nonfinite == 3 and report.flags[0].startswith("3 non-finite values")
    assert report.best.scheme == "he_normal" and report.mp_ks is None  # no spectrum of a non-finite matrix
    bias = inspect_tensor("b.bias", np.array([0.0, np.nan] * 20), "torch")
    assert bias.flags == ("20 non-finite values (NaN or inf): one reaches every later activation and gradient",)


def test_a_std_far_from_he_and_lecun_is_flagged_with_what_it_does_to_a_signal():
    small = inspect_tensor("w", draw("normal", 256, 512, std=0.01), "numpy")
    he, lecun = math.sqrt(2 / 256), 1 / 16
    assert len(small.flags) == 1
    flag = small.flags[0]
    assert f"is {small.std / he:.2g}x the He std" in flag and "for fan_in 256" in flag
    assert f"({small.std / lecun:.2g}x the LeCun std" in flag and "vanishes" in flag
    assert f"about {he / small.std:.2g}x smaller per layer with ReLU" in flag
    large = inspect_tensor("w", draw("normal", 256, 512, std=1.0), "numpy")
    assert "explodes" in large.flags[0] and f"about {large.std / he:.2g}x larger" in large.flags[0]
    # Just inside the thresholds: a third of LeCun's and three times He's are no finding.
    edge_low = inspect_tensor("w", draw("normal", 256, 256, std=1.05 * lecun / 3), "numpy")
    edge_high = inspect_tensor("w", draw("normal", 256, 256, std=0.95 * 3 * he), "numpy")
    assert edge_low.flags == () and edge_high.flags == ()
    # Xavier at very unequal fans is far below LeCun's std, yet the standard scheme: no flag.
    xavier = inspect_tensor("w", draw("xavier_uniform", 16, 4096), "numpy")
    assert xavier.std < (1 / math.sqrt(16)) / 3 and xavier.flags == ()


def test_a_name_that_says_normal_on_uniform_values_is_flagged_and_the_reverse():
    uniform = inspect_tensor("normal_init.weight", draw("glorot_uniform", 128, 128).T, "torch")
    assert uniform.flags == ("the name says normal, but the values are uniform",)
    normal = inspect_tensor("uniform_layer", draw("kaiming_normal", 128, 128), "numpy")
    assert normal.flags == ("the name says uniform, but the values are normal",)
    assert inspect_tensor("uniform_layer", draw("he_uniform", 128, 128), "numpy").flags == ()


def test_rows_not_orthogonal_are_flagged_when_the_name_says_orthogonal():
    gaussian = inspect_tensor("rnn.weight_hh_orthogonal", draw("xavier_normal", 128, 64), "numpy")
    assert len(gaussian.flags) == 1 and gaussian.flags[0].startswith("the name says orthogonal, but the rows")
    truly = inspect_tensor("rnn.weight_hh_ortho", draw("orthogonal", 128, 64, gain=2.0), "numpy")
    assert truly.flags == () and truly.best.scheme == "orthogonal"


# --- spectrum and density -----------------------------------------------------------------------

def test_marchenko_pastur_distance_separates_gaussian_from_orthogonal_and_is_capped(monkeypatch):
    gaussian = inspect_tensor("w", draw("kaiming_normal", 512, 256), "numpy")
    ortho = inspect_tensor("w", draw("orthogonal", 512, 256), "numpy")
    assert gaussian.mp_ks < 0.05 and ortho.mp_ks > 0.5
    monkeypatch.setattr(inspection, "MAX_SPECTRUM_SIDE", 128)
    assert inspect_tensor("w", draw("kaiming_normal", 512, 256), "numpy").mp_ks is None
    assert inspect_tensor("w", np.zeros((8, 8)), "numpy").mp_ks is None


@pytest.mark.parametrize("name, fan_in, fan_out, params", [
    ("he_normal", 256, 128, {}), ("kaiming_normal", 256, 128, {}), ("xavier_uniform", 256, 128, {}),
    ("trunc_normal", 1, 1, {"std": 1.0}), ("orthogonal", 128, 64, {"gain": 2.0}),
    ("sparse", 128, 64, {"sparsity": 0.25, "std": 0.05})])
def test_scheme_density_is_the_exact_density_of_one_entry(name, fan_in, fan_out, params):
    scheme = SCHEMES[name]
    match = Match(name, scheme.params(params), scheme.std(fan_in, fan_out, params), 0.0)
    mean, std = scheme.moments(fan_in, fan_out, scheme.params(params))
    span = 12 * std
    x = np.linspace(-span, span, 400_001)
    density = scheme_density(match, fan_in, fan_out, x)
    kept = 1 - math.ceil(0.25 * fan_out) / fan_out if name == "sparse" else 1.0  # sparse: no atom at 0
    assert integrate.trapezoid(density, x) == pytest.approx(kept, rel=1e-4)
    assert integrate.trapezoid(x * x * density, x) == pytest.approx(std * std + mean * mean, rel=1e-3)
    if scheme.iid:
        law = scheme.law(fan_in, fan_out, scheme.params(params))
        np.testing.assert_allclose(density, law.pdf(x))
    assert np.all(scheme_density(Match("identity", {"gain": 1.0}, 0.0, 0.0), 4, 4, x) == 0)


def test_an_embedding_table_is_matched_but_its_std_is_no_signal_finding():
    table = np.random.default_rng(0).standard_normal((1000, 64)).astype(np.float32)  # nn.Embedding's N(0, 1)
    embedding = inspect_tensor("model.embed_tokens.weight", table, "torch")
    assert embedding.kind == "weight" and embedding.best.scheme == "normal" and embedding.flags == ()
    assert inspect_tensor("model.layers.0.mlp.weight", table, "torch").flags[0].startswith("std 1 is")


ODD = {
    "far mean": np.random.default_rng(1).normal(5, 0.1, (64, 64)),
    "float64 near its limit": np.random.default_rng(1).normal(0, 1e200, (64, 64)),
    "subnormal float32": np.random.default_rng(1).normal(0, 1e-41, (64, 64)).astype(np.float32),
    "int8": np.random.default_rng(1).integers(-128, 127, (64, 64), dtype=np.int8),
    "bool": np.random.default_rng(1).random((64, 64)) > 0.5,
    "one entry": np.array([[3.0]]), "a row": np.random.default_rng(1).normal(0, 1, (1, 500)),
    "rank 5": np.random.default_rng(1).normal(0, 0.1, (2, 3, 4, 5, 6)),
    "all nan": np.full((8, 8), np.nan), "a scalar": np.float32(2.5),
    "cauchy": np.random.default_rng(1).standard_cauchy((128, 128)),
}


@pytest.mark.parametrize("name", list(ODD))
@pytest.mark.parametrize("layout", ["torch", "numpy"])
def test_odd_tensors_get_a_report_never_a_crash_or_a_warning(name, layout):
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # what numpy would print
        report = inspect_tensor(name, ODD[name], layout)
    json.dumps(report.to_json(), allow_nan=False)
    finite = np.asarray(ODD[name], np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size:
        scale = np.max(np.abs(finite)) or 1.0  # 1e200's square overflows
        assert report.std == pytest.approx((finite / scale).std() * scale, rel=1e-9)
