"""Fig. 1 in miniature: training dynamics with and without AutoClip.

``python -m examples.separation.dynamics --workdir DIR [--quick]`` trains the
mask-inference network (L_MI) twice from the same initialisation and on the
same batches, with AutoClip p = 10 and without clipping (p = 100: the
threshold is the largest norm seen so far, so nothing is ever clipped), and
every ``--every`` steps records on the step's batch ``X_t``:

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

Writes to ``DIR``:

* ``dynamics.csv`` and ``dynamics.jsonl``: one row per recorded step, columns
  ``run, step, loss, step_size, grad_norm, threshold, smoothness``;
* ``summary.json``: per run the Pearson r of smoothness against gradient norm
  (``pearson_r``; ``pearson_r_log`` on log values), the final AutoClip
  threshold and the test SI-SDRi, plus the setup;
* ``dynamics.png``: step size and training loss over training, and per run a
  scatter of smoothness against gradient norm with its r in the title (for
  AutoClip, the final threshold as a dashed vertical line).

``--quick`` (a 2 x 16 network on short chunks, 24 steps) runs in well under a
minute.
"""

import argparse
import csv
import dataclasses
import json
import math
import pathlib
import sys
from collections.abc import Sequence

from examples.separation import cli

RUNS = (("autoclip_p10", 10.0), ("no_clipping_p100", 100.0))
LABELS = {
  "autoclip_p10": "AutoClip p=10",
  "no_clipping_p100": "no clipping (p=100)",
}
COLORS = {"autoclip_p10": "tab:blue", "no_clipping_p100": "tab:orange"}
FIELDS = (
  "run",
  "step",
  "loss",
  "step_size",
  "grad_norm",
  "threshold",
  "smoothness",
)

DEFAULT_STEPS, DEFAULT_EVERY, DEFAULT_HIDDEN = 1500, 10, 128
QUICK_STEPS, QUICK_EVERY, QUICK_HIDDEN = 24, 2, 16
QUICK_OVERRIDES = dict(chunk_frames=24, num_test_examples=2, num_val_examples=2)
# --smoke (hidden; the tests): an even smaller network, data and run.
SMOKE_STEPS, SMOKE_EVERY, SMOKE_HIDDEN = 8, 2, 8
SMOKE_OVERRIDES = dict(chunk_frames=16, num_test_examples=1, num_val_examples=1)


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
  for t in tqdm(
    range(config.steps), desc=name, dynamic_ncols=True, disable=not progress
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
          f"{name}: non-finite statistics {stats} at step {t + 1}"
        )
      rows.append({"run": name, "step": t + 1, **stats})
    else:
      state, logs = step_fn(state, batch)
      if not math.isfinite(float(logs["loss"])):
        raise train.TrainingError(f"{name}: non-finite loss at step {t + 1}")
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


def plot(rows: list, summary: dict, path: pathlib.Path) -> None:
  """The four panels of the paper's Fig. 1."""
  import matplotlib  # pylint: disable=import-outside-toplevel

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
  for name, _ in RUNS:
    run = [r for r in rows if r["run"] == name]
    steps = [r["step"] for r in run]
    axes[0, 0].plot(
      steps,
      [r["step_size"] for r in run],
      color=COLORS[name],
      label=LABELS[name],
      lw=1,
    )
    axes[0, 1].plot(
      steps,
      [r["loss"] for r in run],
      color=COLORS[name],
      label=LABELS[name],
      lw=1,
    )
  axes[0, 0].set(
    title="(a) step size ||θ_t − θ_{t−1}||", xlabel="step", yscale="log"
  )
  axes[0, 1].set(title="(b) training loss (L_MI)", xlabel="step")
  for ax in axes[0]:
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
  # (c) without clipping, (d) with AutoClip.
  for ax, (name, letter) in zip(
    axes[1], (("no_clipping_p100", "c"), ("autoclip_p10", "d")), strict=True
  ):
    run = [r for r in rows if r["run"] == name]
    ax.scatter(
      [r["grad_norm"] for r in run],
      [r["smoothness"] for r in run],
      s=10,
      color=COLORS[name],
      alpha=0.7,
    )
    ax.set(
      xscale="log",
      yscale="log",
      xlabel="gradient norm",
      ylabel="local smoothness",
      title=f"({letter}) {LABELS[name]}: Pearson r = "
      f"{summary[name]['pearson_r']:.2f}",
    )
    if name == "autoclip_p10":
      ax.axvline(
        summary[name]["final_threshold"],
        color="k",
        ls="--",
        label="final AutoClip threshold",
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
  from examples.separation import configs  # pylint: disable=import-outside-toplevel

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
      ),
      **(overrides or {}),
    },
  )


