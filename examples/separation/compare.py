"""The README's main job: train with AutoClip (p = 10) and without clipping.

``python -m examples.separation.compare [--preset tiny] [--losses mi,dc]
[--seed 0] [--steps N] [--workdir runs/compare]`` trains, for each loss, the
same model on the same data twice -- ``chain(autoclip(p), adam)`` and
``adam`` alone, the preset's learning-rate schedule in both -- and prints the
runs' test SI-SDR improvement. Each run writes its usual outputs
(``metrics.jsonl``, ``results.json``, wav examples) under
``WORKDIR/LOSS/autoclip_p10`` and ``WORKDIR/LOSS/no_clipping``; a finished run
is not trained again (delete its folder to retrain) and an interrupted one
continues from its last checkpoint. The summary goes to
``WORKDIR/comparison.json`` and ``WORKDIR/comparison.md``.
"""

import argparse
import json
import sys

from examples.separation import cli
from examples.separation import configs

CLIP_CHOICES = ("autoclip", "none")


def run_configs(
  preset: str,
  loss: str,
  seed: int,
  steps: int | None,
  p: float,
  clips: tuple[str, ...] = CLIP_CHOICES,
  data: dict | None = None,
) -> dict[str, configs.Config]:
  """The configs of one loss (AutoClip and/or none), named by run folder.

  ``data`` holds extra config fields for the data set (``data``,
  ``data_root``); the default is the embedded synthetic data.
  """
  extra = dict(data or {})
  if steps is not None:
    extra.update(
      steps=steps,
      eval_every=min(steps, 500),
      checkpoint_every=min(steps, 500),
    )
  runs = {}
  if "autoclip" in clips:
    runs[f"autoclip_p{p:g}"] = configs.get_config(
      preset, loss=loss, seed=seed, clip="autoclip", p=p, **extra
    )
  if "none" in clips:
    runs["no_clipping"] = configs.get_config(
      preset, loss=loss, seed=seed, clip="none", **extra
    )
  return runs


def parse_clips(text: str) -> tuple[str, ...]:
  """``'autoclip,none'`` -> a tuple; raises ValueError naming ``--clips``."""
  clips = tuple(dict.fromkeys(x.strip() for x in text.split(",") if x.strip()))
  if not clips or any(c not in CLIP_CHOICES for c in clips):
    raise ValueError(f"--clips {text!r}: each must be one of {CLIP_CHOICES}")
  return clips


def parse_losses(text: str) -> list[str]:
  """``'mi,dc'`` -> ``['mi', 'dc']``; raises ValueError naming ``--losses``."""
  losses = [x.strip() for x in text.split(",") if x.strip()]
  if text.strip() == "all":
    losses = list(configs.LOSSES)
  bad = [x for x in losses if x not in configs.LOSSES]
  if not losses or bad:
    raise ValueError(
      f"--losses {text!r}: each must be one of {configs.LOSSES} (or 'all')"
    )
  return list(dict.fromkeys(losses))


def data_description(
  args: argparse.Namespace, config: configs.Config | None = None
) -> str:
  """The training data in words; ``config`` (a run's) adds its data settings."""
  if args.data == "synthetic":
    return "synthetic two-talker data"
  remix = getattr(args, "dynamic_mixing", False)
  if config is None:
    return f"{args.data} data from {args.data_root}" + (
      " (dynamic mixing)" if remix else ""
    )
  parts = []
  if config.synthetic_pretrain_steps:
    parts.append(
      f"{config.synthetic_pretrain_steps} synthetic steps first, then"
    )
  parts.append("dynamic mixing" if config.dynamic_mixing else "stored mixtures")
  if config.dynamic_mixing and config.distinct_talkers:
    parts.append("of distinct talkers")
  if config.synthetic_fraction:
    parts.append(
      f"+ {config.synthetic_fraction:.0%} synthetic ({config.pairing} pairs)"
    )
  levels = "; levels normalised" if config.normalize_levels else ""
  return f"{args.data} data from {args.data_root} ({' '.join(parts)}{levels})"


