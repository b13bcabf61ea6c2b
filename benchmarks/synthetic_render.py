"""Synthetic training batches: the numpy renderer against the jitted one.

Usage::

  python benchmarks/synthetic_render.py [--batches 100] [--rounds 5]
      [--out FILE.md]

For the tiny preset's batch (8 mixtures of 100 frames) and the small one's
(16 of 200 frames) it times ``SyntheticMixtures.batch_at`` with
``renderer='numpy'`` and ``renderer='xla'`` side by side in one process,
interleaved over ``--rounds`` rounds (median reported): wall time and process
CPU time per batch (the jitted program may use more than one thread; CPU time
is what a background producer takes from the training step), their ratios,
and how closely the two renderers agree (SNR of the XLA sources against the
numpy ones over the timed batches).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top

from examples.separation import cli
from examples.separation import configs
from examples.separation import data as data_lib
from examples.separation import signal


def _time(ds: data_lib.SyntheticMixtures, batch: int, steps: range):
  w0, c0 = time.perf_counter(), time.process_time()
  for step in steps:
    ds.batch_at(step, batch)
  n = len(steps)
  return (time.perf_counter() - w0) / n, (time.process_time() - c0) / n


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
  parser.add_argument("--batches", type=cli.positive_int, default=100)
  parser.add_argument("--rounds", type=cli.positive_int, default=5)
  parser.add_argument("--out", default=None, help="also write the table here")
  args = parser.parse_args(argv)

  lines = [
    f"Machine: {cli.machine_description()}; median of {args.rounds} "
    f"interleaved rounds of {args.batches} batches each.",
    "",
    "| preset batch | numpy wall ms | xla wall ms | wall ratio | "
    "numpy CPU ms | xla CPU ms | CPU ratio | xla vs numpy SNR (dB) |",
    "|---|---|---|---|---|---|---|---|",
  ]
  print("\n".join(lines), flush=True)
  for preset in ("tiny", "small"):
    cfg = configs.PRESETS[preset]
    batch = cfg["batch_size"]
    chunk = signal.frames_to_samples(cfg["chunk_frames"])
    ds = {
      r: data_lib.SyntheticMixtures("train", chunk_samples=chunk, renderer=r)
      for r in data_lib.RENDERERS
    }
    # Warm-up (compiles the jitted renderer for this shape) and agreement.
    err = ref = 0.0
    for step in range(5):
      a = ds["numpy"].batch_at(step, batch)["sources"]
      b = ds["xla"].batch_at(step, batch)["sources"]
      err += float(np.sum((a.astype(np.float64) - b) ** 2))
      ref += float(np.sum(a.astype(np.float64) ** 2))
    snr = 10 * np.log10(ref / max(err, 1e-30))
    times = {r: ([], []) for r in ds}
    for k in range(args.rounds):
      steps = range(100 + k * args.batches, 100 + (k + 1) * args.batches)
      for r in ds:
        wall, cpu = _time(ds[r], batch, steps)
        times[r][0].append(wall)
        times[r][1].append(cpu)
    (nw, nc), (xw, xc) = (
      tuple(statistics.median(v) * 1e3 for v in times[r])
      for r in ("numpy", "xla")
    )
    line = (
      f"| {preset} {batch} x {cfg['chunk_frames']} frames | {nw:.2f} | "
      f"{xw:.2f} | {nw / xw:.2f}x | {nc:.2f} | {xc:.2f} | {nc / xc:.2f}x | "
      f"{snr:.0f} |"
    )
    lines.append(line)
    print(line, flush=True)
  if args.out:
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
