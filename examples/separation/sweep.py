"""Table 1 in miniature: every loss x every AutoClip percentile x seeds.

``python -m examples.separation.sweep --workdir DIR [--preset P] [--seeds K]
[--steps N] [--quick]`` trains each of the five losses with AutoClip at
p in {0, 1, 10, 25, 50, 90, 100} (p = 100 never clips: the no-clipping
baseline) for K seeds on the embedded synthetic data, then writes to ``DIR``:

* ``runs/<loss>_p<p>_s<seed>/``: each run's workdir (metrics, results, wavs);
* ``sweep.csv``: one row per run (``loss, p, seed, steps, test_si_sdri_db,
  ...``, ``status`` = ``ok`` or ``diverged``);
* ``table.md``: mean +- std test SI-SDRi per cell, shaped like the paper's
  Table 1, next to the paper's WSJ0-2mix SI-SDR values;
* ``sweep.png``: SI-SDRi against p, one line per loss (the paper's values in a
  second panel).

The default (``--preset tiny``, 500 steps per run, 3 seeds: 105 runs) is
sized to finish within an hour on a 2-core CPU (about 30 minutes when nothing
else runs; see ``SWEEP_STEPS``). Finished runs (with a
``results.json``) are skipped, so an interrupted sweep resumes where it
stopped; ``sweep.csv`` and ``table.md`` are rewritten after every run.
Compiled programs go to a persistent cache (``DIR/jax_cache`` unless
``JAX_COMPILATION_CACHE_DIR`` is set): each loss compiles once per sweep.
``--quick`` (a 1 x 16 network, a few steps per run, one seed: 35 runs in about
a minute) checks the pipeline end to end.
"""

import argparse
import contextlib
import csv
import dataclasses
import json
import math
import pathlib
import sys
import time
from collections.abc import Sequence

from examples.separation import cli
from examples.separation import configs

PS = (0.0, 1.0, 10.0, 25.0, 50.0, 90.0, 100.0)
LOSSES = ("dc", "wkm", "mi", "chimera", "snr")
LOSS_NAMES = {
  "dc": "L_DC",
  "wkm": "L_WKM",
  "mi": "L_MI",
  "chimera": "L_MI+WKM",
  "snr": "L_SNR",
}
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
CSV_FIELDS = (
  "loss",
  "p",
  "seed",
  "steps",
  "test_si_sdri_db",
  "test_si_sdr_db",
  "val_si_sdri_db",
  "clip_fraction",
  "final_threshold",
  "run_seconds",
  "status",
)

# The real run: the tiny preset (2 x 64 BLSTM, batch 8, 100-frame chunks,
# 16 validation / 32 test utterances), SWEEP_STEPS steps per run, SWEEP_SEEDS
# seeds -> 105 runs. Measured on a 2-core CPU (500 steps, compiled programs
# cached): about 22 s per DC / WKM / chimera run and 9 s per MI / SNR run,
# 17 s on average -> about 30 minutes for the 105 runs (plus about 10 s of
# compilation per loss); up to about 1.7x that when other jobs share the CPU.
SWEEP_PRESET = "tiny"
SWEEP_STEPS = 500
SWEEP_SEEDS = 3
# --quick: 35 runs of a 1 x 16 network on 24-frame chunks for a few steps;
# only checks the pipeline (the numbers are noise).
QUICK_STEPS = 3
QUICK_SEEDS = 1
QUICK_OVERRIDES = dict(
  num_layers=1,
  hidden=16,
  chunk_frames=24,
  num_val_examples=1,
  num_test_examples=2,
)
# --smoke (hidden; the tests): --quick with an even smaller network and data.
SMOKE_STEPS = 2
SMOKE_OVERRIDES = dict(
  QUICK_OVERRIDES, hidden=8, chunk_frames=16, num_test_examples=1
)
# Config fields that may differ between a finished run and the sweep asking
# for it (they do not change the result).
_IGNORED_FIELDS = (
  "progress",
  "log_every",
  "num_wav_examples",
  "checkpoint",
  "checkpoint_every",
)


class SweepError(ValueError):
  """A sweep that cannot start (bad arguments, stale workdir)."""


