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

"""Evaluate a trained separator on a dataset.

::

  python -m examples.separation.evaluate [--model DIR]
      --data {synthetic,wsj0-2mix,libri2mix} [--data-root ROOT]
      [--split test] [--num N] [--sample-rate HZ] --workdir OUT
      [--extra-metrics auto|none|stoi,pesq] [--no-sdr] [--num-wavs 3]
      [--chunk-seconds S [--overlap-seconds S]] [--seed S] [--pairing P]
      [--estimates DIR] [--no-progress]

Writes

* ``OUT/per_utterance.csv``: one row per utterance: ``name``, ``seconds``,
  SI-SDR, SI-SDRi, SDR, SDRi, SIR, SAR (dB; the mean over sources and each
  source, ``si_sdr_db``, ``si_sdr_s1_db``, ...), the mixture's own scores
  (``input_*``) and, when installed, STOI and narrow-band PESQ;
* ``OUT/summary.json``: mean, median and 10th percentile of each metric
  (``si_sdr_db``, ``si_sdr_db_median``, ``si_sdr_db_p10``, ``si_sdri_db``,
  ``sdr_db``, ``sdri_db``, ...), ``num_utterances``, and descriptions of the
  model, the data and the metrics;
* ``OUT/examples/``: the first ``--num-wavs`` utterances' mixture, estimates
  and references as wav files (replacing an earlier evaluation's there).

``--estimates DIR`` scores precomputed estimates instead of a model's (any
system's, e.g. asteroid's): ``DIR/<name>_s1.wav`` and ``DIR/<name>_s2.wav``
for each mixture ``<name>.wav`` of the split, in any order, as
``python -m examples.separation.separate SPLIT/mix --output-dir DIR``
writes them; every file is checked to exist before scoring starts.

Metrics are those of ``evaluation.py`` (the code path of training's own test
evaluation): SI-SDR(i) with the PIT permutation, BSS-Eval v3 SDR from
``fast_bss_eval``, STOI from ``pystoi`` and PESQ from ``pesq`` (``'nb'``).
The model separates each utterance whole unless ``--chunk-seconds`` is given
(then as ``separate`` does: overlapping chunks, aligned and crossfaded -- run
both ways to measure what the seams cost).

Synthetic data uses the model's own training seed and pairing by default, so
for a model trained on synthetic data ``--data synthetic --split test``
scores the test set it was tested on at the end of training (``--seed`` /
``--pairing`` change it; a model trained on files was tested on its
``--data-root``'s test split instead). Real datasets are read at 8 kHz
(``data.py`` checks the sample rate) unless ``--sample-rate`` says otherwise
(``--sample-rate 16000``: Libri2Mix's or wsj0-2mix's ``wav16k``); the model
runs at its 8 kHz either way and its estimates are resampled to the data's
rate and scored there, against the full-band references (so a 16 kHz score
also counts the 4-8 kHz band the model cannot return).

Errors (bad flags, a missing ``--data-root``, an unwritable ``--workdir``, a
``--model`` that is not a model directory, a missing metric library) exit
with status 2, dataset problems (including an utterance whose audio holds
NaN or infinity, named) with status 1, each as one ``error:`` line; nothing
is written then. An utterance that BSS-Eval cannot score (e.g. a silent
reference) gets NaN SDR / SIR / SAR, which the summary leaves out and counts
(``sdr_db_num_nan``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Sequence

from examples.separation import cli
from examples.separation import configs

SUMMARY_FILE = "summary.json"
CSV_FILE = "per_utterance.csv"


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
    prog="python -m examples.separation.evaluate",
    description="Evaluate a trained separator (SI-SDR, SDR, STOI, PESQ) "
    "on a dataset.",
  )
  add = parser.add_argument
  add(
    "--model",
    default=None,
    metavar="DIR",
    help="model directory: exported or a training workdir (default: the "
    "shipped pretrained model)",
  )
  add("--data", required=True, choices=configs.DATASETS)
  add("--data-root", default=None, help="root of wsj0-2mix / Libri2Mix")
  add(
    "--split",
    default="test",
    help="train, validation or test (or tr/cv/tt, dev...)",
  )
  add(
    "--num",
    type=cli.positive_int,
    default=None,
    help="utterances (synthetic: generated, default the model's "
    "num_test_examples; real data: the first N, default all)",
  )
  add(
    "--sample-rate",
    type=cli.positive_int,
    default=None,
    metavar="HZ",
    help="real data: the rate of the files to read, e.g. 16000 for "
    "Libri2Mix's wav16k (the model runs at 8 kHz; its estimates are "
    "resampled to this rate and scored there; default 8000)",
  )
  add("--workdir", required=True, help="output directory")
  add(
    "--extra-metrics",
    default="auto",
    help="'auto' (STOI / PESQ when pystoi / pesq are installed), 'none', "
    "or a comma-separated list of stoi, pesq",
  )
  add(
    "--no-sdr",
    action="store_true",
    help="skip BSS-Eval SDR / SIR / SAR (SI-SDR only)",
  )
  add(
    "--num-wavs",
    type=int,
    default=3,
    help="separated examples to write as wav (default 3)",
  )
  add(
    "--chunk-seconds",
    type=cli.positive_float,
    metavar="S",
    default=None,
    help="separate in overlapping chunks of this length (default: whole "
    "utterances)",
  )
  add(
    "--overlap-seconds",
    type=cli.positive_float,
    metavar="S",
    default=None,
    help="overlap of chunks, with --chunk-seconds (default 2)",
  )
  add(
    "--seed",
    type=int,
    default=None,
    help="synthetic data seed (default: the model's training seed)",
  )
  add(
    "--pairing",
    default=None,
    choices=configs.PAIRINGS,
    help="synthetic talker pairing (default: the model's)",
  )
  add(
    "--estimates",
    default=None,
    metavar="DIR",
    help="score precomputed estimates instead of running a model: "
    "DIR/<name>_s1.wav and DIR/<name>_s2.wav for each mixture <name>.wav "
    "(what `separate` writes), at the data's rate and length",
  )
  add("--no-progress", action="store_true", help="no progress bar")
  return parser


def _extra_metrics(text: str) -> tuple[str, ...]:
  from examples.separation import evaluation  # pylint: disable=import-outside-toplevel

  if text == "auto":
    return evaluation.available_extra_metrics()
  if text == "none":
    return ()
  names = tuple(n.strip() for n in text.split(",") if n.strip())
  for name in names:
    if name not in evaluation.EXTRA_METRICS:
      raise ValueError(
        f"--extra-metrics: unknown metric {name!r}; expected "
        f"auto, none or some of {evaluation.EXTRA_METRICS}"
      )
  return names


def make_dataset(
  config: configs.Config,
  data: str,
  data_root: str | None,
  split: str,
  num: int | None,
  seed: int | None,
  pairing: str | None,
  sample_rate: int | None = None,
):
  """The evaluation dataset.

  Synthetic data is built like training builds its own:
  ``train.make_dataset`` on the model's configuration with the data fields
  replaced, so that it has the model's source classes, seed and pairing
  unless overridden. A real split is read whole, or its first ``num``
  utterances (not the model's ``num_test_examples``), at ``sample_rate``
  (default 8 kHz; e.g. 16000 reads Libri2Mix's ``wav16k``).
  """
  from examples.separation import data as data_lib  # pylint: disable=import-outside-toplevel
  from examples.separation import train  # pylint: disable=import-outside-toplevel

  split = data_lib.canonical_split(split)
  overrides = {"data": data, "data_root": data_root, "max_eval_examples": num}
  if seed is not None:
    overrides["seed"] = seed
  if pairing is not None:
    overrides["pairing"] = pairing
  if num is not None:
    overrides[
      "num_test_examples" if split != "validation" else "num_val_examples"
    ] = num
  eval_config = dataclasses.replace(config, **overrides)
  if split == "train" or data != "synthetic":
    # train.make_dataset has no size for the endless training stream, and
    # scores only the first num_test_examples utterances of real data;
    # here a real split is read whole unless --num says otherwise.
    return data_lib.make_dataset(
      data,
      data_root,
      split,
      seed=eval_config.seed,
      num_examples=num or (200 if data == "synthetic" else None),
      synthetic=data_lib.SyntheticConfig(pairing=eval_config.pairing),
      sample_rate=sample_rate or data_lib.SAMPLE_RATE,
    )
  return train.make_dataset(eval_config, split)


def describe_data(
  dataset, data: str, data_root: str | None, config: configs.Config
) -> dict:
  """The ``data`` entry of ``summary.json``."""
  desc = {
    "name": data,
    "split": dataset.split,
    "num_utterances": dataset.num_examples,
    "sample_rate": dataset.sample_rate,
  }
  if data == "synthetic":
    desc.update(seed=config.seed, pairing=config.pairing)
  else:
    desc["root"] = os.path.abspath(data_root)
  return desc


def main(argv: Sequence[str] | None = None) -> int:
  parser = build_parser()
  args = parser.parse_args(argv)
  try:
    extra = _extra_metrics(args.extra_metrics)
    if args.data != "synthetic":
      if args.data_root is None:
        raise ValueError(f"--data {args.data} needs --data-root ROOT")
      cli.check_directory("--data-root", args.data_root)
    if args.estimates is not None:
      if args.data == "synthetic":
        raise ValueError(
          "--estimates scores files of real data (--data wsj0-2mix or "
          "libri2mix), not synthetic mixtures"
        )
      used = [
        flag
        for flag, value in (
          ("--model", args.model),
          ("--chunk-seconds", args.chunk_seconds),
          ("--seed", args.seed),
          ("--pairing", args.pairing),
        )
        if value is not None
      ]
      if used:
        raise ValueError(
          f"--estimates scores files; {', '.join(used)} would not be used"
        )
      cli.check_directory("--estimates", args.estimates)
    if args.sample_rate is not None and args.data == "synthetic":
      raise ValueError(
        "--sample-rate is for real data; synthetic mixtures are 8 kHz"
      )
    if args.num_wavs < 0:
      raise ValueError(f"--num-wavs must be >= 0, got {args.num_wavs}")
    if args.overlap_seconds is not None and args.chunk_seconds is None:
      raise ValueError(
        "--overlap-seconds needs --chunk-seconds (without it every "
        "utterance is separated whole)"
      )
    from examples.separation import data as data_lib  # pylint: disable=import-outside-toplevel
    from examples.separation import separate  # pylint: disable=import-outside-toplevel
    from examples.separation import separator as separator_lib  # pylint: disable=import-outside-toplevel

    overlap = (
      args.overlap_seconds
      if args.overlap_seconds is not None
      else separator_lib.DEFAULT_OVERLAP_SECONDS
    )
    if args.chunk_seconds is not None:
      separate.check_chunk_flags(args.chunk_seconds, overlap)
    data_lib.canonical_split(args.split)
  except ValueError as e:
    parser.exit(2, f"error: {e}\n")

  from examples.separation import evaluation  # pylint: disable=import-outside-toplevel

  try:
    evaluation.check_metrics(extra, sdr=not args.no_sdr)
  except evaluation.MissingMetricError as e:
    parser.exit(2, f"error: {e}\n")
  separator = None
  if args.estimates is None:
    try:
      separator = separator_lib.load_separator(
        args.model, chunk_seconds=args.chunk_seconds, overlap_seconds=overlap
      )
    except separator_lib.ModelError as e:
      parser.exit(2, f"error: --model: {e}\n")
    except ValueError as e:  # Bad chunk / overlap.
      parser.exit(2, f"error: {e}\n")
  config = separator.config if separator is not None else configs.Config()
  try:
    workdir = cli.check_workdir(args.workdir)
  except ValueError as e:
    parser.exit(2, f"error: {e}\n")

  try:
    dataset = make_dataset(
      config,
      args.data,
      args.data_root,
      args.split,
      args.num,
      args.seed,
      args.pairing,
      args.sample_rate,
    )
  except data_lib.DatasetError as e:
    hint = (
      " (pass --sample-rate HZ to read files at another rate)"
      if "sample rate" in str(e) and args.sample_rate is None
      else ""
    )
    print(f"error: {e}{hint}", file=sys.stderr)
    return 1
  rate = dataset.sample_rate
  if args.estimates is not None:
    missing = [
      path
      for utt in getattr(dataset, "utterances", ())
      for path in evaluation.estimate_paths(args.estimates, utt.name)
      if not path.is_file()
    ]
    if missing:
      more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
      parser.exit(
        2,
        f"error: --estimates: {missing[0]}{more} missing (expected "
        "<name>_s1.wav and <name>_s2.wav for each mixture)\n",
      )

    def separate_fn(mix, name):
      return evaluation.read_estimates(args.estimates, name, rate, len(mix))

  else:
    assert separator is not None

    def separate_fn(mix, name):
      del name
      return separator(mix, rate)

  t0 = time.time()
  try:
    result = evaluation.evaluate_dataset(
      separate_fn,
      dataset,
      by_name=True,
      sdr=not args.no_sdr,
      extra_metrics=extra,
      keep=args.num_wavs,
      progress=not args.no_progress,
    )
  except (
    data_lib.DatasetError,
    evaluation.NonFiniteOutputError,
    evaluation.UtteranceError,
  ) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    print("interrupted; nothing written", file=sys.stderr)
    return 130
  eval_config = dataclasses.replace(
    config,
    **({"seed": args.seed} if args.seed is not None else {}),
    **({"pairing": args.pairing} if args.pairing is not None else {}),
  )
  summary = {
    **result.summary,
    "model": separator.describe()
    if separator is not None
    else {"estimates": os.path.abspath(args.estimates)},
    "data": describe_data(dataset, args.data, args.data_root, eval_config),
    "metrics": {
      "si_sdr": "SI-SDR (zero-mean, PIT over sources), "
      "examples.separation.metrics",
      "sdr": None
      if args.no_sdr
      else (
        "BSS-Eval v3 SDR/SIR/SAR, 512-tap filter, fast_bss_eval "
        "(numpy), BSS-Eval's permutation"
      ),
      "stoi": "pystoi (classic STOI)" if "stoi" in extra else None,
      "pesq": "pesq, ITU-T P.862 narrow-band ('nb')"
      if "pesq" in extra
      else None,
      "chunk_seconds": args.chunk_seconds,
      "overlap_seconds": overlap if args.chunk_seconds else None,
    },
    "seconds": time.time() - t0,
    "machine": cli.machine_description(),
  }
  evaluation.write_csv(result.rows, workdir / CSV_FILE)
  if result.examples:
    # An earlier evaluation's examples in this workdir are replaced.
    evaluation.write_examples(
      result.examples, workdir / "examples", rate, replace=True
    )
  evaluation.write_json(summary, workdir / SUMMARY_FILE)
  keys = (
    "num_utterances",
    "si_sdr_db",
    "si_sdri_db",
    "sdr_db",
    "sdri_db",
    "stoi",
    "pesq",
  )
  print(
    " ".join(
      f"{k}={summary[k]:.3f}"
      if isinstance(summary[k], float)
      else f"{k}={summary[k]}"
      for k in keys
      if k in summary
    )
  )
  return 0


if __name__ == "__main__":
  sys.exit(main())
