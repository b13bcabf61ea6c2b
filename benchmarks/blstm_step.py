# Copyright 2024 The autoclip-optax Authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""Training-step benchmark of the BLSTM separators (fwd + bwd + Adam).

Usage::

  python benchmarks/blstm_step.py [--quick] [--configs 2x64,2x128,2x300]

For each configuration (``LAYERSxHIDDEN``; batch / frames default to the
values below) it times a full jitted training step -- forward, backward and an
Adam update -- of a BLSTM stack over ``[B, T, 129]`` features followed by a
2-source sigmoid mask head and the same mask-inference style L1 loss
``mean |mask * |X| - target|``, for:

* ``ours``: ``examples.separation.models.BLSTM`` (hoisted input projections,
  both directions in one scan, custom VJP),
* ``ours+stft``: the full ``models.Separator(head='mi')`` starting from the
  mixture waveform (adds STFT + features; informational),
* ``flax``: Flax NNX's own ``nnx.Bidirectional(nnx.RNN(nnx.OptimizedLSTMCell))``
  stacks (``--flax-cell lstm``: ``nnx.LSTMCell``),
* ``torch``: ``torch.nn.LSTM(bidirectional=True)`` + ``torch.optim.Adam``
  (skipped, with the reason, when torch is not importable),
* ``cudnn``: ``jax.experimental.rnn.lstm`` (cuDNN), only when jax sees a GPU.

Every jax model is an ``nnx.Module`` stepped as a pure function of its
parameters (``nnx.split`` / ``nnx.merge`` under ``jax.jit``, the same jitted
``value_and_grad`` + ``optax.adam`` step for all of them).

Repetitions are interleaved (one step of each implementation per round) and
the median is reported, to be robust to noisy shared machines.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import flax  # pylint: disable=g-import-not-at-top
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from examples.separation import models
from examples.separation import signal

NUM_BINS = signal.NUM_BINS
NUM_SOURCES = 2
# name -> (layers, hidden, batch, frames)
CONFIGS = {
  "2x64": (2, 64, 8, 100),
  "2x128": (2, 128, 16, 200),
  "2x300": (2, 300, 25, 400),
  "4x600": (4, 600, 25, 400),
}
DEFAULT_CONFIGS = "2x64,2x128,2x300"


def cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown"


def num_cores() -> int:
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:
    return os.cpu_count() or 1


def l1_mask_loss(masks: jax.Array, mag: jax.Array, target: jax.Array):
  """``masks [B, S, T, F]``, ``mag [B, T, F]``, ``target [B, S, T, F]``."""
  return jnp.mean(jnp.abs(masks * mag[:, None] - target))


class MaskHead(nnx.Module):
  """Sigmoid mask head ``[..., 2H] -> [..., S * F]``."""

  def __init__(self, hidden: int, *, rngs: nnx.Rngs):
    self.dense = nnx.Linear(2 * hidden, NUM_SOURCES * NUM_BINS, rngs=rngs)

  def __call__(self, h):
    return nnx.sigmoid(self.dense(h))


class OursMI(nnx.Module):
  """models.BLSTM + sigmoid mask head (time-major inside)."""

  def __init__(self, num_layers: int, hidden: int, *, rngs: nnx.Rngs):
    self.blstm = models.BLSTM(
      NUM_BINS, num_layers, hidden, time_major=True, rngs=rngs
    )
    self.head = MaskHead(hidden, rngs=rngs)

  def __call__(self, feats):
    batch, frames, bins = feats.shape
    m = self.head(self.blstm(jnp.swapaxes(feats, 0, 1)))
    return jnp.transpose(
      m.reshape(frames, batch, NUM_SOURCES, bins), (1, 2, 0, 3)
    )


FLAX_CELLS = {"optimized": nnx.OptimizedLSTMCell, "lstm": nnx.LSTMCell}


