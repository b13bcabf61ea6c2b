"""Tests for examples/separation/models.py (BLSTM separators)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from examples.separation import models
from examples.separation import signal

LAYERS, HIDDEN = 2, 8
BATCH, LENGTH = 2, 600  # 11 frames.


def _sigmoid(x):
  return 1.0 / (1.0 + jnp.exp(-x))


@jax.jit
def naive_blstm(params, x):
  """Step-by-step reference BLSTM (Python loops), ``x [B, T, D] -> [B, T, 2H]``.

  Uses the parameters of ``models.BLSTM`` with the textbook equations.
  """
  num_layers = len(params)
  for layer in range(num_layers):
    p = params[f"layer_{layer}"]
    w_ih, w_hh, bias = p["kernel_ih"], p["kernel_hh"], p["bias"]
    hidden = w_hh.shape[1]
    batch, length, _ = x.shape
    outputs = []
    for d, steps in ((0, range(length)), (1, reversed(range(length)))):
      h = jnp.zeros((batch, hidden))
      c = jnp.zeros((batch, hidden))
      hs = [None] * length
      for t in steps:
        z = x[:, t] @ w_ih[:, d] + h @ w_hh[d] + bias[d]
        i = _sigmoid(z[:, :hidden])
        f = _sigmoid(z[:, hidden : 2 * hidden])
        g = jnp.tanh(z[:, 2 * hidden : 3 * hidden])
        o = _sigmoid(z[:, 3 * hidden :])
        c = f * c + i * g
        h = o * jnp.tanh(c)
        hs[t] = h
      outputs.append(jnp.stack(hs, axis=1))
    x = jnp.concatenate(outputs, axis=-1)
  return x


@pytest.fixture(scope="module")
def blstm_setup():
  """``(apply, params, x)``: a BLSTM as a function of pure-dict params."""
  model = models.BLSTM(5, num_layers=LAYERS, hidden=HIDDEN, rngs=nnx.Rngs(0))
  x = jax.random.normal(jax.random.PRNGKey(1), (3, 7, 5))
  apply, params = models.functional(model)
  return apply, params, x


def test_blstm_matches_naive_reference(blstm_setup):
  apply, params, x = blstm_setup
  ours = jax.jit(apply)(params, x)
  ref = naive_blstm(params, x)
  assert ours.shape == (3, 7, 2 * HIDDEN)
  np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), atol=1e-5)


def test_blstm_time_major(blstm_setup):
  apply, params, x = blstm_setup
  tm = models.BLSTM(
    5, num_layers=LAYERS, hidden=HIDDEN, time_major=True, rngs=nnx.Rngs(1)
  )
  out = jax.jit(models.functional(tm)[0])(params, jnp.swapaxes(x, 0, 1))
  np.testing.assert_allclose(
    np.asarray(jnp.swapaxes(out, 0, 1)),
    np.asarray(jax.jit(apply)(params, x)),
    atol=1e-6,
  )


def test_blstm_gradients_match_naive_reference(blstm_setup):
  """The custom VJP agrees with autodiff through the naive loop."""
  apply, params, x = blstm_setup
  cot = jax.random.normal(jax.random.PRNGKey(2), (3, 7, 2 * HIDDEN))

  def loss(fn, params, x):
    return jnp.sum(fn(params, x) * cot)

  ours = jax.jit(
    jax.grad(
      functools.partial(loss, apply),
      argnums=(0, 1),
    )
  )(params, x)
  ref = jax.jit(jax.grad(functools.partial(loss, naive_blstm), argnums=(0, 1)))(
    params, x
  )
  flat_ours = jax.tree.leaves(ours)
  flat_ref = jax.tree.leaves(ref)
  for a, b in zip(flat_ours, flat_ref, strict=True):
    np.testing.assert_allclose(
      np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-5
    )


def test_lstm_recurrence_custom_vjp_matches_autodiff():
  t, d, b, h = 6, 2, 3, 4
  keys = jax.random.split(jax.random.PRNGKey(0), 3)
  xs = jax.random.normal(keys[0], (t, d, b, 4 * h))
  w = jax.random.normal(keys[1], (d, h, 4 * h)) * 0.5
  cot = jax.random.normal(keys[2], (t, d, b, h))

  def plain(xs, w):  # Autodiff through a straightforward scan.
    def step(carry, x):
      hh, c = carry
      z = x + jnp.einsum("dbh,dhg->dbg", hh, w)
      i, f, g, o = jnp.split(z, 4, axis=-1)
      c = _sigmoid(f) * c + _sigmoid(i) * jnp.tanh(g)
      hh = _sigmoid(o) * jnp.tanh(c)
      return (hh, c), hh

    zeros = jnp.zeros((d, b, h))
    return jax.lax.scan(step, (zeros, zeros), xs)[1]

  for unroll in (1, 3):
    fn = lambda xs, w, u=unroll: models.lstm_recurrence(xs, w, u)
    np.testing.assert_allclose(
      np.asarray(jax.jit(fn)(xs, w)),
      np.asarray(jax.jit(plain)(xs, w)),
      atol=1e-6,
    )
    g_ours = jax.jit(
      jax.grad(lambda xs, w: jnp.sum(fn(xs, w) * cot), argnums=(0, 1))
    )(xs, w)
    g_ref = jax.jit(
      jax.grad(lambda xs, w: jnp.sum(plain(xs, w) * cot), argnums=(0, 1))
    )(xs, w)
    for a, r in zip(g_ours, g_ref, strict=True):
      np.testing.assert_allclose(np.asarray(a), np.asarray(r), atol=1e-5)


def test_blstm_is_bidirectional(blstm_setup):
  _, _, x = blstm_setup
  model = models.BLSTM(5, num_layers=1, hidden=HIDDEN, rngs=nnx.Rngs(0))
  apply = nnx.jit(lambda model, x: model(x))
  base = apply(model, x)
  late = apply(model, x.at[:, -1].add(1.0))
  # The first frame's backward half sees the future; its forward half not.
  assert np.abs(np.asarray(late - base)[:, 0, HIDDEN:]).max() > 1e-4
  np.testing.assert_allclose(
    np.asarray(late[:, 0, :HIDDEN]), np.asarray(base[:, 0, :HIDDEN]), atol=1e-6
  )
  early = apply(model, x.at[:, 0].add(1.0))
  assert np.abs(np.asarray(early - base)[:, -1, :HIDDEN]).max() > 1e-4


def test_blstm_init():
  model = models.BLSTM(4, num_layers=1, hidden=10, rngs=nnx.Rngs(0))
  p = models.params_dict(model)["layer_0"]
  assert p["kernel_ih"].shape == (4, 2, 40)
  assert p["kernel_hh"].shape == (2, 10, 40)
  assert np.abs(np.asarray(p["kernel_hh"])).max() <= 10**-0.5
  bias = np.asarray(p["bias"])
  np.testing.assert_array_equal(bias[:, 10:20], 1.0)  # Forget gate.
  np.testing.assert_array_equal(bias[:, :10], 0.0)


def _separator(head, rngs=None, **kwargs):
  return models.Separator(
    num_layers=LAYERS,
    hidden=HIDDEN,
    head=head,
    rngs=rngs or nnx.Rngs(0),
    **kwargs,
  )


def test_separator_params_keep_the_linen_layout():
  """Pure-dict names and shapes as the Linen module's (exports load)."""
  shapes = jax.tree.map(
    lambda x: x.shape,
    models.abstract_params(lambda rngs: _separator("chimera", rngs)),
  )
  four_h = 4 * HIDDEN
  assert shapes == {
    "blstm": {
      "layer_0": {
        "kernel_ih": (signal.NUM_BINS, 2, four_h),
        "kernel_hh": (2, HIDDEN, four_h),
        "bias": (2, four_h),
      },
      "layer_1": {
        "kernel_ih": (2 * HIDDEN, 2, four_h),
        "kernel_hh": (2, HIDDEN, four_h),
        "bias": (2, four_h),
      },
    },
    "mask": {
      "kernel": (2 * HIDDEN, 2 * signal.NUM_BINS),
      "bias": (2 * signal.NUM_BINS,),
    },
    "embedding": {
      "kernel": (2 * HIDDEN, 20 * signal.NUM_BINS),
      "bias": (20 * signal.NUM_BINS,),
    },
  }


