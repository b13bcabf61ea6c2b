r"""Robust-separation table: test SI-SDRi percentiles per reweighting alpha.

Tzinis, Bralios & Smaragdis (ICASSP 2021) reweight the batch gradient with
``p(i) ~ exp(alpha * L_i)`` to improve the worst-separated utterances; their
table lists SI-SDRi percentiles for ``alpha`` in {0, 1/15, 1/10, 1/5}. This
script trains one run per ``alpha`` (``--reweight robust``, the tiny preset on
the synthetic data, an SI-SDR-type loss: ``--loss snr`` by default) with
:func:`train.train_and_evaluate`, skipping runs whose ``results.json``
exists, then reads each run's per-utterance test SI-SDRi
(``test_si_sdri_per_utterance_db``) and writes the mean, standard deviation
and percentiles (markdown) to ``WORKDIR/table.md``::

  python -m examples.separation.reweighting_table --workdir /tmp/robust
  python -m examples.separation.reweighting_table --workdir /tmp/q --quick

``--quick`` (a 1 x 16 BLSTM, batch 4, 20 steps, 8 test utterances) checks the
pipeline in about 30 s on a 2-core CPU; its numbers mean nothing. A run
directory that already holds ``results.json`` is reused as is, whatever the
current flags: delete it (or use another ``--workdir``) after changing
``--steps``, ``--loss`` or ``--quick``.
"""

import argparse
import fractions
import json
import math
import pathlib
import sys
from collections.abc import Sequence

import jax
import numpy as np

from examples.separation import cli
from examples.separation import configs
from examples.separation import train

DEFAULT_ALPHAS = "0,1/15,1/10,1/5"
PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)
QUICK = dict(
  num_layers=1,
  hidden=16,
  batch_size=4,
  chunk_frames=50,
  steps=20,
  num_val_examples=2,
  num_test_examples=8,
  history_size=64,
)


def parse_alphas(text: str) -> list[float]:
  """``"0,1/15,0.1"`` -> ``[0.0, 0.0667, 0.1]``; fractions are allowed.

  Raises:
    ValueError: an entry is not a non-negative number.
  """
  try:
    alphas = [float(fractions.Fraction(a.strip())) for a in text.split(",")]
  except (ValueError, ZeroDivisionError):
    raise ValueError(
      f"--alphas must be comma-separated numbers or fractions, got {text!r}"
    ) from None
  if not alphas or min(alphas) < 0:
    raise ValueError(f"--alphas must be >= 0, got {text!r}")
  return alphas


FULL_TEST_EXAMPLES = 300


def run_config(
  alpha: float,
  loss: str = "snr",
  quick: bool = False,
  steps: int | None = None,
  seed: int = 0,
) -> configs.Config:
  """The tiny-preset config of the robust run with this ``alpha``."""
  overrides = dict(
    loss=loss,
    reweight="robust",
    alpha=alpha,
    seed=seed,
    progress=False,
    checkpoint=False,
    # The recorded table was trained on numpy-rendered batches.
    synthetic_renderer="numpy",
  )
  if quick:
    overrides.update(QUICK, num_wav_examples=0)
  else:
    # Percentiles down to 1 % / up to 99 % need a larger test set than the
    # preset's 32 utterances.
    overrides.update(num_test_examples=FULL_TEST_EXAMPLES, num_wav_examples=0)
  if steps is not None:
    overrides["steps"] = steps
  steps = overrides.get("steps", configs.PRESETS["tiny"]["steps"])
  eval_every = configs.PRESETS["tiny"]["eval_every"]
  overrides["eval_every"] = min(eval_every, steps)
  return configs.get_config("tiny", **overrides)


def run_dir(workdir: pathlib.Path, alpha: float) -> pathlib.Path:
  return workdir / f"alpha_{alpha:.4g}"


