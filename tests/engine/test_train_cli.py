"""`initsim train` and `initsim compare`: their JSON, their tables and their one-line errors."""

import json

import pytest

from initsim.cli import main
from initsim.engine import SimConfig
from initsim.engine.tasks import make_dataset
from initsim.engine.train import TrainConfig, train

NET = ["--layers", "4", "--width", "24"]
TASK = ["--samples", "200", "--train-batch", "50"]


def run_json(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_train_json_has_every_step_and_the_engine_numbers(capsys):
    data = run_json(capsys, "train", *NET, *TASK, "--steps", "30", "--optimizer", "adam", "--json")
    assert {"config", "train", "data_digest", "steps", "diverged_at", "diverged_layer", "status",
            "verdict"} <= set(data)
    assert data["config"]["input_width"] == 2 and data["train"]["lr"] == 0.001
    assert [s["step"] for s in data["steps"]] == list(range(1, 31))
    assert data["diverged_at"] is None
    first = data["steps"][0]
    assert {"loss", "accuracy", "grad_norm", "grad_data", "update_data", "flat", "probe"} <= set(first)
    assert len(first["update_data"]) == 5 and len(first["probe"]["activation_std"]) == 4
    expected = train(SimConfig(layers=4, width=24),
                     TrainConfig(samples=200, train_batch=50, steps=30, optimizer="adam"))
    assert [s["loss"] for s in data["steps"]] == [e.loss for e in expected.steps]
    assert data["data_digest"] == expected.data_digest
    assert (data["status"], data["verdict"]) == (expected.verdict.kind, expected.verdict.message)


def test_train_json_says_a_net_that_cannot_learn_is_not_learning(capsys):
    data = run_json(capsys, "train", *NET, *TASK, "--init", "zeros", "--steps", "60", "--json")
    assert data["status"] == "not learning"
    assert data["verdict"].startswith("not learning: the loss stays at chance level (0.693, guessing among 2 classes)")


def test_train_json_reports_divergence(capsys):
    data = run_json(capsys, "train", "--layers", "60", "--width", "16", "--activation", "linear",
                    "--init", "normal", "--std", "2", "--steps", "5", "--json")
    assert data["steps"] == [] and data["diverged_at"] == 1 and data["status"] == "diverged"
    assert data["verdict"].startswith(f"diverged at step 1 (first non-finite values in layer {data['diverged_layer']})")


def test_train_table_prints_a_row_every_k_steps_and_the_status(capsys):
    assert main(["train", *NET, *TASK, "--init", "zeros", "--steps", "120", "--every", "40"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[2:-1]] == ["1", "40", "80", "120"]
    assert lines[-1].startswith("not learning: the loss stays at chance level (0.693, guessing among 2 classes), "
                                "0.693 over the last 60 steps; it has not moved for 100 steps: a dead or vanished signal; ")


def test_compare_json_one_run_per_scheme_in_order_with_the_same_data(capsys):
    data = run_json(capsys, "compare", "--init", "zeros,normal:std=0.01,kaiming_normal", *NET,
                    "--batch", "32", "--seeds", "2", "--seed", "5", "--train", *TASK, "--steps", "20",
                    "--json")
    assert [run["init"] for run in data["runs"]] == ["zeros", "normal", "kaiming_normal"]
    assert data["runs"][1]["init_params"]["std"] == 0.01 and data["seeds"] == [5, 6]
    assert {run["data_digest"] for run in data["runs"]} == {make_dataset("spirals", 200).digest}
    for run in data["runs"]:
        assert [layer["index"] for layer in run["layers"]] == [1, 2, 3, 4]
        assert [step["step"] for step in run["steps"]] == list(range(1, 21))
        assert {"loss_median", "loss_min", "loss_max", "accuracy_median", "running"} <= set(run["steps"][0])
        assert {"activation_std_median", "grad_std_min", "grad_std_max"} <= set(run["layers"][0])
    assert data["runs"][0]["layers"][0]["activation_std_max"] == 0


def test_compare_without_training_is_the_simulation_alone(capsys):
    data = run_json(capsys, "compare", "--init", "xavier_normal,kaiming_normal", *NET, "--batch", "32",
                    "--seeds", "1", "--json")
    assert data["train"] is None and all(run["steps"] == [] for run in data["runs"])
    assert main(["compare", "--init", "xavier_normal,kaiming_normal", *NET, "--batch", "32", "--seeds", "2"]) == 0
    out = capsys.readouterr().out
    assert "[2] kaiming_normal" in out and "activation std" in out


@pytest.mark.parametrize("argv,expected", [
    (["train", "--optimizer", "rmsprop"], "optimizer: unknown name 'rmsprop'"),
    (["train", "--task", "spiral2"], "did you mean 'spirals'"),
    (["train", "--lr", "-1"], "lr: got -1.0"),
    (["train", "--steps", "0"], "steps: got 0"),
    (["train", "--task-dim", "3"], "task_dim: spirals is 2-D"),
    (["train", "--batch", "64"], "use --train-batch"),
    (["train", "--steps", "many"], "--steps: got 'many', expected an integer"),
    (["compare", "--init", "a,b,c,d,e"], "init: unknown name 'a'"),
    (["compare", "--init", "he_normal,xavier_normal,zeros,orthogonal,lecun_normal"], "expected 1 to 4 configs"),
    (["compare", "--init", "he_normal", "--seeds", "0"], "seeds: got 0"),
    (["compare", "--init", "he_normal", "--steps", "10"], "add --train"),
    (["compare", "--init", "normal:sdt=2"], "did you mean 'std'"),
    (["compare", "--init", "normal:std=big"], "must be a number"),
    (["compare"], "--init takes the schemes"),
])
def test_bad_flags_give_one_line_and_status_2(capsys, argv, expected):
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("initsim: error:")
    assert expected in lines[0]
    assert captured.out == ""
