"""``evaluation.evaluate_dataset`` and ``python -m ...evaluate``."""

import csv
import json
import math

import fast_bss_eval
import numpy as np
import pytest
import soundfile as sf

from examples.separation import data
from examples.separation import evaluate
from examples.separation import evaluation
from examples.separation import metrics
from examples.separation.tests import wsj_trees


class _Dataset:
  """Three short synthetic utterances (8 kHz)."""

  sample_rate = 8000

  def __init__(self, num=3):
    self._ds = data.make_dataset("synthetic", split="test", num_examples=num)
    self.num_examples = num

  def examples(self):
    for ex in self._ds.examples():
      yield {**ex, "mix": ex["mix"][:8000], "sources": ex["sources"][:, :8000]}


def test_oracle_scores_and_sdr_match_fast_bss_eval():
  ds = _Dataset()
  truth = {ex["name"]: ex for ex in ds.examples()}
  rng = np.random.default_rng(0)

  def noisy_oracle(mix):
    ex = next(e for e in truth.values() if np.array_equal(e["mix"], mix))
    noise = rng.standard_normal(ex["sources"].shape)
    est = ex["sources"] + 0.1 * ex["sources"].std() * noise  # ~20 dB.
    return est[::-1].astype(np.float32)  # Reversed: PIT must undo it.

  result = evaluation.evaluate_dataset(noisy_oracle, ds, keep=2)
  assert result.summary["num_utterances"] == 3 == len(result.rows)
  for row in result.rows:
    ex = truth[row["name"]]
    assert row["si_sdr_db"] > 5 and row["si_sdri_db"] > 5
    refs = ex["sources"].astype(np.float64)
    direct_in = fast_bss_eval.sdr(
      refs, np.stack([ex["mix"]] * 2).astype(np.float64)
    )
    np.testing.assert_allclose(
      [row["input_sdr_s1_db"], row["input_sdr_s2_db"]], direct_in, atol=1e-6
    )
  for name, _, estimates, references in result.examples:
    row = next(r for r in result.rows if r["name"] == name)
    sdr, sir, sar, _ = fast_bss_eval.bss_eval_sources(
      references.astype(np.float64), estimates.astype(np.float64)
    )
    np.testing.assert_allclose(
      [row["sdr_s1_db"], row["sdr_s2_db"]], sdr, atol=1e-6
    )
    np.testing.assert_allclose(row["sir_db"], sir.mean(), atol=1e-6)
    np.testing.assert_allclose(row["sar_db"], sar.mean(), atol=1e-6)
    si = metrics.si_sdr(estimates, references)
    np.testing.assert_allclose(
      [row["si_sdr_s1_db"], row["si_sdr_s2_db"]], si, atol=1e-4
    )
    np.testing.assert_allclose(
      row["sdri_db"], row["sdr_db"] - row["input_sdr_db"], atol=1e-9
    )
  values = result.column("sdr_db")
  assert result.summary["sdr_db"] == pytest.approx(np.mean(values))
  assert result.summary["sdr_db_median"] == pytest.approx(np.median(values))
  assert result.summary["sdr_db_p10"] == pytest.approx(
    np.percentile(values, 10)
  )


def test_non_finite_estimates_name_the_utterance():
  with pytest.raises(
    evaluation.NonFiniteOutputError, match="synthetic-test-00000"
  ):
    evaluation.evaluate_dataset(
      lambda mix: np.full((2, len(mix)), np.nan, np.float32),
      _Dataset(1),
      sdr=False,
    )


class _Edited(_Dataset):
  """``_Dataset`` with ``edit(index, example)`` applied to each example."""

  def __init__(self, edit, num=3):
    super().__init__(num)
    self._edit = edit

  def examples(self):
    for i, ex in enumerate(super().examples()):
      yield self._edit(i, dict(ex))


def test_non_finite_data_names_the_utterance():
  def poison(i, ex):
    if i == 1:
      ex["mix"] = ex["mix"].copy()
      ex["mix"][5] = np.inf
    return ex

  with pytest.raises(evaluation.UtteranceError, match="synthetic-test-00001"):
    evaluation.evaluate_dataset(
      lambda mix: np.stack([mix, mix]), _Edited(poison), sdr=False
    )


