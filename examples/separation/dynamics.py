"""Fig. 1 in miniature: training dynamics with and without AutoClip.

``python -m examples.separation.dynamics --workdir DIR [--quick]`` trains the
mask-inference network (L_MI) twice from the same initialisation and data,
with AutoClip p = 10 and without clipping (p = 100), and every ``--every``
steps records on the step's batch ``X_t``:

* the training loss ``f(theta_{t-1}; X_t)``;
* the step size ``||theta_t - theta_{t-1}||_2``;
* the gradient norm ``||grad f(theta_{t-1}; X_t)||_2`` (before clipping);
* the AutoClip threshold ``eta_c(t)``;
* the local smoothness, the gradient-Lipschitz estimate
  ``||grad f(theta_t; X_t) - grad f(theta_{t-1}; X_t)|| /
  ||theta_t - theta_{t-1}||`` (Santurkar et al. 2018; Zhang et al. 2019).

The paper uses a 2 x 300 BLSTM; on a 2-core CPU the default here is the
``small`` preset's width scaled down to 2 x 128 (``--hidden`` changes it).

Writes ``dynamics.csv`` (columns ``run, step, loss, step_size, grad_norm,
threshold, smoothness``), ``summary.json`` (Pearson r of smoothness against
gradient norm per run, final thresholds, test SI-SDRi) and ``dynamics.png``:
step size and training loss over training, and per run a scatter of
smoothness against gradient norm with its r (for AutoClip, the final threshold
as a dashed vertical line).
"""

import argparse
import csv
import json
import pathlib
import sys

RUNS = (("autoclip_p10", 10.0), ("no_clipping_p100", 100.0))
FIELDS = ("run", "step", "loss", "step_size", "grad_norm", "threshold",
          "smoothness")