@pytest.fixture(scope="module")
def mixture():
  return jax.random.normal(jax.random.PRNGKey(3), (BATCH, LENGTH)) * 0.1


@pytest.mark.parametrize("head", models.HEADS)
def test_separator_heads(head, mixture):
  apply, params = models.functional(_separator(head))
  out = jax.jit(apply)(params, mixture)
  frames = signal.num_frames(LENGTH)
  assert out["mix_stft"].shape == (BATCH, frames, signal.NUM_BINS)
  np.testing.assert_allclose(
    np.asarray(out["mix_stft"]),
    np.asarray(jax.jit(signal.stft)(mixture)),
    atol=1e-5,
  )
  expected = {
    "mi": {"mix_stft", "masks"},
    "dc": {"mix_stft", "embedding"},
    "chimera": {"mix_stft", "masks", "embedding"},
    "snr": {"mix_stft", "masks", "waveforms"},
  }[head]
  assert set(out) == expected
  if "masks" in out:
    masks = np.asarray(out["masks"])
    assert masks.shape == (BATCH, 2, frames, signal.NUM_BINS)
    assert masks.min() >= 0.0 and masks.max() <= 1.0
  if "embedding" in out:
    emb = np.asarray(out["embedding"])
    assert emb.shape == (BATCH, frames, signal.NUM_BINS, 20)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=-1), 1.0, atol=1e-5)
    assert emb.min() >= 0.0
  if "waveforms" in out:
    assert out["waveforms"].shape == (BATCH, 2, LENGTH)
    # Masks applied to |X| with the mixture phase == istft(masks * X).
    ref = jax.jit(signal.istft, static_argnums=1)(
      out["masks"] * out["mix_stft"][:, None], LENGTH
    )
    np.testing.assert_allclose(
      np.asarray(out["waveforms"]), np.asarray(ref), atol=1e-5
    )


