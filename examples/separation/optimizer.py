"""The example's optimizer: clipping, Adam, lr schedule and batch weighting.

``make_optimizer`` builds ``chain(clipping, adam(lr))``, followed by the
configured epoch-level schedule of :mod:`autoclip_optax` (``--schedule``);
``reduce_batch`` turns per-example losses into the training loss (the plain
mean, or softmax-reweighted, ``--reweight``); ``extra_args`` and
``schedule_logs`` connect them to the train step.

Schedules run in epoch mode (a) of :mod:`autoclip_optax._schedulers`: an epoch
is ``config.steps_per_epoch`` optimizer updates, every update passes the
step's mean per-example loss as ``value`` (:func:`extra_args`), and the epoch
metric is the mean of those values. The schedulers multiply Adam's updates by
``scale = lr / learning_rate``; ``config.lr_min`` is an absolute learning rate,
given to them as ``min_scale = lr_min / learning_rate``.

========================  ==================================================
``schedule``              transformation
========================  ==================================================
``constant``              none (scale 1)
``rop2``                  ``rop2(factor, patience, max_reductions)``
``chained_rop2``          ``chained_rop2(factor, patience,
                          reductions_per_phase, phases)``
``caswr``                 ``caswr(min_scale, period)``
``caswr_rop2``            ``caswr_rop2(min_scale, period, n_annealings,
                          factor, patience, max_reductions)``
``rop2_caswr_alt``        ``rop2_caswr_alt(starting_phase, factor, patience,
                          n_reduces, min_scale, period)``
``rocp``                  ``rocp(chain(autoclip, adam), factor,
                          rocp_threshold, max_reductions)`` (wraps the chain
                          to read AutoClip's threshold; needs
                          ``clip='autoclip'``)
========================  ==================================================

Reweighting (Tzinis, Bralios & Smaragdis, ICASSP 2021), with the weights held
constant for differentiation:

* ``robust``: ``p(i) ~ exp(alpha * L_i)``; ``alpha=0`` is the plain mean
  exactly;
* ``curriculum``: ``p(i) ~ exp(-beta_k * L_i)``, ``beta_k`` annealed
  **linearly** from ``beta0`` at step 0 to 0 at step ``config.steps``
  (:func:`autoclip_optax.curriculum_beta_schedule`, ``decay='linear'``);
* ``class``: ``p(i) ~ exp(gamma(source 1) + gamma(source 2))``, the sum of
  the per-source gammas ``config.class_gammas = (speech, environmental)``
  over the mixture's two sources (``batch['classes']``, 0 = speech,
  1 = environmental). With two classes this is one class per mixture, its
  number of environmental sources ``k`` in {0, 1, 2}, with logit
  ``(2 - k) gamma_speech + k gamma_environmental``
  (:func:`autoclip_optax.class_weights`).
"""

from typing import Any

import jax
import jax.numpy as jnp
import optax

import autoclip_optax
from examples.separation import configs

# ----------------------------------------------------------------------------
# Learning-rate schedule.
# ----------------------------------------------------------------------------


def min_scale(config: configs.Config) -> float:
  """``lr_min / learning_rate``: the schedulers' relative floor/offset.

  Raises:
    ValueError: ``lr_min`` is negative or not below ``learning_rate``.
  """
  scale = config.lr_min / config.learning_rate
  if not 0.0 <= scale < 1.0:
    raise ValueError(
      f"lr_min={config.lr_min!r} must be in [0, learning_rate="
      f"{config.learning_rate!r}) for --schedule {config.schedule} "
      "(--lr-min is an absolute learning rate)"
    )
  return scale


def _epoch_schedule(
  config: configs.Config,
) -> optax.GradientTransformationExtraArgs:
  """The scheduler chained after Adam (every schedule but rocp)."""
  c = config
  spe = c.steps_per_epoch
  if c.schedule == "rop2":
    return autoclip_optax.rop2(
      c.factor, c.patience, c.max_reductions, steps_per_epoch=spe
    )
  if c.schedule == "chained_rop2":
    return autoclip_optax.chained_rop2(
      c.factor,
      c.patience,
      c.reductions_per_phase,
      c.phases,
      steps_per_epoch=spe,
    )
  if c.schedule == "caswr":
    return autoclip_optax.caswr(min_scale(c), c.period, steps_per_epoch=spe)
  if c.schedule == "caswr_rop2":
    return autoclip_optax.caswr_rop2(
      min_scale(c),
      c.period,
      c.n_annealings,
      c.factor,
      c.patience,
      c.max_reductions,
      steps_per_epoch=spe,
    )
  if c.schedule == "rop2_caswr_alt":
    return autoclip_optax.rop2_caswr_alt(
      c.starting_phase,
      c.factor,
      c.patience,
      c.n_reduces,
      min_scale(c),
      c.period,
      steps_per_epoch=spe,
    )
  raise ValueError(f"schedule={c.schedule!r} is not one of {configs.SCHEDULES}")


