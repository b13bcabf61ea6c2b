"""The README's main job: train with AutoClip (p = 10) and without clipping.

``python -m examples.separation.compare [--preset tiny] [--loss mi]
[--seed 0] [--steps N] [--workdir runs/compare]`` trains the same model on the
same data twice -- ``chain(autoclip(p), adam(1e-3))`` and ``adam(1e-3)`` alone
-- and prints both runs' test SI-SDR improvement. Each run writes its usual
outputs (``metrics.jsonl``, ``results.json``, wav examples) under
``WORKDIR/autoclip_p10`` and ``WORKDIR/no_clipping``; a finished run is not
trained again (delete its folder to retrain). The summary goes to
``WORKDIR/comparison.json``.
"""

import argparse
import json
import sys

from examples.separation import cli
from examples.separation import configs


def run_configs(preset: str, loss: str, seed: int, steps: int | None,
                p: float) -> dict[str, configs.Config]:
  """The two configs, named by their run folder."""
  extra = {} if steps is None else {"steps": steps,
                                    "eval_every": min(steps, 500),
                                    "checkpoint_every": min(steps, 500)}
  tag = f"autoclip_p{p:g}"
  return {
      tag: configs.get_config(preset, loss=loss, seed=seed, clip="autoclip",
                              p=p, **extra),
      "no_clipping": configs.get_config(preset, loss=loss, seed=seed,
                                        clip="none", **extra),
  }


def markdown(summary: dict, args: argparse.Namespace, command: str) -> str:
  lines = [f"`{command}` -- {args.preset} preset, loss {args.loss}, seed "
           f"{args.seed}, synthetic two-talker data; machine: {cli.machine_description()}.",
           "",
           "| run | steps | clip fraction | test SI-SDR (dB) | "
           "test SI-SDRi (dB) | test utterances |",
           "|---|---|---|---|---|---|"]
  for name, s in summary.items():
    frac = ("-" if s["clip_fraction"] is None
            else f"{s['clip_fraction']:.2f}")
    lines.append(f"| {name} | {s['steps_done']} | {frac} | "
                 f"{s['test_si_sdr_db']:.2f} | {s['test_si_sdri_db']:.2f} | "
                 f"{s['num_test_utterances']} |")
  return "\n".join(lines) + "\n"


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m examples.separation.compare",
      description=__doc__.split("\n")[0])
  parser.add_argument("--preset", default="tiny",
                      help=f"one of {tuple(configs.PRESETS)}")
  parser.add_argument("--loss", default="mi",
                      help=f"one of {configs.LOSSES}")
  parser.add_argument("--p", type=float, default=10.0)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--steps", type=int, default=None)
  parser.add_argument("--workdir", default="runs/compare")
  args = parser.parse_args(argv)
  try:
    if args.preset not in configs.PRESETS:
      raise ValueError(f"--preset {args.preset!r} is not one of "
                       f"{tuple(configs.PRESETS)}")
    runs = run_configs(args.preset, args.loss, args.seed, args.steps, args.p)
    for config in runs.values():
      configs.validate(config)
    workdir = cli.check_workdir(args.workdir)
  except ValueError as e:
    parser.exit(2, f"error: {cli._flag_message(str(e))}\n")  # pylint: disable=protected-access

  from examples.separation import train  # pylint: disable=import-outside-toplevel
  summary = {}
  for name, config in runs.items():
    run_dir = workdir / name
    results_path = run_dir / "results.json"
    if results_path.exists():
      results = json.loads(results_path.read_text())
      print(f"{name}: finished earlier, read {results_path}")
    else:
      print(f"{name}: training {config.preset} ({config.steps} steps, "
            f"loss {config.loss}) in {run_dir}")
      try:
        results = train.train_and_evaluate(config, str(run_dir))
      except train.TrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    summary[name] = {k: results[k] for k in (
        "clip", "p", "steps_done", "test_si_sdr_db", "test_si_sdri_db",
        "num_test_utterances", "clip_fraction")}
  (workdir / "comparison.json").write_text(json.dumps(summary, indent=2))
  (workdir / "comparison.md").write_text(
      markdown(summary, args, " ".join(["python -m examples.separation.compare",
                                        *(argv if argv is not None
                                          else sys.argv[1:])])))
  print(f"\nTest SI-SDRi ({args.preset} preset, loss {args.loss}, seed "
        f"{args.seed}, synthetic two-talker data):")
  for name, s in summary.items():
    print(f"  {name:14s} {s['test_si_sdri_db']:6.2f} dB  "
          f"(SI-SDR {s['test_si_sdr_db']:.2f} dB, "
          f"{s['num_test_utterances']} utterances)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
