r"""Softmax gradient reweighting (Tzinis, Bralios & Smaragdis, ICASSP 2021).

The usual update averages the per-example gradients uniformly,
:math:`\delta_k = \sum_i g_k^{(i)} / B`. Softmax gradient reweighting uses a
probability mass over the batch instead,

.. math::

  \tilde\delta_k = \sum_{i=1}^B p_k(i)\, g_k^{(i)}, \qquad
  p_k(i) = \frac{\exp F_k(o^{(i)}, s^{(i)})}{\sum_j \exp F_k(o^{(j)}, s^{(j)})},

with the weights held constant for differentiation. In JAX this is the loss
:math:`\sum_i \mathrm{stop\_gradient}(p_k(i))\, \mathcal{L}_i`, whose gradient
is exactly :math:`\tilde\delta_k`; it works with any optax optimizer (and
with :func:`autoclip_optax.autoclip`, which then clips the reweighted
gradient)::

  def loss_fn(params, batch):
    losses = per_example_loss(params, batch)            # shape (B,)
    weights = robust_weights(losses, alpha=0.1)         # no gradient
    return reweighted_loss(losses, weights)

Weightings of the paper (``F``, the per-example score):

* robust, :func:`robust_weights`: :math:`F = \alpha \mathcal{L}_i`,
  :math:`\alpha > 0` emphasises badly separated examples;
* curriculum, :func:`curriculum_weights`: :math:`F = -\beta_k \mathcal{L}_i`,
  easy examples first, with :math:`\beta_k` annealed to 0
  (:func:`curriculum_beta_schedule`);
* class biasing, :func:`class_weights`: :math:`F = \gamma(c_i)`, one logit per
  class.

**Exactness.** When the weights are all exactly ``1 / B`` (e.g. ``alpha=0``,
``beta=0``, equal ``gammas``, any constant score), :func:`reweighted_loss`
returns ``jnp.mean(losses)`` itself, so loss and gradients are bit-identical
to plain averaging.

**Non-finite values.** Nothing is dropped silently: a NaN or ``+inf`` score
makes every weight NaN (the softmax normaliser is NaN), and a NaN or inf loss
makes the reweighted loss non-finite, so ``optax.apply_if_finite`` and NaN
checks still see it. Class labels outside ``[0, num_classes)`` give NaN
weights.
"""

import numbers

import jax
import jax.numpy as jnp
import numpy as np
import optax

ArrayLike = jax.Array | np.ndarray | float


def _check_batch(x: jax.Array, name: str) -> None:
  if jnp.ndim(x) != 1:
    raise ValueError(
      f"{name} must be a 1-D array with one entry per example, got shape "
      f"{jnp.shape(x)}."
    )


def _check_static(name: str, value, *, minimum: float = 0.0) -> None:
  """Raises ValueError for a concrete ``value`` < minimum or non-finite."""
  try:
    array = np.asarray(value)
  except jax.errors.TracerArrayConversionError:
    return  # Traced (e.g. under inject_hyperparams): no static check.
  if array.ndim != 0 or not np.issubdtype(array.dtype, np.number):
    raise ValueError(f"{name} must be a scalar, got {name}={value!r}.")
  if not (np.isfinite(array) and array >= minimum):
    raise ValueError(
      f"{name} must be a finite number >= {minimum}, got {name}={value!r}."
    )


def _float(x) -> jax.Array:
  x = jnp.asarray(x)
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def softmax_weights(scores: ArrayLike) -> jax.Array:
  r"""Batch softmax of per-example scores, with no gradient.

  .. math::

    p(i) = \frac{\exp(F_i - \max_j F_j)}{\sum_j \exp(F_j - \max_j F_j)}

  Args:
    scores: per-example scores :math:`F_i`, shape ``(B,)``.

  Returns:
    Weights of shape ``(B,)`` summing to 1 (at least float32), wrapped in
    ``jax.lax.stop_gradient``. Equal scores give exactly ``1 / B``; a NaN or
    ``+inf`` score gives all-NaN weights.

  Example:
    >>> import jax.numpy as jnp
    >>> from autoclip_optax import softmax_weights
    >>> softmax_weights(jnp.log(jnp.array([1.0, 3.0]))).round(4)
    Array([0.25, 0.75], dtype=float32)

  References:
    Tzinis, Bralios, Smaragdis, `Unified Gradient Reweighting for Model
    Biasing with Applications to Source Separation
    <https://arxiv.org/abs/2010.13228>`_, ICASSP 2021.
  """
  scores = _float(scores)
  _check_batch(scores, "scores")
  shifted = scores - jnp.max(scores)  # max-subtraction: no overflow.
  unnormalized = jnp.exp(shifted)
  return jax.lax.stop_gradient(unnormalized / jnp.sum(unnormalized))


