"""ROP2 family: reduce on plateau against the previous epoch, and ChainROP."""

import jax
import jax.numpy as jnp
import optax

from autoclip_optax._schedulers._epoch import _check_factor
from autoclip_optax._schedulers._epoch import _check_int
from autoclip_optax._schedulers._epoch import _check_steps_per_epoch
from autoclip_optax._schedulers._epoch import _epoch_scheduler
from autoclip_optax._schedulers._epoch import _init_state
from autoclip_optax._schedulers._epoch import _reduce
from autoclip_optax._schedulers._epoch import _select
from autoclip_optax._schedulers._epoch import _Transition
from autoclip_optax._schedulers._epoch import EpochSchedulerState


def _plateau(
  state: EpochSchedulerState, metric: jax.Array, patience: int
) -> tuple[EpochSchedulerState, jax.Array]:
  """ROP2 bad-epoch count; returns (state, whether a plateau was reached).

  The first epoch of a phase is only recorded. Later, an epoch whose metric is
  >= the previous epoch's is bad; at ``patience`` bad epochs (not necessarily
  consecutive) the counter resets and a plateau is reported.
  """
  bad = state.has_prev & (metric >= state.prev_metric)
  count = jnp.where(
    bad, optax.safe_increment(state.bad_epochs), state.bad_epochs
  )
  plateau = count >= patience
  return state._replace(
    bad_epochs=jnp.where(plateau, 0, count),
    prev_metric=metric,
    has_prev=jnp.asarray(True),
  ), plateau


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


def _rop2_transition(
  factor: float, patience: int, max_reductions: int
) -> _Transition:
  def transition(state, metric):
    state, plateau = _plateau(state, metric, patience)
    state = _reduce(state, plateau, factor)
    return state._replace(
      stop=state.stop | (state.reductions >= max_reductions)
    )

  return transition


def rop2(
  factor: float = 0.5,
  patience: int = 3,
  max_reductions: int = 5,
  *,
  steps_per_epoch: int | None = None,
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
  return _epoch_scheduler(
    "rop2",
    _init_state,
    _rop2_transition(factor, patience, max_reductions),
    steps_per_epoch,
    needs_value=True,
  )


def chained_rop2(
  factor: float = 0.5,
  patience: int = 3,
  reductions_per_phase: int = 5,
  phases: int = 3,
  *,
  steps_per_epoch: int | None = None,
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
    state = _select(
      restart,
      state._replace(
        scale=jnp.ones_like(state.scale),
        phase=state.phase + 1,
        reductions=jnp.zeros_like(state.reductions),
      ),
      state,
    )
    return state._replace(stop=state.stop | (state.phase >= phases))

  return _epoch_scheduler(
    "chained_rop2", _init_state, transition, steps_per_epoch, needs_value=True
  )
