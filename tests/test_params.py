"""params.yaml and the profiles: loading, profiles/<name>.yaml, overrides written with comments kept, `-S` args."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from ms2img.errors import ConfigError
from ms2img.params import apply_overrides, flatten, load_params, profile_overrides, set_cli_args

REPO_ROOT = Path(__file__).resolve().parents[1]

PARAMS = """\
# top comment
cv:
  folds: 5                  # folds comment
  repeats: 1
cnn:
  epochs: 40   # epochs comment
  architecture: compact
baselines:
  rf_trees: [300]
"""


def test_load_params_reads_the_file_and_names_a_missing_one(tmp_path):
    (tmp_path / "params.yaml").write_text(PARAMS)
    params = load_params(tmp_path / "params.yaml")
    assert params["cv"] == {"folds": 5, "repeats": 1} and params["baselines"]["rf_trees"] == [300]
    with pytest.raises(ConfigError, match="parameters file not found"):
        load_params(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("cv: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(tmp_path / "bad.yaml")
    assert load_params(REPO_ROOT / "params.yaml")["labels"]["assays"]  # the repo's own file loads


def test_an_unquoted_unit_names_its_line_and_the_cure(tmp_path):
    """The template invites units such as % inhibition; unquoted, YAML reads % as syntax."""
    (tmp_path / "params.yaml").write_text("labels:\n  units:\n    heat: % inhibition\n")
    with pytest.raises(ConfigError) as refused:
        load_params(tmp_path / "params.yaml")
    message = str(refused.value)
    assert "\n" not in message and "params.yaml, line 3: not valid YAML" in message
    assert "'heat: % inhibition'" in message and 'needs quotes, e.g. TPC: "% inhibition"' in message
    (tmp_path / "params.yaml").write_text('labels:\n  units:\n    heat: "% inhibition"\n')
    assert load_params(tmp_path / "params.yaml")["labels"]["units"] == {"heat": "% inhibition"}
    (tmp_path / "params.yaml").write_bytes("labels:\n  units:\n    heat: µM\n".encode("cp1252"))
    with pytest.raises(ConfigError, match=r"params.yaml, line 3: not UTF-8 .* save it as UTF-8"):
        load_params(tmp_path / "params.yaml")


def test_profile_overrides_reads_profiles_paper_yaml():
    overrides = profile_overrides("paper", REPO_ROOT)
    assert overrides == yaml.safe_load((REPO_ROOT / "profiles" / "paper.yaml").read_text())
    assert overrides["cnn.architecture"] == "paper" and overrides["cv.repeats"] == 3
    assert overrides["baselines.rf_trees"] == [200, 500]
    assert all("." in key for key in overrides)  # dotted params.yaml keys
    params = flatten(load_params(REPO_ROOT / "params.yaml"))
    for key in overrides:  # every override names a key params.yaml has (or a tune.space subtree)
        assert key in params or any(k.startswith(f"{key}.") for k in params), key


def test_unknown_profile_lists_the_known_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown profile 'huge'.*profiles: \['paper'\]"):
        profile_overrides("huge", REPO_ROOT)
    with pytest.raises(ConfigError, match="unknown profile"):
        profile_overrides("paper", tmp_path)  # no profiles/ there


def test_apply_overrides_changes_only_the_named_keys_and_keeps_comments(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(PARAMS)
    changed = apply_overrides(path, {"cv.repeats": 3, "cnn.epochs": 40, "baselines.rf_trees": [200, 500]})
    assert changed == ["cv.repeats", "baselines.rf_trees"]  # epochs already 40: not a change
    text = path.read_text()
    for comment in ("# top comment", "# folds comment", "# epochs comment"):
        assert comment in text
    params = yaml.safe_load(text)
    assert params == {
        "cv": {"folds": 5, "repeats": 3},
        "cnn": {"epochs": 40, "architecture": "compact"},
        "baselines": {"rf_trees": [200, 500]},
    }
    before = path.stat().st_mtime_ns
    assert apply_overrides(path, {"cv.repeats": 3}) == []
    assert path.stat().st_mtime_ns == before  # nothing written when nothing changes
    with pytest.raises(ConfigError, match="no section 'serve'"):
        apply_overrides(path, {"serve.port": 1})


def test_apply_the_paper_profile_to_a_copy_of_params_yaml(tmp_path):
    shutil.copy(REPO_ROOT / "params.yaml", tmp_path / "params.yaml")
    original = load_params(tmp_path / "params.yaml")
    overrides = profile_overrides("paper", REPO_ROOT)
    apply_overrides(tmp_path / "params.yaml", overrides)
    after = load_params(tmp_path / "params.yaml")
    flat_before, flat_after = flatten(original), flatten(after)
    assert after["cnn"]["architecture"] == "paper" and after["tune"]["trials"] == 120
    assert set(after["tune"]["space"]) == set(overrides["tune.space"])
    assert after["tune"]["space"]["filters"] == [16, 32, 48, 64]
    untouched = [k for k in flat_before if not any(k == o or k.startswith(f"{o}.") for o in overrides)]
    assert untouched and all(flat_after[k] == flat_before[k] for k in untouched)
    assert "# ms2img pipeline parameters" in (tmp_path / "params.yaml").read_text()


def test_applied_small_floats_load_back_as_floats(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(PARAMS)
    apply_overrides(path, {"cnn.learning_rate": 1.0e-6, "cnn.ranges": [1.0e-6, 1.0e-4]})
    cnn = yaml.safe_load(path.read_text())["cnn"]  # how YAML reads them back (load_params refuses unknown keys)
    assert cnn["learning_rate"] == 1.0e-6 and cnn["ranges"] == [1.0e-6, 1.0e-4]


def test_set_cli_args_builds_dash_s_key_value():
    overrides = {"cv.repeats": 3, "render.size": "150x140", "baselines.rf_trees": [200, 500], "cnn.lr": 1.0e-6}
    args = set_cli_args(overrides)
    assert args[:6] == ["-S", "cv.repeats=3", "-S", "render.size=150x140", "-S", "baselines.rf_trees=[200, 500]"]
    assert args[6] == "-S" and args[7].startswith("cnn.lr=")
    nested = set_cli_args({"tune.space": {"filters": [16, 64, 16]}, "cnn.architecture": "paper"})
    assert nested == ["-S", "tune.space={filters: [16, 64, 16]}", "-S", "cnn.architecture=paper"]
    for arg in args[1::2]:  # each value parses back to what was set (1e-06 stays a float)
        key, value = arg.split("=", 1)
        assert yaml.safe_load(value) == overrides[key]
    assert set_cli_args({}) == []


def _keys(tree: dict) -> set[str]:
    return {f"{s}.{k}" for s, values in tree.items() for k in values}


def test_the_schema_knows_every_key_the_shipped_files_hold_and_accepts_their_values():
    """One list of keys: params.yaml (and the `ms2img init` template, its byte copy) holds exactly SCHEMA's keys
    bar the optional ones, and the paper profile sets only known keys, to values the schema accepts."""
    from ms2img.params import OPTIONAL, SCHEMA, check_params, value_problem

    shipped = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    assert _keys(shipped) == _keys(SCHEMA) - OPTIONAL
    check_params(shipped)
    for dotted, value in profile_overrides("paper", REPO_ROOT).items():
        section, key = dotted.split(".")
        assert value_problem(SCHEMA[section][key], value) is None, dotted


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (("cv", "fold", 3), "line 5: unknown key cv.fold (did you mean cv.folds?)"),
        (("cnn", "ensemble", 0), "cnn.ensemble must be >= 1; got 0"),
        (("cnn", "cross_fit", "maybe"), "cnn.cross_fit must be true or false (unquoted); got 'maybe'"),
        (("ingest", "blank_subtraction", "false"), "ingest.blank_subtraction must be true or false (unquoted)"),
        (("baselines", "rf_trees", 300), "baselines.rf_trees must be a list, e.g. [a, b] (not empty); got 300"),
        (("baselines", "rf_trees", [0]), "baselines.rf_trees must list whole numbers of trees from 1 to 100,000"),
        (("baselines", "rf_trees", [10**8]), "must list whole numbers of trees from 1 to 100,000; got 100000000"),
        (("baselines", "oplsda_permutations", -5), "baselines.oplsda_permutations must be >= 0; got -5"),
        (("features", "similarity", "cosine"), "features.similarity must be a list"),
        (("render", "x_range", [-100.0, 100.0]), "render.x_range must be [low, high] m/z with 0 <= low < high"),
        (("cv", "seed", -1), "cv.seed must be a whole number from 0 to 4294967295; got -1"),
        (("cv", "folds", True), "cv.folds must be a whole number or auto; got True"),
        (("cnn", "epochs", "abc"), "cnn.epochs must be a whole number; got 'abc'"),
        (("labels", "low", None), "labels.low must be a number; got None"),
        (("trian", "families", ["cnn"]), "unknown key trian (did you mean train?)"),
    ],
)
def test_a_key_or_value_no_stage_can_use_is_refused_on_its_line(tmp_path, edit, said):
    """The fuzzer's params.yaml: a misspelt key was ignored (cv.fold: 3 trained 5 folds), a quoted 'false' switched
    blank subtraction on, cnn.ensemble: 0 was clamped to 1, rf_trees: 300 was a TypeError traceback and a negative
    permutation count failed after the whole cross-validation. Every one is now one line before any work."""
    section, key, value = edit
    params = {"cv": {"folds": 5, "repeats": 1, "seed": 42}, "cnn": {"epochs": 20}}
    params.setdefault(section, {})[key] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.raises(ConfigError) as info:
        load_params(path)
    message = str(info.value)
    assert message.startswith(f"{path}, line ") and said in message and "\n" not in message, message


def test_a_repeated_key_is_refused_on_its_line_as_dvc_refuses_the_file(tmp_path):
    """PyYAML kept the last of two equal keys while `dvc repro` refused the file: ms2img and DVC disagreed."""
    path = tmp_path / "params.yaml"
    path.write_text("cv:\n  folds: 5\n  folds: 3\n")
    with pytest.raises(
        ConfigError, match=r"params.yaml, line 3: not valid YAML: duplicate key 'folds' \(first on line 2\)"
    ):
        load_params(path)
    path.write_text("cv:\n  folds: 5\n")
    assert load_params(path) == {"cv": {"folds": 5}}


def test_an_init_project_and_a_profile_are_held_to_the_schema(tmp_path):
    """`ms2img init` writes `tune.validation_split: auto` (the schema refused it: every command of every init'ed
    project stopped); a profile's misspelt key was written into params.yaml, which no command could then read."""
    from ms2img.commands.init import project_params
    from ms2img.params import check_params

    check_params(yaml.safe_load(project_params(["heat"])))
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "typo.yaml").write_text("cv.repeats: 3\ncnn.epoch: 80\n")
    with pytest.raises(ConfigError, match=r"typo.yaml, line 2: unknown key cnn.epoch \(did you mean cnn.epochs\?\)"):
        profile_overrides("typo", tmp_path)
    (tmp_path / "profiles" / "typo.yaml").write_text("serve.max_rows: '2e5'\n")
    with pytest.raises(ConfigError, match=r"line 1: serve.max_rows must be a whole number; got '2e5'"):
        profile_overrides("typo", tmp_path)


def test_the_schema_lists_every_field_the_explain_and_render_settings_take():
    """ExplainConfig and RenderConfig are built from their params.yaml sections: a field the schema lacks would be
    settable in code and refused in params.yaml (the review found explain.conditional and render.width)."""
    from ms2img.explain.pipeline import ExplainConfig
    from ms2img.params import SCHEMA
    from ms2img.render.config import RenderConfig

    assert set(ExplainConfig.__dataclass_fields__) == set(SCHEMA["explain"])
    assert set(RenderConfig.__dataclass_fields__) <= set(SCHEMA["render"])
