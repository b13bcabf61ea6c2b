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
Their hyperparameters (``factor``, ``patience``, ``period``, ...) fix the
schedule's structure and are checked as Python numbers when the scheduler is
made; under :func:`optax.inject_hyperparams` list them in ``static_args``.

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
    pass ``epoch_end=False``; ``value`` is then not used but must still be
    given (any scalar, e.g. the last metric: one signature for a jitted
    step)::

      @jax.jit
      def train_step(params, state, batch, val_loss, epoch_end):
        grads = jax.grad(loss_fn)(params, batch)
        updates, state = opt.update(grads, state, params, value=val_loss,
                                    epoch_end=epoch_end)
        return optax.apply_updates(params, updates), state

      val_loss = jnp.inf  # Not used before the first epoch ends.
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

**Layout.** ``_epoch.py`` holds the state, the epoch bookkeeping shared by
every scheduler and :func:`should_stop`; ``_rop2.py`` the ROP2 family
(:func:`rop2`, :func:`chained_rop2`); ``_caswr.py`` the cosine family
(:func:`caswr`, :func:`caswr_rop2`, :func:`rop2_caswr_alt`); ``_rocp.py``
:func:`rocp`.
"""

from autoclip_optax._schedulers._caswr import caswr
from autoclip_optax._schedulers._caswr import caswr_rop2
from autoclip_optax._schedulers._caswr import rop2_caswr_alt
from autoclip_optax._schedulers._epoch import EpochSchedulerState
from autoclip_optax._schedulers._epoch import should_stop
from autoclip_optax._schedulers._rocp import rocp
from autoclip_optax._schedulers._rocp import ROCPState
from autoclip_optax._schedulers._rop2 import chained_rop2
from autoclip_optax._schedulers._rop2 import rop2

__all__ = [
  "EpochSchedulerState",
  "ROCPState",
  "caswr",
  "caswr_rop2",
  "chained_rop2",
  "rocp",
  "rop2",
  "rop2_caswr_alt",
  "should_stop",
]
