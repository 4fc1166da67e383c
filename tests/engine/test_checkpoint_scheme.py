"""The checkpoint scheme (issue 14): a checkpoint's chained dense layers simulated with exactly
their weights, each layer at its own widths."""

import json
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from initsim.cli import main
from initsim.engine import ConfigError, SimConfig, get_activation, get_scheme, initial_weights, memory, simulate
from initsim.engine import chain as chain_module
from initsim.engine.chain import ChainError, find_chain, load_chain
from initsim.engine.checkpoints import TensorInfo
from initsim.engine.export import export_weights
from initsim.engine.spectra import jacobian
from initsim.engine.sweep import seed_configs, sweep
from initsim.engine.train import TrainConfig, train

MLP = ((784, 256), (256, 128), (128, 10))


def checkpoint(file, **changes) -> SimConfig:
    return SimConfig(init="checkpoint", init_params={"file": str(file)}, **changes)


def write_mlp(path, seed=0, bias=(True, True, False)):
    """An MLP 784 -> 256 -> 128 -> 10 in PyTorch's layout, (out, in), as safetensors; the last layer
    without a bias. Returns its weights as numpy matrices (in, out) in float64, and its biases."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    tensors, layers = {}, []
    for index, ((fan_in, fan_out), has_bias) in enumerate(zip(MLP, bias), 1):
        w = (rng.standard_normal((fan_out, fan_in)) * np.sqrt(2 / fan_in)).astype(np.float32)
        tensors[f"fc{index}.weight"] = w
        b = np.zeros(fan_out, np.float32)
        if has_bias:
            b = tensors[f"fc{index}.bias"] = (0.1 * rng.standard_normal(fan_out)).astype(np.float32)
        layers.append((w.T.astype(np.float64), b.astype(np.float64)))
    save_file(tensors, str(path))
    return layers


def without_theory(result):
    return json.dumps([{k: v for k, v in record.items() if not k.startswith("theory")}
                       for record in result.layer_records()])


@pytest.mark.parametrize("changes", [
    {"activation": "relu", "input_width": 24},
    {"activation": "tanh", "init": "xavier_uniform", "bias_init": "normal", "norm": "batch", "dtype": "float64"},
])
def test_the_engines_own_layers_read_back_simulate_bit_for_bit(tmp_path, changes):
    plain = SimConfig(layers=4, width=40, batch=24, seed=5, **changes).validated()
    export_weights(plain, tmp_path / "w.npz")  # W1, b1, ... in numpy's layout, as `initsim weights` writes
    read = checkpoint(tmp_path / "w.npz", batch=24, seed=5, dtype=plain.dtype, norm=plain.norm,
                      activation=plain.activation).validated()
    assert (read.layers, read.width, read.input_width) == (plain.layers, plain.width, plain.input_width)
    assert read.init_params == {"file": str((tmp_path / "w.npz").resolve()), "layout": "numpy"}
    assert [read.fans(k) for k in range(1, 5)] == [plain.fans(k) for k in range(1, 5)]
    assert without_theory(simulate(read)) == without_theory(simulate(plain))
    # The theory reads the weights' own second moments: the bias init's formula is not used.
    sigma_b2 = [float(np.mean(np.square(b, dtype=np.float64))) for _, b in initial_weights(plain)]
    assert simulate(read).theory.sigma_b2 == pytest.approx(sigma_b2[1], rel=1e-12)


# relu's backward pass keeps each layer's output; silu's keeps u and recomputes the output of each
# width on the way back
@pytest.mark.parametrize("activation", ["relu", "silu"])
def test_an_mlp_in_torch_layout_runs_with_its_own_widths(tmp_path, activation):
    layers = write_mlp(tmp_path / "mlp.safetensors")
    config = checkpoint(tmp_path / "mlp.safetensors", batch=32, seed=2, activation=activation).validated()
    assert (config.layers, config.width, config.input_width) == (3, 256, 784)
    assert config.init_params["layout"] == "torch"  # safetensors' default
    assert config.bias_init == "zeros" and config.bias_params == {}
    assert [config.fans(k) for k in (1, 2, 3)] == list(MLP)
    result = simulate(config)

    # A plain float64 forward and backward pass from the documented seeding.
    act = get_activation(activation)
    seeds = np.random.SeedSequence(2).spawn(3 + 2)
    x = np.random.default_rng(seeds[0]).standard_normal((32, 784)).astype(np.float32).astype(np.float64)
    pres = []
    for w, b in layers:
        pres.append(x @ w + b)
        x = act.apply(pres[-1])
    grad = np.random.default_rng(seeds[-1]).standard_normal((32, 10)).astype(np.float32).astype(np.float64)
    grads = {}
    for index in (3, 2, 1):
        grad = grad * act.derivative(pres[index - 1].copy(), {})
        grads[index] = grad
        grad = grad @ layers[index - 1][0].T
    for event, u in zip(result.forward, pres):
        assert event.pre.std == pytest.approx(u.std(), rel=1e-5)
        assert event.post.std == pytest.approx(act.apply(u).std(), rel=1e-5)
        assert event.post.histogram.counts.sum() > 0
    for event in result.backward:
        assert event.grad.std == pytest.approx(grads[event.index].std(), rel=1e-4)
    # Mean-field theory per layer from the measured weights: q^1 = fan_in mean(W^2) + mean(b^2).
    w1, b1 = layers[0]
    assert result.forward[0].theory_pre_std == pytest.approx(
        np.sqrt(784 * np.mean(w1**2) + np.mean(b1**2)), rel=1e-6)
    assert result.theory.sigma_w2 == pytest.approx([w.shape[0] * np.mean(w**2) for w, _ in layers], rel=1e-6)

    # The input-output Jacobian is the product of the rectangular layers': (784, 10).
    j = jacobian(config.replace(seed=4))
    x = np.random.default_rng(4).standard_normal(784)
    direct = np.eye(784)
    for w, b in layers:
        h = x @ w + b
        direct, x = (direct @ w) * act.derivative(h.copy(), {}), act.apply(h)
    assert j.shape == (784, 10)
    np.testing.assert_allclose(j, direct, rtol=1e-4, atol=1e-6 * np.abs(direct).max())


def test_a_keras_weights_file_runs_in_numpy_layout(tmp_path):
    h5py = pytest.importorskip("h5py")  # the checkpoints extra

    rng = np.random.default_rng(1)
    stored = [(rng.standard_normal((6, 12)), rng.standard_normal(12)), (rng.standard_normal((12, 3)), None)]
    with h5py.File(tmp_path / "model.weights.h5", "w") as h5:  # Keras 3's names, (in, out) kernels
        for name, (kernel, bias) in zip(("dense", "dense_1"), stored):
            h5[f"layers/{name}/vars/0"] = kernel.astype(np.float32)
            if bias is not None:
                h5[f"layers/{name}/vars/1"] = bias.astype(np.float32)
    config = checkpoint(tmp_path / "model.weights.h5", batch=4).validated()
    assert config.init_params["layout"] == "numpy" and [config.fans(k) for k in (1, 2)] == [(6, 12), (12, 3)]
    (w1, b1), (w2, b2) = initial_weights(config)
    np.testing.assert_array_equal(w1, stored[0][0].astype(np.float32))
    np.testing.assert_array_equal(b1, stored[0][1].astype(np.float32))
    np.testing.assert_array_equal(w2, stored[1][0].astype(np.float32))
    np.testing.assert_array_equal(b2, np.zeros(3, np.float32))
    assert w1.flags.c_contiguous and [e.index for e in simulate(config).backward] == [1, 2]


def test_the_estimate_follows_the_layers_widths(tmp_path):
    write_mlp(tmp_path / "mlp.safetensors")
    config = checkpoint(tmp_path / "mlp.safetensors", batch=100).validated()
    estimate = memory.simulation(config)
    weights = 4 * sum((fi + 1) * fo for fi, fo in MLP)
    assert weights + 4 * 100 * (784 + 3 * 256) < estimate.bytes < 4 * weights
    assert estimate.flops == 6 * 100 * sum(fi * fo for fi, fo in MLP)
    assert "784 -> 256 -> 128 -> 10" in estimate.shape
    with pytest.raises(ConfigError, match="layers, width or batch"):
        simulate(config, memory_limit=estimate.bytes - 1)


def test_a_config_holds_the_path_never_the_arrays_and_round_trips(tmp_path):
    np.savez(tmp_path / "wide.npz", W1=np.ones((8, 5000), np.float32), W2=np.ones((5000, 3), np.float32))
    config = checkpoint(tmp_path / "wide.npz", layers=7, width=10**6).validated()  # the file's shape wins
    assert (config.layers, config.width, config.input_width) == (2, 5000, 8)  # wider than the window offers
    data = config.to_dict()
    assert len(json.dumps(data)) < 1000
    again = SimConfig.from_dict(json.loads(json.dumps(data))).validated()
    assert again == config and [again.fans(k) for k in (1, 2)] == [(8, 5000), (5000, 3)]
    # an unvalidated config's fans are its file's too
    assert checkpoint(tmp_path / "wide.npz").fans(2) == (5000, 3)


def test_the_file_and_layout_parameters_are_checked_as_every_parameter_is(tmp_path):
    scheme = get_scheme("checkpoint")
    assert scheme.params({"file": tmp_path / "a.npz"}) == {"file": str(tmp_path / "a.npz"), "layout": "auto"}
    assert scheme.params({"file": " a.npz ", "layout": "Torch"}) == {"file": "a.npz", "layout": "torch"}
    for given, needle in (({}, "init checkpoint.file: got '', expected a file's path"),
                          ({"file": 3}, "init checkpoint.file: got 3, expected a file's path"),
                          ({"file": "a.npz", "layout": "keras"}, "init checkpoint.layout: unknown name 'keras'"),
                          ({"file": "a.npz", "gain": 2}, "not a parameter of init checkpoint")):
        with pytest.raises(ConfigError) as error:
            scheme.params(given)
        assert needle in str(error.value)


MEASURE = """
import json, re, sys
import numpy as np
from initsim.engine import SimConfig, memory, simulate

