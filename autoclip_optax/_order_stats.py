"""A fixed-size sliding window with an incrementally sorted copy.

AutoClip needs the p-th percentile of the last ``N`` gradient norms at every
step. Sorting the window each step costs ``O(N log N)`` and dominates the
optimizer update for large ``N``. Instead we keep two arrays of static shape:

* ``ring``: the window in arrival order (a ring buffer), used to know which
  value leaves the window when a new one arrives;
* ``sorted``: the same values in ascending order, padded at the end with
  :data:`PAD` (the largest finite float32) while the window is not full.

One step removes the oldest value from ``sorted`` and inserts the new one. Both
positions are found by binary search (``O(log N)``) and the array is rebuilt in
a single fused elementwise pass (each output element is taken from the same,
the previous or the next input position), so a step costs ``O(N)`` memory
traffic, no sort and no data-dependent shapes. Everything is written with
``jnp.where`` so it traces once under ``jit``, ``vmap``, ``pmap`` and sharded
``jit``.

The percentile itself reads at most two elements of ``sorted``.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

PERCENTILE_METHODS = ("linear", "lower", "higher", "nearest", "midpoint")
"""Interpolation methods supported, with the meaning of ``numpy.percentile``."""

PAD = float(np.finfo(np.float32).max)
"""Padding of unused slots of the sorted window (largest finite float32)."""

# Ranks are computed in int32 as ``floor(p) * (n - 1)``; keep that exact.
MAX_WINDOW = 2**24


class Window(NamedTuple):
  """Sliding window of the last ``N`` values with a sorted copy."""

  ring: jax.Array  # float32[N], values in arrival order; stale slots unused.
  sorted: jax.Array  # float32[N], ascending; slots >= length hold PAD.
  length: jax.Array  # int32[], number of valid values, <= N.
  next_index: jax.Array  # int32[], slot of ``ring`` written next.


def init_window(size: int) -> Window:
  """An empty window of static capacity ``size``."""
  return Window(
    ring=jnp.zeros((size,), jnp.float32),
    sorted=jnp.full((size,), PAD, jnp.float32),
    length=jnp.zeros([], jnp.int32),
    next_index=jnp.zeros([], jnp.int32),
  )


def _replace_sorted(values, remove_index, new_value):
  """Removes ``values[remove_index]`` and inserts ``new_value`` in order.

  Args:
    values: float32[N] ascending array.
    remove_index: int32[] index of the element to drop. Dropping the last slot
      (a PAD while the window is not full) turns this into a pure insertion.
    new_value: float32[] value to insert.

  Returns:
    float32[N] ascending array.
  """
  size = values.shape[0]
  # Insertion point in the array *before* removal, then corrected for it.
  insert_before = jnp.searchsorted(
    values, new_value, side="left", method="scan_unrolled"
  )
  k = jnp.where(
    insert_before > remove_index, insert_before - 1, insert_before
  ).astype(jnp.int32)
  i = remove_index
  j = jnp.arange(size, dtype=jnp.int32)
  pad = jnp.full((1,), PAD, values.dtype)
  next_vals = jnp.concatenate([values[1:], pad])  # values[j + 1]
  prev_vals = jnp.concatenate([pad, values[:-1]])  # values[j - 1]
  # Output j < k comes from the array with element i removed: j or j + 1.
  left = jnp.where(j < i, values, next_vals)
  # Output j > k is the removed-array element j - 1: j - 1 or j.
  right = jnp.where(j <= i, prev_vals, values)
  return jnp.where(j < k, left, jnp.where(j == k, new_value, right))


def push(window: Window, value: jax.Array, accept: jax.Array) -> Window:
  """Appends ``value`` to the window, evicting the oldest value when full.

  Args:
    window: current window.
    value: float32[] value to append (must be finite when ``accept``).
    accept: bool[]; when False the window is returned unchanged (the same
      computation runs, as an identity, so there is no branching).

  Returns:
    The updated window.
  """
  size = window.ring.shape[0]
  full = window.length >= size
  oldest = window.ring[window.next_index]
  # Remove the oldest value when full, otherwise the last slot (a PAD).
  remove_index = jnp.where(
    full,
    jnp.searchsorted(
      window.sorted, oldest, side="left", method="scan_unrolled"
    ),
    size - 1,
  ).astype(jnp.int32)
  # A rejected value is replaced by what is removed: the step is an identity.
  removed_value = jnp.where(full, oldest, jnp.float32(PAD))
  value = jnp.where(accept, value.astype(jnp.float32), removed_value)
  new_sorted = _replace_sorted(window.sorted, remove_index, value)
  new_ring = window.ring.at[window.next_index].set(
    jnp.where(accept, value, oldest)
  )
  advanced = (window.next_index + 1) % size
  return Window(
    ring=new_ring,
    sorted=new_sorted,
    length=jnp.where(
      accept, jnp.minimum(window.length + 1, size), window.length
    ).astype(jnp.int32),
    next_index=jnp.where(accept, advanced, window.next_index).astype(jnp.int32),
  )


def _rank(q, n):
  """Splits the virtual index ``q / 100 * (n - 1)`` into its parts.

  ``q`` is taken as float32 (what a traced hyperparameter is under JAX's
  default precision); float32 subnormals (below ``1.18e-38``) count as 0, as
  XLA flushes them. The integer part of ``q`` is handled in exact int32
  arithmetic, so integer percentiles give exact ranks for any window size
  (float32 alone would lose the fraction above a few million entries).

  Returns:
    ``(index, frac, has_frac)``: the floor of the virtual index (int32), its
    fractional part (float32, which may underflow to 0 for a tiny ``q``) and
    whether the exact fractional part is nonzero (bool; what the ``higher``
    and ``midpoint`` methods decide on, so a tiny positive ``q`` still moves
    them off the lower order statistic, as in numpy).
  """
  q = jnp.clip(jnp.asarray(q, jnp.float32), 0.0, 100.0)
  last = jnp.maximum(n - 1, 0).astype(jnp.int32)
  q_int = jnp.floor(q)
  q_frac = q - q_int
  base = q_int.astype(jnp.int32) * last
  index = base // 100
  frac = (base % 100).astype(jnp.float32) / 100.0
  extra = q_frac * last.astype(jnp.float32) / 100.0
  extra_int = jnp.floor(extra)
  index = index + extra_int.astype(jnp.int32)
  frac = frac + (extra - extra_int)
  carry = frac >= 1.0
  index = jnp.where(carry, index + 1, index)
  frac = jnp.where(carry, frac - 1.0, frac)
  # ``extra`` underflows to 0 for a tiny positive ``q_frac``: the exact index
  # is then an integer plus a positive amount below 1 / 100, not an integer.
  has_frac = (frac > 0) | ((extra == 0) & (q_frac > 0) & (last > 0))
  index = jnp.minimum(index, last)
  at_end = index >= last
  frac = jnp.where(at_end, 0.0, frac)
  has_frac = has_frac & ~at_end
  return index, frac, has_frac


def percentile_of_sorted(
  sorted_values: jax.Array,
  length: jax.Array,
  q: ArrayLike,
  method: str = "linear",
) -> jax.Array:
  """``np.percentile(sorted_values[:length], q, method=method)`` in O(1).

  Args:
    sorted_values: float[..., N] ascending along the last axis.
    length: int[...], number of valid leading entries (>= 1 for a meaningful
      result; 0 returns ``sorted_values[..., 0]``).
    q: percentile in [0, 100] (values outside are clipped); may be traced.
      It is converted to float32 first, like any traced hyperparameter
      (float32 subnormals, below ``1.18e-38``, count as 0): the result is
      ``np.percentile(values, float(np.float32(q)), method=method)``.
    method: one of :data:`PERCENTILE_METHODS`.

  Returns:
    float[...] the percentile, with numpy's interpolation rule.
  """
  if method not in PERCENTILE_METHODS:
    raise ValueError(
      f"method must be one of {PERCENTILE_METHODS}, got {method!r}."
    )
  index, frac, has_frac = _rank(q, length)
  size = sorted_values.shape[-1]
  hi_index = jnp.minimum(index + 1, jnp.maximum(length - 1, 0))
  hi_index = jnp.minimum(hi_index, size - 1)
  lo = jnp.take_along_axis(sorted_values, index[..., None], axis=-1)[..., 0]
  hi = jnp.take_along_axis(sorted_values, hi_index[..., None], axis=-1)[..., 0]
  if method == "lower":
    return lo
  if method == "higher":
    return jnp.where(has_frac, hi, lo)
  if method == "nearest":
    # numpy rounds the virtual index half to even.
    up = (frac > 0.5) | ((frac == 0.5) & (index % 2 == 1))
    return jnp.where(up, hi, lo)
  if method == "midpoint":
    frac = jnp.where(has_frac, jnp.float32(0.5), jnp.float32(0.0))
  # numpy's _lerp: symmetric form, exact at both ends.
  diff = hi - lo
  return jnp.where(frac >= 0.5, hi - diff * (1.0 - frac), lo + diff * frac)
