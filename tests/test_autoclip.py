"""AutoClip semantics, optax integration and argument validation."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from autoclip_optax import autoclip
from autoclip_optax import AutoClipState
from autoclip_optax import clip_fraction

NO_CLIP = float(np.finfo(np.float32).max)


def test_hand_computed_three_steps():
  tx = autoclip(p=50.0, history_size=10)
  params = {"w": jnp.zeros(2)}
  state = tx.init(params)
  # Step 1: norm of (3, 4) is 5; history [5]; median 5; not clipped.
  u, state = tx.update({"w": jnp.array([3.0, 4.0])}, state)
  np.testing.assert_allclose(u["w"], [3.0, 4.0])
  assert float(state.threshold) == 5.0 and not bool(state.clipped)
  # Step 2: norm 10; history [5, 10]; median 7.5 < 10: scaled by 0.75.
  u, state = tx.update({"w": jnp.array([6.0, 8.0])}, state)
  np.testing.assert_allclose(u["w"], [4.5, 6.0], rtol=1e-6)
  assert float(state.threshold) == 7.5 and bool(state.clipped)
  # Step 3: norm 1; history [5, 10, 1]; median 5 > 1: untouched.
  u, state = tx.update({"w": jnp.array([0.6, 0.8])}, state)
  np.testing.assert_allclose(u["w"], [0.6, 0.8], rtol=1e-6)
  assert float(state.threshold) == 5.0
  assert int(state.count) == 3 and int(state.num_clipped) == 1
  np.testing.assert_allclose(float(clip_fraction(state)), 1 / 3)


def test_global_norm_not_per_tensor():
  tx = autoclip(p=0.0, history_size=10)
  state = tx.init({"a": jnp.zeros(1), "b": jnp.zeros(1)})
  _, state = tx.update({"a": jnp.array([3.0]), "b": jnp.array([4.0])}, state)
  assert float(state.grad_norm) == 5.0
  # Global norm 10 clipped to the minimum 5: every leaf halves.
  u, state = tx.update({"a": jnp.array([6.0]), "b": jnp.array([8.0])}, state)
  np.testing.assert_allclose([u["a"][0], u["b"][0]], [3.0, 4.0], rtol=1e-6)


@pytest.mark.parametrize("p", [0.0, 1.0, 10.0, 50.0, 90.0, 100.0])
def test_invariants_over_p(p):
  """Post-clip norm <= threshold; p=100 never clips; zero stays zero."""
  tx = autoclip(p, 64)
  rng = np.random.default_rng(int(p))
  state = tx.init({"w": jnp.zeros(5)})
  update = jax.jit(tx.update)
  for t in range(50):
    g = {
      "w": jnp.asarray(
        rng.standard_normal(5) * rng.lognormal(0, 2), jnp.float32
      )
    }
    if t % 11 == 0:
      g = {"w": jnp.zeros(5)}
    u, state = update(g, state)
    out_norm = float(optax.tree.norm(u))
    assert out_norm <= float(state.threshold) * (1 + 1e-6) or t % 11 == 0
    if t % 11 == 0:
      assert np.all(np.asarray(u["w"]) == 0.0)
    if p == 100.0:
      np.testing.assert_array_equal(u["w"], g["w"])
  assert int(state.history_length) == 50


def test_state_fields_and_tree_get_inside_jit():
  opt = optax.chain(autoclip(10.0, 100), optax.adam(1e-3))
  params = {"w": jnp.ones(3)}
  state = opt.init(params)

  @jax.jit
  def step(params, state):
    grads = jax.tree.map(lambda x: 2 * x, params)
    updates, state = opt.update(grads, state, params)
    logs = {
      "threshold": optax.tree.get(state, "threshold"),
      "grad_norm": optax.tree.get(state, "grad_norm"),
      "clip_fraction": clip_fraction(state),
    }
    return optax.apply_updates(params, updates), state, logs

  params, state, logs = step(params, state)
  np.testing.assert_allclose(logs["threshold"], 2 * np.sqrt(3), rtol=1e-6)
  np.testing.assert_allclose(logs["grad_norm"], 2 * np.sqrt(3), rtol=1e-6)
  assert float(logs["clip_fraction"]) == 0.0
  ac = state[0]
  assert isinstance(ac, AutoClipState)
  for field in ac:
    assert isinstance(field, jax.Array)
  assert ac.history.shape == (100,) and ac.history.dtype == jnp.float32


def test_no_recompilation_on_second_step():
  traces = []
  tx = optax.chain(autoclip(10.0, 32), optax.adam(1e-3))

  @jax.jit
  def step(params, state, grads):
    traces.append(1)
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  params = {"w": jnp.ones(4)}
  state = tx.init(params)
  for i in range(3):
    params, state = step(params, state, {"w": jnp.full(4, float(i + 1))})
  assert len(traces) == 1


def test_inject_hyperparams_changes_p_from_next_step():
  tx = optax.inject_hyperparams(autoclip, static_args=("history_size",))(
    p=100.0, history_size=16
  )
  state = tx.init({"w": jnp.zeros(1)})
  update = jax.jit(tx.update)
  for norm in [1.0, 2.0, 3.0, 4.0]:
    _, state = update({"w": jnp.array([norm])}, state)
  assert float(optax.tree.get(state, "threshold")) == 4.0
  state.hyperparams["p"] = jnp.asarray(0.0)
  u, state = update({"w": jnp.array([5.0])}, state)
  # p = 0: clip to the smallest norm in [1, 2, 3, 4, 5].
  assert float(optax.tree.get(state, "threshold")) == 1.0
  np.testing.assert_allclose(u["w"], [1.0])


def test_inject_hyperparams_without_static_history_size_fails_clearly():
  with pytest.raises(ValueError, match="static_args"):
    optax.inject_hyperparams(autoclip)(p=10.0, history_size=16).init(
      {"w": jnp.zeros(1)}
    )


def test_apply_if_finite_skips_nonfinite_steps():
  inner = optax.chain(autoclip(10.0, 16), optax.sgd(1.0))
  tx = optax.apply_if_finite(inner, max_consecutive_errors=5)
  params = {"w": jnp.ones(2)}
  state = tx.init(params)
  update = jax.jit(tx.update)
  u, state = update({"w": jnp.array([1.0, 1.0])}, state, params)
  u, state = update({"w": jnp.array([jnp.nan, 1.0])}, state, params)
  np.testing.assert_array_equal(u["w"], [0.0, 0.0])
  assert int(state.notfinite_count) == 1
  ac = optax.tree.get(state, "history_length")
  assert int(ac) == 1  # The NaN step never reached the history.
  u, state = update({"w": jnp.array([2.0, 2.0])}, state, params)
  assert np.all(np.isfinite(np.asarray(u["w"])))


def test_nonfinite_update_passes_through_and_state_stays_finite():
  tx = autoclip(10.0, 8)
  state = tx.init({"w": jnp.zeros(2)})
  _, state = tx.update({"w": jnp.array([1.0, 0.0])}, state)
  before = state
  u, state = tx.update({"w": jnp.array([jnp.inf, 1.0])}, state)
  assert np.isinf(np.asarray(u["w"])[0]) and np.asarray(u["w"])[1] == 1.0
  assert int(state.num_nonfinite) == 1 and not bool(state.clipped)
  np.testing.assert_array_equal(state.sorted_history, before.sorted_history)
  np.testing.assert_array_equal(state.history, before.history)
  assert float(state.threshold) == float(before.threshold)
  for leaf in jax.tree.leaves(state):
    assert np.all(np.isfinite(np.asarray(leaf, np.float64)))


@pytest.mark.parametrize("group_labels", [None, "per_leaf"])
def test_finite_update_with_a_norm_beyond_float32_is_clipped(group_labels):
  # Every entry finite, the norm (4.2e38) is not representable: the step
  # stays out of the history like a non-finite one but is clipped to the
  # threshold, not passed through (apply_if_finite would accept it).
  tx = autoclip(10.0, 8, group_labels=group_labels)
  state = tx.init({"w": jnp.zeros(2)})
  _, state = tx.update({"w": jnp.array([1.0, 1.0])}, state)
  before = state
  u, state = tx.update({"w": jnp.array([3e38, 3e38])}, state)
  threshold = float(np.asarray(before.threshold).reshape(-1)[0])
  np.testing.assert_allclose(
    np.asarray(u["w"]), [threshold / np.sqrt(2)] * 2, rtol=1e-6
  )
  assert np.all(np.asarray(state.clipped))
  assert np.all(np.asarray(state.num_nonfinite) == 1)
  np.testing.assert_array_equal(state.sorted_history, before.sorted_history)


def test_first_step_nonfinite_means_no_threshold_yet():
  tx = autoclip(10.0, 8)
  state = tx.init({"w": jnp.zeros(1)})
  _, state = tx.update({"w": jnp.array([jnp.nan])}, state)
  assert float(state.threshold) == NO_CLIP
  assert int(state.history_length) == 0


def test_multisteps():
  tx = optax.MultiSteps(
    optax.chain(autoclip(0.0, 16), optax.sgd(1.0)), every_k_schedule=2
  )
  params = {"w": jnp.zeros(1)}
  state = tx.init(params)
  update = jax.jit(tx.update)
  for g in [1.0, 3.0, 4.0, 8.0]:
    u, state = update({"w": jnp.array([g])}, state, params)
  inner = state.inner_opt_state[0]
  # Inner AutoClip saw the two averaged gradients 2 and 6.
  assert int(inner.count) == 2
  np.testing.assert_allclose(np.sort(np.asarray(inner.history[:2])), [2.0, 6.0])
  np.testing.assert_allclose(u["w"], [-2.0])  # 6 clipped to min norm 2.


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
def test_low_precision_dtype_preserved_no_overflow(dtype):
  tx = optax.chain(autoclip(10.0, 16), optax.adam(1e-3))
  # 4096 entries of 200: the sum of squares (1.6e8) overflows float16.
  params = {"w": jnp.zeros(4096, dtype), "b": jnp.zeros(3, dtype)}
  state = tx.init(params)
  grads = {"w": jnp.full(4096, 200.0, dtype), "b": jnp.ones(3, dtype)}
  updates, state = jax.jit(tx.update)(grads, state, params)
  assert updates["w"].dtype == dtype and updates["b"].dtype == dtype
  ac = state[0]
  np.testing.assert_allclose(
    float(ac.grad_norm), np.sqrt(4096 * 4e4 + 3), rtol=1e-3
  )
  assert ac.history.dtype == jnp.float32
  assert np.all(np.isfinite(np.asarray(updates["w"], np.float32)))


def test_warmup_without_and_with_fallback_norm():
  tx = autoclip(0.0, 16, warmup_steps=2)
  state = tx.init({"w": jnp.zeros(1)})
  for g in [1.0, 5.0]:  # Recorded but not clipped.
    u, state = tx.update({"w": jnp.array([g])}, state)
    np.testing.assert_allclose(u["w"], [g])
    assert float(state.threshold) == NO_CLIP
  u, state = tx.update({"w": jnp.array([3.0])}, state)
  np.testing.assert_allclose(u["w"], [1.0])  # min of [1, 5, 3].

  tx = autoclip(0.0, 16, warmup_steps=1, warmup_max_norm=0.5)
  state = tx.init({"w": jnp.zeros(1)})
  u, state = tx.update({"w": jnp.array([2.0])}, state)
  np.testing.assert_allclose(u["w"], [0.5])


def test_per_leaf_groups_clip_each_leaf_by_its_own_history():
  tx = autoclip(0.0, 16, group_labels="per_leaf")
  params = {"a": jnp.zeros(1), "b": jnp.zeros(1)}
  state = tx.init(params)
  assert state.threshold.shape == (2,) and state.history.shape == (2, 16)
  _, state = tx.update({"a": jnp.array([1.0]), "b": jnp.array([100.0])}, state)
  u, state = tx.update({"a": jnp.array([2.0]), "b": jnp.array([50.0])}, state)
  np.testing.assert_allclose([u["a"][0], u["b"][0]], [1.0, 50.0])
  np.testing.assert_allclose(clip_fraction(state), [0.5, 0.0])


def test_callable_group_labels_like_multi_transform():
  labels_fn = lambda tree: jax.tree.map(  # noqa: E731
    lambda x: "matrix" if x.ndim == 2 else "vector", tree
  )
  tx = autoclip(50.0, 8, group_labels=labels_fn)
  params = {"w": jnp.zeros((2, 2)), "b": jnp.zeros(2), "c": jnp.zeros(3)}
  state = tx.init(params)
  assert state.threshold.shape == (2,)
  grads = {"w": jnp.ones((2, 2)), "b": jnp.ones(2), "c": jnp.ones(3)}
  _, state = jax.jit(tx.update)(grads, state)
  # Groups sorted by label: "matrix" (norm 2), "vector" (norm sqrt(5)).
  np.testing.assert_allclose(state.grad_norm, [2.0, np.sqrt(5.0)], rtol=1e-6)


def test_group_labels_structure_mismatch_is_reported():
  tx = autoclip(10.0, 8, group_labels={"a": "x"})
  with pytest.raises(ValueError, match="group_labels"):
    tx.init({"a": jnp.zeros(1), "b": jnp.zeros(1)})


@pytest.mark.parametrize(
  "kwargs, match",
  [
    ({"p": -1.0}, "p=-1.0"),
    ({"p": 100.5}, "p=100.5"),
    ({"p": float("nan")}, "p=nan"),
    ({"history_size": 0}, "history_size=0"),
    ({"history_size": 2.5}, "history_size=2.5"),
    ({"history_size": True}, "history_size=True"),
    ({"method": "hazen"}, "method='hazen'"),
    ({"warmup_steps": -2}, "warmup_steps=-2"),
    ({"warmup_steps": 3, "warmup_max_norm": 0.0}, "warmup_max_norm=0.0"),
    ({"warmup_max_norm": 1.0}, "warmup_steps=0"),
    ({"group_labels": "per_layer"}, "group_labels='per_layer'"),
    # Not numbers, or concrete jax arrays (checked like Python numbers).
    ({"p": None}, "p=None"),
    ({"p": "10"}, "p='10'"),
    ({"p": [10.0]}, r"p=\[10.0\]"),
    ({"p": jnp.asarray(150.0)}, "p=Array(150."),
    ({"warmup_steps": None}, "warmup_steps=None"),
    ({"warmup_steps": 2**31}, "warmup_steps=2147483648"),
    (
      {"warmup_steps": 3, "warmup_max_norm": jnp.asarray(-1.0)},
      "warmup_max_norm=Array(-1.",
    ),
  ],
)
def test_bad_arguments_raise_at_construction(kwargs, match):
  with pytest.raises(ValueError, match=match.replace("(", r"\(")):
    autoclip(**kwargs)


def test_inject_hyperparams_validates_concrete_values_at_init():
  tx = optax.inject_hyperparams(autoclip, static_args=("history_size",))
  with pytest.raises(ValueError, match="p must be a number in"):
    tx(p=150.0, history_size=8).init({"w": jnp.zeros(3)})


def test_traced_bad_warmup_max_norm_never_reverses_the_update():
  # Traced values are not validated; a non-positive max norm means no
  # clipping, never a negative factor (gradient ascent).
  tx = optax.inject_hyperparams(autoclip, static_args=("history_size",))(
    p=10.0, history_size=8, warmup_steps=5, warmup_max_norm=1.0
  )
  state = tx.init({"w": jnp.zeros(3)})
  update = jax.jit(tx.update)
  for bad in (-1.0, 0.0, float("nan")):
    state.hyperparams["warmup_max_norm"] = jnp.float32(bad)
    u, state = update({"w": jnp.full(3, 3.0)}, state)
    np.testing.assert_array_equal(u["w"], [3.0, 3.0, 3.0])


@pytest.mark.parametrize("dtype", [jnp.complex64])
def test_complex_updates_use_the_modulus(dtype):
  # The norm of [3j, 4] is 5 (not Re(sum x^2) = -9 + 16); p = 0 clips the
  # second step to the first step's norm.
  tx = autoclip(p=0.0, history_size=4)
  state = tx.init({"w": jnp.zeros(2, dtype)})
  _, state = tx.update({"w": jnp.array([1.0, 0.0], dtype)}, state)
  u, state = tx.update({"w": jnp.array([3j, 4.0], dtype)}, state)
  assert float(state.grad_norm) == pytest.approx(5.0)
  assert u["w"].dtype == dtype
  np.testing.assert_allclose(u["w"], [0.6j, 0.8], rtol=1e-6)
  # Tiny values take the rescaled path: the modulus there too.
  tiny = jnp.array([3e-20j, 4e-20], dtype)
  _, fresh = tx.update({"w": tiny}, tx.init({"w": jnp.zeros(2, dtype)}))
  assert float(fresh.grad_norm) == pytest.approx(5e-20, rel=1e-5)
