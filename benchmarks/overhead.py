"""Overhead of AutoClip over plain global-norm clipping, measured side by side.

For history sizes 1e3 ... 1e6 this times one jitted optimizer step (update and
apply, with donated buffers, as in a real train step) of

* ``chain(clip_by_global_norm(1.0), adam)``  -- the baseline,
* ``chain(autoclip(10, history_size=N), adam)`` -- this library,
* ``chain(naive_autoclip(N), adam)`` -- a ring buffer + ``jnp.percentile``,

interleaved in one process (medians over repetitions), on parameter trees
shaped like the paper's BLSTMs: 2x300 (3.35M parameters) and 4x600 (29.8M).
Windows are pre-filled, so the numbers are steady-state costs. When PyTorch is
installed the original recipe (Python list + ``np.percentile`` +
``clip_grad_norm_`` + ``torch.optim.Adam``) is timed against PyTorch's own
``clip_grad_norm_`` + Adam.

Usage: python benchmarks/overhead.py [--quick] [--sizes 1000,100000]
"""

import argparse
import os
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from autoclip_optax import autoclip  # pylint: disable=wrong-import-position


def blstm_shapes(num_layers, hidden, num_inputs=129, num_outputs=258):
  """Parameter shapes of a PyTorch-style BLSTM stack with a linear head."""
  shapes = {}
  size_in = num_inputs
  for layer in range(num_layers):
    for direction in ("fwd", "bwd"):
      shapes[f"l{layer}_{direction}"] = {
        "w_ih": (4 * hidden, size_in),
        "w_hh": (4 * hidden, hidden),
        "b_ih": (4 * hidden,),
        "b_hh": (4 * hidden,),
      }
    size_in = 2 * hidden
  shapes["head"] = {"w": (num_outputs, size_in), "b": (num_outputs,)}
  return shapes


def make_tree(shapes, seed):
  rng = np.random.default_rng(seed)
  return jax.tree.map(
    lambda s: jnp.asarray(rng.standard_normal(s, dtype=np.float32) * 0.01),
    shapes,
    is_leaf=lambda x: isinstance(x, tuple),
  )


def naive_autoclip(p, history_size):
  """Ring buffer + full ``jnp.percentile`` each step (the obvious port)."""

  def init_fn(params):
    del params
    return (jnp.zeros((history_size,), jnp.float32), jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None):
    del params
    ring, index = state
    norm = optax.tree.norm(updates)
    ring = ring.at[index % history_size].set(norm)
    threshold = jnp.percentile(ring, p)
    scale = jnp.where(norm > threshold, threshold / norm, 1.0)
    updates = jax.tree.map(lambda g: g * scale.astype(g.dtype), updates)
    return updates, (ring, index + 1)

  return optax.GradientTransformation(init_fn, update_fn)


def prefill(state, history_size, seed):
  """Returns ``state`` with every AutoClip / naive window full of norms."""
  rng = np.random.default_rng(seed)
  values = jnp.asarray(rng.lognormal(size=history_size).astype(np.float32))

  def fill(s):
    if isinstance(s, tuple) and type(s).__name__ == "AutoClipState":
      return s._replace(
        history=values,
        sorted_history=jnp.sort(values),
        history_length=jnp.asarray(history_size, jnp.int32),
      )
    return s

  def fill_naive(s):
    if (
      isinstance(s, tuple)
      and len(s) == 2
      and hasattr(s[0], "shape")
      and s[0].shape == (history_size,)
    ):
      return (values, jnp.asarray(history_size, jnp.int32))
    return s

  is_leaf = lambda s: (
    isinstance(s, tuple)
    and (  # noqa: E731
      type(s).__name__ == "AutoClipState"
      or (len(s) == 2 and hasattr(s[0], "shape"))
    )
  )
  state = jax.tree.map(fill, state, is_leaf=is_leaf)
  return jax.tree.map(fill_naive, state, is_leaf=is_leaf)


def make_step(opt):
  def step(params, opt_state, grads):
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  return jax.jit(step, donate_argnums=(0, 1))


def time_interleaved(variants, grads, reps):
  """variants: name -> (step, params, state). Returns name -> median seconds."""
  times = {name: [] for name in variants}
  carries = {name: (p, s) for name, (_, p, s) in variants.items()}
  for name, (step, _, _) in variants.items():  # Compile and warm up.
    for _ in range(2):
      carries[name] = step(*carries[name], grads)
    jax.block_until_ready(carries[name])
  for _ in range(reps):
    for name, (step, _, _) in variants.items():
      start = time.perf_counter()
      carries[name] = step(*carries[name], grads)
      jax.block_until_ready(carries[name])
      times[name].append(time.perf_counter() - start)
  return {name: statistics.median(t) for name, t in times.items()}


def bench_jax(model, shapes, sizes, reps, with_naive):
  grads = make_tree(shapes, 1)
  num_params = sum(x.size for x in jax.tree.leaves(grads))
  rows = []
  for size in sizes:
    opts = {
      "clip_by_global_norm+adam": optax.chain(
        optax.clip_by_global_norm(1.0), optax.adam(1e-3)
      ),
      "autoclip+adam": optax.chain(autoclip(10.0, size), optax.adam(1e-3)),
    }
    if with_naive:
      opts["naive_percentile+adam"] = optax.chain(
        naive_autoclip(10.0, size), optax.adam(1e-3)
      )
    variants = {}
    for name, opt in opts.items():
      params = make_tree(shapes, 0)
      state = prefill(opt.init(params), size, 2)
      variants[name] = (make_step(opt), params, state)
    med = time_interleaved(variants, grads, reps)
    base = med["clip_by_global_norm+adam"]
    rows.append(
      (
        model,
        num_params,
        size,
        base,
        med["autoclip+adam"],
        med.get("naive_percentile+adam"),
      )
    )
  return rows


