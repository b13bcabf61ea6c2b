r"""Epoch-level learning-rate schedulers of Vial (2022) as optax transforms.

The internship report *Learning rate scheduling and gradient clipping for audio
source separation* (Vial, Souviraà-Labastie, Badeau; SteelSeries France, 2022)
defines its schedulers on a PyTorch optimizer's learning rate, changed once per
epoch. Here each scheduler is a :class:`optax.GradientTransformationExtraArgs`
that multiplies the updates by ``scale`` (the report's ``lr / lr0``), to chain
after the optimizer like :func:`optax.contrib.reduce_on_plateau`::

  opt = optax.chain(autoclip(p=10.0), optax.adam(1e-3), rop2())

``lr0`` is the learning rate given to the optimizer. Every scheduler state is an
:class:`EpochSchedulerState` (scalar arrays only, so it works under ``jit`` and
checkpoints with orbax) exposing ``scale``, ``phase`` and the stopping signal
``stop``; :func:`should_stop` finds ``stop`` anywhere in an optimizer state.

**Epochs.** The rules act at epoch ends. Two ways to mark them:

(a) ``steps_per_epoch=N``: call ``update(..., value=loss)`` at every step. The
    epoch metric is the mean of the ``N`` per-step values (non-finite values
    are left out of the mean); the ``N``-th call closes the epoch. That call
    still uses the old ``scale``; the new one applies from the next call on::

      opt = optax.chain(optax.adam(1e-3), rop2(steps_per_epoch=100))
      updates, state = opt.update(grads, state, params, value=loss)

(b) ``steps_per_epoch=None`` (the default): every call takes
    ``epoch_end=<bool>`` (it may be traced). On the **first update after an
    epoch** pass ``epoch_end=True`` with ``value=<metric of that epoch>``, e.g.
    a validation loss; the epoch is closed before the call's updates are
    scaled, so every step of an epoch uses the same ``scale``. On other calls
    pass ``epoch_end=False`` (``value`` is then ignored)::

      @jax.jit
      def train_step(params, state, batch, val_loss, epoch_end):
        grads = jax.grad(loss_fn)(params, batch)
        updates, state = opt.update(grads, state, params, value=val_loss,
                                    epoch_end=epoch_end)
        return optax.apply_updates(params, updates), state

      for epoch in range(max_epochs):
        for i, batch in enumerate(batches):
          params, state = train_step(params, state, batch, val_loss,
                                     epoch > 0 and i == 0)
        val_loss = evaluate(params)
        # The epoch closes at the next update. To decide on stopping now,
        # peek with zero gradients; states are values, so the peek is dropped.
        zeros = jax.tree.map(jnp.zeros_like, params)
        _, peek = opt.update(zeros, state, params, value=val_loss,
                             epoch_end=True)
        if should_stop(peek):
          break

Schedulers that ignore the metric (:func:`caswr`, :func:`rocp`) need no
``value``.

**Fidelity.** The rules are those of the report's published PyTorch code
(``torch_custom_lr_schedulers``): a metric that is greater than *or equal to*
the previous epoch's counts as bad (lower is better); ROP2 keeps no best value;
``stop`` is sticky but, as in the reference, the rules keep running if training
goes on. NaN metrics compare False, as in the reference: a NaN epoch is never
bad, and the epoch after it is not compared. Deviations from the reference are
listed in each docstring.
"""

import functools
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

_F32_MAX = float(np.finfo(np.float32).max)


class EpochSchedulerState(NamedTuple):
  """State of every epoch scheduler of this module (scalars unless noted)."""
  scale: jax.Array  # float32[], multiplier on the updates: lr / lr0.
  phase: jax.Array  # int32[], index of the current phase (per scheduler).
  stop: jax.Array  # bool[], stopping criterion met (sticky).
  epoch: jax.Array  # int32[], epochs closed so far.
  step_in_epoch: jax.Array  # int32[], update calls in the open epoch.
  value_sum: jax.Array  # float32[], sum of finite per-step values (mode a).
  value_count: jax.Array  # int32[], number of finite per-step values (mode a).
  prev_metric: jax.Array  # float32[] (rocp: clip value's shape), last metric.
  has_prev: jax.Array  # bool[], prev_metric holds a metric of this phase.
  bad_epochs: jax.Array  # int32[], ROP2 bad epochs since the last reduction.
  reductions: jax.Array  # int32[], ROP2/ROCP reductions (in this phase).
  cycle_pos: jax.Array  # int32[], epoch index x in the current cosine cycle.


