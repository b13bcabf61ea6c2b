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

"""Separate your own recordings into two sources.

::

  python -m examples.separation.separate FILE_OR_DIR ... [--model DIR]
      [--output-dir OUT] [--force-overwrite | --skip-existing]
      [--keep-going] [--chunk-seconds S] [--overlap-seconds S] [--plot]
      [--no-progress]

Each input is an audio file that libsndfile reads (wav, flac, ogg/opus,
aiff, and mp3 with libsndfile >= 1.1; any sample rate and channel count) or
a folder, whose files with those suffixes (not recursive, hidden files
left out) are taken. For an input ``NAME.EXT`` it writes ``OUT/NAME_s1.wav`` and
``OUT/NAME_s2.wav``: mono, 32-bit float, at the input's sample rate and
exactly its length (the source order is arbitrary), and with ``--plot``
``OUT/NAME_spectrograms.png`` (the mixture's and the estimates' spectrograms
at the model's 8 kHz, at most the first 60 s). ``--model`` defaults to the
model shipped in ``examples/separation/pretrained/default``; see
``separator.py`` for model directories, resampling, chunking (default 30 s
chunks with 2 s of overlap; ``--chunk-seconds 0`` separates whole files) and
how each kind of model turns its outputs into waveforms.

Memory: the audio is read in 10-second blocks, downmixed and resampled to
8 kHz as it is read, separated chunk by chunk and resampled back block by
block while writing, so what is held is the 8 kHz signal and its two
estimates (96 kB per second of audio) plus one chunk's network activations
(with soxr installed; scipy's fallback resamples whole signals).

Existing outputs are never replaced silently: a run whose outputs already
exist is refused before the model is loaded, naming them, unless
``--force-overwrite`` (replace them) or ``--skip-existing`` (leave the inputs
whose outputs all exist, e.g. to finish an interrupted batch) is given. An
output that would replace one of the inputs (``--output-dir`` the input
folder, holding ``a.wav`` and ``a_s1.wav``) is refused even then.

Errors: a missing path, a file that is not readable audio (or has no
samples), a folder without audio files, two inputs that would write the same
outputs, outputs that exist or are inputs, chunk and overlap lengths that are
not ``0 < overlap < chunk`` at the model's 8 kHz, a ``--model`` that is not a
model directory and an output folder that cannot be written are reported
before anything is written, as one ``error:`` line naming the path or the
flag, with exit status 2. A failure while separating a file (including an
input holding NaN or infinity, which would make the estimates NaN) exits
with status 1 naming the file (with ``--keep-going``: after the other files,
naming each failure); every output is written to a temporary file and
renamed when complete, so no output is ever half-written (outputs of the
files before it are kept).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
from collections.abc import Sequence

import numpy as np

# Suffixes taken from folders (any file named explicitly is tried); mp3 only
# where the installed libsndfile reads it (>= 1.1).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".aiff", ".aif")
BLOCK_SECONDS = 10.0
PLOT_MAX_SECONDS = 60.0


class InputError(ValueError):
  """An input path that cannot be separated (one-line message)."""


def _one_line(text: str) -> str:
  return " ".join(str(text).split())


# ----------------------------------------------------------------------------
# Inputs.
# ----------------------------------------------------------------------------


def check_audio_file(path: pathlib.Path) -> None:
  """Raises InputError unless ``path`` is a readable, non-empty audio file."""
  import soundfile as sf  # pylint: disable=import-outside-toplevel

  try:
    info = sf.info(str(path))
  except Exception as e:  # pylint: disable=broad-except
    # soundfile raises LibsndfileError, RuntimeError or TypeError.
    raise InputError(
      f"{path}: not a readable audio file ({_one_line(e)})"
    ) from None
  if info.frames <= 0:
    raise InputError(f"{path}: no audio samples")


def folder_suffixes() -> tuple[str, ...]:
  """The suffixes taken from a folder: ``AUDIO_SUFFIXES``, plus ``.mp3``
  where the installed libsndfile reads MP3."""
  import soundfile as sf  # pylint: disable=import-outside-toplevel

  mp3 = (".mp3",) if "MP3" in sf.available_formats() else ()
  return AUDIO_SUFFIXES + mp3


def collect_inputs(paths: Sequence[str]) -> list[pathlib.Path]:
  """The audio files named by ``paths`` (files, or folders of audio files).

  Every file is checked with ``soundfile.info`` (no audio is read). Hidden
  files (names starting with ``.``) in a folder are left out.

  Raises:
    InputError: a missing path, a file that is not audio, a folder with no
      audio file (``folder_suffixes()``), or two inputs with the same stem.
  """
  suffixes = folder_suffixes()
  files: list[pathlib.Path] = []
  for text in paths:
    path = pathlib.Path(text)
    if not path.exists():
      raise InputError(f"{path}: no such file or directory")
    if path.is_dir():
      found = sorted(
        p
        for p in path.iterdir()
        if p.is_file()
        and not p.name.startswith(".")
        and p.suffix.lower() in suffixes
      )
      if not found:
        raise InputError(
          f"{path}: no {', '.join(suffixes)} files in this folder"
        )
      files += found
    else:
      files.append(path)
  stems: dict[str, pathlib.Path] = {}
  for path in files:
    check_audio_file(path)
    if path.stem in stems and stems[path.stem].resolve() != path.resolve():
      raise InputError(
        f"{path} and {stems[path.stem]} would both write "
        f"{path.stem}_s1.wav; rename one"
      )
    stems[path.stem] = path
  seen, unique = set(), []
  for path in files:
    if path.resolve() not in seen:
      seen.add(path.resolve())
      unique.append(path)
  return unique


def output_paths(
  path: os.PathLike, output_dir: os.PathLike, *, plot: bool = False
) -> list[pathlib.Path]:
  """What ``separate_file`` writes for ``path``: ``OUT/<stem>_s1.wav``,
  ``OUT/<stem>_s2.wav`` and, with ``plot``, ``OUT/<stem>_spectrograms.png``."""
  from examples.separation import evaluation  # pylint: disable=import-outside-toplevel

  stem = pathlib.Path(path).stem
  paths = evaluation.estimate_paths(output_dir, stem)  # What evaluate reads.
  if plot:
    paths.append(pathlib.Path(output_dir) / f"{stem}_spectrograms.png")
  return paths


def plan_outputs(
  files: Sequence[pathlib.Path],
  output_dir: os.PathLike,
  *,
  plot: bool = False,
  existing: str = "refuse",
) -> list[pathlib.Path]:
  """The inputs to separate, given what already exists in ``output_dir``.

  Args:
    files: the inputs (``collect_inputs``).
    output_dir: where the outputs go (need not exist yet).
    plot: whether a spectrogram PNG is written too.
    existing: what to do with outputs that already exist: ``'refuse'``
      (raise), ``'overwrite'`` (replace them) or ``'skip'`` (leave out the
      inputs whose outputs all exist).

  Returns:
    The inputs to separate, in order.

  Raises:
    InputError: an output would replace one of the inputs (whatever
      ``existing`` says), or outputs exist and ``existing`` is ``'refuse'``;
      the message names the paths and the flags.
  """
  if existing not in ("refuse", "overwrite", "skip"):
    raise ValueError(f"existing={existing!r}: 'refuse', 'overwrite' or 'skip'")
  inputs = {f.resolve(): f for f in files}
  todo, found = [], []
  for path in files:
    outs = output_paths(path, output_dir, plot=plot)
    for out in outs:
      if out.resolve() in inputs:
        raise InputError(
          f"{out} is an input and would be replaced by an output of {path}; "
          "choose another --output-dir"
        )
    present = [out for out in outs if out.exists()]
    if existing == "skip" and len(present) == len(outs):
      continue
    found += present
    todo.append(path)
  if found and existing == "refuse":
    shown = ", ".join(str(p) for p in found[:3])
    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    raise InputError(
      f"{shown}{more} already exist; pass --force-overwrite to replace "
      "them or --skip-existing to leave the inputs whose outputs all exist"
    )
  return todo


# ----------------------------------------------------------------------------
# Streaming audio I/O.
# ----------------------------------------------------------------------------


def _resample_stream(rate_in: int, rate_out: int):
  """A soxr stream resampler, or None (same rate, or soxr not installed)."""
  if rate_in == rate_out:
    return None
  try:
    import soxr  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  return soxr.ResampleStream(
    rate_in, rate_out, 1, dtype="float32", quality="HQ"
  )


def read_mono(path: os.PathLike, rate: int) -> tuple[np.ndarray, int, int]:
  """Reads ``path`` block by block, downmixed to mono and resampled to ``rate``.

  Returns:
    ``(audio float32 [N], file sample rate, file length in samples)``.

  Raises:
    InputError: the file holds NaN or infinity (names the path).
  """
  import soundfile as sf  # pylint: disable=import-outside-toplevel

  from examples.separation import separator as separator_lib  # pylint: disable=import-outside-toplevel

  with sf.SoundFile(str(path)) as f:
    file_rate, frames = f.samplerate, f.frames
    stream = _resample_stream(file_rate, rate)
    parts = []
    for block in f.blocks(
      blocksize=max(1, int(file_rate * BLOCK_SECONDS)),
      dtype="float32",
      always_2d=True,
    ):
      mono = block.mean(axis=1, dtype=np.float32)
      if not np.all(np.isfinite(mono)):
        raise InputError(f"{path}: audio contains NaN or infinity")
      parts.append(stream.resample_chunk(mono) if stream else mono)
    if stream is not None:
      parts.append(stream.resample_chunk(np.zeros(0, np.float32), last=True))
  audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
  if stream is None and file_rate != rate:
    audio = separator_lib.resample(audio, file_rate, rate)
  return np.asarray(audio, np.float32), file_rate, frames


def write_resampled(
  path: os.PathLike, audio: np.ndarray, rate_in: int, rate_out: int, length: int
) -> None:
  """Writes mono ``audio`` resampled to ``rate_out`` and cut/padded to
  ``length`` samples as a 32-bit float wav, block by block."""
  import soundfile as sf  # pylint: disable=import-outside-toplevel

  from examples.separation import separator as separator_lib  # pylint: disable=import-outside-toplevel

  audio = np.asarray(audio, np.float32)
  with sf.SoundFile(
    str(path),
    "w",
    samplerate=rate_out,
    channels=1,
    subtype="FLOAT",
    format="WAV",
  ) as f:
    stream = _resample_stream(rate_in, rate_out)
    if stream is None:
      f.write(
        separator_lib.fit_length(
          separator_lib.resample(audio, rate_in, rate_out), length
        )
      )
      return
    written = 0
    block = max(1, int(rate_in * BLOCK_SECONDS))
    starts = range(0, max(len(audio), 1), block)
    for start in starts:
      last = start + block >= len(audio)
      out = stream.resample_chunk(audio[start : start + block], last=last)
      out = out[: length - written]
      f.write(out)
      written += len(out)
    if written < length:
      f.write(np.zeros(length - written, np.float32))


def plot_spectrograms(
  path: os.PathLike,
  mix: np.ndarray,
  estimates: np.ndarray,
  sample_rate: int,
  title: str = "",
) -> None:
  """A PNG of the mixture's and the estimates' log spectrograms.

  At most the first ``PLOT_MAX_SECONDS`` are shown (the title says so).
  """
  import matplotlib  # pylint: disable=import-outside-toplevel

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  from scipy import signal as sps  # pylint: disable=import-outside-toplevel

  limit = int(PLOT_MAX_SECONDS * sample_rate)
  shown = min(len(mix), limit)
  signals = [("mixture", mix[:shown])] + [
    (f"estimate s{j + 1}", est[:shown]) for j, est in enumerate(estimates)
  ]
  # Shorter signals than one window get a window of their length.
  nperseg = max(1, min(256 if sample_rate <= 16000 else 1024, shown))
  fig, axes = plt.subplots(
    len(signals), 1, sharex=True, sharey=True, figsize=(10, 2.2 * len(signals))
  )
  for ax, (label, x) in zip(axes, signals, strict=True):
    freqs, _, spec = sps.spectrogram(
      np.asarray(x, np.float64),
      fs=sample_rate,
      nperseg=nperseg,
      noverlap=nperseg * 3 // 4,
      window="hann",
    )
    db = 10 * np.log10(spec + 1e-12)
    ax.imshow(
      db,
      origin="lower",
      aspect="auto",
      cmap="magma",
      vmin=db.max() - 80,
      vmax=db.max(),
      interpolation="nearest",
      extent=(0, len(x) / sample_rate, 0, freqs[-1] / 1000),
    )
    ax.set_ylabel(f"{label}\nkHz")
  axes[-1].set_xlabel("time (s)")
  if len(mix) > limit:
    title = f"{title} (first {PLOT_MAX_SECONDS:g} s)".strip()
  if title:
    axes[0].set_title(title)
  fig.tight_layout()
  fig.savefig(str(path), dpi=100, format="png")
  plt.close(fig)


def separate_file(
  separator, path: os.PathLike, output_dir: os.PathLike, *, plot: bool = False
) -> list[pathlib.Path]:
  """Separates one audio file into ``OUT/<stem>_s1.wav`` and ``_s2.wav``.

  Args:
    separator: a ``separator.Separator``.
    path: an audio file libsndfile reads, any sample rate and channels.
    output_dir: an existing folder; outputs there are replaced.
    plot: also write ``OUT/<stem>_spectrograms.png``.

  Returns:
    The paths written. They appear only once all are complete (temporary
    files renamed at the end); on an error none of them is written.

  Raises:
    InputError: the input holds NaN or infinity.
    ValueError: the model's estimates hold NaN or infinity.
    FileNotFoundError: ``output_dir`` does not exist.
  """
  from examples.separation import evaluation  # pylint: disable=import-outside-toplevel

  path = pathlib.Path(path)
  out = pathlib.Path(output_dir)
  if not out.is_dir():
    raise FileNotFoundError(f"output folder {out} does not exist")
  mix, rate, length = read_mono(path, separator.sample_rate)
  estimates = separator.separate_8k(mix)
  if not np.all(np.isfinite(estimates)):
    raise ValueError("the model's estimates hold NaN or infinity")
  finals = output_paths(path, out, plot=plot)
  temps = []
  try:
    for j, est in enumerate(estimates):
      tmp, _ = evaluation.atomic_path(finals[j])
      temps.append(tmp)
      write_resampled(tmp, est, separator.sample_rate, rate, length)
    if plot:
      tmp, _ = evaluation.atomic_path(finals[-1])
      temps.append(tmp)
      plot_spectrograms(
        tmp, mix, estimates, separator.sample_rate, title=path.name
      )
    for tmp, final in zip(temps, finals, strict=True):
      os.replace(tmp, final)
  finally:
    for tmp in temps:
      tmp.unlink(missing_ok=True)
  return finals


# ----------------------------------------------------------------------------
# Command line.
# ----------------------------------------------------------------------------


def check_chunk_flags(
  chunk_seconds: float | None, overlap_seconds: float
) -> None:
  """Raises InputError, naming the flags, unless ``0 < overlap < chunk``
  holds in samples at the model's rate (None or 0: no chunking)."""
  from examples.separation import separator as separator_lib  # pylint: disable=import-outside-toplevel

  try:
    separator_lib.check_chunking(chunk_seconds or None, overlap_seconds)
  except ValueError:
    rate = separator_lib.SAMPLE_RATE
    raise InputError(
      f"--overlap-seconds {overlap_seconds:g} must be > 0 and < "
      f"--chunk-seconds {chunk_seconds:g} (compared in samples at the "
      f"model's {rate} Hz: {round(overlap_seconds * rate)} and "
      f"{round((chunk_seconds or 0) * rate)})"
    ) from None


