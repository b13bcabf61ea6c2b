"""Fig. 1 in miniature: training dynamics with and without AutoClip.

``python -m examples.separation.dynamics --workdir DIR [--seeds K] [--quick]``
trains the mask-inference network (L_MI) twice per seed, with AutoClip
p = 10 and without clipping (p = 100: the threshold is the largest norm seen
so far, so nothing is ever clipped). The two runs of a seed are paired: seed
``s`` (config seed ``s``) fixes the initialisation and the batches of both.
``--seeds K`` (default 3; 1 with ``--quick``) trains seeds ``S, ..., S+K-1``
with ``S = --seed`` (default 0). Every ``--every`` steps a run records on
the step's batch ``X_t``:

* the training loss ``f(theta_{t-1}; X_t)``;
* the step size ``||theta_t - theta_{t-1}||_2``;
* the gradient norm ``||grad f(theta_{t-1}; X_t)||_2`` (before clipping);
* the AutoClip threshold ``eta_c(t)``;
* the local smoothness, the gradient-Lipschitz estimate
  ``||grad f(theta_t; X_t) - grad f(theta_{t-1}; X_t)|| /
  ||theta_t - theta_{t-1}||`` (Santurkar et al. 2018; Zhang et al. 2019).

The paper uses a 2 x 300 BLSTM; on a 2-core CPU the default is the ``tiny``
preset's data and batch (8 chunks of 100 frames) with a 2 x 128 BLSTM
(``--hidden`` changes it), 1500 steps, recorded every 10.

Resumable: each run writes ``DIR/runs/<run>_s<seed>/records.jsonl`` and then
``result.json`` (each atomically); a restarted study skips the finished runs
and stops with a one-line error if one was trained with other settings
(steps, every, hidden, preset overrides). The combined outputs are then
rebuilt from the runs of the requested seeds:

* ``dynamics.csv`` and ``dynamics.jsonl``: one row per recorded step, columns
  ``run, seed, step, loss, step_size, grad_norm, threshold, smoothness``;
* ``summary.json``: ``per_seed[run][seed]``: the Pearson r of smoothness
  against gradient norm (``pearson_r``; ``pearson_r_log`` on log values),
  the median step size, the final training loss (the mean of the last 10 %
  of the recorded losses), the final AutoClip threshold and the test
  SI-SDRi; ``aggregate[run]``: the mean and sample std over seeds of r,
  r on log values and test SI-SDRi; ``paired_test_si_sdri_db``: AutoClip
  minus no clipping in test SI-SDRi per seed and its mean; and the setup;
* ``summary.md``: the per-seed and the aggregate tables, with the paper's
  values for comparison;
* ``dynamics.png``: step size and training loss over training (the median
  over seeds, with a min-max band), and per run a scatter of smoothness
  against gradient norm pooling the seeds, r (mean +- std over seeds) in the
  title (for AutoClip, each seed's final threshold as a dashed vertical
  line).

``--quick`` (a 2 x 16 network on short chunks, 24 steps, one seed) runs in
well under a minute.
"""

import argparse
import csv
import dataclasses
import json
import math
import pathlib
import statistics
import sys
import time
from collections.abc import Sequence

from examples.separation import cli
from examples.separation import configs

RUNS = (("autoclip_p10", 10.0), ("no_clipping_p100", 100.0))
LABELS = {
  "autoclip_p10": "AutoClip p=10",
  "no_clipping_p100": "no clipping (p=100)",
}
COLORS = {"autoclip_p10": "tab:blue", "no_clipping_p100": "tab:orange"}
FIELDS = (
  "run",
  "seed",
  "step",
  "loss",
  "step_size",
  "grad_norm",
  "threshold",
  "smoothness",
)
# The statistics aggregated over seeds (mean and sample std).
AGGREGATED = (
  "pearson_r",
  "pearson_r_log",
  "step_size_roughness",
  "test_si_sdri_db",
)
# The final training loss: the mean of this fraction of the recorded losses
# (the last ones; at least one).
FINAL_LOSS_FRACTION = 0.1
# The paper's Fig. 1 (2 x 300 BLSTM, L_MI, wsj0-2mix), for comparison.
PAPER_R = {"autoclip_p10": 0.86, "no_clipping_p100": 0.62}

