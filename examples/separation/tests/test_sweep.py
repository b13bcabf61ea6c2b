"""The AutoClip percentile sweep (Table 1 in miniature)."""

import csv
import dataclasses
import json
import math

import pytest

from examples.separation import sweep
from examples.separation.tests import wsj_trees

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _read_csv(path):
  with open(path, newline="", encoding="utf-8") as f:
    return list(csv.DictReader(f))


def _assert_png(path):
  data = path.read_bytes()
  assert data[:8] == PNG_MAGIC and len(data) > 10_000, path


def _table_rows(text):
  """``{p: [cell, ...]}`` from the first markdown table of table.md."""
  rows = {}
  for line in text.split("\n\n")[1].splitlines()[2:]:
    cells = [c.strip() for c in line.strip("|").split("|")]
    rows[cells[0]] = cells[1:]
  return rows


@pytest.mark.slow
def test_smoke_sweep_writes_every_cell_and_resumes(tmp_path, capsys):
  """35 real (tiny) runs through the command line, then a no-op resume."""
  workdir = tmp_path / "sweep"
  assert (
    sweep.main(["--smoke", "--no-progress", "--workdir", str(workdir)]) == 0
  )
  out = capsys.readouterr()
  assert "trained 35 run(s), skipped 0" in out.err

  rows = _read_csv(workdir / "sweep.csv")
  assert tuple(rows[0]) == sweep.CSV_FIELDS
  assert len(rows) == 35
  assert {r["loss"] for r in rows} == set(sweep.LOSSES)
  assert {float(r["p"]) for r in rows} == set(sweep.PS)
  assert {(r["loss"], float(r["p"])) for r in rows} == {
    (l, p) for l in sweep.LOSSES for p in sweep.PS
  }
  for r in rows:
    assert r["status"] == "ok" and r["steps"] == str(sweep.SMOKE_STEPS)
    assert math.isfinite(float(r["test_si_sdri_db"]))
    assert float(r["run_seconds"]) > 0

  table = (workdir / "table.md").read_text(encoding="utf-8")
  header = (
    "| p | " + " | ".join(sweep.LOSS_NAMES[l] for l in sweep.LOSSES) + " |"
  )
  assert table.count(header) == 2  # Ours and the paper's.
  cells = _table_rows(table)
  assert list(cells) == [f"{p:g}" for p in sweep.PS]
  for p, row in cells.items():
    assert len(row) == len(sweep.LOSSES)
    for cell, loss in zip(row, sweep.LOSSES, strict=True):
      want = next(
        float(r["test_si_sdri_db"])
        for r in rows
        if r["loss"] == loss and float(r["p"]) == float(p)
      )
      assert "±" not in cell  # One seed: the mean, no std.
      assert abs(float(cell) - want) <= 0.0051
  assert "| 10 | 10.8 | 11.0 | 10.2 | 11.3 | 10.4 |" in table  # The paper.
  _assert_png(workdir / "sweep.png")

  # Resume: nothing is trained again, no run directory is touched.
  results = sorted((workdir / "runs").glob("*/results.json"))
  assert len(results) == 35
  mtimes = [p.stat().st_mtime_ns for p in results]
  summary = sweep.run_sweep(
    workdir,
    steps=sweep.SMOKE_STEPS,
    seeds=1,
    overrides=sweep.SMOKE_OVERRIDES,
    progress=False,
  )
  assert (summary["trained"], summary["skipped"]) == (0, 35)
  assert [p.stat().st_mtime_ns for p in results] == mtimes
  assert _read_csv(workdir / "sweep.csv") == rows

  # A finished run with another configuration is not silently reused.
  with pytest.raises(sweep.SweepError, match="another configuration"):
    sweep.run_sweep(
      workdir,
      steps=sweep.SMOKE_STEPS + 1,
      seeds=1,
      overrides=sweep.SMOKE_OVERRIDES,
      progress=False,
    )


def _fake_results(config, diverge=()):
  if (config.loss, config.p, config.seed) in diverge:
    from examples.separation import train  # pylint: disable=import-outside-toplevel

    raise train.TrainingError("non-finite loss nan at step 2")
  value = 1.0 + config.p / 100 + config.seed
  return {
    "loss": config.loss,
    "p": config.p,
    "seed": config.seed,
    "steps": config.steps,
    "steps_done": config.steps,
    "test_si_sdri_db": value,
    "test_si_sdr_db": value,
  }


