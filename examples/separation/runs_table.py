"""A table of finished training runs scored on a tts2mix build's test voices.

``python -m examples.separation.runs_table RUN_DIR [RUN_DIR ...] --tts-root
ROOT [--scores CSV] [--out FILE.md]`` reads each run's ``results.json`` and
``test_per_utterance.csv`` (as ``python -m examples.separation.train`` writes
them; ``--scores eval_check/per_utterance.csv``: the scores of an
``evaluate`` workdir inside each run, e.g. on another build) and prints one
row per run: its loss, seed, network (BLSTM layers x
units per direction), the data settings that tell the runs apart, steps,
training seconds, the machine, and its test
SI-SDRi overall and by the talkers' sexes (mixed-sex pairs can be told apart
by register, same-sex pairs cannot; the sexes come from the build's
``mixtures.csv``). Runs recorded before a setting existed show its old
default.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from collections.abc import Sequence

from examples.separation import configs
from examples.separation import recipes

# Config field -> (column, value in runs recorded before the field existed).
SETTINGS = {
  "distinct_talkers": ("distinct talkers", False),
  "normalize_levels": ("levels normalised", False),
  "speed_perturbation": ("speed perturbation", 0.0),
  "synthetic_fraction": ("synthetic share", 0.0),
}


def _setting(value) -> str:
  if isinstance(value, bool):
    return "yes" if value else "no"
  return f"{value:g}"


SCORES = "test_per_utterance.csv"


def read_run(
  run_dir: pathlib.Path, kinds: dict[str, str], scores: str = SCORES
) -> dict:
  """One table row's values from a finished run directory.

  ``scores``: the per-utterance CSV, relative to ``run_dir``.
  """
  results_path = run_dir / "results.json"
  csv_path = run_dir / scores
  for path in (results_path, csv_path):
    if not path.is_file():
      raise ValueError(
        f"{run_dir}: no {path.relative_to(run_dir)} (not a finished run, or "
        "not evaluated there)"
      )
  results = json.loads(results_path.read_text())
  try:
    scores = recipes.breakdown(csv_path, kinds)
  except KeyError as e:
    raise ValueError(
      f"{csv_path}: mixture {e} is not a test mixture of the --tts-root build"
    ) from None
  return {"run": str(run_dir), "results": results, "scores": scores}


def markdown(
  rows: list[dict], command: str, tts_root: str, scores: str = SCORES
) -> str:
  """The table, with a header naming the command and the test set."""
  head = ["run", "loss", "seed", "BLSTM"] + [c for c, _ in SETTINGS.values()]
  head += ["steps", "train s", "machine", "test utterances", "SI-SDRi (dB)"]
  head += ["mixed-sex", "F+F", "M+M"]
  lines = [
    f"`{command}` -- each run trained by `python -m examples.separation.train"
    f"` (its results.json has the full config); test: the held-out voices "
    f"of the tts2mix build in {tts_root}"
    + ("." if scores == SCORES else f", scores from each run's {scores}."),
    "",
    "| " + " | ".join(head) + " |",
    "|" + "---|" * len(head),
  ]
  db = recipes.format_db
  for row in rows:
    r, s = row["results"], row["scores"]
    layers = r.get("num_layers", configs.Config.num_layers)
    units = r.get("hidden", configs.Config.hidden)
    cells = [row["run"], r["loss"], str(r["seed"]), f"{layers} x {units}"]
    values = {field: r.get(field, old) for field, (_, old) in SETTINGS.items()}
    # Both refine dynamic mixing, and mean nothing without it.
    for field in ("distinct_talkers", "speed_perturbation"):
      if not r.get("dynamic_mixing", False):
        values[field] = SETTINGS[field][1]
    cells += [_setting(value) for value in values.values()]
    cells += [
      str(r["steps_done"]),
      f"{r['train_seconds_this_run']:.0f}",
      r.get("machine", "-"),
      str(s["num"]),
      db(s["all"]),
    ]
    cells += [db(s[k]) for k in recipes.PAIR_KINDS]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
    prog="python -m examples.separation.runs_table",
    description=__doc__.split("\n")[0],
  )
  parser.add_argument("runs", nargs="+", help="finished training workdirs")
  parser.add_argument("--tts-root", required=True, help="the tts2mix build")
  parser.add_argument(
    "--scores",
    default=SCORES,
    metavar="CSV",
    help="per-utterance scores, relative to each run directory (default: "
    "training's test scores; e.g. EVAL/per_utterance.csv for an evaluate "
    "workdir inside the run)",
  )
  parser.add_argument("--out", default=None, help="also write it here")
  args = parser.parse_args(argv)
  try:
    kinds = recipes.pair_kinds(pathlib.Path(args.tts_root))
    scores = pathlib.PurePath(args.scores)
    if scores.is_absolute() or ".." in scores.parts:
      raise ValueError(
        f"--scores {args.scores!r} must be a path inside each run directory"
      )
    rows = [
      read_run(pathlib.Path(run), kinds, args.scores) for run in args.runs
    ]
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  command = " ".join(
    ["python -m examples.separation.runs_table", *(argv or sys.argv[1:])]
  )
  table = markdown(rows, command, args.tts_root, args.scores)
  print(table, end="")
  if args.out:
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
  return 0


if __name__ == "__main__":
  sys.exit(main())