class FlaxMI(nnx.Module):
  """Flax NNX's bidirectional RNN stack + sigmoid mask head."""

  def __init__(
    self,
    num_layers: int,
    hidden: int,
    cell: str = "optimized",
    *,
    rngs: nnx.Rngs,
  ):
    cell_cls = FLAX_CELLS[cell]

    def rnn(d_in):
      return nnx.RNN(cell_cls(d_in, hidden, rngs=rngs), rngs=rngs)

    # Bidirectional runs the backward RNN reversed (keeping the order).
    self.layers = nnx.List(
      [
        nnx.Bidirectional(
          rnn(NUM_BINS if i == 0 else 2 * hidden),
          rnn(NUM_BINS if i == 0 else 2 * hidden),
          rngs=rngs,
        )
        for i in range(num_layers)
      ]
    )
    self.head = MaskHead(hidden, rngs=rngs)

  def __call__(self, feats):
    batch, frames, bins = feats.shape
    h = feats
    for layer in self.layers:
      h = layer(h)
    m = self.head(h)
    return jnp.transpose(
      m.reshape(batch, frames, NUM_SOURCES, bins), (0, 2, 1, 3)
    )


def _jax_runner(loss_fn, params) -> Callable[[], float]:
  """Returns a closure running one jitted fwd+bwd+Adam step; returns seconds."""
  opt = optax.adam(1e-3)
  state = {"params": params, "opt": opt.init(params)}

  @jax.jit
  def step(p, s):
    loss, grads = jax.value_and_grad(loss_fn)(p)
    updates, s = opt.update(grads, s, p)
    return optax.apply_updates(p, updates), s, loss

  def run() -> float:
    t0 = time.perf_counter()
    p, s, loss = step(state["params"], state["opt"])
    loss.block_until_ready()
    elapsed = time.perf_counter() - t0
    state["params"], state["opt"] = p, s
    return elapsed

  return run


def make_jax_runners(
  layers, hidden, batch, frames, seed=0, flax_cell="optimized"
):
  """Builds the jax implementations of one configuration."""
  rng = np.random.default_rng(seed)
  feats = jnp.asarray(
    rng.standard_normal((batch, frames, NUM_BINS)), jnp.float32
  )
  mag = jnp.abs(feats)
  target = jnp.asarray(
    rng.uniform(size=(batch, NUM_SOURCES, frames, NUM_BINS)), jnp.float32
  )
  key = jax.random.PRNGKey(seed)
  runners = {}

  ours, p = models.functional(OursMI(layers, hidden, rngs=nnx.Rngs(seed)))
  runners["ours"] = _jax_runner(
    lambda p: l1_mask_loss(ours(p, feats), mag, target), p
  )

  wave = jnp.asarray(
    rng.standard_normal((batch, signal.frames_to_samples(frames))) * 0.1,
    jnp.float32,
  )
  sep, p = models.functional(
    models.Separator(layers, hidden, head="mi", rngs=nnx.Rngs(seed))
  )

  def sep_loss(p):
    out = sep(p, wave)
    return l1_mask_loss(out["masks"], jnp.abs(out["mix_stft"]), target)

  runners["ours+stft"] = _jax_runner(sep_loss, p)

  flax_model, p = models.functional(
    FlaxMI(layers, hidden, flax_cell, rngs=nnx.Rngs(seed))
  )
  runners["flax"] = _jax_runner(
    lambda p: l1_mask_loss(flax_model(p, feats), mag, target), p
  )

  if jax.default_backend() == "gpu":
    runners["cudnn"] = make_cudnn_runner(
      layers, hidden, feats, mag, target, key
    )
  return runners


def make_cudnn_runner(layers, hidden, feats, mag, target, key):
  """cuDNN LSTM via jax.experimental.rnn (GPU only)."""
  from jax.experimental import rnn  # pylint: disable=g-import-not-at-top

  batch, frames, bins = feats.shape
  k1, k2 = jax.random.split(key)
  params = {
    "lstm": rnn.init_lstm_weight(k1, bins, hidden, layers, True),
    "w": jax.random.normal(k2, (2 * hidden, NUM_SOURCES * bins)) * 0.01,
    "b": jnp.zeros((NUM_SOURCES * bins,)),
  }
  zeros = jnp.zeros((2 * layers, batch, hidden), jnp.float32)
  seq_lengths = jnp.full((batch,), frames, jnp.int32)

  def loss_fn(p):
    y, _, _ = rnn.lstm(
      feats,
      zeros,
      zeros,
      p["lstm"],
      seq_lengths,
      input_size=bins,
      hidden_size=hidden,
      num_layers=layers,
      dropout=0.0,
      bidirectional=True,
    )
    m = jax.nn.sigmoid(y @ p["w"] + p["b"])
    m = jnp.transpose(m.reshape(batch, frames, NUM_SOURCES, bins), (0, 2, 1, 3))
    return l1_mask_loss(m, mag, target)

  return _jax_runner(loss_fn, params)


