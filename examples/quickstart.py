"""Quick start: train a small MLP with ``chain(autoclip(p=10), adam(1e-3))``.

Fits a noisy 1-D regression with occasional outlier batches (heavy-tailed
targets) and prints, every few hundred steps, the loss, AutoClip's current
threshold and the fraction of steps clipped so far -- all read from the
optimizer state inside the jitted step.

Usage: python -m examples.quickstart [--steps N] [--p P] [--seed S]
"""

import argparse
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from autoclip_optax import autoclip
from autoclip_optax import clip_fraction


class MLP(nn.Module):
  @nn.compact
  def __call__(self, x):
    for width in (64, 64):
      x = nn.tanh(nn.Dense(width)(x))
    return nn.Dense(1)(x)


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

  model = MLP()
  params = model.init(jax.random.key(args.seed), jnp.zeros((1, 1)))
  opt = optax.chain(clipper, optax.adam(1e-3))
  state = opt.init(params)

  @jax.jit
  def step(params, state, x, y):
    loss, grads = jax.value_and_grad(
      lambda p: jnp.mean((model.apply(p, x) - y) ** 2)
    )(params)
    updates, state = opt.update(grads, state, params)
    logs = {
      "loss": loss,
      "threshold": optax.tree.get(state, "threshold"),
      "clip_fraction": clip_fraction(state),
    }
    return optax.apply_updates(params, updates), state, logs

  rng = np.random.default_rng(args.seed)
  x_test = np.linspace(-3, 3, 256, dtype=np.float32)[:, None]
  for t in range(1, args.steps + 1):
    params, state, logs = step(params, state, *batch(rng))
    if t % 250 == 0 or t == args.steps:
      print(
        f"step {t:5d}  loss {float(logs['loss']):8.4f}  "
        f"threshold {float(logs['threshold']):.4f}  "
        f"clip fraction {float(logs['clip_fraction']):.3f}"
      )
  test_mse = float(
    jnp.mean((model.apply(params, x_test) - np.sin(2 * x_test)) ** 2)
  )
  print(f"clean test MSE {test_mse:.4f} with autoclip(p={args.p:g})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