def test_a_silent_reference_gets_nan_sdr_counted_in_the_summary():
  def silence(i, ex):
    if i == 0:
      ex["sources"] = ex["sources"].copy()
      ex["sources"][0] = 0.0
      ex["mix"] = ex["sources"].sum(axis=0)
    return ex

  result = evaluation.evaluate_dataset(
    lambda mix: np.stack([mix, 0.5 * mix]), _Edited(silence), sdr=True
  )
  assert math.isnan(result.rows[0]["sdr_db"])
  assert all(np.isfinite(r["sdr_db"]) for r in result.rows[1:])
  assert result.summary["sdr_db_num_nan"] == 1
  assert result.summary["sdr_db"] == pytest.approx(
    np.mean([r["sdr_db"] for r in result.rows[1:]])
  )


def test_summary_leaves_out_and_counts_nan():
  rows = [{"si_sdr_db": 1.0, "pesq": 2.0}, {"si_sdr_db": 3.0, "pesq": math.nan}]
  summary = evaluation.summarize(rows)
  assert summary["pesq"] == 2.0 and summary["pesq_num_nan"] == 1
  assert summary["si_sdr_db"] == 2.0 and "si_sdr_db_num_nan" not in summary


def test_utterance_fn_pads_and_cuts():
  shapes = []

  def batch_fn(mix):
    shapes.append(mix.shape)
    return np.stack([mix, -mix], axis=1)

  fn = evaluation.utterance_fn(batch_fn, pad_multiple=100)
  out = fn(np.ones(250, np.float32))
  assert shapes == [(1, 300)] and out.shape == (2, 250)
  np.testing.assert_array_equal(out[1], -np.ones(250))


def _run(argv, capsys):
  try:
    code = evaluate.main([*argv, "--no-progress"])
  except SystemExit as e:
    code = e.code
  captured = capsys.readouterr()
  return code, captured.out, captured.err


def test_evaluate_command_on_a_tiny_synthetic_split(
  tmp_path, tiny_model, tiny_separator, capsys
):
  out = tmp_path / "eval"
  code, stdout, err = _run(
    [
      "--model",
      str(tiny_model.exported),
      "--data",
      "synthetic",
      "--num",
      "2",
      "--workdir",
      str(out),
      "--num-wavs",
      "1",
    ],
    capsys,
  )
  assert code == 0, err
  assert "si_sdri_db=" in stdout
  summary = json.loads((out / "summary.json").read_text())
  for key in ("si_sdr_db", "si_sdri_db", "sdr_db", "sdri_db"):
    for suffix in ("", "_median", "_p10"):
      assert isinstance(summary[key + suffix], float), key + suffix
  assert summary["num_utterances"] == 2
  assert summary["model"]["hidden"] == 8
  assert summary["data"] == {
    "name": "synthetic",
    "split": "test",
    "num_utterances": 2,
    "sample_rate": 8000,
    "seed": 0,
    "pairing": "cross_register",
  }
  for extra in evaluation.available_extra_metrics():
    assert isinstance(summary[extra], float)
  with open(out / "per_utterance.csv", newline="") as f:
    rows = list(csv.DictReader(f))
  assert [r["name"] for r in rows] == [
    "synthetic-test-00000",
    "synthetic-test-00001",
  ]
  # Cross-check against the libraries called directly on the same data.
  ds = data.make_dataset("synthetic", split="test", num_examples=2)
  for row, ex in zip(rows, ds.examples(), strict=True):
    est = tiny_separator.separate_8k(ex["mix"], chunk_seconds=None)
    pit = metrics.separation_metrics(est, ex["sources"], ex["mix"])
    sdr, _, _, _ = fast_bss_eval.bss_eval_sources(
      ex["sources"].astype(np.float64),
      est[pit["permutation"]].astype(np.float64),
    )
    assert float(row["sdr_db"]) == pytest.approx(sdr.mean(), abs=1e-3)
    assert float(row["si_sdri_db"]) == pytest.approx(
      pit["si_sdri"].mean(), abs=1e-3
    )
  examples = sorted(p.name for p in (out / "examples").iterdir())
  assert examples == sorted(
    ["synthetic-test-00000_mix.wav"]
    + [
      f"synthetic-test-00000_s{j}_{kind}.wav"
      for j in (1, 2)
      for kind in ("estimate", "reference")
    ]
  )
  assert sf.info(str(out / "examples" / examples[0])).samplerate == 8000
  # Training's test set (seed 0, 1 utterance) is the first utterance here.
  training = json.loads((tiny_model.workdir / "results.json").read_text())
  assert float(rows[0]["si_sdri_db"]) == pytest.approx(
    training["test_si_sdri_db"], abs=0.05
  )