DEFAULT_STEPS, DEFAULT_EVERY, DEFAULT_HIDDEN, DEFAULT_SEEDS = 1500, 10, 128, 3
QUICK_STEPS, QUICK_EVERY, QUICK_HIDDEN = 24, 2, 16
QUICK_OVERRIDES = dict(chunk_frames=24, num_test_examples=2, num_val_examples=2)
# --smoke (hidden; the tests): an even smaller network, data and run.
SMOKE_STEPS, SMOKE_EVERY, SMOKE_HIDDEN = 8, 2, 8
SMOKE_OVERRIDES = dict(chunk_frames=16, num_test_examples=1, num_val_examples=1)

RECORDS_FILE, RESULT_FILE = "records.jsonl", "result.json"


class DynamicsError(ValueError):
  """A study that cannot go on (a finished run trained with other settings)."""


def run_dir_name(name: str, seed: int) -> str:
  return f"{name}_s{seed}"


def make_record_fns(config):
  """Jitted ``step(state, batch)`` and ``probe(state, batch)`` functions.

  ``step`` is the training step of ``train.py``; ``probe`` takes the same
  step and also returns the Fig. 1 statistics measured on its batch.
  """
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel

  from examples.separation import models  # pylint: disable=import-outside-toplevel
  from examples.separation import optimizer as optimizer_lib  # pylint: disable=import-outside-toplevel
  from examples.separation import train  # pylint: disable=import-outside-toplevel
  from examples.separation import train_state  # pylint: disable=import-outside-toplevel

  def probe(state, batch):
    """One training step plus the Fig. 1 statistics on the same batch."""
    model, optimizer = state.merge()
    step = optimizer.step.get_value().astype(jnp.int32)
    (loss, per_example), grads = train.loss_and_grads(
      model, batch, step, config
    )
    params = models.params_dict(model)
    optimizer.update(
      model, grads, **optimizer_lib.extra_args(per_example.mean(), config)
    )
    new_params = models.params_dict(model)
    _, new_grads = train.loss_and_grads(model, batch, step, config)
    step_size = optax.tree.norm(jax.tree.map(jnp.subtract, new_params, params))
    grad_diff = optax.tree.norm(jax.tree.map(jnp.subtract, new_grads, grads))
    stats = {
      "loss": loss,
      "step_size": step_size,
      "grad_norm": optax.tree.norm(grads),
      "threshold": optax.tree.get(
        train_state.pure_opt_state(optimizer), "threshold"
      ),
      "smoothness": grad_diff / jnp.maximum(step_size, 1e-30),
    }
    return state.update(model, optimizer), stats

  return (
    jax.jit(train.make_train_step(config), donate_argnums=0),
    jax.jit(probe, donate_argnums=0),
  )


def run_one(
  config, every: int, name: str, rows: list, progress: bool = True
) -> dict:
  """Trains ``config.steps`` steps, appending a row every ``every`` steps."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel

  from examples.separation import train  # pylint: disable=import-outside-toplevel

  dataset = train.make_dataset(config, "train")
  state = train.create_train_state(config, jax.random.key(config.seed))
  step_fn, probe_fn = make_record_fns(config)
  desc = f"{name} seed {config.seed}"
  for t in tqdm(
    range(config.steps), desc=desc, dynamic_ncols=True, disable=not progress
  ):
    batch = {
      k: jnp.asarray(v)
      for k, v in train.train_batch(dataset, config, t).items()
      if k in ("mix", "sources", "classes")
    }
    if (t + 1) % every == 0:
      state, stats = probe_fn(state, batch)
      stats = {k: float(v) for k, v in jax.device_get(stats).items()}
      if not all(math.isfinite(v) for v in stats.values()):
        raise train.TrainingError(
          f"{desc}: non-finite statistics {stats} at step {t + 1}"
        )
      rows.append({"run": name, "seed": config.seed, "step": t + 1, **stats})
    else:
      state, logs = step_fn(state, batch)
      if not math.isfinite(float(logs["loss"])):
        raise train.TrainingError(f"{desc}: non-finite loss at step {t + 1}")
  test = train.evaluate(
    state.params, train.make_dataset(config, "test"), config
  )[0]
  return {
    "test_si_sdri_db": test["si_sdri_db"],
    "final_threshold": float(optax.tree.get(state.opt_state, "threshold")),
  }


def pearson(xs, ys) -> float:
  import numpy as np  # pylint: disable=import-outside-toplevel

  xs, ys = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
  if len(xs) < 2 or xs.std() == 0 or ys.std() == 0:
    return float("nan")
  return float(np.corrcoef(xs, ys)[0, 1])


def _log(values):
  return [math.log(v) if v > 0 else float("nan") for v in values]


def run_statistics(records: list[dict]) -> dict:
  """One run's Fig. 1 statistics from its recorded rows."""
  grad_norms = [r["grad_norm"] for r in records]
  smoothness = [r["smoothness"] for r in records]
  losses = [r["loss"] for r in records]
  tail = max(1, math.ceil(FINAL_LOSS_FRACTION * len(losses)))
  return {
    "num_points": len(records),
    "pearson_r": pearson(grad_norms, smoothness),
    "pearson_r_log": pearson(_log(grad_norms), _log(smoothness)),
    "median_step_size": statistics.median(r["step_size"] for r in records),
    "step_size_roughness": roughness([r["step_size"] for r in records]),
    "final_loss": sum(losses[-tail:]) / tail,
  }