@pytest.mark.parametrize("length", [64 * 20])
def test_snr_output_length_equals_input_length(length):
  apply, params = models.functional(_separator("snr"))
  wave = jnp.ones((1, length)) * 0.01
  out = jax.jit(apply)(params, wave)
  assert out["waveforms"].shape == (1, 2, length)


def test_embedding_dim_and_num_sources(mixture):
  model = _separator("chimera", num_sources=3, embedding_dim=7)
  out = nnx.jit(lambda model, x: model(x))(model, mixture)
  assert out["masks"].shape[1] == 3
  assert out["embedding"].shape[-1] == 7


@pytest.mark.parametrize("activation", models.EMBEDDING_ACTIVATIONS)
def test_embedding_activations_give_unit_norm_embeddings(activation, mixture):
  model = _separator("dc", embedding_activation=activation)
  emb = np.asarray(
    nnx.jit(lambda model, x: model(x))(model, mixture)["embedding"]
  )
  np.testing.assert_allclose(np.linalg.norm(emb, axis=-1), 1.0, atol=1e-5)
  # sigmoid embeddings live in the positive orthant; tanh ones do not.
  assert (emb.min() < 0) == (activation == "tanh")


def test_invalid_inputs(mixture):
  with pytest.raises(ValueError, match="head"):
    _separator("nope")
  with pytest.raises(ValueError, match="embedding_activation"):
    _separator("dc", embedding_activation="relu")
  with pytest.raises(ValueError, match=r"\[B, L\]"):
    _separator("mi")(mixture[0])


def test_dropout_only_in_training(mixture):
  model = _separator("mi", nnx.Rngs(0, dropout=1), dropout=0.5)
  apply = nnx.jit(
    lambda model, x, train: model(x, train=train)["masks"], static_argnums=2
  )
  a = apply(model, mixture, False)
  b = apply(model, mixture, False)
  np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  c = apply(model, mixture, True)
  assert np.abs(np.asarray(c - a)).max() > 1e-6
  # The dropout stream advances: two training calls drop different units.
  d = apply(model, mixture, True)
  assert np.abs(np.asarray(d - c)).max() > 1e-6


@pytest.mark.parametrize("head", ["mi", "snr"])
def test_jitted_optax_step_changes_parameters(head, mixture):
  apply, params = models.functional(_separator(head))
  tx = optax.adam(1e-2)
  opt_state = tx.init(params)
  sources = jnp.stack([mixture * 0.3, mixture * 0.7], axis=1)

  def loss_fn(params):
    out = apply(params, mixture)
    if head == "snr":
      return jnp.mean((out["waveforms"] - sources) ** 2)
    target = jnp.abs(signal.stft(sources))
    return jnp.mean(
      jnp.abs(out["masks"] * jnp.abs(out["mix_stft"])[:, None] - target)
    )

  @jax.jit
  def step(params, opt_state):
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, grads

  new_params, _, loss, grads = step(params, opt_state)
  assert np.isfinite(float(loss))
  for g in jax.tree.leaves(grads):
    assert np.all(np.isfinite(np.asarray(g)))
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), params, new_params)
  assert all(jax.tree.leaves(changed)), changed
  # Every BLSTM weight receives gradient.
  for leaf in jax.tree.leaves(grads["blstm"]):
    assert np.abs(np.asarray(leaf)).max() > 0
