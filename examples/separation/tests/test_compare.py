"""The README's main job: both runs train, results are compared and reused."""

import argparse
import json
import shutil

import pytest

from examples.separation import compare


def test_compare_trains_both_runs_and_reuses_them(
  tmp_path, capsys, monkeypatch
):
  # A smaller model than the tiny preset keeps the test fast; the rest of the
  # command (both runs, outputs, summary) is what the README runs.
  real = compare.configs.get_config
  monkeypatch.setattr(
    compare.configs,
    "get_config",
    lambda preset, **kw: real(
      preset,
      **{
        **kw,
        "num_layers": 1,
        "hidden": 8,
        "num_test_examples": 3,
        "num_val_examples": 2,
        "num_wav_examples": 1,
        "progress": False,
      },
    ),
  )
  workdir = tmp_path / "compare"
  # --batch-size: a multiple of the 8 simulated devices (the tiny L_DC
  # preset's batch is 4).
  args = [
    "--steps",
    "3",
    "--losses",
    "mi,dc",
    "--batch-size",
    "8",
    "--workdir",
    str(workdir),
  ]
  assert compare.main(args) == 0
  out = capsys.readouterr().out
  summary = json.loads((workdir / "comparison.json").read_text())
  assert set(summary) == {"mi", "dc"}
  table = (workdir / "comparison.md").read_text()
  for loss, runs in summary.items():
    assert set(runs) == {"autoclip_p10", "no_clipping"}
    assert runs["autoclip_p10"]["clip"] == "autoclip"
    assert runs["no_clipping"]["clip"] == "none"
    for name, run in runs.items():
      assert run["steps_done"] == 3
      assert f"{run['test_si_sdri_db']:.2f}" in out
      assert (workdir / loss / name / "metrics.jsonl").exists()
      assert f"| {loss} | {name} | 3 |" in table

  # A second invocation reads the finished runs instead of retraining.
  done = workdir / "dc" / "no_clipping" / "results.json"
  mtime = done.stat().st_mtime_ns
  assert compare.main(args) == 0
  assert "finished earlier" in capsys.readouterr().out
  assert done.stat().st_mtime_ns == mtime

  # Not when a finished run was trained with other settings: refused before
  # anything trains.
  other = [*args]
  other[other.index("--batch-size") + 1] = "16"
  assert compare.main(other) == 1
  err = capsys.readouterr().err
  assert "batch_size=8 (now 16)" in err and str(workdir / "mi") in err
  assert done.stat().st_mtime_ns == mtime

  # Nor an interrupted run (checkpoints, no results) recorded with other
  # settings: refused before the first run trains, not when its turn comes.
  shutil.rmtree(workdir / "mi" / "autoclip_p10")
  done.unlink()
  recorded = json.loads((done.parent / "config.json").read_text())
  recorded["hidden"] = 16
  (done.parent / "config.json").write_text(json.dumps(recorded))
  assert compare.main(args) == 1
  err = capsys.readouterr().err
  assert "hidden=16 (now 8)" in err and str(done.parent) in err
  assert not (workdir / "mi" / "autoclip_p10").exists()


@pytest.mark.parametrize(
  "args, culprit",
  [
    (["--preset", "huge"], "--preset"),
    (["--losses", "mi,l2"], "--losses"),
    (["--losses", ","], "--losses"),
    (["--clips", "fixed"], "--clips"),
    (["--p", "120"], "--p"),
    (["--steps", "0"], "--steps"),
    (["--batch-size", "0"], "--batch-size"),
    (["--num-test", "0"], "--num-test 0"),
    (
      ["--data", "wsj0-2mix", "--data-root", "/nonexistent/wsj"],
      "/nonexistent",
    ),
    # File data: the synthetic stage must end before the run does.
    (
      ["--data", "wsj0-2mix", "--data-root", ".", "--steps", "5"],
      "--synthetic-pretrain-steps",
    ),
  ],
)
def test_bad_arguments_name_the_flag(args, culprit, tmp_path, capsys):
  with pytest.raises(SystemExit) as e:
    compare.main([*args, "--workdir", str(tmp_path)])
  assert e.value.code == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert err[-1].startswith("error:") and culprit in err[-1]


def test_synthetic_pretrain_steps_reaches_the_runs():
  # The flag named by the error above exists in compare too.
  with pytest.raises(SystemExit) as e:
    compare.main(["--help"])
  assert e.value.code == 0
  runs = compare.run_configs(
    "tiny",
    "mi",
    0,
    5,
    10.0,
    ("autoclip",),
    {"data": "wsj0-2mix", "data_root": ".", "synthetic_pretrain_steps": 2},
  )
  assert [c.synthetic_pretrain_steps for c in runs.values()] == [2]


def test_interrupted_training_is_one_line(tmp_path, capsys, monkeypatch):
  from examples.separation import train  # pylint: disable=import-outside-toplevel

  def interrupted(*args, **kwargs):
    raise KeyboardInterrupt

  monkeypatch.setattr(train, "train_and_evaluate", interrupted)
  code = compare.main(
    ["--losses", "mi", "--clips", "autoclip", "--workdir", str(tmp_path)]
  )
  assert code == 130
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "rerun the same command" in err[0], err


def test_data_description_names_the_file_data_settings():
  args = argparse.Namespace(
    data="wsj0-2mix", data_root="/r", dynamic_mixing=None
  )
  tiny = compare.configs.get_config("tiny", data="wsj0-2mix", data_root="/r")
  assert compare.data_description(args, tiny) == (
    "wsj0-2mix data from /r (12000 synthetic steps first, then dynamic "
    "mixing of distinct talkers + 50% synthetic (any pairs); levels "
    "normalised)"
  )
  plain = compare.configs.get_config(
    "tiny",
    data="wsj0-2mix",
    data_root="/r",
    **compare.configs.without_data_preset("tiny"),
  )
  assert compare.data_description(args, plain) == (
    "wsj0-2mix data from /r (stored mixtures)"
  )
  synthetic = argparse.Namespace(data="synthetic")
  assert compare.data_description(synthetic) == "synthetic two-talker data"
