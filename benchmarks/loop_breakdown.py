"""Where the training loop's overhead over the bare step goes (tiny preset).

Usage::

  XLA_FLAGS=--xla_cpu_multi_thread_eigen=false \
    python benchmarks/loop_breakdown.py [--steps 150] [--rounds 6] [--out F.md]

``benchmarks/train_loop.py`` measures the loop of ``train_and_evaluate``
against the bare jitted step; this script takes the difference apart, side
by side in one process, each ratio the median over ``--rounds`` of a
measurement over the one just before it (so that the machine's slow spells
cancel):

1. **Does the step leave a core to the batch producer?** The bare step, then
   the same with a busy-looping process pinned to the last core (it takes
   CPU and nothing else: no interpreter lock, no memory traffic to speak
   of). A step that ran on one core would not slow down.
2. **What in the loop costs?** ``train_and_evaluate`` on synthetic data with
   its batches replaced by: one batch already on the device (the loop's own
   work only: prefetch queue, logging, the step callback), one host batch
   transferred every step (``shard_batch``), and freshly generated batches
   that are not transferred; against the real loop.
3. **What a batch costs**: CPU and wall time per tiny batch to make it
   (synthetic: jitted ``xla`` and ``numpy`` renderers; stored mixtures from
   wav files, with and without the audio cache) and to put it on the
   device.

Linux only (``taskset`` pins the busy loop).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402  pylint: disable=g-import-not-at-top
import train_loop  # noqa: E402  pylint: disable=g-import-not-at-top

from examples.separation import cli  # noqa: E402
from examples.separation import configs  # noqa: E402
from examples.separation import train  # noqa: E402


def _paired(measure, reference, rounds: int) -> tuple[float, float, float]:
  """Medians of ``reference()``, ``measure()`` and their per-round ratio."""
  refs, values = [], []
  for _ in range(rounds):
    refs.append(reference())
    values.append(measure())
  ratio = statistics.median(v / r for v, r in zip(values, refs, strict=True))
  return statistics.median(refs), statistics.median(values), ratio


def busy_core_rows(steps: int, rounds: int) -> list[str]:
  config = train_loop.loop_config("tiny", steps)
  core = max(os.sched_getaffinity(0))

  def with_busy_loop() -> float:
    proc = subprocess.Popen(
      ["taskset", "-c", str(core), sys.executable, "-c", "while True: pass"]
    )
    try:
      time.sleep(0.3)
      return train_loop.bare_seconds_per_step(config, steps)
    finally:
      proc.kill()
      proc.wait()

  bare, busy, ratio = _paired(
    with_busy_loop,
    lambda: train_loop.bare_seconds_per_step(config, steps),
    rounds,
  )
  return [
    "| bare step | bare step, a busy loop on core "
    f"{core} | ratio (median of rounds) |",
    "|---|---|---|",
    f"| {bare * 1e3:.1f} ms | {busy * 1e3:.1f} ms | {ratio:.2f}x |",
  ]


def loop_rows(steps: int, rounds: int, workdir: pathlib.Path) -> list[str]:
  config = train_loop.loop_config("tiny", steps, synthetic_renderer="xla")
  dataset = train.make_dataset(config, "train")
  host_batch = train.train_batch(dataset, config, 0)
  device_batch = train.shard_batch(host_batch, train.make_mesh())
  real_make, real_shard = train.train_batch, train.shard_batch
  variants = {
    "one device batch (no batch work)": (
      lambda *_: host_batch,
      lambda *_: device_batch,
    ),
    "one host batch, transferred every step": (lambda *_: host_batch, None),
    "generated batches, not transferred": (None, lambda *_: device_batch),
    "generated and transferred (the real loop)": (None, None),
  }
  lines = [
    "| loop with | bare ms/step | loop ms/step | loop / bare |",
    "|---|---|---|---|",
  ]
  for i, (name, (make, shard)) in enumerate(variants.items()):
    runs = iter(range(rounds))

    def loop(make=make, shard=shard, i=i, runs=runs) -> float:
      train.train_batch = make or real_make
      train.shard_batch = shard or real_shard
      try:
        return train_loop.loop_seconds_per_step(
          config, steps, str(workdir / f"loop{i}_{next(runs)}")
        )[0]
      finally:
        train.train_batch, train.shard_batch = real_make, real_shard

    bare, value, ratio = _paired(
      loop, lambda: train_loop.bare_seconds_per_step(config, steps), rounds
    )
    lines.append(
      f"| {name} | {bare * 1e3:.1f} | {value * 1e3:.1f} | {ratio:.2f}x |"
    )
  return lines


def batch_cost_rows(tree: pathlib.Path, batches: int = 100) -> list[str]:
  mesh = train.make_mesh()
  files = train_loop.file_data("tiny", tree)
  cases = {
    "synthetic, xla renderer": {"synthetic_renderer": "xla"},
    "synthetic, numpy renderer": {"synthetic_renderer": "numpy"},
    "stored mixtures, audio cache": files,
    "stored mixtures, read from disk": {**files, "audio_cache_mb": 0},
  }
  lines = [
    "| batch | make: wall ms | make: CPU ms | transfer: wall ms | "
    "transfer: CPU ms |",
    "|---|---|---|---|---|",
  ]
  for name, extra in cases.items():
    config = configs.get_config("tiny", progress=False, **extra)
    dataset = train.make_dataset(config, "train")
    # Warm up (compilation; the cache's first reads), then time.
    for step in range(batches):
      jax.block_until_ready(
        train.shard_batch(train.train_batch(dataset, config, step), mesh)
      )
    wall, cpu = time.perf_counter(), time.process_time()
    made = [train.train_batch(dataset, config, s) for s in range(batches)]
    wall2, cpu2 = time.perf_counter(), time.process_time()
    for batch in made:
      jax.block_until_ready(train.shard_batch(batch, mesh))
    wall3, cpu3 = time.perf_counter(), time.process_time()
    per = lambda x: f"{x / batches * 1e3:.2f}"  # noqa: E731
    lines.append(
      f"| {name} | {per(wall2 - wall)} | {per(cpu2 - cpu)} | "
      f"{per(wall3 - wall2)} | {per(cpu3 - cpu2)} |"
    )
  return lines


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=cli.positive_int, default=150)
  parser.add_argument("--rounds", type=cli.positive_int, default=6)
  parser.add_argument("--out", default=None, help="also write to this file")
  args = parser.parse_args(argv)
  if args.steps < 50:
    parser.error(f"--steps {args.steps}: at least 50 (two validations)")
  if shutil.which("taskset") is None:
    parser.error("needs taskset (util-linux) to pin the busy loop")
  if len(os.sched_getaffinity(0)) < 2:
    parser.error("needs at least 2 cores")
  xla_flags = os.environ.get("XLA_FLAGS", "").strip()
  lines = [
    f"Machine: {cli.machine_description()}"
    + (f", XLA_FLAGS={xla_flags!r}" if xla_flags else "")
    + f"; tiny preset, synthetic data; {args.rounds} rounds of "
    f"{args.steps} steps, ratios are medians of per-round ratios.",
    "",
    "1. The bare step with another core busy:",
    "",
  ]
  print("\n".join(lines), flush=True)

  def emit(rows: list[str]) -> None:
    lines.extend(rows)
    print("\n".join(rows), flush=True)

  with tempfile.TemporaryDirectory() as tmp:
    emit(busy_core_rows(args.steps, args.rounds))
    emit(["", "2. The loop with parts of the batch work left out:", ""])
    emit(loop_rows(args.steps, args.rounds, pathlib.Path(tmp)))
    emit(["", "3. What one batch costs (mean of 100):", ""])
    tree = pathlib.Path(tmp) / "tree"
    train_loop.write_file_tree(tree)
    emit(batch_cost_rows(tree))
  if args.out:
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
