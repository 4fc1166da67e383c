"""Data exports: content equals the run, the config travels with it, writes are atomic."""

import csv
import json
import numpy as np
import pytest

from initsim.engine import SimConfig, initial_weights, simulate
from initsim.engine.export import ExportError, atomic_write, export_data, export_weights

CONFIG = SimConfig(layers=3, width=16, batch=8, activation="tanh", init="xavier_normal", bins=12)


@pytest.fixture(scope="module")
def result():
    return simulate(CONFIG)


def test_csv_has_one_row_per_layer_and_a_config_sidecar(tmp_path, result):
    files = export_data(result, tmp_path / "stats.csv")
    assert [f.name for f in files] == ["stats.csv", "stats.config.json"]
    rows = list(csv.DictReader(open(files[0])))
    assert [int(r["index"]) for r in rows] == [1, 2, 3]
    assert float(rows[1]["post_std"]) == result.forward[1].post.std
    assert SimConfig.from_dict(json.load(open(files[1]))) == result.config


def test_json_carries_config_theory_and_histograms(tmp_path, result):
    (path,) = export_data(result, tmp_path / "run.json")
    data = json.load(open(path))
    assert SimConfig.from_dict(data["config"]) == result.config
    assert data["theory"]["chi1"] == result.theory.chi1
    assert data["layers"][2]["grad_histogram"]["counts"] == result.backward[2].grad.histogram.counts.tolist()


def test_npz_histograms(tmp_path, result):
    (path,) = export_data(result, tmp_path / "hist.npz")
    data = np.load(path)
    assert data["post_counts"].shape == (3, 12) and data["grad_edges"].shape == (3, 13)
    np.testing.assert_array_equal(data["pre_counts"][0], result.forward[0].pre.histogram.counts)
    assert SimConfig.from_dict(json.loads(str(data["config_json"]))) == result.config


def test_weights_npz_equal_the_simulated_weights(tmp_path):
    path = export_weights(CONFIG, tmp_path / "w.npz")
    data = np.load(path)
    for i, (w, b) in enumerate(initial_weights(CONFIG), 1):
        np.testing.assert_array_equal(data[f"W{i}"], w)
        np.testing.assert_array_equal(data[f"b{i}"], b)


def test_bad_suffix_and_unwritable_paths_are_clear_and_leave_nothing(tmp_path, result):
    with pytest.raises(ExportError, match="use one of"):
        export_data(result, tmp_path / "stats.xlsx")
    with pytest.raises(ExportError, match="cannot write .*missing-dir"):
        export_data(result, tmp_path / "missing-dir" / "stats.json")
    occupied = tmp_path / "taken.json"  # a folder where the file should go: unwritable even as root
    occupied.mkdir()
    with pytest.raises(ExportError, match="cannot write .*taken.json"):
        export_data(result, occupied)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.json"]


def test_failed_write_leaves_the_old_file_untouched(tmp_path):
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")

    def explode(f):
        f.write(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(target, explode)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.bin"]
