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

"""The synthetic speech renderer of ``data.py``, jitted.

A synthetic training batch is made in two parts: numpy draws every random
number (``data._speech_controls``, ``data._mix_levels``: the same draws, in
the same order, from the same ``(seed, split, step)`` generator), and a
deterministic renderer turns them into waveforms -- harmonic excitation, the
STFTs of the excitation and of the noise, the formant envelopes, an inverse
STFT, then the level normalisation and the mix. The numpy renderer
(``data._render_speech``, ``data._apply_levels``) is the reference; this
module is the same computation as one XLA program. On the project's 2-core
CPU a tiny-preset batch then takes 1.3-1.5x less wall time
(``benchmarks/synthetic_render.py``; on one pinned core the rendering part
alone is ~3x cheaper, 4.4 against ~12 ms, but XLA spreads it over both
cores), and the program runs without the interpreter lock, so the
background producer thread holds it only for the numpy draws.

The two agree to float32 rounding (``|xla - numpy| <= 1e-4`` of the
source's peak; XLA's ``sin``, ``exp`` and FFT are not numpy's to the last
bit, and the level maths is float32 here, float64 there), not bit for bit:
a run's batches are a pure function of its step either way, but a run with
``Config.synthesis='xla'`` (the training default) and one with ``'numpy'``
see batches that differ by rounding. Evaluation examples always use numpy.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from examples.separation import data

_PAD = data._SYN_PAD  # pylint: disable=protected-access
_WIN = data.WINDOW_LENGTH
_HOP = data.HOP_LENGTH
_OVERLAP = _WIN // _HOP


def _stft(x: jax.Array) -> jax.Array:
  """``data._syn_stft`` in XLA: ``[..., L]`` -> complex64 ``[..., T, 129]``."""
  length = x.shape[-1]
  n = data._syn_num_frames(length)  # pylint: disable=protected-access
  total = _HOP * (n + _OVERLAP - 1)
  pad = [(0, 0)] * (x.ndim - 1) + [(_PAD, total - _PAD - length)]
  blocks = jnp.pad(x, pad).reshape(*x.shape[:-1], n + _OVERLAP - 1, _HOP)
  frames = jnp.concatenate(
    [blocks[..., k : k + n, :] for k in range(_OVERLAP)], axis=-1
  )  # [..., n, 256]
  frames = frames * jnp.asarray(data._SQRT_HANN)  # pylint: disable=protected-access
  return jnp.fft.rfft(frames, axis=-1)


def _istft(spec: jax.Array, length: int) -> jax.Array:
  """``data._syn_istft`` in XLA: ``[..., T, 129]`` -> float32 ``[..., L]``."""
  frames = jnp.fft.irfft(spec, n=_WIN, axis=-1).astype(jnp.float32)
  frames = frames * jnp.asarray(data._SQRT_HANN)  # pylint: disable=protected-access
  n = frames.shape[-2]
  lead = frames.shape[:-2]
  blocks = frames.reshape(*lead, n, _OVERLAP, _HOP)
  pads = [
    [(0, 0)] * len(lead) + [(k, _OVERLAP - 1 - k), (0, 0)]
    for k in range(_OVERLAP)
  ]
  out = jnp.pad(blocks[..., 0, :], pads[0])
  for k in range(1, _OVERLAP):
    out = out + jnp.pad(blocks[..., k, :], pads[k])
  out = out.reshape(*lead, -1)
  return out[..., _PAD : _PAD + length] * 0.5


# 2 pi split for Cody-Waite range reduction: _TWO_PI_HI has 8 significant
# bits, so k * _TWO_PI_HI is exact for the |k| < 2^16 met here.
_TWO_PI_HI = np.float32(6.28125)
_TWO_PI_LO = np.float32(2 * np.pi - 6.28125)


def _sin(x: jax.Array) -> jax.Array:
  """float32 ``sin`` within ~3 ulp, ~15x cheaper than XLA's on a CPU.

  ``x - 2 pi k`` in two parts (Cody-Waite), folded into ``[-pi/2, pi/2]``
  by ``sin(x) = sin(+-pi - x)``, then the degree-11 Taylor polynomial
  (truncation error < 6e-8 there). The excitation takes two sines per
  sample, which were a third of the renderer's time with ``jnp.sin``.
  """
  k = jnp.round(x * np.float32(0.5 / np.pi))
  r = (x - k * _TWO_PI_HI) - k * _TWO_PI_LO
  half_pi = np.float32(0.5 * np.pi)
  r = jnp.where(r > half_pi, np.float32(np.pi) - r, r)
  r = jnp.where(r < -half_pi, np.float32(-np.pi) - r, r)
  r2 = r * r
  p = np.float32(-1 / 39916800)
  for c in (1 / 362880, -1 / 5040, 1 / 120, -1 / 6):
    p = p * r2 + np.float32(c)
  return r + r * r2 * p


def _lorentzian(freqs, centre, bandwidth):
  return jax.lax.rsqrt(1.0 + ((freqs - centre) / (0.5 * bandwidth)) ** 2)


def _harmonic_phase(f0_frames, block_phase, length: int) -> jax.Array:
  """The wrapped harmonic phase ``[M, L]`` of ``data._render_speech``.

  Sample ``r`` of block ``b`` (samples ``64 b ... 64 b + 63``) has the f0
  ``a + (c - a) r / 64`` between the frame values ``a = f0[b + 1]`` and
  ``c = f0[b + 2]``, so the running sum inside the block is
  ``a (r + 1) + (c - a) r (r + 1) / 128`` in closed form; the phase at the
  start of each block (``block_phase``, accumulated in float64 on the host)
  carries the rest, and float32 never holds more than one block's phase.
  """
  num_blocks = block_phase.shape[1]
  a = f0_frames[:, 1 : num_blocks + 1, None]
  c = f0_frames[:, 2 : num_blocks + 2, None]
  r = jnp.arange(_HOP, dtype=jnp.float32)
  inside = a * (r + 1) + (c - a) * (r * (r + 1) / (2 * _HOP))
  phase = block_phase[..., None] + inside * (2 * np.pi / data.SAMPLE_RATE)
  phase = phase - 2 * np.pi * jnp.floor(phase * (0.5 / np.pi))
  return phase.reshape(phase.shape[0], -1)[:, :length]


def block_phase(c: data.SpeechControls) -> np.ndarray:
  """Harmonic phase at the start of every 64-sample block: float32 [M, nb].

  The float64 sum of f0 over block ``b`` is ``32.5 f0[b + 1] +
  31.5 f0[b + 2]`` (the linear interpolation of ``data._f0_samples``).
  """
  length = c.noise.shape[1]
  num_blocks = -(-length // _HOP)
  f0 = c.f0_frames
  sums = 32.5 * f0[:, 1 : num_blocks + 1] + 31.5 * f0[:, 2 : num_blocks + 2]
  before = np.cumsum(sums, axis=1) - sums
  phase = before * (2 * np.pi / data.SAMPLE_RATE) + c.phase_offset
  phase -= 2 * np.pi * np.floor(phase * (0.5 / np.pi))
  return phase.astype(np.float32)


def _render(c: dict[str, jax.Array], gains, level):
  """The jitted body of :func:`render_speech_mixtures` (float32 inputs)."""
  m, length = c["noise"].shape
  num_frames = c["syllable"].shape[1]
  num_harm = c["num_harm"]
  phase = _harmonic_phase(c["f0_frames"], c["block_phase"], length)
  half = _sin(0.5 * phase)
  safe = jnp.abs(half) > 1e-6
  excitation = _sin((num_harm + 0.5) * phase) / (2 * jnp.where(safe, half, 1.0))
  excitation = jnp.where(safe, excitation - 0.5, num_harm)
  noise = c["noise"] * jnp.sqrt(num_harm / 2)
  harmonic_spec = _stft(excitation)
  noise_spec = _stft(noise)

  freqs = jnp.asarray(data._FREQS, jnp.float32)  # pylint: disable=protected-access
  form = c["formants"][..., None]  # [M, T/2, 4, 1]
  bw = c["bandwidths"][..., None]  # [M, 1, 4, 1]
  weights = c["formant_gains"][:, None, :, None]  # [M, 1, 4, 1]
  envelope = (weights * _lorentzian(freqs, form, bw)).sum(2)  # [M, T/2, F]
  envelope = jnp.repeat(envelope, 2, axis=1)[:, :num_frames]
  tilt = (1 + freqs / 300.0)[None, :] ** -c["tilt"][:, None]  # [M, F]
  envelope = envelope * tilt[:, None] + 1e-3
  syllable = c["syllable"]
  fricative = jnp.take_along_axis(c["consonant"], syllable, 1) == 1
  centre = jnp.take_along_axis(c["fric_centre"], syllable, 1)
  fric_shape = jnp.where(
    fricative[..., None],
    _lorentzian(freqs, centre[..., None], 1500.0),
    0.5 * jnp.sqrt(tilt)[:, None],
  )  # [M, T, F]
  voiced = c["voiced_amp"][..., None] * envelope
  unvoiced = c["breath"][:, None, None] * voiced
  unvoiced = unvoiced + c["fric_amp"][..., None] * fric_shape
  spec = harmonic_spec * voiced + noise_spec * unvoiced
  speech = _istft(spec, length)  # [M, L]

  # data._apply_levels, in float32.
  b = gains.shape[0]
  sources = speech.reshape(b, data.NUM_SOURCES, length)
  power = jnp.mean(sources**2, axis=-1, keepdims=True)
  sources = sources * jax.lax.rsqrt(jnp.maximum(power, 1e-12))
  sources = sources * gains[..., None]
  mix = sources.sum(1)
  scale = level / jnp.sqrt(jnp.mean(mix**2, axis=-1) + 1e-12)
  peak = jnp.abs(sources).sum(1).max(-1) * scale
  scale = jnp.where(peak > 0.99, scale * 0.99 / jnp.maximum(peak, 1e-12), scale)
  sources = sources * scale[:, None, None]
  return sources.sum(1), sources


_render_jit = jax.jit(_render)

_FLOAT_FIELDS = (
  "f0_frames",
  "num_harm",
  "noise",
  "voiced_amp",
  "fric_amp",
  "formants",
  "bandwidths",
  "formant_gains",
  "tilt",
  "breath",
  "fric_centre",
)


@functools.lru_cache(maxsize=1)
def _cpu_device():
  return jax.devices("cpu")[0]


def render_speech_mixtures(
  controls: data.SpeechControls, gains: np.ndarray, level: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
  """Renders and mixes ``B`` two-talker mixtures on the host CPU with XLA.

  Args:
    controls: the draws of ``2 B`` speech sources, source ``j`` of mixture
      ``b`` in row ``2 b + j`` (``data._speech_controls``).
    gains: ``[B, 2]`` relative source gains (``data._mix_levels``).
    level: ``[B]`` mixture RMS levels.

  Returns:
    float32 numpy ``mix [B, L]`` and ``sources [B, 2, L]``, as
    ``data._apply_levels(data._render_speech(controls) ...)`` up to float32
    rounding.
  """
  arrays: dict[str, np.ndarray] = {
    name: np.asarray(getattr(controls, name), np.float32)
    for name in _FLOAT_FIELDS
  }
  arrays["block_phase"] = block_phase(controls)
  arrays["consonant"] = np.asarray(controls.consonant, np.int32)
  arrays["syllable"] = np.asarray(controls.syllable, np.int32)
  with jax.default_device(_cpu_device()):
    mix, sources = _render_jit(
      arrays, np.asarray(gains, np.float32), np.asarray(level, np.float32)
    )
  return np.asarray(mix), np.asarray(sources)
