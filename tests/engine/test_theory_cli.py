"""The headless `theory`, `phase` and `sweep` commands (in-process through cli.main)."""

import csv
import json
import subprocess
import sys
import warnings

import pytest

from initsim.cli import main


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_theory_json_gives_the_per_layer_variance_and_the_fixed_point(capsys):
    status, out, _ = run(capsys, "theory", "--activation", "relu", "--sigma-w2", "2", "--depth", "4", "--json")
    data = json.loads(out)
    assert status == 0 and len(data["q"]) == len(data["c"]) == 4
    assert data["q"] == pytest.approx([2.0] * 4) and data["q_star"] == pytest.approx(2.0)
    assert data["chi1"] == pytest.approx(1.0) and data["depth_scale"] is None and data["phase"] == "critical"
    status, out, _ = run(capsys, "theory", "--activation", "tanh", "--sigma-w2", "1.2", "--sigma-b2", "0.05")
    assert status == 0 and "chi_1 = " in out and "(ordered)" in out and len(out.splitlines()) == 2 + 20 + 1


def test_theory_takes_activation_parameters_and_refuses_bad_input(capsys):
    status, out, _ = run(capsys, "theory", "--activation", "leaky_relu", "--slope", "0.5", "--sigma-w2", "1",
                         "--depth", "2", "--json")
    assert status == 0 and json.loads(out)["chi1"] == pytest.approx((1 + 0.25) / 2)
    for argv, field in ((("--sigma-w2", "-1"), "--sigma-w2"), (("--sigma-w2", "1", "--c0", "2"), "c0"),
                        (("--sigma-w2", "1", "--depth", "0"), "depth"), (("--sigma-w2", "1", "--alpha", "1"), "alpha")):
        status, _, err = run(capsys, "theory", "--activation", "relu", *argv)
        assert status == 2 and field in err and len(err.splitlines()) == 1


def test_phase_writes_a_csv_without_qt_on_axes_from_zero_that_hold_the_network(tmp_path, capsys):
    table = tmp_path / "tanh.csv"
    # In a fresh interpreter (pytest-qt has imported Qt into this one): no Qt is loaded. (The PNG is
    # a figure drawn with Qt: tests/app/test_phase_png.py.)
    probe = ("import sys; from initsim.cli import main; status = main(sys.argv[1:]); "
             "assert not [m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph'))]; sys.exit(status)")
    done = subprocess.run([sys.executable, "-c", probe, "phase", "--activation", "tanh", "--grid", "60",
                           "--out", str(table)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "critical sigma_w^2" in done.stdout, done.stderr
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 3600 and float(rows[0]["sigma_w2"]) == float(rows[0]["sigma_b2"]) == 0  # zero weights
    assert float(rows[0]["chi1"]) == 0 and float(rows[59]["sigma_w2"]) == pytest.approx(3.0)

    table = tmp_path / "relu.csv"
    status, _, _ = run(capsys, "phase", "--activation", "relu", "--grid", "10", "--sigma-w2-max", "4",
                       "--out", str(table))
    rows = list(csv.DictReader(table.open()))
    assert status == 0 and len(rows) == 100 and float(rows[9]["sigma_w2"]) == pytest.approx(4.0)
    assert float(rows[9]["chi1"]) == pytest.approx(2.0)
    # A network's flags mark its point, and the axes widen to hold it: 256 x 1 = 256 -> 300.
    status, out, _ = run(capsys, "phase", "--activation", "relu", "--init", "normal", "--std", "1", "--grid", "10",
                         "--out", str(table))
    rows = list(csv.DictReader(table.open()))
    assert status == 0 and float(rows[9]["sigma_w2"]) == pytest.approx(300.0)
    assert "the network (normal) at sigma_w^2 = 256, sigma_b^2 = 0" in out
    status, _, err = run(capsys, "phase", "--activation", "relu", "--out", str(tmp_path / "x.jpg"))
    assert status == 2 and ".png or .csv" in err
    status, _, err = run(capsys, "phase", "--init", "zeros", "--out", str(table))
    assert status == 2 and "--activation" in err


def test_sweep_writes_one_row_per_config_with_progress_on_stderr(tmp_path, capsys):
    out = tmp_path / "sweep.csv"
    status, stdout, err = run(capsys, "sweep", "--activation", "tanh", "--layers", "6", "--width", "16",
                              "--batch", "16", "--sigma-w2", "0.5:2.5:2", "--vary", "seed=0,1",
                              "--workers", "2", "--out", str(out))
    rows = list(csv.DictReader(out.open()))
    assert status == 0 and "wrote 4 of 4 runs" in stdout and err.count("[") == 4
    assert [row["seed"] for row in rows] == ["0", "1", "0", "1"]
    assert float(rows[0]["theory_chi1"]) < 1 < float(rows[-1]["theory_chi1"])
    status, _, err = run(capsys, "sweep", "--out", str(out))
    assert status == 2 and "axis" in err
    status, _, err = run(capsys, "sweep", "--vary", "widht=3", "--out", str(out))
    assert status == 2 and "did you mean 'width'" in err


@pytest.mark.parametrize("argv", [
    ["theory", "--activation", "tanh", "--sigma-w2", "1e308"],
    ["theory", "--activation", "relu", "--sigma-w2", "1e-300"],
    ["theory", "--activation", "linear", "--sigma-w2", "1e6", "--depth", "1000"],
    ["theory", "--activation", "selu", "--sigma-w2", "1e6", "--depth", "1000"],
    ["theory", "--activation", "softplus", "--sigma-w2", "1e300", "--sigma-b2", "1e300", "--depth", "1000"],
    ["simulate", "--init", "normal", "--std", "1e300", "--layers", "3", "--width", "8", "--batch", "4"],
])
def test_theory_at_the_edges_of_float64_answers_without_warnings(capsys, argv):
    # A variance past float64's range is inf, one that died out 0, a correlation of either NaN:
    # answers, not a screenful of RuntimeWarnings.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        status, out, err = run(capsys, *argv)
    assert status == 0 and err == "" and ("q* = inf" in out or "q* = 0" in out)