def make_torch_runner(layers, hidden, batch, frames, threads, seed=0):
  """PyTorch nn.LSTM(bidirectional=True) + Linear + Adam."""
  import torch  # pylint: disable=g-import-not-at-top

  torch.set_num_threads(threads)
  torch.manual_seed(seed)
  rng = np.random.default_rng(seed)
  feats = torch.from_numpy(
    rng.standard_normal((batch, frames, NUM_BINS)).astype(np.float32)
  )
  mag = feats.abs()
  target = torch.from_numpy(
    rng.uniform(size=(batch, NUM_SOURCES, frames, NUM_BINS)).astype(np.float32)
  )
  lstm = torch.nn.LSTM(
    NUM_BINS, hidden, num_layers=layers, bidirectional=True, batch_first=True
  )
  head = torch.nn.Linear(2 * hidden, NUM_SOURCES * NUM_BINS)
  opt = torch.optim.Adam(
    list(lstm.parameters()) + list(head.parameters()), lr=1e-3
  )

  def run() -> float:
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    h, _ = lstm(feats)
    m = torch.sigmoid(head(h)).reshape(batch, frames, NUM_SOURCES, NUM_BINS)
    m = m.permute(0, 2, 1, 3)
    loss = (m * mag[:, None] - target).abs().mean()
    loss.backward()
    opt.step()
    return time.perf_counter() - t0

  return run


def torch_worker(spec: str) -> None:
  """Subprocess loop: builds the torch step, answers 'step' with its time."""
  layers, hidden, batch, frames, threads = (int(v) for v in spec.split("x"))
  run = make_torch_runner(layers, hidden, batch, frames, threads)
  print("ready", flush=True)
  for line in sys.stdin:
    if line.strip() != "step":
      break
    print(repr(run()), flush=True)


class TorchProcess:
  """Runs the torch step in a subprocess, one step per call.

  Keeping torch out of the jax process avoids the two runtimes' spinning
  thread pools competing for the same cores; steps are still interleaved
  in time with the jax ones.
  """

  def __init__(self, layers, hidden, batch, frames, threads):
    spec = f"{layers}x{hidden}x{batch}x{frames}x{threads}"
    self.proc = subprocess.Popen(
      [sys.executable, os.path.abspath(__file__), "--torch-worker", spec],
      stdin=subprocess.PIPE,
      stdout=subprocess.PIPE,
      text=True,
    )
    line = self.proc.stdout.readline().strip()
    if line != "ready":
      raise RuntimeError(f"torch worker failed to start: {line!r}")

  def __call__(self) -> float:
    self.proc.stdin.write("step\n")
    self.proc.stdin.flush()
    return float(self.proc.stdout.readline())

  def close(self):
    self.proc.stdin.close()
    self.proc.wait()