def test_table_statistics_and_diverged_runs(tmp_path, monkeypatch):
  """Two seeds per cell, one diverged run, a p the paper did not run."""
  from examples.separation import train  # pylint: disable=import-outside-toplevel

  diverge = {("mi", 5.0, 1)}
  calls = []

  def fake(config, workdir, **unused):
    del unused
    calls.append(workdir)
    results = _fake_results(config, diverge)
    full = {**json.loads(json.dumps(dataclasses.asdict(config))), **results}
    return full

  monkeypatch.setattr(train, "train_and_evaluate", fake)
  summary = sweep.run_sweep(
    tmp_path,
    seeds=2,
    steps=4,
    losses=("mi", "dc"),
    ps=(5.0, 100.0),
    progress=False,
  )
  assert (summary["trained"], summary["skipped"]) == (8, 0)
  assert summary["diverged"] == 1
  rows = _read_csv(tmp_path / "sweep.csv")
  assert [r["status"] for r in rows].count("diverged") == 1
  diverged = next(r for r in rows if r["status"] == "diverged")
  assert (
    diverged["loss"],
    diverged["p"],
    diverged["seed"],
    diverged["test_si_sdri_db"],
  ) == ("mi", "5", "1", "")
  cells = _table_rows((tmp_path / "table.md").read_text(encoding="utf-8"))
  # dc, p=100: seeds 0 and 1 give 2.0 and 3.0: mean 2.5, sample std
  # 1/sqrt(2), t(0.975, 1 dof) = 12.706: half-width 12.706 / 2 = 6.35.
  assert cells["100"] == ["2.50 ± 6.35", "2.50 ± 6.35"]
  assert cells["5"] == ["1.05 (n=1) (1 diverged)", "1.55 ± 6.35"]
  # The paper has no p = 5: its table lists p = 100 only.
  table = (tmp_path / "table.md").read_text(encoding="utf-8")
  assert "| 100 | 8.5 | 10.2 |" in table
  _assert_png(tmp_path / "sweep.png")
  # Paired: p = 5 minus p = 100 is -0.95 for every seed of dc (no spread);
  # mi has one pair left (seed 1 diverged at p = 5).
  paired = (tmp_path / "paired.md").read_text(encoding="utf-8")
  assert (
    "| L_DC | 5 | 2 | -0.95 | [-0.95, -0.95] | 0 / 2 | lower | – |" in paired
  )
  assert "| L_MI | 5 | 1 | -0.95 | – | 0 / 1 | too few seeds | – |" in paired
  # The diverged run counts as finished.
  again = sweep.run_sweep(
    tmp_path,
    seeds=2,
    steps=4,
    losses=("mi", "dc"),
    ps=(5.0, 100.0),
    progress=False,
  )
  assert (again["trained"], again["skipped"], len(calls)) == (0, 8, 8)

  # --report-only with a third seed: nothing is trained, the outputs are
  # rebuilt from the 8 finished runs.
  (tmp_path / "table.md").unlink()
  (tmp_path / "sweep.png").unlink()
  report = sweep.run_sweep(
    tmp_path,
    seeds=3,
    steps=4,
    losses=("mi", "dc"),
    ps=(5.0, 100.0),
    progress=False,
    report_only=True,
  )
  assert (report["trained"], report["skipped"], len(calls)) == (0, 8, 8)
  assert len(_read_csv(tmp_path / "sweep.csv")) == 8
  cells = _table_rows((tmp_path / "table.md").read_text(encoding="utf-8"))
  assert cells["100"] == ["2.50 ± 6.35", "2.50 ± 6.35"]
  _assert_png(tmp_path / "sweep.png")


@pytest.mark.parametrize(
  "args, culprit",
  [
    (["--seeds", "0"], "--seeds"),
    (["--steps", "-2"], "--steps"),
    (["--steps", "many"], "--steps"),
    (["--losses", "dc,l2"], "--losses"),
    (["--ps", "10,101"], "--ps"),
    (["--ps", "ten"], "--ps"),
    (["--preset", "huge"], "--preset"),
  ],
)
def test_bad_arguments_give_one_line(args, culprit, tmp_path, capsys):
  workdir = tmp_path / "w"
  with pytest.raises(SystemExit) as exc:
    sweep.main([*args, "--workdir", str(workdir)])
  assert exc.value.code == 2
  last = capsys.readouterr().err.strip().splitlines()[-1]
  assert last.startswith("python -m examples.separation.sweep: error:")
  assert culprit in last and "Traceback" not in last
  assert not workdir.exists()


