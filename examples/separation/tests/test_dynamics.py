"""Training dynamics with and without AutoClip (Fig. 1 in miniature)."""

import csv
import json
import math

import pytest

from examples.separation import dynamics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAMES = [name for name, _ in dynamics.RUNS]
STATS = ("loss", "step_size", "grad_norm", "threshold", "smoothness")


def _smoke(workdir, *args):
  return dynamics.main(
    ["--smoke", "--no-progress", "--workdir", str(workdir), *args]
  )


def _mean(xs):
  return sum(xs) / len(xs)


def _run_files(workdir):
  return {
    p: p.stat().st_mtime_ns
    for p in sorted((workdir / "runs").glob("*/*"))
    if p.is_file()
  }


@pytest.fixture(scope="module")
def study2(tmp_path_factory):
  """A two-seed smoke study, shared by the slow tests."""
  workdir = tmp_path_factory.mktemp("dyn2")
  assert _smoke(workdir, "--seeds", "2") == 0
  return workdir


@pytest.mark.slow
def test_smoke_dynamics_writes_statistics_summary_and_figure(study2):
  workdir = study2
  for name in NAMES:
    for seed in (0, 1):
      run_dir = workdir / "runs" / f"{name}_s{seed}"
      assert (run_dir / "records.jsonl").is_file()
      assert json.loads((run_dir / "result.json").read_text())["seed"] == seed
  assert not list((workdir / "runs").glob("*/*.tmp"))

  with open(workdir / "dynamics.csv", newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
  assert tuple(rows[0]) == dynamics.FIELDS
  assert "seed" in rows[0] and "smoothness" in rows[0]
  points = dynamics.SMOKE_STEPS // dynamics.SMOKE_EVERY
  for name in NAMES:
    for seed in ("0", "1"):
      run = [r for r in rows if r["run"] == name and r["seed"] == seed]
      assert [int(r["step"]) for r in run] == [
        dynamics.SMOKE_EVERY * (i + 1) for i in range(points)
      ]
      for r in run:
        for key in STATS:
          value = float(r[key])
          assert math.isfinite(value) and value > 0, (name, seed, key, value)
  assert len(rows) == 2 * len(NAMES) * points
  jsonl = [
    json.loads(line)
    for line in (workdir / "dynamics.jsonl").read_text().splitlines()
  ]
  assert len(jsonl) == len(rows)
  assert jsonl[0]["smoothness"] == pytest.approx(float(rows[0]["smoothness"]))
  assert [r["seed"] for r in jsonl] == [int(r["seed"]) for r in rows]

  # Paired: the same initialisation and batches within a seed, so the first
  # recorded losses agree; other seeds start elsewhere.
  first = {
    (r["run"], r["seed"]): float(r["loss"]) for r in rows if r["step"] == "2"
  }
  for seed in ("0", "1"):
    assert first[NAMES[0], seed] == pytest.approx(
      first[NAMES[1], seed], rel=1e-5
    )
  assert first[NAMES[0], "0"] != first[NAMES[0], "1"]
  # p = 100 never clips: its threshold is at least every gradient norm.
  for r in rows:
    if r["run"] == "no_clipping_p100":
      assert float(r["threshold"]) >= float(r["grad_norm"]) * (1 - 1e-6)

  summary = json.loads((workdir / "summary.json").read_text())
  assert summary["setup"]["hidden"] == dynamics.SMOKE_HIDDEN
  assert summary["setup"]["seeds"] == [0, 1]
  for name in NAMES:
    per_seed = summary["per_seed"][name]
    assert sorted(per_seed) == ["0", "1"]
    for seed, run in per_seed.items():
      assert -1.0 <= run["pearson_r"] <= 1.0
      assert -1.0 <= run["pearson_r_log"] <= 1.0
      assert run["num_points"] == points
      assert run["final_threshold"] > 0
      assert run["median_step_size"] > 0
      assert math.isfinite(run["test_si_sdri_db"])
      # The final loss: the mean of the last 10 % (here one) of the losses.
      losses = [
        float(r["loss"]) for r in rows if r["run"] == name and r["seed"] == seed
      ]
      assert run["final_loss"] == pytest.approx(losses[-1])
    agg = summary["aggregate"][name]
    assert agg["n_seeds"] == 2
    for key in dynamics.AGGREGATED:
      values = [run[key] for run in per_seed.values()]
      mean = _mean(values)
      assert agg[key]["mean"] == pytest.approx(mean)
      assert agg[key]["std"] == pytest.approx(
        math.sqrt(sum((v - mean) ** 2 for v in values))  # n - 1 = 1
      )
  paired = summary["paired_test_si_sdri_db"]
  diffs = {
    seed: summary["per_seed"][NAMES[0]][seed]["test_si_sdri_db"]
    - summary["per_seed"][NAMES[1]][seed]["test_si_sdri_db"]
    for seed in ("0", "1")
  }
  assert paired["per_seed"] == pytest.approx(diffs)
  assert paired["mean"] == pytest.approx(_mean(list(diffs.values())))

  table = (workdir / "summary.md").read_text()
  assert (
    table.splitlines()[0].endswith("--seeds 2`.")
    and "2 seeds (0–1" in table.splitlines()[0]
  )
  for name in NAMES:
    for seed in ("0", "1"):
      r = summary["per_seed"][name][seed]["pearson_r"]
      assert f"| {name} | {seed} | {r:.3f} |" in table
    agg = summary["aggregate"][name]["pearson_r"]
    assert f"| {name} | {agg['mean']:.3f} ± {agg['std']:.3f} |" in table
  assert "r = 0.86 with AutoClip vs 0.62 without" in table
  assert "last 10%" in table

  png = (workdir / "dynamics.png").read_bytes()
  assert png[:8] == PNG_MAGIC and len(png) > 20_000


@pytest.mark.slow
def test_seed_zero_equals_the_single_seed_study(study2, tmp_path):
  single = tmp_path / "dyn1"
  assert _smoke(single) == 0  # --smoke: one seed unless --seeds is given.
  assert sorted(p.name for p in (single / "runs").iterdir()) == sorted(
    f"{name}_s0" for name in NAMES
  )
  rows1 = [
    json.loads(line)
    for line in (single / "dynamics.jsonl").read_text().splitlines()
  ]
  rows2 = [
    json.loads(line)
    for line in (study2 / "dynamics.jsonl").read_text().splitlines()
  ]
  assert rows1 == [r for r in rows2 if r["seed"] == 0]  # exactly
  summary1 = json.loads((single / "summary.json").read_text())
  summary2 = json.loads((study2 / "summary.json").read_text())
  assert summary1["setup"]["seeds"] == [0]
  for name in NAMES:
    assert summary1["per_seed"][name] == {"0": summary2["per_seed"][name]["0"]}
    assert summary1["aggregate"][name]["pearson_r"]["std"] is None  # 1 seed


@pytest.mark.slow
def test_resume_skips_finished_runs_and_rejects_other_settings(
  study2, monkeypatch, capsys
):
  before = _run_files(study2)
  assert len(before) == 2 * 2 * len(NAMES)
  summary = json.loads((study2 / "summary.json").read_text())

  def no_training(*args, **kwargs):
    raise AssertionError("a finished run was trained again")

  with monkeypatch.context() as m:
    m.setattr(dynamics, "run_one", no_training)
    assert _smoke(study2, "--seeds", "2") == 0
  assert "4 finished run(s)" in capsys.readouterr().err
  assert _run_files(study2) == before
  assert json.loads((study2 / "summary.json").read_text()) == summary

  # An unfinished run (no result.json) is trained again, and only it.
  torn = study2 / "runs" / f"{NAMES[0]}_s1"
  (torn / "result.json").unlink()
  trained = []
  run_one = dynamics.run_one

  def counting(config, every, name, rows, progress=True):
    trained.append((name, config.seed))
    return run_one(config, every, name, rows, progress)

  with monkeypatch.context() as m:
    m.setattr(dynamics, "run_one", counting)
    assert _smoke(study2, "--seeds", "2") == 0
  capsys.readouterr()
  assert trained == [(NAMES[0], 1)]
  after = _run_files(study2)
  assert {p: t for p, t in after.items() if p.parent != torn} == {
    p: t for p, t in before.items() if p.parent != torn
  }
  assert (
    json.loads((study2 / "summary.json").read_text())["per_seed"]
    == summary["per_seed"]
  )

  # Other settings: a one-line error naming the run's directory.
  before = _run_files(study2)
  with pytest.raises(SystemExit) as exc:
    _smoke(study2, "--seeds", "2", "--steps", "10")
  assert exc.value.code == 2
  last = capsys.readouterr().err.strip().splitlines()[-1]
  assert last.startswith("python -m examples.separation.dynamics: error:")
  assert str(study2 / "runs" / f"{NAMES[0]}_s0") in last
  assert "steps=8 (now 10)" in last
  assert _run_files(study2) == before


def test_aggregate_hand_computed():
  def run(p, r, r_log, sdri):
    return {
      "p": p,
      "pearson_r": r,
      "pearson_r_log": r_log,
      "test_si_sdri_db": sdri,
    }

  per_seed = {
    "autoclip_p10": {
      "0": run(10.0, 0.5, 0.1, 5.0),
      "1": run(10.0, 0.7, None, 6.0),  # NaN (a constant series): left out.
      "2": run(10.0, 0.9, 0.3, 7.0),
    },
    "no_clipping_p100": {
      "0": run(100.0, 0.2, 0.2, 4.0),
      "1": run(100.0, 0.4, 0.2, 6.0),
      "2": run(100.0, 0.3, 0.2, 5.0),
    },
  }
  out = dynamics.aggregate(per_seed)
  auto, none = (
    out["aggregate"]["autoclip_p10"],
    out["aggregate"]["no_clipping_p100"],
  )
  assert auto["p"] == 10.0 and auto["n_seeds"] == 3
  assert auto["pearson_r"]["mean"] == pytest.approx(0.7)
  assert auto["pearson_r"]["std"] == pytest.approx(0.2)  # sample std
  assert auto["pearson_r_log"]["mean"] == pytest.approx(0.2)
  assert auto["pearson_r_log"]["std"] == pytest.approx(math.sqrt(0.02))
  assert auto["pearson_r_log"]["n"] == 2
  assert auto["test_si_sdri_db"]["mean"] == pytest.approx(6.0)
  assert auto["test_si_sdri_db"]["std"] == pytest.approx(1.0)
  assert none["pearson_r"]["mean"] == pytest.approx(0.3)
  assert none["pearson_r"]["std"] == pytest.approx(0.1)
  assert none["pearson_r_log"]["std"] == pytest.approx(0.0)
  paired = out["paired_test_si_sdri_db"]
  assert paired["difference"] == "autoclip_p10 - no_clipping_p100"
  assert paired["per_seed"] == pytest.approx({"0": 1.0, "1": 0.0, "2": 2.0})
  assert paired["mean"] == pytest.approx(1.0)
  assert paired["std"] == pytest.approx(1.0)

  one = dynamics.mean_std([4.0])
  assert one["mean"] == 4.0 and math.isnan(one["std"]) and one["n"] == 1


def test_summary_markdown_tables(monkeypatch):
  monkeypatch.setattr(dynamics, "_machine", lambda: "test machine")
  per_seed = {
    name: {
      str(s): {
        "p": p,
        "num_points": 4,
        "pearson_r": 0.5 + 0.1 * s,
        "pearson_r_log": 0.4,
        "median_step_size": 0.01,
        "step_size_roughness": 0.1 * (1 + s),
        "final_loss": 0.2,
        "final_threshold": 0.03,
        "test_si_sdri_db": 5.0 + s - (p == 100.0),
      }
      for s in (0, 1)
    }
    for name, p in dynamics.RUNS
  }
  setup = {
    "loss": "mi",
    "hidden": 8,
    "num_layers": 2,
    "steps": 8,
    "every": 2,
    "batch_size": 8,
    "chunk_frames": 16,
    "learning_rate": 2e-3,
    "warmup_steps": 0,
    "lr_decay": "none",
    "lr_final_fraction": 0.1,
    "seeds": [0, 1],
    "command": "python -m examples.separation.dynamics --workdir d",
  }
  summary = {"setup": setup, "per_seed": per_seed}
  summary.update(dynamics.aggregate(per_seed))
  lines = dynamics.summary_markdown(summary).splitlines()
  assert lines[0] == (
    "2 x 8 BLSTM, loss mi, batch 8, 16-frame chunks, Adam 0.002, 8 steps "
    "recorded every 2, 2 seeds (0–1; a seed fixes the initialisation and "
    "the batches of both runs); machine: test machine; command: "
    "`python -m examples.separation.dynamics --workdir d`."
  )
  text = "\n".join(lines)
  assert (
    "| autoclip_p10 | 1 | 0.600 | 0.400 | 0.01 | 0.200 | 0.2 | 0.03 | 6.00 |"
    in text
  )
  assert (
    "| no_clipping_p100 | 0 | 0.500 | 0.400 | 0.01 | 0.100 | 0.2 | - (no "
    in text
  )
  assert (
    "| autoclip_p10 | 0.550 ± 0.071 | 0.400 ± 0.000 | 0.150 ± 0.071 | "
    "5.50 ± 0.71 | 2 |" in text
  )
  assert "mean +1.00 dB (seed 0: +1.00, seed 1: +1.00)" in text


@pytest.mark.parametrize(
  "args, culprit",
  [
    (["--steps", "0"], "--steps"),
    (["--every", "-1"], "--every"),
    (["--hidden", "wide"], "--hidden"),
    (["--seeds", "0"], "--seeds"),
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


def test_roughness_hand_computed():
  # |log 2|, |log 1/2|, |log 1| -> median log 2; constant -> 0.
  assert dynamics.roughness([1.0, 2.0, 1.0, 1.0]) == pytest.approx(math.log(2))
  assert dynamics.roughness([3.0, 3.0, 3.0]) == 0.0
  assert math.isnan(dynamics.roughness([1.0]))
