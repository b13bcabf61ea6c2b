"""Bad command lines fail fast with one line naming the culprit."""

import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(
  os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)


def _run(args, tmp_path):
  env = dict(os.environ, PYTHONPATH=ROOT)
  start = time.time()
  proc = subprocess.run(
    [sys.executable, "-m", "examples.separation.train", *args],
    cwd=tmp_path,
    env=env,
    capture_output=True,
    text=True,
    timeout=120,
  )
  return proc, time.time() - start


@pytest.mark.parametrize(
  "args, culprit",
  [
    (["--loss", "l2"], "--loss"),
    (["--preset", "huge"], "--preset"),
    (["--p", "101"], "--p"),
    (["--p", "-3"], "--p"),
    (["--clip", "fixed"], "--max-norm"),
    (["--clip", "sometimes"], "--clip"),
    (["--steps", "0"], "--steps"),
    (["--num-test", "0"], "--num-test 0"),
    (["--data", "wsj0-2mix"], "--data-root"),
    (
      ["--data", "wsj0-2mix", "--data-root", "/nonexistent/wsj"],
      "/nonexistent/wsj",
    ),
    (["--init-from", "/nonexistent/model"], "/nonexistent/model"),
    (["--schedule", "warmup"], "--schedule"),
    (["--reweight", "focal"], "--reweight"),
    (["--speed-perturbation", "0.1"], "--speed-perturbation"),
    (
      ["--speed-perturbation", "0.4", "--dynamic-mixing"]
      + ["--data", "wsj0-2mix", "--data-root", "."],
      "--speed-perturbation",
    ),
    # Settings that would do nothing.
    (["--dynamic-mixing"], "--dynamic-mixing"),
    (["--synthetic-fraction", "0.5"], "--synthetic-fraction"),
    (
      ["--data", "wsj0-2mix", "--data-root", ".", "--reweight", "class"]
      + ["--synthetic-pretrain-steps", "0", "--synthetic-fraction", "0"],
      "--environmental",
    ),
    # Settings only the optimizer / the training step used to check (after
    # the data was built, as tracebacks).
    (["--schedule", "rocp", "--clip", "none"], "--clip autoclip"),
    (["--schedule", "rop2", "--factor", "2"], "--schedule rop2: factor"),
    (["--reweight", "class", "--class-gammas", "1,2,3"], "class_gammas"),
    (["--reweight", "robust", "--alpha", "nan"], "--reweight robust"),
  ],
)
def test_bad_arguments_exit_fast_with_one_line(args, culprit, tmp_path):
  proc, seconds = _run([*args, "--workdir", str(tmp_path / "w")], tmp_path)
  assert proc.returncode != 0
  lines = proc.stderr.strip().splitlines()
  assert lines[-1].startswith("error:"), proc.stderr
  assert culprit in lines[-1], proc.stderr
  assert "Traceback" not in proc.stderr
  assert seconds < 30
  assert not (tmp_path / "w" / "config.json").exists()


def test_unwritable_workdir(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("not a directory")
  proc, _ = _run(["--workdir", str(blocker / "sub")], tmp_path)
  assert proc.returncode != 0
  assert "--workdir" in proc.stderr and "Traceback" not in proc.stderr


def test_data_errors_are_one_line(tmp_path):
  root = tmp_path / "wsj"
  root.mkdir()  # Exists but has no wsj0-2mix layout.
  proc, _ = _run(
    [
      "--data",
      "wsj0-2mix",
      "--data-root",
      str(root),
      "--workdir",
      str(tmp_path / "w"),
    ],
    tmp_path,
  )
  assert proc.returncode == 1
  assert "Traceback" not in proc.stderr
  assert str(root) in proc.stderr.strip().splitlines()[-1]