def test_evaluate_reads_a_whole_real_split_unless_told(
  tmp_path, tiny_model, capsys
):
  # The model was trained to score 1 test utterance; evaluate scores the
  # whole split it is given (4 here), or the first --num.
  root = tmp_path / "wsj"
  wsj_trees.tiny_wsj_tree(root, names=("a", "b", "c", "d"))
  base = ["--model", str(tiny_model.exported), "--data", "wsj0-2mix"]
  base += ["--data-root", str(root), "--extra-metrics", "none", "--no-sdr"]
  for num, expected in ((None, ["a", "b", "c", "d"]), (2, ["a", "b"])):
    out = tmp_path / f"eval_{num}"
    argv = [*base, "--workdir", str(out), "--num-wavs", "0"]
    code, _, err = _run(argv + (["--num", str(num)] if num else []), capsys)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_utterances"] == summary["data"]["num_utterances"]
    assert summary["num_utterances"] == len(expected)
    with open(out / "per_utterance.csv", newline="") as f:
      assert [r["name"] for r in csv.DictReader(f)] == expected


def test_precomputed_estimates_score_as_the_model_does(
  tmp_path, tiny_model, capsys
):
  from examples.separation import separate  # pylint: disable=import-outside-toplevel

  root = tmp_path / "wsj"
  wsj_trees.tiny_wsj_tree(root, names=("a", "b", "c"))
  mixes = root / "wav8k" / "min" / "tt" / "mix"
  est = tmp_path / "est"
  assert (
    separate.main(
      [
        str(mixes),
        "--model",
        str(tiny_model.exported),
        "--output-dir",
        str(est),
      ]
      + ["--no-progress"]
    )
    == 0
  )
  capsys.readouterr()
  base = ["--data", "wsj0-2mix", "--data-root", str(root), "--no-sdr"]
  base += ["--extra-metrics", "none", "--num-wavs", "0"]
  scores = {}
  for how, flags in (
    ("model", ["--model", str(tiny_model.exported)]),
    ("files", ["--estimates", str(est)]),
  ):
    out = tmp_path / how
    code, _, err = _run([*base, *flags, "--workdir", str(out)], capsys)
    assert code == 0, err
    with open(out / "per_utterance.csv", newline="") as f:
      scores[how] = {
        r["name"]: float(r["si_sdri_db"]) for r in csv.DictReader(f)
      }
  assert list(scores["files"]) == ["a", "b", "c"]
  for name, value in scores["model"].items():
    assert scores["files"][name] == pytest.approx(value, abs=1e-3), name
  summary = json.loads((tmp_path / "files" / "summary.json").read_text())
  assert summary["model"] == {"estimates": str(est)}

  # A missing estimate is named before anything is scored.
  (est / "b_s2.wav").unlink()
  code, _, err = _run(
    [*base, "--estimates", str(est), "--workdir", str(tmp_path / "m")], capsys
  )
  assert code == 2 and str(est / "b_s2.wav") in err, err
  assert not (tmp_path / "m" / "summary.json").exists()
  # An estimate of another length names the file.
  sf.write(est / "b_s2.wav", np.zeros(10, np.float32), 8000)
  code, _, err = _run(
    [*base, "--estimates", str(est), "--workdir", str(tmp_path / "m")], capsys
  )
  assert code == 1 and str(est / "b_s2.wav") in err and "10 samples" in err, err
  # A model has no use with estimates.
  code, _, err = _run(
    [
      *base,
      "--estimates",
      str(est),
      "--model",
      "x",
      "--workdir",
      str(tmp_path / "m"),
    ],
    capsys,
  )
  assert code == 2 and "--model" in err.strip().splitlines()[-1], err


