"""The command line: its JSON, its tables, its files and its one-line errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

from initsim.cli import main
from initsim.engine import SCHEMES, SimConfig, initial_weights, simulate

LAYER_KEYS = {"index", "pre_mean", "pre_std", "post_mean", "post_std", "grad_std", "dead_fraction",
              "saturated_fraction", "nonfinite", "theory_pre_std", "theory_grad_std", "histogram"}


def run_json(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_simulate_json_has_the_documented_keys_and_the_engine_numbers(capsys):
    data = run_json(capsys, "simulate", "--layers", "3", "--width", "32", "--batch", "16",
                    "--activation", "tanh", "--init", "xavier_uniform", "--gain", "1.5", "--json")
    assert data["config"]["init_params"] == {"gain": 1.5}
    assert [layer["index"] for layer in data["layers"]] == [1, 2, 3]
    expected = simulate(SimConfig(layers=3, width=32, batch=16, activation="tanh", init="xavier_uniform",
                                  init_params={"gain": 1.5}))
    for layer, f, b in zip(data["layers"], expected.forward, expected.backward):
        assert LAYER_KEYS <= set(layer)
        assert layer["post_std"] == f.post.std and layer["grad_std"] == b.grad.std
        assert layer["histogram"]["counts"] == f.post.histogram.counts.tolist()
        assert len(layer["histogram"]["edges"]) == len(layer["histogram"]["counts"]) + 1


def test_simulate_json_writes_nonfinite_values_as_null(capsys):
    data = run_json(capsys, "simulate", "--preset", "too_large", "--width", "64", "--batch", "8",
                    "--layers", "40", "--json")
    last = data["layers"][-1]
    assert last["nonfinite"] > 0 and last["post_std"] is None


def test_simulate_table(capsys):
    assert main(["simulate", "--preset", "he_relu", "--layers", "4", "--width", "32", "--batch", "8"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "theory pre" in lines[1] and len(lines) == 2 + 4 + 1 and "chi_1 = 1" in lines[-1]


def test_preset_then_flags_override(capsys):
    data = run_json(capsys, "simulate", "--preset", "too_small", "--width", "16", "--std", "0.5", "--json")
    assert data["config"]["width"] == 16 and data["config"]["init_params"]["std"] == 0.5
    data = run_json(capsys, "simulate", "--preset", "too_small", "--init", "he_normal", "--json")
    assert data["config"]["init_params"] == {}  # a new scheme starts from its own defaults


@pytest.mark.parametrize("argv,needle", [
    (["simulate", "--layers", "0"], "layers"),
    (["simulate", "--init", "he_nrmal"], "did you mean 'he_normal'"),
    (["simulate", "--activation", "relu", "--init", "he_normal", "--gain", "2"], "gain"),
    (["simulate", "--std", "-1", "--init", "normal"], "std"),
    (["simulate", "--width", "4096", "--batch", "8192", "--layers", "100"], "GiB"),
    (["simulate", "--preset", "nope"], "preset"),
    (["simulate", "--layers", "three"], "--layers: got 'three', expected an integer"),
    (["simulate", "--bogus"], "unrecognized"),
    (["weights", "--init", "normal", "--out", "/tmp/x.txt", "--fan-in", "3", "--fan-out", "3"], ".npy"),
    (["weights", "--init", "normal", "--out", "/nonexistent-dir/w.npy", "--fan-in", "3", "--fan-out", "3"],
     "cannot write"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("initsim: error:") and needle in err


def test_weights_npy(tmp_path, capsys):
    out = tmp_path / "w.npy"
    assert main(["weights", "--init", "he_normal", "--fan-in", "300", "--fan-out", "200",
                 "--seed", "3", "--out", str(out)]) == 0
    w = np.load(out)
    assert w.shape == (300, 200) and w.dtype == np.float32
    assert abs(w.std() / SCHEMES["he_normal"].std(300, 200) - 1) < 0.02
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left


def test_weights_npz_is_what_simulate_used(tmp_path):
    out = tmp_path / "net.npz"
    assert main(["weights", "--preset", "lecun_selu", "--layers", "3", "--width", "16",
                 "--out", str(out)]) == 0
    data = np.load(out)
    config = SimConfig.from_dict(json.loads(str(data["config_json"])))
    for i, (w, b) in enumerate(initial_weights(config), 1):
        np.testing.assert_array_equal(data[f"W{i}"], w)
        np.testing.assert_array_equal(data[f"b{i}"], b)


def test_registries(capsys):
    schemes = run_json(capsys, "schemes", "--json")
    assert {s["name"] for s in schemes} == set(SCHEMES)
    he = next(s for s in schemes if s["name"] == "he_normal")
    assert he["truncated"] and he["family"] == "Keras" and "HeNormal" in he["keras"]
    activations = run_json(capsys, "activations", "--json")
    relu = next(a for a in activations if a["name"] == "relu")
    assert relu["recommended"] == "kaiming_normal" and relu["can_die"]
    assert len(run_json(capsys, "presets", "--json")) >= 10
    assert main(["schemes"]) == 0 and "untruncated" in capsys.readouterr().out


def test_module_entry_point_runs_headless():
    done = subprocess.run([sys.executable, "-m", "initsim", "simulate", "--layers", "2", "--width", "8",
                           "--batch", "4", "--json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and json.loads(done.stdout)["layers"][1]["index"] == 2
    assert "PySide6" not in done.stderr


def test_main_module_runs_only_as_main():
    # Spawned worker processes (sweeps, bands) import the main module as __mp_main__: it must not
    # open another window there.
    import runpy

    runpy.run_module("initsim.__main__", run_name="__mp_main__")  # returns: main() did not run


@pytest.mark.parametrize("kind", ["init", "activation", "bias_init"])
def test_every_parameter_a_registry_entry_takes_is_a_flag_that_reaches_the_config(kind):
    """The parameter flags come from the registries: an entry's parameter, set by its flag,
    is in the config the command runs (each entry with its own defaults changed)."""
    from initsim.cli.command import build_parser
    from initsim.cli.common import config_from_args
    from initsim.engine import ACTIVATIONS, BIAS_INITS

    registry, flag_prefix, field = {"init": (SCHEMES, "--", "init_params"),
                                    "activation": (ACTIVATIONS, "--", "activation_params"),
                                    "bias_init": (BIAS_INITS, "--bias-", "bias_params")}[kind]
    parser = build_parser()
    for name, entry in registry.items():
        for param, default in entry.defaults.items():
            value = default if isinstance(default, str) else default / 2 + 0.125
            args = parser.parse_args(["simulate", "--" + kind.replace("_", "-"), name,
                                      flag_prefix + param.replace("_", "-"), str(value)])
            assert getattr(config_from_args(args), field)[param] == value, (name, param)
