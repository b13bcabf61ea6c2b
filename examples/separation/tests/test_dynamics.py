"""Training dynamics with and without AutoClip (Fig. 1 in miniature)."""

import csv
import json
import math

import pytest

from examples.separation import dynamics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_smoke_dynamics_writes_statistics_summary_and_figure(tmp_path, capsys):
  workdir = tmp_path / "dyn"
  assert (
    dynamics.main(["--smoke", "--no-progress", "--workdir", str(workdir)]) == 0
  )
  capsys.readouterr()

  with open(workdir / "dynamics.csv", newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
  assert tuple(rows[0]) == dynamics.FIELDS
  assert "smoothness" in rows[0]
  names = [name for name, _ in dynamics.RUNS]
  points = dynamics.SMOKE_STEPS // dynamics.SMOKE_EVERY
  for name in names:
    run = [r for r in rows if r["run"] == name]
    assert [int(r["step"]) for r in run] == [
      dynamics.SMOKE_EVERY * (i + 1) for i in range(points)
    ]
    for r in run:
      for key in ("loss", "step_size", "grad_norm", "threshold", "smoothness"):
        value = float(r[key])
        assert math.isfinite(value) and value > 0, (name, key, value)
  jsonl = [
    json.loads(line)
    for line in (workdir / "dynamics.jsonl").read_text().splitlines()
  ]
  assert len(jsonl) == len(rows)
  assert jsonl[0]["smoothness"] == pytest.approx(float(rows[0]["smoothness"]))

  # Same initialisation and batches: the first recorded losses agree.
  first = {r["run"]: float(r["loss"]) for r in rows if r["step"] == "2"}
  assert first[names[0]] == pytest.approx(first[names[1]], rel=1e-5)
  # p = 100 never clips: its threshold is at least every gradient norm.
  for r in rows:
    if r["run"] == "no_clipping_p100":
      assert float(r["threshold"]) >= float(r["grad_norm"]) * (1 - 1e-6)

  summary = json.loads((workdir / "summary.json").read_text())
  for name in names:
    assert -1.0 <= summary[name]["pearson_r"] <= 1.0
    assert summary[name]["num_points"] == points
    assert summary[name]["final_threshold"] > 0
    assert math.isfinite(summary[name]["test_si_sdri_db"])
  assert summary["setup"]["hidden"] == dynamics.SMOKE_HIDDEN
  table = (workdir / "summary.md").read_text()
  for name in names:
    assert f"| {name} | {summary[name]['pearson_r']:.3f} |" in table

  png = (workdir / "dynamics.png").read_bytes()
  assert png[:8] == PNG_MAGIC and len(png) > 20_000


@pytest.mark.parametrize(
  "args, culprit",
  [
    (["--steps", "0"], "--steps"),
    (["--every", "-1"], "--every"),
    (["--hidden", "wide"], "--hidden"),
    (["--steps", "3", "--every", "2"], "--every"),
  ],
)
def test_bad_arguments_give_one_line(args, culprit, tmp_path, capsys):
  workdir = tmp_path / "w"
  with pytest.raises(SystemExit) as exc:
    dynamics.main([*args, "--workdir", str(workdir)])
  assert exc.value.code == 2
  last = capsys.readouterr().err.strip().splitlines()[-1]
  assert last.startswith("python -m examples.separation.dynamics: error:")
  assert culprit in last
  assert not workdir.exists()


def test_unwritable_workdir_gives_one_line(tmp_path, capsys):
  blocker = tmp_path / "a_file"
  blocker.write_text("")
  with pytest.raises(SystemExit) as exc:
    dynamics.main(["--quick", "--workdir", str(blocker / "sub")])
  assert exc.value.code == 2
  last = capsys.readouterr().err.strip().splitlines()[-1]
  assert "--workdir" in last and "not writable" in last


def test_pearson():
  assert dynamics.pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(
    0.9934, abs=1e-4
  )
  assert math.isnan(dynamics.pearson([1, 1, 1], [1, 2, 3]))
  assert math.isnan(dynamics.pearson([1], [1]))
