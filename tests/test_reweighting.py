"""Softmax gradient reweighting: weights, gradients, exactness, jit."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from autoclip_optax import _reweighting
from autoclip_optax import class_weights
from autoclip_optax import curriculum_beta_schedule
from autoclip_optax import curriculum_weights
from autoclip_optax import reweighted_loss
from autoclip_optax import robust_weights
from autoclip_optax import softmax_weights

RNG = np.random.default_rng(0)
# B = 7: 1/B is inexact, so sum(losses / B) and mean(losses) can differ.
X = jnp.asarray(RNG.normal(size=(7, 3)), jnp.float32)
Y = jnp.asarray(RNG.normal(size=7), jnp.float32)
THETA = jnp.asarray([0.3, -1.2, 0.7], jnp.float32)
LABELS = jnp.array([0, 1, 2, 1, 0, 2, 2])


def per_example_loss(theta, x, y):
  return (x @ theta - y) ** 2


def batch_losses(theta):
  return jax.vmap(per_example_loss, in_axes=(None, 0, 0))(theta, X, Y)


WEIGHT_FNS = {
  "robust": lambda losses: robust_weights(losses, 0.7),
  "curriculum": lambda losses: curriculum_weights(losses, 1.3),
  "class": lambda losses: class_weights(LABELS, jnp.array([0.0, 2.0, -1.0])),
}


@settings(max_examples=30, deadline=None)
@given(
  st.lists(st.floats(-1e4, 1e4, width=32), min_size=1, max_size=16),
  st.floats(0, 50),
)
def test_weights_sum_to_one_and_are_positive(losses, alpha):
  losses = jnp.asarray(losses, jnp.float32)
  for w in [robust_weights(losses, alpha), curriculum_weights(losses, alpha)]:
    assert np.all(np.asarray(w) >= 0)
    np.testing.assert_allclose(float(jnp.sum(w)), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(WEIGHT_FNS))
def test_gradient_is_weighted_sum_of_per_example_gradients(name):
  weight_fn = WEIGHT_FNS[name]

  def loss_fn(theta):
    losses = batch_losses(theta)
    return reweighted_loss(losses, weight_fn(losses))

  grad = jax.grad(loss_fn)(THETA)
  per_example = jax.vmap(jax.grad(per_example_loss), in_axes=(None, 0, 0))(
    THETA, X, Y
  )
  w = weight_fn(batch_losses(THETA))
  assert not np.allclose(w, 1 / 7)  # Really non-uniform.
  np.testing.assert_allclose(grad, w @ per_example, rtol=2e-5, atol=1e-6)
  # The weights carry no gradient: the plain weighted sum differs.
  naive = jax.grad(
    lambda t: jnp.sum(jax.nn.softmax(0.7 * batch_losses(t)) * batch_losses(t))
  )(THETA)
  if name == "robust":
    assert not np.allclose(naive, grad, rtol=1e-3)


@pytest.mark.parametrize("jit", [False, True])
def test_zero_temperature_is_bitwise_the_mean(jit):
  def plain(theta):
    return jnp.mean(batch_losses(theta))

  def robust(theta, alpha):
    losses = batch_losses(theta)
    return reweighted_loss(losses, robust_weights(losses, alpha))

  def curriculum(theta, beta):
    losses = batch_losses(theta)
    return reweighted_loss(losses, curriculum_weights(losses, beta))

  def classes(theta, gamma):
    losses = batch_losses(theta)
    return reweighted_loss(losses, class_weights(LABELS, jnp.full(3, gamma)))

  wrap = jax.jit if jit else (lambda f: f)
  want_loss, want_grad = wrap(jax.value_and_grad(plain))(THETA)
  # Without the uniform special case the result would not be bit-exact here.
  losses = batch_losses(THETA)
  assert float(jnp.sum(losses * (jnp.float32(1) / 7))) != float(want_loss)
  for fn in [robust, curriculum, classes]:
    loss, grad = wrap(jax.value_and_grad(fn))(THETA, 0.0)
    assert np.asarray(loss).tobytes() == np.asarray(want_loss).tobytes()
    assert np.asarray(grad).tobytes() == np.asarray(want_grad).tobytes()
  # Equal gammas of any value are uniform too.
  loss, _ = wrap(jax.value_and_grad(classes))(THETA, 4.5)
  assert np.asarray(loss).tobytes() == np.asarray(want_loss).tobytes()


def test_small_alpha_approaches_mean_large_alpha_the_hardest_example():
  losses = batch_losses(THETA)
  mean, worst = float(jnp.mean(losses)), float(jnp.max(losses))
  near = float(reweighted_loss(losses, robust_weights(losses, 1e-6)))
  np.testing.assert_allclose(near, mean, rtol=1e-5)
  w = robust_weights(losses, 1e5)
  assert int(jnp.argmax(w)) == int(jnp.argmax(losses))
  np.testing.assert_allclose(float(jnp.max(w)), 1.0, atol=1e-6)
  np.testing.assert_allclose(
    float(reweighted_loss(losses, w)), worst, rtol=1e-5
  )
  # Monotone in alpha: more weight on the hardest example.
  maxima = [float(jnp.max(robust_weights(losses, a))) for a in [0, 0.1, 1, 10]]
  assert maxima == sorted(maxima)
  # Huge scores do not overflow thanks to max-subtraction.
  w = robust_weights(jnp.array([1e30, 0.0, 1e30]), 1e8)
  np.testing.assert_allclose(w, [0.5, 0.0, 0.5])


def test_curriculum_favours_easy_examples():
  losses = jnp.array([0.1, 1.0, 5.0])
  w = np.asarray(curriculum_weights(losses, 2.0))
  assert w[0] > w[1] > w[2]
  np.testing.assert_allclose(w[0] / w[1], math.exp(2.0 * 0.9), rtol=1e-5)


def test_class_biasing_ratio():
  gammas = jnp.array([0.0, 3.0, -1.0])
  w = np.asarray(class_weights(LABELS, gammas))
  labels = np.asarray(LABELS)
  for c in range(3):  # Equal within a class.
    np.testing.assert_allclose(w[labels == c], w[labels == c][0], rtol=1e-6)
  for a in range(3):
    for b in range(3):
      ratio = w[labels == a][0] / w[labels == b][0]
      np.testing.assert_allclose(
        ratio, math.exp(gammas[a] - gammas[b]), rtol=1e-5
      )
  np.testing.assert_allclose(w.sum(), 1.0, rtol=1e-6)


def test_nonfinite_inputs_propagate():
  losses = jnp.array([1.0, jnp.nan, 2.0])
  for w in [
    robust_weights(losses, 0.5),
    robust_weights(losses, 0.0),
    curriculum_weights(losses, 0.5),
  ]:
    assert np.isnan(float(reweighted_loss(losses, w)))
  losses = jnp.array([1.0, jnp.inf, 2.0])
  assert np.isnan(np.asarray(robust_weights(losses, 0.5))).all()
  w = curriculum_weights(losses, 0.5)  # exp(-inf) = 0, but 0 * inf = NaN.
  assert not np.isfinite(float(reweighted_loss(losses, w)))
  w = class_weights(jnp.array([0, 3, -1]), jnp.zeros(3))  # Bad labels.
  assert np.isnan(np.asarray(w)).all()


def test_jit_no_retrace_over_temperatures():
  traces = []

  @jax.jit
  def step(theta, alpha, beta, gammas):
    traces.append(1)

    def loss_fn(t):
      losses = batch_losses(t)
      w = (
        robust_weights(losses, alpha)
        + curriculum_weights(losses, beta)
        + class_weights(LABELS, gammas)
      ) / 3
      return reweighted_loss(losses, w), w

    return jax.grad(loss_fn, has_aux=True)(theta)

  for a in [0.0, 0.5, 2.0]:
    g, w = step(THETA, a, 1.0 - a / 2, jnp.array([a, 0.0, 1.0]))
    assert np.isfinite(np.asarray(g)).all()
    np.testing.assert_allclose(float(jnp.sum(w)), 1.0, rtol=1e-6)
  assert len(traces) == 1


def test_curriculum_beta_schedule():
  lin = curriculum_beta_schedule(2.0, 100)
  np.testing.assert_allclose(
    [float(lin(t)) for t in [0, 25, 100, 1000]], [2.0, 1.5, 0.0, 0.0]
  )
  exp = curriculum_beta_schedule(2.0, 100, "exponential", decay_rate=0.01)
  values = np.asarray([float(exp(t)) for t in range(0, 121, 10)])
  np.testing.assert_allclose(values[0], 2.0, rtol=1e-6)
  assert values[10] == 0.0 and values[-1] == 0.0
  assert np.all(np.diff(values[:11]) < 0)
  assert values[1] < 2.0 * 0.9  # Front-loaded compared with linear.
  np.testing.assert_allclose(
    float(exp(50)), 2.0 * (0.1 - 0.01) / 0.99, rtol=1e-5
  )
  # Under jit with a traced count, and beta = 0 at the end gives the mean.
  losses = batch_losses(THETA)
  beta = jax.jit(lin)(jnp.asarray(100))
  assert float(reweighted_loss(losses, curriculum_weights(losses, beta))) == (
    float(jnp.mean(losses))
  )


@pytest.mark.parametrize(
  "call, name",
  [
    (lambda: robust_weights(jnp.ones(3), -0.1), "alpha"),
    (lambda: robust_weights(jnp.ones(3), float("nan")), "alpha"),
    (lambda: robust_weights(jnp.ones((2, 3)), 0.1), "losses"),
    (lambda: curriculum_weights(jnp.ones(3), -1.0), "beta"),
    (lambda: class_weights(jnp.ones(3), jnp.zeros(2)), "labels"),
    (
      lambda: class_weights(jnp.zeros(3, jnp.int32), jnp.zeros((2, 2))),
      "gammas",
    ),
    (lambda: softmax_weights(jnp.float32(1.0)), "scores"),
    (lambda: reweighted_loss(jnp.ones(3), jnp.ones(2) / 2), "weights"),
    (lambda: curriculum_beta_schedule(-1.0, 10), "init_beta"),
    (lambda: curriculum_beta_schedule(1.0, 0), "transition_steps"),
    (lambda: curriculum_beta_schedule(1.0, 10, "cosine"), "decay"),
    (
      lambda: curriculum_beta_schedule(1.0, 10, "exponential", 1.0),
      "decay_rate",
    ),
  ],
)
def test_bad_arguments_raise_value_error_naming_them(call, name):
  with pytest.raises(ValueError, match=name):
    call()


def test_docstring_examples():
  import doctest  # pylint: disable=import-outside-toplevel

  result = doctest.testmod(_reweighting, optionflags=doctest.ELLIPSIS)
  assert result.attempted > 0 and result.failed == 0
