"""ROCP: reduce the learning rate when AutoClip's clip value plateaus."""

import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from autoclip_optax._schedulers._epoch import _check_factor
from autoclip_optax._schedulers._epoch import _check_int
from autoclip_optax._schedulers._epoch import _check_steps_per_epoch
from autoclip_optax._schedulers._epoch import _check_update_args
from autoclip_optax._schedulers._epoch import _init_state
from autoclip_optax._schedulers._epoch import _reduce
from autoclip_optax._schedulers._epoch import _scale_updates
from autoclip_optax._schedulers._epoch import _tick
from autoclip_optax._schedulers._epoch import EpochSchedulerState

_F32_MAX = float(np.finfo(np.float32).max)


class ROCPState(NamedTuple):
  """State of :func:`rocp`: the wrapped transformation's and the schedule's.

  Attributes:
    inner_state: the state of the wrapped transformation.
    schedule: the :class:`EpochSchedulerState` (``scale``, ``stop``, ...;
      ``phase`` is always 0).
  """

  inner_state: Any
  schedule: EpochSchedulerState


def _default_clip_value(inner_state) -> Any:
  return optax.tree.get(inner_state, "threshold")


def rocp(
  inner: optax.GradientTransformation,
  factor: float = 0.5,
  threshold: float = 0.005,
  max_reductions: int = 5,
  *,
  steps_per_epoch: int | None = None,
  clip_value_fn: Callable[[Any], jax.Array] | None = None,
) -> optax.GradientTransformationExtraArgs:
  r"""ROCP: reduce on clip-value plateau (wraps a chain holding an autoclip).

  Runs ``inner`` (e.g. ``optax.chain(autoclip(10.0), optax.adam(1e-3))``),
  reads AutoClip's clip value from its state and multiplies the inner updates
  by ``scale``. The epoch's clip value :math:`c_e` is the ``threshold`` used at
  the epoch's **last step**. At each epoch end (the first only records
  :math:`c_0`):

  .. math::

    \frac{|c_e - c_{e-1}|}{c_e} < \mathrm{threshold}
    \;\Rightarrow\; \mathrm{scale} \mathrel{*}= \mathrm{factor}

  with no patience; after the ``max_reductions``-th reduction ``stop`` is set.
  An epoch whose clip value is not a positive finite number below
  float32's max (AutoClip reports the max when it does not clip, e.g. during
  warmup) never triggers a reduction. With ``group_labels`` the clip value is
  a vector and a plateau needs every group's relative change below
  ``threshold``. ``phase`` is always 0.

  Extra arguments of ``update`` are forwarded to ``inner``. ``rocp`` needs no
  ``value``; with ``steps_per_epoch=None`` pass ``epoch_end=True`` on the first
  update after an epoch (the clip value is then read from the incoming state,
  i.e. the previous epoch's last step), ``False`` otherwise.

  Args:
    inner: the transformation to wrap; its state must contain exactly one
      ``threshold`` field (an :class:`autoclip_optax.AutoClipState`), unless
      ``clip_value_fn`` is given.
    factor: multiplier in (0, 1) applied at each clip-value plateau.
    threshold: relative change (> 0) below which the clip value is on a plateau.
    max_reductions: number of reductions (>= 1) after which ``stop`` is set.
    steps_per_epoch: epoch mode, see :func:`rop2`.
    clip_value_fn: maps the inner state to the clip value; the default is
      ``optax.tree.get(inner_state, "threshold")``.

  Returns:
    An :class:`optax.GradientTransformationExtraArgs` with state
    :class:`ROCPState` (``state.schedule.scale``, ``.stop``, ...).

  Example:
    >>> import optax
    >>> from autoclip_optax import autoclip, rocp
    >>> opt = rocp(optax.chain(autoclip(10.0), optax.adam(1e-3)),
    ...            steps_per_epoch=100)

  References:
    Vial, 2022, sec. 3.4; code: ``ROCP`` in
    github.com/SteelSeries/torch_custom_lr_schedulers; AutoClip: Seetharaman
    et al., MLSP 2020.
  """
  if not (hasattr(inner, "init") and hasattr(inner, "update")):
    raise ValueError(
      f"inner must be an optax.GradientTransformation, got inner={inner!r}."
    )
  _check_factor(factor)
  if (
    isinstance(threshold, bool)
    or not isinstance(threshold, numbers.Real)
    or not 0.0 < threshold < float("inf")
  ):
    raise ValueError(
      f"threshold must be a finite number > 0, got threshold={threshold!r}."
    )
  _check_int("max_reductions", max_reductions, 1)
  _check_steps_per_epoch(steps_per_epoch)
  if clip_value_fn is not None and not callable(clip_value_fn):
    raise ValueError(
      f"clip_value_fn must be callable or None, got {clip_value_fn!r}."
    )
  inner = optax.with_extra_args_support(inner)
  get_clip = clip_value_fn or _default_clip_value

  def read_clip(inner_state) -> jax.Array:
    try:
      clip = get_clip(inner_state)
    except KeyError as e:
      raise ValueError(
        "rocp found several 'threshold' fields in the inner state; pass "
        "clip_value_fn to pick one."
      ) from e
    if clip is None:
      raise ValueError(
        "rocp found no 'threshold' in the inner state: wrap a chain that "
        "contains autoclip, or pass clip_value_fn."
      )
    return jnp.asarray(clip, jnp.float32)

  def transition(state, clip):
    usable = jnp.all(jnp.isfinite(clip) & (clip > 0) & (clip < _F32_MAX))
    change = jnp.max(jnp.abs(clip - state.prev_metric) / clip)
    plateau = state.has_prev & usable & (change < threshold)
    state = _reduce(state, plateau, factor)
    return state._replace(
      prev_metric=clip,
      has_prev=jnp.asarray(True),
      stop=state.stop | (state.reductions >= max_reductions),
    )

  def init_fn(params) -> ROCPState:
    inner_state = inner.init(params)
    clip = read_clip(inner_state)
    return ROCPState(inner_state, _init_state(metric_shape=jnp.shape(clip)))

  def update_fn(
    updates, state, params=None, *, value=None, epoch_end=None, **extra_args
  ):
    _check_update_args(
      "rocp", steps_per_epoch, value, epoch_end, needs_value=False
    )
    if value is not None:
      extra_args["value"] = value
    if epoch_end is not None:
      extra_args["epoch_end"] = epoch_end
    updates, inner_state = inner.update(
      updates, state.inner_state, params, **extra_args
    )
    # Mode (a): this call is the epoch's last step; mode (b): the epoch ended
    # with the previous call, whose clip value is in the incoming state.
    clip = read_clip(
      state.inner_state if steps_per_epoch is None else inner_state
    )
    scale, schedule = _tick(
      state.schedule,
      transition,
      steps_per_epoch,
      epoch_end=epoch_end,
      metric=clip,
    )
    return _scale_updates(updates, scale), ROCPState(inner_state, schedule)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
