"""The runs table: per-kind means, old runs' defaults and argument errors."""

import json

from examples.separation import runs_table
from examples.separation.tests.csv_files import write_csv


def _run(path, values, **results):
  write_csv(
    path / "test_per_utterance.csv",
    ("name", "si_sdri_db"),
    [{"name": n, "si_sdri_db": v} for n, v in values.items()],
  )
  base = dict(steps_done=10, train_seconds_this_run=12.3, seed=0)
  (path / "results.json").write_text(json.dumps({**base, **results}))
  return str(path)


def _build(root, *pairs):
  """A tts2mix build's mixtures.csv: ``(split, name, s1_sex, s2_sex)``."""
  write_csv(
    root / "mixtures.csv",
    ("split", "name", "s1_sex", "s2_sex"),
    [
      dict(zip(("split", "name", "s1_sex", "s2_sex"), pair, strict=True))
      for pair in pairs
    ],
  )


def test_rows_hold_settings_and_means_per_pair_kind(tmp_path, capsys):
  tts = tmp_path / "tts"
  _build(
    tts, ("tt", "a", "M", "F"), ("tt", "b", "F", "F"), ("tr", "c", "M", "M")
  )
  new = _run(
    tmp_path / "new",
    {"a": 6.0, "b": -2.0},
    loss="snr",
    seed=1,
    dynamic_mixing=True,
    distinct_talkers=True,
    normalize_levels=True,
    speed_perturbation=0.0,
    synthetic_fraction=0.5,
    machine="CPU X",
    hidden=128,
  )
  # Recorded before the settings existed: their old defaults (and distinct
  # talkers mean nothing without dynamic mixing).
  old = _run(
    tmp_path / "old", {"a": 4.0, "b": 0.0}, loss="mi", distinct_talkers=True
  )
  out = tmp_path / "table.md"
  argv = [new, old, "--tts-root", str(tts), "--out", str(out)]
  assert runs_table.main(argv) == 0
  assert out.read_text() == capsys.readouterr().out
  rows = [line.split(" | ") for line in out.read_text().splitlines()[4:]]
  assert len(rows) == 2
  assert rows[0][1:] == [
    "snr", "1", "2 x 128", "yes", "yes", "0", "0.5", "10", "12", "CPU X",
    "2", "+2.00", "+6.00", "-2.00", "- |",
  ]  # fmt: skip
  assert rows[1][1:8] == ["mi", "0", "2 x 64", "no", "no", "0", "0"]
  assert rows[1][10:] == ["-", "2", "+2.00", "+4.00", "+0.00", "- |"]


def test_bad_runs_are_one_line_errors(tmp_path, capsys):
  tts = tmp_path / "tts"
  _build(tts, ("tt", "a", "M", "F"))
  missing = tmp_path / "missing"
  assert runs_table.main([str(missing), "--tts-root", str(tts)]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and str(missing) in err[0] and "results.json" in err[0]
  other = _run(tmp_path / "other", {"zz": 1.0}, loss="mi")
  assert runs_table.main([other, "--tts-root", str(tts)]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "'zz'" in err[0] and "--tts-root" in err[0]
  assert runs_table.main([other, "--tts-root", str(tmp_path / "no")]) == 2
  assert "mixtures.csv" in capsys.readouterr().err


def test_scores_of_an_evaluation_inside_each_run(tmp_path, capsys):
  check = tmp_path / "check"
  _build(check, ("tt", "x", "M", "M"), ("tt", "y", "F", "M"))
  run = _run(tmp_path / "run", {"a": 9.0}, loss="dc")
  scores = "eval_check/per_utterance.csv"
  argv = [run, "--tts-root", str(check), "--scores", scores]
  # Not evaluated there yet: one line naming the file.
  assert runs_table.main(argv) == 2
  assert scores in capsys.readouterr().err
  write_csv(
    tmp_path / "run" / scores,
    ("name", "si_sdri_db"),
    [{"name": "x", "si_sdri_db": 1.0}, {"name": "y", "si_sdri_db": 3.0}],
  )
  assert runs_table.main(argv) == 0
  out = capsys.readouterr().out
  assert f"scores from each run's {scores}" in out.splitlines()[0]
  row = out.splitlines()[4].split(" | ")
  assert row[1] == "dc" and row[11:] == ["2", "+2.00", "+3.00", "-", "+1.00 |"]


def test_scores_must_lie_inside_each_run(tmp_path, capsys):
  run = _run(tmp_path / "run", {"a": 1.0}, loss="mi")
  _build(tmp_path, ("tt", "a", "M", "F"))
  for scores in (str(tmp_path / "elsewhere.csv"), "../run/x.csv"):
    argv = [run, "--tts-root", str(tmp_path), "--scores", scores]
    assert runs_table.main(argv) == 2
    assert "--scores" in capsys.readouterr().err