def robust_weights(losses: ArrayLike, alpha: ArrayLike) -> jax.Array:
  r"""Robust-separation weights :math:`p(i) \propto \exp(\alpha \mathcal{L}_i)`.

  ``alpha > 0`` moves weight to the examples with the largest loss (as
  ``alpha`` grows, all of it goes to the worst example); ``alpha = 0`` gives
  exactly uniform weights. The paper uses ``alpha`` in [1/15, 1/5] with a
  negative SI-SDR loss in dB.

  Args:
    losses: per-example losses, shape ``(B,)`` (lower is better).
    alpha: non-negative inverse temperature; may be traced.

  Returns:
    Weights of shape ``(B,)`` summing to 1, with no gradient.

  Example:
    >>> import jax.numpy as jnp
    >>> from autoclip_optax import robust_weights, reweighted_loss
    >>> losses = jnp.array([1.0, 2.0, 3.0])
    >>> bool(reweighted_loss(losses, robust_weights(losses, 0.0)) == 2.0)
    True

  References:
    Tzinis, Bralios, Smaragdis, ICASSP 2021, "Robust separation".
  """
  _check_static("alpha", alpha)
  losses = _float(losses)
  _check_batch(losses, "losses")
  return softmax_weights(jnp.asarray(alpha, losses.dtype) * losses)


def curriculum_weights(losses: ArrayLike, beta: ArrayLike) -> jax.Array:
  r"""Curriculum weights :math:`p(i) \propto \exp(-\beta \mathcal{L}_i)`.

  ``beta > 0`` favours easy (low-loss) examples; anneal ``beta`` to 0 over
  training (see :func:`curriculum_beta_schedule`) to end on the uniform mean,
  which ``beta = 0`` gives exactly.

  Args:
    losses: per-example losses, shape ``(B,)``.
    beta: non-negative inverse temperature at this step; may be traced.

  Returns:
    Weights of shape ``(B,)`` summing to 1, with no gradient.

  Example:
    >>> import jax.numpy as jnp, optax
    >>> from autoclip_optax import curriculum_beta_schedule, curriculum_weights
    >>> beta = curriculum_beta_schedule(1.0, transition_steps=1000)
    >>> w = curriculum_weights(jnp.array([0.0, 1.0]), beta(500))

  References:
    Tzinis, Bralios, Smaragdis, ICASSP 2021, "Faster convergence".
  """
  _check_static("beta", beta)
  losses = _float(losses)
  _check_batch(losses, "losses")
  return softmax_weights(-jnp.asarray(beta, losses.dtype) * losses)


def class_weights(labels: ArrayLike, gammas: ArrayLike) -> jax.Array:
  r"""Class-biasing weights :math:`p(i) \propto \exp(\gamma(c_i))`.

  Two examples of classes ``a`` and ``b`` get weights in the ratio
  :math:`\exp(\gamma_a - \gamma_b)`, whatever their losses; equal ``gammas``
  give exactly uniform weights.

  Args:
    labels: integer class of each example, shape ``(B,)``.
    gammas: one logit per class, shape ``(num_classes,)``.

  Returns:
    Weights of shape ``(B,)`` summing to 1, with no gradient; all NaN if a
    label is outside ``[0, num_classes)``.

  Example:
    >>> import jax.numpy as jnp
    >>> from autoclip_optax import class_weights
    >>> w = class_weights(jnp.array([0, 1, 1]), jnp.array([0.0, 3.0]))

  References:
    Tzinis, Bralios, Smaragdis, ICASSP 2021, "Biasing the model towards
    specific classes" (they use gamma = 3 for the class of interest).
  """
  labels = jnp.asarray(labels)
  gammas = _float(gammas)
  _check_batch(labels, "labels")
  _check_batch(gammas, "gammas")
  if not jnp.issubdtype(labels.dtype, jnp.integer):
    raise ValueError(
      f"labels must be an integer array, got dtype {labels.dtype}."
    )
  num_classes = gammas.shape[0]
  valid = (labels >= 0) & (labels < num_classes)
  scores = jnp.where(
    valid, gammas[jnp.clip(labels, 0, num_classes - 1)], jnp.nan
  )
  return softmax_weights(scores)


