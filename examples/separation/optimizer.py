"""The example's optimizer: clipping, Adam, lr schedule and batch weighting.

``make_optimizer`` builds ``chain(clipping, adam(lr))``, wrapped in the
configured epoch-level schedule; ``reduce_batch`` turns per-example losses into
the training loss (the plain mean, or softmax-reweighted); ``extra_args`` and
``schedule_logs`` connect them to the train step.
"""

from typing import Any

import jax
import jax.numpy as jnp
import optax

from examples.separation import configs


def make_optimizer(config: configs.Config,
                   clipper: optax.GradientTransformation
                   ) -> optax.GradientTransformationExtraArgs:
  """``chain(clipper, adam(lr))`` with the configured lr schedule."""
  base = optax.chain(clipper, optax.adam(config.learning_rate))
  if config.schedule == "constant":
    return base
  raise ValueError(f"schedule={config.schedule!r} is not available yet")


def extra_args(mean_loss: jax.Array, config: configs.Config) -> dict:
  """Extra arguments of the optimizer update (the step's mean loss)."""
  del mean_loss, config
  return {}


def schedule_logs(opt_state: Any) -> dict:
  """Current lr scale and stop signal, when a schedule is in the chain."""
  del opt_state
  return {"lr_scale": jnp.float32(1.0), "stop": jnp.bool_(False)}


def reduce_batch(per_example: jax.Array, batch: dict, step: jax.Array,
                 config: configs.Config) -> jax.Array:
  """The training loss from per-example losses ``[B]``."""
  del batch, step
  if config.reweight == "none":
    return per_example.mean()
  raise ValueError(f"reweight={config.reweight!r} is not available yet")