class ROCPState(NamedTuple):
  """State of :func:`rocp`: the wrapped transformation's and the schedule's."""
  inner_state: Any  # state of the wrapped transformation.
  schedule: EpochSchedulerState  # scale, phase (always 0), stop, ...


# A transition maps (state, epoch metric) to the state after the epoch ends.
_Transition = Callable[[EpochSchedulerState, jax.Array], EpochSchedulerState]


# ---------------------------------------------------------------------------
# Argument validation.


def _check_int(name: str, value: Any, minimum: int) -> None:
  if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
      or value < minimum):
    raise ValueError(
        f"{name} must be an integer >= {minimum}, got {name}={value!r}.")


def _check_factor(factor: Any) -> None:
  if (isinstance(factor, bool) or not isinstance(factor, numbers.Real)
      or not 0.0 < factor < 1.0):
    raise ValueError(
        f"factor must be a number in (0, 1), got factor={factor!r}.")


def _check_min_scale(min_scale: Any) -> None:
  if (isinstance(min_scale, bool) or not isinstance(min_scale, numbers.Real)
      or not 0.0 <= min_scale < 1.0):
    raise ValueError(
        f"min_scale must be a number in [0, 1), got min_scale={min_scale!r}.")


def _check_steps_per_epoch(steps_per_epoch: Any) -> None:
  if steps_per_epoch is not None:
    _check_int("steps_per_epoch", steps_per_epoch, 1)


# ---------------------------------------------------------------------------
# Shared epoch bookkeeping.


def _init_state(scale=1.0, phase=0, cycle_pos=0,
                metric_shape=()) -> EpochSchedulerState:
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


def _select(pred, on_true: EpochSchedulerState,
            on_false: EpochSchedulerState) -> EpochSchedulerState:
  return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def _check_update_args(name, steps_per_epoch, value, epoch_end, needs_value):
  """Raises ValueError when the extra arguments do not match the epoch mode."""
  if steps_per_epoch is None:
    if epoch_end is None:
      raise ValueError(
          f"{name} with steps_per_epoch=None needs epoch_end=<bool> in every "
          "update call: True on the first update after an epoch (with "
          "value=<that epoch's metric>), False otherwise.")
    if jnp.ndim(epoch_end) != 0:
      raise ValueError(
          f"epoch_end must be a scalar bool, got shape {jnp.shape(epoch_end)}.")
  elif epoch_end is not None:
    raise ValueError(
        f"{name} with steps_per_epoch={steps_per_epoch} closes epochs itself; "
        "do not pass epoch_end (or use steps_per_epoch=None).")
  if needs_value:
    if value is None:
      raise ValueError(
          f"{name} needs the epoch metric: pass value=<scalar> to update "
          "(the per-step loss with steps_per_epoch, else the epoch's metric).")
    if jnp.ndim(value) != 0:
      raise ValueError(
          f"value must be a scalar, got shape {jnp.shape(value)}.")


def _close_epoch(state: EpochSchedulerState, metric: jax.Array,
                 transition: _Transition) -> EpochSchedulerState:
  new = transition(state, metric)._replace(
      epoch=optax.safe_increment(state.epoch),
      step_in_epoch=jnp.zeros_like(state.step_in_epoch),
      value_sum=jnp.zeros_like(state.value_sum),
      value_count=jnp.zeros_like(state.value_count),
  )
  return jax.tree.map(lambda x, old: jnp.asarray(x).astype(old.dtype), new,
                      state)


