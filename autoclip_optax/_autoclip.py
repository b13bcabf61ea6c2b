"""AutoClip: clip gradients to a percentile of their own norm history."""

import numbers
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from autoclip_optax import _order_stats

DEFAULT_HISTORY_SIZE = 100_000
"""Default window: covers the paper's 100 epochs x 800 batches (80,000 steps).

Up to ``history_size`` steps the window holds every norm seen, which is the
paper's unbounded history; after that the oldest norms are forgotten. The state
costs ``8 * history_size`` bytes (800 kB at the default) and one update touches
it once, which stays within a few percent of an Adam step on the paper's
models (see ``benchmarks/overhead.py``).
"""

NO_CLIP = _order_stats.PAD
"""Threshold reported when no clipping applies (the largest finite float32)."""

# A squared norm below this may have lost precision to underflow: recompute
# it with the gradient scaled by its largest magnitude.
_SMALL_SQUARED_NORM = 1e-30
_MAX_INT32 = 2**31 - 1


class AutoClipState(NamedTuple):
  """State of :func:`autoclip`: arrays only (jit-safe, checkpointable).

  Shapes are for the default global norm; with ``group_labels`` every field
  except ``count`` gets a leading axis ``G`` (one entry per group, in the order
  of ``sorted(set(labels), key=repr)``). ``N`` is ``history_size``.

  Attributes:
    count: ``int32[]``, update calls so far (saturating).
    threshold: ``float32[]``, clip value used at the last step (the largest
      finite float32 when no clip value applied: warmup without
      ``warmup_max_norm``, or no finite norm yet).
    grad_norm: ``float32[]``, pre-clip norm of the last step (the largest
      finite float32 on a non-finite step).
    clipped: ``bool[]``, whether the last update was scaled down.
    num_clipped: ``int32[]``, steps whose update was scaled down.
    num_nonfinite: ``int32[]``, steps whose norm was NaN or inf.
    history: ``float32[N]``, finite norms in arrival order (a ring buffer).
    sorted_history: ``float32[N]``, the same norms in ascending order, padded
      with the largest finite float32.
    history_length: ``int32[]``, valid entries in the history (``<= N``).
    next_index: ``int32[]``, ring slot written next.
  """

  count: jax.Array  # pyright: ignore[reportIncompatibleMethodOverride]
  threshold: jax.Array
  grad_norm: jax.Array
  clipped: jax.Array
  num_clipped: jax.Array
  num_nonfinite: jax.Array
  history: jax.Array
  sorted_history: jax.Array
  history_length: jax.Array
  next_index: jax.Array


def _concrete(x):
  """``x`` as a numpy array if it has a value now (Python or numpy number,
  concrete jax array, including ``inject_hyperparams``' at ``init``), else
  None (traced)."""
  if isinstance(x, (str, bytes)) or x is None:
    return np.asarray(x, dtype=object)
  try:
    return np.asarray(x)
  except jax.errors.TracerArrayConversionError:
    return None


def _is_real_scalar(a: np.ndarray) -> bool:
  return (
    a.ndim == 0
    and a.dtype != np.bool_
    and (
      np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)
    )
  )


def _validate(
  p, history_size, method, warmup_steps, warmup_max_norm, group_labels
):
  """Raises ValueError for inconsistent Python arguments."""
  p_array = _concrete(p)
  if p_array is not None and not (
    _is_real_scalar(p_array) and 0.0 <= float(p_array) <= 100.0  # NaN: False.
  ):
    raise ValueError(f"p must be a number in [0, 100], got p={p!r}.")
  if isinstance(history_size, bool) or not isinstance(
    history_size, (numbers.Integral,)
  ):
    raise ValueError(
      "history_size must be a Python int (pass it in static_args when "
      f"using optax.inject_hyperparams), got history_size={history_size!r}."
    )
  if not 1 <= int(history_size) <= _order_stats.MAX_WINDOW:
    raise ValueError(
      f"history_size must be in [1, {_order_stats.MAX_WINDOW}], got "
      f"history_size={history_size!r}."
    )
  if method not in _order_stats.PERCENTILE_METHODS:
    raise ValueError(
      f"method must be one of {_order_stats.PERCENTILE_METHODS}, got "
      f"method={method!r}."
    )
  steps_array = _concrete(warmup_steps)
  if steps_array is not None and not (
    _is_real_scalar(steps_array)
    and np.isfinite(float(steps_array))
    and float(steps_array) == int(steps_array)
    and 0 <= int(steps_array) <= _MAX_INT32
  ):
    raise ValueError(
      f"warmup_steps must be an integer in [0, {_MAX_INT32}], got "
      f"warmup_steps={warmup_steps!r}."
    )
  norm_array = None if warmup_max_norm is None else _concrete(warmup_max_norm)
  if norm_array is not None:
    if not (
      _is_real_scalar(norm_array)
      and np.isfinite(float(norm_array))
      and float(norm_array) > 0
    ):
      raise ValueError(
        "warmup_max_norm must be a finite positive number or None, got "
        f"warmup_max_norm={warmup_max_norm!r}."
      )
    if steps_array is not None and int(steps_array) == 0:
      raise ValueError(
        f"warmup_max_norm={warmup_max_norm!r} has no effect with "
        "warmup_steps=0; set warmup_steps > 0 or drop warmup_max_norm."
      )
  if isinstance(group_labels, str) and group_labels != "per_leaf":
    raise ValueError(
      "group_labels must be None, 'per_leaf', a pytree of labels or a "
      f"callable returning one, got group_labels={group_labels!r}."
    )


