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

"""Two-source mixtures for the separation example: synthetic and real data.

All datasets are built with ``make_dataset`` and share one interface::

  ds = make_dataset('synthetic', split='train', seed=0)    # no files needed
  ds = make_dataset('wsj0-2mix', '/data/wsj0-2mix', split='test')
  ds = make_dataset('libri2mix', '/data/Libri2Mix', split='validation')

  for batch in ds.batches(batch_size=25, rng=0):   # infinite training stream
    batch['mix']      # float32 [B, chunk_samples]
    batch['sources']  # float32 [B, 2, chunk_samples]
    batch['classes']  # int32   [B, 2]  (0 = speech, 1 = environmental)
                      # (synthetic batches also carry 'speakers' int32 [B, 2])

  batch = ds.batch_at(step, batch_size=25)          # the same, stateless:
                                                    # resumable runs

  for ex in ds.examples():                          # fixed evaluation set
    ex['mix'], ex['sources'], ex['classes'], ex['name']   # [L], [2, L], [2]

  for batch in ds.eval_batches(batch_size=8):       # same set, zero-padded
    batch['lengths']  # int32 [B]; plus mix / sources / classes / names

Splits are ``'train'``, ``'validation'`` and ``'test'`` (aliases: ``tr``,
``cv``, ``valid``, ``val``, ``dev``, ``tt``). Audio is 8 kHz, float32, mono.

Training chunks (paper Sec. 4.3). The STFT of ``signal.py`` uses centred
frames (``1 + ceil(L / 64)`` frames of 256 samples, hop 64), so the paper's
400-frame sequences are ``DEFAULT_CHUNK_SAMPLES = 64 * (400 - 1) = 25536``
samples -- the number the paper quotes for its waveform network.
``batches`` takes one chunk per utterance at a uniformly random offset; an
utterance shorter than the chunk is read whole and zero-padded at the end.
Real-data batches go through the utterances in a fresh random order every
epoch (``num_examples`` utterances), wrapping around forever; ``batch_at``
gives batch ``step`` of such a stream without state (epoch permutations seeded
by ``(seed, epoch)``, offsets by ``(seed, step)``), so that a run resumed at
step ``k`` sees the batches an uninterrupted run would.

Synthetic data (``name='synthetic'``, the default, nothing to download).
Generated in vectorised numpy at 8 kHz, deterministically from ``seed``:

* speech-like talkers: a band-limited harmonic series (closed-form Dirichlet
  kernel, no aliasing) on a time-varying f0 contour (pitch targets per
  syllable, interpolated between syllable centres), shaped frame by frame in
  the STFT domain by a four-formant vowel envelope with formant transitions,
  gated by a syllable-rate on/off envelope (3.5-6 syllables/s, with pauses),
  plus aspiration noise and fricative/plosive noise bursts at syllable onsets.
  Each speaker id owns its pitch range (low or high register), formant scale,
  speaking rate, spectral tilt and breathiness. The speaker pools of the three
  splits are disjoint (``SyntheticConfig.num_speakers``), and so are their
  random streams (``SeedSequence([seed, split, ...])``);
* optionally, environmental-like sounds (``source_classes``): band-pass noise
  bursts with tremolo, swept harmonic chirps/beeps and resonant impacts with
  exponential decay, a few events per clip;
* mixing as in wsj0-2mix: both sources normalised to the same power, then set
  to a random relative level of 0-5 dB (either one louder), the mixture at
  -30..-20 dBFS, ``mix = sources.sum(0)`` exactly (in float32).

Measured difficulty (``python -m examples.separation.data_stats``: 100
training chunks of 25536 samples, seed 0, default settings): the mixture's
SI-SDR against its sources averages 0.0 dB (2.5 dB for the louder one); an
oracle ideal ratio mask with the mixture phase gains 13.0 dB SI-SDRi on
average (10th percentile 10.6 dB). Generating 100 such chunks takes ~1.5-2 s
on this shared 2-core CPU.

Rendering. A batch is made of random draws (numpy, ``_speech_controls`` and
``_mix_levels``: all of them, in a fixed order, from the batch's own
generator) and a deterministic rendering of them into waveforms. The numpy
renderer (``_render_speech``, ``_apply_levels``) is the reference; with
``renderer='xla'`` the training stream renders the same draws with one
jitted program (``synthetic_xla.py``), which agrees with numpy to float32
rounding (~70 dB SNR), takes less wall time (1.3-1.5x for the tiny
preset's batch on the 2-core CPU) and runs without the interpreter lock
(``benchmarks/synthetic_render.py``).

Two defaults make the task learnable by the ``tiny`` preset in a minute or
two (measured with ``--loss mi --clip none``, 2 x 64 BLSTM, batch 8, 100-frame
chunks, Adam 1e-3, validation SI-SDRi): ``pairing='cross_register'`` (a low-
with a high-register talker, like wsj0-2mix's mixed-gender mixtures) and
``consonant_probability=0.3``. With the earlier 0.65 consonant onsets the
model stayed below the mixture for ~1000 steps and reached +3.7 dB after 5000;
with 0.3 it is at +4.2 dB after 500 steps and +4.9 dB after 1500. With
``pairing='any'`` it stayed at -1 to -2.5 dB for 2500-4000 steps.

The training split is an endless on-the-fly stream (``batches``), with a
nominal ``epoch_size`` of 20,000 mixtures (the size of wsj0-2mix ``tr``).
Validation and test are fixed sets of ``num_validation`` / ``num_test``
utterances of 2-4 s, example ``i`` generated from its own seed (any prefix
is the same set). ``batches`` on an evaluation split streams fresh mixtures
from that split's speakers.

wsj0-2mix (``name='wsj0-2mix'``). Expected layout (the one of the official
scripts)::

  ROOT/.../{tr,cv,tt}/{mix,s1,s2}/NAME.wav

e.g. ``ROOT/wav8k/min/tt/mix/NAME.wav``; the same ``NAME`` must exist in
``mix``, ``s1`` and ``s2``. The split directory is searched for under ``ROOT``;
when several match (``wav8k``/``wav16k``, ``min``/``max``), the one whose path
contains ``wav8k`` and ``min`` (``mode``) wins.

Libri2Mix (``name='libri2mix'``). Expected layout (``LibriMix`` scripts)::

  ROOT/.../metadata/mixture_{SUBSET}_mix_{TYPE}.csv

with columns ``mixture_path, source_1_path, source_2_path`` (and optionally
``mixture_ID`` and ``length``, checked when present), SUBSET ``train-100``
(``train_subset`` option, e.g. ``train-360``) for train, ``dev`` for
validation and ``test`` for test, TYPE ``clean`` (``mix_type`` option). The
preferred CSV is under ``wav8k/min``. Paths in the CSV may be absolute paths
from another machine: a path that does not exist is looked up relative to the
directory above ``metadata`` (e.g. ``wav8k/min/test/s1/NAME.wav``), to the CSV
directory and to ``ROOT``, using its last 3 components when it is absolute.

Talkers. Dynamic mixing with ``distinct_talkers`` pairs sources of two
different talkers, read from the mixture names as asteroid and the official
scripts write them (``talkers_from_name``): wsj0-2mix ``[PREFIX_]U1_L1_U2_L2``
with WSJ utterance ids (the talker is the first 3 characters, ``011a0101`` ->
``011``) or other ids (taken whole); Libri2Mix
``SPK-CHAPTER-UTT_SPK-CHAPTER-UTT``. A wsj0-2mix-layout ``ROOT/mixtures.csv``
with ``name``, ``s1_talker`` and ``s2_talker`` columns (``tts2mix`` writes
one) takes precedence over the names. A mixture with unknown talkers is
remixed with any other utterance's sources.

Errors. Every problem found in a listing raises ``DatasetError`` (a
``ValueError``) with a one-line message naming the culprit, before any
training: a missing root (with the expected layout), no split directory or
CSV, a missing partner file (``s1``/``s2``/``mix``), a sample rate other than
``sample_rate``, a multi-channel file, unequal lengths of mixture and sources,
an unreadable file. The whole listing is validated up front with cheap
``soundfile.info`` calls (no audio is read).
"""

from __future__ import annotations

import csv
import dataclasses
import os
import pathlib
import re
import threading
from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np
import scipy.fft
import scipy.signal
import soundfile as sf

from examples.separation import configs

SAMPLE_RATE = 8000
NUM_SOURCES = 2
WINDOW_LENGTH = 256  # 32 ms, as signal.py.
HOP_LENGTH = 64  # 8 ms, as signal.py.
DEFAULT_CHUNK_FRAMES = 400
DEFAULT_CHUNK_SAMPLES = HOP_LENGTH * (DEFAULT_CHUNK_FRAMES - 1)  # 25536.

CLASS_NAMES = ("speech", "environmental")
SPEECH, ENVIRONMENTAL = 0, 1
SPLITS = ("train", "validation", "test")
# How synthetic training batches are rendered (see ``SyntheticMixtures``).
RENDERERS = ("numpy", "xla")

_SPLIT_ALIASES = {
  "train": "train",
  "tr": "train",
  "validation": "validation",
  "valid": "validation",
  "val": "validation",
  "cv": "validation",
  "dev": "validation",
  "test": "test",
  "tt": "test",
}
_CLASS_ALIASES = {
  "speech": SPEECH,
  "environmental": ENVIRONMENTAL,
  "env": ENVIRONMENTAL,
  "any": -1,
}

Batch = dict[str, np.ndarray]


class DatasetError(ValueError):
  """A dataset that cannot be used as is (missing files, bad audio...)."""


def frames_to_samples(num_frames: int) -> int:
  """Chunk length in samples for ``num_frames`` centred STFT frames."""
  return HOP_LENGTH * (num_frames - 1)


def canonical_split(split: str) -> str:
  """``'train'``, ``'validation'`` or ``'test'`` for a split name or alias."""
  try:
    return _SPLIT_ALIASES[split.lower()]
  except KeyError:
    raise ValueError(
      f"unknown split {split!r}; expected one of {sorted(_SPLIT_ALIASES)}"
    ) from None


