"""Config files and tour files: round trips, and errors that name the file, the line, the problem."""

import pytest

from initsim.engine import ConfigError, SimConfig
from initsim.engine.configfile import config_from_toml, config_to_toml
from initsim.engine.presets import parse_preset, presets
from initsim.engine.tours import VIEWS, parse_tour, read_tour, tours


@pytest.mark.parametrize("config", [
    SimConfig(), SimConfig(activation="leaky_relu", activation_params={"slope": 0.2}, init="trunc_normal",
                           init_params={"std": 0.02, "low": -0.04}, bias_init="normal",
                           bias_params={"std": 0.3}, norm="batch", input_width=17, dtype="float64"),
    *[p.config for p in presets().values()],
])
def test_config_round_trip(config):
    config = config.validated()
    assert config_from_toml(config_to_toml(config, "a comment")) == config


SAVED = config_to_toml(SimConfig(activation="leaky_relu", activation_params={"slope": 0.2}).validated())


@pytest.mark.parametrize("edit,line,needle", [
    (("layers = 20", "layer = 20"), 1, "did you mean 'layers'"),
    (("width = 256", 'width = "wide"'), 2, "width: got 'wide'"),
    (("slope = 0.2", "slope = -3.0"), 15, "slope: got -3.0"),
    (('init = "kaiming_normal"', 'init = "he_nrmal"'), 5, "did you mean 'he_normal'"),
    (("seed = 0", "seed = = 0"), 9, "Invalid value"),
])
def test_config_errors_name_file_line_and_problem(edit, line, needle):
    with pytest.raises(ConfigError) as info:
        config_from_toml(SAVED.replace(*edit), "my.toml")
    assert str(info.value).startswith(f"my.toml:{line}: ") and needle in str(info.value)


def test_corrupt_preset_names_the_file_and_line():
    with pytest.raises(ConfigError, match=r"^bad.json: line 3"):
        parse_preset('{"name": "x",\n "title": "y",\n "config": }', "bad.json")
    with pytest.raises(ConfigError, match="bad.json: missing key 'explanation'"):
        parse_preset('{"name": "x", "title": "y", "config": {}}', "bad.json")


def test_shipped_tour_tells_the_classic_story():
    tour = tours()["classic"]
    assert len(tour.steps) == 10
    titles = " ".join(s.title for s in tour.steps)
    for word in ("zeros", "small", "large", "sigmoid", "He vs Xavier", "SELU", "Orthogonal", "BatchNorm",
                 "nn.Linear", "Keras"):
        assert word in titles
    assert all(step.view in VIEWS and step.text and step.look_at for step in tour.steps)
    assert tour.steps[4].compare == ("kaiming_normal", "xavier_normal")
    assert tour.steps[7].config.norm == "batch"


TOUR = '''title = "t"

[[step]]
title = "one"
text = "first"
preset = "zeros"

[[step]]
title = "two"
text = "second"
view = "stats"
[step.config]
layers = 5
'''


def test_tour_parsing_and_overrides():
    tour = parse_tour(TOUR, "t.toml")
    assert [s.title for s in tour.steps] == ["one", "two"]
    assert tour.steps[0].config.init == "zeros" and tour.steps[1].config.layers == 5
    assert tour.steps[1].view == "stats" and tour.steps[0].view == "histograms"


@pytest.mark.parametrize("edit,line,needle", [
    (("layers = 5", "layers = 0"), 13, "layers: got 0"),
    (('view = "stats"', 'view = "stat"'), 11, "did you mean 'stats'"),
    (('text = "second"', 'txt = "second"'), 10, "did you mean 'text'"),
    (('preset = "zeros"', 'preset = "zeroes"'), 6, "did you mean 'zeros'"),
    (('title = "two"', 'title = "two'), 9, ""),
])
def test_tour_errors_name_file_line_and_problem(edit, line, needle):
    with pytest.raises(ConfigError) as info:
        parse_tour(TOUR.replace(*edit), "t.toml")
    assert str(info.value).startswith(f"t.toml:{line}: ") and needle in str(info.value)


def test_unreadable_or_empty_tour(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        read_tour(tmp_path / "missing.toml")
    empty = tmp_path / "empty.toml"
    empty.write_text('title = "nothing"\n')
    with pytest.raises(ConfigError, match="at least one"):
        read_tour(empty)
