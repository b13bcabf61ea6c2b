"""Statistics of the percentile sweep: confidence intervals over seeds.

The sweep trains every (loss, p) cell with the same seeds, and a seed fixes
the initialisation, the batch order and the test set for every p of a loss.
So the difference between two values of p is measured *paired*: per seed,
on the same run otherwise. This module holds the small amount of statistics
the sweep's tables need:

* :func:`t_interval`: mean and the half-width of its two-sided 95 %
  Student-t interval over seeds (the seeds are the independent units);
* :func:`paired_differences`: per seed, ``value(p) - value(reference p)``
  for the seeds where both runs finished;
* :func:`paired_summary`: the paired t interval of those differences and how
  many seeds favour each side.
"""

import math
from collections.abc import Sequence


def t_quantile(confidence: float, dof: int) -> float:
  """The two-sided ``confidence`` quantile of Student's t with ``dof``."""
  from scipy import stats  # pylint: disable=import-outside-toplevel

  return float(stats.t.ppf(0.5 + confidence / 2, dof))


def t_interval(
  values: Sequence[float], confidence: float = 0.95
) -> tuple[float, float]:
  """``(mean, half_width)`` of the Student-t interval of the mean.

  ``half_width`` is ``nan`` for fewer than two values (no spread to
  estimate), ``0`` when every value is the same.
  """
  n = len(values)
  if n == 0:
    return math.nan, math.nan
  mean = sum(values) / n
  if n < 2:
    return mean, math.nan
  std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
  return mean, t_quantile(confidence, n - 1) * std / math.sqrt(n)


def paired_differences(
  rows: Sequence[dict], loss: str, p: float, reference: float
) -> list[float]:
  """Per seed, ``test_si_sdri_db`` at ``p`` minus at ``reference``.

  Only seeds where both runs finished (not diverged) count; the result is
  ordered by seed.
  """
  by_seed: dict[float, dict[int, float]] = {p: {}, reference: {}}
  for r in rows:
    value = r.get("test_si_sdri_db")
    if r["loss"] != loss or r["p"] not in by_seed or value is None:
      continue
    by_seed[r["p"]][int(r["seed"])] = float(value)
  seeds = sorted(set(by_seed[p]) & set(by_seed[reference]))
  return [by_seed[p][s] - by_seed[reference][s] for s in seeds]


def paired_summary(diffs: Sequence[float], confidence: float = 0.95) -> dict:
  """Mean paired difference, its t interval and the seeds on each side.

  Returns ``{"n", "mean", "low", "high", "above", "below", "ties"}``:
  ``above`` counts the seeds with a positive difference.
  """
  mean, half = t_interval(diffs, confidence)
  return {
    "n": len(diffs),
    "mean": mean,
    "low": mean - half,
    "high": mean + half,
    "above": sum(d > 0 for d in diffs),
    "below": sum(d < 0 for d in diffs),
    "ties": sum(d == 0 for d in diffs),
  }


def verdict(summary: dict) -> str:
  """Which side the interval excludes zero on, in words."""
  if summary["n"] < 2 or math.isnan(summary["low"]):
    return "too few seeds"
  if summary["low"] > 0:
    return "higher"
  if summary["high"] < 0:
    return "lower"
  return "not distinguishable"
