"""Tests for examples/separation/signal.py (STFT / iSTFT)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from examples.separation import signal

RNG = np.random.default_rng(0)
# Jitted entry points (eager dispatch of the many small ops is slow).
stft = jax.jit(signal.stft)
istft = jax.jit(signal.istft, static_argnums=1)
log_magnitude = jax.jit(signal.log_magnitude)


def _scipy_kwargs():
  return dict(
    fs=signal.SAMPLE_RATE,
    window=signal.sqrt_hann_window().astype(np.float64),
    nperseg=signal.WINDOW_LENGTH,
    noverlap=signal.WINDOW_LENGTH - signal.HOP_LENGTH,
  )


def test_constants_match_paper():
  # 32 ms window, 8 ms hop at 8 kHz.
  assert signal.WINDOW_LENGTH == 0.032 * signal.SAMPLE_RATE
  assert signal.HOP_LENGTH == 0.008 * signal.SAMPLE_RATE
  assert signal.NUM_BINS == 129
  w = signal.sqrt_hann_window()
  np.testing.assert_allclose(
    w**2, scipy.signal.get_window("hann", 256, fftbins=True), atol=1e-6
  )


def test_frame_counts():
  assert signal.frames_to_samples(400) == 25536  # Paper, Sec. 4.3.
  assert signal.num_frames(25536) == 400
  for n in (1, 2, 3, 10, 400):
    assert signal.num_frames(signal.frames_to_samples(n)) == n
  assert signal.num_frames(0) == 1
  assert signal.num_frames(1) == 2
  assert signal.num_frames(64) == 2
  assert signal.num_frames(65) == 3
  with pytest.raises(ValueError):
    signal.frames_to_samples(0)


@pytest.mark.parametrize("length", [1, 63, 64, 65, 255, 256, 1000, 25536])
def test_round_trip_exact_including_edges(length):
  x = RNG.standard_normal((2, length)).astype(np.float32)
  spec = stft(x)
  assert spec.shape == (2, signal.num_frames(length), signal.NUM_BINS)
  assert spec.dtype == jnp.complex64
  y = istft(spec, length)
  assert y.shape == x.shape
  # Every sample, first and last included.
  np.testing.assert_allclose(np.asarray(y), x, atol=2e-6, rtol=0)


def test_istft_default_length():
  n = 9
  x = RNG.standard_normal(signal.frames_to_samples(n)).astype(np.float32)
  y = istft(stft(x))
  np.testing.assert_allclose(np.asarray(y), x, atol=2e-6)


def test_batched_shapes():
  x = RNG.standard_normal((2, 3, 700)).astype(np.float32)
  spec = stft(x)
  assert spec.shape == (2, 3, 12, 129)
  assert istft(spec, 700).shape == (2, 3, 700)
  assert log_magnitude(spec).shape == (2, 3, 12, 129)
  # Batched == one at a time.
  np.testing.assert_allclose(
    np.asarray(spec[1, 2]), np.asarray(stft(x[1, 2])), atol=1e-5
  )


@pytest.mark.parametrize("length", [256, 1000, 4096])
def test_matches_scipy(length):
  x = RNG.standard_normal((2, length))
  _, _, ref = scipy.signal.stft(
    x, boundary="zeros", padded=True, **_scipy_kwargs()
  )
  # scipy: [..., F, T] and scaling='spectrum' divides by window.sum().
  ref = (
    np.swapaxes(ref, -1, -2)
    * signal.sqrt_hann_window().astype(np.float64).sum()
  )
  ours = np.asarray(stft(x.astype(np.float32)))
  assert ours.shape == ref.shape
  np.testing.assert_allclose(ours, ref, atol=2e-4 * np.abs(ref).max())

  _, ref_x = scipy.signal.istft(
    np.swapaxes(ref, -1, -2) / signal.sqrt_hann_window().sum(),
    boundary=True,
    **_scipy_kwargs(),
  )
  ours_x = np.asarray(istft(jnp.asarray(ours), length))
  np.testing.assert_allclose(ours_x, ref_x[..., :length], atol=1e-5)
  np.testing.assert_allclose(ours_x, x, atol=1e-5)


def test_gradient_of_round_trip_is_identity():
  length = 300
  x = jnp.asarray(RNG.standard_normal(length), jnp.float32)
  w = jnp.asarray(RNG.standard_normal(length), jnp.float32)
  grad = jax.jit(jax.grad(lambda x: jnp.sum(w * istft(stft(x), length))))(x)
  assert np.all(np.isfinite(grad))
  np.testing.assert_allclose(np.asarray(grad), np.asarray(w), atol=1e-5)


def test_gradient_matches_finite_differences():
  x = jnp.asarray(RNG.standard_normal(200), jnp.float32)
  mask = jnp.asarray(
    RNG.uniform(size=(signal.num_frames(200), 129)), jnp.float32
  )

  def f(x):  # Masking in the STFT domain, as the SNR network does.
    return jnp.sum(istft(mask * stft(x), 200) ** 2)

  grad = jax.jit(jax.grad(f))(x)
  f = jax.jit(f)
  for seed in range(3):  # Directional derivatives vs central differences.
    v = jnp.asarray(
      np.random.default_rng(seed).standard_normal(200), jnp.float32
    )
    eps = 1e-2
    fd = (f(x + eps * v) - f(x - eps * v)) / (2 * eps)
    np.testing.assert_allclose(float(jnp.vdot(grad, v)), float(fd), rtol=1e-3)


def test_log_magnitude():
  spec = stft(jnp.zeros((1, 128)))
  feats = log_magnitude(spec)
  np.testing.assert_allclose(np.asarray(feats), np.log(1e-5), rtol=1e-6)
  grad = jax.jit(jax.grad(lambda x: jnp.sum(log_magnitude(stft(x)))))(
    jnp.zeros((128,))
  )
  assert np.all(np.isfinite(grad))
  x = RNG.standard_normal(512).astype(np.float32)
  spec = stft(x)
  big = np.abs(np.asarray(spec)) > 1e-2
  np.testing.assert_allclose(
    np.asarray(log_magnitude(spec))[big],
    np.log(np.abs(np.asarray(spec)))[big],
    atol=1e-5,
  )
