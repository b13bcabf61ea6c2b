"""The NNX train state: the model and its ``nnx.Optimizer`` as one pytree.

:class:`TrainState` is ``nnx.split((model, optimizer))``: the jitted train
step merges it, steps ``optimizer.update(model, grads, **extra_args)`` and
splits it again, and the state is donated, sharded and checkpointed like any
pytree. Checkpoints hold :func:`checkpoint_tree`, the pure form ``{"step",
"params", "opt_state"}`` with the parameters as nested dicts: the layout the
Flax Linen ``TrainState`` of earlier versions saved, whose checkpoints
therefore restore (:func:`restore_tree`) unchanged.
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from flax import struct

from examples.separation import models


def pure_opt_state(optimizer: nnx.Optimizer) -> Any:
  """The optax state of ``optimizer`` with plain arrays and dicts."""
  return jax.tree.map(
    lambda x: nnx.to_pure_dict(x) if isinstance(x, nnx.State) else x,
    nnx.as_pure(optimizer.opt_state),
    is_leaf=lambda x: isinstance(x, nnx.State),
  )


def _set_opt_state(optimizer: nnx.Optimizer, opt_state: Any) -> None:
  """Sets ``optimizer``'s optax state from its :func:`pure_opt_state` form."""

  def fill(template, value):
    if isinstance(template, nnx.State):
      nnx.replace_by_pure_dict(template, value)
      return template
    return value

  raw = jax.tree.map(
    fill,
    nnx.as_pure(optimizer.opt_state),
    opt_state,
    is_leaf=lambda x: isinstance(x, nnx.State),
  )
  nnx.update(optimizer.opt_state, nnx.state(raw))


@struct.dataclass
class TrainState:
  """The model and its ``nnx.Optimizer`` as ``nnx.split((model, optimizer))``.

  ``graphdef`` is static, ``state`` a pytree of arrays: the whole train state
  goes through ``jax.jit`` (donated), ``jax.device_put`` and ``jax.tree``
  functions. :meth:`merge` gives the live objects back. ``params``, ``step``
  and ``opt_state`` read the pure values (outside jit; they merge).
  """

  graphdef: Any = struct.field(pytree_node=False)
  state: Any

  @classmethod
  def create(
    cls, model: models.Separator, optimizer: nnx.Optimizer
  ) -> "TrainState":
    graphdef, state = nnx.split((model, optimizer))
    return cls(graphdef, state)

  def merge(self) -> tuple[models.Separator, nnx.Optimizer]:
    return nnx.merge(self.graphdef, self.state)

  def update(
    self, model: models.Separator, optimizer: nnx.Optimizer
  ) -> "TrainState":
    """This state with the (updated) ``model`` and ``optimizer``'s values."""
    return self.replace(state=nnx.state((model, optimizer)))

  @property
  def params(self) -> dict:
    """The model parameters as a pure nested dict."""
    return models.params_dict(self.merge()[0])

  @property
  def step(self) -> jax.Array:
    """Optimizer updates done so far."""
    return self.merge()[1].step.get_value()

  @property
  def opt_state(self) -> Any:
    """The optax state (plain arrays; parameter-shaped parts as dicts)."""
    return pure_opt_state(self.merge()[1])


def checkpoint_tree(state: TrainState) -> dict:
  """``{"step", "params", "opt_state"}``: what a checkpoint holds.

  The layout (and int32 ``step``) of the Flax Linen ``TrainState`` that
  earlier versions saved, so that their checkpoints load.
  """
  model, optimizer = state.merge()
  return {
    "step": optimizer.step.get_value().astype(jnp.int32),
    "params": models.params_dict(model),
    "opt_state": pure_opt_state(optimizer),
  }


def restore_tree(state: TrainState, tree: dict) -> TrainState:
  """``state`` with the values of a :func:`checkpoint_tree` ``tree``."""
  model, optimizer = state.merge()
  models.load_params(model, tree["params"])
  optimizer.step.set_value(jnp.asarray(tree["step"]).astype(jnp.uint32))
  _set_opt_state(optimizer, tree["opt_state"])
  return state.update(model, optimizer)