def reweighted_loss(losses: ArrayLike, weights: ArrayLike) -> jax.Array:
  r"""Weighted batch loss :math:`\sum_i \mathrm{sg}(w_i) \mathcal{L}_i`.

  Its gradient is :math:`\sum_i w_i \nabla \mathcal{L}_i`: the weights are
  constants (``stop_gradient`` is applied here too). If every weight is
  exactly ``1 / B``, ``jnp.mean(losses)`` is returned instead, so uniform
  weights reproduce plain averaging bit for bit (forward and gradient).

  Args:
    losses: per-example losses, shape ``(B,)``.
    weights: per-example weights, shape ``(B,)``, normally summing to 1 (e.g.
      from :func:`robust_weights`); they are not renormalised.

  Returns:
    A scalar of ``losses``' dtype.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from autoclip_optax import reweighted_loss, robust_weights
    >>> def loss_fn(w, x, y):
    ...   losses = (x @ w - y) ** 2
    ...   return reweighted_loss(losses, robust_weights(losses, 0.5))
    >>> g = jax.grad(loss_fn)(jnp.ones(2), jnp.eye(2), jnp.zeros(2))

  References:
    Tzinis, Bralios, Smaragdis, ICASSP 2021, eq. "Unified Gradient
    Reweighting".
  """
  losses = jnp.asarray(losses)
  _check_batch(losses, "losses")
  weights = jax.lax.stop_gradient(_float(weights))
  _check_batch(weights, "weights")
  if weights.shape != losses.shape:
    raise ValueError(
      f"weights must have the shape of losses {losses.shape}, got "
      f"{weights.shape}."
    )
  acc = jnp.promote_types(losses.dtype, weights.dtype)
  weighted = jnp.sum(weights.astype(acc) * losses.astype(acc))
  uniform = jnp.all(
    weights == jnp.asarray(1.0, weights.dtype) / weights.shape[0]
  )
  return jnp.where(uniform, jnp.mean(losses), weighted.astype(losses.dtype))


def curriculum_beta_schedule(
  init_beta: float,
  transition_steps: int,
  decay: str = "linear",
  decay_rate: float = 0.01,
) -> optax.Schedule:
  r"""Anneals the curriculum's :math:`\beta` from ``init_beta`` to exactly 0.

  With :math:`t` the step clipped to ``[0, transition_steps]`` and
  :math:`T` = ``transition_steps``:

  * ``"linear"``: :math:`\beta_0 (1 - t/T)`;
  * ``"exponential"``: :math:`\beta_0 \frac{r^{t/T} - r}{1 - r}` with
    :math:`r` = ``decay_rate``, an exponential decay shifted to reach 0 at
    :math:`T` (a small ``r`` front-loads the decay).

  After ``transition_steps`` the value is 0, so :func:`curriculum_weights`
  gives the plain mean.

  Args:
    init_beta: initial :math:`\beta_0 \ge 0`.
    transition_steps: number of steps (>= 1) to reach 0.
    decay: ``"linear"`` or ``"exponential"``.
    decay_rate: :math:`r` in (0, 1) for ``"exponential"``.

  Returns:
    An optax schedule ``count -> beta`` (float32).

  Example:
    >>> from autoclip_optax import curriculum_beta_schedule
    >>> beta = curriculum_beta_schedule(2.0, 100)
    >>> float(beta(0)), float(beta(50)), float(beta(100)), float(beta(500))
    (2.0, 1.0, 0.0, 0.0)
  """
  _check_static("init_beta", init_beta)
  if (
    isinstance(transition_steps, bool)
    or not isinstance(transition_steps, numbers.Integral)
    or transition_steps < 1
  ):
    raise ValueError(
      "transition_steps must be an integer >= 1, got "
      f"transition_steps={transition_steps!r}."
    )
  if decay not in ("linear", "exponential"):
    raise ValueError(
      f"decay must be 'linear' or 'exponential', got decay={decay!r}."
    )
  if (
    isinstance(decay_rate, bool)
    or not isinstance(decay_rate, numbers.Real)
    or not 0.0 < decay_rate < 1.0
  ):
    raise ValueError(
      f"decay_rate must be a number in (0, 1), got decay_rate={decay_rate!r}."
    )

  def schedule(count):
    frac = jnp.clip(
      jnp.asarray(count, jnp.float32) / transition_steps, 0.0, 1.0
    )
    if decay == "linear":
      shape = 1.0 - frac
    else:
      shape = (decay_rate**frac - decay_rate) / (1.0 - decay_rate)
    return jnp.where(frac >= 1.0, 0.0, init_beta * shape).astype(jnp.float32)

  return schedule