def _tick(state: EpochSchedulerState, transition: _Transition,
          steps_per_epoch: Optional[int], *, value=None, epoch_end=None,
          metric=None) -> tuple[jax.Array, EpochSchedulerState]:
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
    new_state = jax.lax.cond(jnp.asarray(epoch_end, jnp.bool_), close, keep,
                             state, metric)
    new_state = new_state._replace(step_in_epoch=optax.safe_increment(
        new_state.step_in_epoch))
    return new_state.scale, new_state
  if value is not None:
    value = jnp.asarray(value, jnp.float32)
    finite = jnp.isfinite(value)
    state = state._replace(
        value_sum=state.value_sum + jnp.where(finite, value, 0.0),
        value_count=jnp.where(finite, optax.safe_increment(state.value_count),
                              state.value_count))
  state = state._replace(step_in_epoch=optax.safe_increment(
      state.step_in_epoch))
  if metric is None:  # 0 / 0 = NaN when no step of the epoch was finite.
    metric = state.value_sum / state.value_count.astype(jnp.float32)
  new_state = jax.lax.cond(state.step_in_epoch >= steps_per_epoch, close, keep,
                           state, metric)
  return state.scale, new_state


def _scale_updates(updates: optax.Updates, scale: jax.Array) -> optax.Updates:
  return jax.tree.map(lambda u: (u * scale).astype(u.dtype), updates)


def _epoch_scheduler(
    name: str,
    init_state: Callable[[], EpochSchedulerState],
    transition: _Transition,
    steps_per_epoch: Optional[int],
    needs_value: bool,
) -> optax.GradientTransformationExtraArgs:
  """Builds the transformation of a metric-driven epoch scheduler."""

  def init_fn(params) -> EpochSchedulerState:
    del params
    return init_state()

  def update_fn(updates, state, params=None, *, value=None, epoch_end=None,
                **extra_args):
    del params, extra_args
    _check_update_args(name, steps_per_epoch, value, epoch_end, needs_value)
    scale, state = _tick(state, transition, steps_per_epoch, value=value,
                         epoch_end=epoch_end)
    return _scale_updates(updates, scale), state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


# ---------------------------------------------------------------------------
# Building blocks of the rules.


def _plateau(state: EpochSchedulerState, metric: jax.Array,
             patience: int) -> tuple[EpochSchedulerState, jax.Array]:
  """ROP2 bad-epoch count; returns (state, whether a plateau was reached).

  The first epoch of a phase is only recorded. Later, an epoch whose metric is
  >= the previous epoch's is bad; at ``patience`` bad epochs (not necessarily
  consecutive) the counter resets and a plateau is reported.
  """
  bad = state.has_prev & (metric >= state.prev_metric)
  count = jnp.where(bad, optax.safe_increment(state.bad_epochs),
                    state.bad_epochs)
  plateau = count >= patience
  return state._replace(
      bad_epochs=jnp.where(plateau, 0, count),
      prev_metric=metric,
      has_prev=jnp.asarray(True),
  ), plateau


def _reduce(state: EpochSchedulerState, do: jax.Array,
            factor: float) -> EpochSchedulerState:
  return state._replace(
      scale=jnp.where(do, state.scale * factor, state.scale),
      reductions=jnp.where(do, optax.safe_increment(state.reductions),
                           state.reductions))


def _cosine_scale(x, period: int, min_scale: float) -> jax.Array:
  """Eq. (6) over lr0: ``(cos(pi x / period) + 1) (1 - min_scale) / 2``."""
  x = jnp.asarray(x, jnp.float32)
  return ((jnp.cos(jnp.pi * x / period) + 1.0) * (1.0 - min_scale) /
          2.0).astype(jnp.float32)


def _cosine_epoch(state: EpochSchedulerState, period: int,
                  min_scale: float) -> tuple[EpochSchedulerState, jax.Array]:
  """Advances the cosine cycle one epoch; returns (state, cycle completed)."""
  x = state.cycle_pos + 1
  done = x >= period
  x = jnp.where(done, 0, x)
  return state._replace(cycle_pos=x, scale=_cosine_scale(x, period,
                                                        min_scale)), done