def roughness(values) -> float:
  """Median ``|log(v_t / v_{t-1})|`` over consecutive positive values.

  How much a curve jumps from one record to the next, independent of its
  scale: 0 for a constant curve, log 2 = 0.69 if every record halves or
  doubles. The paper's "smoother step size" in one number.
  """
  logs = [math.log(v) for v in values if v > 0]
  jumps = [abs(b - a) for a, b in zip(logs, logs[1:], strict=False)]
  return statistics.median(jumps) if jumps else float("nan")


def mean_std(values) -> dict:
  """Mean and sample std (n - 1) of the finite ``values``; NaN if too few."""
  xs = [float(x) for x in values if x is not None and math.isfinite(x)]
  n = len(xs)
  mean = sum(xs) / n if n else float("nan")
  std = (
    math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    if n >= 2
    else float("nan")
  )
  return {"mean": mean, "std": std, "n": n}


def aggregate(per_seed: dict) -> dict:
  """Statistics over seeds from ``per_seed[run][seed]`` (seed keys: str).

  Returns ``{"aggregate": {run: {"p", "n_seeds", stat: mean_std}},
  "paired_test_si_sdri_db": {...}}``: the paired difference AutoClip minus
  no clipping in test SI-SDRi on the seeds both runs have.
  """
  out = {"aggregate": {}}
  for name, seeds in per_seed.items():
    runs = list(seeds.values())
    out["aggregate"][name] = {
      "p": runs[0]["p"] if runs else None,
      "n_seeds": len(runs),
      **{k: mean_std(r.get(k) for r in runs) for k in AGGREGATED},
    }
  (a, _), (b, _) = RUNS
  common = [s for s in per_seed.get(a, {}) if s in per_seed.get(b, {})]
  diffs = {}
  for s in common:
    x, y = per_seed[a][s]["test_si_sdri_db"], per_seed[b][s]["test_si_sdri_db"]
    diffs[s] = float("nan") if x is None or y is None else x - y
  out["paired_test_si_sdri_db"] = {
    "difference": f"{a} - {b}",
    "per_seed": diffs,
    **mean_std(diffs.values()),
  }
  return out


def _band(rows: list, name: str, key: str):
  """Steps and the median, min and max of ``key`` over the seeds per step."""
  import numpy as np  # pylint: disable=import-outside-toplevel

  by_step = {}
  for r in rows:
    if r["run"] == name:
      by_step.setdefault(r["step"], []).append(r[key])
  steps = sorted(by_step)
  values = [np.asarray(by_step[s], np.float64) for s in steps]
  return (
    steps,
    [float(np.median(v)) for v in values],
    [float(v.min()) for v in values],
    [float(v.max()) for v in values],
  )


def _r_text(agg: dict) -> str:
  r = agg["pearson_r"]
  if r["n"] == 0:
    return "r = -"
  if r["n"] == 1:
    return f"r = {r['mean']:.2f}"
  return f"r = {r['mean']:.2f} ± {r['std']:.2f} ({r['n']} seeds)"