def _leaf_groups(tree, group_labels) -> tuple[list[int], int]:
  """Group index of every leaf of ``tree`` and the number of groups."""
  leaves, treedef = jax.tree.flatten(tree)
  if group_labels is None:
    return [0] * len(leaves), 1
  if isinstance(group_labels, str):  # "per_leaf"
    return list(range(len(leaves))), max(len(leaves), 1)
  labels = group_labels(tree) if callable(group_labels) else group_labels
  try:
    label_leaves = treedef.flatten_up_to(labels)
  except (ValueError, TypeError) as e:
    raise ValueError(
      "group_labels must have the structure of the parameters (one label "
      f"per leaf): {e}"
    ) from e
  for label in label_leaves:
    if not isinstance(label, Hashable):
      raise ValueError(f"group_labels leaves must be hashable, got {label!r}.")
  names = sorted(set(label_leaves), key=repr)
  index = {name: i for i, name in enumerate(names)}
  return [index[label] for label in label_leaves], max(len(names), 1)


def _abs_squared(x) -> jax.Array:
  """``|x|^2`` elementwise, real (complex: ``re^2 + im^2``)."""
  if jnp.iscomplexobj(x):
    return jnp.square(x.real) + jnp.square(x.imag)
  return jnp.square(x)


def _squared_norm(leaves) -> jax.Array:
  total = jnp.zeros([], jnp.float32)
  for x in leaves:
    acc = jnp.promote_types(x.dtype, jnp.float32)
    total = total + jnp.sum(_abs_squared(x.astype(acc))).astype(jnp.float32)
  return total


# Power-of-two prescale (exact) for updates whose norm exceeds float32.
_OVERFLOW_SCALE = 2.0**-64

_Norm = tuple[jax.Array, jax.Array, jax.Array]


def _rescaled_norm(leaves) -> _Norm:
  """Norm as ``m * ||g / m||`` with ``m = max |g|``: no over/underflow.

  Returns ``_robust_norm``'s triple.
  """
  m = jnp.zeros([], jnp.float32)
  for x in leaves:
    m = jnp.maximum(m, jnp.max(jnp.abs(x)).astype(jnp.float32))
  safe_m = jnp.where((m > 0) & jnp.isfinite(m), m, 1.0)
  scaled = jnp.zeros([], jnp.float32)
  for x in leaves:
    scaled = scaled + jnp.sum(
      jnp.square(jnp.abs(x).astype(jnp.float32) / safe_m)
    )
  root = jnp.sqrt(scaled)
  norm = safe_m * root
  norm = jnp.where(m == 0, 0.0, norm)
  # Every entry finite (a NaN makes m NaN, an inf makes it inf) and the norm
  # beyond float32: 1 / (m * scale * root) = (1 / (m * scale)) / root, where
  # m * scale is a normal float32 for any m whose norm can overflow.
  overflowed = jnp.isfinite(m) & jnp.isposinf(norm)
  inv_prescaled = jnp.where(
    overflowed, (1.0 / (safe_m * _OVERFLOW_SCALE)) / root, 1.0
  ).astype(jnp.float32)
  return jnp.where(jnp.isposinf(m), jnp.inf, norm), overflowed, inv_prescaled