class SeparationDataset(Protocol):
  """What the training and evaluation loops rely on."""

  name: str
  split: str
  sample_rate: int
  chunk_samples: int
  num_examples: int

  def batches(
    self, batch_size: int, rng: np.random.Generator | int | None = None
  ) -> Iterator[Batch]:
    """Endless random training chunks: mix [B, L], sources [B, 2, L]."""

  def batch_at(self, step: int, batch_size: int) -> Batch:
    """Training batch number ``step``, statelessly (resumable runs)."""

  def examples(self) -> Iterator[dict]:
    """The fixed evaluation set, whole utterances, in a deterministic order."""

  def eval_batches(
    self, batch_size: int, pad_to_multiple: int = ...
  ) -> Iterator[Batch]:
    """``examples`` grouped and zero-padded, with ``lengths``."""


class _Base:
  """Shared ``eval_batches``."""

  sample_rate: int = SAMPLE_RATE

  def examples(self) -> Iterator[dict]:
    raise NotImplementedError

  def eval_batches(
    self, batch_size: int, pad_to_multiple: int = 4 * 1024
  ) -> Iterator[Batch]:
    """Groups ``examples()`` into zero-padded batches.

    Args:
      batch_size: utterances per batch (the last batch may be smaller).
      pad_to_multiple: the padded length is rounded up to a multiple of this,
        which bounds the number of distinct shapes a jitted step sees.

    Yields:
      ``mix`` float32 [B, L], ``sources`` float32 [B, 2, L], ``classes``
      int32 [B, 2], ``lengths`` int32 [B] and ``names`` (a list of str).
    """
    group = []
    for ex in self.examples():
      group.append(ex)
      if len(group) == batch_size:
        yield _pad_group(group, pad_to_multiple)
        group = []
    if group:
      yield _pad_group(group, pad_to_multiple)


