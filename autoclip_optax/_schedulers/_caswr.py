"""CASWR family: cosine annealing with warm restarts, alone or with ROP2."""

import jax
import jax.numpy as jnp
import optax

from autoclip_optax._schedulers._epoch import _check_factor
from autoclip_optax._schedulers._epoch import _check_int
from autoclip_optax._schedulers._epoch import _check_min_scale
from autoclip_optax._schedulers._epoch import _check_steps_per_epoch
from autoclip_optax._schedulers._epoch import _epoch_scheduler
from autoclip_optax._schedulers._epoch import _init_state
from autoclip_optax._schedulers._epoch import _reduce
from autoclip_optax._schedulers._epoch import _select
from autoclip_optax._schedulers._epoch import EpochSchedulerState
from autoclip_optax._schedulers._rop2 import _plateau
from autoclip_optax._schedulers._rop2 import _rop2_transition
from autoclip_optax._schedulers._rop2 import _start_rop2_phase


def _cosine_scale(x, period: int, min_scale: float) -> jax.Array:
  """Eq. (6) over lr0: ``(cos(pi x / period) + 1) (1 - min_scale) / 2``."""
  x = jnp.asarray(x, jnp.float32)
  return (
    (jnp.cos(jnp.pi * x / period) + 1.0) * (1.0 - min_scale) / 2.0
  ).astype(jnp.float32)


def _cosine_epoch(
  state: EpochSchedulerState, period: int, min_scale: float
) -> tuple[EpochSchedulerState, jax.Array]:
  """Advances the cosine cycle one epoch; returns (state, cycle completed)."""
  x = state.cycle_pos + 1
  done = x >= period
  x = jnp.where(done, 0, x)
  return state._replace(
    cycle_pos=x, scale=_cosine_scale(x, period, min_scale)
  ), done


def caswr(
  min_scale: float = 0.0,
  period: int = 8,
  *,
  steps_per_epoch: int | None = None,
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

  return _epoch_scheduler(
    "caswr", init_state, transition, steps_per_epoch, needs_value=False
  )


def caswr_rop2(
  min_scale: float = 0.0,
  period: int = 8,
  n_annealings: int = 8,
  factor: float = 0.5,
  patience: int = 3,
  max_reductions: int = 5,
  *,
  steps_per_epoch: int | None = None,
) -> optax.GradientTransformationExtraArgs:
  r"""CASWR for ``n_annealings`` cycles, then ROP2 from lr0 until it stops.

  Epochs ``0 .. n_annealings * period - 1`` follow :func:`caswr` (metrics
  ignored); then the scale returns to 1 and :func:`rop2` runs with ``factor``,
  ``patience`` and ``max_reductions``, its first epoch only recording the
  metric. ``phase`` is the index of the cosine cycle during annealing and
  ``n_annealings`` during ROP2. ``n_annealings=0`` is plain :func:`rop2`.

  Deviations from the reference:

  * the same first-epoch deviation as :func:`caswr` (only when
    ``min_scale > 0``);
  * ``n_annealings=0`` is exactly :func:`rop2`, whose first epoch records the
    metric. The reference starts in its CASWR phase even then and switches to
    ROP2 only at the first epoch end, discarding that epoch's metric, so its
    ROP2 decisions come one epoch later: with ``patience=1`` on a constant
    metric it keeps lr0 in epoch 2, where this scheduler is already at
    ``factor``. The reference's rates are this scheduler's on the metrics
    from epoch 1 on, one epoch late. Zero annealing cycles should mean no
    annealing phase at all, hence plain ROP2 here.

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
      phase=jnp.where(done, annealed.phase + 1, annealed.phase)
    )
    last = done & (annealed.phase >= n_annealings)
    annealed = _select(last, _start_rop2_phase(state), annealed)
    return _select(
      state.phase < n_annealings, annealed, rop2_step(state, metric)
    )

  return _epoch_scheduler(
    "caswr_rop2", init_state, transition, steps_per_epoch, needs_value=True
  )


def rop2_caswr_alt(
  starting_phase: str = "rop2",
  factor: float = 0.5,
  patience: int = 3,
  n_reduces: int = 5,
  min_scale: float = 0.0,
  period: int = 8,
  *,
  steps_per_epoch: int | None = None,
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
  if not isinstance(starting_phase, str) or starting_phase.lower() not in (
    "rop2",
    "caswr",
  ):
    raise ValueError(
      "starting_phase must be 'rop2' or 'caswr', got "
      f"starting_phase={starting_phase!r}."
    )
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
    reduced = _select(
      plateau & (reduced.reductions >= n_reduces),
      reduced._replace(
        phase=reduced.phase + 1, cycle_pos=jnp.full_like(reduced.cycle_pos, -1)
      ),
      reduced,
    )
    in_caswr = (state.phase + offset) % 2 == 1
    return _select(in_caswr, annealed, reduced)

  return _epoch_scheduler(
    "rop2_caswr_alt", init_state, transition, steps_per_epoch, needs_value=True
  )