def test_a_new_evaluation_replaces_the_earlier_examples(
  tmp_path, tiny_model, capsys
):
  root = tmp_path / "wsj"
  wsj_trees.tiny_wsj_tree(root, names=("a", "b", "c"))
  out = tmp_path / "eval"
  argv = ["--model", str(tiny_model.exported), "--data", "wsj0-2mix"]
  argv += ["--data-root", str(root), "--extra-metrics", "none", "--no-sdr"]
  argv += ["--workdir", str(out)]
  assert _run([*argv, "--num-wavs", "3"], capsys)[0] == 0
  (out / "examples" / "notes.txt").write_text("mine")
  assert _run([*argv, "--num-wavs", "1"], capsys)[0] == 0
  assert sorted(p.name for p in (out / "examples").iterdir()) == [
    "a_mix.wav",
    "a_s1_estimate.wav",
    "a_s1_reference.wav",
    "a_s2_estimate.wav",
    "a_s2_reference.wav",
    "notes.txt",
  ]


def test_evaluate_reads_16_khz_data_with_sample_rate(
  tmp_path, tiny_model, capsys
):
  root = tmp_path / "wsj16"
  wsj_trees.tiny_wsj_tree(root, names=("a", "b"), rate=16000)
  argv = ["--model", str(tiny_model.exported), "--data", "wsj0-2mix"]
  argv += ["--data-root", str(root), "--extra-metrics", "none", "--no-sdr"]
  argv += ["--num-wavs", "1"]
  code, _, err = _run([*argv, "--workdir", str(tmp_path / "w8")], capsys)
  assert code == 1 and "--sample-rate" in err and "16000" in err, err
  out = tmp_path / "w16"
  code, _, err = _run(
    [*argv, "--sample-rate", "16000", "--workdir", str(out)], capsys
  )
  assert code == 0, err
  summary = json.loads((out / "summary.json").read_text())
  assert summary["data"]["sample_rate"] == 16000
  assert summary["num_utterances"] == 2
  mix, rate = sf.read(str(out / "examples" / "a_mix.wav"))
  assert rate == 16000 and len(mix) == 4000


@pytest.mark.parametrize(
  "argv, culprit",
  [
    (["--data", "wsj0-2mix"], "--data-root"),
    (
      ["--data", "libri2mix", "--data-root", "/nonexistent/libri"],
      "/nonexistent/libri",
    ),
    (["--data", "synthetic", "--extra-metrics", "mos"], "mos"),
    (["--data", "synthetic", "--split", "holdout"], "holdout"),
    (["--data", "synthetic", "--num", "0"], "--num"),
    (
      ["--data", "synthetic", "--model", "/nonexistent/model"],
      "/nonexistent/model",
    ),
    (["--data", "synthetic", "--chunk-seconds", "inf"], "--chunk-seconds"),
    # The default overlap (2 s) is not shorter than the chunk.
    (["--data", "synthetic", "--chunk-seconds", "1"], "--overlap-seconds 2"),
    (
      [
        "--data",
        "synthetic",
        "--chunk-seconds",
        "2",
        "--overlap-seconds",
        "1.99999",
      ],
      "--chunk-seconds 2",
    ),
    (["--data", "synthetic", "--overlap-seconds", "1"], "--chunk-seconds"),
    (["--data", "synthetic", "--sample-rate", "16000"], "--sample-rate"),
    (["--data", "synthetic", "--estimates", "/tmp"], "--estimates"),
    (
      [
        "--data",
        "wsj0-2mix",
        "--data-root",
        "/tmp",
        "--estimates",
        "/nonexistent/est",
      ],
      "/nonexistent/est",
    ),
  ],
)
def test_bad_arguments(argv, culprit, tmp_path, capsys):
  code, _, err = _run([*argv, "--workdir", str(tmp_path / "w")], capsys)
  assert code == 2
  lines = err.strip().splitlines()
  assert culprit in lines[-1] and "error" in lines[-1], err
  assert not (tmp_path / "w").exists()


def test_missing_metric_library_is_reported(tmp_path, capsys, monkeypatch):
  monkeypatch.setattr(evaluation, "available_extra_metrics", lambda: ())
  code, _, err = _run(
    [
      "--data",
      "synthetic",
      "--extra-metrics",
      "pesq",
      "--workdir",
      str(tmp_path / "w"),
    ],
    capsys,
  )
  assert code == 2 and "pip install pesq" in err
