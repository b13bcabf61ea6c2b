"""The table of the shipped models' evaluations (``results/pretrained``).

``python -m examples.separation.pretrained_summary TTS_ROOT CHECK_ROOT
[--results results/pretrained]`` reads the ``summary.json`` and
``per_utterance.csv`` that ``pretrained/train_default.sh`` wrote with
``python -m examples.separation.evaluate`` for each shipped model and test
set, and writes ``RESULTS/summary.md``: one row per model, test set and
processing, with the TTS rows split by the talkers' sexes (mixed-sex pairs
can be told apart by register, same-sex pairs cannot).
"""

import argparse
import json
import pathlib
import sys
from collections.abc import Sequence

from examples.separation import cli
from examples.separation import recipes

MODELS = {
  "default": "default (L_SNR, file-data curriculum)",
  "synthetic_12k": "synthetic_12k (synthetic data only)",
}
# folder -> (test set, processing, tts build: 'tts', 'check' or None)
TEST_SETS = {
  "tts": ("TTS test voices, seed-0 build", "whole utterance", "tts"),
  "tts_chunked": (
    "TTS test voices, seed-0 build",
    "1 s chunks, 0.25 s overlap",
    "tts",
  ),
  "check": ("TTS test voices, seed-1 check build", "whole utterance", "check"),
  "synthetic": ("synthetic", "whole utterance", None),
  "synthetic_chunked": ("synthetic", "1 s chunks, 0.25 s overlap", None),
}


def _fmt(x: float | None) -> str:
  return "-" if x is None else f"{x:.2f}"


def _machines(found: dict[str, list[str]]) -> str:
  """The machine(s) that ran the evaluations: ``{machine: [model, ...]}``."""
  if len(found) <= 1:
    return next(iter(found), cli.machine_description())
  return "; ".join(
    f"{machine} ({', '.join(models)})" for machine, models in found.items()
  )


def markdown(results: pathlib.Path, roots: dict[str, pathlib.Path]) -> str:
  """The summary table of every evaluation found under ``results``."""
  kinds = {name: recipes.pair_kinds(root) for name, root in roots.items()}
  rows = []
  machines: dict[str, list[str]] = {}
  for model, model_name in MODELS.items():
    for folder, (test_set, how, build) in TEST_SETS.items():
      path = results / model / folder
      if not (path / "summary.json").is_file():
        continue
      s = json.loads((path / "summary.json").read_text())
      machine = s.get("machine") or cli.machine_description()
      if model not in machines.setdefault(machine, []):
        machines[machine].append(model)
      by_kind = dict.fromkeys(recipes.PAIR_KINDS)
      if build is not None:
        b = recipes.breakdown(path / "per_utterance.csv", kinds[build])
        by_kind = {k: b[k] for k in by_kind}
      db = recipes.format_db
      rows.append(
        f"| {model_name} | {test_set} | {how} | {s['num_utterances']} | "
        f"{db(s.get('si_sdri_db'))} | "
        + " | ".join(db(by_kind[k]) for k in recipes.PAIR_KINDS)
        + f" | {db(s.get('si_sdri_db_median'))} | "
        f"{db(s.get('si_sdri_db_p10'))} | {db(s.get('sdri_db'))} | "
        f"{_fmt(s.get('stoi'))} | {_fmt(s.get('pesq'))} |"
      )
  lines = [
    "`bash examples/separation/pretrained/train_default.sh TTS_ROOT "
    "CHECK_ROOT` -- the shipped models evaluated with `python -m "
    "examples.separation.evaluate`; TTS: the held-out test voices (never "
    "in training) of the 300/20/40 tts2mix build (seed 0, which chose the "
    "recipe) and of a seed-1 build of 200 new test mixtures (the check); "
    f"machine: {_machines(machines)}.",
    "",
    "| model | test set | processing | utterances | SI-SDRi (dB) | "
    "mixed-sex | F+F | M+M | median | 10th pct | SDRi (dB) | STOI | "
    "PESQ (nb) |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    *rows,
  ]
  return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
    prog="python -m examples.separation.pretrained_summary",
    description=__doc__.split("\n")[0],
  )
  parser.add_argument("tts_root", help="the seed-0 tts2mix build")
  parser.add_argument("check_root", help="the seed-1 check build")
  parser.add_argument("--results", default="results/pretrained")
  args = parser.parse_args(argv)
  roots = {"tts": args.tts_root, "check": args.check_root}
  for name, root in roots.items():
    if not (pathlib.Path(root) / "mixtures.csv").is_file():
      parser.error(f"{name}_root {root!r} has no mixtures.csv")
  results = pathlib.Path(args.results)
  if not results.is_dir():
    parser.error(f"--results {args.results!r} is not a directory")
  table = markdown(results, {k: pathlib.Path(v) for k, v in roots.items()})
  (results / "summary.md").write_text(table, encoding="utf-8")
  print(table)
  return 0


if __name__ == "__main__":  # pragma: no cover
  sys.exit(main())