def plot(rows: list, summary: dict, path: pathlib.Path) -> None:
  """The four panels of the paper's Fig. 1, over the seeds."""
  import matplotlib  # pylint: disable=import-outside-toplevel

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  n_seeds = len(summary["setup"]["seeds"])
  over = f"\n(median, min–max over {n_seeds} seeds)" if n_seeds > 1 else ""
  fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
  for name, _ in RUNS:
    for ax, key in ((axes[0, 0], "step_size"), (axes[0, 1], "loss")):
      steps, median, low, high = _band(rows, name, key)
      ax.plot(steps, median, color=COLORS[name], label=LABELS[name], lw=1)
      if n_seeds > 1:
        ax.fill_between(steps, low, high, color=COLORS[name], alpha=0.25, lw=0)
  axes[0, 0].set(
    title=f"(a) step size ||θ_t − θ_{{t−1}}||{over}",
    xlabel="step",
    yscale="log",
  )
  axes[0, 1].set(title=f"(b) training loss (L_MI){over}", xlabel="step")
  for ax in axes[0]:
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
  # (c) without clipping, (d) with AutoClip; the seeds pooled.
  for ax, (name, letter) in zip(
    axes[1], (("no_clipping_p100", "c"), ("autoclip_p10", "d")), strict=True
  ):
    run = [r for r in rows if r["run"] == name]
    ax.scatter(
      [r["grad_norm"] for r in run],
      [r["smoothness"] for r in run],
      s=10,
      color=COLORS[name],
      alpha=0.5,
    )
    ax.set(
      xscale="log",
      yscale="log",
      xlabel="gradient norm",
      ylabel="local smoothness",
      title=f"({letter}) {LABELS[name]}: Pearson "
      + _r_text(summary["aggregate"][name]),
    )
    if name == "autoclip_p10":
      for i, run_summary in enumerate(summary["per_seed"][name].values()):
        ax.axvline(
          run_summary["final_threshold"],
          color="k",
          ls="--",
          lw=0.8,
          label="final AutoClip threshold"
          + (" (per seed)" if n_seeds > 1 else "")
          if i == 0
          else None,
        )
      ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def base_config(
  steps: int,
  every: int,
  hidden: int,
  seed: int,
  overrides: dict | None = None,
):
  """The runs' shared config (p aside); ``ValueError`` names a bad argument."""

  if every < 1:
    raise ValueError(f"--every must be >= 1, got {every}")
  if steps < 2 * every:
    raise ValueError(
      f"--steps ({steps}) must be >= 2 * --every ({every}) "
      "to record at least two points per run"
    )
  return configs.get_config(
    "tiny",
    **{
      **dict(
        loss="mi",
        clip="autoclip",
        num_layers=2,
        hidden=hidden,
        steps=steps,
        seed=seed,
        progress=False,
        # The recorded study was trained on numpy-rendered batches.
        synthetic_renderer="numpy",
      ),
      **(overrides or {}),
    },
  )


def _settings(config, every: int) -> dict:
  """What a finished run must match: its config (as JSON) and ``every``."""
  settings = json.loads(json.dumps(dataclasses.asdict(config)))
  neutral = configs.RESULT_NEUTRAL_FIELDS
  return {
    **{k: v for k, v in settings.items() if k not in neutral},
    "every": every,
  }


def _write_atomic(path: pathlib.Path, text: str) -> None:
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_text(text, encoding="utf-8")
  tmp.replace(path)


def _read_finished(run_dir: pathlib.Path, settings: dict):
  """A finished run's ``(result, records)``, or None.

  Raises:
    DynamicsError: the run was trained with other settings.
  """
  try:
    result = json.loads((run_dir / RESULT_FILE).read_text(encoding="utf-8"))
    records = [
      json.loads(line)
      for line in (run_dir / RECORDS_FILE)
      .read_text(encoding="utf-8")
      .splitlines()
    ]
  except (OSError, ValueError):  # Not finished (or a torn file): train it.
    return None
  trained = result.get("settings", {})
  mismatch = [
    f"{k}={trained.get(k)!r} (now {v!r})"
    for k, v in settings.items()
    if trained.get(k) != v
  ]
  if mismatch:
    raise DynamicsError(
      f"{run_dir} was trained with other settings: "
      f"{', '.join(mismatch[:3])}; use another --workdir or delete it"
    )
  return result, records


