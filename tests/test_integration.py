"""AutoClip inside Flax training loops, checkpoints and multi-device JAX."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from flax import nnx
from flax.training import train_state
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from autoclip_optax import autoclip
from tests import multihost_problem


def _batches(num, seed=0, batch=8, dim=5):
  rng = np.random.default_rng(seed)
  for t in range(num):
    x = rng.standard_normal((batch, dim)).astype(np.float32)
    y = (x.sum(-1, keepdims=True) * (50.0 if t == 4 else 1.0)).astype(
      np.float32
    )
    yield jnp.asarray(x), jnp.asarray(y)


class _MLP(nn.Module):
  @nn.compact
  def __call__(self, x):
    return nn.Dense(1)(nn.tanh(nn.Dense(8)(x)))


def test_flax_train_state_apply_gradients():
  model = _MLP()
  params = model.init(jax.random.key(0), jnp.zeros((1, 5)))
  tx = optax.chain(autoclip(10.0, 64), optax.adam(1e-2))
  state = train_state.TrainState.create(
    apply_fn=model.apply, params=params, tx=tx
  )

  @jax.jit
  def step(state, x, y):
    loss, grads = jax.value_and_grad(
      lambda p: jnp.mean((state.apply_fn(p, x) - y) ** 2)
    )(state.params)
    return state.apply_gradients(grads=grads), loss

  losses = []
  for x, y in _batches(30):
    state, loss = step(state, x, y)
    losses.append(float(loss))
  autoclip_state = state.opt_state[0]
  assert int(autoclip_state.count) == 30
  assert int(optax.tree.get(state.opt_state, "num_clipped")) > 0
  assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_flax_nnx_optimizer():

  class Model(nnx.Module):
    def __init__(self, rngs):
      self.linear = nnx.Linear(5, 1, rngs=rngs)

    def __call__(self, x):
      return self.linear(x)

  model = Model(nnx.Rngs(0))
  optimizer = nnx.Optimizer(
    model, optax.chain(autoclip(10.0, 64), optax.adam(1e-2)), wrt=nnx.Param
  )

  @nnx.jit
  def step(model, optimizer, x, y):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
    optimizer.update(model, grads)
    return loss

  before = np.asarray(model.linear.kernel[...]).copy()
  for x, y in _batches(10):
    step(model, optimizer, x, y)
  assert not np.allclose(before, np.asarray(model.linear.kernel[...]))
  threshold = optax.tree.get(nnx.state(optimizer, nnx.OptState), "threshold")
  assert np.isfinite(float(jnp.asarray(threshold)))


def _train(params, opt_state, opt, batches):
  step = jax.jit(multihost_problem.make_step(opt))
  for x, y in batches:
    params, opt_state = step(params, opt_state, x, y)
  return params, opt_state


def test_orbax_checkpoint_resume_is_bit_identical(tmp_path):
  x_all, y_all = multihost_problem.make_data()
  batches = list(zip(x_all, y_all, strict=True))
  opt = multihost_problem.make_optimizer()
  params = multihost_problem.init_params()
  full_params, full_state = _train(params, opt.init(params), opt, batches)

  half_params, half_state = _train(params, opt.init(params), opt, batches[:6])
  path = tmp_path / "ckpt"
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(path, {"params": half_params, "opt_state": half_state})
  target = {"params": params, "opt_state": opt.init(params)}
  with ocp.StandardCheckpointer() as ckptr:
    restored = ckptr.restore(path, target)
  resumed_params, resumed_state = _train(
    restored["params"], restored["opt_state"], opt, batches[6:]
  )

  for a, b in zip(
    jax.tree.leaves((full_params, full_state)),
    jax.tree.leaves((resumed_params, resumed_state)),
    strict=True,
  ):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_pmap_replicas_identical_and_equal_to_one_device():
  n = jax.device_count()
  assert n == 8, "conftest.py sets 8 simulated CPU devices"
  x_all, y_all = multihost_problem.make_data()
  opt = multihost_problem.make_optimizer()

  @functools.partial(jax.pmap, axis_name="batch")
  def step(params, state, x, y):
    grads = jax.grad(multihost_problem.loss_fn)(params, x, y)
    grads = jax.lax.pmean(grads, "batch")
    updates, state = opt.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  params = multihost_problem.init_params()
  state = opt.init(params)
  params, state = jax.tree.map(lambda x: jnp.stack([x] * n), (params, state))
  for t in range(x_all.shape[0]):
    x = x_all[t].reshape(n, -1, x_all.shape[-1])
    y = y_all[t].reshape(n, -1)
    params, state = step(params, state, x, y)

  for leaf in jax.tree.leaves((params, state)):
    leaf = np.asarray(leaf)
    for replica in leaf[1:]:
      np.testing.assert_array_equal(replica, leaf[0])
  single_params, single_state = multihost_problem.run_single_device()
  assert int(state[0].num_clipped[0]) == int(single_state[0].num_clipped) > 0
  np.testing.assert_allclose(
    state[0].history[0], single_state[0].history, rtol=1e-5
  )
  np.testing.assert_allclose(
    params["w"][0], single_params["w"], rtol=1e-4, atol=1e-5
  )


@pytest.mark.parametrize(
  "shard_params", [False, True], ids=["data_parallel", "params_sharded"]
)
def test_sharded_jit_equals_one_device(shard_params):
  mesh = Mesh(np.array(jax.devices()), ("d",))
  rng = np.random.default_rng(0)
  opt = optax.chain(autoclip(10.0, 16), optax.adam(1e-2))
  params = {
    "w": jnp.asarray(rng.standard_normal((64, 8)), jnp.float32),
    "b": jnp.zeros((8,), jnp.float32),
  }
  grads_seq = [
    {
      "w": jnp.asarray(rng.standard_normal((64, 8)) * s, jnp.float32),
      "b": jnp.asarray(rng.standard_normal(8) * s, jnp.float32),
    }
    for s in (1.0, 2.0, 100.0, 0.5, 1.0, 3.0)
  ]

  def step(params, state, grads):
    updates, state = opt.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  ref_params, ref_state = params, opt.init(params)
  for g in grads_seq:
    ref_params, ref_state = jax.jit(step)(ref_params, ref_state, g)

  w_spec = P("d", None)
  sharding = {"w": NamedSharding(mesh, w_spec), "b": NamedSharding(mesh, P())}
  p = jax.device_put(
    params, sharding if shard_params else NamedSharding(mesh, P())
  )
  state = opt.init(p)
  sharded_step = jax.jit(step)
  for g in grads_seq:
    g = jax.device_put(g, sharding)
    p, state = sharded_step(p, state, g)
  if shard_params:
    assert p["w"].sharding.is_equivalent_to(sharding["w"], 2)
  for a, b in zip(
    jax.tree.leaves((ref_params, ref_state)),
    jax.tree.leaves((p, state)),
    strict=True,
  ):
    np.testing.assert_allclose(
      np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6
    )