def run_name(loss: str, p: float, seed: int) -> str:
  return f"{loss}_p{p:g}_s{seed}"


def sweep_configs(
  preset: str,
  seeds: int,
  steps: int,
  losses: Sequence[str] = LOSSES,
  ps: Sequence[float] = PS,
  overrides: dict | None = None,
) -> list[configs.Config]:
  """The configurations of the sweep, in the order they are run.

  Runs of one loss are consecutive (they share compiled programs: p is a
  traced hyperparameter). Raises ``ValueError`` for an invalid config.
  """
  # Runs are the unit of resumption: no checkpoints inside a run; one
  # validation at the end; one wav example per run.
  extra = dict(
    progress=False,
    clip="autoclip",
    num_wav_examples=1,
    checkpoint=False,
    eval_every=steps,
    checkpoint_every=steps,
    log_every=min(10, steps),
  )
  extra.update(overrides or {})
  return [
    configs.get_config(
      preset, loss=loss, p=float(p), seed=seed, steps=steps, **extra
    )
    for seed in range(seeds)
    for loss in losses
    for p in ps
  ]


# ----------------------------------------------------------------------------
# Outputs.
# ----------------------------------------------------------------------------


def _fmt(x) -> str:
  return "" if x is None else (f"{x:.6g}" if isinstance(x, float) else str(x))


def write_csv(rows: list[dict], path: pathlib.Path) -> None:
  tmp = path.with_suffix(".csv.tmp")
  with open(tmp, "w", newline="", encoding="utf-8") as f:
    writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for row in rows:
      writer.writerow({k: _fmt(row.get(k)) for k in CSV_FIELDS})
  tmp.replace(path)


def _cells(rows: list[dict], losses, ps) -> dict:
  """``(loss, p) -> (mean, std, n_ok, n_diverged)`` over seeds."""
  cells = {}
  for loss in losses:
    for p in ps:
      runs = [r for r in rows if r["loss"] == loss and r["p"] == p]
      if not runs:
        continue
      values = [
        r["test_si_sdri_db"]
        for r in runs
        if r.get("test_si_sdri_db") is not None
      ]
      n = len(values)
      mean = sum(values) / n if n else math.nan
      # Sample standard deviation over seeds (ddof = 1).
      std = (
        math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
        if n > 1
        else math.nan
      )
      cells[loss, p] = (mean, std, n, len(runs) - n)
  return cells


def _cell_text(cell) -> str:
  if cell is None:
    return "–"
  mean, std, n, diverged = cell
  if n == 0:
    text = "diverged"
  elif n == 1:
    text = f"{mean:.2f}"
  else:
    text = f"{mean:.2f} ± {std:.2f}"
  if diverged and n:
    text += f" ({diverged} diverged)"
  return text


def markdown_table(rows: list[dict], losses, ps) -> str:
  """Mean +- std test SI-SDRi per (p, loss), plus the paper's SI-SDR."""
  cells = _cells(rows, losses, ps)
  header = "| p | " + " | ".join(LOSS_NAMES[l] for l in losses) + " |"
  rule = "|---:" * (len(losses) + 1) + "|"
  lines = [header, rule]
  for p in ps:
    entries = [_cell_text(cells.get((loss, p))) for loss in losses]
    lines.append(f"| {p:g} | " + " | ".join(entries) + " |")
  best = []
  for loss in losses:
    means = {
      p: cells[loss, p][0]
      for p in ps
      if (loss, p) in cells and cells[loss, p][2]
    }
    if means:
      best.append(f"{LOSS_NAMES[loss]}: p={max(means, key=means.get):g}")
  if best:
    lines += ["", "Best p per loss here: " + ", ".join(best) + "."]
  paper_ps = [p for p in ps if p in PAPER_TABLE1]
  if paper_ps:
    lines += [
      "",
      "Paper (Seetharaman et al. 2020, Table 1): test SI-SDR [dB] "
      "on WSJ0-2mix, 4 x 600 BLSTM, 100 epochs:",
      "",
      header,
      rule,
    ]
    for p in paper_ps:
      lines.append(
        f"| {p:g} | "
        + " | ".join(f"{PAPER_TABLE1[p][l]:.1f}" for l in losses)
        + " |"
      )
  return "\n".join(lines) + "\n"