def status(key):
    return int(re.search(key + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024

small, large = sys.argv[1:]
simulate(SimConfig(init="checkpoint", init_params={"file": small}, batch=64))  # imports and BLAS's buffers
square = np.ones((512, 512), np.float32)
square @ square
config = SimConfig(init="checkpoint", init_params={"file": large}, batch=1024).validated()
estimate = memory.simulation(config)
open("/proc/self/clear_refs", "w").write("5")  # the peak so far is forgotten
baseline = status("VmRSS")
simulate(config, 2**40)
print(json.dumps({"peak": status("VmHWM") - baseline, "estimate": estimate.bytes}))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs") or platform.libc_ver()[0] != "glibc",
                    reason="measures RSS through Linux's /proc; the engine steadies glibc's heap")
def test_measured_peak_rss_is_within_15_percent_of_the_estimate(tmp_path):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    widths = (1024, 2048, 2048, 2048, 512)  # the largest read is a middle layer's
    save_file({f"l{k}.weight": rng.standard_normal((fo, fi), dtype=np.float32) / np.float32(np.sqrt(fi))
               for k, (fi, fo) in enumerate(zip(widths, widths[1:]))}, str(tmp_path / "large.safetensors"))
    save_file({"a.weight": np.ones((8, 4), np.float32), "b.weight": np.ones((2, 8), np.float32)},
              str(tmp_path / "small.safetensors"))
    done = subprocess.run([sys.executable, "-c", MEASURE, str(tmp_path / "small.safetensors"),
                           str(tmp_path / "large.safetensors")], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                               "MKL_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout)
    peak, estimate = measured["peak"], measured["estimate"]
    assert estimate > 100 * 2**20  # the run's own arrays dominate whatever else the process does
    assert abs(peak - estimate) <= 0.15 * estimate, f"peak {peak / 2**20:.0f} MiB, estimate {estimate / 2**20:.0f} MiB"


def info(name, *shape):
    return TensorInfo(name, tuple(shape), "F32", 4 * int(np.prod(shape)))


@pytest.mark.parametrize("tensors,layout,expected", [
    # PyTorch's state dict: (out, in), x.weight with x.bias; the last layer without one
    ([info("fc1.bias", 256), info("fc1.weight", 256, 784), info("fc2.bias", 128), info("fc2.weight", 128, 256),
      info("fc3.weight", 10, 128)], "torch",
     [("fc1.weight", "fc1.bias", 784, 256), ("fc2.weight", "fc2.bias", 256, 128), ("fc3.weight", None, 128, 10)]),
    # Keras: (in, out), .../kernel with .../bias
    ([info("dense/bias", 64), info("dense/kernel", 20, 64), info("dense_1/bias", 3), info("dense_1/kernel", 64, 3)],
     "numpy", [("dense/kernel", "dense/bias", 20, 64), ("dense_1/kernel", "dense_1/bias", 64, 3)]),
    # Keras 2's h5: kernel:0 and bias:0
    ([info("dense/dense/bias:0", 6), info("dense/dense/kernel:0", 4, 6), info("out/out/kernel:0", 6, 2)], "numpy",
     [("dense/dense/kernel:0", "dense/dense/bias:0", 4, 6), ("out/out/kernel:0", None, 6, 2)]),
    # Keras 3's .weights.h5: vars/0 and vars/1
    ([info("layers/dense/vars/0", 8, 16), info("layers/dense/vars/1", 16), info("layers/dense_1/vars/0", 16, 4),
      info("layers/dense_1/vars/1", 4)], "numpy",
     [("layers/dense/vars/0", "layers/dense/vars/1", 8, 16), ("layers/dense_1/vars/0", "layers/dense_1/vars/1", 16, 4)]),
    # `initsim weights`: W1, b1, ...; a bias of another size is not the layer's
    ([info("W1", 5, 7), info("W2", 7, 7), info("b1", 7), info("b2", 6)], "numpy",
     [("W1", "b1", 5, 7), ("W2", None, 7, 7)]),
    # Embeddings and a conv kernel are skipped, the conv breaks the run; the longest run wins
    ([info("embed.weight", 1000, 64), info("a.weight", 32, 64), info("b.weight", 8, 32),
      info("conv.weight", 16, 3, 3, 3), info("c.weight", 7, 5), info("d.weight", 3, 7), info("e.weight", 2, 3)],
     "torch", [("c.weight", None, 5, 7), ("d.weight", None, 7, 3), ("e.weight", None, 3, 2)]),
    # of runs as long, the first
    ([info("a", 4, 5), info("b", 5, 6), info("c", 7, 8), info("d", 8, 9)], "numpy",
     [("a", None, 4, 5), ("b", None, 5, 6)]),
])
def test_chain_detection_from_names_and_shapes(tensors, layout, expected):
    found = find_chain(tensors, layout)
    assert [(layer.weight, layer.bias, layer.fan_in, layer.fan_out) for layer in found] == expected


@pytest.mark.parametrize("tensors,shown", [
    ([info("a.weight", 3, 4), info("b.weight", 5, 6)], "shapes a.weight (3, 4), b.weight (5, 6)"),
    ([info("fc.weight", 10, 20), info("fc.bias", 10)], "shapes fc.weight (10, 20)"),  # the dense ones
    ([info("norm.weight", 8), info("conv.weight", 8, 3, 3, 3)], "norm.weight (8,), conv.weight (8, 3, 3, 3)"),
    ([info(f"l{k}.weight", 3, 4) for k in range(9)], "l5.weight (3, 4), ..."),
    ([], "shapes no tensors"),
])
def test_no_chain_is_one_line_naming_the_shapes(tensors, shown):
    with pytest.raises(ChainError, match="no two dense layers chain") as error:
        find_chain(tensors, "torch")
    assert shown in str(error.value) and "\n" not in str(error.value)


def test_the_headers_are_read_once_per_file_state(tmp_path, monkeypatch):
    write_mlp(tmp_path / "mlp.safetensors")
    opened = []
    real = chain_module.open_checkpoint
    monkeypatch.setattr(chain_module, "open_checkpoint", lambda path: opened.append(path) or real(path))
    checkpoint(tmp_path / "mlp.safetensors").validated()
    checkpoint(tmp_path / "mlp.safetensors", batch=7).validated()
    assert len(opened) == 1
    assert load_chain(tmp_path / "mlp.safetensors", "torch") is not load_chain(tmp_path / "mlp.safetensors", "auto")
    assert len(opened) == 2  # another layout asked for: read again
    status = os.stat(tmp_path / "mlp.safetensors")
    os.utime(tmp_path / "mlp.safetensors", ns=(status.st_atime_ns, status.st_mtime_ns + 10**9))
    checkpoint(tmp_path / "mlp.safetensors").validated()
    assert len(opened) == 3


def test_a_file_whose_layers_changed_under_a_validated_config_is_refused(tmp_path):
    from safetensors.numpy import save_file

    write_mlp(tmp_path / "mlp.safetensors")
    config = checkpoint(tmp_path / "mlp.safetensors", batch=4).validated()
    save_file({"a.weight": np.ones((3, 784), np.float32), "b.weight": np.ones((2, 3), np.float32)},
              str(tmp_path / "mlp.safetensors"))
    with pytest.raises(ConfigError, match="mlp.safetensors changed since the config was made"):
        simulate(config)
    assert simulate(checkpoint(tmp_path / "mlp.safetensors", batch=4)).config.layers == 2


@pytest.mark.parametrize("make,needle", [
    (lambda d: d / "missing.safetensors", "no such file"),
    (lambda d: d, "not a file"),
    (lambda d: (d / "junk.npz").write_bytes(b"\x00" * 100) and d / "junk.npz", "junk.npz"),
    (lambda d: np.savez(d / "one.npz", w=np.ones((3, 4))) or d / "one.npz", "one.npz: no two dense layers chain"),
])
def test_bad_files_are_one_line_config_errors(tmp_path, make, needle):
    with pytest.raises(ConfigError, match="init checkpoint.file") as error:
        checkpoint(make(tmp_path)).validated()
    assert needle in str(error.value) and "\n" not in str(error.value)


def test_what_per_layer_widths_do_not_take_is_refused_in_one_line(tmp_path):
    write_mlp(tmp_path / "mlp.safetensors")
    config = checkpoint(tmp_path / "mlp.safetensors", batch=8)
    with pytest.raises(ConfigError, match="^residual: a checkpoint's dense layers are a plain MLP"):
        config.replace(residual="pre").validated()
    with pytest.raises(ConfigError, match="^init: training .* not available for a checkpoint"):
        train(config, TrainConfig(steps=2))
    with pytest.raises(ConfigError, match="^init: a sweep is not available for a checkpoint"):
        next(sweep(seed_configs(config.validated(), 2)))
    with pytest.raises(ConfigError, match="read layer by layer from its file"):
        get_scheme("checkpoint").sample(3, 4, np.random.default_rng(0), params={"file": "w.npz"})  # never drawn


def test_the_command_line_takes_the_file_and_layout(tmp_path, capsys):
    layers = write_mlp(tmp_path / "mlp.safetensors")
    out = tmp_path / "read.npz"
    assert main(["weights", "--init", "checkpoint", "--file", str(tmp_path / "mlp.safetensors"), "--layers", "3",
                 "--out", str(out)]) == 0
    with np.load(out) as written:  # the checkpoint's own layers, in numpy's layout
        np.testing.assert_array_equal(written["W2"], layers[1][0].astype(np.float32))
        np.testing.assert_array_equal(written["b3"], np.zeros(10, np.float32))
    capsys.readouterr()
    assert main(["simulate", "--init", "checkpoint", "--file", str(tmp_path / "mlp.safetensors"),
                 "--layout", "numpy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no two dense layers chain (numpy layout)" in err


def test_simulate_prints_the_checkpoints_widths_and_its_layers_own_sigmas(tmp_path, capsys):
    write_mlp(tmp_path / "mlp.safetensors")
    assert main(["simulate", "--init", "checkpoint", "--file", str(tmp_path / "mlp.safetensors")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("3 layers 784 -> 256 -> 128 -> 10 relu, init checkpoint")
    assert "biases from the file" in lines[0] and "bias zeros" not in lines[0]
    assert any(line.startswith("mean field: each layer's sigma_w^2 = fan_in x mean(W^2)") for line in lines)
