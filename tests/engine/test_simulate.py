"""The simulation against a plain numpy reference, the classic lessons, theory, and edge cases."""

import math

import numpy as np
import pytest

from initsim.engine import (ACTIVATIONS, BackwardEvent, ConfigError, ForwardEvent, SimConfig,
                            get_activation, initial_weights, simulate, simulate_stream)
from initsim.engine.presets import presets


def reference_run(config: SimConfig):
    """The documented network, written plainly in float64 from the documented seeding."""
    c = config.validated()
    act = get_activation(c.activation)
    p = c.activation_params
    seeds = np.random.SeedSequence(c.seed).spawn(c.layers + 2)
    x = np.random.default_rng(seeds[0]).standard_normal((c.batch, c.fan_in_first))
    x = x.astype(np.float32).astype(np.float64)
    inputs, pres = [], []
    for w, b in initial_weights(c):
        inputs.append(x)
        u = x @ w.astype(np.float64) + b
        if c.norm != "none":
            axis = 0 if c.norm == "batch" else 1
            u = (u - u.mean(axis=axis, keepdims=True)) / np.sqrt(u.var(axis=axis, keepdims=True) + 1e-5)
        pres.append(u)
        x = act.apply(u, p)
    grad = np.random.default_rng(seeds[-1]).standard_normal((c.batch, c.width))
    grad = grad.astype(np.float32).astype(np.float64)
    grads = {}
    for layer in range(c.layers, 0, -1):
        u = pres[layer - 1]
        grad = grad * act.derivative(u.copy(), p)
        if c.norm != "none":
            axis = 0 if c.norm == "batch" else 1
            var = u  # u is already normalized: dh = (g - mean(g) - u mean(g u)) / std(h)
            raw = inputs[layer - 1] @ initial_weights(c)[layer - 1][0].astype(np.float64)
            raw = raw + initial_weights(c)[layer - 1][1]
            inv_std = 1 / np.sqrt(raw.var(axis=axis, keepdims=True) + 1e-5)
            grad = (grad - grad.mean(axis=axis, keepdims=True)
                    - var * (grad * var).mean(axis=axis, keepdims=True)) * inv_std
        grads[layer] = grad
        grad = grad @ initial_weights(c)[layer - 1][0].astype(np.float64).T
    return pres, grads


@pytest.mark.parametrize("activation,init,norm", [
    ("relu", "kaiming_normal", "none"), ("tanh", "xavier_uniform", "none"),
    ("gelu", "he_normal", "none"), ("sigmoid", "orthogonal", "none"),
    ("selu", "lecun_normal", "batch"), ("silu", "kaiming_uniform", "layer"),
])
def test_matches_a_plain_numpy_reference(activation, init, norm):
    config = SimConfig(layers=4, width=48, batch=40, input_width=24, activation=activation, init=init,
                       norm=norm, bias_init="normal", seed=7)
    result = simulate(config)
    pres, grads = reference_run(config)
    for event, u in zip(result.forward, pres):
        assert event.pre.mean == pytest.approx(u.mean(), abs=1e-5 * u.std())
        assert event.pre.std == pytest.approx(u.std(), rel=1e-5)
        assert event.pre.min == pytest.approx(u.min(), rel=1e-5, abs=1e-6)
        y = get_activation(activation).apply(u)
        assert event.post.std == pytest.approx(y.std(), rel=1e-5)
        assert event.post.max == pytest.approx(y.max(), rel=1e-5, abs=1e-6)
    for event in result.backward:
        assert event.grad.std == pytest.approx(grads[event.index].std(), rel=1e-4)


def test_float64_on_request_matches_float32_closely():
    a = simulate(SimConfig(layers=5, width=64, batch=64, activation="tanh", init="xavier_normal"))
    b = simulate(SimConfig(layers=5, width=64, batch=64, activation="tanh", init="xavier_normal",
                           dtype="float64"))
    for fa, fb in zip(a.forward, b.forward):
        assert fa.post.std == pytest.approx(fb.post.std, rel=1e-5)


def test_stream_order_progress_and_early_stop():
    config = SimConfig(layers=6, width=32, batch=16)
    events = list(simulate_stream(config))
    assert [type(e) for e in events] == [ForwardEvent] * 6 + [BackwardEvent] * 6
    assert [e.index for e in events] == [1, 2, 3, 4, 5, 6, 6, 5, 4, 3, 2, 1]
    assert [e.step for e in events] == list(range(1, 13))
    stream = simulate_stream(config)
    assert next(stream).index == 1
    stream.close()  # stopping iteration is the way to stop a run
    calls = []
    stopped = list(simulate_stream(config, should_stop=lambda: len(calls.append(1) or calls) > 3))
    assert len(stopped) == 3