def build_parser() -> argparse.ArgumentParser:
  from examples.separation import cli  # pylint: disable=import-outside-toplevel
  from examples.separation import separator as separator_lib  # pylint: disable=import-outside-toplevel

  parser = argparse.ArgumentParser(
    prog="python -m examples.separation.separate",
    description="Separate audio files into two sources with a trained "
    "BLSTM separator.",
  )
  add = parser.add_argument
  add(
    "inputs",
    nargs="+",
    metavar="FILE_OR_DIR",
    help="audio files (wav, flac, ogg/opus, aiff, mp3 where libsndfile "
    "reads it; any rate and channels), or folders of them",
  )
  add(
    "--model",
    default=None,
    metavar="DIR",
    help="model directory: exported (config.json + params.msgpack) or a "
    "training workdir (default: the shipped pretrained model)",
  )
  add(
    "--output-dir",
    default="separated",
    metavar="OUT",
    help="where <stem>_s1.wav / <stem>_s2.wav go (default: ./separated)",
  )
  add(
    "--chunk-seconds",
    type=cli.nonnegative_float,
    metavar="S",
    default=separator_lib.DEFAULT_CHUNK_SECONDS,
    help="separate longer inputs in chunks of this many seconds "
    "(default %(default)s; 0: whole files)",
  )
  add(
    "--overlap-seconds",
    type=cli.nonnegative_float,
    metavar="S",
    default=separator_lib.DEFAULT_OVERLAP_SECONDS,
    help="overlap of consecutive chunks, crossfaded (default %(default)s)",
  )
  existing = parser.add_mutually_exclusive_group()
  existing.add_argument(
    "--force-overwrite",
    action="store_true",
    help="replace outputs that already exist (default: refuse to start)",
  )
  existing.add_argument(
    "--skip-existing",
    action="store_true",
    help="leave out the inputs whose outputs all exist (finish an "
    "interrupted batch)",
  )
  add(
    "--keep-going",
    action="store_true",
    help="after a file fails, go on with the others (exit status 1 at the "
    "end, naming each failure)",
  )
  add("--plot", action="store_true", help="also write <stem>_spectrograms.png")
  add("--no-progress", action="store_true", help="no progress bar")
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  parser = build_parser()
  args = parser.parse_args(argv)
  chunk = args.chunk_seconds or None
  existing = (
    "overwrite"
    if args.force_overwrite
    else "skip"
    if args.skip_existing
    else "refuse"
  )
  try:
    check_chunk_flags(chunk, args.overlap_seconds)
    files = collect_inputs(args.inputs)
    todo = plan_outputs(
      files, args.output_dir, plot=args.plot, existing=existing
    )
  except InputError as e:
    parser.exit(2, f"error: {e}\n")
  if not todo:
    print(
      f"nothing to do: the outputs of all {len(files)} inputs exist in "
      f"{args.output_dir}",
      file=sys.stderr,
    )
    return 0
  if len(todo) < len(files):
    print(
      f"skipping {len(files) - len(todo)} of {len(files)} inputs whose "
      "outputs exist",
      file=sys.stderr,
    )

  # Heavy imports only once the inputs are known to be good.
  from examples.separation import cli  # pylint: disable=import-outside-toplevel
  from examples.separation import separator as separator_lib  # pylint: disable=import-outside-toplevel

  try:
    separator = separator_lib.load_separator(
      args.model, chunk_seconds=chunk, overlap_seconds=args.overlap_seconds
    )
  except separator_lib.ModelError as e:
    parser.exit(2, f"error: --model: {e}\n")
  try:
    output_dir = cli.check_workdir(args.output_dir)
  except ValueError as e:
    parser.exit(
      2, "error: " + str(e).replace("--workdir", "--output-dir", 1) + "\n"
    )

  from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel

  bar = tqdm(
    todo,
    desc="separate",
    unit="file",
    dynamic_ncols=True,
    disable=args.no_progress,
  )
  failed = 0
  for path in bar:
    try:
      written = separate_file(separator, path, output_dir, plot=args.plot)
    except KeyboardInterrupt:
      bar.close()
      print(
        f"interrupted while separating {path}; its outputs were not written",
        file=sys.stderr,
      )
      return 130
    except Exception as e:  # pylint: disable=broad-except
      # An InputError names the path itself.
      message = _one_line(e) or type(e).__name__
      if not isinstance(e, InputError):
        message = f"{path}: {message}"
      if not args.keep_going:
        bar.close()
        print(f"error: {message}", file=sys.stderr)
        return 1
      bar.write(f"error: {message}", file=sys.stderr)
      failed += 1
      continue
    for out in written:
      bar.write(str(out), file=sys.stdout)
  bar.close()
  if failed:
    print(
      f"error: {failed} of {len(todo)} inputs failed (named above); the "
      "others were separated",
      file=sys.stderr,
    )
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
