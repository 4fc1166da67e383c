"""The depth tour's numbers (issue 13): each step of resources/tours/depth.toml says what its
network does at initialization; the engine's simulation of that very step's config says it too."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initsim.engine import simulate
from initsim.engine.diagnosis import diagnose
from initsim.engine.tours import tours

TOUR = tours()["depth"]
STEPS = {step.title: step for step in TOUR.steps}


def run(title: str):
    """(stream std, gradient std, the diagnosis' warning kinds) of a step's run, per layer or block."""
    config = STEPS[title].config
    result = simulate(config)
    stream = np.array([f.post.std for f in result.forward])
    gradient = np.array([b.grad.std for b in result.backward])
    kinds = {f.kind for f in diagnose(config, result.forward, result.backward) if f.is_warning}
    return config, stream, gradient, kinds


def test_the_tour_is_its_steps_in_order():
    assert TOUR.title.startswith("Depth beyond BatchNorm")
    assert TOUR.steps[0].config.residual == "none" and all(s.config.residual != "none" for s in TOUR.steps[1:])
    assert all(step.look_at for step in TOUR.steps)


def test_a_plain_deep_net_fades():
    config, stream, gradient, _ = run("A plain deep net fades")
    assert config.layers == 200 and config.residual == "none"
    assert stream[0] == pytest.approx(0.63, abs=0.02) and stream[-1] == pytest.approx(0.03, abs=0.005)
    assert 20 < gradient[-1] / gradient[0] < 45  # "a thirtieth"


def test_unscaled_blocks_grow_by_sqrt3_a_block():
    config, stream, gradient, kinds = run("Residual blocks without a norm or a scale")
    slope = np.polyfit(np.arange(config.layers), np.log(stream), 1)[0]
    assert math.exp(slope) == pytest.approx(math.sqrt(3), rel=0.05)
    assert 3e4 < stream[-1] < 3e5  # "about 1e5 after 20 blocks"
    assert gradient[0] / gradient[-1] > 1e4 and "exploded" in kinds


def test_pre_norm_grows_like_the_square_root_of_depth():
    config, stream, gradient, kinds = run("Pre-norm: growth like sqrt(L)")
    blocks = np.arange(1, config.layers + 1)
    np.testing.assert_allclose(stream**2, 1 + 2 * blocks, rtol=0.15)
    assert stream[-1] == pytest.approx(20, rel=0.1)
    assert not kinds


def test_post_norm_pins_the_stream_but_not_the_gradient():
    _, stream, gradient, kinds = run("Post-norm pins the stream, not the gradient")
    np.testing.assert_allclose(stream, 1, rtol=0.01)
    assert gradient[0] / gradient[-1] > 100 and "exploded" in kinds


def test_a_branch_scaled_by_one_over_sqrt_l_keeps_both_near_one():
    _, stream, gradient, kinds = run("Scale the branch by 1/sqrt(L)")
    assert stream[-1] == pytest.approx(math.sqrt(3), rel=0.05)
    assert np.all((stream > 0.95) & (stream < 1.8)) and np.all((gradient > 0.95) & (gradient < 1.8))
    assert not kinds


@pytest.mark.parametrize("title", ["Fixup: the identity without a norm", "ReZero: alpha starts at 0"])
def test_fixup_and_rezero_start_as_the_identity(title):
    _, stream, gradient, kinds = run(title)
    np.testing.assert_allclose(stream, stream[0], rtol=1e-6)  # the input, at every depth
    np.testing.assert_allclose(gradient, gradient[-1], rtol=1e-6)  # the output's, at every block
    assert not kinds


def test_a_thousand_blocks_stay_healthy():
    config, stream, gradient, kinds = run("A thousand blocks")
    assert config.layers == 1000 and config.norm == "rms"
    assert stream.max() < 2 and gradient.max() / gradient.min() < 2
    assert not kinds


def test_plain_against_residual_side_by_side():
    from initsim.engine.compare import compare
    from initsim.engine.tours import picked_scheme

    step = STEPS["Plain against residual, side by side"]
    assert [picked_scheme(pick) for pick in step.compare] == [("xavier_normal", True), ("xavier_normal", False)]
    residual = step.config
    plain = residual.replace(residual="none", norm="none").validated()
    result = compare([plain, residual], seeds=(0, 1, 2))
    plain_run, residual_run = result.runs
    plain_std, residual_std = plain_run.activation_std.median, residual_run.activation_std.median
    assert plain_std[-1] / plain_std[0] < 1 / 15  # "a twentieth of their start"
    assert np.all((residual_std > 0.9) & (residual_std < 1.3))  # "near 1"
    plain_grad, residual_grad = plain_run.grad_std.median, residual_run.grad_std.median
    assert plain_grad[0] / plain_grad[-1] < 1 / 20 and residual_grad[0] / residual_grad[-1] > 0.9