def test_initial_weights_are_the_simulated_ones():
    config = SimConfig(layers=3, width=40, batch=8, init="glorot_uniform", seed=11)
    result = simulate(config)
    weights = initial_weights(config)
    assert [w.shape for w, _ in weights] == [(40, 40)] * 3
    for event, (w, _) in zip(result.forward, weights):
        assert event.weight_std == pytest.approx(float(w.std()), rel=1e-6)
    again = initial_weights(config)
    for (w1, b1), (w2, b2) in zip(weights, again):
        np.testing.assert_array_equal(w1, w2)
    # The weights depend on the seed and the layer only, not on the batch.
    for (w1, _), (w2, _) in zip(weights, initial_weights(config.replace(batch=99))):
        np.testing.assert_array_equal(w1, w2)


def test_lsuv_makes_every_layer_output_variance_one():
    config = SimConfig(layers=8, width=128, batch=256, activation="tanh", init="lsuv")
    result = simulate(config)
    for event in result.forward:
        assert abs(event.pre.std**2 - 1) < 0.1
    # The exported weights reproduce the same rescaling.
    for event, (w, _) in zip(result.forward, initial_weights(config)):
        assert event.weight_std == pytest.approx(float(w.std()), rel=1e-6)


# --- the classic lessons (REFERENCE.md) ------------------------------------------------------

def test_all_zeros_gives_exact_zeros_and_identical_units():
    result = simulate(SimConfig(layers=5, width=32, batch=16, init="zeros"))
    for event in result.forward:
        assert event.pre.min == event.pre.max == 0 and event.post.min == event.post.max == 0
    # Constant weights: every unit of a layer computes the same function of the input.
    config = SimConfig(layers=3, width=16, batch=8, activation="tanh", init="constant")
    pres, grads = reference_run(config)
    for u in pres:
        np.testing.assert_allclose(u, np.repeat(u[:, :1], 16, axis=1), rtol=1e-6)
    # Below the output (where the injected gradient differs per unit), their gradients are equal
    # too: every weight of a layer gets the same update, so the symmetry is never broken.
    for layer in range(1, config.layers):
        g = grads[layer]
        np.testing.assert_allclose(g, np.repeat(g[:, :1], 16, axis=1), rtol=1e-6)


@pytest.mark.parametrize("width", [4, 16, 64])
def test_too_small_vanishes(width):
    result = simulate(SimConfig(layers=10, width=width, batch=256, init="normal",
                                init_params={"std": 0.01}))
    stds = [e.post.std for e in result.forward]
    assert stds[4] < 1e-2 * stds[0] and stds[-1] < 1e-8


def test_too_large_explodes_by_two_sqrt_width_and_overflows():
    width = 256
    result = simulate(SimConfig(layers=30, width=width, batch=128, activation="linear", init="normal",
                                init_params={"std": 2.0}))
    stds = [e.pre.std for e in result.forward]
    ratios = [b / a for a, b in zip(stds[:10], stds[1:11])]
    assert np.exp(np.mean(np.log(ratios))) == pytest.approx(2 * math.sqrt(width), rel=0.05)
    first_bad = next(e.index for e in result.forward if e.pre.nonfinite)
    # 3.4e38 / 32^k: overflow after about 25 layers.
    assert 22 <= first_bad <= 28
    bad = result.forward[first_bad - 1]
    assert math.isfinite(bad.pre.histogram.edges[0]) and math.isfinite(bad.pre.histogram.edges[-1])


def test_relu_xavier_shrinks_by_one_over_sqrt_two():
    result = simulate(SimConfig(layers=12, width=512, batch=256, init="xavier_normal"))
    stds = [e.pre.std for e in result.forward]
    per_layer = (stds[-1] / stds[0]) ** (1 / 11)
    assert per_layer == pytest.approx(1 / math.sqrt(2), rel=0.03)


def test_relu_he_keeps_the_second_moment_on_average():
    # Each seed's second moment is a multiplicative random walk (its expectation is exactly
    # preserved); over 16 seeds at width 512 the mean ratio has a spread of about 0.05.
    seeds = 16
    second = np.array([[e.pre.std**2 + e.pre.mean**2 for e in simulate(
        SimConfig(layers=10, width=512, batch=256, seed=s, init="kaiming_normal")).forward]
        for s in range(seeds)])
    ratio = second[:, -1] / second[:, 0]
    assert ratio.mean() == pytest.approx(1.0, abs=4 * ratio.std() / math.sqrt(seeds))
    # Xavier, by contrast, loses a factor 2 per layer: 2^-9 after 10 layers.
    assert ratio.mean() > 100 * 2.0**-9


