"""Table 1 in miniature: every loss x every AutoClip percentile x seeds.

``python -m examples.separation.sweep --workdir DIR [--preset P] [--seeds K]
[--steps N] [--quick]`` trains each of the five losses with AutoClip at
p in {0, 1, 10, 25, 50, 90, 100} (p = 100 never clips: the no-clipping
baseline) for K seeds on the embedded synthetic data, then writes to ``DIR``:

* ``runs/<loss>_p<p>_s<seed>/``: each run's workdir (metrics, results, wavs);
* ``sweep.csv``: one row per run (``loss, p, seed, test_si_sdri_db, ...``);
* ``table.md``: mean +- std SI-SDRi per cell, shaped like the paper's Table 1,
  next to the paper's WSJ0-2mix SI-SDR values;
* ``sweep.png``: SI-SDRi against p, one line per loss.

Finished runs (with a ``results.json``) are skipped, so an interrupted sweep
resumes where it stopped. ``--quick`` (a few steps per run, one seed) is what
the tests run.
"""

import argparse
import csv
import dataclasses
import json
import os
import pathlib
import sys
import time

from examples.separation import configs

PS = (0.0, 1.0, 10.0, 25.0, 50.0, 90.0, 100.0)
LOSS_NAMES = {"dc": "L_DC", "wkm": "L_WKM", "mi": "L_MI",
              "chimera": "L_MI+WKM", "snr": "L_SNR"}
# Seetharaman et al. 2020, Table 1: test SI-SDR [dB] on WSJ0-2mix, 4x600 BLSTM.
PAPER_TABLE1 = {
    0.0: {"dc": 10.7, "wkm": 11.1, "mi": 10.0, "chimera": 11.2, "snr": 9.9},
    1.0: {"dc": 10.7, "wkm": 11.2, "mi": 10.3, "chimera": 11.3, "snr": 10.2},
    10.0: {"dc": 10.8, "wkm": 11.0, "mi": 10.2, "chimera": 11.3, "snr": 10.4},
    25.0: {"dc": 10.7, "wkm": 11.0, "mi": 9.9, "chimera": 11.3, "snr": 10.3},
    50.0: {"dc": 10.7, "wkm": 11.0, "mi": 9.2, "chimera": 11.2, "snr": 9.9},
    90.0: {"dc": 10.5, "wkm": 11.0, "mi": 8.7, "chimera": 11.1, "snr": 9.5},
    100.0: {"dc": 10.2, "wkm": 10.8, "mi": 8.5, "chimera": 10.9, "snr": 8.3},
}
CSV_FIELDS = ("loss", "p", "seed", "steps", "test_si_sdri_db",
              "test_si_sdr_db", "val_si_sdri_db", "clip_fraction",
              "final_threshold", "train_seconds")
SWEEP_STEPS = 300
QUICK_STEPS = 3


def run_name(loss: str, p: float, seed: int) -> str:
  return f"{loss}_p{p:g}_s{seed}"


def sweep_configs(preset: str, seeds: int, steps: int, losses, ps,
                  quick: bool) -> list[configs.Config]:
  """The configurations of the sweep, in the order they are run."""
  # Runs are the unit of resumption: no checkpoints inside a run.
  extra = dict(progress=False, clip="autoclip", num_wav_examples=1,
               checkpoint=False, eval_every=steps)
  if quick:
    extra.update(num_layers=1, hidden=16, chunk_frames=24,
                 num_val_examples=1, num_test_examples=2, log_every=1)
  return [
      configs.get_config(preset, loss=loss, p=p, seed=seed, steps=steps,
                         **extra)
      for seed in range(seeds) for loss in losses for p in ps
  ]


def write_csv(rows: list[dict], path: pathlib.Path) -> None:
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for row in rows:
      writer.writerow({k: row.get(k) for k in CSV_FIELDS})


def _cells(rows, losses, ps):
  import numpy as np  # pylint: disable=import-outside-toplevel
  cells = {}
  for loss in losses:
    for p in ps:
      values = [r["test_si_sdri_db"] for r in rows
                if r["loss"] == loss and r["p"] == p]
      if values:
        cells[loss, p] = (float(np.mean(values)), float(np.std(values)),
                          len(values))
  return cells


def markdown_table(rows: list[dict], losses, ps) -> str:
  """Mean +- std test SI-SDRi per (p, loss), plus the paper's SI-SDR."""
  cells = _cells(rows, losses, ps)
  header = "| p | " + " | ".join(LOSS_NAMES[l] for l in losses) + " |"
  lines = [header, "|---" * (len(losses) + 1) + "|"]
  for p in ps:
    entries = []
    for loss in losses:
      if (loss, p) in cells:
        mean, std, n = cells[loss, p]
        entries.append(f"{mean:.2f} ± {std:.2f}" + ("" if n > 1 else " (1)"))
      else:
        entries.append("–")
    lines.append(f"| {p:g} | " + " | ".join(entries) + " |")
  best = []
  for loss in losses:
    means = {p: cells[loss, p][0] for p in ps if (loss, p) in cells}
    if means:
      best.append(f"{LOSS_NAMES[loss]}: p={max(means, key=means.get):g}")
  lines.append("")
  lines.append("Best p per loss here: " + ", ".join(best) + ".")
  lines.append("")
  lines.append("Paper (Table 1, test SI-SDR [dB] on WSJ0-2mix, 4x600 BLSTM, "
               "100 epochs):")
  lines.append("")
  lines.append(header)
  lines.append("|---" * (len(losses) + 1) + "|")
  for p in ps:
    lines.append(f"| {p:g} | " + " | ".join(
        f"{PAPER_TABLE1[p][l]:.1f}" for l in losses) + " |")
  return "\n".join(lines) + "\n"


