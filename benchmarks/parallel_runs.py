"""Two training runs: one after the other on all cores, or side by side.

Usage::

  python benchmarks/parallel_runs.py [--preset tiny] [--loss mi] [--steps 400]

The BLSTM recurrence runs its steps one after the other on one thread, so a
training process leaves part of a multi-core CPU idle. This script measures,
in one invocation, the wall time of two identical short training runs
(``train_and_evaluate``, seeds 0 and 1, checkpoints and progress bar off):

* ``sequential``: one process after the other, each free to use every core;
* ``pinned``: both processes at once, each pinned to its own core
  (``os.sched_setaffinity``, with ``XLA_FLAGS`` asking XLA:CPU for one
  thread).

It prints both wall times and their ratio; ``sequential / pinned > 1`` means
the side-by-side layout trains more runs per hour (the
powered sweep is to use it; the current ``sweep.py`` runs one after the other).
Needs at least two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from examples.separation import cli  # noqa: E402

_CHILD = r"""
import json, os, sys, tempfile, time
sys.path.insert(0, {root!r})
from examples.separation import configs, train
config = configs.get_config({preset!r}, loss={loss!r}, steps={steps},
                            seed=int(sys.argv[1]), progress=False,
                            checkpoint=False, num_val_examples=2,
                            num_test_examples=2, num_wav_examples=0,
                            eval_every={steps})
with tempfile.TemporaryDirectory() as workdir:
  t0 = time.time()
  results = train.train_and_evaluate(config, workdir)
print(json.dumps({{"seconds": time.time() - t0,
                  "train_seconds": results["train_seconds_this_run"]}}))
"""


def _launch(code: str, seed: int, core: int | None) -> subprocess.Popen:
  env = dict(os.environ)
  if core is not None:
    env["XLA_FLAGS"] = (
      env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
    ).strip()
  preexec = (
    (lambda: os.sched_setaffinity(0, {core})) if core is not None else None
  )
  return subprocess.Popen(
    [sys.executable, "-c", code, str(seed)],
    env=env,
    stdout=subprocess.PIPE,
    text=True,
    preexec_fn=preexec,
  )


def _result(proc: subprocess.Popen) -> dict:
  out, _ = proc.communicate()
  if proc.returncode:
    raise SystemExit(f"a training process failed (exit {proc.returncode})")
  return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--preset", default="tiny")
  parser.add_argument("--loss", default="mi")
  parser.add_argument("--steps", type=int, default=400)
  args = parser.parse_args(argv)
  cores = sorted(os.sched_getaffinity(0))
  if len(cores) < 2:
    parser.exit(2, "error: needs at least two cores\n")
  code = _CHILD.format(
    root=ROOT, preset=args.preset, loss=args.loss, steps=args.steps
  )
  t0 = time.time()
  seq = [_result(_launch(code, seed, None)) for seed in (0, 1)]
  sequential = time.time() - t0
  t0 = time.time()
  procs = [_launch(code, seed, cores[seed]) for seed in (0, 1)]
  pinned_runs = [_result(p) for p in procs]
  pinned = time.time() - t0
  print(
    f"{args.preset} preset, loss {args.loss}, {args.steps} steps, two runs; "
    f"machine: {cli.machine_description()}."
  )
  print()
  print("| layout | wall s (both runs) | train s per run |")
  print("|---|---|---|")
  print(
    f"| sequential, all cores each | {sequential:.1f} | "
    + " / ".join(f"{r['train_seconds']:.1f}" for r in seq)
    + " |"
  )
  print(
    f"| side by side, one core each | {pinned:.1f} | "
    + " / ".join(f"{r['train_seconds']:.1f}" for r in pinned_runs)
    + " |"
  )
  print()
  print(f"Sequential / side-by-side wall time: {sequential / pinned:.2f}x.")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
