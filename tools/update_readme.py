"""Copies generated results into README.md between marker comments.

``python tools/update_readme.py`` replaces each block

    <!-- BEGIN GENERATED: name -->
    ...
    <!-- END GENERATED: name -->

with the current content of the file that ``SOURCES[name]`` names (a
markdown file written by a benchmark or experiment script), so that every
number in the README comes from a script's output and none is typed by hand.
A missing source leaves a note saying which command produces it.
``--check`` exits with status 1 if README.md is out of date.
"""

import argparse
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]

# name -> (source file, command that writes it)
SOURCES = {
  "compare": (
    "results/compare/comparison.md",
    "python -m examples.separation.compare --workdir results/compare",
  ),
  "tiny_losses": (
    "results/tiny_losses/comparison.md",
    "python -m examples.separation.compare --losses all --clips autoclip "
    "--workdir results/tiny_losses",
  ),
  "tts_losses": (
    "results/tts_losses/table.md",
    "python -m examples.separation.runs_table results/tts_losses/RUN ... "
    "--tts-root TTS_ROOT --out results/tts_losses/table.md",
  ),
  "tts_losses_check": (
    "results/tts_losses/check_table.md",
    "python -m examples.separation.runs_table results/tts_losses/RUN ... "
    "--tts-root CHECK_ROOT --scores eval_check200/per_utterance.csv "
    "--out results/tts_losses/check_table.md",
  ),
  "tts_defaults": (
    "results/tts_defaults/table.md",
    "python -m examples.separation.runs_table RUN_DIRS --tts-root TTS_ROOT "
    "--out results/tts_defaults/table.md",
  ),
  "recipes": (
    "results/recipes/table.md",
    "python -m examples.separation.recipes --tts-root TTS_ROOT "
    "--workdir results/recipes",
  ),
  "recipes_tts1500": (
    "results/recipes_tts1500/table.md",
    "python -m examples.separation.recipes --tts-root TTS1500_ROOT "
    "--recipes ft_blend50_any_9k --workdir results/recipes_tts1500",
  ),
  "pretrained": (
    "results/pretrained/summary.md",
    "bash examples/separation/pretrained/train_default.sh TTS_ROOT CHECK_ROOT",
  ),
  "train_loop": (
    "benchmarks/results/train_loop_cpu.md",
    "python benchmarks/train_loop.py"
    " --out benchmarks/results/train_loop_cpu.md",
  ),
  "train_loop_one_thread": (
    "benchmarks/results/train_loop_cpu_one_thread.md",
    "XLA_FLAGS=--xla_cpu_multi_thread_eigen=false python "
    "benchmarks/train_loop.py --presets tiny --rounds 5"
    " --out benchmarks/results/train_loop_cpu_one_thread.md",
  ),
  "loop_breakdown": (
    "benchmarks/results/loop_breakdown_cpu.md",
    "XLA_FLAGS=--xla_cpu_multi_thread_eigen=false python "
    "benchmarks/loop_breakdown.py"
    " --out benchmarks/results/loop_breakdown_cpu.md",
  ),
  "synthetic_render": (
    "benchmarks/results/synthetic_render_cpu.md",
    "python benchmarks/synthetic_render.py"
    " --out benchmarks/results/synthetic_render_cpu.md",
  ),
  "parallel_runs": (
    "benchmarks/results/parallel_runs_cpu.md",
    "python benchmarks/parallel_runs.py > "
    "benchmarks/results/parallel_runs_cpu.md",
  ),
  "claims": (
    "results/claims.md",
    "python -m examples.separation.claims",
  ),
  "sweep": (
    "results/sweep/table.md",
    "python -m examples.separation.sweep --workdir results/sweep --workers 2",
  ),
  "sweep_paired": (
    "results/sweep/paired.md",
    "python -m examples.separation.sweep --workdir results/sweep --workers 2",
  ),
  "sweep_mi_b2_paired": (
    "results/sweep_mi_b2/paired.md",
    "python -m examples.separation.sweep --workdir results/sweep_mi_b2 "
    "--losses mi --ps 10,100 --set adam_b2=0.9 --workers 2",
  ),
  "small_losses": (
    "results/small_losses/comparison.md",
    "python -m examples.separation.compare --preset small --losses LOSSES "
    "--clips autoclip --workdir results/small_losses",
  ),
  "sweep_tts": (
    "results/sweep_tts/table.md",
    "python -m examples.separation.sweep --data wsj0-2mix --data-root "
    "TTS_ROOT --ps 10,100 --workdir results/sweep_tts --workers 2",
  ),
  "sweep_tts_paired": (
    "results/sweep_tts/paired.md",
    "python -m examples.separation.sweep --data wsj0-2mix --data-root "
    "TTS_ROOT --ps 10,100 --workdir results/sweep_tts --workers 2",
  ),
  "dynamics": (
    "results/dynamics/summary.md",
    "python -m examples.separation.dynamics --workdir results/dynamics",
  ),
  "reweighting": (
    "results/reweighting/table.md",
    "python -m examples.separation.reweighting_table "
    "--workdir results/reweighting",
  ),
  "overhead": (
    "benchmarks/results/overhead_cpu.md",
    "python benchmarks/overhead.py > benchmarks/results/overhead_cpu.md",
  ),
  "blstm": (
    "benchmarks/results/blstm_step_cpu.txt",
    "python benchmarks/blstm_step.py > benchmarks/results/blstm_step_cpu.txt",
  ),
}

_BLOCK = re.compile(
  r"(<!-- BEGIN GENERATED: (?P<name>[\w-]+) -->\n).*?"
  r"(<!-- END GENERATED: (?P=name) -->)",
  re.S,
)


def render(name: str) -> str:
  path, command = SOURCES[name]
  source = ROOT / path
  if not source.exists():
    return f"*(not generated yet: run `{command}`)*\n"
  text = source.read_text(encoding="utf-8").rstrip("\n") + "\n"
  if source.suffix != ".md":  # Plain console output: keep it verbatim.
    text = "```\n" + text + "```\n"
  return text + f"\n<sub>Source: `{path}`, written by `{command}`.</sub>\n"


def update(readme: str) -> str:
  def substitute(match):
    name = match.group("name")
    if name not in SOURCES:
      raise SystemExit(f"README block {name!r} has no entry in SOURCES")
    return match.group(1) + render(name) + match.group(3)

  return _BLOCK.sub(substitute, readme)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument(
    "--check",
    action="store_true",
    help="only report whether README.md is up to date",
  )
  args = parser.parse_args(argv)
  path = ROOT / "README.md"
  old = path.read_text(encoding="utf-8")
  new = update(old)
  if args.check:
    if new != old:
      print("README.md is out of date: run python tools/update_readme.py")
      return 1
    return 0
  path.write_text(new, encoding="utf-8")
  return 0


if __name__ == "__main__":
  sys.exit(main())
