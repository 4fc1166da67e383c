"""Data exports: content equals the run, the config travels with it, writes are all or nothing (a
file and its sidecar, a folder of slides) with the user's umask, and a place that takes no files
is found before anything is rendered."""

import csv
import errno
import json
import os
import re
import stat

import numpy as np
import pytest

from initsim.engine import SimConfig, initial_weights, simulate
from initsim.engine.export import (ExportError, atomic_write, check_writable, export_data,
                                   export_weights, write_into_folder, write_text)

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


def disk_full_after(count: int, monkeypatch) -> None:
    """Every file opened for writing after the first ``count`` fails to take its data (ENOSPC)."""
    opened = []
    real_fdopen = os.fdopen

    def fdopen(fd, mode="r", *args, **kwargs):
        file = real_fdopen(fd, mode, *args, **kwargs)
        opened.append(file)
        if "w" in mode and len(opened) > count:
            file.write = lambda data: (_ for _ in ()).throw(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
        return file

    monkeypatch.setattr(os, "fdopen", fdopen)


def test_a_csv_goes_with_its_sidecar_or_not_at_all(tmp_path, result, monkeypatch):
    disk_full_after(1, monkeypatch)
    with pytest.raises(ExportError, match=r"cannot write .*stats.config.json: No space left"):
        export_data(result, tmp_path / "stats.csv")
    assert list(tmp_path.iterdir()) == []


def test_a_rename_failing_between_two_takes_back_the_first_new_file(tmp_path, result, monkeypatch):
    renames = []
    real_replace = os.replace

    def replace(source, target):
        renames.append(target)
        if len(renames) == 2:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(ExportError, match="cannot write .*stats.config.json: Input/output error"):
        export_data(result, tmp_path / "stats.csv")
    assert len(renames) == 2 and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, result, umask, mode):
    previous = os.umask(umask)
    try:
        files = export_data(result, tmp_path / "stats.csv") + [write_text(tmp_path / "a.toml", "x = 1\n")]
    finally:
        os.umask(previous)
    assert [stat.S_IMODE(path.stat().st_mode) for path in files] == [mode] * 3


def test_a_folder_of_files_is_written_whole_or_not_made(tmp_path, monkeypatch):
    folder = tmp_path / "made" / "slides"
    disk_full_after(2, monkeypatch)
    with pytest.raises(ExportError, match="03.png: No space left"):
        write_into_folder(folder, {f"0{i}.png": b"png" for i in range(1, 5)})
    assert list(tmp_path.iterdir()) == []
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "old.png").write_bytes(b"old")
    with pytest.raises(ExportError):
        write_into_folder(kept, {f"0{i}.png": b"png" for i in range(1, 5)})
    assert [p.name for p in kept.iterdir()] == ["old.png"]
    monkeypatch.undo()
    assert [p.name for p in write_into_folder(folder, {"01.png": b"png"})] == ["01.png"]


def test_the_check_before_rendering_says_why_a_place_takes_no_files_and_leaves_nothing(tmp_path):
    (tmp_path / "a file").write_text("")
    for path, why in ((tmp_path / "a file" / "x.png", "Not a directory"),
                      (tmp_path / "missing" / "x.png", "No such file")):
        with pytest.raises(ExportError, match=f"^cannot write {re.escape(str(path))}: {why}"):
            check_writable(path)
    with pytest.raises(ExportError, match="Not a directory"):
        check_writable(tmp_path / "a file" / "slides", folder=True)
    check_writable(tmp_path / "x.png")
    check_writable(tmp_path / "new" / "deeper" / "slides", folder=True)  # made where tmp_path is
    assert [p.name for p in tmp_path.iterdir()] == ["a file"]