def bench_torch(model, shapes, sizes, reps):
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  torch.set_num_threads(os.cpu_count() or 1)
  rows = []
  for size in sizes:

    def make():
      params = [
        torch.nn.Parameter(torch.randn(*s) * 0.01)
        for s in jax.tree.leaves(shapes, is_leaf=lambda x: isinstance(x, tuple))
      ]
      for prm in params:
        prm.grad = torch.randn_like(prm) * 0.01
      return params, torch.optim.Adam(params, lr=1e-3)

    base_params, base_opt = make()
    ac_params, ac_opt = make()
    history = list(np.random.default_rng(2).lognormal(size=size))

    # Defaults bind this iteration's objects (the closures never outlive it).
    def baseline(params=base_params, opt=base_opt):
      torch.nn.utils.clip_grad_norm_(params, 1.0)
      opt.step()

    def recipe(params=ac_params, opt=ac_opt, history=history):
      norm = torch.nn.utils.clip_grad_norm_(params, float("inf"))
      history.append(float(norm))
      del history[0]  # Keep the window at ``size`` like ours.
      torch.nn.utils.clip_grad_norm_(params, np.percentile(history, 10))
      opt.step()

    times = {"base": [], "recipe": []}
    for fn in (baseline, recipe):
      fn()
    for _ in range(reps):
      for name, fn in (("base", baseline), ("recipe", recipe)):
        start = time.perf_counter()
        fn()
        times[name].append(time.perf_counter() - start)
    rows.append(
      (
        model,
        size,
        statistics.median(times["base"]),
        statistics.median(times["recipe"]),
      )
    )
  return rows


def machine_line():
  cpu = platform.processor() or "unknown CPU"
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("model name"):
          cpu = line.split(":", 1)[1].strip()
          break
  except OSError:
    pass
  dev = jax.devices()[0]
  return (
    f"{cpu}; {os.cpu_count()} cores; jax {jax.__version__} on "
    f"{dev.platform} ({dev.device_kind}); optax {optax.__version__}"
  )


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument(
    "--quick",
    action="store_true",
    help="fewer repetitions and only the 2x300 tree",
  )
  parser.add_argument(
    "--sizes",
    default="1000,10000,100000,1000000",
    help="comma-separated history sizes",
  )
  parser.add_argument("--reps", type=int, default=None)
  parser.add_argument(
    "--no-naive",
    action="store_true",
    help="skip the jnp.percentile baseline (slow at 1e6)",
  )
  args = parser.parse_args(argv)
  try:
    sizes = [int(float(s)) for s in args.sizes.split(",")]
  except ValueError:
    parser.error(
      f"--sizes must be comma-separated integers, got {args.sizes!r}"
    )
  reps = args.reps or (10 if args.quick else 40)
  models = {"2x300 BLSTM": blstm_shapes(2, 300)}
  if not args.quick:
    models["4x600 BLSTM"] = blstm_shapes(4, 600)

  print(f"# machine: {machine_line()}")
  print(
    f"# {reps} interleaved repetitions per variant, median step time "
    "(update + apply_updates, jitted, donated buffers)"
  )
  print(
    "| model | params | history | clip+adam ms | autoclip+adam ms | "
    "ratio | naive jnp.percentile ms | naive ratio |"
  )
  print("|---|---|---|---|---|---|---|---|")
  for model, shapes in models.items():
    for row in bench_jax(model, shapes, sizes, reps, not args.no_naive):
      model_name, n, size, base, ours, naive = row
      naive_ms = f"{naive * 1e3:.2f}" if naive is not None else "-"
      naive_ratio = f"{naive / base:.2f}x" if naive is not None else "-"
      print(
        f"| {model_name} | {n / 1e6:.2f}M | {size:.0e} | {base * 1e3:.2f} "
        f"| {ours * 1e3:.2f} | {ours / base:.3f}x | {naive_ms} | "
        f"{naive_ratio} |",
        flush=True,
      )
  torch_rows = []
  for model, shapes in models.items():
    rows = bench_torch(model, shapes, sizes, max(reps // 2, 5))
    if rows is None:
      print("\n# PyTorch not installed: original-recipe comparison skipped.")
      break
    torch_rows.extend(rows)
  if torch_rows:
    print(
      "\n# PyTorch original recipe (list + np.percentile + "
      "clip_grad_norm_ + Adam) vs clip_grad_norm_ + Adam"
    )
    print("| model | history | torch clip+adam ms | torch recipe ms | ratio |")
    print("|---|---|---|---|---|")
    for model, size, base, recipe in torch_rows:
      print(
        f"| {model} | {size:.0e} | {base * 1e3:.2f} | {recipe * 1e3:.2f} "
        f"| {recipe / base:.2f}x |"
      )


if __name__ == "__main__":
  main()