def plot(rows: list[dict], losses, ps, path: pathlib.Path) -> None:
  """SI-SDRi against p per loss (left) and the paper's Table 1 (right)."""
  import matplotlib  # pylint: disable=import-outside-toplevel

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  cells = _cells(rows, losses, ps)
  fig, (ax, ax_paper) = plt.subplots(1, 2, figsize=(11, 4))
  xs_all = list(range(len(ps)))
  for loss in losses:
    xs = [
      i for i, p in enumerate(ps) if (loss, p) in cells and cells[loss, p][2]
    ]
    if not xs:
      continue
    means = [cells[loss, ps[i]][0] for i in xs]
    stds = [
      0.0 if math.isnan(cells[loss, ps[i]][1]) else cells[loss, ps[i]][1]
      for i in xs
    ]
    ax.errorbar(
      xs, means, yerr=stds, marker="o", capsize=3, label=LOSS_NAMES[loss]
    )
  if not any(c[2] for c in cells.values()):
    ax.text(
      0.5,
      0.5,
      "no finished runs",
      transform=ax.transAxes,
      ha="center",
      va="center",
    )
  else:
    ax.legend(fontsize=8)
  ax.set_title("this sweep (synthetic data), mean ± std over seeds")
  ax.set_ylabel("test SI-SDRi [dB]")
  paper_xs = [i for i, p in enumerate(ps) if p in PAPER_TABLE1]
  for loss in losses:
    ax_paper.plot(
      paper_xs,
      [PAPER_TABLE1[ps[i]][loss] for i in paper_xs],
      marker="o",
      label=LOSS_NAMES[loss],
    )
  ax_paper.set_title("paper, Table 1 (WSJ0-2mix, 4 x 600 BLSTM)")
  ax_paper.set_ylabel("test SI-SDR [dB]")
  ax_paper.legend(fontsize=8)
  for a in (ax, ax_paper):
    a.set_xticks(xs_all, [f"{p:g}" for p in ps])
    a.set_xlabel("AutoClip percentile p (100 = no clipping)")
    a.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def _row(results: dict, seconds: float | None) -> dict:
  return {
    **results,
    "steps": results.get("steps_done", results.get("steps")),
    "run_seconds": seconds
    if seconds is not None
    else results.get("run_seconds"),
    "status": "diverged" if results.get("diverged") else "ok",
  }


def write_outputs(
  rows: list[dict],
  workdir: pathlib.Path,
  losses,
  ps,
  title: str,
  with_plot: bool = True,
) -> None:
  write_csv(rows, workdir / "sweep.csv")
  (workdir / "table.md").write_text(
    title + markdown_table(rows, losses, ps), encoding="utf-8"
  )
  if with_plot:
    plot(rows, losses, ps, workdir / "sweep.png")


# ----------------------------------------------------------------------------
# The sweep.
# ----------------------------------------------------------------------------


def _config_mismatch(config: configs.Config, results: dict) -> list[str]:
  """The fields in which a finished run's results differ from ``config``."""
  wanted = json.loads(json.dumps(dataclasses.asdict(config)))
  # A field added to Config after the run was trained, at its default, is no
  # difference.
  defaults = json.loads(json.dumps(dataclasses.asdict(configs.Config())))
  return [
    f"{k}={results.get(k)!r} (sweep: {v!r})"
    for k, v in wanted.items()
    if k not in _IGNORED_FIELDS and results.get(k, defaults[k]) != v
  ]


@contextlib.contextmanager
def compilation_cache(directory: pathlib.Path):
  """Persistent compilation cache in ``directory`` for the duration.

  A cache set by ``JAX_COMPILATION_CACHE_DIR`` (or the caller) is kept. The
  cache is re-initialised so that the setting holds even if this process
  compiled something before; the previous settings are restored afterwards.
  """
  import jax  # pylint: disable=import-outside-toplevel
  from jax.experimental.compilation_cache import compilation_cache as cc  # pylint: disable=import-outside-toplevel

  old = (
    jax.config.jax_compilation_cache_dir,
    jax.config.jax_persistent_cache_min_compile_time_secs,
  )
  if old[0]:
    yield pathlib.Path(old[0])
    return
  jax.config.update("jax_compilation_cache_dir", str(directory.absolute()))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  cc.reset_cache()
  try:
    yield directory
  finally:
    jax.config.update("jax_compilation_cache_dir", old[0])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", old[1])
    cc.reset_cache()