def bench(
  runners: dict[str, Callable[[], float]],
  reps: int,
  warmup: int,
  pause: float = 0.05,
):
  """Interleaved repetitions; returns the median step time per runner.

  ``pause`` seconds of idle time precede every timed step so that the
  previous implementation's worker threads (XLA/Eigen and OpenMP spin-wait
  after their work) have gone to sleep and do not steal the cores.
  """
  for fn in runners.values():
    for _ in range(warmup):
      fn()
  times = {k: [] for k in runners}
  for _ in range(reps):
    for name, fn in runners.items():
      time.sleep(pause)
      times[name].append(fn())
  return {k: statistics.median(v) for k, v in times.items()}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument(
    "--quick", action="store_true", help="fewer repetitions (3 instead of 10)."
  )
  parser.add_argument(
    "--configs",
    default=DEFAULT_CONFIGS,
    help="comma-separated LAYERSxHIDDEN among "
    f"{sorted(CONFIGS)} or LxHxBxT (e.g. 2x300x25x400).",
  )
  parser.add_argument("--reps", type=int, default=None)
  parser.add_argument(
    "--threads",
    type=int,
    default=None,
    help="torch threads (default: cores available to jax).",
  )
  parser.add_argument(
    "--flax-cell",
    choices=sorted(FLAX_CELLS),
    default="optimized",
    help="cell of the flax baseline: nnx.OptimizedLSTMCell (optimized) or "
    "nnx.LSTMCell (lstm).",
  )
  parser.add_argument("--torch-worker", default=None, help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.torch_worker:
    torch_worker(args.torch_worker)
    return

  cores = num_cores()
  threads = args.threads or cores
  print(
    f"CPU: {cpu_model()} | cores available: {cores} | "
    f"python {platform.python_version()}"
  )
  print(
    f"jax {jax.__version__} | backend {jax.default_backend()} | "
    f"device {jax.devices()[0].device_kind} | flax {flax.__version__} | "
    f"optax {optax.__version__}"
  )
  print(
    f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r} | jax uses all "
    f"{cores} cores (XLA intra-op pool)"
  )
  if hasattr(os, "getloadavg"):
    print(
      "load average at start: "
      + ", ".join(f"{v:.2f}" for v in os.getloadavg())
      + " (shared machine: numbers are noisy, compare within a row)"
    )
  torch_version = subprocess.run(
    [sys.executable, "-c", "import torch; print(torch.__version__)"],
    capture_output=True,
    text=True,
  )
  torch_ok = torch_version.returncode == 0
  if torch_ok:
    print(
      f"torch {torch_version.stdout.strip()} on CPU (separate process, "
      f"torch.set_num_threads({threads}))"
    )
  else:
    reason = (torch_version.stderr.strip().splitlines() or ["?"])[-1]
    print(f"torch: skipped ({reason})")
  if jax.default_backend() != "gpu":
    print("cudnn (jax.experimental.rnn): skipped (no GPU visible to jax)")

  reps = args.reps or (3 if args.quick else 10)
  warmup = 1 if args.quick else 2
  rows = []
  for name in args.configs.split(","):
    name = name.strip()
    if name in CONFIGS:
      layers, hidden, batch, frames = CONFIGS[name]
    else:
      layers, hidden, batch, frames = (int(v) for v in name.split("x"))
    runners = make_jax_runners(
      layers, hidden, batch, frames, flax_cell=args.flax_cell
    )
    torch_proc = None
    if torch_ok:
      try:
        torch_proc = TorchProcess(layers, hidden, batch, frames, threads)
        runners["torch"] = torch_proc
      except (RuntimeError, OSError) as e:
        print(f"  torch skipped for this config: {e}")
    try:
      med = bench(runners, reps, warmup)
    finally:
      if torch_proc is not None:
        torch_proc.close()
    rows.append((f"{layers}x{hidden} B{batch} T{frames}", med))
    print(
      f"  done {rows[-1][0]}: "
      + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in med.items()),
      flush=True,
    )

  cols = ["ours", "ours+stft", "flax", "torch", "cudnn"]
  cols = [c for c in cols if any(c in m for _, m in rows)]
  print(
    f"\nmedian training-step time (fwd+bwd+adam), ms; {reps} interleaved reps"
  )
  if hasattr(os, "getloadavg"):
    print(
      "load average at end: " + ", ".join(f"{v:.2f}" for v in os.getloadavg())
    )
  header = f"{'config':<20}" + "".join(f"{c:>11}" for c in cols)
  header += f"{'ours/torch':>12}{'ours/flax':>11}"
  print(header)
  print("-" * len(header))
  for label, med in rows:
    line = f"{label:<20}"
    for c in cols:
      line += f"{med[c] * 1e3:>11.1f}" if c in med else f"{'-':>11}"
    ratio_t = f"{med['ours'] / med['torch']:.2f}" if "torch" in med else "-"
    line += f"{ratio_t:>12}{med['ours'] / med['flax']:>11.2f}"
    print(line)


if __name__ == "__main__":
  main()
