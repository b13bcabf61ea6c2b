"""Property tests of the incrementally sorted window."""

import hypothesis
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import strategies as st

from autoclip_optax import _order_stats
from autoclip_optax import PERCENTILE_METHODS
from autoclip_optax import percentile_of_sorted

_push = jax.jit(_order_stats.push)
_percentile = jax.jit(percentile_of_sorted, static_argnames="method")

# Few distinct values force many ties; floats cover the general case.
values_strategy = st.one_of(
  st.lists(
    st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.4e38]), min_size=1, max_size=40
  ),
  st.lists(
    st.floats(0.0, 2.0**100, width=32, allow_subnormal=False),
    min_size=1,
    max_size=40,
  ),
)
accept_strategy = st.lists(st.booleans(), min_size=40, max_size=40)


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(
  values=values_strategy, size=st.integers(1, 9), accepts=accept_strategy
)
def test_sorted_copy_is_sorted_window(values, size, accepts):
  window = _order_stats.init_window(size)
  kept = []
  for value, accept in zip(values, accepts, strict=False):
    window = _push(window, jnp.float32(value), jnp.bool_(accept))
    if accept:
      kept.append(np.float32(value))
    expected = np.array(kept[-size:], np.float32)
    n = int(window.length)
    assert n == len(expected)
    got = np.asarray(window.sorted)
    np.testing.assert_array_equal(got[:n], np.sort(expected))
    assert np.all(got[n:] == _order_stats.PAD)
    # The ring holds the window in arrival order ending before next_index.
    ring = np.roll(np.asarray(window.ring), -int(window.next_index))
    np.testing.assert_array_equal(ring[size - n :], expected)


def _as_float32_q(q: float) -> float:
  """``q`` as ``percentile_of_sorted`` reads it: float32, subnormals as 0."""
  q32 = np.float32(q)
  return 0.0 if abs(q32) < np.finfo(np.float32).tiny else float(q32)


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(
  values=st.lists(
    st.floats(0.0, 2.0**20, width=32, allow_subnormal=False),
    min_size=1,
    max_size=30,
  ),
  q=st.one_of(st.integers(0, 100).map(float), st.floats(0.0, 100.0)),
  method=st.sampled_from(PERCENTILE_METHODS),
)
def test_percentile_matches_numpy(values, q, method):
  data = np.sort(np.array(values, np.float32))
  size = 32
  padded = np.full(size, _order_stats.PAD, np.float32)
  padded[: len(data)] = data
  got = float(
    _percentile(jnp.asarray(padded), jnp.int32(len(data)), q, method=method)
  )
  # The documented contract: q is taken as float32, subnormals as 0.
  q = _as_float32_q(q)
  want = float(np.percentile(data.astype(np.float64), q, method=method))
  if method in ("lower", "higher", "nearest"):
    # numpy's float64 virtual index may sit a rounding error away from an
    # integer; ours is exact. Either neighbouring order statistic is valid.
    index = q / 100 * (len(data) - 1)
    candidates = {
      float(data[int(np.floor(index))]),
      float(data[int(np.ceil(index))]),
    }
    if abs(index - round(index)) < 1e-9 or abs(index % 1 - 0.5) < 1e-9:
      assert got in candidates
      return
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("method", PERCENTILE_METHODS)
@pytest.mark.parametrize(
  "q",
  [
    1e-85,
    2.2e-308,
    1e-40,
    1.2e-38,
    1e-37,
    1e-30,
    1e-7,
    0.5,
    10.5,
    99.99999,
    100.0,
  ],
)
def test_tiny_and_fractional_q_follow_the_float32_contract(q, method):
  """Regression (issue 9): a tiny positive q and midpoint / higher."""
  for values in ([0.0, 1.0], [0.0, 1.0, 2.0], list(range(201))):
    data = np.array(values, np.float32)
    padded = np.full(256, _order_stats.PAD, np.float32)
    padded[: len(data)] = data
    got = float(
      _percentile(jnp.asarray(padded), jnp.int32(len(data)), q, method=method)
    )
    want = float(
      np.percentile(data.astype(np.float64), _as_float32_q(q), method=method)
    )
    np.testing.assert_allclose(
      got, want, rtol=1e-6, atol=1e-30, err_msg=f"q={q} values={len(values)}"
    )


@pytest.mark.parametrize("n", [1, 2, 3, 1001, 2_000_001])
@pytest.mark.parametrize("q", [0.0, 1.0, 10.0, 25.0, 33.0, 50.0, 90.0, 100.0])
def test_integer_percentiles_have_exact_ranks(n, q):
  """Large windows: the rank is exact, not a float32 approximation."""
  index, frac, has_frac = jax.jit(_order_stats._rank)(  # pylint: disable=protected-access
    jnp.float32(q), jnp.int32(n)
  )
  exact_num = int(q) * (n - 1)
  assert int(index) == exact_num // 100
  np.testing.assert_allclose(float(frac), (exact_num % 100) / 100, atol=1e-7)
  assert bool(has_frac) == (exact_num % 100 != 0)


def test_no_sort_in_update():
  """The per-step update contains no sort: it is O(N), not O(N log N)."""
  window = _order_stats.init_window(1000)
  hlo = (
    jax.jit(_order_stats.push)
    .lower(window, jnp.float32(1.0), jnp.bool_(True))
    .as_text()
  )
  assert "stablehlo.sort" not in hlo


def test_unknown_method_raises():
  with pytest.raises(ValueError, match="method"):
    percentile_of_sorted(jnp.zeros(3), jnp.int32(3), 10.0, method="hazen")
