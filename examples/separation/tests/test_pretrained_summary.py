"""The shipped models' summary table: per-kind means and argument errors."""

import json

import pytest

from examples.separation import pretrained_summary
from examples.separation.tests.csv_files import write_csv


def _tts_root(path, names_and_sexes):
  write_csv(
    path / "mixtures.csv",
    ("split", "name", "s1_sex", "s2_sex"),
    [
      {"split": "tt", "name": n, "s1_sex": a, "s2_sex": b}
      for n, a, b in names_and_sexes
    ],
  )
  return path


def _evaluation(path, values, summary):
  write_csv(
    path / "per_utterance.csv",
    ("name", "si_sdri_db"),
    [{"name": n, "si_sdri_db": v} for n, v in values.items()],
  )
  (path / "summary.json").write_text(json.dumps(summary))


def test_rows_hold_the_means_per_pair_kind(tmp_path):
  tts = _tts_root(tmp_path / "tts", [("a", "M", "F"), ("b", "F", "F")])
  check = _tts_root(tmp_path / "check", [("c", "M", "M"), ("d", "F", "M")])
  results = tmp_path / "results"
  _evaluation(
    results / "default" / "tts",
    {"a": 6.0, "b": -2.0},
    {"num_utterances": 2, "si_sdri_db": 2.0, "stoi": 0.75},
  )
  _evaluation(
    results / "synthetic_12k" / "check",
    {"c": -4.0, "d": 8.0},
    {"num_utterances": 2, "si_sdri_db": 2.0},
  )
  assert (
    pretrained_summary.main([str(tts), str(check), "--results", str(results)])
    == 0
  )
  rows = (results / "summary.md").read_text().splitlines()[4:]
  assert len(rows) == 2
  default = rows[0].split(" | ")
  assert default[3:8] == ["2", "+2.00", "+6.00", "-2.00", "-"]
  assert default[-2] == "0.75"
  check_row = rows[1].split(" | ")
  assert "seed-1 check" in check_row[1]
  assert check_row[4:8] == ["+2.00", "+8.00", "-", "-4.00"]


def test_a_missing_build_is_a_one_line_error(tmp_path, capsys):
  with pytest.raises(SystemExit) as exc:
    pretrained_summary.main([str(tmp_path / "nope"), str(tmp_path)])
  assert exc.value.code == 2
  err = capsys.readouterr().err
  assert "tts_root" in err and "mixtures.csv" in err
  assert "Traceback" not in err
