"""Which training data carries over to unseen voices: recipes on tts2mix.

``python -m examples.separation.recipes --tts-root ROOT [--recipes a,b]
[--workdir results/recipes]`` trains the ``tiny`` L_MI separator (AutoClip
p = 10, seed 0) with each recipe below -- synthetic talkers, the tts2mix
training voices, dynamic mixing, a blend of both -- and evaluates every
model on the **test voices** of a ``tts2mix`` build (voices never heard in
training), split by the talkers' sexes (``mixtures.csv`` of the build):
mixed pairs are what a pitch-register cue can separate, same-sex pairs are
not. It is the project's only evidence about speech it was not trained on,
and it chose the data recipe that the ``tiny`` preset's file-data defaults
and the shipped pretrained model (``pretrained/train_default.sh``) use.

Each recipe's run goes to ``WORKDIR/NAME`` (its usual outputs) and its
evaluation to ``WORKDIR/NAME/eval_tts_tt``; a finished run or evaluation is
read back, not redone (delete the folder to redo it). The table goes to
``WORKDIR/table.md`` and ``WORKDIR/table.json``.
"""

import argparse
import csv
import dataclasses
import json
import pathlib
import sys
from collections.abc import Sequence

import numpy as np

from examples.separation import cli
from examples.separation import configs
from examples.separation import separator

# Half dynamic mixtures of the tts2mix training voices, half synthetic
# mixtures of any two synthetic talkers.
_BLEND50_ANY = {
  "data": "tts",
  "dynamic_mixing": True,
  "synthetic_fraction": 0.5,
  "pairing": "any",
}

# name -> (description, Config overrides on the tiny preset). "tts" is
# replaced by the --tts-root build.
RECIPES: dict[str, tuple[str, dict]] = {
  "synthetic": ("synthetic talkers (low + high register pairs)", {}),
  "synthetic_12k": (
    "synthetic talkers, 12000 steps",
    {"steps": 12000, "num_test": 100},
  ),
  "synthetic_24k": (
    "synthetic talkers, 24000 steps",
    {"steps": 24000, "num_test": 100},
  ),
  "synthetic_h128": (
    "synthetic talkers, 2 x 128 BLSTM, 6000 steps",
    {"hidden": 128, "steps": 6000, "num_test": 100},
  ),
  "synthetic_any": (
    "synthetic talkers, any two speakers",
    {"pairing": "any"},
  ),
  "tts": ("tts2mix training mixtures", {"data": "tts"}),
  "tts_dm": (
    "tts2mix training voices, dynamic mixing",
    {"data": "tts", "dynamic_mixing": True},
  ),
  "blend50": (
    "tts2mix voices with dynamic mixing + 50 % synthetic",
    {"data": "tts", "dynamic_mixing": True, "synthetic_fraction": 0.5},
  ),
  "blend50_any": ("as blend50, synthetic any two speakers", _BLEND50_ANY),
  # Fine-tuning the synthetic_12k model (``init_from``; "synthetic_12k"
  # stands for its export, examples/separation/pretrained/synthetic_12k) on
  # harder pairs: it separates mixed-sex pairs by register but not same-sex
  # ones.
  "ft_any": (
    "synthetic_12k fine-tuned on synthetic any-two-speaker pairs",
    {"init_from": "synthetic_12k", "pairing": "any"},
  ),
  "ft_blend50_any": (
    "synthetic_12k fine-tuned as blend50_any",
    {"init_from": "synthetic_12k", **_BLEND50_ANY},
  ),
  "ft_blend50_any_9k": (
    "synthetic_12k fine-tuned as blend50_any, 9000 steps",
    {"init_from": "synthetic_12k", **_BLEND50_ANY, "steps": 9000},
  ),
  # Speed perturbation of the remixed TTS sources (1 +- 0.15): new, higher
  # and lower voices from the same talkers.
  "tts_dm_sp15": (
    "as tts_dm, each source at a random speed in 0.85-1.15",
    {"data": "tts", "dynamic_mixing": True, "speed_perturbation": 0.15},
  ),
  "ft_blend50_any_9k_sp15": (
    "as ft_blend50_any_9k, TTS sources at a random speed in 0.85-1.15",
    {
      "init_from": "synthetic_12k",
      **_BLEND50_ANY,
      "steps": 9000,
      "speed_perturbation": 0.15,
    },
  ),
}

PAIR_KINDS = ("FM", "FF", "MM")