def learning_rate_schedule(config: configs.Config) -> optax.ScalarOrSchedule:
  """Adam's step-indexed learning rate: warm-up, then constant or cosine.

  ``warmup_steps`` ramps linearly from ``learning_rate / warmup_steps`` at
  step 0 (not from 0: the first step must move the weights) to
  ``learning_rate`` at step ``warmup_steps``;
  ``lr_decay='cosine'`` then decays to ``learning_rate * lr_final_fraction``
  at ``steps``. With ``synthetic_pretrain_steps = K > 0`` the schedule runs
  twice, over steps ``[0, K)`` (the synthetic stage) and ``[K, steps)`` (the
  real data), a warm restart when the data changes, as a fine-tuning run
  would start. The epoch schedulers (``schedule``) multiply this rate.
  """
  k = config.synthetic_pretrain_steps
  if not k:
    return _warmup_then_decay(config, config.steps)
  return optax.join_schedules(
    [
      _as_schedule(_warmup_then_decay(config, k)),
      _as_schedule(_warmup_then_decay(config, config.steps - k)),
    ],
    [k],
  )


def _as_schedule(x: optax.ScalarOrSchedule) -> optax.Schedule:
  return x if callable(x) else optax.constant_schedule(x)


def _warmup_then_decay(
  config: configs.Config, steps: int
) -> optax.ScalarOrSchedule:
  """One warm-up (+ cosine) cycle of ``steps`` steps."""
  peak = config.learning_rate
  first = peak / max(config.warmup_steps, 1)
  if config.lr_decay == "cosine":
    return optax.warmup_cosine_decay_schedule(
      first,
      peak,
      config.warmup_steps,
      max(steps, config.warmup_steps + 1),
      end_value=peak * config.lr_final_fraction,
    )
  if config.warmup_steps:
    return optax.join_schedules(
      [
        optax.linear_schedule(first, peak, config.warmup_steps),
        optax.constant_schedule(peak),
      ],
      [config.warmup_steps],
    )
  return peak


def make_optimizer(
  config: configs.Config, clipper: optax.GradientTransformation
) -> optax.GradientTransformationExtraArgs:
  """``chain(clipper, adam(lr))`` with the configured lr schedule.

  Args:
    config: the run's configuration (``schedule`` and its fields).
    clipper: the clipping transformation (AutoClip, fixed or identity).

  Returns:
    The optimizer. With a schedule, ``update`` takes the extra arguments of
    :func:`extra_args`.

  Raises:
    ValueError: ``schedule='rocp'`` without ``clip='autoclip'``, or invalid
      schedule hyperparameters.
  """
  base = optax.chain(
    clipper, optax.adam(learning_rate_schedule(config), b2=config.adam_b2)
  )
  if config.schedule == "constant":
    return base
  if config.schedule == "rocp":
    if config.clip != "autoclip":
      raise ValueError(
        f"--schedule rocp reduces the lr when AutoClip's clip value "
        f"plateaus, so it needs --clip autoclip (got clip={config.clip!r})"
      )
    return autoclip_optax.rocp(
      base,
      config.factor,
      config.rocp_threshold,
      config.max_reductions,
      steps_per_epoch=config.steps_per_epoch,
    )
  return optax.chain(base, _epoch_schedule(config))


def check_config(config: configs.Config) -> None:
  """Checks the schedule and reweighting settings up front.

  Builds the optimizer and computes one set of batch weights on a dummy
  batch, eagerly, so that settings the training step would reject (while
  tracing, after the data is built) are reported before any work.

  Raises:
    ValueError: naming the setting, prefixed by its schedule or
      reweighting (``--schedule rop2: factor must be ...``).
  """
  try:
    make_optimizer(config, optax.identity())
  except ValueError as e:
    message = str(e)
    if config.schedule != "constant" and not message.startswith("--"):
      message = f"--schedule {config.schedule}: {message}"
    raise ValueError(message) from None
  if config.reweight == "none":
    return
  dummy = {"classes": jnp.zeros((2, 2), jnp.int32)}
  try:
    weights = batch_weights(jnp.zeros(2), dummy, jnp.asarray(0), config)
  except ValueError as e:
    raise ValueError(f"--reweight {config.reweight}: {e}") from None
  if weights is not None and not bool(jnp.all(jnp.isfinite(weights))):
    raise ValueError(
      f"--reweight {config.reweight}: its settings (alpha={config.alpha}, "
      f"beta0={config.beta0}, class_gammas={tuple(config.class_gammas)}) "
      "give non-finite weights"
    )