def plot(rows: list[dict], losses, ps, path: pathlib.Path) -> None:
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  cells = _cells(rows, losses, ps)
  fig, ax = plt.subplots(figsize=(6, 4))
  positions = list(range(len(ps)))
  for loss in losses:
    xs = [i for i, p in enumerate(ps) if (loss, p) in cells]
    means = [cells[loss, ps[i]][0] for i in xs]
    stds = [cells[loss, ps[i]][1] for i in xs]
    ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3,
                label=LOSS_NAMES[loss])
  ax.set_xticks(positions, [f"{p:g}" for p in ps])
  ax.set_xlabel("AutoClip percentile p (100 = no clipping)")
  ax.set_ylabel("test SI-SDRi [dB]")
  ax.set_title("SI-SDRi vs p (mean ± std over seeds)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m examples.separation.sweep",
      description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--preset", default="tiny")
  parser.add_argument("--seeds", type=int, default=None,
                      help="seeds per cell (default 3; 1 with --quick)")
  parser.add_argument("--steps", type=int, default=None,
                      help=f"steps per run (default {SWEEP_STEPS}; "
                      f"{QUICK_STEPS} with --quick)")
  parser.add_argument("--losses", default=",".join(LOSS_NAMES))
  parser.add_argument("--ps", default=",".join(f"{p:g}" for p in PS))
  parser.add_argument("--quick", action="store_true")
  args = parser.parse_args(argv)
  seeds = args.seeds if args.seeds is not None else (1 if args.quick else 3)
  steps = args.steps if args.steps is not None else (
      QUICK_STEPS if args.quick else SWEEP_STEPS)
  losses = tuple(args.losses.split(","))
  try:
    ps = tuple(float(p) for p in args.ps.split(","))
  except ValueError:
    parser.exit(2, f"error: --ps must be comma-separated numbers, got "
                f"{args.ps!r}\n")
  bad = [l for l in losses if l not in LOSS_NAMES]
  if bad:
    parser.exit(2, f"error: --losses {bad} not in {tuple(LOSS_NAMES)}\n")
  if seeds < 1 or steps < 1:
    parser.exit(2, "error: --seeds and --steps must be >= 1\n")
  try:
    runs = sweep_configs(args.preset, seeds, steps, losses, ps, args.quick)
  except ValueError as e:
    parser.exit(2, f"error: {e}\n")
  workdir = pathlib.Path(args.workdir)
  try:
    (workdir / "runs").mkdir(parents=True, exist_ok=True)
  except OSError as e:
    parser.exit(2, f"error: --workdir {args.workdir!r}: {e.strerror}\n")

  import jax  # pylint: disable=import-outside-toplevel
  from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel
  from examples.separation import train  # pylint: disable=import-outside-toplevel
  # Runs of one loss share compiled programs (p is a traced hyperparameter).
  jax.config.update("jax_compilation_cache_dir",
                    str((workdir / "jax_cache").absolute()))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)

  rows = []
  bar = tqdm(runs, desc="sweep", dynamic_ncols=True)
  for config in bar:
    name = run_name(config.loss, config.p, config.seed)
    run_dir = workdir / "runs" / name
    results_path = run_dir / "results.json"
    if results_path.exists():
      results = json.loads(results_path.read_text())
      bar.set_postfix_str(f"{name} (done)")
    else:
      bar.set_postfix_str(name)
      start = time.time()
      try:
        results = train.train_and_evaluate(config, str(run_dir))
      except train.TrainingError as e:
        # A diverged run is a result too (and the paper's point): record it.
        bar.write(f"{name}: {e}")
        results = {**dataclasses.asdict(config), "test_si_sdri_db": None,
                   "test_si_sdr_db": None, "diverged": str(e)}
        run_dir.mkdir(parents=True, exist_ok=True)
        results_path.write_text(json.dumps(results))
      results["train_seconds"] = time.time() - start
      results_path.write_text(json.dumps(results, indent=2))
    rows.append({**results, "steps": results.get("steps_done",
                                                  config.steps)})
  ok_rows = [r for r in rows if r.get("test_si_sdri_db") is not None]
  write_csv(rows, workdir / "sweep.csv")
  table = markdown_table(ok_rows, losses, ps)
  header = (f"Test SI-SDRi [dB] on the synthetic two-talker test set, mean ± "
            f"std over {seeds} seed(s); preset {args.preset}, {steps} steps "
            f"per run (`python -m examples.separation.sweep "
            f"{' '.join(argv if argv is not None else sys.argv[1:])}`).\n\n")
  (workdir / "table.md").write_text(header + table)
  plot(ok_rows, losses, ps, workdir / "sweep.png")
  print(header + table)
  return 0


if __name__ == "__main__":
  sys.exit(main())
