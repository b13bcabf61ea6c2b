"""Shared machinery of the epoch schedulers: state, epochs, validation.

Every scheduler is an epoch-end rule (a *transition* from the state and the
epoch's metric to the next state) plus the bookkeeping here: marking epochs
(mode a: every ``steps_per_epoch`` calls; mode b: ``epoch_end=True``),
averaging per-step values, and scaling the updates by ``state.scale``.
"""

import functools
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


class EpochSchedulerState(NamedTuple):
  """State of every epoch scheduler: scalar arrays (jit-safe, checkpointable).

  Attributes:
    scale: ``float32[]``, the multiplier on the updates, ``lr / lr0``.
    phase: ``int32[]``, index of the current phase (meaning per scheduler).
    stop: ``bool[]``, the stopping criterion was met (sticky).
    epoch: ``int32[]``, epochs closed so far.
    step_in_epoch: ``int32[]``, update calls in the open epoch.
    value_sum: ``float32[]``, sum of the finite per-step values (mode a).
    value_count: ``int32[]``, number of finite per-step values (mode a).
    prev_metric: ``float32[]`` (for :func:`rocp`, the clip value's shape),
      the last epoch metric.
    has_prev: ``bool[]``, ``prev_metric`` holds a metric of this phase.
    bad_epochs: ``int32[]``, ROP2 bad epochs since the last reduction.
    reductions: ``int32[]``, ROP2 / ROCP reductions (in this phase).
    cycle_pos: ``int32[]``, epoch index ``x`` in the current cosine cycle.
  """

  scale: jax.Array
  phase: jax.Array
  stop: jax.Array
  epoch: jax.Array
  step_in_epoch: jax.Array
  value_sum: jax.Array
  value_count: jax.Array
  prev_metric: jax.Array
  has_prev: jax.Array
  bad_epochs: jax.Array
  reductions: jax.Array
  cycle_pos: jax.Array


# A transition maps (state, epoch metric) to the state after the epoch ends.
_Transition = Callable[[EpochSchedulerState, jax.Array], EpochSchedulerState]


# ---------------------------------------------------------------------------
# Argument validation.


def _check_int(name: str, value: Any, minimum: int) -> None:
  if (
    isinstance(value, bool)
    or not isinstance(value, numbers.Integral)
    or value < minimum
  ):
    raise ValueError(
      f"{name} must be an integer >= {minimum}, got {name}={value!r}."
    )


def _check_factor(factor: Any) -> None:
  if (
    isinstance(factor, bool)
    or not isinstance(factor, numbers.Real)
    or not 0.0 < float(factor) < 1.0
  ):
    raise ValueError(
      f"factor must be a number in (0, 1), got factor={factor!r}."
    )


def _check_min_scale(min_scale: Any) -> None:
  if (
    isinstance(min_scale, bool)
    or not isinstance(min_scale, numbers.Real)
    or not 0.0 <= float(min_scale) < 1.0
  ):
    raise ValueError(
      f"min_scale must be a number in [0, 1), got min_scale={min_scale!r}."
    )


def _check_steps_per_epoch(steps_per_epoch: Any) -> None:
  if steps_per_epoch is not None:
    _check_int("steps_per_epoch", steps_per_epoch, 1)


# ---------------------------------------------------------------------------
# Shared epoch bookkeeping.


def _init_state(
  scale: float | jax.Array = 1.0,
  phase: int = 0,
  cycle_pos: int = 0,
  metric_shape: tuple[int, ...] = (),
) -> EpochSchedulerState:
  def i32(x):
    return jnp.asarray(x, jnp.int32)

  return EpochSchedulerState(
    scale=jnp.asarray(scale, jnp.float32),
    phase=i32(phase),
    stop=jnp.asarray(False),
    epoch=i32(0),
    step_in_epoch=i32(0),
    value_sum=jnp.zeros([], jnp.float32),
    value_count=i32(0),
    prev_metric=jnp.zeros(metric_shape, jnp.float32),
    has_prev=jnp.asarray(False),
    bad_epochs=i32(0),
    reductions=i32(0),
    cycle_pos=i32(cycle_pos),
  )


def _select(
  pred, on_true: EpochSchedulerState, on_false: EpochSchedulerState
) -> EpochSchedulerState:
  return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def _check_update_args(name, steps_per_epoch, value, epoch_end, needs_value):
  """Raises ValueError when the extra arguments do not match the epoch mode."""
  if steps_per_epoch is None:
    if epoch_end is None:
      raise ValueError(
        f"{name} with steps_per_epoch=None needs epoch_end=<bool> in every "
        "update call: True on the first update after an epoch (with "
        "value=<that epoch's metric>), False otherwise."
      )
    if jnp.ndim(epoch_end) != 0:
      raise ValueError(
        f"epoch_end must be a scalar bool, got shape {jnp.shape(epoch_end)}."
      )
  elif epoch_end is not None:
    raise ValueError(
      f"{name} with steps_per_epoch={steps_per_epoch} closes epochs itself; "
      "do not pass epoch_end (or use steps_per_epoch=None)."
    )
  if needs_value:
    if value is None:
      raise ValueError(
        f"{name} needs the epoch metric: pass value=<scalar> to update "
        "(the per-step loss with steps_per_epoch, else the epoch's metric)."
      )
    if jnp.ndim(value) != 0:
      raise ValueError(f"value must be a scalar, got shape {jnp.shape(value)}.")