def _start_rop2_phase(state: EpochSchedulerState) -> EpochSchedulerState:
  """Next phase is a fresh ROP2 phase at lr0: scale 1, metric forgotten."""
  return state._replace(
      scale=jnp.ones_like(state.scale),
      phase=state.phase + 1,
      has_prev=jnp.asarray(False),
      bad_epochs=jnp.zeros_like(state.bad_epochs),
      reductions=jnp.zeros_like(state.reductions),
      cycle_pos=jnp.zeros_like(state.cycle_pos),
  )


def _rop2_transition(factor: float, patience: int,
                     max_reductions: int) -> _Transition:
  def transition(state, metric):
    state, plateau = _plateau(state, metric, patience)
    state = _reduce(state, plateau, factor)
    return state._replace(
        stop=state.stop | (state.reductions >= max_reductions))
  return transition


# ---------------------------------------------------------------------------
# Schedulers.


def rop2(
    factor: float = 0.5,
    patience: int = 3,
    max_reductions: int = 5,
    *,
    steps_per_epoch: Optional[int] = None,
) -> optax.GradientTransformationExtraArgs:
  r"""ROP2: reduce on plateau, judged against the previous epoch only.

  At the end of each epoch with metric :math:`m_e` (lower is better):

  * the first epoch only records :math:`m_0`;
  * if :math:`m_e \ge m_{e-1}` (ties are bad) a bad-epoch counter grows by
    one. Improvements do not reset it and no best value is kept;
  * when the counter reaches ``patience``: ``scale *= factor``, the counter
    resets to 0, and after the ``max_reductions``-th reduction ``stop`` is set
    (that reduction still applies).

  Unlike :func:`optax.contrib.reduce_on_plateau`, a plateau is counted against
  the previous epoch, not the best one, so the rate falls sooner. ``phase`` is
  always 0. See the module docstring for the two ways of marking epochs.

  Args:
    factor: multiplier in (0, 1) applied to the scale at each plateau.
    patience: number of bad epochs (>= 1) that make a plateau.
    max_reductions: number of reductions (>= 1) after which ``stop`` is set.
    steps_per_epoch: ``None`` to close epochs with ``epoch_end=True`` and
      ``value=<epoch metric>``; else close every ``steps_per_epoch`` calls with
      the mean of the per-step ``value``\ s.

  Returns:
    An :class:`optax.GradientTransformationExtraArgs` with state
    :class:`EpochSchedulerState`; ``update`` needs ``value=`` (and
    ``epoch_end=`` when ``steps_per_epoch`` is ``None``).

  Example:
    >>> import jax.numpy as jnp, optax
    >>> from autoclip_optax import rop2
    >>> opt = optax.chain(optax.sgd(1.0), rop2(patience=1, steps_per_epoch=2))
    >>> params = jnp.zeros(1)
    >>> state = opt.init(params)
    >>> for loss in [3.0, 3.0, 2.0, 2.0, 2.5, 2.5]:  # epoch means 3, 2, 2.5
    ...   _, state = opt.update(jnp.ones(1), state, params, value=loss)
    >>> float(state[1].scale)  # 2.5 >= 2: one bad epoch = plateau.
    0.5

  References:
    Vial, `Learning rate scheduling and gradient clipping for audio source
    separation <https://hal.science/hal-03780066>`_, internship report,
    SteelSeries France, 2022, sec. 3.3.1; code: ``ROP2`` in
    github.com/SteelSeries/torch_custom_lr_schedulers.
  """
  _check_factor(factor)
  _check_int("patience", patience, 1)
  _check_int("max_reductions", max_reductions, 1)
  _check_steps_per_epoch(steps_per_epoch)
  return _epoch_scheduler("rop2", _init_state,
                          _rop2_transition(factor, patience, max_reductions),
                          steps_per_epoch, needs_value=True)