def test_unwritable_workdir_gives_one_line(tmp_path, capsys):
  blocker = tmp_path / "a_file"
  blocker.write_text("")
  with pytest.raises(SystemExit) as exc:
    sweep.main(["--quick", "--workdir", str(blocker / "sub")])
  assert exc.value.code == 2
  last = capsys.readouterr().err.strip().splitlines()[-1]
  assert "--workdir" in last and "not writable" in last


def test_t_interval_hand_computed():
  from examples.separation import sweep_stats

  # mean 2, sample std 1, t(0.975, 2 dof) = 4.3027: 4.3027 / sqrt(3).
  mean, half = sweep_stats.t_interval([1.0, 2.0, 3.0])
  assert mean == 2.0
  assert half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
  assert sweep_stats.t_interval([4.0])[0] == 4.0
  assert math.isnan(sweep_stats.t_interval([4.0])[1])
  assert sweep_stats.t_interval([1.5, 1.5, 1.5]) == (1.5, 0.0)


def test_paired_differences_match_seeds_and_skip_diverged():
  from examples.separation import sweep_stats

  rows = [
    {"loss": "mi", "p": 10.0, "seed": 0, "test_si_sdri_db": 5.0},
    {"loss": "mi", "p": 100.0, "seed": 0, "test_si_sdri_db": 4.0},
    {"loss": "mi", "p": 10.0, "seed": 1, "test_si_sdri_db": None},
    {"loss": "mi", "p": 100.0, "seed": 1, "test_si_sdri_db": 3.0},
    {"loss": "mi", "p": 100.0, "seed": 2, "test_si_sdri_db": 6.0},
    {"loss": "mi", "p": 10.0, "seed": 2, "test_si_sdri_db": 5.5},
    {"loss": "dc", "p": 10.0, "seed": 0, "test_si_sdri_db": 9.0},
  ]
  diffs = sweep_stats.paired_differences(rows, "mi", 10.0, 100.0)
  assert diffs == [1.0, -0.5]
  s = sweep_stats.paired_summary(diffs)
  assert (s["n"], s["above"], s["below"], s["ties"]) == (2, 1, 1, 0)
  assert s["mean"] == 0.25
  assert s["low"] < 0 < s["high"]
  assert sweep_stats.verdict(s) == "not distinguishable"
  assert sweep_stats.verdict(sweep_stats.paired_summary([1.0, 1.2, 1.1])) == (
    "higher"
  )


def test_runs_are_paired_and_the_reference_comes_first():
  runs = sweep.sweep_configs("tiny", seeds=2, steps=None)
  assert len(runs) == 2 * len(sweep.LOSSES) * len(sweep.PS)
  head = 2 * len(sweep.LOSSES) * len(sweep.FIRST_PS)
  assert {c.p for c in runs[:head]} == set(sweep.FIRST_PS)
  assert sweep.FIRST_PS[0] in sweep.PS and sweep.REFERENCE_P in sweep.FIRST_PS
  by_key = {(c.loss, c.p, c.seed): c for c in runs}
  for c in runs:
    # One step budget per loss, and within a seed only p differs.
    assert c.steps == sweep.loss_steps("tiny", c.loss)
    assert c.num_test_examples == sweep.SWEEP_NUM_TEST >= 200
    assert dataclasses.replace(c, p=100.0) == by_key[c.loss, 100.0, c.seed]
  assert sweep.loss_steps("tiny", "wkm") == sweep.SWEEP_STEPS["wkm"]
  assert sweep.loss_steps("tiny", "mi", 7) == 7
  # The sweep's L_WKM runs keep the batch they were trained with, whatever
  # the preset's (results/sweep must stay one configuration).
  assert {c.batch_size for c in runs if c.loss in ("dc", "wkm")} == {8}
  assert sweep.loss_steps("tiny", "dc") == 1300