def make_record_fns(config):
  """Jitted ``train(state, batch)`` and ``probe(state, batch)`` functions."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  from examples.separation import train  # pylint: disable=import-outside-toplevel

  def grads_at(params, apply_fn, batch):
    def loss_fn(p):
      outputs = apply_fn({"params": p}, batch["mix"])
      return train.per_example_loss(outputs, batch, config).mean()
    return jax.value_and_grad(loss_fn)(params)

  @jax.jit
  def probe(state, batch):
    """One step plus the Fig. 1 statistics on the same batch."""
    loss, grads = grads_at(state.params, state.apply_fn, batch)
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
    new_params = optax.apply_updates(state.params, updates)
    _, new_grads = grads_at(new_params, state.apply_fn, batch)
    step_size = optax.tree.norm(jax.tree.map(jnp.subtract, new_params,
                                             state.params))
    grad_diff = optax.tree.norm(jax.tree.map(jnp.subtract, new_grads, grads))
    stats = {
        "loss": loss, "step_size": step_size,
        "grad_norm": optax.tree.norm(grads),
        "threshold": optax.tree.get(opt_state, "threshold"),
        "smoothness": grad_diff / jnp.maximum(step_size, 1e-30),
    }
    new_state = state.replace(step=state.step + 1, params=new_params,
                              opt_state=opt_state)
    return new_state, stats

  return jax.jit(train.make_train_step(config)), probe


def run_one(config, steps: int, every: int, name: str, rows: list) -> dict:
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel
  from examples.separation import train  # pylint: disable=import-outside-toplevel

  dataset = train.make_dataset(config, "train")
  state = train.create_train_state(config, jax.random.key(config.seed))
  step_fn, probe_fn = make_record_fns(config)
  for t in tqdm(range(steps), desc=name, dynamic_ncols=True):
    batch = {k: jnp.asarray(v) for k, v in
             train.train_batch(dataset, config, t).items()
             if k in ("mix", "sources")}
    if (t + 1) % every == 0:
      state, stats = probe_fn(state, batch)
      stats = {k: float(v) for k, v in jax.device_get(stats).items()}
      if not all(map(lambda v: v == v, stats.values())):
        raise RuntimeError(f"{name}: non-finite statistics at step {t + 1}")
      rows.append({"run": name, "step": t + 1, **stats})
    else:
      state, logs = step_fn(state, batch)
      if not bool(jnp.isfinite(logs["loss"])):
        raise RuntimeError(f"{name}: non-finite loss at step {t + 1}")
  test = train.evaluate(state.params, train.make_dataset(config, "test"),
                        config)[0]
  return {"test_si_sdri_db": test["si_sdri_db"],
          "final_threshold": float(rows[-1]["threshold"])}


def pearson(xs, ys) -> float:
  import numpy as np  # pylint: disable=import-outside-toplevel
  xs, ys = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
  if len(xs) < 2 or xs.std() == 0 or ys.std() == 0:
    return float("nan")
  return float(np.corrcoef(xs, ys)[0, 1])


def plot(rows: list, summary: dict, path: pathlib.Path) -> None:
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
  colors = {"autoclip_p10": "tab:blue", "no_clipping_p100": "tab:orange"}
  labels = {"autoclip_p10": "AutoClip p=10",
            "no_clipping_p100": "no clipping (p=100)"}
  for name, _ in RUNS:
    run = [r for r in rows if r["run"] == name]
    steps = [r["step"] for r in run]
    axes[0, 0].plot(steps, [r["step_size"] for r in run], color=colors[name],
                    label=labels[name])
    axes[0, 1].plot(steps, [r["loss"] for r in run], color=colors[name],
                    label=labels[name])
  axes[0, 0].set(title="step size ||θ_t − θ_{t−1}||", xlabel="step",
                 yscale="log")
  axes[0, 1].set(title="training loss (L_MI)", xlabel="step")
  for ax in axes[0]:
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
  for ax, (name, _) in zip((axes[1, 1], axes[1, 0]), RUNS):
    run = [r for r in rows if r["run"] == name]
    ax.scatter([r["grad_norm"] for r in run], [r["smoothness"] for r in run],
               s=10, color=colors[name], alpha=0.7)
    ax.set(xscale="log", yscale="log", xlabel="gradient norm",
           ylabel="local smoothness",
           title=f"{labels[name]}: r = {summary[name]['pearson_r']:.2f}")
    if name == "autoclip_p10":
      ax.axvline(summary[name]["final_threshold"], color="k", ls="--",
                 label="final AutoClip threshold")
      ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m examples.separation.dynamics",
      description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--quick", action="store_true",
                      help="tiny network, a few dozen steps (for tests)")
  parser.add_argument("--steps", type=int, default=None)
  parser.add_argument("--every", type=int, default=None,
                      help="record every k steps (paper: 20)")
  parser.add_argument("--hidden", type=int, default=None)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  from examples.separation import configs  # pylint: disable=import-outside-toplevel
  steps = args.steps or (24 if args.quick else 1500)
  every = args.every or (2 if args.quick else 10)
  hidden = args.hidden or (16 if args.quick else 128)
  if steps < 2 * every or every < 1 or hidden < 1:
    parser.exit(2, "error: need --every >= 1, --steps >= 2 * --every and "
                "--hidden >= 1\n")
  overrides = dict(loss="mi", clip="autoclip", num_layers=2, hidden=hidden,
                   steps=steps, seed=args.seed, progress=False)
  if args.quick:
    overrides.update(chunk_frames=24, num_test_examples=2,
                     num_val_examples=2)
  try:
    base = configs.get_config("tiny", **overrides)
  except ValueError as e:
    parser.exit(2, f"error: {e}\n")
  workdir = pathlib.Path(args.workdir)
  workdir.mkdir(parents=True, exist_ok=True)

  import dataclasses  # pylint: disable=import-outside-toplevel
  rows, summary = [], {}
  for name, p in RUNS:
    summary[name] = run_one(dataclasses.replace(base, p=p), steps, every,
                            name, rows)
    run = [r for r in rows if r["run"] == name]
    summary[name]["pearson_r"] = pearson([r["grad_norm"] for r in run],
                                         [r["smoothness"] for r in run])
  summary["setup"] = {"hidden": hidden, "num_layers": 2, "steps": steps,
                      "every": every, "batch_size": base.batch_size,
                      "chunk_frames": base.chunk_frames, "seed": args.seed}
  with open(workdir / "dynamics.csv", "w", newline="", encoding="utf-8") as f:
    writer = csv.DictWriter(f, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows(rows)
  (workdir / "summary.json").write_text(json.dumps(summary, indent=2))
  plot(rows, summary, workdir / "dynamics.png")
  print(json.dumps(summary, indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main())
