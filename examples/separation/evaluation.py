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

"""Per-utterance evaluation of a separator: SI-SDR, BSS-Eval, STOI, PESQ.

One code path for every evaluation of the example: ``python -m
examples.separation.evaluate`` (a trained model on any dataset) and the test
evaluation at the end of training both call :func:`evaluate_dataset` with a
``separate_fn(mix [L]) -> estimates [S, L]``.

Metrics of one utterance (sources ``[S, L]``, estimates in any order):

* SI-SDR and SI-SDRi (``metrics.separation_metrics``): the permutation that
  maximises the mean SI-SDR (PIT); the estimates are reordered by it for every
  other metric and for the example wav files.
* BSS-Eval v3 SDR / SIR / SAR with a 512-tap distortion filter, from
  ``fast_bss_eval`` (numpy backend; it agreed with ``mir_eval.separation.
  bss_eval_sources`` -- deprecated since mir_eval 0.8 -- to 1e-12 dB on
  random 2-source signals, and is ~5x faster), with BSS-Eval's own
  permutation (the one maximising the mean SIR, as mir_eval and asteroid
  report it; for separated outputs it is the PIT one). SDRi is the SDR minus
  the SDR of the mixture used as every source's estimate. (fast_bss_eval
  0.1.4's ``compute_permutation=False`` path fails on numpy 2; the default
  path is used.)
* Optionally STOI (``pystoi``) and narrow-band PESQ (``pesq``, ITU-T P.862,
  ``'nb'`` mode, 8 or 16 kHz), with the mixture's score as the input score
  (``stoii`` / ``pesqi`` are the improvements), as asteroid reports them.
  A PESQ that the library refuses (e.g. no utterance detected) is NaN and left
  out of the summary statistics (the summary counts them).

Per-utterance rows have ``name``, ``seconds``, and for each metric ``m``
(``si_sdr_db``, ``si_sdri_db``, ``sdr_db``, ``sdri_db``, ``sir_db``,
``sar_db``, ``stoi``, ``stoii``, ``pesq``, ``pesqi``) the mean over sources
``m`` and the per-source values (``si_sdr_s1_db``, ``stoi_s1``, ...), plus the
mixture's own scores (``input_si_sdr_db``, ``input_sdr_db``, ...). The summary
has, for each metric, its mean ``m``, median ``m_median`` and 10th percentile
``m_p10`` over utterances, and ``num_utterances``.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import math
import os
import pathlib
import tempfile
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

SeparateFn = Callable[[np.ndarray], np.ndarray]

EXTRA_METRICS = ("stoi", "pesq")
BSS_EVAL_FILTER_LENGTH = 512
PAD_MULTIPLE = 2048

# Metrics with a mean/median/p10 in the summary, in CSV column order.
_SUMMARY_METRICS = (
  "si_sdr_db",
  "si_sdri_db",
  "sdr_db",
  "sdri_db",
  "sir_db",
  "sar_db",
  "stoi",
  "stoii",
  "pesq",
  "pesqi",
)


class NonFiniteOutputError(RuntimeError):
  """A separator returned NaN or infinity for an utterance."""


class MissingMetricError(RuntimeError):
  """A requested metric's library is not installed."""


class UtteranceError(ValueError):
  """An utterance that cannot be scored (the message names it)."""


# ----------------------------------------------------------------------------
# Separate functions.
# ----------------------------------------------------------------------------