@pytest.mark.slow
def test_workers_train_every_run_once(tmp_path):
  """Two worker processes share the runs through claim files."""
  summary = sweep.run_sweep(
    tmp_path,
    seeds=2,
    steps=sweep.SMOKE_STEPS,
    losses=("mi",),
    ps=(10.0, 100.0),
    overrides=sweep.SMOKE_OVERRIDES,
    workers=2,
    progress=False,
    poll_seconds=0.5,
  )
  assert (summary["trained"], summary["skipped"]) == (4, 0)
  rows = _read_csv(tmp_path / "sweep.csv")
  assert [(r["p"], r["seed"]) for r in rows] == [
    ("10", "0"),
    ("100", "0"),
    ("10", "1"),
    ("100", "1"),
  ]
  logs = [p.read_text() for p in sorted((tmp_path / "logs").glob("*.log"))]
  assert len(logs) == 2
  # Every run was trained by exactly one worker.
  trained = [
    line.split()[1]
    for log in logs
    for line in log.splitlines()
    if line.endswith(": training")
  ]
  assert sorted(trained) == sorted(
    f"mi_p{p}_s{s}:" for p in (10, 100) for s in (0, 1)
  )
  assert "L_MI | 10 | 2 |" in (tmp_path / "paired.md").read_text()
  # The same runs in one process (its XLA free to use both cores) give the
  # same results: the worker layout does not change a run.
  again = sweep.run_sweep(
    tmp_path / "one",
    seeds=2,
    steps=sweep.SMOKE_STEPS,
    losses=("mi",),
    ps=(10.0, 100.0),
    overrides=sweep.SMOKE_OVERRIDES,
    progress=False,
  )
  assert [r["test_si_sdri_db"] for r in again["rows"]] == pytest.approx(
    [r["test_si_sdri_db"] for r in summary["rows"]], abs=1e-4
  )


@pytest.mark.slow
def test_sweep_on_a_wsj0_2mix_tree(tmp_path, capsys):
  root = tmp_path / "tts"
  wsj_trees.tiny_wsj_tree(root)
  workdir = tmp_path / "sweep"
  args = ["--smoke", "--no-progress", "--losses", "mi", "--ps", "10,100"]
  args += ["--data", "wsj0-2mix", "--data-root", str(root)]
  assert sweep.main([*args, "--workdir", str(workdir)]) == 0
  rows = _read_csv(workdir / "sweep.csv")
  # --smoke tests on the split's first utterance.
  assert [(r["p"], r["num_test"]) for r in rows] == [("10", "1"), ("100", "1")]
  table = (workdir / "table.md").read_text(encoding="utf-8")
  assert table.startswith(
    f"Test SI-SDRi [dB] on the wsj0-2mix test split ({root})"
  )
  # Another path to the same corpus resumes (data_root is not compared).
  moved = tmp_path / "moved"
  root.rename(moved)
  capsys.readouterr()
  assert sweep.main([*args[:-1], str(moved), "--workdir", str(workdir)]) == 0
  assert "trained 0 run(s), skipped 2" in capsys.readouterr().err


@pytest.mark.parametrize(
  "args, culprit",
  [
    (["--data", "wsj0-2mix"], "needs --data-root"),
    (["--data", "wsj0-2mix", "--data-root", "/nonexistent"], "--data-root"),
    (["--data-root", "/tmp"], "--data-root"),
  ],
)
def test_bad_data_gives_one_line(args, culprit, tmp_path, capsys):
  workdir = tmp_path / "w"
  with pytest.raises(SystemExit) as exc:
    sweep.main([*args, "--workdir", str(workdir)])
  assert exc.value.code == 2
  last = capsys.readouterr().err.strip().splitlines()[-1]
  assert culprit in last and "Traceback" not in last
  assert not workdir.exists()


def test_tree_without_a_test_split_gives_one_line(tmp_path, capsys):
  root = tmp_path / "tts"
  wsj_trees.tiny_wsj_tree(root)
  import shutil  # pylint: disable=import-outside-toplevel

  shutil.rmtree(root / "wav8k" / "min" / "tt")
  with pytest.raises(SystemExit):
    sweep.main(
      [
        "--data",
        "wsj0-2mix",
        "--data-root",
        str(root),
        "--workdir",
        str(tmp_path / "w"),
      ]
    )
  last = capsys.readouterr().err.strip().splitlines()[-1]
  assert "--data-root" in last and "Traceback" not in last


def test_set_parses_config_fields_and_names_bad_ones():
  assert sweep.parse_setting("adam_b2=0.9") == ("adam_b2", 0.9)
  assert sweep.parse_setting("hidden=32") == ("hidden", 32)
  assert sweep.parse_setting("data-workers=0") == ("data_workers", 0)
  assert sweep.parse_setting("checkpoint=false") == ("checkpoint", False)
  assert sweep.parse_setting("max_eval_examples=5") == ("max_eval_examples", 5)
  for text, match in (
    ("adam_b3=1", "Config field"),
    ("hidden", "FIELD=VALUE"),
    ("adam_b2=abc", "not a valid float for adam_b2"),
    ("checkpoint=maybe", "not a valid bool"),
    ("p=3", "set by the sweep"),
  ):
    with pytest.raises(ValueError, match=match):
      sweep.parse_setting(text)
