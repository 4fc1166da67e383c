"""`initsim inspect`: its JSON is the inspector's reports of each tensor in natural order, its table
one line a tensor, its layouts, and every unreadable file one line on stderr with exit status 2."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from initsim.cli import main
from initsim.cli.common import EXIT_USAGE
from initsim.engine import get_scheme
from initsim.engine.export import json_safe
from initsim.engine.inspection import inspect_tensor


def sampled(scheme: str, fan_in: int, fan_out: int, seed: int) -> np.ndarray:
    """A (fan_in, fan_out) matrix of the engine's own sampler: numpy's layout."""
    chosen = get_scheme(scheme)
    return chosen.sample(fan_in, fan_out, np.random.default_rng(seed), np.float32, chosen.params())


def mlp(layout: str) -> dict[str, np.ndarray]:
    """A small MLP's tensors, names out of natural order, one weight all zeros (a finding)."""
    def weight(w: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(w.T if layout == "torch" else w)

    return {"layers.10.weight": weight(sampled("xavier_uniform", 64, 32, 2)),
            "layers.2.weight": weight(sampled("kaiming_normal", 96, 64, 1)),
            "layers.2.bias": np.zeros(64, np.float32),
            "layers.10.bias": np.zeros(32, np.float32),
            "layers.11.weight": np.zeros((16, 32) if layout == "torch" else (32, 16), np.float32),
            "norm.weight": np.ones(32, np.float32)}


NATURAL = ["layers.2.bias", "layers.2.weight", "layers.10.bias", "layers.10.weight", "layers.11.weight",
           "norm.weight"]


@pytest.fixture
def torch_file(tmp_path) -> Path:
    path = tmp_path / "model.safetensors"
    save_file(mlp("torch"), str(path))
    return path


def expected_json(tensors: dict[str, np.ndarray], layout: str) -> list[dict]:
    """The inspector's own reports, through JSON as the command prints them."""
    return [json.loads(json.dumps(json_safe(inspect_tensor(name, tensors[name], layout).to_json())))
            for name in NATURAL]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_json_is_the_reports_of_every_tensor_in_natural_order(capsys, torch_file):
    status, out, err = run(capsys, "inspect", str(torch_file), "--json")
    assert status == 0 and err == ""
    data = json.loads(out)
    assert set(data) == {"file", "layout", "tensors"}
    assert data["file"] == str(torch_file) and data["layout"] == "torch"  # safetensors' default
    assert [tensor["name"] for tensor in data["tensors"]] == NATURAL
    assert data["tensors"] == expected_json(mlp("torch"), "torch")
    weight = data["tensors"][1]
    assert (weight["shape"], weight["fan_in"], weight["fan_out"]) == ([64, 96], 96, 64)


def test_layouts_default_by_format_and_the_flag_overrides(capsys, tmp_path, torch_file):
    npz = tmp_path / "model.npz"
    np.savez(npz, **mlp("numpy"))
    status, out, _ = run(capsys, "inspect", str(npz), "--json")
    data = json.loads(out)
    assert status == 0 and data["layout"] == "numpy"
    assert data["tensors"] == expected_json(mlp("numpy"), "numpy")
    # The same torch file read as numpy's layout: a (64, 96) weight has fan_in 64.
    status, out, _ = run(capsys, "inspect", str(torch_file), "--layout", "numpy", "--json")
    data = json.loads(out)
    assert status == 0 and data["layout"] == "numpy"
    assert data["tensors"] == expected_json(mlp("torch"), "numpy")
    assert (data["tensors"][1]["fan_in"], data["tensors"][1]["fan_out"]) == (64, 96)


def test_the_table_is_one_line_a_tensor_then_the_flags(capsys, torch_file):
    status, out, err = run(capsys, "inspect", str(torch_file))
    assert status == 0 and err == ""  # no progress line: stderr is not a terminal
    lines = out.splitlines()
    assert lines[0].startswith(f"{torch_file}: safetensors, {len(NATURAL)} tensors, layout torch")
    assert lines[1].split() == ["tensor", "shape", "kind", "fans", "std", "best", "match", "KS", "flags"]
    tensors = mlp("torch")
    reports = [inspect_tensor(name, tensors[name], "torch") for name in NATURAL]
    rows = lines[2:2 + len(NATURAL)]
    for report, line in zip(reports, rows):
        assert len(line) <= 100
        assert line.startswith(report.name + " ") and f" {report.kind} " in line
        assert f" {'x'.join(map(str, report.shape))} " in line
        assert line.endswith(f" {len(report.flags)}" if report.flags else " -")
        if report.best is not None:
            assert f" {report.best.scheme}" in line and f" {report.best.ks:.3f} " in line
        if report.kind == "weight":
            assert f" {report.fan_in}/{report.fan_out} " in line
    flags = [f"flag: {report.name}: {flag}" for report in reports for flag in report.flags]
    assert len(flags) >= 1  # the zero weight
    assert lines[2 + len(NATURAL):] == flags + [f"{sum(bool(r.flags) for r in reports)} of {len(NATURAL)} "
                                                "tensors flagged"]


def test_the_match_shows_the_parameters_away_from_the_defaults(capsys, tmp_path):
    path = tmp_path / "generic.npz"
    np.savez(path, w=np.random.default_rng(5).uniform(-0.05, 0.05, (64, 64)).astype(np.float32),
             scale=np.full(64, 1.0, np.float32))
    status, out, _ = run(capsys, "inspect", str(path))
    report = inspect_tensor("w", np.load(path)["w"], "numpy")
    assert status == 0 and report.best.scheme == "uniform"
    row = next(line for line in out.splitlines() if line.startswith("w "))
    assert f"uniform(limit={report.best.params['limit']:g})" in row


def test_a_long_match_keeps_its_start_and_its_equivalents():
    from dataclasses import replace

    from initsim.cli.inspect import MATCH_WIDTH, match_text
    from initsim.engine.inspection import Match

    w = sampled("kaiming_uniform", 64, 64, 6)
    report = inspect_tensor("w", w, "numpy")
    long = Match("kaiming_uniform", {"negative_slope": 0.2, "mode": "fan_out", "nonlinearity": "leaky_relu"},
                 0.1, 0.01)
    text = match_text(replace(report, best=long, equivalent=("a", "b")))
    assert len(text) == MATCH_WIDTH and text.startswith("kaiming_uniform(nega") and text.endswith("\u2026 +2")
    assert match_text(replace(report, best=long, equivalent=())) == "kaiming_uniform(negativ\u2026"
    assert match_text(replace(report, best=Match("he_uniform", {}, 0.1, 0.01), equivalent=("a",))) == "he_uniform +1"
    assert match_text(replace(report, best=None)) == "-"


def test_long_names_keep_their_end_and_progress_goes_to_a_terminal(capsys, monkeypatch, tmp_path):
    path = tmp_path / "long.npz"
    long_name = "model.encoder.layers.10.self_attention.query_projection.weight"
    np.savez(path, **{long_name: sampled("xavier_normal", 48, 48, 3)})
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    status, out, err = run(capsys, "inspect", str(path))
    assert status == 0
    row = out.splitlines()[2]
    assert row.startswith("\u2026") and "projection.weight " in row and len(row) <= 100
    assert "tensor 1 of 1" in err


class Payload:
    """Unpickling this creates ``marker``: what any code in a pickle could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def payload_pickle(marker: Path) -> bytes:
    return pickle.dumps(Payload(marker), protocol=4)


def bad_files(tmp_path: Path) -> list[Path]:
    made = {"model.pt": payload_pickle(tmp_path / "ran"), "empty.safetensors": b"",
            "text.npz": b"not a checkpoint\n", "8-exabytes.safetensors": (2**63).to_bytes(8, "little") + b"{}"}
    for name, data in made.items():
        (tmp_path / name).write_bytes(data)
    cut = tmp_path / "cut.safetensors"
    save_file(mlp("torch"), str(cut))
    cut.write_bytes(cut.read_bytes()[:-100])
    (tmp_path / "folder.npy").mkdir()
    os.mkfifo(tmp_path / "fifo.npz")
    return [tmp_path / name for name in made] + [cut, tmp_path / "folder.npy", tmp_path / "fifo.npz",
                                                  tmp_path / "missing.npz"]


def test_unreadable_files_are_one_line_and_status_2(capsys, tmp_path):
    for path in bad_files(tmp_path):
        for json_flag in ((), ("--json",)):
            status, out, err = run(capsys, "inspect", str(path), *json_flag)
            assert status == EXIT_USAGE and out == ""
            assert err.startswith(f"initsim: error: {path}: ") and err.count("\n") == 1, err
    assert not (tmp_path / "ran").exists()


def test_usage_errors(capsys, torch_file):
    for argv in (["inspect"], ["inspect", str(torch_file), "--layout", "keras"],
                 ["inspect", str(torch_file), "extra"]):
        status, out, err = run(capsys, *argv)
        assert status == EXIT_USAGE and out == "" and err.startswith("initsim: error: ") and err.count("\n") == 1


def test_a_real_process_prints_no_traceback(tmp_path):
    pickled = tmp_path / "model.bin"
    pickled.write_bytes(payload_pickle(tmp_path / "ran"))
    done = subprocess.run([sys.executable, "-m", "initsim", "inspect", str(pickled)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == EXIT_USAGE and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "runs arbitrary code" in done.stderr and "save_file" in done.stderr
    assert not (tmp_path / "ran").exists()


def test_a_tensor_the_inspector_cannot_read_is_skipped_with_a_note(capsys, tmp_path):
    path = tmp_path / "complex.npz"
    np.savez(path, w=sampled("xavier_normal", 32, 32, 4), z=np.ones(4, np.complex64))
    status, out, err = run(capsys, "inspect", str(path))
    assert status == 0 and "1 tensor (1 skipped)" in out.splitlines()[0]
    assert err.startswith("initsim: skipped tensor z") and err.count("\n") == 1
    status, out, _ = run(capsys, "inspect", str(path), "--json")
    assert [tensor["name"] for tensor in json.loads(out)["tensors"]] == ["w"]