def test_selu_lecun_stays_at_one():
    result = simulate(SimConfig(layers=50, width=768, batch=512, activation="selu", init="lecun_normal"))
    for event in result.forward:
        assert event.pre.std == pytest.approx(1.0, abs=0.015)


def test_linear_lecun_stays_at_one():
    result = simulate(SimConfig(layers=10, width=512, batch=512, activation="linear", init="lecun_normal"))
    for event in result.forward:
        assert event.pre.std == pytest.approx(1.0, abs=0.05)


def test_batch_norm_rescues_a_too_small_init():
    result = simulate(presets()["batchnorm_rescue"].config)
    for event in result.forward:
        assert event.pre.std == pytest.approx(1.0, abs=0.01)
    assert result.forward[-1].post.std > 0.3


def test_pytorch_default_with_relu_shrinks_by_about_0_41():
    result = simulate(SimConfig(layers=6, width=512, batch=512, init="pytorch_linear"))
    stds = [e.pre.std for e in result.forward]
    assert (stds[-1] / stds[0]) ** (1 / 5) == pytest.approx(1 / math.sqrt(6), rel=0.05)


# --- theory against measurement --------------------------------------------------------------

@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_theory_agrees_with_a_wide_simulation(activation):
    act = ACTIVATIONS[activation]
    config = SimConfig(layers=6, width=1024, batch=256, activation=activation, init=act.recommended,
                       init_params=act.recommended_params(act.params()), bias_init="normal",
                       bias_params={"std": 0.1})
    result = simulate(config)
    for f, b in zip(result.forward, result.backward):
        assert f.pre.std == pytest.approx(f.theory_pre_std, rel=0.06), f.index
        assert b.grad.std == pytest.approx(b.theory_grad_std, rel=0.06), b.index


def test_theory_with_normalization_fixes_unit_variance_and_gives_no_gradient_prediction():
    result = simulate(SimConfig(layers=3, width=64, batch=64, norm="layer"))
    assert all(f.theory_pre_std == 1.0 for f in result.forward)
    assert all(b.theory_grad_std is None for b in result.backward)


# --- statistics, histograms, non-finite values -----------------------------------------------

def test_histograms_count_a_subsample_on_finite_edges():
    result = simulate(SimConfig(layers=2, width=512, batch=512, bins=32))
    for event in result.forward:
        h = event.post.histogram
        assert len(h.edges) == 33 and len(h.counts) == 32
        assert h.edges[0] == pytest.approx(event.post.min) and h.edges[-1] == pytest.approx(event.post.max)
        assert 65536 // 2 <= h.total <= 65536
    # ReLU: the first bin holds the zeros (half of the values) and the small positive ones.
    from scipy.stats import norm

    event = result.forward[0]
    h = event.post.histogram
    expected = norm.cdf(h.edges[1] / event.pre.std)  # P(h < first edge): h <= 0 or small
    assert h.counts[0] / h.total == pytest.approx(expected, abs=0.01)


def test_huge_and_nonfinite_values_never_crash():
    from initsim.engine.stats import summarize

    a = np.array([[1e38, -1e38, 3.0, np.inf], [np.nan, 2.0, -np.inf, 1.0]], dtype=np.float32)
    s = summarize(a, 16)
    assert s.nonfinite == 3
    assert s.min == pytest.approx(-1e38, rel=1e-6) and s.max == pytest.approx(1e38, rel=1e-6)
    assert np.all(np.isfinite(s.histogram.edges)) and s.histogram.total == 5
    big = np.full((4, 4), 3e38, dtype=np.float32)
    big[0, 0] = -3e38
    s = summarize(big, 8)
    assert s.nonfinite == 0 and math.isfinite(s.std) and s.std > 1e38
    everything_bad = summarize(np.full((2, 2), np.nan, dtype=np.float32), 8)
    assert everything_bad.nonfinite == 4 and everything_bad.histogram.total == 0
    constant = summarize(np.zeros((3, 3), np.float32), 8)
    assert constant.std == 0 and np.all(np.isfinite(constant.histogram.edges))