def chained_rop2(
    factor: float = 0.5,
    patience: int = 3,
    reductions_per_phase: int = 5,
    phases: int = 3,
    *,
    steps_per_epoch: Optional[int] = None,
) -> optax.GradientTransformationExtraArgs:
  r"""ChainROP: successive ROP2 phases, each restarting from lr0.

  Each phase is :func:`rop2` with the same ``factor`` and ``patience``. The
  plateau that would make the ``reductions_per_phase``-th reduction of a phase
  instead resets ``scale`` to 1 and starts the next phase (so a phase reaches
  at most ``factor ** (reductions_per_phase - 1)``); ``phase`` counts the
  phases started so far minus one. After ``phases`` phases have ended, ``stop``
  is set (the scale has just been reset to 1; the chain goes on if training
  does).

  The report's ``ChainROP(lr0, f, p, n, k)`` is ``chained_rop2(f, p, n, k)``
  after ``optax.adam(lr0)`` (or any optimizer with rate ``lr0``).

  Ambiguity resolved by the code: the reference's reset sets the previous
  metric to ``None``, but its ``step`` then stores the current metric, so the
  first epoch of a new phase *is* compared with the last epoch of the previous
  one. This is what is implemented (bad-epoch and reduction counters do
  restart from 0).

  Args:
    factor: multiplier in (0, 1) applied at each plateau within a phase.
    patience: number of bad epochs (>= 1) that make a plateau.
    reductions_per_phase: the plateau with this index (>= 1) in a phase resets
      the scale to 1 and starts a new phase.
    phases: number of phases (>= 1) after which ``stop`` is set.
    steps_per_epoch: epoch mode, see :func:`rop2`.

  Returns:
    An :class:`optax.GradientTransformationExtraArgs` with state
    :class:`EpochSchedulerState`.

  Example:
    >>> import optax
    >>> from autoclip_optax import chained_rop2, should_stop
    >>> opt = optax.chain(optax.adam(1e-3), chained_rop2(0.5, 3, 4, 3))

  References:
    Vial, 2022, sec. 3.4 "Annealing with ROP2: ChainROP", fig. 11; code:
    ``Chained_ROP2`` in github.com/SteelSeries/torch_custom_lr_schedulers.
  """
  _check_factor(factor)
  _check_int("patience", patience, 1)
  _check_int("reductions_per_phase", reductions_per_phase, 1)
  _check_int("phases", phases, 1)
  _check_steps_per_epoch(steps_per_epoch)

  def transition(state, metric):
    state, plateau = _plateau(state, metric, patience)
    restart = plateau & (state.reductions + 1 >= reductions_per_phase)
    state = _reduce(state, plateau & ~restart, factor)
    state = _select(restart, state._replace(
        scale=jnp.ones_like(state.scale),
        phase=state.phase + 1,
        reductions=jnp.zeros_like(state.reductions)), state)
    return state._replace(stop=state.stop | (state.phase >= phases))

  return _epoch_scheduler("chained_rop2", _init_state, transition,
                          steps_per_epoch, needs_value=True)