def _train_and_write(
  config, every: int, name: str, run_dir: pathlib.Path, progress: bool
):
  """Trains one run; writes its records, then its ``result.json``."""
  start = time.time()
  records = []
  result = run_one(config, every, name, records, progress)
  result = {
    "run": name,
    "seed": config.seed,
    "p": config.p,
    **result,
    **run_statistics(records),
    "run_seconds": time.time() - start,
    "settings": _settings(config, every),
  }
  run_dir.mkdir(parents=True, exist_ok=True)
  _write_atomic(
    run_dir / RECORDS_FILE, "".join(json.dumps(r) + "\n" for r in records)
  )
  # NaN (a constant series) is written as null: strict JSON.
  _write_atomic(
    run_dir / RESULT_FILE, json.dumps(_nan_to_none(result), indent=2)
  )


def run_dynamics(
  workdir,
  *,
  steps: int = DEFAULT_STEPS,
  every: int = DEFAULT_EVERY,
  hidden: int = DEFAULT_HIDDEN,
  seed: int = 0,
  seeds: int = DEFAULT_SEEDS,
  overrides: dict | None = None,
  progress: bool = True,
  command: str | None = None,
) -> dict:
  """Both runs for seeds ``seed, ..., seed + seeds - 1``; writes the outputs.

  Finished runs in ``workdir/runs`` are skipped. Returns ``summary.json``'s
  dict.

  Raises:
    ValueError: invalid settings (the message names the argument).
    DynamicsError: a finished run was trained with other settings.
  """
  from examples.separation import sweep  # pylint: disable=import-outside-toplevel

  if seeds < 1:
    raise ValueError(f"--seeds must be >= 1, got {seeds}")
  seed_list = list(range(seed, seed + seeds))
  base = base_config(steps, every, hidden, seed, overrides)
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  jobs = []
  for s in seed_list:
    for name, p in RUNS:
      config = dataclasses.replace(base, p=p, seed=s)
      run_dir = workdir / "runs" / run_dir_name(name, s)
      # Every finished run is checked before anything trains.
      finished = _read_finished(run_dir, _settings(config, every))
      jobs.append((name, s, config, run_dir, finished))
  todo = [job for job in jobs if job[4] is None]
  if len(todo) < len(jobs):
    print(
      f"dynamics: {len(jobs) - len(todo)} finished run(s) in "
      f"{workdir / 'runs'} skipped, {len(todo)} to train",
      file=sys.stderr,
    )
  if todo:
    # The runs differ only in p and the seed, traced values: the later runs
    # load the first one's compiled programs from the cache.
    with sweep.compilation_cache(workdir / "jax_cache"):
      for name, _, config, run_dir, _ in todo:
        _train_and_write(config, every, name, run_dir, progress)

  rows, per_seed = [], {name: {} for name, _ in RUNS}
  for name, s, config, run_dir, _ in jobs:
    result, records = _read_finished(run_dir, _settings(config, every))
    rows.extend(records)
    per_seed[name][str(s)] = {
      "p": result["p"],
      **run_statistics(records),
      "final_threshold": result["final_threshold"],
      "test_si_sdri_db": result["test_si_sdri_db"],
    }
  rows.sort(key=lambda r: ([n for n, _ in RUNS].index(r["run"]), r["seed"]))
  summary = {
    "setup": {
      "loss": base.loss,
      "hidden": base.hidden,
      "num_layers": base.num_layers,
      "steps": steps,
      "every": every,
      "batch_size": base.batch_size,
      "chunk_frames": base.chunk_frames,
      "learning_rate": base.learning_rate,
      "warmup_steps": base.warmup_steps,
      "lr_decay": base.lr_decay,
      "lr_final_fraction": base.lr_final_fraction,
      "seeds": seed_list,
      "final_loss": "mean training loss over the last "
      f"{FINAL_LOSS_FRACTION:.0%} of the recorded steps",
      "std": "sample standard deviation over seeds (n - 1)",
      "command": command,
    },
    "per_seed": per_seed,
    **aggregate(per_seed),
  }
  tmp = workdir / "dynamics.csv.tmp"
  with open(tmp, "w", newline="", encoding="utf-8") as f:
    writer = csv.DictWriter(f, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows(rows)
  tmp.replace(workdir / "dynamics.csv")
  _write_atomic(
    workdir / "dynamics.jsonl", "".join(json.dumps(r) + "\n" for r in rows)
  )
  # NaN (a constant series, a std of one seed) is written as null.
  _write_atomic(
    workdir / "summary.json", json.dumps(_nan_to_none(summary), indent=2)
  )
  _write_atomic(workdir / "summary.md", summary_markdown(summary))
  plot(rows, summary, workdir / "dynamics.png")
  return summary


def _fmt(x, spec: str) -> str:
  return "-" if x is None or x != x else format(x, spec)


def _pm(stat: dict, spec: str) -> str:
  if not stat["n"]:
    return "-"
  if stat["n"] == 1:
    return _fmt(stat["mean"], spec)
  return f"{_fmt(stat['mean'], spec)} ± {_fmt(stat['std'], spec)}"


def _lr_text(setup: dict) -> str:
  text = f"Adam {setup['learning_rate']:g}"
  schedule = []
  if setup.get("warmup_steps"):
    schedule.append(f"{setup['warmup_steps']}-step warm-up")
  if setup.get("lr_decay", "none") != "none":
    schedule.append(
      f"{setup['lr_decay']} decay to {setup['lr_final_fraction']:g}x"
    )
  return text + (f" ({', '.join(schedule)})" if schedule else "")


def _seeds_text(seeds: list) -> str:
  if len(seeds) == 1:
    return f"seed {seeds[0]}"
  return (
    f"{len(seeds)} seeds ({seeds[0]}–{seeds[-1]}; a seed fixes the "
    "initialisation and the batches of both runs)"
  )


def summary_markdown(summary: dict) -> str:
  """The README's tables: per run and seed, then over seeds."""
  setup = summary["setup"]
  command = f"; command: `{setup['command']}`" if setup.get("command") else ""
  lines = [
    f"{setup['num_layers']} x {setup['hidden']} BLSTM, loss "
    f"{setup['loss']}, batch {setup['batch_size']}, "
    f"{setup['chunk_frames']}-frame chunks, {_lr_text(setup)}, "
    f"{setup['steps']} steps recorded every {setup['every']}, "
    f"{_seeds_text(setup['seeds'])}; machine: {_machine()}{command}.",
    "",
    "| run | seed | Pearson r (smoothness vs grad norm) | r on log values | "
    "median step size | step-size roughness | final train loss | "
    "final threshold | test SI-SDRi (dB) |",
    "|---|---|---|---|---|---|---|---|---|",
  ]
  for name, seeds in summary["per_seed"].items():
    for seed, run in seeds.items():
      threshold = (
        _fmt(run["final_threshold"], ".3g")
        if run["p"] < 100
        else "- (no clipping)"
      )
      lines.append(
        f"| {name} | {seed} | {_fmt(run['pearson_r'], '.3f')} | "
        f"{_fmt(run['pearson_r_log'], '.3f')} | "
        f"{_fmt(run['median_step_size'], '.3g')} | "
        f"{_fmt(run.get('step_size_roughness'), '.3f')} | "
        f"{_fmt(run['final_loss'], '.4g')} | {threshold} | "
        f"{_fmt(run['test_si_sdri_db'], '.2f')} |"
      )
  lines += [
    "",
    "| run | Pearson r (mean ± std) | r on log values (mean ± std) | "
    "step-size roughness (mean ± std) | test SI-SDRi (dB, mean ± std) | "
    "seeds |",
    "|---|---|---|---|---|---|",
  ]
  for name, agg in summary["aggregate"].items():
    lines.append(
      f"| {name} | {_pm(agg['pearson_r'], '.3f')} | "
      f"{_pm(agg['pearson_r_log'], '.3f')} | "
      f"{_pm(agg['step_size_roughness'], '.3f')} | "
      f"{_pm(agg['test_si_sdri_db'], '.2f')} | {agg['n_seeds']} |"
    )
  paired = summary["paired_test_si_sdri_db"]
  per_seed = ", ".join(
    f"seed {s}: {_fmt(d, '+.2f')}" for s, d in paired["per_seed"].items()
  )
  (a, _), (b, _) = RUNS
  lines += [
    "",
    f"Test SI-SDRi, {a} minus {b} (paired by seed): mean "
    f"{_fmt(paired['mean'], '+.2f')} dB ({per_seed}).",
    "",
    f"Final train loss: the mean of the last {FINAL_LOSS_FRACTION:.0%} of "
    "the recorded training losses; step-size roughness: the median "
    "|log(s_t / s_t-1)| between consecutive recorded step sizes (0 = "
    "constant); ± is the sample std over seeds. Paper "
    f"(Fig. 1, 2 x 300 BLSTM, L_MI, wsj0-2mix): r = {PAPER_R[a]:.2f} with "
    f"AutoClip vs {PAPER_R[b]:.2f} without.",
  ]
  return "\n".join(lines) + "\n"


def _machine() -> str:
  return cli.machine_description()


def _nan_to_none(x):
  if isinstance(x, dict):
    return {k: _nan_to_none(v) for k, v in x.items()}
  if isinstance(x, list):
    return [_nan_to_none(v) for v in x]
  if isinstance(x, float) and not math.isfinite(x):
    return None
  return x


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
    prog="python -m examples.separation.dynamics",
    description=__doc__.split("\n\n", maxsplit=1)[0].replace("\n", " "),
  )
  parser.add_argument("--workdir", required=True, help="output directory")
  parser.add_argument(
    "--quick",
    action="store_true",
    help=f"2 x {QUICK_HIDDEN} network on short chunks, "
    f"{QUICK_STEPS} steps, one seed (well under a minute)",
  )
  parser.add_argument(
    "--steps",
    type=cli.positive_int,
    default=None,
    help=f"training steps per run (default {DEFAULT_STEPS};"
    f" {QUICK_STEPS} with --quick)",
  )
  parser.add_argument(
    "--every",
    type=cli.positive_int,
    default=None,
    help=f"record every k steps (default {DEFAULT_EVERY}; "
    f"{QUICK_EVERY} with --quick; paper: 20)",
  )
  parser.add_argument(
    "--hidden",
    type=cli.positive_int,
    default=None,
    help=f"BLSTM width (default {DEFAULT_HIDDEN}; "
    f"{QUICK_HIDDEN} with --quick; paper: 300)",
  )
  parser.add_argument(
    "--seeds",
    type=cli.positive_int,
    default=None,
    help=f"number of paired seeds (default {DEFAULT_SEEDS}; 1 with --quick)",
  )
  parser.add_argument(
    "--seed", type=int, default=0, help="the first seed (default 0)"
  )
  parser.add_argument(
    "--no-progress", action="store_true", help="no progress bars"
  )
  parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.smoke:
    defaults = (SMOKE_STEPS, SMOKE_EVERY, SMOKE_HIDDEN, SMOKE_OVERRIDES, 1)
  elif args.quick:
    defaults = (QUICK_STEPS, QUICK_EVERY, QUICK_HIDDEN, QUICK_OVERRIDES, 1)
  else:
    defaults = (
      DEFAULT_STEPS,
      DEFAULT_EVERY,
      DEFAULT_HIDDEN,
      None,
      DEFAULT_SEEDS,
    )
  steps = args.steps or defaults[0]
  every = args.every or defaults[1]
  hidden = args.hidden or defaults[2]
  overrides = defaults[3]
  seeds = args.seeds or defaults[4]
  try:
    base_config(steps, every, hidden, args.seed, overrides)
    workdir = cli.check_workdir(args.workdir)
  except ValueError as e:
    parser.error(str(e))
  from examples.separation import train  # pylint: disable=import-outside-toplevel

  argv = list(sys.argv[1:] if argv is None else argv)
  try:
    summary = run_dynamics(
      workdir,
      steps=steps,
      every=every,
      hidden=hidden,
      seed=args.seed,
      seeds=seeds,
      overrides=overrides,
      progress=not args.no_progress,
      command=" ".join([parser.prog, *argv]),
    )
  except DynamicsError as e:
    parser.error(str(e))
  except train.TrainingError as e:
    print(f"{parser.prog}: training diverged: {e}", file=sys.stderr)
    return 1
  print(json.dumps(_nan_to_none(summary), indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main())
