"""The recipes study: argument errors, pair kinds and the per-kind means."""

import pathlib

import pytest

from examples.separation import configs
from examples.separation import recipes
from examples.separation import train
from examples.separation.tests.csv_files import write_csv


def test_every_recipe_is_a_valid_tiny_mi_config(tmp_path):
  for name in recipes.RECIPES:
    config = recipes.recipe_config(name, str(tmp_path), 40)
    assert config.loss == "mi" and config.preset == "tiny"
    if recipes.RECIPES[name][1].get("data") == "tts":
      assert config.data == "wsj0-2mix" and config.data_root == str(tmp_path)
    else:
      assert config.data == "synthetic"
    if config.init_from is not None:  # a model shipped in the repository
      assert (pathlib.Path(config.init_from) / "params.msgpack").is_file()
  assert (
    recipes.recipe_config("synthetic_12k", "x", 40).num_test_examples == 100
  )
  assert isinstance(recipes.recipe_config("synthetic", "x", 40), configs.Config)


def test_breakdown_by_the_talkers_sexes(tmp_path):
  write_csv(
    tmp_path / "mixtures.csv",
    ("split", "name", "s1_sex", "s2_sex"),
    [
      {"split": "tt", "name": "a", "s1_sex": "M", "s2_sex": "F"},
      {"split": "tt", "name": "b", "s1_sex": "F", "s2_sex": "F"},
      {"split": "tt", "name": "c", "s1_sex": "F", "s2_sex": "M"},
      {"split": "tr", "name": "d", "s1_sex": "M", "s2_sex": "M"},
    ],
  )
  kinds = recipes.pair_kinds(tmp_path)
  assert kinds == {"a": "FM", "b": "FF", "c": "FM"}
  write_csv(
    tmp_path / "per_utterance.csv",
    ("name", "si_sdri_db"),
    [
      {"name": "a", "si_sdri_db": 6.0},
      {"name": "b", "si_sdri_db": -3.0},
      {"name": "c", "si_sdri_db": 4.0},
    ],
  )
  out = recipes.breakdown(tmp_path / "per_utterance.csv", kinds)
  assert out["all"] == pytest.approx(7.0 / 3)
  assert out["FM"] == pytest.approx(5.0) and out["num_FM"] == 2
  assert out["FF"] == pytest.approx(-3.0) and out["MM"] is None


@pytest.mark.parametrize(
  "argv, message",
  [
    (["--recipes", "nope"], "--recipes 'nope'"),
    ([], "is not a tts2mix build"),
  ],
)
def test_bad_arguments_are_one_line_errors(tmp_path, capsys, argv, message):
  with pytest.raises(SystemExit) as exc:
    recipes.main(
      ["--tts-root", str(tmp_path / "missing"), "--workdir", str(tmp_path)]
      + argv
    )
  assert exc.value.code == 2
  err = capsys.readouterr().err
  assert message in err and "Traceback" not in err


def test_interrupted_run_with_other_settings_is_refused_up_front(
  tmp_path, capsys, monkeypatch, interrupted_run
):
  tts_root = tmp_path / "tts"
  tts_root.mkdir()
  (tts_root / "voices.json").write_text("{}")
  write_csv(
    tts_root / "mixtures.csv",
    ("split", "name", "s1_sex", "s2_sex"),
    [{"split": "tt", "name": "a", "s1_sex": "M", "s2_sex": "F"}],
  )
  workdir = tmp_path / "runs"
  # The second recipe's workdir holds an interrupted run of a smaller model.
  small = configs.get_config(
    "tiny",
    num_layers=1,
    hidden=16,
    steps=4,
    checkpoint_every=2,
    eval_every=4,
    num_val_examples=2,
    num_test_examples=2,
    progress=False,
  )
  interrupted_run(small, workdir / "synthetic_any", at_step=3)

  def fail(*args, **kwargs):
    raise AssertionError("nothing may train before every run is checked")

  monkeypatch.setattr(train, "train_and_evaluate", fail)
  capsys.readouterr()
  argv = ["--tts-root", str(tts_root), "--workdir", str(workdir)]
  assert recipes.main([*argv, "--recipes", "synthetic,synthetic_any"]) == 1
  err = capsys.readouterr().err
  assert "hidden=16 (now 64)" in err and "synthetic_any" in err
  assert not (workdir / "synthetic").exists()
