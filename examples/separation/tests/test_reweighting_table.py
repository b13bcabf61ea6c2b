"""Tests of the robust-reweighting table script."""

import json
import shutil

import numpy as np
import pytest

from examples.separation import reweighting_table as table_lib
from examples.separation import train


def test_parse_alphas_accepts_fractions():
  assert table_lib.parse_alphas("0,1/15, 0.1,1/5") == [0.0, 1 / 15, 0.1, 0.2]
  for bad in ("", "a", "-1", "1/0"):
    with pytest.raises(ValueError):
      table_lib.parse_alphas(bad)


def test_summarize_percentiles():
  row = table_lib.summarize(np.arange(101.0))
  assert row["n"] == 101 and row["mean"] == 50.0
  assert row["p1"] == 1.0 and row["p50"] == 50.0 and row["p99"] == 99.0
  assert row["std"] == pytest.approx(np.std(np.arange(101.0)))


def test_quick_run_writes_the_table_and_skips_finished_runs(
  tmp_path, monkeypatch, capsys
):
  argv = [
    "--workdir",
    str(tmp_path),
    "--quick",
    "--alphas",
    "0,1/5",
    "--steps",
    "3",
  ]
  assert table_lib.main(argv) == 0
  text = (tmp_path / "table.md").read_text()
  lines = text.splitlines()
  header = next(line for line in lines if line.startswith("| alpha"))
  for column in (
    "mean",
    "std",
    "p1",
    "p5",
    "p10",
    "p25",
    "p50",
    "p75",
    "p90",
    "p95",
    "p99",
  ):
    assert f" {column} " in header
  rows = [line for line in lines if line.startswith(("| 0 ", "| 1/5 "))]
  assert len(rows) == 2
  assert all(len(r.strip("|").split("|")) == 13 for r in rows)
  for alpha in (0.0, 0.2):
    results = json.loads(
      (table_lib.run_dir(tmp_path, alpha) / "results.json").read_text()
    )
    assert results["reweight"] == "robust" and results["alpha"] == alpha
    assert results["loss"] == "snr" and results["steps_done"] == 3
    assert len(results["test_si_sdri_per_utterance_db"]) == 8

  def fail(*args, **kwargs):
    raise AssertionError("finished runs must be skipped")

  monkeypatch.setattr(train, "train_and_evaluate", fail)
  (tmp_path / "table.md").unlink()
  assert table_lib.main(argv) == 0
  assert (tmp_path / "table.md").read_text() == text

  # A finished run trained with other settings is refused before the first
  # run trains. (The runs write no checkpoints, so an interrupted one starts
  # again from scratch.)
  first, second = (table_lib.run_dir(tmp_path, a) for a in (0.0, 0.2))
  shutil.rmtree(first)
  recorded = json.loads((second / "results.json").read_text())
  recorded["hidden"] += 1
  (second / "results.json").write_text(json.dumps(recorded))
  assert table_lib.main(argv) == 1
  err = capsys.readouterr().err
  assert f"hidden={recorded['hidden']}" in err and str(second) in err
  assert not first.exists()