def recipe_config(name: str, tts_root: str, num_test: int) -> configs.Config:
  """The tiny-preset L_MI Config of recipe ``name`` (validated)."""
  overrides = dict(RECIPES[name][1])
  if overrides.get("data") == "tts":
    # Each recipe spells out its data settings, not the tiny preset's
    # file-data refinement (configs.DATA_PRESETS, which came later).
    overrides = {
      **configs.without_data_preset("tiny", "mi"),
      **overrides,
      "data": "wsj0-2mix",
      "data_root": tts_root,
    }
  num_test = overrides.pop("num_test", num_test)
  if overrides.get("init_from") is not None:
    overrides["init_from"] = str(
      separator.PRETRAINED_DIR / overrides["init_from"]
    )
  config = configs.get_config(
    "tiny",
    loss="mi",
    progress=False,
    # The recorded recipes (and synthetic_12k, the shipped model's start)
    # were trained on numpy-rendered batches.
    synthetic_renderer="numpy",
    num_test_examples=num_test,
    max_eval_examples=num_test,
    **overrides,
  )
  configs.validate(config)
  return config


def pair_kinds(tts_root: pathlib.Path, split: str = "tt") -> dict[str, str]:
  """Mixture name -> 'FM' / 'FF' / 'MM' from the build's mixtures.csv."""
  path = tts_root / "mixtures.csv"
  if not path.is_file():
    raise ValueError(f"--tts-root {str(tts_root)!r} has no mixtures.csv")
  kinds = {}
  with path.open(encoding="utf-8", newline="") as f:
    reader = csv.DictReader(f)
    missing = {"split", "name", "s1_sex", "s2_sex"} - set(
      reader.fieldnames or ()
    )
    if missing:
      raise ValueError(
        f"{path} lacks the columns {sorted(missing)} of a tts2mix build"
      )
    for row in reader:
      if row["split"] == split:
        sexes = sorted((row["s1_sex"] or "") + (row["s2_sex"] or ""))
        kinds[row["name"]] = "FM" if sexes == ["F", "M"] else "".join(sexes)
  return kinds


def breakdown(per_utterance_csv: pathlib.Path, kinds: dict[str, str]) -> dict:
  """Mean SI-SDRi overall and per pair kind, with utterance counts."""
  by_kind: dict[str, list[float]] = {k: [] for k in PAIR_KINDS}
  every = []
  with per_utterance_csv.open(encoding="utf-8", newline="") as f:
    for row in csv.DictReader(f):
      value = float(row["si_sdri_db"])
      every.append(value)
      by_kind[kinds[row["name"]]].append(value)
  out = {"all": float(np.mean(every)), "num": len(every)}
  for kind, values in by_kind.items():
    out[kind] = float(np.mean(values)) if values else None
    out[f"num_{kind}"] = len(values)
  return out


def last_validation(metrics_path: pathlib.Path) -> float | None:
  """The run's last validation SI-SDRi (its own validation set)."""
  value = None
  with metrics_path.open(encoding="utf-8") as f:
    for line in f:
      record = json.loads(line)
      if "val_si_sdri_db" in record:
        value = float(record["val_si_sdri_db"])
  return value


def format_db(x: float | None) -> str:
  """A dB value for a table, signed, two decimals; ``-`` for ``None``."""
  return "-" if x is None else f"{x:+.2f}"