def run_dynamics(
  workdir,
  *,
  steps: int = DEFAULT_STEPS,
  every: int = DEFAULT_EVERY,
  hidden: int = DEFAULT_HIDDEN,
  seed: int = 0,
  overrides: dict | None = None,
  progress: bool = True,
) -> dict:
  """Both runs, their outputs in ``workdir``; returns ``summary.json``'s dict.

  Raises:
    ValueError: invalid settings (the message names the argument).
  """
  from examples.separation import sweep  # pylint: disable=import-outside-toplevel

  base = base_config(steps, every, hidden, seed, overrides)
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  rows, summary = [], {}
  # The two runs differ only in p, a traced hyperparameter: the second run
  # loads the first one's compiled programs from the cache.
  with sweep.compilation_cache(workdir / "jax_cache"):
    for name, p in RUNS:
      summary[name] = run_one(
        dataclasses.replace(base, p=p), every, name, rows, progress
      )
      run = [r for r in rows if r["run"] == name]
      grad_norms = [r["grad_norm"] for r in run]
      smoothness = [r["smoothness"] for r in run]
      summary[name].update(
        p=p,
        num_points=len(run),
        pearson_r=pearson(grad_norms, smoothness),
        pearson_r_log=pearson(_log(grad_norms), _log(smoothness)),
        final_loss=run[-1]["loss"],
        median_step_size=sorted(r["step_size"] for r in run)[len(run) // 2],
      )
  summary["setup"] = {
    "loss": base.loss,
    "hidden": base.hidden,
    "num_layers": base.num_layers,
    "steps": steps,
    "every": every,
    "batch_size": base.batch_size,
    "chunk_frames": base.chunk_frames,
    "learning_rate": base.learning_rate,
    "seed": seed,
  }
  with open(workdir / "dynamics.csv", "w", newline="", encoding="utf-8") as f:
    writer = csv.DictWriter(f, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows(rows)
  with open(workdir / "dynamics.jsonl", "w", encoding="utf-8") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)
  # NaN (a constant series) is written as null: strict JSON.
  (workdir / "summary.json").write_text(
    json.dumps(_nan_to_none(summary), indent=2), encoding="utf-8"
  )
  (workdir / "summary.md").write_text(
    summary_markdown(summary), encoding="utf-8"
  )
  plot(rows, summary, workdir / "dynamics.png")
  return summary


def summary_markdown(summary: dict) -> str:
  """The README's table: one row per run, the setup in a caption."""
  setup = summary["setup"]
  fmt = lambda x, spec: "-" if x is None or x != x else format(x, spec)
  lines = [
    f"{setup['num_layers']} x {setup['hidden']} BLSTM, loss "
    f"{setup['loss']}, batch {setup['batch_size']}, "
    f"{setup['chunk_frames']}-frame chunks, Adam {setup['learning_rate']:g}"
    f", {setup['steps']} steps recorded every {setup['every']}, seed "
    f"{setup['seed']}; machine: {_machine()}.",
    "",
    "| run | Pearson r (smoothness vs grad norm) | r on log values | "
    "median step size | final train loss | final threshold | "
    "test SI-SDRi (dB) |",
    "|---|---|---|---|---|---|---|",
  ]
  for name, run in summary.items():
    if name == "setup":
      continue
    threshold = (
      fmt(run["final_threshold"], ".3g")
      if run["p"] < 100
      else "- (no clipping)"
    )
    lines.append(
      f"| {name} | {fmt(run['pearson_r'], '.3f')} | "
      f"{fmt(run['pearson_r_log'], '.3f')} | "
      f"{fmt(run['median_step_size'], '.3g')} | "
      f"{fmt(run['final_loss'], '.4g')} | {threshold} | "
      f"{fmt(run['test_si_sdri_db'], '.2f')} |"
    )
  return "\n".join(lines) + "\n"


def _machine() -> str:
  return cli.machine_description()


def _nan_to_none(x):
  if isinstance(x, dict):
    return {k: _nan_to_none(v) for k, v in x.items()}
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
    f"{QUICK_STEPS} steps (well under a minute)",
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
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument(
    "--no-progress", action="store_true", help="no progress bars"
  )
  parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.smoke:
    defaults = (SMOKE_STEPS, SMOKE_EVERY, SMOKE_HIDDEN, SMOKE_OVERRIDES)
  elif args.quick:
    defaults = (QUICK_STEPS, QUICK_EVERY, QUICK_HIDDEN, QUICK_OVERRIDES)
  else:
    defaults = (DEFAULT_STEPS, DEFAULT_EVERY, DEFAULT_HIDDEN, None)
  steps = args.steps or defaults[0]
  every = args.every or defaults[1]
  hidden = args.hidden or defaults[2]
  overrides = defaults[3]
  try:
    base_config(steps, every, hidden, args.seed, overrides)
    workdir = cli.check_workdir(args.workdir)
  except ValueError as e:
    parser.error(str(e))
  from examples.separation import train  # pylint: disable=import-outside-toplevel

  try:
    summary = run_dynamics(
      workdir,
      steps=steps,
      every=every,
      hidden=hidden,
      seed=args.seed,
      overrides=overrides,
      progress=not args.no_progress,
    )
  except train.TrainingError as e:
    print(f"{parser.prog}: training diverged: {e}", file=sys.stderr)
    return 1
  print(json.dumps(_nan_to_none(summary), indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main())