def test_dead_and_saturated_fractions():
    # A large negative bias kills every ReLU unit.
    dead = simulate(SimConfig(layers=2, width=32, batch=16, bias_init="constant",
                              bias_params={"value": -100.0}))
    assert dead.forward[0].dead_fraction == 1.0
    saturated = simulate(SimConfig(layers=3, width=256, batch=64, activation="tanh", init="normal",
                                   init_params={"std": 1.0}))
    assert saturated.forward[-1].saturated_fraction > 0.8
    healthy = simulate(SimConfig(layers=3, width=256, batch=64, activation="tanh", init="xavier_normal"))
    assert healthy.forward[-1].saturated_fraction < 0.05


# --- validation ------------------------------------------------------------------------------

@pytest.mark.parametrize("changes,field", [
    ({"layers": 0}, "layers"), ({"width": 0}, "width"), ({"batch": 10**6}, "batch"),
    ({"layers": 2.5}, "layers"), ({"activation": "rellu"}, "activation"), ({"init": "hee"}, "init"),
    ({"init": "normal", "init_params": {"std": -1}}, "init normal.std"), ({"norm": "group"}, "norm"),
    ({"dtype": "float16"}, "dtype"), ({"bias_init": "ones"}, "bias_init"),
])
def test_bad_configs_raise_one_clear_error(changes, field):
    with pytest.raises(ConfigError) as info:
        SimConfig(**changes).validated()
    assert info.value.field == field


def test_config_round_trip_and_unknown_keys():
    config = SimConfig(layers=3, activation="leaky_relu", activation_params={"slope": 0.1}).validated()
    assert SimConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="did you mean 'layers'"):
        SimConfig.from_dict({"layer": 3})


def test_every_preset_runs_and_tells_its_story():
    for preset in presets().values():
        small = preset.config.replace(width=min(preset.config.width, 64), batch=32)
        result = simulate(small)
        assert len(result.forward) == small.layers and preset.explanation


def test_the_stream_does_not_leak_its_quiet_error_state_to_the_consumer():
    # numpy's error state is a context variable: set across a yield, the consumer would inherit it.
    before = np.geterr()
    for _ in simulate_stream(SimConfig(layers=3, width=8, batch=4, activation="linear", init="normal",
                                       init_params={"std": 100.0})):
        assert np.geterr() == before


def test_a_config_is_validated_once_however_many_consumers_ask(monkeypatch):
    """A validated config is returned as it is, without looking anything up again; a config made
    from it by replace() is checked afresh, and pickling (to a sweep's worker process) keeps the mark."""
    import pickle

    from initsim.engine import config as config_module

    config = SimConfig(init="He_Normal", activation="ReLU").validated()
    assert (config.init, config.activation) == ("he_normal", "relu")  # canonical names

    def looked_up(name):
        raise AssertionError(f"looked up {name} again")

    monkeypatch.setattr(config_module, "get_scheme", looked_up)
    assert config.validated() is config
    assert pickle.loads(pickle.dumps(config)).validated() == config
    with pytest.raises(AssertionError, match="looked up"):
        config.replace(layers=3).validated()


def test_a_data_dependent_scheme_is_a_hook_on_the_scheme_that_the_simulation_calls(monkeypatch):
    """LSUV is one such hook (`Scheme.fit_to_data`); any scheme that has one is fitted layer by
    layer on the run's batch, its weights are the fitted ones, and its theory uses them."""
    import dataclasses

    from initsim.engine import SCHEMES, get_scheme, initial_weights

    def halve(x, w, b, h, flush):
        w *= 0.5
        h *= 0.5  # h = x W, no bias: exactly half

    halving = dataclasses.replace(get_scheme("orthogonal"), name="halving", aliases=(), fit_to_data=halve)
    monkeypatch.setitem(SCHEMES, "halving", halving)
    base = SimConfig(layers=3, width=32, batch=64, activation="tanh", init="orthogonal", seed=4)
    plain, fitted = simulate(base), simulate(base.replace(init="halving"))
    assert halving.data_dependent and not get_scheme("orthogonal").data_dependent
    assert fitted.forward[0].pre.std == plain.forward[0].pre.std / 2
    assert fitted.forward[0].weight_std == plain.forward[0].weight_std / 2
    for (w_fitted, _), (w_plain, _) in zip(initial_weights(base.replace(init="halving")), initial_weights(base)):
        np.testing.assert_array_equal(w_fitted, w_plain / 2)
    assert fitted.theory.sigma_w2[1] == pytest.approx(plain.theory.sigma_w2[1] / 4, rel=1e-6)
