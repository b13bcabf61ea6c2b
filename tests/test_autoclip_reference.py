"""AutoClip against a plain-numpy Algorithm 1 over long hostile streams."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from autoclip_optax import autoclip
from tests.reference import hostile_stream
from tests.reference import reference_autoclip

NUM_STEPS = 240


def _as_tree(leaves):
  return {
    "a": jnp.asarray(leaves[0]),
    "b": jnp.asarray(leaves[1]),
    "c": jnp.asarray(leaves[2]),
  }


def _run(tx, stream):
  state = tx.init(_as_tree(stream[0]))
  update = jax.jit(tx.update)
  results = []
  for leaves in stream:
    updates, state = update(_as_tree(leaves), state)
    results.append((jax.tree.leaves(updates), state))
  return results


def _assert_matches(ours, ref):
  for t, ((updates, state), expected) in enumerate(zip(ours, ref, strict=True)):
    threshold = float(state.threshold)
    if np.isinf(expected["threshold"]):
      assert threshold == np.finfo(np.float32).max, t
    else:
      np.testing.assert_allclose(
        threshold,
        expected["threshold"],
        rtol=2e-6,
        err_msg=f"threshold at step {t}",
      )
    assert bool(state.clipped) == expected["clipped"], t
    if np.isfinite(expected["norm"]):
      np.testing.assert_allclose(
        float(state.grad_norm),
        expected["norm"],
        rtol=2e-6,
        err_msg=f"norm at step {t}",
      )
    for got, want in zip(updates, expected["updates"], strict=True):
      scale = np.max(np.abs(want[np.isfinite(want)]), initial=0.0)
      np.testing.assert_allclose(
        np.asarray(got, np.float64),
        want,
        rtol=1e-5,
        atol=1e-6 * scale,
        equal_nan=True,
        err_msg=f"updates at step {t}",
      )
    for field in ("history", "sorted_history", "threshold", "grad_norm"):
      assert np.all(np.isfinite(np.asarray(getattr(state, field)))), (t, field)


@pytest.mark.parametrize(
  "history_size", [1, 37, 10_000], ids=["size1", "wraps_6x", "never_fills"]
)
@pytest.mark.parametrize("p", [0.0, 10.0, 62.5, 100.0])
def test_matches_numpy_algorithm1(history_size, p):
  stream = hostile_stream(NUM_STEPS, seed=int(p) + history_size)
  ours = _run(autoclip(p, history_size), stream)
  ref = reference_autoclip(stream, p, history_size)
  _assert_matches(ours, ref)


@pytest.mark.parametrize("method", ["lower", "higher", "nearest", "midpoint"])
def test_matches_numpy_methods(method):
  stream = hostile_stream(150, seed=7)
  ours = _run(autoclip(25.0, 29, method=method), stream)
  ref = reference_autoclip(stream, 25.0, 29, method=method)
  _assert_matches(ours, ref)


def test_matches_numpy_with_warmup():
  stream = hostile_stream(80, seed=3)
  ours = _run(autoclip(10.0, 50, warmup_steps=20, warmup_max_norm=2.0), stream)
  ref = reference_autoclip(
    stream, 10.0, 50, warmup_steps=20, warmup_max_norm=2.0
  )
  _assert_matches(ours, ref)


def test_nonfinite_steps_do_not_change_later_thresholds():
  stream = hostile_stream(120, seed=11)
  clean = [
    leaves
    for leaves in stream
    if np.all([np.all(np.isfinite(x)) for x in leaves])
  ]
  with_bad = _run(autoclip(10.0, 40), stream)
  without_bad = _run(autoclip(10.0, 40), clean)
  finite_thresholds = [
    float(s.threshold)
    for (_, s), leaves in zip(with_bad, stream, strict=True)
    if np.all([np.all(np.isfinite(x)) for x in leaves])
  ]
  np.testing.assert_array_equal(
    finite_thresholds, [float(s.threshold) for _, s in without_bad]
  )


def test_per_group_matches_numpy_per_group():
  """Each label group follows Algorithm 1 on its own norms."""
  stream = hostile_stream(100, seed=5)
  labels = {"a": "big", "b": "small", "c": "small"}
  ours = _run(autoclip(10.0, 30, group_labels=labels), stream)
  ref_big = reference_autoclip([[s[0]] for s in stream], 10.0, 30)
  ref_small = reference_autoclip([[s[1], s[2]] for s in stream], 10.0, 30)
  for t, (updates, state) in enumerate(ours):
    # Groups are ordered by sorted label: "big" then "small".
    for g, ref in enumerate((ref_big, ref_small)):
      want = ref[t]["threshold"]
      got = float(state.threshold[g])
      if np.isinf(want):
        assert got == np.finfo(np.float32).max
      else:
        np.testing.assert_allclose(got, want, rtol=2e-6)
    expected = ref_big[t]["updates"] + ref_small[t]["updates"]
    for got, want in zip(updates, expected, strict=True):
      scale = np.max(np.abs(want[np.isfinite(want)]), initial=0.0)
      np.testing.assert_allclose(
        np.asarray(got, np.float64),
        want,
        rtol=1e-5,
        atol=1e-6 * scale,
        equal_nan=True,
      )