def caswr(
    min_scale: float = 0.0,
    period: int = 8,
    *,
    steps_per_epoch: Optional[int] = None,
) -> optax.GradientTransformationExtraArgs:
  r"""CASWR: per-epoch cosine annealing with warm restarts (report's formula).

  In epoch :math:`e` the scale is, with :math:`x = e \bmod` ``period``:

  .. math::

    \mathrm{scale} = \frac{\cos(\pi x / \mathrm{period}) + 1}{2}
      \, (1 - \mathrm{min\_scale})

  which is the report's eq. (6), :math:`(\cos(\pi x/T) + 1)(lr_0 -
  lr_{min})/2`, divided by :math:`lr_0`: pass ``min_scale = lr_min / lr0``.
  The metric is ignored (no ``value`` needed); ``phase`` counts completed
  cycles and ``stop`` is never set.

  Differences from :func:`optax.sgdr_schedule` / PyTorch's
  ``CosineAnnealingWarmRestarts``: there is no ``+ lr_min`` term, so
  ``lr_min`` lowers the whole curve (the peak is ``lr0 - lr_min``) rather than
  setting a floor; since :math:`x` stops at ``period - 1`` the cosine never
  reaches its minimum, and the scale changes per epoch, not per step; there is
  no warmup.

  Deviation from the reference: the PyTorch code leaves the very first epoch
  at the optimizer's ``lr0`` rather than eq. (6) at :math:`x=0`
  (``lr0 - lr_min``); here eq. (6) is used for every epoch (identical when
  ``min_scale == 0``, as in all the report's experiments).

  Args:
    min_scale: ``lr_min / lr0``, in [0, 1).
    period: cycle length in epochs (>= 1).
    steps_per_epoch: epoch mode, see :func:`rop2`; with ``None`` pass
      ``epoch_end`` to every update.

  Returns:
    An :class:`optax.GradientTransformationExtraArgs` with state
    :class:`EpochSchedulerState`.

  Example:
    >>> import optax
    >>> from autoclip_optax import caswr
    >>> opt = optax.chain(optax.adam(1e-3), caswr(period=8, steps_per_epoch=50))

  References:
    Vial, 2022, sec. 3.3.2, eq. (6); Loshchilov & Hutter, SGDR: Stochastic
    Gradient Descent with Warm Restarts, ICLR 2017.
  """
  _check_min_scale(min_scale)
  _check_int("period", period, 1)
  _check_steps_per_epoch(steps_per_epoch)

  def init_state():
    return _init_state(scale=_cosine_scale(0, period, min_scale))

  def transition(state, metric):
    del metric
    state, done = _cosine_epoch(state, period, min_scale)
    return state._replace(phase=jnp.where(done, state.phase + 1, state.phase))

  return _epoch_scheduler("caswr", init_state, transition, steps_per_epoch,
                          needs_value=False)


def caswr_rop2(
    min_scale: float = 0.0,
    period: int = 8,
    n_annealings: int = 8,
    factor: float = 0.5,
    patience: int = 3,
    max_reductions: int = 5,
    *,
    steps_per_epoch: Optional[int] = None,
) -> optax.GradientTransformationExtraArgs:
  r"""CASWR for ``n_annealings`` cycles, then ROP2 from lr0 until it stops.

  Epochs ``0 .. n_annealings * period - 1`` follow :func:`caswr` (metrics
  ignored); then the scale returns to 1 and :func:`rop2` runs with ``factor``,
  ``patience`` and ``max_reductions``, its first epoch only recording the
  metric. ``phase`` is the index of the cosine cycle during annealing and
  ``n_annealings`` during ROP2. ``n_annealings=0`` is plain :func:`rop2`.

  Same first-epoch deviation from the reference as :func:`caswr` (only when
  ``min_scale > 0``).

  Args:
    min_scale: ``lr_min / lr0``, in [0, 1).
    period: cosine cycle length in epochs (>= 1).
    n_annealings: number of cosine cycles (>= 0) before ROP2.
    factor: ROP2 reduction multiplier in (0, 1).
    patience: ROP2 patience (>= 1).
    max_reductions: ROP2 reductions (>= 1) after which ``stop`` is set.
    steps_per_epoch: epoch mode, see :func:`rop2`.

  Returns:
    An :class:`optax.GradientTransformationExtraArgs` with state
    :class:`EpochSchedulerState`; ``update`` needs ``value=`` throughout.

  Example:
    >>> import optax
    >>> from autoclip_optax import autoclip, caswr_rop2
    >>> opt = optax.chain(autoclip(10.0), optax.adam(1e-3),
    ...                   caswr_rop2(period=8, n_annealings=6))

  References:
    Vial, 2022, sec. 3.3.3 and fig. 10; code: ``CASWR_ROP2`` in
    github.com/SteelSeries/torch_custom_lr_schedulers.
  """
  _check_min_scale(min_scale)
  _check_int("period", period, 1)
  _check_int("n_annealings", n_annealings, 0)
  _check_factor(factor)
  _check_int("patience", patience, 1)
  _check_int("max_reductions", max_reductions, 1)
  _check_steps_per_epoch(steps_per_epoch)
  rop2_step = _rop2_transition(factor, patience, max_reductions)

  def init_state():
    if n_annealings == 0:
      return _init_state()
    return _init_state(scale=_cosine_scale(0, period, min_scale))

  def transition(state, metric):
    annealed, done = _cosine_epoch(state, period, min_scale)
    annealed = annealed._replace(
        phase=jnp.where(done, annealed.phase + 1, annealed.phase))
    last = done & (annealed.phase >= n_annealings)
    annealed = _select(last, _start_rop2_phase(state), annealed)
    return _select(state.phase < n_annealings, annealed,
                   rop2_step(state, metric))

  return _epoch_scheduler("caswr_rop2", init_state, transition,
                          steps_per_epoch, needs_value=True)