def extra_args(mean_loss: jax.Array, config: configs.Config) -> dict:
  """Extra arguments of the optimizer update: ``value`` = the step's loss.

  Args:
    mean_loss: the step's plain mean per-example loss (also with
      reweighting, so that the schedule sees the same metric either way).
    config: the run's configuration.

  Returns:
    ``{"value": mean_loss}`` with a schedule, ``{}`` for ``constant``.
  """
  if config.schedule == "constant":
    return {}
  return {"value": mean_loss}


def _is_schedule(x: Any) -> bool:
  return isinstance(x, autoclip_optax.EpochSchedulerState)


def _scheduler_states(opt_state: Any) -> list:
  """Every :class:`autoclip_optax.EpochSchedulerState` in ``opt_state``."""
  return [
    x
    for x in jax.tree.leaves(opt_state, is_leaf=_is_schedule)
    if _is_schedule(x)
  ]


def lr_scale(opt_state: Any) -> jax.Array:
  """The current ``lr / learning_rate`` (1 without a schedule).

  Looks for the scheduler's state by type rather than by the field name
  ``scale``, which a model parameter could share.
  """
  scale = jnp.float32(1.0)
  for state in _scheduler_states(opt_state):
    scale = scale * state.scale
  return scale


def schedule_logs(opt_state: Any) -> dict:
  """Current lr scale and stop signal, whatever the schedule.

  Returns:
    ``{"lr_scale": float32[], "stop": bool[]}``; ``1.0`` and ``False`` for the
    constant schedule. ``stop`` is :func:`autoclip_optax.should_stop`.
  """
  return {
    "lr_scale": lr_scale(opt_state),
    "stop": autoclip_optax.should_stop(opt_state),
  }


# ----------------------------------------------------------------------------
# Batch reweighting.
# ----------------------------------------------------------------------------


def mixture_classes(classes: jax.Array) -> jax.Array:
  """Class of each mixture: its number of environmental sources ``[B]``.

  Args:
    classes: per-source class labels ``[B, 2]`` (0 = speech,
      1 = environmental).

  Returns:
    int32 labels in {0, 1, 2}; -1 (NaN weights downstream) where a source
    label is not 0 or 1.
  """
  classes = jnp.asarray(classes)
  valid = jnp.all((classes == 0) | (classes == 1), axis=-1)
  return jnp.where(valid, jnp.sum(classes, axis=-1), -1).astype(jnp.int32)


def mixture_gammas(class_gammas) -> jax.Array:
  """Logit of each mixture class: the sum of its sources' gammas ``[3]``.

  Raises:
    ValueError: ``class_gammas`` does not have one entry per source class.
  """
  if len(class_gammas) != 2:
    raise ValueError(
      "class_gammas needs 2 entries (speech, environmental), got "
      f"{tuple(class_gammas)!r}"
    )
  speech, env = (float(g) for g in class_gammas)
  return jnp.asarray([2 * speech, speech + env, 2 * env], jnp.float32)


def batch_weights(
  per_example: jax.Array, batch: dict, step: jax.Array, config: configs.Config
) -> jax.Array | None:
  """Softmax weights ``[B]`` of the configured reweighting (no gradient).

  Returns:
    ``None`` for ``reweight='none'`` (plain mean).

  Raises:
    ValueError: unknown reweighting, or ``class`` without ``batch['classes']``.
  """
  if config.reweight == "none":
    return None
  if config.reweight == "robust":
    return autoclip_optax.robust_weights(per_example, config.alpha)
  if config.reweight == "curriculum":
    beta = autoclip_optax.curriculum_beta_schedule(
      config.beta0, transition_steps=config.steps, decay="linear"
    )(step)
    return autoclip_optax.curriculum_weights(per_example, beta)
  if config.reweight == "class":
    if "classes" not in batch:
      raise ValueError("reweight='class' needs batch['classes'] [B, 2]")
    return autoclip_optax.class_weights(
      mixture_classes(batch["classes"]), mixture_gammas(config.class_gammas)
    )
  raise ValueError(
    f"reweight={config.reweight!r} is not one of {configs.REWEIGHTS}"
  )


def reduce_batch(
  per_example: jax.Array, batch: dict, step: jax.Array, config: configs.Config
) -> jax.Array:
  """The training loss from per-example losses ``[B]``.

  Args:
    per_example: per-example losses ``[B]`` (lower is better).
    batch: the batch (``classes`` is read by ``reweight='class'``).
    step: optimizer updates done so far (the curriculum's ``beta`` clock).
    config: the run's configuration.

  Returns:
    The plain mean, or ``sum_i stop_gradient(w_i) L_i``; uniform weights (e.g.
    ``alpha=0``) give the plain mean bit for bit.
  """
  weights = batch_weights(per_example, batch, step, config)
  if weights is None:
    return per_example.mean()
  return autoclip_optax.reweighted_loss(per_example, weights)
