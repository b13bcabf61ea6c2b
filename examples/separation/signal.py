# Copyright 2024 The autoclip-optax Authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""Differentiable STFT / iSTFT for the separation example (pure JAX).

Settings follow Seetharaman et al., "AutoClip" (MLSP 2020), Sec. 4: 8 kHz
audio, 32 ms windows (``WINDOW_LENGTH = 256`` samples), 8 ms hop
(``HOP_LENGTH = 64``) and a square-root *periodic* Hann window, used for both
analysis and synthesis.  ``NUM_BINS = 129`` one-sided frequency bins.

Framing convention ("centred", as ``scipy.signal.stft(boundary='zeros',
padded=True)`` and ``librosa.stft(center=True)``):

* the signal is zero-padded with ``WINDOW_LENGTH // 2 = 128`` samples on the
  left, and on the right with ``128`` plus however many samples are needed to
  make the last frame complete;
* frame ``t`` covers padded samples ``[64 t, 64 t + 256)``, i.e. it is centred
  on original sample ``64 t``;
* an ``L``-sample signal therefore has ``num_frames(L) = 1 + ceil(L / 64)``
  frames, and ``n`` frames describe ``frames_to_samples(n) = 64 (n - 1)``
  samples exactly (``num_frames(frames_to_samples(n)) == n``).

  The training chunks of 400 frames are thus ``frames_to_samples(400) = 25536``
  samples, the number quoted in the paper for the waveform (SNR) network.

``istft(stft(x), L)`` reconstructs ``x`` exactly (up to float32 rounding) for
*every* sample, edges included: with the sqrt-Hann window used twice, the
overlap-added synthesis is divided by the overlap-added squared window
(the Hann window, which sums to 2 in the interior at 75 % overlap and is
strictly positive on every original sample because of the 128-sample padding).

Scaling: ``stft`` is the plain (unnormalised) DFT of the windowed frame,
``X[t, k] = sum_n w[n] x[64 t - 128 + n] exp(-2 pi i k n / 256)``.  This equals
``scipy.signal.stft(..., scaling='spectrum') * window.sum()`` transposed to
``[..., frames, bins]``.

All functions accept arbitrary leading batch dimensions, are jittable and
differentiable (``jax.grad`` flows through ``istft(stft(x))``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

SAMPLE_RATE = 8000
WINDOW_LENGTH = 256  # 32 ms at 8 kHz.
HOP_LENGTH = 64  # 8 ms at 8 kHz.
NUM_BINS = WINDOW_LENGTH // 2 + 1  # 129.
_OVERLAP = WINDOW_LENGTH // HOP_LENGTH  # 4 hops per window.
_PAD = WINDOW_LENGTH // 2  # Left padding (centred frames).


def sqrt_hann_window(length: int = WINDOW_LENGTH) -> np.ndarray:
  """Square root of the *periodic* Hann window (``scipy.signal.get_window``)."""
  n = np.arange(length)
  hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)
  return np.sqrt(hann).astype(np.float32)


def num_frames(length: int) -> int:
  """Number of STFT frames of an ``L``-sample signal: ``1 + ceil(L / 64)``."""
  if length < 0:
    raise ValueError(f"length must be non-negative, got {length}.")
  return 1 + math.ceil(length / HOP_LENGTH)


def frames_to_samples(n_frames: int) -> int:
  """Largest signal length with exactly ``n_frames`` frames: ``64 (n - 1)``.

  ``num_frames(frames_to_samples(n)) == n`` for ``n >= 1``; e.g. a 400-frame
  training chunk is 25536 samples.
  """
  if n_frames < 1:
    raise ValueError(f"n_frames must be >= 1, got {n_frames}.")
  return HOP_LENGTH * (n_frames - 1)


def _window_sum_inverse(n_frames: int, length: int) -> np.ndarray:
  """1 / (overlap-added squared window), cropped to the original samples."""
  win_sq = sqrt_hann_window() ** 2
  total = HOP_LENGTH * (n_frames - 1) + WINDOW_LENGTH
  wsum = np.zeros(total, np.float64)
  for t in range(n_frames):
    wsum[t * HOP_LENGTH : t * HOP_LENGTH + WINDOW_LENGTH] += win_sq
  wsum = wsum[_PAD : _PAD + length]
  assert np.all(wsum > 1e-3), "window overlap-add sum vanishes"
  return (1.0 / wsum).astype(np.float32)


