"""The claims report reads the sweeps and the dynamics study correctly."""

import json

import pytest

from examples.separation import claims
from examples.separation import sweep


def _write_sweep(directory, values):
  """``values[(loss, p)] = [per-seed SI-SDRi]`` -> ``directory/sweep.csv``."""
  rows = [
    {"loss": loss, "p": p, "seed": seed, "test_si_sdri_db": v, "status": "ok"}
    for (loss, p), vs in values.items()
    for seed, v in enumerate(vs)
  ]
  directory.mkdir(parents=True)
  sweep.write_csv(rows, directory / "sweep.csv")


def test_claim_a_verdicts_from_paired_seeds(tmp_path):
  _write_sweep(
    tmp_path / "syn",
    {
      # p = 10 above p = 100 by 1.0 +- 0.1 on every seed: "higher".
      ("mi", 10.0): [5.0, 6.1, 4.9],
      ("mi", 100.0): [4.0, 5.0, 4.0],
      # Seeds disagree: "not distinguishable".
      ("dc", 10.0): [5.0, 4.0, 6.0],
      ("dc", 100.0): [4.5, 4.5, 5.5],
      # p = 10 below: "lower"; a third p makes "p = 100 lowest" checkable.
      ("snr", 10.0): [3.0, 3.1, 2.9],
      ("snr", 100.0): [4.0, 4.0, 4.0],
      ("snr", 50.0): [3.5, 3.5, 3.5],
    },
  )
  text = claims.report(tmp_path / "syn", tmp_path / "none", None)
  assert "| synthetic | L_MI | 3 | +1.00 [" in text
  line = next(l for l in text.splitlines() if "| synthetic | L_MI |" in l)
  # Seed spreads: p = 10 [5.0, 6.1, 4.9] -> 0.67; p = 100 [4, 5, 4] -> 0.58.
  assert "| 3 / 0 | higher | +1.7 | 0.67 / 0.58 | 2 p: yes |" in line
  line = next(l for l in text.splitlines() if "| synthetic | L_DC |" in l)
  assert "| 2 / 1 | not distinguishable | +0.6 |" in line
  line = next(l for l in text.splitlines() if "| synthetic | L_SNR |" in l)
  assert "| 0 / 3 | lower | +2.1 | 0.10 / 0.00 | 3 p: no (p=10) |" in line
  assert (
    "synthetic: p = 10 above p = 100 (interval excludes 0) for 1 of 3 "
    "losses, below for 1, not distinguishable for 1." in text
  )
  # (b) needs three values of p: only L_SNR has them; its best is p = 100,
  # and p = 10 is below it on every seed.
  line = next(
    l
    for l in text.splitlines()
    if l.startswith("| synthetic | L_SNR | 3 | 3 | 100 |")
  )
  assert line.endswith("| p = 10 below the best |")
  # (c) without a dynamics study says which command makes it.
  assert "examples.separation.dynamics" in text


def test_claim_c_counts_paired_seeds(tmp_path):
  def run(r, rough, sdr):
    return {
      "p": 10.0,
      "pearson_r": r,
      "pearson_r_log": r,
      "step_size_roughness": rough,
      "test_si_sdri_db": sdr,
    }

  per_seed = {
    "autoclip_p10": {"0": run(0.9, 0.1, 5.0), "1": run(0.7, 0.3, 6.0)},
    "no_clipping_p100": {"0": run(0.8, 0.2, 4.0), "1": run(0.8, 0.2, 6.5)},
  }
  from examples.separation import dynamics

  summary = {"per_seed": per_seed, **dynamics.aggregate(per_seed)}
  (tmp_path / "dyn").mkdir()
  (tmp_path / "dyn" / "summary.json").write_text(json.dumps(summary))
  text = claims.report(None, None, tmp_path / "dyn")
  assert "| autoclip_p10 | 2 | 0.800 ± 0.141 |" in text
  assert (
    "AutoClip has the larger r in 1 of 2 seeds, the larger r on log values "
    "in 1 of 2, the smoother step size (lower roughness) in 1 of 2, and the "
    "higher test SI-SDRi in 1 of 2." in text
  )


def test_cli_writes_the_report_and_rejects_a_file_as_directory(
  tmp_path, capsys
):
  _write_sweep(tmp_path / "syn", {("mi", 10.0): [1.0], ("mi", 100.0): [0.5]})
  out = tmp_path / "out" / "claims.md"
  assert (
    claims.main(
      [
        "--sweep",
        str(tmp_path / "syn"),
        "--sweep-tts",
        str(tmp_path / "missing"),
        "--dynamics",
        str(tmp_path / "missing"),
        "--out",
        str(out),
      ]
    )
    == 0
  )
  assert "too few seeds" in out.read_text()
  capsys.readouterr()
  (tmp_path / "a_file").write_text("")
  with pytest.raises(SystemExit) as exc:
    claims.main(["--sweep", str(tmp_path / "a_file"), "--out", str(out)])
  assert exc.value.code == 2
  err = capsys.readouterr().err.strip().splitlines()[-1]
  assert "--sweep" in err and "not a directory" in err


def test_comparisons_across_p_use_the_seeds_every_p_has(tmp_path):
  """A p with fewer seeds finished is compared on those seeds only."""
  _write_sweep(
    tmp_path / "syn",
    {
      # Over 3 seeds p = 100's mean (5.0) is below p = 10's (5.33), but p = 1
      # has only seed 0: on seed 0 alone p = 100 (7.0) is the best, above
      # p = 1 (6.5) and p = 10 (6.0).
      ("mi", 10.0): [6.0, 5.0, 5.0],
      ("mi", 100.0): [7.0, 4.0, 4.0],
      ("mi", 1.0): [6.5],
    },
  )
  text = claims.report(tmp_path / "syn", tmp_path / "none", None)
  line = next(
    l for l in text.splitlines() if "| synthetic | L_MI | 3 | 1 |" in l
  )
  assert "| 100 | -1.00 (1 seed) | too few seeds |" in line
  # (a) pairs all three seeds, but says which p is lowest on seed 0 only.
  line = next(
    l for l in text.splitlines() if "| synthetic | L_MI | 3 | +0.33 [" in l
  )
  assert line.endswith("| 3 p: no (p=10) |")