def run_sweep(
  workdir,
  *,
  preset: str = SWEEP_PRESET,
  seeds: int = SWEEP_SEEDS,
  steps: int = SWEEP_STEPS,
  losses: Sequence[str] = LOSSES,
  ps: Sequence[float] = PS,
  overrides: dict | None = None,
  progress: bool = True,
  command: str = "",
) -> dict:
  """Trains the sweep's runs not finished yet and writes its outputs.

  Returns ``{"trained", "skipped", "diverged", "rows", "table"}``: the
  number of runs trained by this call, the number found finished in
  ``workdir`` and skipped, the number of diverged runs, one dict per run
  (as in ``sweep.csv``) and the markdown table.

  Raises:
    SweepError: invalid settings, or a finished run in ``workdir`` trained
      with another configuration.
  """
  if seeds < 1:
    raise SweepError(f"--seeds must be >= 1, got {seeds}")
  if steps < 1:
    raise SweepError(f"--steps must be >= 1, got {steps}")
  try:
    runs = sweep_configs(preset, seeds, steps, losses, ps, overrides)
  except ValueError as e:
    raise SweepError(str(e)) from None
  workdir = pathlib.Path(workdir)
  (workdir / "runs").mkdir(parents=True, exist_ok=True)

  finished, todo = {}, []
  for config in runs:
    name = run_name(config.loss, config.p, config.seed)
    path = workdir / "runs" / name / "results.json"
    if not path.exists():
      todo.append(config)
      continue
    try:
      results = json.loads(path.read_text())
    except ValueError:  # A torn write: train it again.
      todo.append(config)
      continue
    mismatch = _config_mismatch(config, results)
    if mismatch:
      raise SweepError(
        f"{path.parent} was trained with another configuration: "
        f"{', '.join(mismatch[:3])}; use another --workdir or delete it"
      )
    finished[name] = results

  title = (
    f"Test SI-SDRi [dB] on the synthetic two-talker test set, mean ± "
    f"sample std over {seeds} seed(s); preset {preset}, {steps} steps "
    f"per run{f' (`{command}`)' if command else ''}.\n\n"
  )
  rows_by_name = {n: _row(r, None) for n, r in finished.items()}

  def ordered_rows():
    names = [run_name(c.loss, c.p, c.seed) for c in runs]
    return [rows_by_name[n] for n in names if n in rows_by_name]

  if finished and progress:
    print(
      f"{len(finished)} of {len(runs)} runs already finished in "
      f"{workdir}; skipping them",
      file=sys.stderr,
    )
  if todo:
    from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel

    from examples.separation import train  # pylint: disable=import-outside-toplevel

    with compilation_cache(workdir / "jax_cache"):
      bar = tqdm(
        todo, desc="sweep", unit="run", dynamic_ncols=True, disable=not progress
      )
      for config in bar:
        name = run_name(config.loss, config.p, config.seed)
        run_dir = workdir / "runs" / name
        bar.set_postfix_str(name)
        start = time.time()
        try:
          results = train.train_and_evaluate(config, str(run_dir))
        except train.TrainingError as e:
          # A diverged run is a result too (the paper's point): record it.
          bar.write(f"{name}: diverged: {e}")
          results = {
            **dataclasses.asdict(config),
            "test_si_sdri_db": None,
            "test_si_sdr_db": None,
            "diverged": str(e),
          }
        results["run_seconds"] = time.time() - start
        run_dir.mkdir(parents=True, exist_ok=True)
        tmp = run_dir / "results.json.tmp"
        tmp.write_text(json.dumps(results, indent=2))
        tmp.replace(run_dir / "results.json")
        rows_by_name[name] = _row(results, results["run_seconds"])
        write_outputs(
          ordered_rows(), workdir, losses, ps, title, with_plot=False
        )
  rows = ordered_rows()
  write_outputs(rows, workdir, losses, ps, title)
  return {
    "trained": len(todo),
    "skipped": len(finished),
    "diverged": sum(r["status"] == "diverged" for r in rows),
    "rows": rows,
    "table": markdown_table(rows, losses, ps),
    "title": title,
  }


