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

"""A trained separator for any audio: ``load_separator`` and ``export_model``.

::

  from examples.separation.separator import load_separator
  separator = load_separator()             # the shipped model, or a path
  estimates = separator(mix, 44100)        # np.ndarray [2, len(mix)]

Model directories (``load_separator(path)``) come in two kinds:

* an exported model, written by :func:`export_model` (or ``python -m
  examples.separation.separator WORKDIR OUT_DIR``): ``config.json`` (the
  training configuration and results) and ``params.msgpack`` (the network
  weights, ``flax.serialization`` msgpack, float32). Sizes: the ``tiny``
  preset (2 x 64) 0.9 MB (chimera 2.3 MB), ``small`` (2 x 300) 13 MB
  (chimera 20 MB), ``paper`` (4 x 600) 119 MB -- too big to ship. The
  default model lives in ``examples/separation/pretrained/default/``;
* a training workdir of ``train.py``: ``results.json`` and
  ``checkpoints/<step>/`` (the latest step's weights are read, the optimizer
  state is not).

A :class:`Separator` takes audio at any sample rate: mono ``[L]``, or
multi-channel ``[C, L]`` / ``[L, C]`` (the shorter axis is taken as the
channels unless ``channel_axis`` says otherwise), downmixed to mono by
averaging the channels, resampled to the model's 8 kHz (soxr's HQ resampler
when installed, else ``scipy.signal.resample_poly``), separated, and resampled
back: the estimates have the input's sample rate and length. The model only
sees 0-4 kHz, so the estimates have nothing above 4 kHz.

Inference: deep-clustering / whitened-k-means models (``loss`` ``dc``,
``wkm``) cluster their embeddings with weighted k-means into binary masks;
mask-inference and chimera models use their mask head; the waveform (``snr``)
model returns waveforms (``inference.estimate_sources``).

Long inputs are separated in overlapping chunks (default 30 s chunks with 2 s
of overlap, at 8 kHz) so that memory stays bounded: the last chunk is moved
back to end at the end of the signal (so it is full length), each chunk's
sources are reordered to match the previous chunk's by their correlation over
the overlap (the source order of a separator is arbitrary per call), and the
overlap is linearly crossfaded. Inputs up to one chunk long are separated
whole.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import json
import math
import numbers
import os
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from examples.separation import configs
from examples.separation import evaluation

SAMPLE_RATE = 8000  # The model's rate (signal.SAMPLE_RATE).
NUM_SOURCES = 2
PRETRAINED_DIR = pathlib.Path(__file__).resolve().parent / "pretrained"
DEFAULT_MODEL = PRETRAINED_DIR / "default"
CONFIG_FILE = "config.json"
PARAMS_FILE = "params.msgpack"
FORMAT_NAME = "autoclip-optax-separation-model"
FORMAT_VERSION = 1
DEFAULT_CHUNK_SECONDS = 30.0
DEFAULT_OVERLAP_SECONDS = 2.0

_REQUIRED_FIELDS = ("loss", "num_layers", "hidden", "embedding_dim")
_INFERENCE = {
  "mi": "mask head",
  "chimera": "mask head (the embeddings are not used)",
  "snr": "waveform head (masks applied inside the network)",
  "dc": "weighted k-means on the embeddings (binary masks)",
  "wkm": "weighted k-means on the embeddings (binary masks)",
}

PathLike = str | os.PathLike


class ModelError(ValueError):
  """A path that is not a usable model directory (one-line message)."""


# ----------------------------------------------------------------------------
# Model directories.
# ----------------------------------------------------------------------------


def model_dir_kind(path: PathLike) -> str | None:
  """``'exported'``, ``'workdir'`` or None if ``path`` is neither."""
  p = pathlib.Path(path)
  if (p / CONFIG_FILE).is_file() and (p / PARAMS_FILE).is_file():
    return "exported"
  if (p / "results.json").is_file() and (p / "checkpoints").is_dir():
    return "workdir"
  return None


def _read_json(path: pathlib.Path) -> dict:
  try:
    value = json.loads(path.read_text(encoding="utf-8"))
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise ModelError(f"{path}: unreadable JSON ({e})") from None
  if not isinstance(value, dict):
    raise ModelError(f"{path}: expected a JSON object")
  return value


def _config_from_fields(fields: dict, source: pathlib.Path) -> configs.Config:
  """A Config from saved fields; unknown fields (older/newer runs) ignored."""
  missing = [k for k in _REQUIRED_FIELDS if k not in fields]
  if missing:
    raise ModelError(
      f"{source}: no {', '.join(missing)} (not a separation "
      "model configuration)"
    )
  known = {f.name for f in dataclasses.fields(configs.Config)}
  kwargs = {
    k: tuple(v) if isinstance(v, list) else v
    for k, v in fields.items()
    if k in known
  }
  try:
    config = configs.Config(**kwargs)
  except TypeError as e:
    raise ModelError(f"{source}: bad configuration ({e})") from None
  if config.loss not in configs.LOSSES:
    raise ModelError(f"{source}: unknown loss {config.loss!r}")
  return config


def latest_checkpoint(workdir: PathLike) -> pathlib.Path:
  """The orbax item directory of the latest step in ``workdir/checkpoints``."""
  ckpt_dir = pathlib.Path(workdir).absolute() / "checkpoints"  # orbax: absolute
  steps = (
    sorted(
      (
        int(d.name)
        for d in ckpt_dir.iterdir()
        if d.name.isdigit() and (d / "default").is_dir()
      ),
      reverse=True,
    )
    if ckpt_dir.is_dir()
    else []
  )
  if not steps:
    raise ModelError(f"{ckpt_dir}: no finished checkpoint")
  return ckpt_dir / str(steps[0]) / "default"


# ----------------------------------------------------------------------------
# The framework-specific part (Flax NNX; parameters travel as pure dicts).
# ----------------------------------------------------------------------------


def _load_model(
  config: configs.Config, model_dir: pathlib.Path, kind: str
) -> tuple[Any, Callable]:
  """Weights and ``batch_fn(params, mix [B, L]) -> [B, S, L]`` of a model.

  Args:
    config: the model's training configuration.
    model_dir: an exported model (``params.msgpack``) or a training workdir
      (latest orbax checkpoint; only ``params`` is restored).
    kind: ``model_dir_kind(model_dir)``.

  Raises:
    ModelError: the weights are missing or do not fit ``config``.
  """
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from flax import serialization  # pylint: disable=import-outside-toplevel

  from examples.separation import train  # pylint: disable=import-outside-toplevel

  # The NNX model's parameters as a pure dict: the layout of the Linen
  # version, whose exports and checkpoints therefore load unchanged.
  abstract = train.abstract_params(config)
  if kind == "exported":
    path = model_dir / PARAMS_FILE
    try:
      params = serialization.msgpack_restore(path.read_bytes())
    except Exception as e:  # pylint: disable=broad-except
      raise ModelError(f"{path}: unreadable weights ({e})") from None
  else:
    import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel

    path = latest_checkpoint(model_dir)
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = {
      "params": jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding),
        abstract,
      )
    }
    restore = ocp.args.PyTreeRestore(
      target,
      restore_args=jax.tree.map(
        lambda _: ocp.ArrayRestoreArgs(sharding=sharding), target
      ),
      partial_restore=True,
    )  # Only params: no optimizer state needed.
    try:
      params = ocp.PyTreeCheckpointer().restore(path, args=restore)["params"]
    except Exception as e:  # pylint: disable=broad-except
      message = str(e).splitlines()[0] if str(e) else type(e).__name__
      raise ModelError(
        f"{path}: cannot restore the weights ({message})"
      ) from None
  shapes = jax.tree.map(lambda x: tuple(np.shape(x)), params)
  expected = jax.tree.map(lambda s: tuple(s.shape), abstract)
  if shapes != expected:
    raise ModelError(
      f"{path}: weights do not match the configuration "
      f"(loss={config.loss}, num_layers={config.num_layers}, "
      f"hidden={config.hidden})"
    )
  params = jax.tree.map(jnp.asarray, params)
  return params, train.make_separate_fn(config)


def _serialize_params(params: Any) -> bytes:
  """``params`` as ``flax.serialization`` msgpack bytes (numpy float32)."""
  import jax  # pylint: disable=import-outside-toplevel
  from flax import serialization  # pylint: disable=import-outside-toplevel

  return serialization.msgpack_serialize(
    jax.tree.map(lambda x: np.asarray(x, np.float32), params)
  )


# ----------------------------------------------------------------------------
# Audio helpers.
# ----------------------------------------------------------------------------


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
  """Resamples ``[L]`` or ``[C, L]`` along the last axis (float32).

  soxr's HQ resampler when installed, else ``scipy.signal.resample_poly``
  (Kaiser-windowed polyphase). The length is ``ceil(L * rate_out /
  rate_in)`` (up to one sample; use ``fit_length`` for an exact length).
  """
  x = np.asarray(x, np.float32)
  if rate_in == rate_out or x.shape[-1] == 0:
    return x.copy()
  try:
    import soxr  # pylint: disable=import-outside-toplevel
  except ImportError:
    soxr = None
  if soxr is not None:
    if x.ndim == 1:
      return np.asarray(soxr.resample(x, rate_in, rate_out), np.float32)
    y = soxr.resample(np.ascontiguousarray(x.T), rate_in, rate_out)
    return np.ascontiguousarray(np.asarray(y, np.float32).T)
  from scipy import signal as sps  # pylint: disable=import-outside-toplevel

  g = math.gcd(int(rate_in), int(rate_out))
  return sps.resample_poly(x, rate_out // g, rate_in // g, axis=-1).astype(
    np.float32
  )


def fit_length(x: np.ndarray, length: int) -> np.ndarray:
  """Cuts or zero-pads the last axis of ``x`` to ``length``."""
  if x.shape[-1] >= length:
    return x[..., :length]
  pad = [(0, 0)] * (x.ndim - 1) + [(0, length - x.shape[-1])]
  return np.pad(x, pad)


def to_mono(audio: np.ndarray, channel_axis: int | None = None) -> np.ndarray:
  """float32 mono ``[L]`` from ``[L]``, ``[C, L]`` or ``[L, C]`` audio.

  Integer PCM is scaled to [-1, 1). Channels are averaged; for 2-D input the
  channel axis is ``channel_axis``, or else the shorter axis (ValueError if
  the two are equal).
  """
  x = np.asarray(audio)
  if x.dtype.kind in "iu":
    info = np.iinfo(x.dtype)
    x = (x.astype(np.float64) - (info.max + 1 + info.min) / 2) / (
      (info.max - info.min + 1) / 2
    )
  elif x.dtype.kind != "f":
    raise ValueError(f"audio must be a float or integer array, got {x.dtype}")
  if x.ndim == 2:
    if channel_axis is None:
      if x.shape[0] == x.shape[1]:
        raise ValueError(
          f"cannot tell channels from samples in a "
          f"{x.shape} array; pass channel_axis"
        )
      channel_axis = 0 if x.shape[0] < x.shape[1] else 1
    x = x.mean(axis=channel_axis)
  elif x.ndim != 1:
    raise ValueError(
      f"audio must be [L], [C, L] or [L, C], got shape {x.shape}"
    )
  x = np.asarray(x, np.float32)
  if not np.all(np.isfinite(x)):
    raise ValueError("audio contains NaN or infinity")
  return x


# ----------------------------------------------------------------------------
# Chunked separation.
# ----------------------------------------------------------------------------


def describe_training_data(config: configs.Config) -> str:
  """What a model was trained on, in words, from its configuration.

  ``config.data`` alone names only the folder layout (``wsj0-2mix`` is also
  the layout of a ``tts2mix`` build); this adds how the files were used and
  any synthetic share (the training data's own root is not kept in an
  exported model; its note usually says).
  """
  if config.data == "synthetic":
    return f"synthetic mixtures (pairing {config.pairing})"
  parts = [f"audio files in the {config.data} layout"]
  if config.dynamic_mixing:
    parts.append(
      "dynamically remixed"
      + (" (distinct talkers)" if config.distinct_talkers else "")
    )
  if config.speed_perturbation:
    parts.append(f"speed perturbation +-{config.speed_perturbation:g}")
  if config.synthetic_fraction:
    parts.append(
      f"{config.synthetic_fraction:.0%} synthetic mixtures "
      f"(pairing {config.pairing})"
    )
  if config.synthetic_pretrain_steps:
    parts.append(
      f"after {config.synthetic_pretrain_steps} steps of synthetic mixtures"
    )
  return ", ".join(parts)


def check_chunking(
  chunk_seconds: float | None, overlap_seconds: float
) -> tuple[int | None, int]:
  """Chunk and overlap lengths in samples at ``SAMPLE_RATE``.

  Args:
    chunk_seconds: chunk length (None: no chunking; ``overlap_seconds`` is
      then not used).
    overlap_seconds: overlap of consecutive chunks.

  Returns:
    ``(chunk, overlap)`` in samples (``chunk`` None without chunking).

  Raises:
    ValueError: a length that is not a finite number, or
      ``0 < overlap < chunk`` fails once both are rounded to samples.
  """
  for name, value in (
    ("chunk_seconds", chunk_seconds),
    ("overlap_seconds", overlap_seconds),
  ):
    if value is not None and not (
      isinstance(value, numbers.Real) and math.isfinite(value)
    ):
      raise ValueError(f"{name} must be a finite number, got {value!r}")
  overlap = int(round(overlap_seconds * SAMPLE_RATE))
  if chunk_seconds is None:
    return None, overlap
  chunk = int(round(chunk_seconds * SAMPLE_RATE))
  if not 0 < overlap < chunk:
    raise ValueError(
      f"need 0 < overlap_seconds < chunk_seconds at {SAMPLE_RATE} Hz, got "
      f"overlap_seconds={overlap_seconds:g} ({overlap} samples) and "
      f"chunk_seconds={chunk_seconds:g} ({chunk} samples)"
    )
  return chunk, overlap


def chunk_starts(length: int, chunk: int, overlap: int) -> list[int]:
  """Start samples of the chunks of an ``length``-sample signal.

  Chunks of ``chunk`` samples every ``chunk - overlap`` samples; the last one
  ends at the end of the signal (so it overlaps its predecessor by at least
  ``overlap``). One chunk at 0 if ``length <= chunk``.
  """
  if not 0 < overlap < chunk:
    raise ValueError(f"need 0 < overlap ({overlap}) < chunk ({chunk})")
  if length <= chunk:
    return [0]
  starts = list(range(0, length - chunk, chunk - overlap))
  return starts + [length - chunk]


def best_alignment(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
  """Permutation of ``current``'s sources that best matches ``previous``.

  Args:
    previous: ``[S, N]`` the already-stitched estimates over an overlap.
    current: ``[S, N]`` the new chunk's estimates over the same samples.

  Returns:
    int ``[S]``: ``current[perm]`` is aligned with ``previous`` (maximum sum
    of normalised correlations; the identity on ties, e.g. silence).
  """
  prev = np.asarray(previous, np.float64)
  cur = np.asarray(current, np.float64)
  norms = (
    np.linalg.norm(prev, axis=-1)[:, None]
    * np.linalg.norm(cur, axis=-1)[None, :]
  )
  corr = (prev @ cur.T) / np.maximum(norms, 1e-12)  # [S_prev, S_cur]
  num = corr.shape[0]
  best, best_score = np.arange(num), -np.inf
  for perm in itertools.permutations(range(num)):
    score = corr[np.arange(num), list(perm)].sum()
    if score > best_score + 1e-9:
      best, best_score = np.array(perm), score
  return best


def separate_in_chunks(
  separate_fn: Callable[[np.ndarray], np.ndarray],
  mix: np.ndarray,
  chunk: int | None,
  overlap: int,
) -> np.ndarray:
  """Separates ``mix [L]`` chunk by chunk (see the module docstring).

  Args:
    separate_fn: ``fn(mix [N]) -> [S, N]``.
    mix: the mixture.
    chunk: chunk length in samples (None: the whole signal at once).
    overlap: overlap of consecutive chunks in samples.

  Returns:
    float32 ``[S, L]``.
  """
  mix = np.asarray(mix, np.float32)
  length = mix.shape[-1]
  if chunk is None or length <= chunk:
    return np.asarray(separate_fn(mix), np.float32)
  out = None
  prev_end = 0
  for start in chunk_starts(length, chunk, overlap):
    end = start + chunk
    est = np.asarray(separate_fn(mix[start:end]), np.float32)
    if out is None:
      out = np.zeros((est.shape[0], length), np.float32)
      out[:, :end] = est
    else:
      ov = prev_end - start
      est = est[best_alignment(out[:, start:prev_end], est[:, :ov])]
      fade = ((np.arange(ov) + 0.5) / ov).astype(np.float32)
      out[:, start:prev_end] = (
        out[:, start:prev_end] * (1 - fade) + est[:, :ov] * fade
      )
      out[:, prev_end:end] = est[:, ov:]
    prev_end = end
  return out


# ----------------------------------------------------------------------------
# The separator.
# ----------------------------------------------------------------------------


class Separator:
  """A trained two-source separator for audio at any sample rate.

  Attributes:
    config: the training configuration (``configs.Config``).
    path: the model directory it was loaded from (or None).
    info: what the model directory says about its training (``steps_done``,
      ``test_si_sdri_db``, ...).
    sample_rate: the model's sample rate (8000).
    num_sources: 2.
    chunk_seconds: chunk length for long inputs (None: never chunk).
    overlap_seconds: overlap of consecutive chunks.
  """

  sample_rate: int = SAMPLE_RATE
  num_sources: int = NUM_SOURCES

  def __init__(
    self,
    config: configs.Config,
    params: Any,
    batch_fn: Callable,
    *,
    path: PathLike | None = None,
    info: dict | None = None,
    chunk_seconds: float | None = DEFAULT_CHUNK_SECONDS,
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
  ):
    """Wraps loaded weights; use :func:`load_separator` instead.

    Args:
      config: the training configuration.
      params: the weights.
      batch_fn: ``fn(params, mix [B, L]) -> [B, S, L]`` (8 kHz).
      path: the model directory.
      info: training information (results) to report.
      chunk_seconds: chunk length for long inputs; None never chunks.
      overlap_seconds: overlap of consecutive chunks (< ``chunk_seconds``).
    """
    self.config = config
    self.params = params
    self.path = None if path is None else pathlib.Path(path)
    self.info = dict(info or {})
    self.chunk_seconds = chunk_seconds
    self.overlap_seconds = overlap_seconds
    check_chunking(chunk_seconds, overlap_seconds)
    self._separate_one = evaluation.utterance_fn(
      lambda mix: batch_fn(params, mix)
    )

  @property
  def inference(self) -> str:
    """How outputs become waveforms (k-means or mask head), in words."""
    return _INFERENCE[self.config.loss]

  def describe(self) -> dict:
    """A JSON-able description (path, recipe, size, training results)."""
    return {
      "path": None if self.path is None else str(self.path),
      "loss": self.config.loss,
      "clip": self.config.clip,
      "p": self.config.p,
      "num_layers": self.config.num_layers,
      "hidden": self.config.hidden,
      "preset": self.config.preset,
      "trained_on": describe_training_data(self.config),
      "inference": self.inference,
      "sample_rate": self.sample_rate,
      "chunk_seconds": self.chunk_seconds,
      "overlap_seconds": self.overlap_seconds,
      **{k: v for k, v in self.info.items() if k != "config"},
    }

  def separate_8k(
    self,
    mix: np.ndarray,
    *,
    chunk_seconds: float | None = ...,
    overlap_seconds: float | None = None,
  ) -> np.ndarray:
    """Separates a mono 8 kHz mixture ``[L]`` into float32 ``[S, L]``.

    Args:
      mix: the mixture at ``sample_rate``.
      chunk_seconds: overrides ``self.chunk_seconds`` when given (None:
        no chunking).
      overlap_seconds: overrides ``self.overlap_seconds`` when given.
    """
    chunk_s = self.chunk_seconds if chunk_seconds is ... else chunk_seconds
    overlap_s = (
      self.overlap_seconds if overlap_seconds is None else overlap_seconds
    )
    chunk, overlap = check_chunking(chunk_s, overlap_s)
    mix = np.asarray(mix, np.float32)
    if mix.shape[-1] == 0:
      return np.zeros((self.num_sources, 0), np.float32)
    return separate_in_chunks(self._separate_one, mix, chunk, overlap)

  def __call__(
    self,
    mix: np.ndarray,
    sample_rate: int,
    *,
    channel_axis: int | None = None,
  ) -> np.ndarray:
    """Separates ``mix`` into float32 ``[2, L]`` at ``sample_rate``.

    Args:
      mix: ``[L]`` mono, or ``[C, L]`` / ``[L, C]`` (channels are averaged;
        the shorter axis is the channel axis unless ``channel_axis`` is
        given). Float in [-1, 1] or integer PCM.
      sample_rate: of ``mix``, any positive integer (Hz).
      channel_axis: the channel axis of a 2-D ``mix``.

    Returns:
      The two estimated sources, at ``sample_rate``, of the input's length
      (band-limited to 4 kHz by the 8 kHz model), in an arbitrary order.
    """
    if int(sample_rate) != sample_rate or sample_rate <= 0:
      raise ValueError(
        f"sample_rate must be a positive integer, got {sample_rate!r}"
      )
    sample_rate = int(sample_rate)
    audio = to_mono(mix, channel_axis)
    estimates = self.separate_8k(resample(audio, sample_rate, SAMPLE_RATE))
    return fit_length(
      resample(estimates, SAMPLE_RATE, sample_rate), audio.shape[-1]
    )

  def separate_file(
    self, path: PathLike, output_dir: PathLike, *, plot: bool = False
  ) -> list[pathlib.Path]:
    """Writes ``output_dir/<stem>_s1.wav`` and ``_s2.wav`` for an audio file.

    See ``separate.separate_file`` (same sample rate and length as the
    input; optional spectrogram PNG).
    """
    from examples.separation import separate  # pylint: disable=import-outside-toplevel

    return separate.separate_file(self, path, output_dir, plot=plot)


def load_separator(
  path: PathLike | None = None,
  *,
  chunk_seconds: float | None = DEFAULT_CHUNK_SECONDS,
  overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
) -> Separator:
  """Loads a model directory (see the module docstring) as a Separator.

  Args:
    path: an exported model or a training workdir; None loads the model
      shipped in ``examples/separation/pretrained/default``.
    chunk_seconds: chunk length for long inputs (None: never chunk).
    overlap_seconds: overlap of consecutive chunks.

  Raises:
    ModelError: ``path`` (or the default model) is missing or not a model
      directory; the message is one line and names the path.
  """
  if path is None:
    model_dir = DEFAULT_MODEL
    if model_dir_kind(model_dir) is None:
      raise ModelError(
        f"no pretrained model in {model_dir} (not shipped in this "
        "checkout); pass a model directory (--model DIR): a training "
        "workdir or a directory written by export_model"
      )
  else:
    model_dir = pathlib.Path(path)
    if not model_dir.exists():
      raise ModelError(f"{model_dir}: no such model directory")
    if not model_dir.is_dir():
      raise ModelError(
        f"{model_dir} is not a directory (a model directory "
        f"holds {CONFIG_FILE} + {PARAMS_FILE}, or is a "
        "training workdir)"
      )
  kind = model_dir_kind(model_dir)
  if kind is None:
    raise ModelError(
      f"{model_dir} is not a model directory (expected {CONFIG_FILE} and "
      f"{PARAMS_FILE}, or a training workdir with results.json and "
      "checkpoints/)"
    )
  if kind == "exported":
    meta = _read_json(model_dir / CONFIG_FILE)
    if meta.get("format") != FORMAT_NAME:
      raise ModelError(f"{model_dir / CONFIG_FILE}: not a {FORMAT_NAME} file")
    if meta.get("version", 0) > FORMAT_VERSION:
      raise ModelError(
        f"{model_dir / CONFIG_FILE}: format version "
        f"{meta.get('version')} is newer than this code "
        f"({FORMAT_VERSION})"
      )
    config = _config_from_fields(
      meta.get("config", {}), model_dir / CONFIG_FILE
    )
    info = dict(meta.get("training", {}))
  else:
    results = _read_json(model_dir / "results.json")
    config = _config_from_fields(results, model_dir / "results.json")
    info = {k: results[k] for k in _TRAINING_KEYS if k in results}
  params, batch_fn = _load_model(config, model_dir, kind)
  return Separator(
    config,
    params,
    batch_fn,
    path=model_dir,
    info=info,
    chunk_seconds=chunk_seconds,
    overlap_seconds=overlap_seconds,
  )


_TRAINING_KEYS = (
  "steps_done",
  "test_si_sdr_db",
  "test_si_sdri_db",
  "val_si_sdri_db",
  "num_test_utterances",
  "train_seconds_this_run",
  "devices",
)


def _portable_path(path: str) -> str:
  """``path`` relative to the repository root if inside it, else its name."""
  resolved = pathlib.Path(path).resolve()
  root = PRETRAINED_DIR.parents[2]
  if resolved.is_relative_to(root):
    return resolved.relative_to(root).as_posix()
  return resolved.name


def export_model(
  workdir: PathLike, out_dir: PathLike, *, note: str | None = None
) -> pathlib.Path:
  """Writes a compact model directory from a training workdir.

  ``out_dir/config.json`` (format, the configuration without ``data_root``
  and with ``init_from`` relative to the repository, the training results,
  the inference method) and ``out_dir/params.msgpack`` (the latest
  checkpoint's weights). Each file is written to a temporary file
  and renamed, the weights first.

  Args:
    workdir: a training workdir (or an exported model, to re-export).
    out_dir: the model directory to write (created; an existing exported
      model is replaced, any other non-empty directory is refused).
    note: free text stored as ``training.note`` (e.g. the training command).

  Returns:
    ``out_dir``.

  Raises:
    ModelError: ``workdir`` is not a model directory, or ``out_dir`` is a
      non-empty directory that is not an exported model.
  """
  out = pathlib.Path(out_dir)
  if out.exists() and (
    not out.is_dir()
    or (any(out.iterdir()) and model_dir_kind(out) != "exported")
  ):
    raise ModelError(
      f"{out} exists and is not an exported model; refusing to write into it"
    )
  separator = load_separator(workdir, chunk_seconds=None)
  fields = dataclasses.asdict(separator.config)
  fields["data_root"] = None  # A local path; meaningless elsewhere.
  if fields.get("init_from"):  # Relative to the repository where inside it.
    fields["init_from"] = _portable_path(fields["init_from"])
  training = {
    **separator.info,
    "source": pathlib.Path(workdir).resolve().name,
    "exported": datetime.datetime.now(datetime.UTC).strftime(
      "%Y-%m-%dT%H:%M:%SZ"
    ),
  }
  if note:
    training["note"] = note
  meta = {
    "format": FORMAT_NAME,
    "version": FORMAT_VERSION,
    "sample_rate": SAMPLE_RATE,
    "num_sources": NUM_SOURCES,
    "inference": separator.inference,
    "config": fields,
    "training": training,
  }
  out.mkdir(parents=True, exist_ok=True)
  tmp, final = evaluation.atomic_path(out / PARAMS_FILE)
  try:
    tmp.write_bytes(_serialize_params(separator.params))
    os.replace(tmp, final)
  finally:
    tmp.unlink(missing_ok=True)
  evaluation.write_json(meta, out / CONFIG_FILE)
  return out


def main(argv: Sequence[str] | None = None) -> int:
  """``python -m examples.separation.separator WORKDIR OUT_DIR``: export."""
  import argparse  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel

  parser = argparse.ArgumentParser(
    prog="python -m examples.separation.separator",
    description="Export a training workdir as a compact model directory "
    f"({CONFIG_FILE} + {PARAMS_FILE}) for separate / evaluate / "
    "load_separator.",
  )
  parser.add_argument(
    "workdir", help="training workdir (results.json and checkpoints/)"
  )
  parser.add_argument("out_dir", help="model directory to write")
  parser.add_argument(
    "--note",
    default=None,
    help="free text stored in config.json (e.g. the training command)",
  )
  args = parser.parse_args(argv)
  try:
    out = export_model(args.workdir, args.out_dir, note=args.note)
  except ModelError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except OSError as e:
    where = e.filename or args.out_dir
    print(
      f"error: {where}: cannot write the model ({e.strerror or e})",
      file=sys.stderr,
    )
    return 2
  size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
  print(f"{out} ({size / 1e6:.2f} MB)")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