def utterance_fn(
  batch_fn: Callable[[np.ndarray], Any], pad_multiple: int = PAD_MULTIPLE
) -> SeparateFn:
  """A per-utterance ``separate_fn`` from a batched one.

  Args:
    batch_fn: ``fn(mix [1, L']) -> estimates [1, S, L']`` (e.g. a jitted model
      apply plus ``inference.estimate_sources``).
    pad_multiple: the mixture is zero-padded at the end to a multiple of this
      many samples before the call, so that a jitted ``batch_fn`` compiles for
      few distinct lengths; the estimates are cut back to the input length.

  Returns:
    ``fn(mix [L]) -> float32 estimates [S, L]`` (numpy).
  """

  def separate(mix: np.ndarray) -> np.ndarray:
    mix = np.asarray(mix, np.float32)
    length = mix.shape[-1]
    padded = max(pad_multiple, -(-length // pad_multiple) * pad_multiple)
    mix_in = np.zeros((1, padded), np.float32)
    mix_in[0, :length] = mix
    return np.asarray(batch_fn(mix_in), np.float32)[0, :, :length]

  return separate


# ----------------------------------------------------------------------------
# Metrics of one utterance.
# ----------------------------------------------------------------------------


def available_extra_metrics() -> tuple[str, ...]:
  """The optional metrics whose libraries are installed (``stoi``, ``pesq``)."""
  modules = {"stoi": "pystoi", "pesq": "pesq"}
  return tuple(
    m for m in EXTRA_METRICS if importlib.util.find_spec(modules[m]) is not None
  )


def check_metrics(extra_metrics: Sequence[str], sdr: bool = True) -> None:
  """Raises ``MissingMetricError`` / ``ValueError`` for unusable metrics."""
  for name in extra_metrics:
    if name not in EXTRA_METRICS:
      raise ValueError(
        f"unknown metric {name!r}; expected one of {EXTRA_METRICS}"
      )
  missing = [m for m in extra_metrics if m not in available_extra_metrics()]
  if sdr and importlib.util.find_spec("fast_bss_eval") is None:
    missing.insert(0, "sdr")
  if missing:
    packages = {"sdr": "fast_bss_eval", "stoi": "pystoi", "pesq": "pesq"}
    raise MissingMetricError(
      "metric(s) "
      + ", ".join(missing)
      + " need "
      + " ".join(packages[m] for m in missing)
      + " (pip install "
      + " ".join(packages[m] for m in missing)
      + ")"
    )


def bss_eval(
  estimates: np.ndarray,
  references: np.ndarray,
  mixture: np.ndarray,
  filter_length: int = BSS_EVAL_FILTER_LENGTH,
) -> dict:
  """BSS-Eval v3 SDR, SIR, SAR and SDRi of one utterance (``fast_bss_eval``).

  Args:
    estimates: ``[S, L]``, any order (BSS-Eval picks the permutation that
      maximises the mean SIR).
    references: ``[S, L]`` true sources.
    mixture: ``[L]``, scored as every source's estimate for SDRi.
    filter_length: distortion filter length (512 taps, as mir_eval).

  Returns:
    float64 ``[S]`` arrays ``sdr``, ``sir``, ``sar``, ``input_sdr`` and
    ``sdri``, ordered like the references, and ``permutation`` (int ``[S]``:
    the estimate matched to each reference). All NaN (identity
    permutation) where BSS-Eval is undefined, e.g. for a silent reference.
  """
  import fast_bss_eval  # pylint: disable=import-outside-toplevel

  # fast_bss_eval 0.1.4's compute_permutation=False path breaks on numpy 2's
  # np.linalg.solve (stacked right-hand sides); the default path works.
  ref = np.asarray(references, np.float64)
  est = np.asarray(estimates, np.float64)
  mix = np.broadcast_to(np.asarray(mixture, np.float64), ref.shape).copy()
  try:
    with np.errstate(divide="ignore", invalid="ignore"):
      sdr, sir, sar, perm = fast_bss_eval.bss_eval_sources(
        ref, est, filter_length=filter_length
      )
      input_sdr = fast_bss_eval.sdr(ref, mix, filter_length=filter_length)
  except np.linalg.LinAlgError:
    # A silent (or otherwise degenerate) reference: BSS-Eval is undefined.
    nan = np.full(ref.shape[0], np.nan)
    sdr, sir, sar, input_sdr = nan, nan.copy(), nan.copy(), nan.copy()
    perm = np.arange(ref.shape[0])
  return {
    "sdr": sdr,
    "sir": sir,
    "sar": sar,
    "input_sdr": input_sdr,
    "sdri": sdr - input_sdr,
    "permutation": np.asarray(perm),
  }


def _stoi(
  reference: np.ndarray, estimate: np.ndarray, sample_rate: int
) -> float:
  from pystoi import stoi  # pylint: disable=import-outside-toplevel

  return float(stoi(reference, estimate, sample_rate, extended=False))


def _pesq(
  reference: np.ndarray, estimate: np.ndarray, sample_rate: int
) -> float:
  """Narrow-band PESQ; NaN where the library refuses the signal."""
  if sample_rate not in (8000, 16000):
    return math.nan
  from pesq import pesq  # pylint: disable=import-outside-toplevel

  try:
    return float(pesq(sample_rate, reference, estimate, "nb"))
  except Exception:  # pylint: disable=broad-except
    # pesq raises NoUtterancesError / BufferTooShortError (and, in some
    # versions, plain errors) for signals it cannot score.
    return math.nan


def _per_source(
  row: dict, name: str, values: np.ndarray, unit: str = ""
) -> None:
  """Adds ``name{unit}`` (mean) and ``name_s{j}{unit}`` columns."""
  values = np.asarray(values, np.float64)
  row[f"{name}{unit}"] = _mean(values)
  for j, v in enumerate(values):
    row[f"{name}_s{j + 1}{unit}"] = float(v)


def _mean(values: np.ndarray) -> float:
  values = np.asarray(values, np.float64)
  return float(np.mean(values)) if np.all(np.isfinite(values)) else math.nan


def evaluate_utterance(
  estimates: np.ndarray,
  references: np.ndarray,
  mixture: np.ndarray,
  sample_rate: int,
  *,
  sdr: bool = True,
  extra_metrics: Sequence[str] = (),
) -> tuple[dict, np.ndarray]:
  """Every metric of one utterance.

  Args:
    estimates: ``[S, L]`` separated sources, any order.
    references: ``[S, L]`` true sources.
    mixture: ``[L]``.
    sample_rate: of the signals (for STOI / PESQ).
    sdr: compute BSS-Eval SDR / SIR / SAR / SDRi (``fast_bss_eval``).
    extra_metrics: any of ``'stoi'``, ``'pesq'``.

  Returns:
    The row (a flat dict of floats, see the module docstring) and the
    estimates reordered to match the references (by SI-SDR).
  """
  # metrics.py imports jax; keep this module light for the command lines.
  from examples.separation import metrics as metrics_lib  # pylint: disable=import-outside-toplevel

  estimates = np.asarray(estimates, np.float32)
  references = np.asarray(references, np.float32)
  mixture = np.asarray(mixture, np.float32)
  result = metrics_lib.separation_metrics(estimates, references, mixture)
  aligned = estimates[result["permutation"]]
  row = {"seconds": references.shape[-1] / sample_rate}
  _per_source(row, "si_sdr", result["si_sdr"], "_db")
  _per_source(row, "si_sdri", result["si_sdri"], "_db")
  _per_source(row, "input_si_sdr", result["input_si_sdr"], "_db")
  if sdr:
    bss = bss_eval(aligned, references, mixture)
    for key in ("sdr", "sdri", "sir", "sar", "input_sdr"):
      _per_source(row, key, bss[key], "_db")
  for name, fn in (("stoi", _stoi), ("pesq", _pesq)):
    if name not in extra_metrics:
      continue
    ref64 = references.astype(np.float64)
    scores = np.array(
      [
        fn(r, e, sample_rate)
        for r, e in zip(ref64, aligned.astype(np.float64), strict=True)
      ]
    )
    inputs = np.array(
      [fn(r, mixture.astype(np.float64), sample_rate) for r in ref64]
    )
    _per_source(row, name, scores)
    _per_source(row, f"input_{name}", inputs)
    _per_source(row, f"{name}i", scores - inputs)
  return row, aligned


# ----------------------------------------------------------------------------
# A dataset.
# ----------------------------------------------------------------------------


@dataclasses.dataclass
class EvaluationResult:
  """What :func:`evaluate_dataset` returns.

  Attributes:
    rows: one dict per utterance (``name`` plus the metrics).
    summary: mean / median / 10th percentile of each metric and
      ``num_utterances``.
    examples: for the first ``keep`` utterances, tuples ``(name, mix,
      estimates, references)`` with the estimates in the references' order.
  """

  rows: list[dict]
  summary: dict
  examples: list[tuple]

  def column(self, key: str) -> list[float]:
    """One metric over utterances, e.g. ``column('si_sdri_db')``."""
    return [row[key] for row in self.rows]


def summarize(rows: Sequence[dict]) -> dict:
  """Mean, median and 10th percentile of each metric over ``rows``.

  NaN values (e.g. a PESQ the library refused) are left out; a metric with
  any gets ``{metric}_num_nan``.
  """
  summary: dict[str, Any] = {"num_utterances": len(rows)}
  keys = [k for k in _SUMMARY_METRICS if rows and k in rows[0]]
  for key in keys:
    values = np.array([row[key] for row in rows], np.float64)
    finite = values[np.isfinite(values)]
    if finite.size:
      summary[key] = float(np.mean(finite))
      summary[f"{key}_median"] = float(np.median(finite))
      summary[f"{key}_p10"] = float(np.percentile(finite, 10))
    else:
      summary[key] = summary[f"{key}_median"] = summary[f"{key}_p10"] = None
    if finite.size < values.size:
      summary[f"{key}_num_nan"] = int(values.size - finite.size)
  return summary


def _progress(total: int, enabled: bool, desc: str):
  try:
    from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel
  except ImportError:  # pragma: no cover
    return None
  return tqdm(
    total=total, disable=not enabled, dynamic_ncols=True, desc=desc, unit="utt"
  )


def estimate_paths(
  directory: os.PathLike, name: str, num_sources: int = 2
) -> list[pathlib.Path]:
  """``DIR/<name>_s1.wav``, ``DIR/<name>_s2.wav``: where ``separate`` writes
  the estimates of ``<name>.wav``."""
  return [
    pathlib.Path(directory) / f"{name}_s{j + 1}.wav" for j in range(num_sources)
  ]


def read_estimates(
  directory: os.PathLike,
  name: str,
  sample_rate: int,
  length: int,
  num_sources: int = 2,
) -> np.ndarray:
  """Reads an utterance's precomputed estimates (``estimate_paths``).

  Returns:
    float32 ``[num_sources, length]``.

  Raises:
    UtteranceError: a file is missing or unreadable, not mono, at another
      rate or of another length than the mixture (the message names it).
  """
  import soundfile as sf  # pylint: disable=import-outside-toplevel

  out = np.zeros((num_sources, length), np.float32)
  for j, path in enumerate(estimate_paths(directory, name, num_sources)):
    try:
      audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # pylint: disable=broad-except
      # soundfile raises LibsndfileError, RuntimeError or TypeError.
      reason = " ".join(str(e).split())
      raise UtteranceError(
        f"{path}: cannot read the estimate ({reason})"
      ) from None
    if audio.shape[1] != 1:
      raise UtteranceError(f"{path}: {audio.shape[1]} channels, expected mono")
    if rate != sample_rate or audio.shape[0] != length:
      raise UtteranceError(
        f"{path}: {audio.shape[0]} samples at {rate} Hz, expected the "
        f"mixture's {length} at {sample_rate} Hz"
      )
    out[j] = audio[:, 0]
  return out


def evaluate_dataset(
  separate_fn: Callable[..., np.ndarray],
  dataset,
  *,
  by_name: bool = False,
  sdr: bool = True,
  extra_metrics: Sequence[str] = (),
  keep: int = 0,
  progress: bool = False,
  desc: str = "evaluate",
) -> EvaluationResult:
  """Separates and scores every utterance of ``dataset.examples()``.

  Args:
    separate_fn: ``fn(mix float32 [L]) -> estimates [S, L]`` at the dataset's
      sample rate (e.g. ``utterance_fn(...)`` or a ``separator.Separator``
      wrapped as ``lambda mix: separator(mix, rate)``).
    by_name: call ``separate_fn(mix, name)`` instead (e.g. to read
      precomputed estimates with ``read_estimates``).
    dataset: a ``data.SeparationDataset`` (``examples()`` yields dicts with
      ``mix`` [L], ``sources`` [S, L] and ``name``; ``sample_rate`` and
      ``num_examples`` are read when present).
    sdr: compute BSS-Eval SDR / SDRi / SIR / SAR (needs ``fast_bss_eval``).
      Off for quick validation during training.
    extra_metrics: any of ``'stoi'``, ``'pesq'`` (needs ``pystoi`` /
      ``pesq``); ``available_extra_metrics()`` lists the installed ones.
    keep: return the first ``keep`` utterances' signals for listening.
    progress: show a progress bar.
    desc: the progress bar's label.

  Returns:
    An :class:`EvaluationResult`.

  Raises:
    NonFiniteOutputError: ``separate_fn`` returned NaN / inf (names the
      utterance).
    UtteranceError: an utterance's mixture or references hold NaN / inf
      (names the utterance).
    MissingMetricError: a requested metric's library is not installed.
  """
  check_metrics(extra_metrics, sdr)
  sample_rate = int(getattr(dataset, "sample_rate", 8000))
  rows, kept = [], []
  bar = _progress(getattr(dataset, "num_examples", None), progress, desc)
  try:
    for index, ex in enumerate(dataset.examples()):
      name = str(ex.get("name", f"utt{index:05d}"))
      mix = np.asarray(ex["mix"], np.float32)
      if not (np.all(np.isfinite(mix)) and np.all(np.isfinite(ex["sources"]))):
        raise UtteranceError(
          f"utterance {name}: the mixture or a reference holds NaN or infinity"
        )
      estimates = np.asarray(
        separate_fn(mix, name) if by_name else separate_fn(mix), np.float32
      )
      if not np.all(np.isfinite(estimates)):
        raise NonFiniteOutputError(
          f"non-finite separated signal for utterance {name}"
        )
      row, aligned = evaluate_utterance(
        estimates,
        ex["sources"],
        mix,
        sample_rate,
        sdr=sdr,
        extra_metrics=extra_metrics,
      )
      rows.append({"name": name, **row})
      if len(kept) < keep:
        kept.append((name, mix, aligned, np.asarray(ex["sources"])))
      if bar is not None:
        bar.update(1)
        mean = np.mean([r["si_sdri_db"] for r in rows])
        bar.set_postfix({"si_sdri": f"{mean:.2f}"}, refresh=False)
  finally:
    if bar is not None:
      bar.close()
  return EvaluationResult(rows=rows, summary=summarize(rows), examples=kept)


# ----------------------------------------------------------------------------
# Files (written atomically: a temporary file renamed into place).
# ----------------------------------------------------------------------------


def atomic_path(path: os.PathLike) -> tuple[pathlib.Path, pathlib.Path]:
  """``(temporary, final)`` paths: write the first, then ``os.replace``."""
  final = pathlib.Path(path)
  fd, tmp = tempfile.mkstemp(
    dir=final.parent, prefix=f".{final.name}.", suffix=".tmp" + final.suffix
  )
  os.close(fd)
  umask = os.umask(0o022)
  os.umask(umask)
  os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 -> the usual permissions.
  return pathlib.Path(tmp), final


def _write_text(path: os.PathLike, text: str) -> None:
  tmp, final = atomic_path(path)
  try:
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, final)
  finally:
    tmp.unlink(missing_ok=True)


def _csv_value(value: Any) -> Any:
  if isinstance(value, float):
    return "nan" if math.isnan(value) else f"{value:.4f}"
  return value


def write_csv(rows: Sequence[dict], path: os.PathLike) -> None:
  """The per-utterance rows as CSV (columns: the union, in first-seen order)."""
  columns: list[str] = []
  for row in rows:
    columns += [k for k in row if k not in columns]
  tmp, final = atomic_path(path)
  try:
    with open(tmp, "w", newline="", encoding="utf-8") as f:
      writer = csv.DictWriter(f, fieldnames=columns)
      writer.writeheader()
      for row in rows:
        writer.writerow({k: _csv_value(v) for k, v in row.items()})
    os.replace(tmp, final)
  finally:
    tmp.unlink(missing_ok=True)


def write_jsonl(records: Iterable[dict], path: os.PathLike) -> None:
  """One JSON record per line, written atomically."""
  _write_text(path, "".join(json.dumps(r) + "\n" for r in records))


def write_json(obj: Any, path: os.PathLike) -> None:
  """``obj`` as indented JSON (NaN written as null)."""

  def clean(x):
    if isinstance(x, float) and not math.isfinite(x):
      return None
    if isinstance(x, dict):
      return {k: clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
      return [clean(v) for v in x]
    return x

  _write_text(path, json.dumps(clean(obj), indent=2) + "\n")


def write_wav(
  path: os.PathLike, audio: np.ndarray, sample_rate: int, subtype: str = "FLOAT"
) -> None:
  """A mono or ``[L, C]`` wav file, written atomically."""
  import soundfile as sf  # pylint: disable=import-outside-toplevel

  tmp, final = atomic_path(path)
  try:
    sf.write(
      tmp,
      np.asarray(audio, np.float32),
      sample_rate,
      subtype=subtype,
      format="WAV",
    )
    os.replace(tmp, final)
  finally:
    tmp.unlink(missing_ok=True)


_EXAMPLE_PATTERNS = (
  "*_mix.wav",
  "*_s[0-9]_estimate.wav",
  "*_s[0-9]_reference.wav",
)


def write_examples(
  examples: Iterable[tuple],
  directory: os.PathLike,
  sample_rate: int,
  *,
  replace: bool = False,
) -> list[pathlib.Path]:
  """Writes ``(name, mix, estimates, references)`` tuples as wav files.

  ``{name}_mix.wav``, ``{name}_s{j}_estimate.wav`` and
  ``{name}_s{j}_reference.wav`` (estimates in the references' order), each
  peak-normalised to 0.9 (the references with the mixture's gain).

  Args:
    examples: the tuples.
    directory: where the files go (created).
    sample_rate: of the signals.
    replace: first delete the files of this naming already in
      ``directory`` (an earlier run's examples; other files are kept).

  Returns:
    The paths written.
  """
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  if replace:
    for pattern in _EXAMPLE_PATTERNS:
      for old in directory.glob(pattern):
        old.unlink(missing_ok=True)
  written = []
  for name, mix, estimates, references in examples:
    stem = str(name).replace(os.sep, "_")
    peak = max(float(np.max(np.abs(mix))), 1e-9)
    files = [(f"{stem}_mix.wav", mix / peak * 0.9)]
    for j, (est, ref) in enumerate(zip(estimates, references, strict=True)):
      est_peak = max(float(np.max(np.abs(est))), 1e-9)
      files.append((f"{stem}_s{j + 1}_estimate.wav", est / est_peak * 0.9))
      files.append((f"{stem}_s{j + 1}_reference.wav", ref / peak * 0.9))
    for file_name, audio in files:
      write_wav(directory / file_name, audio, sample_rate, subtype="PCM_16")
      written.append(directory / file_name)
  return written
