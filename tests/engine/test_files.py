"""Config files and tour files: round trips, errors that name the file, the line, the problem, and
files that are not configs or tours at all (bounded reads, one short line each)."""

import re

import pytest

from initsim.engine import ConfigError, SimConfig
from initsim.engine.configfile import (MAX_DEPTH, MAX_FILE_BYTES, MESSAGE_LIMIT, config_from_toml, config_to_toml,
                                       from_file, nesting_depth, readable)
from initsim.engine.presets import parse_preset, presets, resource_dir
from initsim.engine.tours import VIEWS, parse_tour, read_tour, tours

from bad_files import MAKERS, make_bad_files


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


@pytest.mark.parametrize("edit,needle", [
    (("layers = 20", "layer = 20"), "did you mean 'layers'"),
    (("width = 256", 'width = "wide"'), "width: got 'wide'"),
    (("slope = 0.2", "slope = -3.0"), "slope: got -3.0"),
    (('init = "kaiming_normal"', 'init = "he_nrmal"'), "did you mean 'he_normal'"),
    (("seed = 0", "seed = = 0"), "Invalid value"),
])
def test_config_errors_name_file_line_and_problem(edit, needle):
    line = SAVED.splitlines().index(edit[0]) + 1
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
    assert [step.isometry for step in tour.steps] == [step.title.startswith("Orthogonal") for step in tour.steps]


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


@pytest.mark.parametrize("value,needle", [("true", "'isometry' is for a spectra step"),
                                          ('"yes"', "'isometry' is true or false, not 'yes'")])
def test_isometry_is_a_spectra_steps_true_or_false(value, needle):
    with pytest.raises(ConfigError) as info:
        parse_tour(TOUR.replace('view = "stats"', f'view = "stats"\nisometry = {value}'), "t.toml")
    assert str(info.value).startswith("t.toml:12: ") and needle in str(info.value)
    spectra = parse_tour(TOUR.replace('view = "stats"', 'view = "spectra"\nisometry = true'), "t.toml")
    assert spectra.steps[1].isometry and not spectra.steps[0].isometry


def test_unreadable_or_empty_tour(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        read_tour(tmp_path / "missing.toml")
    empty = tmp_path / "empty.toml"
    empty.write_text('title = "nothing"\n')
    with pytest.raises(ConfigError, match="at least one"):
        read_tour(empty)


# --- files from users: bounded, one message each -----------------------------------------

def read_any(path):
    """What File > Open would make of ``path``: a tour, a preset's config or a config."""
    def parse(text, source):
        if "[[step]]" in text:
            return parse_tour(text, source)
        if source.endswith(".json"):
            return parse_preset(text, source).config
        return config_from_toml(text, source)
    return from_file(path, parse)


def test_every_bad_file_is_one_short_line_naming_it(tmp_path):
    paths = make_bad_files(tmp_path)
    assert len(paths) >= len(MAKERS) - 3  # a system without pipes or links leaves those out
    for path in paths:
        with pytest.raises(ConfigError) as info:
            read_any(path)
        message = str(info.value)
        assert message.startswith(str(path)), message
        assert "\n" not in message and len(message) <= len(str(path)) + 12 + MESSAGE_LIMIT, message[:300]


@pytest.mark.parametrize("name, needle", [
    ("binary.toml", "not UTF-8 text"), ("deep.toml", f"more than {MAX_DEPTH} levels"),
    ("deep-tables.toml", f"more than {MAX_DEPTH} levels"), ("deep.json", f"more than {MAX_DEPTH} levels"),
    ("50MB.toml", "50.0 MiB: config and tour files are at most 1 MiB"), ("too-large.toml", "at most 1 MiB"),
    ("fifo.toml", "a pipe"), ("zero.toml", "a device"), ("folder.toml", "a folder"),
    ("endless-integer.toml", "thousands of digits"), ("endless-integer.json", "thousands of digits"),
    ("compare-number.toml", "compare: got 5"), ("look-at-list.toml", "'look_at' must be a text"),
    ("list-preset.json", "expected a JSON object"), ("number-config.json", "config: got 5"),
    ("long-unknown-key.toml", "k...k"),
])
def test_bad_files_say_what_is_wrong(tmp_path, name, needle):
    path = tmp_path / name
    MAKERS[name](path)
    with pytest.raises(ConfigError, match=re.escape(needle)):
        read_any(path)


def test_the_depth_scan_skips_strings_and_comments_but_never_undercounts():
    assert nesting_depth('a = "[[[[" # [[[[\nb = [[1], {c = 2}]') == 2
    assert nesting_depth("a = '''[[[\n[[[''' \nb = [1]") == 1
    assert nesting_depth('a = """x\\"""[[["""\nb = [1]') == 1
    # A quote the parser reads as the end of a string ends it here too: what follows is counted.
    assert nesting_depth('a = """x""""[[[\n') == 3
    assert nesting_depth('["\\\\", [[["\\"]]]]') == 4
    # An unclosed string is where TOML and JSON stop parsing.
    assert nesting_depth('a = [1\nb = "x\n[[[[[[') == 1


def test_shipped_files_are_well_within_the_bounds():
    for folder in ("tours", "presets"):
        for entry in resource_dir(folder).iterdir():
            text = entry.read_text(encoding="utf-8")
            assert len(text.encode()) < MAX_FILE_BYTES // 10 and nesting_depth(text) <= 3, entry.name


def test_messages_are_one_line_of_readable_length():
    assert readable("a\nb\x1b[2Jc\u2028d") == "a b [2Jc d"
    assert len(readable("x" * 10_000)) == MESSAGE_LIMIT and readable("x" * 10_000).endswith("\u2026")