def rop2_caswr_alt(
    starting_phase: str = "rop2",
    factor: float = 0.5,
    patience: int = 3,
    n_reduces: int = 5,
    min_scale: float = 0.0,
    period: int = 8,
    *,
    steps_per_epoch: Optional[int] = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Alternates ROP2 phases and single CASWR cycles, forever.

  * ROP2 phase: :func:`rop2` from scale 1 (first epoch only recorded). After
    the plateau that makes the ``n_reduces``-th reduction, the reduced scale
    is used for one more epoch, then a CASWR phase starts.
  * CASWR phase: ``period`` epochs of :func:`caswr`'s curve
    (:math:`x = 0, \dots, period - 1`), then a new ROP2 phase.

  ``phase`` counts phase switches: with ``starting_phase="rop2"`` even phases
  are ROP2 and odd ones CASWR, the other way round with ``"caswr"``. There is
  no stopping criterion (``stop`` stays False), as in the reference.

  Following the reference code, the epoch after the ``n_reduces``-th
  reduction runs at the reduced scale (so that reduction takes effect) and the
  metric of CASWR epochs is ignored. Deviation: the reference crashes when
  started in its CASWR phase; here ``starting_phase="caswr"`` runs one cosine
  cycle from epoch 0 (scale at :math:`x=0` first) before the first ROP2 phase.

  Args:
    starting_phase: ``"rop2"`` or ``"caswr"`` (case-insensitive).
    factor: ROP2 reduction multiplier in (0, 1).
    patience: ROP2 patience (>= 1).
    n_reduces: reductions (>= 1) that end a ROP2 phase.
    min_scale: ``lr_min / lr0`` of the cosine, in [0, 1).
    period: cosine cycle length in epochs (>= 1).
    steps_per_epoch: epoch mode, see :func:`rop2`.

  Returns:
    An :class:`optax.GradientTransformationExtraArgs` with state
    :class:`EpochSchedulerState`; ``update`` needs ``value=`` throughout.

  Example:
    >>> import optax
    >>> from autoclip_optax import rop2_caswr_alt
    >>> opt = optax.chain(optax.adam(1e-3), rop2_caswr_alt("rop2", n_reduces=3))

  References:
    Vial, 2022, sec. 3.3.3; code: ``ROP2_CASWR_Alt`` in
    github.com/SteelSeries/torch_custom_lr_schedulers.
  """
  if (not isinstance(starting_phase, str)
      or starting_phase.lower() not in ("rop2", "caswr")):
    raise ValueError(
        "starting_phase must be 'rop2' or 'caswr', got "
        f"starting_phase={starting_phase!r}.")
  _check_factor(factor)
  _check_int("patience", patience, 1)
  _check_int("n_reduces", n_reduces, 1)
  _check_min_scale(min_scale)
  _check_int("period", period, 1)
  _check_steps_per_epoch(steps_per_epoch)
  offset = 0 if starting_phase.lower() == "rop2" else 1

  def init_state():
    if offset == 0:
      return _init_state()
    return _init_state(scale=_cosine_scale(0, period, min_scale))

  def transition(state, metric):
    annealed, done = _cosine_epoch(state, period, min_scale)
    annealed = _select(done, _start_rop2_phase(state), annealed)
    reduced, plateau = _plateau(state, metric, patience)
    reduced = _reduce(reduced, plateau, factor)
    # cycle_pos -1: the cosine starts one epoch later (at x = 0).
    reduced = _select(plateau & (reduced.reductions >= n_reduces),
                      reduced._replace(phase=reduced.phase + 1,
                                       cycle_pos=jnp.full_like(
                                           reduced.cycle_pos, -1)), reduced)
    in_caswr = (state.phase + offset) % 2 == 1
    return _select(in_caswr, annealed, reduced)

  return _epoch_scheduler("rop2_caswr_alt", init_state, transition,
                          steps_per_epoch, needs_value=True)


def _default_clip_value(inner_state) -> Any:
  return optax.tree.get(inner_state, "threshold")


def rocp(
    inner: optax.GradientTransformation,
    factor: float = 0.5,
    threshold: float = 0.005,
    max_reductions: int = 5,
    *,
    steps_per_epoch: Optional[int] = None,
    clip_value_fn: Optional[Callable[[Any], jax.Array]] = None,
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
        "inner must be an optax.GradientTransformation, got "
        f"inner={inner!r}.")
  _check_factor(factor)
  if (isinstance(threshold, bool) or not isinstance(threshold, numbers.Real)
      or not 0.0 < threshold < float("inf")):
    raise ValueError(
        f"threshold must be a finite number > 0, got threshold={threshold!r}.")
  _check_int("max_reductions", max_reductions, 1)
  _check_steps_per_epoch(steps_per_epoch)
  if clip_value_fn is not None and not callable(clip_value_fn):
    raise ValueError(
        f"clip_value_fn must be callable or None, got {clip_value_fn!r}.")
  inner = optax.with_extra_args_support(inner)
  get_clip = clip_value_fn or _default_clip_value

  def read_clip(inner_state) -> jax.Array:
    try:
      clip = get_clip(inner_state)
    except KeyError as e:
      raise ValueError(
          "rocp found several 'threshold' fields in the inner state; pass "
          "clip_value_fn to pick one.") from e
    if clip is None:
      raise ValueError(
          "rocp found no 'threshold' in the inner state: wrap a chain that "
          "contains autoclip, or pass clip_value_fn.")
    return jnp.asarray(clip, jnp.float32)

  def transition(state, clip):
    usable = jnp.all(jnp.isfinite(clip) & (clip > 0) & (clip < _F32_MAX))
    change = jnp.max(jnp.abs(clip - state.prev_metric) / clip)
    plateau = state.has_prev & usable & (change < threshold)
    state = _reduce(state, plateau, factor)
    return state._replace(
        prev_metric=clip, has_prev=jnp.asarray(True),
        stop=state.stop | (state.reductions >= max_reductions))

  def init_fn(params) -> ROCPState:
    inner_state = inner.init(params)
    clip = read_clip(inner_state)
    return ROCPState(inner_state, _init_state(metric_shape=jnp.shape(clip)))

  def update_fn(updates, state, params=None, *, value=None, epoch_end=None,
                **extra_args):
    _check_update_args("rocp", steps_per_epoch, value, epoch_end,
                       needs_value=False)
    if value is not None:
      extra_args["value"] = value
    if epoch_end is not None:
      extra_args["epoch_end"] = epoch_end
    updates, inner_state = inner.update(updates, state.inner_state, params,
                                        **extra_args)
    # Mode (a): this call is the epoch's last step; mode (b): the epoch ended
    # with the previous call, whose clip value is in the incoming state.
    clip = read_clip(state.inner_state if steps_per_epoch is None
                     else inner_state)
    scale, schedule = _tick(state.schedule, transition, steps_per_epoch,
                            epoch_end=epoch_end, metric=clip)
    return _scale_updates(updates, scale), ROCPState(inner_state, schedule)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


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
