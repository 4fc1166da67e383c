"""The command line's memory guard: every command refuses a run over --memory-limit-gib in one line
before it allocates, and a long or large run says its estimate on stderr first (the flag raises the
limit, it never silences the estimate) and reports its progress there, stdout keeping the JSON."""

import json

import pytest

from initsim.cli import main
from initsim.engine import SimConfig, memory

BLOBS = ["--task", "blobs", "--samples", "100000", "--task-dim", "4096", "--layers", "1", "--width", "1",
         "--steps", "1"]


# The engine's own estimate of the network the first case runs (a figure that moves with the
# estimate's terms, not one written here).
OVER_DEFAULT = f"{memory.simulation(SimConfig(layers=100, width=2048, batch=1024)).bytes / memory.GIB:.2f} GiB"


@pytest.mark.parametrize("argv,needle", [
    (["simulate", "--layers", "100", "--width", "2048", "--batch", "1024"],
     f"memory: 100 layers x 2048 x 1024 needs about {OVER_DEFAULT}, over the limit of 2.00 GiB (reduce"),
    (["simulate", "--layers", "40", "--width", "1024", "--batch", "1024", "--memory-limit-gib", "0.25"],
     "over the limit of 0.25 GiB"),
    (["weights", "--fan-in", "65536", "--fan-out", "65536", "--out", "never.npy"],
     "one 65536 x 65536 matrix needs about 48.00 GiB"),
    (["weights", "--layers", "100", "--width", "4096", "--out", "never.npz"], "100 layers x 4096"),
    (["train", *BLOBS], "training 1 layers x 1 on 100000 x 4096"),
    (["compare", "--init", "orthogonal,lsuv", "--layers", "40", "--width", "4096", "--batch", "1024",
      "--seeds", "32"], "2 configs x 32 seeds"),
    (["sweep", "--sigma-w2", "0:1:10000", "--sigma-b2", "0:1:10000", "--out", "never.csv"],
     "100,000,000 points"),
    (["export", "--out", "never.png", "--layers", "100", "--width", "2048", "--batch", "1024"], OVER_DEFAULT),
])
def test_a_run_over_the_limit_is_one_line_before_anything_is_allocated(capsys, tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("initsim: error: memory:") and needle in err, err
    assert not any(tmp_path.iterdir())


def test_a_large_run_says_its_estimate_first_and_its_progress_on_stderr(capsys):
    config = SimConfig(layers=30, width=1024, batch=1024)  # about 264 MiB: shown
    assert main(["simulate", "--layers", "30", "--width", "1024", "--batch", "1024",
                 "--memory-limit-gib", "1", "--json"]) == 0
    out, err = capsys.readouterr()
    assert len(json.loads(out)["layers"]) == 30
    lines = err.splitlines()
    assert lines[0] == f"initsim: {memory.simulation(config.validated()).text()}"
    assert lines[-1] == "initsim: layer step 60 of 60"


def test_a_small_run_says_nothing_on_stderr(capsys):
    assert main(["simulate", "--layers", "3", "--width", "16", "--batch", "8", "--json"]) == 0
    assert capsys.readouterr().err == ""