def _robust_norm(leaves) -> _Norm:
  """Global L2 norm of ``leaves`` in float32, safe for huge and tiny values.

  The plain sum of squares is used when it is representable; otherwise (it
  overflowed, or underflowed below float32's range) the norm is recomputed with
  the gradient rescaled by its largest magnitude. NaN entries give NaN and inf
  entries give inf.

  Returns:
    ``(norm, overflowed, inv_prescaled_norm)``: ``overflowed`` when every entry
    is finite but the norm exceeds float32 (``norm`` is then inf), and
    ``inv_prescaled_norm`` is ``1 / ||leaves * _OVERFLOW_SCALE||`` then
    (finite), else 1. One pass over the leaves on ordinary steps.
  """
  if not leaves:
    return (
      jnp.zeros([], jnp.float32),
      jnp.asarray(False),
      jnp.ones([], jnp.float32),
    )
  squared = _squared_norm(leaves)
  needs_rescale = (~jnp.isfinite(squared)) | (squared < _SMALL_SQUARED_NORM)
  return jax.lax.cond(
    needs_rescale,
    lambda: _rescaled_norm(leaves),
    lambda: (jnp.sqrt(squared), jnp.asarray(False), jnp.ones([], jnp.float32)),
  )


def _clip_leaf(x, inv_norm, threshold, prescale=None):
  """``x * threshold / norm`` as ``(x * (1 / norm)) * threshold``.

  ``|x| / norm <= 1``, so neither factor over- or underflows unless the result
  does; with both factors 1 (no clipping) the leaf is returned exactly. With
  ``prescale`` (for an update whose norm exceeds float32), ``x`` is scaled by
  it first and ``inv_norm`` is the inverse of the prescaled norm.
  """
  acc = jnp.promote_types(x.dtype, jnp.float32)
  scaled = x.astype(acc)
  if prescale is not None:
    scaled = scaled * prescale.astype(acc)
  return ((scaled * inv_norm.astype(acc)) * threshold.astype(acc)).astype(
    x.dtype
  )