def train_runs(
  workdir: pathlib.Path,
  alphas: Sequence[float],
  num_devices: int | None = None,
  **kwargs,
) -> dict[float, dict]:
  """Trains the missing runs; returns ``{alpha: results.json dict}``.

  Args:
    workdir: the table's directory (one sub-directory per alpha).
    alphas: the robust-reweighting alphas.
    num_devices: devices per run; default: as many as divide the batch.
    **kwargs: :func:`run_config` arguments (loss, quick, steps, seed).
  """
  plan = {alpha: run_config(alpha, **kwargs) for alpha in alphas}
  # Every run is checked before anything trains: a finished or interrupted
  # run trained with other settings raises train.WorkdirError.
  finished = {
    alpha: train.read_finished(config, run_dir(workdir, alpha))
    for alpha, config in plan.items()
  }
  results = {}
  for alpha, config in plan.items():
    directory = run_dir(workdir, alpha)
    path = directory / "results.json"
    if finished[alpha] is not None:
      print(
        f"alpha={alpha:.4g}: reusing {path} (delete it to retrain)", flush=True
      )
    else:
      print(f"alpha={alpha:.4g}: training in {directory}", flush=True)
      devices = num_devices or math.gcd(config.batch_size, jax.device_count())
      train.train_and_evaluate(
        config, str(directory), num_devices=devices, resume=True
      )
    results[alpha] = json.loads(path.read_text())
  return results


def summarize(per_utterance: Sequence[float]) -> dict:
  """Mean, standard deviation and :data:`PERCENTILES` of SI-SDRi values."""
  x = np.asarray(per_utterance, np.float64)
  row = {"n": int(x.size), "mean": float(x.mean()), "std": float(x.std())}
  row.update(
    {
      f"p{q}": float(v)
      for q, v in zip(PERCENTILES, np.percentile(x, PERCENTILES), strict=True)
    }
  )
  return row


def _alpha_label(alpha: float) -> str:
  frac = fractions.Fraction(alpha).limit_denominator(100)
  if alpha and abs(float(frac) - alpha) < 1e-3 and frac.numerator == 1:
    return f"1/{frac.denominator}"
  return f"{alpha:.4g}"


def markdown_table(results: dict[float, dict]) -> str:
  """One row per alpha: n, mean, std and percentiles of test SI-SDRi (dB)."""
  columns = ["n", "mean", "std"] + [f"p{q}" for q in PERCENTILES]
  lines = [
    "| alpha | " + " | ".join(columns) + " |",
    "|---" * (len(columns) + 1) + "|",
  ]
  for alpha, result in results.items():
    row = summarize(result["test_si_sdri_per_utterance_db"])
    cells = [str(row["n"])] + [f"{row[c]:.2f}" for c in columns[1:]]
    lines.append(f"| {_alpha_label(alpha)} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
    description="Robust softmax reweighting: test SI-SDRi percentiles per "
    "alpha (Tzinis et al., ICASSP 2021)."
  )
  parser.add_argument(
    "--workdir", required=True, help="one sub-directory per alpha, and table.md"
  )
  parser.add_argument(
    "--alphas",
    default=DEFAULT_ALPHAS,
    help="comma-separated alphas (fractions allowed)",
  )
  parser.add_argument(
    "--loss",
    default="snr",
    choices=("snr", "mi"),
    help="training objective (snr: negative SI-SDR-type)",
  )
  parser.add_argument(
    "--steps",
    type=cli.positive_int,
    default=None,
    help="training steps per run (default: the preset's)",
  )
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument(
    "--num-devices",
    type=int,
    default=None,
    help="devices per run (default: as many as divide the batch size)",
  )
  parser.add_argument(
    "--quick",
    action="store_true",
    help="tiny model and test set: a pipeline check",
  )
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  parser = build_parser()
  args = parser.parse_args(argv)
  try:
    alphas = parse_alphas(args.alphas)
    workdir = cli.check_workdir(args.workdir)
  except ValueError as e:
    parser.error(str(e))
  try:
    results = train_runs(
      workdir,
      alphas,
      num_devices=args.num_devices,
      loss=args.loss,
      quick=args.quick,
      steps=args.steps,
      seed=args.seed,
    )
  except (train.TrainingError, train.WorkdirError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  title = (
    f"# Test SI-SDRi (dB) per robust-reweighting alpha\n\n"
    f"loss={args.loss}, steps={results[alphas[0]]['steps']}, "
    f"preset=tiny{' (quick)' if args.quick else ''}, "
    f"seed={args.seed}\n\n"
  )
  table = title + markdown_table(results)
  (workdir / "table.md").write_text(table)
  print(table)
  return 0


if __name__ == "__main__":
  sys.exit(main())