def markdown(
  summary: dict,
  args: argparse.Namespace,
  command: str,
  config: configs.Config | None = None,
) -> str:
  lines = [
    f"`{command}` -- {args.preset} preset, seed {args.seed}, "
    f"{data_description(args, config)}; machine: "
    f"{cli.machine_description()}.",
    "",
    "| loss | run | steps | train s | clip fraction | "
    "test SI-SDR (dB) | test SI-SDRi (dB) | test utterances |",
    "|---|---|---|---|---|---|---|---|",
  ]
  for loss, runs in summary.items():
    for name, s in runs.items():
      frac = "-" if s["clip_fraction"] is None else f"{s['clip_fraction']:.2f}"
      lines.append(
        f"| {loss} | {name} | {s['steps_done']} | "
        f"{s['train_seconds_this_run']:.0f} | {frac} | "
        f"{s['test_si_sdr_db']:.2f} | {s['test_si_sdri_db']:.2f} | "
        f"{s['num_test_utterances']} |"
      )
  return "\n".join(lines) + "\n"


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
    prog="python -m examples.separation.compare",
    description=__doc__.split("\n")[0],
  )
  parser.add_argument(
    "--preset", default="tiny", help=f"one of {tuple(configs.PRESETS)}"
  )
  parser.add_argument(
    "--losses",
    default="mi,dc",
    help=f"comma-separated, from {configs.LOSSES}, or 'all'",
  )
  parser.add_argument(
    "--clips",
    default="autoclip,none",
    help="runs per loss: autoclip (p), none, or both",
  )
  parser.add_argument(
    "--data", default="synthetic", help=f"one of {configs.DATASETS}"
  )
  parser.add_argument(
    "--data-root", default=None, help="root of wsj0-2mix / Libri2Mix"
  )
  parser.add_argument(
    "--dynamic-mixing",
    action=argparse.BooleanOptionalAction,
    default=None,
    help="real data: train on new mixtures of the training sources "
    "(default: the preset's)",
  )
  parser.add_argument(
    "--distinct-talkers",
    action=argparse.BooleanOptionalAction,
    default=None,
    help="with dynamic mixing: never mix a talker with itself (default: "
    "the preset's)",
  )
  parser.add_argument(
    "--normalize-levels",
    action=argparse.BooleanOptionalAction,
    default=None,
    help="rescale every training mixture and its sources to the same RMS "
    "(default: the preset's)",
  )
  parser.add_argument(
    "--synthetic-pretrain-steps",
    type=int,
    default=None,
    help="real data: steps of synthetic mixtures before the files "
    "(default: the preset's; must be below --steps)",
  )
  parser.add_argument("--p", type=float, default=10.0)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--steps", type=int, default=None)
  parser.add_argument(
    "--batch-size",
    type=int,
    default=None,
    help="every run's batch size (default: the preset's for each loss; it "
    "must be a multiple of the number of devices)",
  )
  parser.add_argument(
    "--num-test",
    type=int,
    default=None,
    help="test utterances (synthetic: generated; real data: the first N of "
    "the test split, and of the validation split too; default: the "
    "preset's)",
  )
  parser.add_argument("--workdir", default="runs/compare")
  args = parser.parse_args(argv)
  try:
    if args.preset not in configs.PRESETS:
      raise ValueError(
        f"--preset {args.preset!r} is not one of {tuple(configs.PRESETS)}"
      )
    losses = parse_losses(args.losses)
    clips = parse_clips(args.clips)
    plan = {
      loss: run_configs(
        args.preset,
        loss,
        args.seed,
        args.steps,
        args.p,
        clips,
        {
          "data": args.data,
          "data_root": args.data_root,
          **{
            field: getattr(args, field)
            for field in (
              "dynamic_mixing",
              "distinct_talkers",
              "normalize_levels",
              "synthetic_pretrain_steps",
            )
            if getattr(args, field) is not None
          },
          **(
            {"batch_size": args.batch_size}
            if args.batch_size is not None
            else {}
          ),
          **(
            {
              "num_test_examples": args.num_test,
              "max_eval_examples": args.num_test,
            }
            if args.num_test is not None
            else {}
          ),
        },
      )
      for loss in losses
    }
    for runs in plan.values():
      for config in runs.values():
        configs.validate(config)
    if args.data != "synthetic":
      cli.check_directory("--data-root", args.data_root)
    workdir = cli.check_workdir(args.workdir)
  except ValueError as e:
    parser.exit(2, f"error: {cli._flag_message(str(e))}\n")  # pylint: disable=protected-access

  from examples.separation import train  # pylint: disable=import-outside-toplevel

  try:
    # Every run is checked before anything trains: a finished one trained
    # with other settings is not reused, nor an interrupted one resumed.
    finished = {
      (loss, name): train.read_finished(config, workdir / loss / name)
      for loss, runs in plan.items()
      for name, config in runs.items()
    }
  except train.WorkdirError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  summary: dict = {}
  first = next(iter(next(iter(plan.values())).values()))
  for loss, runs in plan.items():
    summary[loss] = {}
    for name, config in runs.items():
      run_dir = workdir / loss / name
      results = finished[loss, name]
      if results is not None:
        print(f"{loss}/{name}: finished earlier, read {run_dir}/results.json")
      else:
        print(
          f"{loss}/{name}: training {config.preset} ({config.steps} "
          f"steps) in {run_dir}"
        )
        # An interrupted run continues from its last checkpoint (its train
        # seconds then count this invocation only).
        results, status = cli.train_reporting_errors(config, run_dir)
        if results is None:
          return status
      summary[loss][name] = {
        k: results[k]
        for k in (
          "clip",
          "p",
          "steps_done",
          "train_seconds_this_run",
          "test_si_sdr_db",
          "test_si_sdri_db",
          "num_test_utterances",
          "clip_fraction",
        )
      }
  (workdir / "comparison.json").write_text(json.dumps(summary, indent=2))
  (workdir / "comparison.md").write_text(
    markdown(
      summary,
      args,
      " ".join(
        [
          "python -m examples.separation.compare",
          *(argv if argv is not None else sys.argv[1:]),
        ]
      ),
      first,
    )
  )
  print(
    f"\nTest SI-SDRi ({args.preset} preset, seed {args.seed}, "
    f"{data_description(args, first)}):"
  )
  for loss, runs in summary.items():
    for name, s in runs.items():
      print(
        f"  {loss:8s} {name:14s} {s['test_si_sdri_db']:6.2f} dB  "
        f"(SI-SDR {s['test_si_sdr_db']:.2f} dB, "
        f"{s['num_test_utterances']} utterances, "
        f"{s['train_seconds_this_run']:.0f} s)"
      )
  return 0


if __name__ == "__main__":
  sys.exit(main())