# ----------------------------------------------------------------------------
# Command line.
# ----------------------------------------------------------------------------


def _losses(text: str) -> tuple[str, ...]:
  names = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
  bad = [n for n in names if n not in LOSS_NAMES]
  if bad or not names:
    raise argparse.ArgumentTypeError(
      f"{','.join(bad) or text!r}: expected a comma-separated subset of "
      f"{','.join(LOSSES)}"
    )
  return names


def _percentiles(text: str) -> tuple[float, ...]:
  try:
    ps = tuple(dict.fromkeys(float(s) for s in text.split(",") if s.strip()))
  except ValueError:
    raise argparse.ArgumentTypeError(
      f"expected comma-separated numbers in [0, 100], got {text!r}"
    ) from None
  bad = [p for p in ps if not 0.0 <= p <= 100.0]
  if bad or not ps:
    raise argparse.ArgumentTypeError(
      f"expected comma-separated numbers in [0, 100], got {text!r}"
    )
  return ps


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
    prog="python -m examples.separation.sweep",
    description=__doc__.split("\n\n", maxsplit=1)[0].replace("\n", " "),
  )
  parser.add_argument(
    "--workdir",
    required=True,
    help="output directory (created; an existing one is resumed)",
  )
  parser.add_argument(
    "--preset",
    default=None,
    choices=tuple(configs.PRESETS),
    help=f"model / data size (default {SWEEP_PRESET})",
  )
  parser.add_argument(
    "--seeds",
    type=cli.positive_int,
    default=None,
    help=f"seeds per cell (default {SWEEP_SEEDS}; {QUICK_SEEDS} with --quick)",
  )
  parser.add_argument(
    "--steps",
    type=cli.positive_int,
    default=None,
    help=f"training steps per run (default {SWEEP_STEPS}; "
    f"{QUICK_STEPS} with --quick)",
  )
  parser.add_argument(
    "--losses",
    type=_losses,
    default=LOSSES,
    help=f"comma-separated (default {','.join(LOSSES)})",
  )
  parser.add_argument(
    "--ps",
    type=_percentiles,
    default=PS,
    help="comma-separated AutoClip percentiles (default "
    f"{','.join(f'{p:g}' for p in PS)})",
  )
  parser.add_argument(
    "--quick",
    action="store_true",
    help="1 x 16 network, a few steps, one seed: checks "
    "the pipeline in about a minute",
  )
  parser.add_argument(
    "--no-progress", action="store_true", help="no progress bar"
  )
  parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  parser = build_parser()
  args = parser.parse_args(argv)
  quick = args.quick or args.smoke
  seeds = args.seeds or (QUICK_SEEDS if quick else SWEEP_SEEDS)
  steps = args.steps or (
    SMOKE_STEPS if args.smoke else QUICK_STEPS if quick else SWEEP_STEPS
  )
  overrides = (
    SMOKE_OVERRIDES if args.smoke else QUICK_OVERRIDES if quick else None
  )
  preset = args.preset or SWEEP_PRESET
  try:
    workdir = cli.check_workdir(args.workdir)
  except ValueError as e:
    parser.error(str(e))
  argv = list(sys.argv[1:] if argv is None else argv)
  command = " ".join(["python -m examples.separation.sweep", *argv])
  try:
    summary = run_sweep(
      workdir,
      preset=preset,
      seeds=seeds,
      steps=steps,
      losses=args.losses,
      ps=args.ps,
      overrides=overrides,
      progress=not args.no_progress,
      command=command,
    )
  except SweepError as e:
    parser.error(str(e))
  print(summary["title"] + summary["table"])
  print(
    f"trained {summary['trained']} run(s), skipped {summary['skipped']} "
    f"finished, {summary['diverged']} diverged; outputs in {workdir}",
    file=sys.stderr,
  )
  return 0


if __name__ == "__main__":
  sys.exit(main())
