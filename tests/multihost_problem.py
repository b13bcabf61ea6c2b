"""A tiny regression problem shared by the multi-device AutoClip tests."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from autoclip_optax import autoclip

NUM_STEPS = 12
BATCH = 16
DIM = 6


def make_data(seed=0):
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((NUM_STEPS, BATCH, DIM)).astype(np.float32)
  w_true = rng.standard_normal((DIM,)).astype(np.float32)
  y = x @ w_true + rng.standard_normal((NUM_STEPS, BATCH)).astype(np.float32)
  y[3] *= 100.0  # A gradient spike for AutoClip to clip.
  return x, y


def init_params():
  return {"w": jnp.zeros((DIM,), jnp.float32), "b": jnp.zeros([], jnp.float32)}


def make_optimizer():
  return optax.chain(autoclip(p=25.0, history_size=8), optax.adam(0.1))


def loss_fn(params, x, y):
  return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


def make_step(opt):
  def step(params, state, x, y):
    grads = jax.grad(loss_fn)(params, x, y)
    updates, state = opt.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  return step


def summarize(params, state):
  ac = state[0]
  return {
    "w": np.asarray(params["w"]).tolist(),
    "b": float(params["b"]),
    "threshold": float(ac.threshold),
    "num_clipped": int(ac.num_clipped),
    "history": np.asarray(ac.history).tolist(),
  }


def run_single_device():
  x_all, y_all = make_data()
  opt = make_optimizer()
  params = init_params()
  state = opt.init(params)
  step = jax.jit(make_step(opt))
  for t in range(NUM_STEPS):
    params, state = step(params, state, x_all[t], y_all[t])
  return params, state
