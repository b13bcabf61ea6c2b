"""Training-loop overhead: the loop's time per step / the bare jitted step's.

Usage::

  python benchmarks/train_loop.py [--presets tiny,small]
      [--data synthetic,files] [--steps 300] [--rounds 3]
      [--small-steps 100] [--small-rounds 1] [--out FILE.md]

For each preset and data source it measures, side by side in one process and
interleaved over ``--rounds`` rounds (median reported, robust to a noisy shared
machine; the small preset, whose step is ~30x dearer, over ``--small-rounds``
of ``--small-steps``):

* ``bare``: the jitted train step of ``train.make_train_step`` called on one
  batch that is already on the device, each step's logs fetched with
  ``jax.device_get`` once the next step is dispatched (as the loop does) --
  the speed the loop should run at;
* ``loop``: ``train.train_and_evaluate`` with the preset's settings (data
  generation or wav reading in a background thread, or in ``data_workers``
  worker processes, host-to-device transfer, logging, progress bar off),
  timed per step
  through its ``step_callback`` from step 20 (the first ones compile) to the
  last, less the two validation passes the run makes (``eval_every``), which
  are reported on their own.

Run it with ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false`` to measure both
with one XLA thread per op (the header records ``XLA_FLAGS``). Even then the
step does not leave a core to the batch producer on a 2-core CPU: a process
that busy-loops on the other core slows the bare step ~1.4x
(``benchmarks/loop_breakdown.py``), so whatever CPU a batch costs is taken
from the step.

The ratio ``loop / bare`` is the overhead of the input pipeline and the loop's
bookkeeping, the median over rounds of each round's loop time over the bare
time measured just before it; the target is <= 1.10. The tiny preset is
measured with one worker
process (``data_workers=1``) and with the default background thread (``0``),
and on synthetic data also with the other synthetic renderer (``numpy``
against the preset's ``xla``, in the background thread); the small preset
with one worker process. It also prints what the first
validation pass costs (it compiles the model for the utterance lengths it
meets) and what a later one costs, in steps of the bare loop, to show that
evaluation does not dominate.

``files`` data is a wsj0-2mix-style tree of synthetic utterances written to a
temporary directory (4 s each), read back by the wav loader through the
default audio cache (``Config.audio_cache_mb``: every file decoded once) and,
for the A/B, without it (every chunk read from disk).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top
import numpy as np

from examples.separation import cli
from examples.separation import configs
from examples.separation import data as data_lib
from examples.separation import train

WARMUP_STEPS = 20
# XLA:CPU flag that runs each op on one thread (the step then leaves the
# other core to the batch producer); recorded in the table's header.
ONE_THREAD_FLAG = "--xla_cpu_multi_thread_eigen=false"


def write_file_tree(
  root: pathlib.Path, num: int = 64, seconds: float = 4.0
) -> None:
  """A wsj0-2mix-layout tree of synthetic mixtures (tr and cv, ``num`` each)."""
  import soundfile as sf  # pylint: disable=import-outside-toplevel

  for split, code in (("tr", "train"), ("cv", "validation"), ("tt", "test")):
    gen = data_lib.SyntheticMixtures(code, seed=1)
    rng = np.random.default_rng([7, len(split)])
    count = num if split == "tr" else 8
    batch = gen.generate(rng, count, int(seconds * data_lib.SAMPLE_RATE))
    for kind in ("mix", "s1", "s2"):
      (root / "wav8k" / "min" / split / kind).mkdir(parents=True, exist_ok=True)
    for i in range(count):
      name = f"utt{i:04d}.wav"
      base = root / "wav8k" / "min" / split
      sf.write(
        base / "mix" / name,
        batch["mix"][i],
        data_lib.SAMPLE_RATE,
        subtype="FLOAT",
      )
      for j in range(2):
        sf.write(
          base / f"s{j + 1}" / name,
          batch["sources"][i, j],
          data_lib.SAMPLE_RATE,
          subtype="FLOAT",
        )


def file_data(preset: str, root: pathlib.Path) -> dict:
  """Overrides that read the stored mixtures of the tree at ``root``.

  Not the tiny preset's file-data curriculum, which starts on synthetic
  batches: the preset's file-data refinements are undone (its steps too).
  """
  extra = {
    **configs.without_data_preset(preset),
    "data": "wsj0-2mix",
    "data_root": str(root),
  }
  extra.pop("steps", None)
  return extra


def loop_config(preset: str, steps: int, **extra) -> configs.Config:
  """``preset`` for a measurement of ``steps`` steps (after the warm-up).

  One step more (the last one's logs are read); no progress bar,
  checkpoints or wav examples; two validations of at most 8 examples.
  """
  return configs.get_config(
    preset,
    steps=steps + 1,
    progress=False,
    checkpoint=False,
    num_wav_examples=0,
    num_test_examples=1,
    max_eval_examples=8,
    eval_every=max(WARMUP_STEPS + 1, steps // 3),
    **extra,
  )


def bare_seconds_per_step(config: configs.Config, steps: int) -> float:
  """Median-free timing of ``steps`` bare jitted steps (after warm-up)."""
  mesh = train.make_mesh()
  state = train.create_train_state(config, jax.random.key(config.seed))
  state = jax.device_put(
    state, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  )
  dataset = train.make_dataset(config, "train")
  batch = train.shard_batch(train.train_batch(dataset, config, 0), mesh)
  step_fn = jax.jit(train.make_train_step(config), donate_argnums=0)
  for _ in range(WARMUP_STEPS):
    state, logs = step_fn(state, batch)
    jax.device_get(logs)
  # As the loop does: each step's logs are read after the next step has been
  # dispatched.
  t0 = time.perf_counter()
  pending = None
  for _ in range(steps):
    state, logs = step_fn(state, batch)
    if pending is not None:
      jax.device_get(pending)
    pending = logs
  jax.device_get(pending)
  return (time.perf_counter() - t0) / steps


def loop_seconds_per_step(
  config: configs.Config, steps: int, workdir: str
) -> tuple[float, float, float]:
  """Per-step time in ``train_and_evaluate``; first and second validation."""
  times = []

  def callback(step, logs):
    del logs
    times.append((step, time.perf_counter()))

  train.train_and_evaluate(config, workdir, step_callback=callback)
  at = dict(times)
  # A validation runs after the callback of each multiple of ``eval_every``:
  # the gap to the next callback is that validation plus one step.
  e = config.eval_every
  gaps = [at[k + 1] - at[k] for k in (e, 2 * e)]
  s0, s1 = WARMUP_STEPS, times[-1][0]
  per_step = (at[s1] - at[s0] - sum(gaps)) / (s1 - s0 - len(gaps))
  return per_step, gaps[0] - per_step, gaps[1] - per_step


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--presets", default="tiny,small")
  parser.add_argument("--data", default="synthetic,files")
  parser.add_argument("--steps", type=cli.positive_int, default=300)
  parser.add_argument("--rounds", type=cli.positive_int, default=3)
  parser.add_argument(
    "--small-steps",
    type=cli.positive_int,
    default=100,
    help="steps per measurement of the small preset (a step is ~30x dearer)",
  )
  parser.add_argument(
    "--small-rounds", type=cli.positive_int, default=1, help="its rounds"
  )
  parser.add_argument(
    "--out", default=None, help="also write the table to this markdown file"
  )
  args = parser.parse_args(argv)
  for flag, value in (
    ("--steps", args.steps),
    ("--small-steps", args.small_steps),
  ):
    if value < 50:
      parser.error(f"{flag} {value}: at least 50 (two validations)")
  presets = args.presets.split(",")
  sources = args.data.split(",")
  for preset in presets:
    if preset not in configs.PRESETS:
      parser.error(f"--presets: unknown preset {preset!r}")
  for source in sources:
    if source not in ("synthetic", "files"):
      parser.error(f"--data: {source!r} is not synthetic or files")

  xla_flags = os.environ.get("XLA_FLAGS", "").strip()
  threads = "XLA:CPU one thread per op" if ONE_THREAD_FLAG in xla_flags else ""
  lines = [
    f"Machine: {cli.machine_description()}"
    + (
      f", XLA_FLAGS={xla_flags!r} ({threads or 'as set'})" if xla_flags else ""
    )
    + "; interleaved rounds (median): "
    f"tiny {args.rounds} x {args.steps} steps, small {args.small_rounds} x "
    f"{args.small_steps}; loop = train_and_evaluate "
    f"(prefetch depth {configs.Config.prefetch}), bare = jitted step on a "
    "device batch.",
    "",
    "| preset | data | synthetic renderer | audio cache | data workers | "
    "bare ms/step | loop ms/step | loop / bare | first validation (in bare "
    "steps) | later validation |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ]
  print("\n".join(lines), flush=True)
  with tempfile.TemporaryDirectory() as tmp:
    tree = pathlib.Path(tmp) / "tree"
    if "files" in sources:
      write_file_tree(tree)
    for preset in presets:
      default = configs.get_config(preset).synthetic_renderer
      rows = []
      cache = configs.Config.audio_cache_mb
      for source in sources:
        for workers in (1, 0) if preset == "tiny" else (1,):
          rows.append((source, workers, default, cache))
        if preset == "tiny" and source == "synthetic":
          # The same loop with the other renderer, for the A/B.
          other = "numpy" if default == "xla" else "xla"
          rows.append((source, 0, other, cache))
        if preset == "tiny" and source == "files":
          # Every chunk read from disk, for the A/B.
          rows.append((source, 0, default, 0))
      for source, workers, renderer, cache in rows:
        if source == "synthetic":
          extra = {"synthetic_renderer": renderer}
        else:
          extra = {**file_data(preset, tree), "audio_cache_mb": cache}
        steps, rounds = (
          (args.small_steps, args.small_rounds)
          if preset != "tiny"
          else (args.steps, args.rounds)
        )
        config = loop_config(preset, steps, data_workers=workers, **extra)
        bare, loop, val, val2 = [], [], [], []
        for r in range(rounds):
          bare.append(bare_seconds_per_step(config, steps))
          per_step, first, later = loop_seconds_per_step(
            config,
            steps,
            os.path.join(
              tmp, f"{preset}_{source}_{renderer}_{cache}_{workers}_{r}"
            ),
          )
          loop.append(per_step)
          val.append(first)
          val2.append(later)
        b, l, v, v2 = (statistics.median(x) for x in (bare, loop, val, val2))
        # Each round's loop against the bare step measured just before it:
        # the machine's slow spells then cancel out of the ratio.
        ratio = statistics.median(
          x / y for x, y in zip(loop, bare, strict=True)
        )
        shown = renderer if source == "synthetic" else "-"
        cached = f"{cache} MB" if source == "files" else "-"
        line = (
          f"| {preset} | {source} | {shown} | {cached} | {workers} | "
          f"{b * 1e3:.1f} | "
          f"{l * 1e3:.1f} | {ratio:.2f}x | {v / b:.0f} | {v2 / b:.0f} |"
        )
        lines.append(line)
        print(line, flush=True)
  if args.out:
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