def _frame(x: jax.Array, n_frames: int) -> jax.Array:
  """Splits padded ``x [..., 64 (n + 3)]`` into frames ``[..., n, 256]``.

  Uses block reshapes and slices (no gather), which is cheap to differentiate.
  """
  blocks = x.reshape(*x.shape[:-1], n_frames + _OVERLAP - 1, HOP_LENGTH)
  parts = [blocks[..., k : k + n_frames, :] for k in range(_OVERLAP)]
  frames = jnp.stack(parts, axis=-2)  # [..., n, 4, 64]
  return frames.reshape(*x.shape[:-1], n_frames, WINDOW_LENGTH)


def _overlap_add(frames: jax.Array) -> jax.Array:
  """Overlap-adds frames: ``[..., n, 256] -> [..., 64 (n + 3)]``."""
  n_frames = frames.shape[-2]
  lead = frames.shape[:-2]
  blocks = frames.reshape(*lead, n_frames, _OVERLAP, HOP_LENGTH)
  out = None
  for k in range(_OVERLAP):
    pad = [(0, 0)] * len(lead) + [(k, _OVERLAP - 1 - k), (0, 0)]
    part = jnp.pad(blocks[..., k, :], pad)
    out = part if out is None else out + part
  return out.reshape(*lead, (n_frames + _OVERLAP - 1) * HOP_LENGTH)


def stft(x: jax.Array) -> jax.Array:
  """Short-time Fourier transform.

  Args:
    x: real signal ``[..., L]``.

  Returns:
    complex64 ``[..., num_frames(L), 129]`` (frames, then one-sided bins).
  """
  x = jnp.asarray(x, jnp.float32)
  length = x.shape[-1]
  n_frames = num_frames(length)
  total = HOP_LENGTH * (n_frames - 1) + WINDOW_LENGTH
  pad = [(0, 0)] * (x.ndim - 1) + [(_PAD, total - _PAD - length)]
  frames = _frame(jnp.pad(x, pad), n_frames)
  frames = frames * jnp.asarray(sqrt_hann_window())
  return jnp.fft.rfft(frames, n=WINDOW_LENGTH, axis=-1).astype(jnp.complex64)


def istft(X: jax.Array, length: int | None = None) -> jax.Array:
  """Inverse of :func:`stft` (weighted overlap-add).

  Args:
    X: complex ``[..., n_frames, 129]``.
    length: number of output samples; defaults to ``frames_to_samples(n)``.
      Must satisfy ``num_frames(length) == n_frames`` for exact inversion
      (i.e. ``64 (n - 2) < length <= 64 (n - 1)``); shorter lengths simply
      crop.

  Returns:
    float32 ``[..., length]``.  ``istft(stft(x), x.shape[-1]) == x``.
  """
  n_frames = X.shape[-2]
  if X.shape[-1] != NUM_BINS:
    raise ValueError(f"expected {NUM_BINS} bins, got shape {X.shape}.")
  if length is None:
    length = frames_to_samples(n_frames)
  max_length = HOP_LENGTH * (n_frames - 1) + WINDOW_LENGTH - _PAD
  if length > max_length:
    raise ValueError(f"length {length} too long for {n_frames} frames.")
  frames = jnp.fft.irfft(X, n=WINDOW_LENGTH, axis=-1).astype(jnp.float32)
  frames = frames * jnp.asarray(sqrt_hann_window())
  y = _overlap_add(frames)[..., _PAD : _PAD + length]
  return y * jnp.asarray(_window_sum_inverse(n_frames, length))


def magnitude(X: jax.Array, eps: float = 0.0) -> jax.Array:
  """``sqrt(|X|^2 + eps^2)``: magnitude, finite gradient at 0 when eps > 0."""
  power = jnp.real(X) ** 2 + jnp.imag(X) ** 2
  return jnp.sqrt(power + eps**2)


def log_magnitude(X: jax.Array, eps: float = 1e-5) -> jax.Array:
  """Log-magnitude features ``0.5 * log(|X|^2 + eps^2)``.

  This is ``log(|X|)`` for ``|X| >> eps`` and saturates smoothly at
  ``log(eps) ~= -11.5`` on silence (e.g. zero padding), with a finite gradient
  everywhere (including ``X = 0``).  Natural log, no further normalisation.

  Args:
    X: complex STFT ``[..., T, F]``.
    eps: floor.

  Returns:
    float32 ``[..., T, F]``.
  """
  power = jnp.real(X) ** 2 + jnp.imag(X) ** 2
  return 0.5 * jnp.log(power + eps**2)