def autoclip(
  p: float | jax.Array = 10.0,
  history_size: int = DEFAULT_HISTORY_SIZE,
  *,
  method: str = "linear",
  warmup_steps: int | jax.Array = 0,
  warmup_max_norm: float | jax.Array | None = None,
  group_labels: None | str | Any | Callable[[Any], Any] = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Clips updates to the ``p``-th percentile of their own norm history.

  AutoClip (Seetharaman et al., 2020, Algorithm 1). At step :math:`t` with
  update :math:`g_t`:

  .. math::

    G_h(t) &= G_h(t-1) \cup \{\|g_t\|_2\} \\
    \eta_c(t) &= \mathrm{percentile}_p(G_h(t)) \\
    g_t &\leftarrow g_t \cdot \min\left(1, \frac{\eta_c(t)}{\|g_t\|_2}\right)

  The norm is the global L2 norm over all leaves, accumulated in (at least)
  float32 whatever the update dtype, and the current norm enters the history
  before the percentile is taken. A zero update is left as is. The history is
  a ring buffer of the last ``history_size`` finite norms; while fewer steps
  have been taken, it is the paper's unbounded history. The percentile is
  maintained incrementally (one removal and one insertion in a sorted copy of
  the window per step, no sort) and equals ``np.percentile(window, p,
  method=method)`` up to float32 rounding; integer ``p`` gives exact ranks
  (for the discrete methods numpy's float64 virtual index can round to the
  neighbouring order statistic where ``(n - 1) p / 100`` is an integer; the
  rank here is the exact one). Complex updates use the modulus.

  ``p = 100`` never clips; ``p = 0`` clips every update to the smallest norm
  seen so far.

  **Non-finite updates.** A step whose norm is NaN or inf is not written to the
  history and does not change any later threshold; its update passes through
  unchanged (still non-finite, so it is visible downstream), and the state
  stays finite (``grad_norm`` records the largest finite float32 and
  ``num_nonfinite`` counts the step). An update whose entries are all finite
  but whose norm exceeds float32's range is treated the same way except that
  it is clipped to the threshold (computed on a power-of-two prescaled copy),
  not passed through. To skip non-finite steps, wrap the whole chain:

    >>> import optax
    >>> from autoclip_optax import autoclip
    >>> opt = optax.apply_if_finite(
    ...   optax.chain(autoclip(10.0), optax.adam(1e-3)),
    ...   max_consecutive_errors=10,
    ... )

  **Traced hyperparameters.** ``p`` (and ``warmup_steps``,
  ``warmup_max_norm``) may be traced, e.g. under
  ``optax.inject_hyperparams(autoclip, static_args=("history_size",))(p=10.)``;
  a new ``p`` applies from the next step on. ``history_size`` sets array shapes
  and must be static: list it in ``static_args``. Concrete values (Python
  numbers or arrays, as ``inject_hyperparams`` passes at ``init``) are
  validated; traced ones cannot be: a NaN ``p`` then clips nothing, and a
  ``warmup_max_norm`` that is not finite and positive means no clipping.

  Beyond the paper (all off by default, so defaults are paper-exact):

  * ``warmup_steps``: for the first ``warmup_steps`` steps norms are recorded
    but the update is not clipped, or clipped to ``warmup_max_norm`` if given.
  * ``group_labels``: separate histories and thresholds per group (the paper's
    future work on per-layer clipping). ``"per_leaf"`` makes one group per
    leaf; otherwise give labels like :func:`optax.multi_transform`'s
    ``param_labels`` (a pytree of hashable labels with the updates' structure,
    or a callable mapping the updates to one). Each group is clipped by its own
    norm to its own percentile.
  * ``method``: numpy's ``"linear"`` (default), ``"lower"``, ``"higher"``,
    ``"nearest"`` or ``"midpoint"`` percentile.

  Args:
    p: percentile in [0, 100] of the norm history to clip to.
    history_size: number of most recent finite norms kept (static).
    method: percentile interpolation method, as in ``numpy.percentile``.
    warmup_steps: number of initial steps that use the fallback instead.
    warmup_max_norm: fixed max norm during warmup; ``None`` means no clipping.
    group_labels: ``None`` for one global norm, ``"per_leaf"``, or labels.

  Returns:
    An :class:`optax.GradientTransformationExtraArgs` whose state is an
    :class:`AutoClipState`; read ``optax.tree.get(state, "threshold")`` inside
    ``jit`` to log the clip value, and :func:`clip_fraction` for the fraction
    of clipped steps.

  Example:
    >>> import jax.numpy as jnp, optax
    >>> from autoclip_optax import autoclip
    >>> opt = optax.chain(autoclip(p=10.0), optax.adam(1e-3))
    >>> params = {"w": jnp.ones(3)}
    >>> state = opt.init(params)
    >>> updates, state = opt.update({"w": jnp.full(3, 2.0)}, state, params)
    >>> float(optax.tree.get(state, "threshold"))  # Only one norm so far.
    3.464...

  References:
    Seetharaman, Wichern, Pardo, Le Roux, `AutoClip: Adaptive Gradient
    Clipping for Source Separation Networks
    <https://arxiv.org/abs/2007.14469>`_, MLSP 2020.
  """
  _validate(
    p, history_size, method, warmup_steps, warmup_max_norm, group_labels
  )
  grouped = group_labels is not None

  def _per_group(x, num_groups):
    return jnp.broadcast_to(x, (num_groups,) + jnp.shape(x)) if grouped else x

  def init_fn(params):
    _, num_groups = _leaf_groups(params, group_labels)
    window = _order_stats.init_window(history_size)
    g = lambda x: _per_group(x, num_groups)  # pylint: disable=unnecessary-lambda-assignment
    return AutoClipState(
      count=jnp.zeros([], jnp.int32),
      threshold=g(jnp.asarray(NO_CLIP, jnp.float32)),
      grad_norm=g(jnp.zeros([], jnp.float32)),
      clipped=g(jnp.zeros([], jnp.bool_)),
      num_clipped=g(jnp.zeros([], jnp.int32)),
      num_nonfinite=g(jnp.zeros([], jnp.int32)),
      history=g(window.ring),
      sorted_history=g(window.sorted),
      history_length=g(window.length),
      next_index=g(window.next_index),
    )

  def _step(norm, window, in_warmup):
    """Order-statistics update of one group; returns (threshold, window)."""
    finite = jnp.isfinite(norm)
    window = _order_stats.push(window, jnp.where(finite, norm, 0.0), finite)
    # Traced hyperparameters are not validated: p is held to [0, 100] by
    # the percentile (a NaN p gives a NaN threshold, which clips nothing),
    # and a warmup max norm that is not finite and positive means no
    # clipping (never a negative factor, which would reverse the update).
    percentile = _order_stats.percentile_of_sorted(
      window.sorted, window.length, p, method
    )
    threshold = jnp.where(window.length > 0, percentile, NO_CLIP)
    if warmup_max_norm is None:
      fallback = jnp.float32(NO_CLIP)
    else:
      w = jnp.asarray(warmup_max_norm, jnp.float32)
      fallback = jnp.where(jnp.isfinite(w) & (w > 0), w, NO_CLIP)
    threshold = jnp.where(in_warmup, fallback, threshold)
    return threshold.astype(jnp.float32), window

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    leaves, treedef = jax.tree.flatten(updates)
    leaf_group, num_groups = _leaf_groups(updates, group_labels)
    per_group = [
      _robust_norm(
        [x for x, gi in zip(leaves, leaf_group, strict=True) if gi == g]
      )
      for g in range(num_groups)
    ]
    norms, overflowed, inv_small = (
      jnp.stack([group[i] for group in per_group]) for i in range(3)
    )
    if not grouped:
      norms, overflowed, inv_small = norms[0], overflowed[0], inv_small[0]
    window = _order_stats.Window(
      state.history,
      state.sorted_history,
      state.history_length,
      state.next_index,
    )
    in_warmup = state.count < jnp.asarray(warmup_steps, jnp.int32)
    step = jax.vmap(_step, in_axes=(0, 0, None)) if grouped else _step
    threshold, window = step(norms, window, in_warmup)

    finite = jnp.isfinite(norms)
    # An update of finite entries whose norm exceeds float32 (``overflowed``)
    # stays out of the history like a non-finite one, but is clipped: its
    # norm is above any threshold.
    clipped = (finite & (norms > threshold)) | overflowed
    # Factors are exactly 1 where no clipping happens (no 0/0 for zero
    # updates); a clipped norm is > threshold >= 0, so 1 / norm is finite.
    inv_norm = jnp.where(clipped, 1.0 / jnp.where(clipped, norms, 1.0), 1.0)
    inv_norm = jnp.where(overflowed, inv_small, inv_norm)
    factor = jnp.where(clipped, threshold, 1.0)
    prescale = jnp.where(overflowed, _OVERFLOW_SCALE, 1.0).astype(jnp.float32)
    if grouped:
      new_leaves = [
        _clip_leaf(x, inv_norm[gi], factor[gi], prescale[gi])
        for x, gi in zip(leaves, leaf_group, strict=True)
      ]
    else:
      new_leaves = [_clip_leaf(x, inv_norm, factor, prescale) for x in leaves]
    new_state = AutoClipState(
      count=jnp.asarray(optax.safe_increment(state.count)),
      threshold=threshold,
      grad_norm=jnp.where(finite, norms, NO_CLIP).astype(jnp.float32),
      clipped=clipped,
      num_clipped=jnp.where(
        clipped, optax.safe_increment(state.num_clipped), state.num_clipped
      ),
      num_nonfinite=jnp.where(
        finite, state.num_nonfinite, optax.safe_increment(state.num_nonfinite)
      ),
      history=window.ring,
      sorted_history=window.sorted,
      history_length=window.length,
      next_index=window.next_index,
    )
    return jax.tree.unflatten(treedef, new_leaves), new_state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def clip_fraction(state: Any) -> jax.Array:
  """Fraction of steps so far whose update AutoClip scaled down.

  Args:
    state: an :class:`AutoClipState` or any optimizer state containing exactly
      one (e.g. the state of ``optax.chain(autoclip(...), optax.adam(...))``).

  Returns:
    float32 array: ``num_clipped / count`` (per group with ``group_labels``);
    0 before the first step. Works inside ``jit``.
  """
  autoclip_states = [
    s
    for s in jax.tree.leaves(
      state, is_leaf=lambda x: isinstance(x, AutoClipState)
    )
    if isinstance(s, AutoClipState)
  ]
  if len(autoclip_states) != 1:
    raise ValueError(
      f"clip_fraction needs exactly one AutoClipState in state, found "
      f"{len(autoclip_states)}."
    )
  found = autoclip_states[0]
  steps = jnp.maximum(found.count, 1).astype(jnp.float32)
  return found.num_clipped.astype(jnp.float32) / steps