def markdown(rows: list[dict], command: str, tts_root: str) -> str:
  counts = rows[0]["tts_tt"] if rows else {}
  lines = [
    f"`{command}` -- tiny preset, L_MI, AutoClip p = 10, seed 0; test: "
    f"the {counts.get('num', 0)} test mixtures of the tts2mix build in "
    f"{tts_root} (voices unseen in training; "
    + ", ".join(f"{counts.get('num_' + k, 0)} {k}" for k in PAIR_KINDS)
    + f"); machine: {cli.machine_description()}.",
    "",
    "| recipe | training data | steps | train s | own validation "
    "SI-SDRi (dB) | own test SI-SDRi (dB) | TTS test voices: all | "
    "mixed-sex | F+F | M+M |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ]

  for r in rows:
    t = r["tts_tt"]
    lines.append(
      f"| {r['name']} | {r['description']} | {r['steps_done']} | "
      f"{r['train_seconds_this_run']:.0f} | {format_db(r['val_si_sdri_db'])} | "
      f"{format_db(r['test_si_sdri_db'])} "
      f"({r['own_test']}) | {format_db(t['all'])} | {format_db(t['FM'])} | "
      f"{format_db(t['FF'])} | {format_db(t['MM'])} |"
    )
  return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
    prog="python -m examples.separation.recipes",
    description=__doc__.split("\n")[0],
  )
  parser.add_argument(
    "--tts-root", required=True, help="a tts2mix build (its tt split)"
  )
  parser.add_argument(
    "--recipes",
    default="all",
    help=f"comma-separated, from {tuple(RECIPES)}, or 'all'",
  )
  parser.add_argument(
    "--num-test",
    type=cli.positive_int,
    default=40,
    help="test utterances of each run's own test set (40; the two longer "
    "synthetic recipes use 100)",
  )
  parser.add_argument("--workdir", default="runs/recipes")
  args = parser.parse_args(argv)
  try:
    names = (
      list(RECIPES)
      if args.recipes.strip() == "all"
      else [x.strip() for x in args.recipes.split(",") if x.strip()]
    )
    bad = [n for n in names if n not in RECIPES]
    if not names or bad:
      raise ValueError(
        f"--recipes {args.recipes!r}: each must be one of {tuple(RECIPES)}"
      )
    tts_root = pathlib.Path(args.tts_root)
    if not (tts_root / "voices.json").is_file():
      raise ValueError(
        f"--tts-root {args.tts_root!r} is not a tts2mix build (no voices.json)"
      )
    kinds = pair_kinds(tts_root)
    plan = {n: recipe_config(n, args.tts_root, args.num_test) for n in names}
    workdir = cli.check_workdir(args.workdir)
  except ValueError as e:
    parser.exit(2, f"error: {cli._flag_message(str(e))}\n")  # pylint: disable=protected-access

  # pylint: disable=import-outside-toplevel
  from examples.separation import evaluate
  from examples.separation import train

  try:
    # Every run is checked before anything trains: a finished one trained
    # with other settings is not reused, nor an interrupted one resumed.
    finished = {
      name: train.read_finished(config, workdir / name)
      for name, config in plan.items()
    }
  except train.WorkdirError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  for name, config in plan.items():
    run_dir = workdir / name
    results = finished[name]
    if results is not None:
      print(f"{name}: finished earlier, read {run_dir / 'results.json'}")
    else:
      print(f"{name}: training ({config.steps} steps) in {run_dir}")
      # An interrupted run continues from its last checkpoint.
      results, status = cli.train_reporting_errors(config, run_dir)
      if results is None:
        return status
    eval_dir = run_dir / "eval_tts_tt"
    if not (eval_dir / "per_utterance.csv").exists():
      status = evaluate.main(
        [
          "--model",
          str(run_dir),
          "--data",
          "wsj0-2mix",
          "--data-root",
          args.tts_root,
          "--split",
          "test",
          "--no-progress",
          "--num-wavs",
          "0",
          "--workdir",
          str(eval_dir),
        ]
      )
      if status:
        return status
  # The table covers every finished recipe in the workdir, not only the
  # ones run now.
  rows = []
  for name in RECIPES:
    run_dir = workdir / name
    results_path = run_dir / "results.json"
    eval_dir = run_dir / "eval_tts_tt"
    if not (
      results_path.exists() and (eval_dir / "per_utterance.csv").exists()
    ):
      continue
    results = json.loads(results_path.read_text())
    config = recipe_config(name, args.tts_root, args.num_test)
    rows.append(
      {
        "name": name,
        "description": RECIPES[name][0],
        "config": dataclasses.asdict(config)
        | {
          "data_root": None,
          "init_from": RECIPES[name][1].get("init_from"),
        },
        "steps_done": results["steps_done"],
        "train_seconds_this_run": results["train_seconds_this_run"],
        "test_si_sdri_db": results["test_si_sdri_db"],
        "val_si_sdri_db": last_validation(run_dir / "metrics.jsonl"),
        "own_test": (
          f"{results['num_test_utterances']} "
          + ("synthetic" if config.data == "synthetic" else "TTS")
        ),
        "tts_tt": breakdown(eval_dir / "per_utterance.csv", kinds),
      }
    )
  command = (
    f"python -m examples.separation.recipes --tts-root TTS_ROOT "
    f"--workdir {args.workdir}"
  )
  (workdir / "table.json").write_text(json.dumps(rows, indent=2) + "\n")
  text = markdown(rows, command, "TTS_ROOT")
  (workdir / "table.md").write_text(text)
  print(text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
