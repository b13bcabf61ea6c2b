"""Quick start: train a small MLP with ``chain(autoclip(p=10), adam(1e-3))``.

Fits a noisy 1-D regression with occasional outlier batches (heavy-tailed
targets) and prints, every few hundred steps, the loss, AutoClip's current
threshold and the fraction of steps clipped so far -- all read from the
optimizer state inside the jitted step. The model is a Flax NNX module trained
with ``nnx.Optimizer`` under ``nnx.jit``.

Usage: python -m examples.quickstart [--steps N] [--p P] [--seed S]
"""

import argparse
import sys

import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from autoclip_optax import autoclip
from autoclip_optax import clip_fraction


class MLP(nnx.Module):
  """``1 -> 64 -> 64 -> 1`` with tanh hidden layers."""

  def __init__(self, rngs: nnx.Rngs):
    self.hidden = nnx.List(
      [nnx.Linear(1, 64, rngs=rngs), nnx.Linear(64, 64, rngs=rngs)]
    )
    self.out = nnx.Linear(64, 1, rngs=rngs)

  def __call__(self, x):
    for layer in self.hidden:
      x = nnx.tanh(layer(x))
    return self.out(x)


def batch(rng, size=64):
  x = rng.uniform(-3, 3, (size, 1)).astype(np.float32)
  noise = rng.standard_t(df=1.5, size=(size, 1)).astype(np.float32) * 0.1
  return x, np.sin(2 * x) + noise


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=1500)
  parser.add_argument("--p", type=float, default=10.0)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  if args.steps < 1:
    parser.error(f"--steps must be >= 1, got {args.steps}")
  try:
    clipper = autoclip(p=args.p)
  except ValueError as e:
    parser.error(str(e))

  model = MLP(nnx.Rngs(args.seed))
  opt = optax.chain(clipper, optax.adam(1e-3))
  optimizer = nnx.Optimizer(model, opt, wrt=nnx.Param)

  @nnx.jit
  def step(model, optimizer, x, y):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
    optimizer.update(model, grads)  # Updates model and optimizer in place.
    state = nnx.as_pure(optimizer.opt_state)  # The optax state, plain arrays.
    return {
      "loss": loss,
      "threshold": optax.tree.get(state, "threshold"),
      "clip_fraction": clip_fraction(state),
    }

  rng = np.random.default_rng(args.seed)
  x_test = np.linspace(-3, 3, 256, dtype=np.float32)[:, None]
  for t in range(1, args.steps + 1):
    logs = step(model, optimizer, *batch(rng))
    if t % 250 == 0 or t == args.steps:
      print(
        f"step {t:5d}  loss {float(logs['loss']):8.4f}  "
        f"threshold {float(logs['threshold']):.4f}  "
        f"clip fraction {float(logs['clip_fraction']):.3f}"
      )
  test_mse = float(jnp.mean((model(x_test) - np.sin(2 * x_test)) ** 2))
  print(f"clean test MSE {test_mse:.4f} with autoclip(p={args.p:g})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