def _pad_group(group: list[dict], multiple: int) -> Batch:
  lengths = np.array([ex["mix"].shape[-1] for ex in group], np.int32)
  length = int(-(-lengths.max() // multiple) * multiple)
  mix = np.zeros((len(group), length), np.float32)
  sources = np.zeros((len(group), NUM_SOURCES, length), np.float32)
  for i, ex in enumerate(group):
    mix[i, : lengths[i]] = ex["mix"]
    sources[i, :, : lengths[i]] = ex["sources"]
  return {
    "mix": mix,
    "sources": sources,
    "classes": np.stack([ex["classes"] for ex in group]).astype(np.int32),
    "lengths": lengths,
    "names": [ex["name"] for ex in group],
  }


def _as_rng(rng, default_key: Sequence[int]) -> np.random.Generator:
  if isinstance(rng, np.random.Generator):
    return rng
  key = list(default_key) + ([] if rng is None else [int(rng)])
  return np.random.default_rng(key)


# ===========================================================================
# Synthetic mixtures.
# ===========================================================================


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
  """Settings of the synthetic mixtures.

  Attributes:
    source_classes: class of source 0 and source 1: ``'speech'``,
      ``'environmental'`` (``'env'``) or ``'any'`` (drawn per mixture, with
      ``environmental_probability``). ``('speech', 'speech')`` is two-talker
      speech separation; ``('any', 'any')`` gives all four class pairs.
    environmental_probability: probability that an ``'any'`` source is
      environmental.
    num_speakers: sizes of the disjoint train / validation / test speaker
      pools.
    max_relative_level_db: relative level of the two sources, uniform in
      ``[0, max]`` dB, either one louder.
    mixture_level_dbfs: range of the mixture RMS level.
    eval_seconds: range of the evaluation utterance durations.
    num_validation: size of the fixed validation set.
    num_test: size of the fixed test set.
    epoch_size: nominal number of training mixtures per epoch.
    pairing: ``'cross_register'`` (default) always pairs a low-register
      with a high-register talker (like the mixed-gender half of wsj0-2mix);
      ``'any'`` pairs two distinct speakers of the split at random (much
      harder: the tiny preset does not learn it in a few thousand steps).
    consonant_probability: fraction of syllables that start with a
      fricative or plosive noise burst (half each). Broadband bursts are the
      hardest part to assign: at 0.65 the tiny preset stays below the
      mixture for 4000+ steps, at 0.3 it gains ~4-5 dB within 1500 steps.
  """

  source_classes: tuple[str, str] = ("speech", "speech")
  environmental_probability: float = 0.5
  num_speakers: tuple[int, int, int] = (100, 20, 20)
  max_relative_level_db: float = 5.0
  mixture_level_dbfs: tuple[float, float] = (-30.0, -20.0)
  eval_seconds: tuple[float, float] = (2.0, 4.0)
  num_validation: int = 200
  num_test: int = 200
  epoch_size: int = 20_000
  pairing: str = "cross_register"
  consonant_probability: float = 0.3

  def __post_init__(self):
    if self.pairing not in ("any", "cross_register"):
      raise ValueError(
        f"pairing must be 'any' or 'cross_register', got {self.pairing!r}"
      )
    if not 0.0 <= self.consonant_probability <= 1.0:
      raise ValueError(
        "consonant_probability must be in [0, 1], got "
        f"{self.consonant_probability!r}"
      )
    if len(self.source_classes) != NUM_SOURCES:
      raise ValueError(
        f"source_classes needs {NUM_SOURCES} entries, got "
        f"{self.source_classes!r}"
      )
    for c in self.source_classes:
      if c not in _CLASS_ALIASES:
        raise ValueError(
          f"unknown source class {c!r}; expected one of "
          f"{sorted(_CLASS_ALIASES)}"
        )
    if len(self.num_speakers) != 3 or min(self.num_speakers) < 2:
      raise ValueError(
        "num_speakers needs 3 pool sizes of at least 2, got "
        f"{self.num_speakers!r}"
      )


# STFT used for synthesis only (numpy; 256-sample sqrt-Hann, hop 64). Frame t
# covers original samples [64 t - 192, 64 t + 64), so every sample is covered
# by exactly 4 frames and the squared-window overlap-add is exactly 2.
_SYN_PAD = WINDOW_LENGTH - HOP_LENGTH
_FREQS = np.arange(WINDOW_LENGTH // 2 + 1) * SAMPLE_RATE / WINDOW_LENGTH
_SQRT_HANN = np.sqrt(
  0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WINDOW_LENGTH) / WINDOW_LENGTH)
).astype(np.float32)


def _syn_num_frames(length: int) -> int:
  return (length + _SYN_PAD - 1) // HOP_LENGTH + 1


def _syn_frame_times(length: int) -> np.ndarray:
  """Frame centres in seconds."""
  t = np.arange(_syn_num_frames(length))
  return (HOP_LENGTH * t + WINDOW_LENGTH // 2 - _SYN_PAD) / SAMPLE_RATE


def _syn_stft(x: np.ndarray) -> np.ndarray:
  """``[..., L]`` -> complex64 ``[..., T, 129]``."""
  length = x.shape[-1]
  n = _syn_num_frames(length)
  padded = np.zeros(
    x.shape[:-1] + (HOP_LENGTH * (n - 1) + WINDOW_LENGTH,), np.float32
  )
  padded[..., _SYN_PAD : _SYN_PAD + length] = x
  frames = (
    np.lib.stride_tricks.sliding_window_view(padded, WINDOW_LENGTH, axis=-1)[
      ..., ::HOP_LENGTH, :
    ]
    * _SQRT_HANN
  )
  return scipy.fft.rfft(frames, axis=-1, overwrite_x=True)


def _syn_istft(spec: np.ndarray, length: int) -> np.ndarray:
  """Inverse of ``_syn_stft``: ``[..., T, 129]`` -> float32 ``[..., L]``."""
  frames = scipy.fft.irfft(spec, n=WINDOW_LENGTH, axis=-1).astype(
    np.float32, copy=False
  )
  frames *= _SQRT_HANN
  n = frames.shape[-2]
  lead = frames.shape[:-2]
  blocks = frames.reshape(*lead, n, WINDOW_LENGTH // HOP_LENGTH, HOP_LENGTH)
  out = np.zeros((*lead, n + 3, HOP_LENGTH), np.float32)
  for k in range(WINDOW_LENGTH // HOP_LENGTH):
    out[..., k : k + n, :] += blocks[..., k, :]
  out = out.reshape(*lead, -1)
  return out[..., _SYN_PAD : _SYN_PAD + length] * 0.5


def _row_searchsorted(edges: np.ndarray, times: np.ndarray) -> np.ndarray:
  """Per-row ``searchsorted(edges[m], times, 'right') - 1``; [M, K], [T]."""
  m, k = edges.shape
  span = max(edges.max() - edges.min(), times.max() - times.min()) + 1.0
  offset = (np.arange(m) * 4 * span)[:, None]
  flat = np.searchsorted(
    (edges + offset).ravel(), (times[None, :] + offset).ravel(), side="right"
  )
  return flat.reshape(m, -1) - 1 - np.arange(m)[:, None] * k


def _lorentzian(freqs, centre, bandwidth):
  """Amplitude resonance peak of height 1, -3 dB at ``centre +- bw / 2``."""
  return 1.0 / np.sqrt(1.0 + ((freqs - centre) / (0.5 * bandwidth)) ** 2)


# Vowel formants F1-F3 (Hz, adult male; Peterson & Barney 1952).
_VOWELS = np.array(
  [
    [270, 2290, 3010],
    [390, 1990, 2550],
    [530, 1840, 2480],
    [660, 1720, 2410],
    [730, 1090, 2440],
    [570, 840, 2410],
    [440, 1020, 2240],
    [300, 870, 2240],
    [640, 1190, 2390],
    [490, 1350, 1690],
  ],
  np.float64,
)
_FORMANT_BANDWIDTHS = np.array([50.0, 70.0, 100.0, 150.0])


@dataclasses.dataclass(frozen=True)
class _Speakers:
  """Voice parameters of a pool of speakers, one array entry per speaker."""

  ids: np.ndarray
  f0: np.ndarray  # median f0, Hz.
  f0_spread: np.ndarray  # syllable-to-syllable pitch std, semitones.
  formant_scale: np.ndarray  # vocal-tract scaling of the formants.
  formant_gains: np.ndarray  # [n, 4] relative formant amplitudes.
  rate: np.ndarray  # syllables per second.
  tilt: np.ndarray  # spectral tilt exponent.
  breath: np.ndarray  # aspiration noise level.
  pause: np.ndarray  # probability of a silent syllable.

  def take(self, idx: np.ndarray) -> _Speakers:
    return _Speakers(
      *(getattr(self, f.name)[idx] for f in dataclasses.fields(self))
    )


# Median f0 separating the low (85-150 Hz) and high (165-255 Hz) registers.
_HIGH_REGISTER_F0 = 157.0


def _make_speakers(ids: np.ndarray) -> _Speakers:
  """Voices drawn from a seed per speaker id (independent of ``seed``)."""
  rows = []
  for i in ids:
    r = np.random.default_rng([0x5EED5, int(i)])
    high = r.random() < 0.5
    f0 = np.exp(
      r.uniform(np.log(165), np.log(255))
      if high
      else r.uniform(np.log(85), np.log(150))
    )
    scale = r.uniform(1.02, 1.17) if high else r.uniform(0.88, 1.02)
    gains = np.array(
      [1.0, r.uniform(0.4, 0.9), r.uniform(0.15, 0.5), r.uniform(0.05, 0.25)]
    )
    rows.append(
      (
        int(i),
        f0,
        r.uniform(1.0, 3.0),
        scale,
        gains,
        r.uniform(3.5, 6.0),
        r.uniform(0.4, 1.1),
        r.uniform(0.03, 0.2),
        r.uniform(0.05, 0.2),
      )
    )
  cols = list(zip(*rows, strict=True))
  return _Speakers(*(np.array(c) for c in cols))


def _interp_centres(values, k, t, centres):
  """Piecewise-linear interpolation of per-syllable values between centres.

  Args:
    values: [M, K] or [M, K, J] per-syllable values.
    k: [M, T] syllable index of each frame (1 <= k <= K - 2).
    t: [T] frame times.
    centres: [M, K] syllable centre times.

  Returns:
    [M, T] or [M, T, J].
  """
  c_k = np.take_along_axis(centres, k, axis=1)
  left = np.where(t[None] < c_k, k - 1, k)
  c0 = np.take_along_axis(centres, left, axis=1)
  c1 = np.take_along_axis(centres, left + 1, axis=1)
  frac = np.clip((t[None] - c0) / (c1 - c0), 0.0, 1.0)
  if values.ndim == 3:
    v0 = np.take_along_axis(values, left[..., None], axis=1)
    v1 = np.take_along_axis(values, left[..., None] + 1, axis=1)
    frac = frac[..., None]
  else:
    v0 = np.take_along_axis(values, left, axis=1)
    v1 = np.take_along_axis(values, left + 1, axis=1)
  return v0 + frac * (v1 - v0)


@dataclasses.dataclass(frozen=True)
class SpeechControls:
  """The random draws of a batch of speech sources, ready to render.

  ``_speech_controls`` makes every random draw of ``_speech`` (in its order)
  and the cheap frame-rate control curves; rendering them into waveforms
  (harmonic excitation, two STFTs, the formant envelopes, one inverse STFT)
  is deterministic, and done either by ``_render_speech`` (numpy, the
  reference) or by ``synthetic_xla.render_speech_mixtures`` (the same
  computation, jitted). ``M`` sources, ``T`` frames, ``K`` syllables, ``L``
  samples.
  """

  f0_frames: np.ndarray  # float64 [M, T], f0 (Hz) at the frame centres.
  phase_offset: np.ndarray  # float64 [M, 1], initial phase (radians).
  num_harm: np.ndarray  # float32 [M, 1], harmonics below 3.9 kHz.
  noise: np.ndarray  # float32 [M, L], white Gaussian noise.
  voiced_amp: np.ndarray  # float64 [M, T], voiced (vowel) amplitude.
  fric_amp: np.ndarray  # float64 [M, T], consonant-noise amplitude.
  formants: np.ndarray  # float32 [M, ceil(T / 2), 4], every other frame.
  bandwidths: np.ndarray  # float32 [M, 1, 4], formant bandwidths (Hz).
  formant_gains: np.ndarray  # float32 [M, 4].
  tilt: np.ndarray  # float64 [M], spectral tilt exponent.
  breath: np.ndarray  # float64 [M], aspiration noise level.
  consonant: np.ndarray  # int [M, K]: 0 vowel, 1 fricative, 2 plosive.
  fric_centre: np.ndarray  # float64 [M, K], fricative resonance (Hz).
  syllable: np.ndarray  # int [M, T], the syllable of each frame.


def _f0_samples(f0_frames: np.ndarray, length: int) -> np.ndarray:
  """f0 at every sample, linear between frame centres: ``[M, T] -> [M, L]``.

  Sample ``n`` lies between the centres of frames ``n // 64 + 1`` and
  ``n // 64 + 2``, at the fraction ``(n % 64) / 64``.
  """
  pos = (np.arange(length) + _SYN_PAD - WINDOW_LENGTH // 2) / HOP_LENGTH
  i0 = np.clip(pos.astype(np.int64), 0, f0_frames.shape[1] - 2)
  frac = pos - i0
  return f0_frames[:, i0] * (1 - frac) + f0_frames[:, i0 + 1] * frac


def _speech_controls(
  rng: np.random.Generator,
  spk: _Speakers,
  length: int,
  consonant_probability: float,
) -> SpeechControls:
  """Draws the random parameters of one speech source per speaker row."""
  m = len(spk.ids)
  seconds = length / SAMPLE_RATE
  num_syl = int(np.ceil(seconds * 10)) + 10
  t = _syn_frame_times(length)  # [T]
  num_frames = len(t)

  # Syllable grid: durations around 1 / rate, the first syllable ending just
  # before the first frame so that every frame has a syllable on both sides.
  shape = 6.0
  dur = rng.gamma(shape, 1.0 / (shape * spk.rate[:, None]), (m, num_syl))
  dur = np.clip(dur, 0.1, 0.6)
  first_end = t[0] - 0.01 - rng.uniform(0, 1, (m, 1)) * dur[:, 1:2]
  starts = np.concatenate(
    [
      first_end - dur[:, :1],
      first_end + np.cumsum(dur[:, 1:], axis=1) - dur[:, 1:],
    ],
    axis=1,
  )
  centres = starts + 0.5 * dur
  k = _row_searchsorted(starts, t)  # [M, T]
  u = (t[None] - np.take_along_axis(starts, k, 1)) / np.take_along_axis(
    dur, k, 1
  )

  # Per-syllable attributes.
  silent = rng.random((m, num_syl)) < spk.pause[:, None]
  gain = 10 ** (rng.normal(0, 5, (m, num_syl)) / 20) * ~silent
  # 0: vowel only, 1: fricative onset, 2: plosive onset.
  q = 0.5 * consonant_probability
  consonant = rng.choice(3, (m, num_syl), p=[1.0 - 2 * q, q, q])
  cons_frac = np.where(
    consonant > 0, rng.uniform(0.12, 0.35, (m, num_syl)), 0.0
  )
  fric_centre = rng.uniform(1800, 3800, (m, num_syl))
  vowel = _VOWELS[rng.integers(0, len(_VOWELS), (m, num_syl))]  # [M, K, 3]
  vowel = vowel * rng.uniform(0.94, 1.06, vowel.shape)
  f4 = np.full((m, num_syl, 1), 3350.0) * rng.uniform(0.97, 1.03, (m, 1, 1))
  formants = np.concatenate([vowel, f4], -1) * spk.formant_scale[:, None, None]
  formants = np.minimum(formants, 3850.0)
  log_f0 = np.log(spk.f0)[:, None] + spk.f0_spread[:, None] / 12 * np.log(
    2
  ) * rng.standard_normal((m, num_syl))

  # Frame-rate controls.
  take = lambda a: np.take_along_axis(a, k, 1)
  cf = take(cons_frac)
  uv = np.clip((u - cf) / (1 - cf), 0, 1)
  voiced_amp = take(gain) * np.sin(np.pi * uv) * (u >= cf)
  uc = np.clip(u / np.maximum(cf, 1e-3), 0, 1)
  ctype = take(consonant)
  fric_amp = (
    take(gain)
    * (u < cf)
    * np.where(
      ctype == 1,
      0.5 * np.sqrt(np.sin(np.pi * uc)),
      np.where(ctype == 2, (uc > 0.6) * (1 - uc) / 0.4, 0.0),
    )
  )
  f0_frames = np.exp(_interp_centres(log_f0, k, t, centres))
  f0_frames *= 1 + 0.003 * rng.standard_normal((m, num_frames))
  f0_frames = np.clip(f0_frames, 60.0, 420.0)

  # The number of harmonics H keeps the highest below 3.9 kHz at the
  # highest f0.
  phase_offset = rng.uniform(0, 2 * np.pi, (m, 1))
  num_harm = np.floor(3900.0 / f0_frames.max(axis=1, keepdims=True)).astype(
    np.float32
  )
  noise = rng.standard_normal((m, length), dtype=np.float32)

  # Formant tracks every other frame: formants move slowly.
  sub = slice(None, None, 2)
  form = _interp_centres(formants, k[:, sub], t[sub], centres).astype(
    np.float32
  )  # [M, T/2, 4]
  bw = (_FORMANT_BANDWIDTHS * spk.formant_scale[:, None])[:, None, :].astype(
    np.float32
  )
  return SpeechControls(
    f0_frames=f0_frames,
    phase_offset=phase_offset,
    num_harm=num_harm,
    noise=noise,
    voiced_amp=voiced_amp,
    fric_amp=fric_amp,
    formants=form,
    bandwidths=bw,
    formant_gains=spk.formant_gains.astype(np.float32),
    tilt=spk.tilt,
    breath=spk.breath,
    consonant=consonant,
    fric_centre=fric_centre,
    syllable=k,
  )


def _render_speech(c: SpeechControls) -> np.ndarray:
  """Renders speech controls into waveforms: float32 [M, L] (numpy)."""
  m, length = c.noise.shape
  num_frames = c.syllable.shape[1]
  # Harmonic phase: f0 interpolated linearly to the samples, accumulated in
  # float64, wrapped (the rest is float32).
  phase = np.cumsum(_f0_samples(c.f0_frames, length), axis=1) * (
    2 * np.pi / SAMPLE_RATE
  )
  phase += c.phase_offset
  phase -= 2 * np.pi * np.floor(phase * (0.5 / np.pi))
  phase = phase.astype(np.float32)
  # Harmonic excitation: sum_{h=1..H} cos(h phi), in closed form.
  half = np.sin(0.5 * phase)
  safe = np.abs(half) > 1e-6
  excitation = np.sin((c.num_harm + 0.5) * phase)
  excitation /= 2 * np.where(safe, half, 1.0)
  excitation -= 0.5
  excitation = np.where(safe, excitation, c.num_harm)
  noise = c.noise * np.sqrt(c.num_harm / 2)
  harmonic_spec = _syn_stft(excitation)
  noise_spec = _syn_stft(noise)

  # Spectral envelopes (parallel formant resonances with source tilt),
  # computed every other frame.
  freqs = _FREQS.astype(np.float32)
  form, bw, gains = c.formants, c.bandwidths, c.formant_gains
  envelope = np.zeros(form.shape[:2] + (len(freqs),), np.float32)
  for j in range(form.shape[-1]):
    envelope += gains[:, None, None, j] * _lorentzian(
      freqs, form[..., j : j + 1], bw[..., j : j + 1]
    )
  envelope = np.repeat(envelope, 2, axis=1)[:, :num_frames]
  tilt = ((1 + freqs / 300.0)[None, :] ** -c.tilt[:, None]).astype(
    np.float32
  )  # [M, F]
  envelope *= tilt[:, None]
  envelope += 1e-3
  # Consonant noise: a sibilant-like resonance (fricatives) or a flat burst
  # (plosives), one spectral shape per syllable.
  fric_shape = np.where(
    (c.consonant == 1)[..., None],
    _lorentzian(freqs, c.fric_centre[..., None], 1500.0),
    0.5 * np.sqrt(tilt)[:, None],
  ).astype(np.float32)  # [M, K, F]
  fric_shape = fric_shape[np.arange(m)[:, None], c.syllable]  # [M, T, F]
  voiced = c.voiced_amp[..., None].astype(np.float32) * envelope
  unvoiced = c.breath[:, None, None].astype(np.float32) * voiced
  unvoiced += c.fric_amp[..., None].astype(np.float32) * fric_shape
  spec = harmonic_spec * voiced
  spec += noise_spec * unvoiced
  return _syn_istft(spec, length)


def _speech(
  rng: np.random.Generator,
  spk: _Speakers,
  length: int,
  consonant_probability: float,
) -> np.ndarray:
  """Speech-like waveforms, one per speaker row: float32 [M, length]."""
  return _render_speech(
    _speech_controls(rng, spk, length, consonant_probability)
  )


def _environmental(rng: np.random.Generator, m: int, length: int) -> np.ndarray:
  """Environmental-like sounds: float32 [m, length]."""
  seconds = length / SAMPLE_RATE
  num_events = max(2, int(round(2 * seconds)))  # About 2 events / s.
  t = _syn_frame_times(length)
  freqs = _FREQS.astype(np.float32)
  kind = rng.integers(0, 3, (m, num_events))  # 0 noise, 1 chirp, 2 impact.
  active = rng.random((m, num_events)) < 0.8
  active[:, 0] = True
  onset = rng.uniform(-0.2, max(seconds - 0.2, 0.0), (m, num_events))
  duration = rng.uniform(0.2, 1.5, (m, num_events))
  gain = 10 ** (rng.normal(0, 4, (m, num_events)) / 20) * active

  # Noise bursts: band-pass noise with attack / release and tremolo.
  rel = t[None, None] - onset[..., None]  # [m, E, T]
  attack = rng.uniform(0.01, 0.1, (m, num_events, 1))
  release = rng.uniform(0.02, 0.2, (m, num_events, 1))
  burst = np.clip(
    np.minimum(rel / attack, (duration[..., None] - rel) / release), 0, 1
  )
  tremolo = 1 - rng.uniform(0, 0.8, (m, num_events, 1)) * (
    0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 20, (m, num_events, 1)) * rel)
  )
  centre = np.exp(rng.uniform(np.log(150), np.log(3500), (m, num_events, 1)))
  width = rng.uniform(0.3, 1.5, (m, num_events, 1))
  band = np.exp(
    -0.5 * (np.log2(np.maximum(freqs, 15.0) / centre) / width) ** 2
  )  # [m, E, F]
  # Impacts: exponential decay, 1-3 repeats, three resonant modes.
  tau = rng.uniform(0.02, 0.25, (m, num_events, 1))
  spacing = rng.uniform(0.08, 0.3, (m, num_events, 1))
  repeats = rng.integers(1, 4, (m, num_events, 1))
  since = np.where(rel >= 0, np.mod(rel, spacing), np.inf)
  since = np.where(
    rel < repeats * spacing, since, rel - (repeats - 1) * spacing
  )
  decay = np.exp(-since / tau)
  modes = np.exp(rng.uniform(np.log(200), np.log(3600), (m, num_events, 3)))
  q = rng.uniform(8, 40, (m, num_events, 3))
  modal = (
    _lorentzian(
      freqs[None, None, :, None],
      modes[:, :, None],
      modes[:, :, None] / q[:, :, None],
    ).sum(-1)
    + 0.05
  )

  time_env = np.where(kind[..., None] == 0, burst * tremolo, decay)
  time_env *= (kind[..., None] != 1) * gain[..., None]  # [m, E, T]
  spectral = np.where(kind[..., None] == 0, band, modal)  # [m, E, F]
  shape = np.matmul(
    time_env.astype(np.float32).transpose(0, 2, 1), spectral.astype(np.float32)
  )  # [m, T, F]
  noise = _syn_stft(rng.standard_normal((m, length), dtype=np.float32))
  out = _syn_istft(noise * shape, length)

  # Chirps and beeps: log sweeps with up to 3 harmonics and a raised-cosine
  # envelope, synthesised over their own span only, then scattered into out.
  rows, cols = np.nonzero((kind == 1) & active)
  if len(rows):
    f_start = np.exp(rng.uniform(np.log(150), np.log(3000), len(rows)))
    f_end = np.clip(f_start * 2 ** rng.uniform(-2, 2, len(rows)), 100, 3500)
    span = np.round(duration[rows, cols] * SAMPLE_RATE).astype(np.int64)
    first = np.round(onset[rows, cols] * SAMPLE_RATE).astype(np.int64)
    n = np.arange(span.max())
    frac = np.minimum(n[None] / span[:, None], 1.0)
    inst = f_start[:, None] * (f_end / f_start)[:, None] ** frac
    phase = np.cumsum(inst, axis=1) * (2 * np.pi / SAMPLE_RATE)
    phase -= 2 * np.pi * np.floor(phase * (0.5 / np.pi))
    phase = phase.astype(np.float32)
    tone = np.sin(phase)
    top = np.maximum(f_start, f_end)[:, None]
    for h, amp in ((2, 0.5), (3, 0.25)):
      tone += (amp * (h * top < 3900)).astype(np.float32) * np.sin(h * phase)
    tone *= (np.sin(np.pi * frac) ** 2 * gain[rows, cols][:, None]).astype(
      np.float32
    )
    where = first[:, None] + n[None]
    keep = (n[None] < span[:, None]) & (where >= 0) & (where < length)
    flat = (rows[:, None] * length + where)[keep]
    out += (
      np.bincount(flat, weights=tone[keep], minlength=m * length)
      .reshape(m, length)
      .astype(np.float32)
    )
  return out


def _mix_levels(
  rng: np.random.Generator, batch_size: int, config: SyntheticConfig
) -> tuple[np.ndarray, np.ndarray]:
  """Draws the source gains ``[B, 2]`` and mixture RMS levels ``[B]``."""
  b = batch_size
  rel_db = rng.uniform(0, config.max_relative_level_db, b)
  rel_db *= np.where(rng.random(b) < 0.5, 1.0, -1.0)
  gains = 10 ** (np.stack([rel_db, -rel_db], 1) / 40)
  level = 10 ** (rng.uniform(*config.mixture_level_dbfs, b) / 20)
  return gains, level


def _apply_levels(
  sources: np.ndarray, gains: np.ndarray, level: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
  """Unit-power sources times ``gains``, mixed at RMS ``level``, peak <= 0.99.

  Returns float32 ``mix [B, L]`` and ``sources [B, 2, L]`` (float64 maths).
  """
  power = np.mean(sources.astype(np.float64) ** 2, axis=-1, keepdims=True)
  sources = sources / np.sqrt(np.maximum(power, 1e-12))
  sources = sources * gains[..., None]
  mix = sources.sum(1)
  scale = level / np.sqrt(np.mean(mix**2, axis=-1) + 1e-12)
  peak = np.abs(sources).sum(1).max(-1) * scale
  scale = np.where(peak > 0.99, scale * 0.99 / np.maximum(peak, 1e-12), scale)
  sources = (sources * scale[:, None, None]).astype(np.float32)
  return sources.sum(1), sources


def _mix(
  rng: np.random.Generator, sources: np.ndarray, config: SyntheticConfig
) -> tuple[np.ndarray, np.ndarray]:
  """Level-normalises and mixes ``[B, 2, L]`` sources."""
  gains, level = _mix_levels(rng, sources.shape[0], config)
  return _apply_levels(sources, gains, level)


class _BatchCache:
  """Training batches of one (seed, split, shape, config) kept in memory.

  A sweep trains many runs on the same batches (every p and every loss of a
  seed sees ``batch_at(0), batch_at(1), ...``), and generating a synthetic
  batch costs about as much CPU as a tiny training step, so a process that
  trains several of them in turn can keep the batches of its current
  namespace instead of regenerating them. The batches are the generator's
  own arrays (read-only), so a cached run is bit-identical to an uncached
  one. Steps are scanned in order, so once the budget is used up new
  batches are simply not kept (an LRU would evict exactly the batches the
  next run needs first); a request from another namespace (e.g. the next
  seed) empties the cache.
  """

  def __init__(self):
    self._lock = threading.Lock()
    self.max_bytes = 0
    self._namespace = None
    self._batches: dict[int, Batch] = {}
    self._bytes = 0
    self.hits = 0

  def configure(self, max_bytes: int) -> None:
    with self._lock:
      self.max_bytes = int(max_bytes)
      self._namespace, self._batches, self._bytes = None, {}, 0
      self.hits = 0

  def get(self, namespace, step: int) -> Batch | None:
    with self._lock:
      if namespace != self._namespace:
        return None
      batch = self._batches.get(step)
      if batch is not None:
        self.hits += 1
        return dict(batch)
      return None

  def put(self, namespace, step: int, batch: Batch) -> None:
    if self.max_bytes <= 0:
      return
    size = sum(v.nbytes for v in batch.values())
    with self._lock:
      if namespace != self._namespace:
        self._namespace, self._batches, self._bytes = namespace, {}, 0
      if self._bytes + size > self.max_bytes:
        return
      for v in batch.values():
        v.setflags(write=False)
      self._batches[step] = dict(batch)
      self._bytes += size


_BATCH_CACHE = _BatchCache()


def cache_training_batches(max_bytes: int) -> None:
  """Keeps up to ``max_bytes`` of synthetic training batches in memory.

  For processes that train several runs on the same seed one after the
  other (the sweep's workers); ``0`` (the default) turns the cache off.
  Results are unchanged: a cached batch is the generated one, read-only.
  ``batch_cache_hits()`` counts the batches served from the cache.
  """
  if max_bytes < 0:
    raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
  _BATCH_CACHE.configure(max_bytes)


def batch_cache_hits() -> int:
  """How many training batches the cache served since it was configured."""
  return _BATCH_CACHE.hits


class SyntheticMixtures(_Base):
  """Synthetic two-source mixtures; see the module docstring.

  ``renderer`` picks how the *training* stream (``batches``, ``batch_at``)
  is rendered: ``'numpy'`` (the reference) or ``'xla'``
  (``synthetic_xla``: the same random draws rendered by one jitted
  program, equal to numpy's waveforms up to float32 rounding, a fraction
  of the CPU time and without the interpreter lock). Evaluation examples
  are always rendered by numpy, so validation and test sets do not depend
  on it.
  """

  name = "synthetic"

  def __init__(
    self,
    split: str = "train",
    *,
    seed: int = 0,
    chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
    config: SyntheticConfig | None = None,
    num_examples: int | None = None,
    renderer: str = "numpy",
  ):
    if renderer not in RENDERERS:
      raise ValueError(f"renderer={renderer!r} is not one of {RENDERERS}")
    self.renderer = renderer
    self.split = canonical_split(split)
    self.seed = int(seed)
    self.chunk_samples = int(chunk_samples)
    self.config = config or SyntheticConfig()
    self.sample_rate = SAMPLE_RATE
    self._split_code = SPLITS.index(self.split)
    sizes = self.config.num_speakers
    first = sum(sizes[: self._split_code])
    self.speaker_ids = np.arange(first, first + sizes[self._split_code])
    self._speakers = _make_speakers(self.speaker_ids)
    default = {
      "train": self.config.epoch_size,
      "validation": self.config.num_validation,
      "test": self.config.num_test,
    }[self.split]
    self.num_examples = int(default if num_examples is None else num_examples)

  def generate(
    self,
    rng: np.random.Generator,
    batch_size: int,
    length: int,
    renderer: str = "numpy",
  ) -> Batch:
    """One batch of fresh mixtures of ``length`` samples from this split.

    ``renderer='xla'`` renders two-talker batches with
    ``synthetic_xla.render_speech_mixtures`` (the same random draws; the
    waveforms equal numpy's up to float32 rounding); batches with an
    environmental source are always rendered by numpy.

    Returns:
      ``mix`` float32 [B, L], ``sources`` float32 [B, 2, L], ``classes``
      int32 [B, 2] and ``speakers`` int32 [B, 2] (speaker ids, -1 for
      environmental sources).
    """
    cfg = self.config
    classes = np.empty((batch_size, NUM_SOURCES), np.int32)
    for j, name in enumerate(cfg.source_classes):
      code = _CLASS_ALIASES[name]
      if code < 0:
        code = rng.random(batch_size) < cfg.environmental_probability
      classes[:, j] = code
    # Two distinct speakers per mixture (used where the class is speech).
    pool = len(self.speaker_ids)
    if cfg.pairing == "cross_register":
      low = np.flatnonzero(self._speakers.f0 < _HIGH_REGISTER_F0)
      high = np.flatnonzero(self._speakers.f0 >= _HIGH_REGISTER_F0)
      if not len(low) or not len(high):
        raise ValueError(
          "cross_register pairing needs both registers in "
          f"the {self.split} speaker pool"
        )
      pair = np.stack(
        [
          low[rng.integers(0, len(low), batch_size)],
          high[rng.integers(0, len(high), batch_size)],
        ],
        1,
      )
      swap = rng.random(batch_size) < 0.5
      picks = np.where(swap[:, None], pair[:, ::-1], pair)
    else:
      first = rng.integers(0, pool, batch_size)
      second = (first + rng.integers(1, pool, batch_size)) % pool
      picks = np.stack([first, second], 1)
    is_speech = classes == SPEECH
    speakers = np.where(is_speech, self.speaker_ids[picks], -1)
    if renderer == "xla" and is_speech.all():
      from examples.separation import synthetic_xla  # pylint: disable=g-import-not-at-top

      controls = _speech_controls(
        rng,
        self._speakers.take(picks.reshape(-1)),
        length,
        cfg.consonant_probability,
      )
      gains, level = _mix_levels(rng, batch_size, cfg)
      mix, sources = synthetic_xla.render_speech_mixtures(
        controls, gains, level
      )
      return {
        "mix": mix,
        "sources": sources,
        "classes": classes,
        "speakers": speakers.astype(np.int32),
      }
    sources = np.zeros((batch_size, NUM_SOURCES, length), np.float32)
    if is_speech.any():
      sources[is_speech] = _speech(
        rng,
        self._speakers.take(picks[is_speech]),
        length,
        cfg.consonant_probability,
      )
    if (~is_speech).any():
      sources[~is_speech] = _environmental(rng, int((~is_speech).sum()), length)
    mix, sources = _mix(rng, sources, cfg)
    return {
      "mix": mix,
      "sources": sources,
      "classes": classes,
      "speakers": speakers.astype(np.int32),
    }

  def batches(
    self, batch_size: int, rng: np.random.Generator | int | None = None
  ) -> Iterator[Batch]:
    """Endless fresh chunks of ``chunk_samples`` (``speakers`` included)."""
    rng = _as_rng(rng, [self.seed, self._split_code, 1])
    while True:
      yield self.generate(rng, batch_size, self.chunk_samples, self.renderer)

  def batch_at(self, step: int, batch_size: int) -> Batch:
    """Training batch ``step``, a pure function of ``(seed, split, step)``."""
    namespace = (
      self.seed,
      self._split_code,
      int(batch_size),
      self.chunk_samples,
      self.config,
      self.renderer,
    )
    cached = _BATCH_CACHE.get(namespace, step)
    if cached is not None:
      return cached
    rng = np.random.default_rng([self.seed, self._split_code, 3, step])
    batch = self.generate(rng, batch_size, self.chunk_samples, self.renderer)
    _BATCH_CACHE.put(namespace, step, batch)
    return dict(batch)

  def example(self, index: int) -> dict:
    """Evaluation utterance ``index`` (its own seed), 2-4 s by default."""
    rng = np.random.default_rng([self.seed, self._split_code, 2, index])
    lo, hi = self.config.eval_seconds
    length = int(rng.uniform(lo, hi) * SAMPLE_RATE)
    batch = self.generate(rng, 1, length)
    ex = {key: value[0] for key, value in batch.items()}
    ex["name"] = f"synthetic-{self.split}-{index:05d}"
    return ex

  def examples(self) -> Iterator[dict]:
    """``num_examples`` fixed utterances: mix [L], sources [2, L], ..."""
    for i in range(self.num_examples):
      yield self.example(i)


# ===========================================================================
# Datasets of wav files.
# ===========================================================================


@dataclasses.dataclass(frozen=True)
class Utterance:
  """One mixture on disk and its two sources."""

  name: str
  mix_path: pathlib.Path
  source_paths: tuple[pathlib.Path, pathlib.Path]
  num_samples: int
  # Talker ids of s1 and s2 (``talkers_from_name``), None when unknown.
  talkers: tuple[str, str] | None = None


_WSJ_UTTERANCE_ID = re.compile(r"[0-9a-z]{8}", re.IGNORECASE)


def _is_number(text: str) -> bool:
  try:
    float(text)
  except ValueError:
    return False
  return True


def talkers_from_name(name: str, layout: str) -> tuple[str, str] | None:
  """The two talker ids in a mixture name, or None if it names none.

  Args:
    name: the mixture's name (file stem, or Libri2Mix ``mixture_ID``).
    layout: ``'wsj0-2mix'`` (``[PREFIX_]U1_L1_U2_L2``; WSJ utterance ids
      give their first 3 characters, other ids, e.g. ``tts2mix`` voices, are
      the talker) or ``'libri2mix'`` (``SPK-CH-UTT_SPK-CH-UTT``).

  >>> talkers_from_name("011a0101_0.061_40na010x_-0.061", "wsj0-2mix")
  ('011', '40n')
  >>> talkers_from_name("00001_espeak-f2_1.7_espeak-f5_-1.7", "wsj0-2mix")
  ('espeak-f2', 'espeak-f5')
  >>> talkers_from_name("1089-134686-0000_121-121726-0000", "libri2mix")
  ('1089', '121')
  >>> talkers_from_name("mixture", "wsj0-2mix") is None
  True
  """
  parts = name.split("_")
  if layout == "libri2mix":
    if len(parts) != 2 or not all("-" in p for p in parts):
      return None
    return parts[0].split("-")[0], parts[1].split("-")[0]
  if len(parts) < 4 or not (_is_number(parts[-3]) and _is_number(parts[-1])):
    return None
  ids = (parts[-4], parts[-2])
  if not all(ids):
    return None
  if all(_WSJ_UTTERANCE_ID.fullmatch(u) for u in ids):
    return ids[0][:3].lower(), ids[1][:3].lower()
  return ids


def _check_audio(
  paths: Sequence[pathlib.Path],
  sample_rate: int,
  expected_length: int | None = None,
) -> int:
  """Validates a mixture and its sources with ``soundfile.info``."""
  lengths = []
  for path in paths:
    try:
      info = sf.info(str(path))
    except Exception as e:  # soundfile raises several types.
      raise DatasetError(f"cannot read audio file {path}: {e}") from None
    if info.samplerate != sample_rate:
      raise DatasetError(
        f"sample rate {info.samplerate} Hz != expected {sample_rate} Hz: {path}"
      )
    if info.channels != 1:
      raise DatasetError(f"{info.channels} channels, expected mono: {path}")
    lengths.append(info.frames)
  reference = lengths[0] if expected_length is None else expected_length
  for path, n in zip(paths, lengths, strict=True):
    if n != reference:
      raise DatasetError(
        f"unequal lengths: {path} has {n} samples, expected {reference} "
        f"(mixture {paths[0]})"
      )
  return lengths[0]


def _read(
  path: pathlib.Path, start: int = 0, stop: int | None = None
) -> np.ndarray:
  audio, _ = sf.read(
    str(path), start=start, stop=stop, dtype="float32", always_2d=False
  )
  return audio


# Dynamic mixing's speed perturbation: speeds are multiples of 1 / 100, at
# most 1 +- configs.MAX_SPEED_PERTURBATION.
_SPEED_BASE = 100


class AudioCache:
  """Decoded audio files held in memory, up to ``max_bytes`` (thread-safe).

  A training batch reads a chunk of a few files, and opening and seeking a
  wav file costs ~0.2 ms, more than the chunk's samples: a tiny-preset batch
  of stored mixtures read 24 chunks, ~3.4 ms of CPU that the training step
  needs on a 2-core machine (``benchmarks/loop_breakdown.py``). The first read
  of a file decodes all of it into the cache; later reads slice it. Once
  the budget is used, the remaining files are read from disk each time
  (no eviction: a random-access training stream has no recency to exploit).

  Slices equal the file's own decoding of that range, so a run reads the
  same samples with or without the cache. The cached arrays are read-only.
  Pickling (a data worker process) sends the budget, not the contents.
  """

  def __init__(self, max_bytes: int):
    self.max_bytes = int(max_bytes)
    self.used_bytes = 0
    self._audio: dict[str, np.ndarray] = {}
    self._lock = threading.Lock()

  def __getstate__(self) -> dict:
    return {"max_bytes": self.max_bytes}

  def __setstate__(self, state: dict) -> None:
    self.__init__(state["max_bytes"])

  def __len__(self) -> int:
    return len(self._audio)

  def read(
    self,
    path: pathlib.Path,
    num_samples: int,
    start: int = 0,
    stop: int | None = None,
  ) -> np.ndarray:
    """Samples ``start:stop`` of ``path``, a file of ``num_samples``."""
    key = str(path)
    audio = self._audio.get(key)
    if audio is None:
      if self.used_bytes + 4 * num_samples > self.max_bytes:
        return _read(path, start, stop)
      audio = _read(path)
      audio.flags.writeable = False
      with self._lock:
        if key not in self._audio:
          if self.used_bytes + audio.nbytes > self.max_bytes:
            return audio[start:stop]
          self._audio[key] = audio
          self.used_bytes += audio.nbytes
    return audio[start:stop]


class FileMixtures(_Base):
  """Mixtures listed as ``Utterance`` records (wsj0-2mix, Libri2Mix)."""

  def __init__(
    self,
    name: str,
    split: str,
    utterances: Sequence[Utterance],
    *,
    seed: int = 0,
    chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
    sample_rate: int = SAMPLE_RATE,
    dynamic_mixing: bool = False,
    speed_perturbation: float = 0.0,
    distinct_talkers: bool = False,
    audio_cache_bytes: int = 0,
  ):
    limit = configs.MAX_SPEED_PERTURBATION
    if not 0.0 <= speed_perturbation <= limit:
      raise ValueError(
        f"speed_perturbation={speed_perturbation!r} must be in [0, {limit}]"
      )
    if speed_perturbation and not dynamic_mixing:
      raise ValueError("speed_perturbation needs dynamic_mixing")
    if distinct_talkers and not dynamic_mixing:
      raise ValueError("distinct_talkers needs dynamic_mixing")
    self.name = name
    self.split = canonical_split(split)
    self.dynamic_mixing = bool(dynamic_mixing)
    self.speed_perturbation = float(speed_perturbation)
    self.utterances = list(utterances)
    self.seed = int(seed)
    self.chunk_samples = int(chunk_samples)
    self.sample_rate = int(sample_rate)
    self.num_examples = len(self.utterances)
    self._split_code = SPLITS.index(self.split)
    if not self.utterances:
      raise DatasetError(f"{name} {self.split}: no utterances found")
    if audio_cache_bytes < 0:
      raise ValueError(f"audio_cache_bytes={audio_cache_bytes!r} must be >= 0")
    # Decoded files kept in memory (None: every chunk is read from disk).
    self.audio_cache = (
      AudioCache(audio_cache_bytes) if audio_cache_bytes else None
    )
    self.distinct_talkers = bool(distinct_talkers)
    # [N, 2] int: talker of each source, numbered; -1 where unknown.
    self._talker_codes = None
    if self.distinct_talkers:
      known = sorted({t for u in self.utterances for t in (u.talkers or ())})
      code = {t: i for i, t in enumerate(known)}
      self._talker_codes = np.array(
        [
          [code[t] for t in u.talkers] if u.talkers else [-1, -1]
          for u in self.utterances
        ],
        np.int64,
      )

  def _read(
    self, path: pathlib.Path, num_samples: int, start: int, stop: int | None
  ) -> np.ndarray:
    if self.audio_cache is None:
      return _read(path, start, stop)
    return self.audio_cache.read(path, num_samples, start, stop)

  def _load(
    self, utt: Utterance, start: int = 0, stop: int | None = None
  ) -> tuple[np.ndarray, np.ndarray]:
    n = utt.num_samples
    mix = self._read(utt.mix_path, n, start, stop)
    sources = np.stack(
      [self._read(p, n, start, stop) for p in utt.source_paths]
    )
    return mix, sources

  def _chunks(self, indices: np.ndarray, rng: np.random.Generator) -> Batch:
    """Random-offset chunks of the utterances ``indices``, zero-padded."""
    length = self.chunk_samples
    mix = np.zeros((len(indices), length), np.float32)
    sources = np.zeros((len(indices), NUM_SOURCES, length), np.float32)
    for i, idx in enumerate(indices):
      utt = self.utterances[idx]
      start = int(rng.integers(0, max(utt.num_samples - length, 0) + 1))
      m, s = self._load(utt, start, min(start + length, utt.num_samples))
      mix[i, : len(m)] = m
      sources[i, :, : s.shape[-1]] = s
    return {
      "mix": mix,
      "sources": sources,
      "classes": np.zeros((len(indices), NUM_SOURCES), np.int32),
    }

  def _read_chunk(
    self, path: str, num_samples: int, rng: np.random.Generator
  ) -> np.ndarray:
    """A random-offset chunk of one file, zero-padded to ``chunk_samples``."""
    length = self.chunk_samples
    start = int(rng.integers(0, max(num_samples - length, 0) + 1))
    out = np.zeros(length, np.float32)
    audio = self._read(
      path, num_samples, start, min(start + length, num_samples)
    )
    out[: len(audio)] = audio
    return out

  def _read_resampled_chunk(
    self, path: str, num_samples: int, speed: int, rng: np.random.Generator
  ) -> np.ndarray:
    """As ``_read_chunk``, played ``speed / 100`` times as fast.

    Reads ``speed / 100`` times as many samples (plus a margin on each side
    for the filter's edges) and resamples them by ``100 / speed`` with a
    polyphase filter: pitch and formants move together by the factor (a
    higher or lower voice), and so does the tempo.
    """
    length = self.chunk_samples
    margin = 64
    need = -(-length * speed // _SPEED_BASE) + 2 * margin
    start = int(
      rng.integers(-margin, max(num_samples - need + margin, -margin) + 1)
    )
    raw = np.zeros(need, np.float32)
    lo, hi = max(start, 0), min(start + need, num_samples)
    if hi > lo:
      raw[lo - start : hi - start] = self._read(path, num_samples, lo, hi)
    out = scipy.signal.resample_poly(raw, _SPEED_BASE, speed).astype(np.float32)
    skip = margin * _SPEED_BASE // speed
    chunk = np.zeros(length, np.float32)
    part = out[skip : skip + length]
    chunk[: len(part)] = part
    return chunk

  def _remixed_chunks(
    self, indices: np.ndarray, rng: np.random.Generator
  ) -> Batch:
    """Dynamic mixing: new mixtures of sources from two different files.

    Source 1 of mixture ``i`` is a random source (s1 or s2) of utterance
    ``indices[i]``, source 2 a random source of another random utterance,
    each at its own random offset; source 2 is rescaled to a level relative
    to source 1 drawn uniformly in [-5, 5] dB (the wsj0-2mix range), and the
    mixture is their sum. The two talkers may coincide (with many talkers
    they rarely do) unless ``distinct_talkers`` is set.

    With ``distinct_talkers`` source 2 is instead drawn uniformly from the
    sources of the other utterances whose talker differs from source 1's
    (``_partner``): no mixture of a talker with itself.

    With ``speed_perturbation = a > 0`` each source is also played at its
    own speed, drawn uniformly from ``1 - a`` to ``1 + a`` in steps of 1 %
    (``_read_resampled_chunk``): new, higher or lower voices from the same
    talkers.
    """
    n = self.num_examples
    length = self.chunk_samples
    # Largest speed change, in 1 / _SPEED_BASE steps (0: no perturbation).
    max_change = round(self.speed_perturbation * _SPEED_BASE)
    sources = np.zeros((len(indices), NUM_SOURCES, length), np.float32)
    for i, idx in enumerate(indices):
      if self._talker_codes is not None:
        first = int(rng.integers(0, NUM_SOURCES))
        other, second = self._partner(int(idx), first, rng)
        picks = (first, second)
      else:
        other = int(rng.integers(0, n - 1)) if n > 1 else 0
        other += int(n > 1 and other >= idx)
        picks = rng.integers(0, NUM_SOURCES, size=2)
      for j, (u, k) in enumerate(((int(idx), picks[0]), (other, picks[1]))):
        utt = self.utterances[u]
        if max_change:
          speed = _SPEED_BASE + int(rng.integers(-max_change, max_change + 1))
          sources[i, j] = self._read_resampled_chunk(
            utt.source_paths[k], utt.num_samples, speed, rng
          )
        else:
          sources[i, j] = self._read_chunk(
            utt.source_paths[k], utt.num_samples, rng
          )
      level_db = rng.uniform(-5.0, 5.0)
      power = np.mean(sources[i] ** 2, axis=-1)
      if power[0] > 0 and power[1] > 0:
        gain = np.sqrt(power[0] / power[1]) * 10.0 ** (level_db / 20.0)
        sources[i, 1] *= np.float32(gain)
    return {
      "mix": sources.sum(axis=1),
      "sources": sources,
      "classes": np.zeros((len(indices), NUM_SOURCES), np.int32),
    }

  def _partner(
    self, idx: int, source: int, rng: np.random.Generator
  ) -> tuple[int, int]:
    """``(utterance, source)`` to mix with source ``source`` of ``idx``.

    Uniform over the sources of the other utterances whose talker is not
    that source's (an unknown talker, -1, differs from every talker); any
    other utterance's when no such source exists (a one-talker split).
    """
    codes = self._talker_codes
    talker = codes[idx, source]
    eligible = codes != talker
    if talker < 0:
      eligible[:] = True
    eligible[idx] = False
    flat = np.flatnonzero(eligible)
    if not len(flat):
      flat = np.flatnonzero(np.arange(codes.size) // NUM_SOURCES != idx)
    if not len(flat):
      return idx, 1 - source
    pick = int(flat[rng.integers(0, len(flat))])
    return pick // NUM_SOURCES, pick % NUM_SOURCES

  def _train_chunks(
    self, indices: np.ndarray, rng: np.random.Generator
  ) -> Batch:
    if self.dynamic_mixing:
      return self._remixed_chunks(indices, rng)
    return self._chunks(indices, rng)

  def batches(
    self, batch_size: int, rng: np.random.Generator | int | None = None
  ) -> Iterator[Batch]:
    """Endless random chunks, epoch after epoch in a shuffled order.

    Every utterance gives one chunk of ``chunk_samples`` per epoch at a random
    offset; shorter utterances are zero-padded at the end.
    """
    rng = _as_rng(rng, [self.seed, self._split_code, 1])
    order = np.empty(0, np.int64)
    while True:
      while len(order) < batch_size:
        order = np.concatenate([order, rng.permutation(self.num_examples)])
      picked, order = order[:batch_size], order[batch_size:]
      yield self._train_chunks(picked, rng)

  def batch_at(self, step: int, batch_size: int) -> Batch:
    """Batch ``step`` of a fixed epoch-shuffled stream, computed statelessly.

    Position ``p = step * batch_size + i`` is utterance ``p % N`` of the
    permutation of epoch ``p // N`` (seeded by ``(seed, epoch)``), so that
    consecutive steps cover every utterance once per epoch and a resumed run
    sees the same batches; chunk offsets are seeded by ``(seed, step)``.
    """
    n = self.num_examples
    positions = step * batch_size + np.arange(batch_size)
    indices = np.empty(batch_size, np.int64)
    for epoch in np.unique(positions // n):
      perm = np.random.default_rng(
        [self.seed, self._split_code, 4, int(epoch)]
      ).permutation(n)
      here = positions // n == epoch
      indices[here] = perm[positions[here] % n]
    rng = np.random.default_rng([self.seed, self._split_code, 5, step])
    return self._train_chunks(indices, rng)

  def examples(self) -> Iterator[dict]:
    """Whole utterances in listing (name) order."""
    for utt in self.utterances:
      mix, sources = self._load(utt)
      yield {
        "mix": mix,
        "sources": sources,
        "classes": np.zeros(NUM_SOURCES, np.int32),
        "name": utt.name,
      }


def _check_same_chunks(a, b) -> None:
  if a.chunk_samples != b.chunk_samples:
    raise ValueError("the two datasets must have the same chunk length")


class BlendedTraining:
  """Training batches drawn from two datasets, ``fraction`` from the second.

  ``batch_at(step, B)`` concatenates ``primary.batch_at(step, B - k)`` and
  ``secondary.batch_at(step, k)`` with ``k = round(fraction * B)``, so it is
  still a pure function of the step (resume-safe). Everything else
  (evaluation, names, sizes) is the primary dataset's. Used to add the
  synthetic talkers' unlimited variety to a real or TTS training set.
  """

  KEYS = ("mix", "sources", "classes")

  def __init__(self, primary, secondary, fraction: float):
    if not 0.0 <= fraction < 1.0:
      raise ValueError(f"fraction={fraction!r} must be in [0, 1)")
    _check_same_chunks(primary, secondary)
    self.primary = primary
    self.secondary = secondary
    self.fraction = float(fraction)

  def __getattr__(self, name):
    return getattr(self.primary, name)

  def batch_at(self, step: int, batch_size: int) -> Batch:
    k = int(round(self.fraction * batch_size))
    k = min(k, batch_size - 1)
    first = self.primary.batch_at(step, batch_size - k)
    if k == 0:
      return {key: first[key] for key in self.KEYS}
    second = self.secondary.batch_at(step, k)
    return {key: np.concatenate([first[key], second[key]]) for key in self.KEYS}


class CurriculumTraining:
  """Training batches from ``first`` before step ``switch``, then ``then``.

  ``batch_at(step, B)`` is ``first.batch_at(step, B)`` for ``step < switch``
  and ``then.batch_at(step, B)`` after, so it stays a pure function of the
  step (resume-safe). Everything else (evaluation, names, sizes) is the
  ``then`` dataset's. Used to learn the easy synthetic talkers first (a low-
  and a high-register talker, separable by pitch) and the real or TTS data
  second: trained on TTS voices from the start, the tiny network learns
  those voices and not separation (see the README's recipes table).
  """

  KEYS = BlendedTraining.KEYS

  def __init__(self, first, then, switch: int):
    if not (isinstance(switch, int) and switch >= 0):
      raise ValueError(f"switch={switch!r} must be a non-negative integer")
    _check_same_chunks(first, then)
    self.first = first
    self.then = then
    self.switch = switch

  def __getattr__(self, name):
    return getattr(self.then, name)

  def batch_at(self, step: int, batch_size: int) -> Batch:
    source = self.first if step < self.switch else self.then
    batch = source.batch_at(step, batch_size)
    return {key: batch[key] for key in self.KEYS}


# --- wsj0-2mix --------------------------------------------------------------

_WSJ_SPLIT_DIRS = {"train": "tr", "validation": "cv", "test": "tt"}
_WSJ_LAYOUT = (
  "ROOT/.../{tr,cv,tt}/{mix,s1,s2}/*.wav, e.g. ROOT/wav8k/min/tt/mix"
)
_WSJ_FOLDERS = ("mix", "s1", "s2")


def _missing_root(name: str, root: pathlib.Path, layout: str) -> DatasetError:
  return DatasetError(f"{name} root not found: {root} (expected {layout})")


def _preference(path: pathlib.Path, sample_rate: int, mode: str):
  parts = [p.lower() for p in path.parts]
  return (
    f"wav{sample_rate // 1000}k" not in parts,
    mode not in parts,
    len(parts),
    str(path),
  )


def find_wsj0_2mix_split(
  root: str | os.PathLike,
  split: str,
  sample_rate: int = SAMPLE_RATE,
  mode: str = "min",
) -> pathlib.Path:
  """The ``tr``/``cv``/``tt`` directory (holding mix, s1, s2) under ``root``."""
  root = pathlib.Path(root)
  if not root.is_dir():
    raise _missing_root("wsj0-2mix", root, _WSJ_LAYOUT)
  split_dir = _WSJ_SPLIT_DIRS[canonical_split(split)]
  found = []
  for dirpath, dirnames, _ in os.walk(root):
    here = pathlib.Path(dirpath)
    if here.name == split_dir and all(f in dirnames for f in _WSJ_FOLDERS):
      found.append(here)
      dirnames.clear()
    else:
      dirnames[:] = [d for d in dirnames if d not in _WSJ_FOLDERS]
    if len(here.relative_to(root).parts) >= 6:
      dirnames.clear()
  if not found:
    raise DatasetError(
      f"no wsj0-2mix {split_dir!r} split under {root} (expected {_WSJ_LAYOUT})"
    )
  return min(found, key=lambda p: _preference(p, sample_rate, mode))


def _talker_table(root: pathlib.Path) -> dict[str, tuple[str, str]]:
  """Mixture name -> talkers from ``ROOT/mixtures.csv``, if it has them.

  ``tts2mix`` writes that file with ``name``, ``s1_talker`` and
  ``s2_talker`` columns; its voice names alone would tell two engines'
  voices of one talker apart (``festival-slt`` and ``flite-slt``).
  """
  path = root / "mixtures.csv"
  if not path.is_file():
    return {}
  with open(path, newline="", encoding="utf-8") as f:
    reader = csv.DictReader(f)
    columns = set(reader.fieldnames or ())
    if not {"name", "s1_talker", "s2_talker"} <= columns:
      return {}
    return {
      row["name"]: (row["s1_talker"], row["s2_talker"])
      for row in reader
      if row["s1_talker"] and row["s2_talker"]
    }


def list_wsj0_2mix(
  root: str | os.PathLike,
  split: str,
  sample_rate: int = SAMPLE_RATE,
  mode: str = "min",
) -> list[Utterance]:
  """Validated listing of a wsj0-2mix split (see the module docstring)."""
  split_path = find_wsj0_2mix_split(root, split, sample_rate, mode)
  talkers = _talker_table(pathlib.Path(root))
  names = {
    f: {p.name for p in (split_path / f).glob("*.wav")} for f in _WSJ_FOLDERS
  }
  every = sorted(set().union(*names.values()))
  utterances = []
  for name in every:
    for folder in _WSJ_FOLDERS:
      if name not in names[folder]:
        other = next(f for f in _WSJ_FOLDERS if name in names[f])
        raise DatasetError(
          f"missing partner file {split_path / folder / name} "
          f"(for {split_path / other / name})"
        )
    paths = [split_path / f / name for f in _WSJ_FOLDERS]
    n = _check_audio(paths, sample_rate)
    stem = pathlib.Path(name).stem
    utterances.append(
      Utterance(
        stem,
        paths[0],
        (paths[1], paths[2]),
        n,
        talkers.get(stem) or talkers_from_name(stem, "wsj0-2mix"),
      )
    )
  if not utterances:
    raise DatasetError(f"no .wav files in {split_path / 'mix'}")
  return utterances


# --- Libri2Mix --------------------------------------------------------------

_LIBRI_SUBSETS = {"train": "train-100", "validation": "dev", "test": "test"}
_LIBRI_LAYOUT = (
  "ROOT/.../metadata/mixture_{train-100,dev,test}_mix_clean.csv"
  " with columns mixture_path, source_1_path, source_2_path"
)
_LIBRI_COLUMNS = ("mixture_path", "source_1_path", "source_2_path")


def find_libri2mix_csv(
  root: str | os.PathLike,
  split: str,
  sample_rate: int = SAMPLE_RATE,
  mode: str = "min",
  train_subset: str = "train-100",
  mix_type: str = "clean",
) -> pathlib.Path:
  """The metadata CSV of ``split`` under ``root``."""
  root = pathlib.Path(root)
  if not root.is_dir():
    raise _missing_root("libri2mix", root, _LIBRI_LAYOUT)
  split = canonical_split(split)
  subset = train_subset if split == "train" else _LIBRI_SUBSETS[split]
  file_name = f"mixture_{subset}_mix_{mix_type}.csv"
  found = sorted(root.rglob(file_name))
  if not found:
    raise DatasetError(
      f"no libri2mix metadata {file_name} under {root} "
      f"(expected {_LIBRI_LAYOUT})"
    )
  return min(found, key=lambda p: _preference(p, sample_rate, mode))


def _resolve(
  value: str, csv_path: pathlib.Path, root: pathlib.Path
) -> pathlib.Path:
  path = pathlib.Path(value)
  if path.is_absolute():
    if path.exists():
      return path
    tails = [pathlib.Path(*path.parts[-3:])]
  else:
    tails = [path, pathlib.Path(*path.parts[-3:])]
  for base in (csv_path.parent.parent, csv_path.parent, root):
    for tail in tails:
      if (base / tail).exists():
        return base / tail
  raise DatasetError(f"missing file {value} listed in {csv_path}")


def list_libri2mix(
  root: str | os.PathLike,
  split: str,
  sample_rate: int = SAMPLE_RATE,
  mode: str = "min",
  train_subset: str = "train-100",
  mix_type: str = "clean",
) -> list[Utterance]:
  """Validated listing of a Libri2Mix split (see the module docstring)."""
  root = pathlib.Path(root)
  csv_path = find_libri2mix_csv(
    root, split, sample_rate, mode, train_subset, mix_type
  )
  with open(csv_path, newline="") as f:
    reader = csv.DictReader(f)
    columns = reader.fieldnames or []
    missing = [c for c in _LIBRI_COLUMNS if c not in columns]
    if missing:
      raise DatasetError(f"{csv_path} lacks column(s) {', '.join(missing)}")
    rows = list(reader)
  utterances = []
  for line, row in enumerate(rows, start=2):
    paths = [_resolve(row[c], csv_path, root) for c in _LIBRI_COLUMNS]
    expected = row.get("length")
    if expected not in (None, ""):
      try:
        expected = int(float(expected))
      except ValueError:
        raise DatasetError(
          f"bad length {expected!r} at {csv_path}:{line}"
        ) from None
    else:
      expected = None
    n = _check_audio(paths, sample_rate, expected)
    name = row.get("mixture_ID") or paths[0].stem
    utterances.append(
      Utterance(
        name,
        paths[0],
        (paths[1], paths[2]),
        n,
        talkers_from_name(name, "libri2mix"),
      )
    )
  if not utterances:
    raise DatasetError(f"no rows in {csv_path}")
  return utterances


# ===========================================================================
# Entry point.
# ===========================================================================

DATASETS = ("synthetic", "wsj0-2mix", "libri2mix")


def make_dataset(
  name: str = "synthetic",
  root: str | os.PathLike | None = None,
  split: str = "train",
  *,
  seed: int = 0,
  chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
  sample_rate: int = SAMPLE_RATE,
  num_examples: int | None = None,
  synthetic: SyntheticConfig | None = None,
  mode: str = "min",
  train_subset: str = "train-100",
  mix_type: str = "clean",
  dynamic_mixing: bool = False,
  speed_perturbation: float = 0.0,
  distinct_talkers: bool = False,
  renderer: str = "numpy",
  audio_cache_bytes: int = 0,
) -> SyntheticMixtures | FileMixtures:
  """Builds a dataset; real datasets are fully validated here.

  Args:
    name: ``'synthetic'``, ``'wsj0-2mix'`` or ``'libri2mix'``.
    root: dataset root directory (ignored for ``'synthetic'``).
    split: ``'train'``, ``'validation'``, ``'test'`` or an alias.
    seed: seed of the random streams (chunk offsets, shuffling, synthesis).
    chunk_samples: training chunk length (default: 400 STFT frames).
    sample_rate: expected sample rate of the wav files.
    num_examples: evaluation set size (synthetic), or keep only the first
      ``num_examples`` utterances of a real split.
    synthetic: ``SyntheticConfig`` of the synthetic mixtures.
    mode: preferred wsj0-2mix / Libri2Mix variant, ``'min'`` or ``'max'``.
    train_subset: Libri2Mix training subset, ``'train-100'`` or
      ``'train-360'``.
    mix_type: Libri2Mix mixture type, ``'clean'`` or ``'both'``.
    dynamic_mixing: real datasets only: the training stream (``batches``,
      ``batch_at``) remixes sources of different utterances at random
      levels instead of reading the stored mixtures (see
      ``FileMixtures._remixed_chunks``); evaluation (``examples``) is
      unaffected.
    speed_perturbation: with ``dynamic_mixing``: each remixed source is
      played at a random speed in ``1 +- speed_perturbation`` (pitch,
      formants and tempo together; at most
      ``configs.MAX_SPEED_PERTURBATION``).
    distinct_talkers: with ``dynamic_mixing``: never mix two sources of the
      same talker, as read from the mixture names (``talkers_from_name``).
    renderer: synthetic training batches: ``'numpy'`` or ``'xla'`` (see
      ``SyntheticMixtures``).
    audio_cache_bytes: real datasets: keep up to this many bytes of decoded
      audio in memory (:class:`AudioCache`; 0: read every chunk from disk).

  Returns:
    A ``SeparationDataset``.

  Raises:
    DatasetError: for any problem with the files (see the module docstring).
  """
  key = name.lower().replace("_", "-")
  if key == "synthetic":
    return SyntheticMixtures(
      split,
      seed=seed,
      chunk_samples=chunk_samples,
      config=synthetic,
      num_examples=num_examples,
      renderer=renderer,
    )
  if key not in ("wsj0-2mix", "libri2mix"):
    raise ValueError(f"unknown dataset {name!r}; expected one of {DATASETS}")
  if root is None:
    raise DatasetError(f"{key} needs a root directory")
  if key == "wsj0-2mix":
    utterances = list_wsj0_2mix(root, split, sample_rate, mode)
  else:
    utterances = list_libri2mix(
      root, split, sample_rate, mode, train_subset, mix_type
    )
  if num_examples is not None:
    utterances = utterances[:num_examples]
  return FileMixtures(
    key,
    split,
    utterances,
    seed=seed,
    chunk_samples=chunk_samples,
    sample_rate=sample_rate,
    dynamic_mixing=dynamic_mixing,
    speed_perturbation=speed_perturbation,
    distinct_talkers=distinct_talkers,
    audio_cache_bytes=audio_cache_bytes,
  )