def _close_epoch(
  state: EpochSchedulerState, metric: jax.Array, transition: _Transition
) -> EpochSchedulerState:
  new = transition(state, metric)._replace(
    epoch=optax.safe_increment(state.epoch),
    step_in_epoch=jnp.zeros_like(state.step_in_epoch),
    value_sum=jnp.zeros_like(state.value_sum),
    value_count=jnp.zeros_like(state.value_count),
  )
  return jax.tree.map(
    lambda x, old: jnp.asarray(x).astype(old.dtype), new, state
  )


def _tick(
  state: EpochSchedulerState,
  transition: _Transition,
  steps_per_epoch: int | None,
  *,
  value=None,
  epoch_end=None,
  metric=None,
) -> tuple[jax.Array, EpochSchedulerState]:
  """Epoch bookkeeping of one update call, shared by all schedulers.

  Args:
    state: the scheduler state before the call.
    transition: the scheduler's epoch-end rule.
    steps_per_epoch: ``None`` for mode (b), else the epoch length (mode a).
    value: per-step value (mode a) or epoch metric (mode b), or ``None``.
    epoch_end: mode (b) flag: close the epoch before this call's update.
    metric: if given, the epoch metric to use instead of one from ``value``.

  Returns:
    ``(scale, new_state)``: the scale for this call's updates and the state.
  """
  close = functools.partial(_close_epoch, transition=transition)
  keep = lambda s, m: s  # pylint: disable=unnecessary-lambda-assignment
  if steps_per_epoch is None:
    if metric is None:
      metric = jnp.asarray(0.0 if value is None else value, jnp.float32)
    new_state = jax.lax.cond(
      jnp.asarray(epoch_end, jnp.bool_), close, keep, state, metric
    )
    new_state = new_state._replace(
      step_in_epoch=optax.safe_increment(new_state.step_in_epoch)
    )
    return new_state.scale, new_state
  if value is not None:
    value = jnp.asarray(value, jnp.float32)
    finite = jnp.isfinite(value)
    state = state._replace(
      value_sum=state.value_sum + jnp.where(finite, value, 0.0),
      value_count=jnp.where(
        finite, optax.safe_increment(state.value_count), state.value_count
      ),
    )
  state = state._replace(
    step_in_epoch=optax.safe_increment(state.step_in_epoch)
  )
  if metric is None:  # 0 / 0 = NaN when no step of the epoch was finite.
    metric = state.value_sum / state.value_count.astype(jnp.float32)
  new_state = jax.lax.cond(
    state.step_in_epoch >= steps_per_epoch, close, keep, state, metric
  )
  return state.scale, new_state


def _scale_updates(updates: optax.Updates, scale: jax.Array) -> optax.Updates:
  return jax.tree.map(lambda u: (u * scale).astype(u.dtype), updates)


def _epoch_scheduler(
  name: str,
  init_state: Callable[[], EpochSchedulerState],
  transition: _Transition,
  steps_per_epoch: int | None,
  needs_value: bool,
) -> optax.GradientTransformationExtraArgs:
  """Builds the transformation of a metric-driven epoch scheduler."""

  def init_fn(params) -> EpochSchedulerState:
    del params
    return init_state()

  def update_fn(
    updates, state, params=None, *, value=None, epoch_end=None, **extra_args
  ):
    del params, extra_args
    _check_update_args(name, steps_per_epoch, value, epoch_end, needs_value)
    scale, state = _tick(
      state, transition, steps_per_epoch, value=value, epoch_end=epoch_end
    )
    return _scale_updates(updates, scale), state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


# ---------------------------------------------------------------------------
# Rule building block shared by ROP2 and ROCP, and the stop signal.


def _reduce(
  state: EpochSchedulerState, do: jax.Array, factor: float
) -> EpochSchedulerState:
  """Where ``do``: ``scale *= factor`` and one more reduction counted."""
  return state._replace(
    scale=jnp.where(do, state.scale * factor, state.scale),
    reductions=jnp.where(
      do, optax.safe_increment(state.reductions), state.reductions
    ),
  )


def should_stop(opt_state: Any) -> jax.Array:
  """Whether any scheduler in an optimizer state has raised its stop signal.

  Args:
    opt_state: any optimizer state (e.g. of an ``optax.chain``) containing
      zero or more scheduler states of this module (any field or key named
      ``stop``).

  Returns:
    A bool scalar array: the OR of every ``stop`` found (False if none). Works
    inside ``jit``.

  Example:
    >>> import jax.numpy as jnp, optax
    >>> from autoclip_optax import rop2, should_stop
    >>> opt = optax.chain(optax.adam(1e-3), rop2())
    >>> bool(should_stop(opt.init(jnp.zeros(2))))
    False
  """
  found = optax.tree.get_all_with_path(opt_state, "stop")
  result = jnp.asarray(False)
  for _, stop in found:
    result = result | jnp.any(jnp.asarray(stop, jnp.bool_))
  return result
