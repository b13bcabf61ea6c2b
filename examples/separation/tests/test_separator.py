"""The Python API: load_separator, export_model, resampling and chunking."""

import dataclasses
import itertools
import json
import sys

import numpy as np
import pytest

from examples.separation import metrics
from examples.separation import separator as separator_lib
from examples.separation import signal


def _mixture(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
  """Two harmonic 'talkers' with syllable-like gating, mono ``[L]``."""
  rng = np.random.default_rng(seed)
  t = np.arange(int(seconds * rate)) / rate
  out = np.zeros_like(t)
  for f0, rate_hz in ((120.0, 4.0), (230.0, 5.5)):
    gate = np.sin(2 * np.pi * rate_hz * t + rng.uniform(0, 6)) > 0
    voice = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 12))
    out += 0.1 * gate * voice
  return (out + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


def test_constants_match_the_model():
  assert separator_lib.SAMPLE_RATE == signal.SAMPLE_RATE


def test_workdir_and_exported_model_give_the_same_estimates(
  tiny_model, tiny_separator
):
  from_workdir = separator_lib.load_separator(tiny_model.workdir)
  mix = _mixture(1.5, 8000)
  np.testing.assert_array_equal(
    from_workdir(mix, 8000), tiny_separator(mix, 8000)
  )
  meta = json.loads((tiny_model.exported / "config.json").read_text())
  assert meta["format"] == separator_lib.FORMAT_NAME
  assert meta["config"]["hidden"] == 8 and meta["config"]["data_root"] is None
  assert meta["training"]["steps_done"] == 3
  assert meta["inference"] == "mask head"
  size = (tiny_model.exported / "params.msgpack").stat().st_size
  assert 1_000 < size < 1_000_000
  assert tiny_separator.describe()["steps_done"] == 3


@pytest.mark.parametrize("layout", ["[L]", "[L, C]", "[C, L]", "int16"])
def test_any_rate_and_layout_gives_two_sources_of_the_input_length(
  tiny_separator, layout
):
  rate = 16000
  mono = _mixture(1.3, rate)
  stereo = np.stack([mono, 0.5 * mono])  # [2, L]
  mix = {
    "[L]": mono,
    "[L, C]": stereo.T,
    "[C, L]": stereo,
    "int16": (stereo.T * 32767).astype(np.int16),
  }[layout]
  est = tiny_separator(mix, rate)
  assert est.shape == (2, len(mono)) and est.dtype == np.float32
  assert np.all(np.isfinite(est))
  # Downmixing averages the channels: same estimates as the averaged input.
  reference = tiny_separator(mono if layout == "[L]" else stereo.mean(0), rate)
  np.testing.assert_allclose(est, reference, atol=2e-3)


def test_bad_arrays_are_refused(tiny_separator):
  with pytest.raises(ValueError, match="channel_axis"):
    tiny_separator(np.zeros((4, 4), np.float32), 8000)
  with pytest.raises(ValueError, match="sample_rate"):
    tiny_separator(np.zeros(100, np.float32), 0)
  with pytest.raises(ValueError, match="NaN"):
    tiny_separator(np.full(100, np.nan, np.float32), 8000)
  assert tiny_separator(np.zeros(0, np.float32), 16000).shape == (2, 0)


def test_chunk_starts_cover_the_signal_with_full_chunks():
  for length in (10, 99, 100, 101, 1000, 1234):
    starts = separator_lib.chunk_starts(length, 100, 20)
    assert starts[0] == 0
    assert all(s + 100 <= max(length, 100) for s in starts)
    assert max(s + 100 for s in starts) >= length
    assert all(b - a <= 80 for a, b in itertools.pairwise(starts))
  with pytest.raises(ValueError):
    separator_lib.chunk_starts(1000, 100, 100)


def test_chunks_are_aligned_across_arbitrary_permutations():
  """An oracle whose source order is random per call: stitching undoes it."""
  rng = np.random.default_rng(0)
  length = 8000 * 7 + 123
  sources = rng.standard_normal((2, length)).astype(np.float32)
  sources[1] = np.convolve(sources[1], np.ones(8) / 8, mode="same")
  mix = sources.sum(0)
  swaps = []

  starts = iter(separator_lib.chunk_starts(length, 16000, 4000))

  def oracle(chunk):
    start = next(starts)
    np.testing.assert_array_equal(chunk, mix[start : start + len(chunk)])
    order = rng.permutation(2)
    swaps.append(order[0])
    return sources[order][:, start : start + len(chunk)]

  out = separator_lib.separate_in_chunks(oracle, mix, 16000, 4000)
  assert 0 < sum(swaps) < len(swaps)  # Both orders happened.
  flipped = out[::-1] if np.allclose(out[0], sources[1]) else out
  np.testing.assert_allclose(flipped, sources, atol=1e-5)


def test_chunked_and_whole_separation_agree(tiny_separator):
  mix = _mixture(12.0, 8000, seed=3)
  whole = tiny_separator.separate_8k(mix, chunk_seconds=None)
  chunked = tiny_separator.separate_8k(
    mix, chunk_seconds=4.0, overlap_seconds=1.0
  )
  assert chunked.shape == whole.shape
  agreement = metrics.separation_metrics(chunked, whole, mix)["si_sdr"]
  assert np.all(agreement > 15.0), agreement


def test_scipy_fallback_resampler(monkeypatch):
  rate_in, rate_out = 44100, 8000
  t = np.arange(rate_in) / rate_in
  x = np.sin(2 * np.pi * 440 * t).astype(np.float32)
  with_soxr = separator_lib.resample(x, rate_in, rate_out)
  monkeypatch.setitem(sys.modules, "soxr", None)  # import soxr fails.
  with_scipy = separator_lib.resample(x, rate_in, rate_out)
  assert abs(len(with_scipy) - rate_out) <= 1
  assert abs(len(with_soxr) - rate_out) <= 1
  n = min(len(with_soxr), len(with_scipy)) - 200
  np.testing.assert_allclose(with_scipy[200:n], with_soxr[200:n], atol=2e-2)
  back = separator_lib.resample(with_scipy, rate_out, rate_in)
  back = separator_lib.fit_length(back, len(x))
  assert back.shape == x.shape
  assert metrics.si_sdr(back[2000:-2000], x[2000:-2000]) > 30


def test_missing_default_model_is_one_line_naming_the_path(
  monkeypatch, tmp_path
):
  monkeypatch.setattr(separator_lib, "DEFAULT_MODEL", tmp_path / "default")
  with pytest.raises(separator_lib.ModelError) as info:
    separator_lib.load_separator(None)
  message = str(info.value)
  assert "\n" not in message and str(tmp_path / "default") in message


@pytest.mark.parametrize(
  "kind", ["missing", "file", "empty", "bad_json", "wrong_shapes"]
)
def test_bad_model_directories(kind, tmp_path, tiny_model):
  path = tmp_path / "model"
  if kind == "file":
    path.write_text("x")
  elif kind in ("empty",):
    path.mkdir()
  elif kind == "bad_json":
    path.mkdir()
    (path / "config.json").write_text("{")
    (path / "params.msgpack").write_bytes(b"")
  elif kind == "wrong_shapes":
    path.mkdir()
    meta = json.loads((tiny_model.exported / "config.json").read_text())
    meta["config"]["hidden"] = 16
    (path / "config.json").write_text(json.dumps(meta))
    (path / "params.msgpack").write_bytes(
      (tiny_model.exported / "params.msgpack").read_bytes()
    )
  with pytest.raises(separator_lib.ModelError) as info:
    separator_lib.load_separator(path)
  assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_export_refuses_to_write_into_a_foreign_directory(tmp_path, tiny_model):
  out = tmp_path / "out"
  out.mkdir()
  (out / "notes.txt").write_text("mine")
  with pytest.raises(separator_lib.ModelError, match="refusing"):
    separator_lib.export_model(tiny_model.workdir, out)
  assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
  # Re-exporting over an exported model is fine.
  again = separator_lib.export_model(tiny_model.exported, tmp_path / "again")
  separator_lib.export_model(again, again)
  assert separator_lib.model_dir_kind(again) == "exported"


def test_export_command_line(tmp_path, tiny_model, capsys):
  assert separator_lib.main([str(tiny_model.workdir), str(tmp_path / "m")]) == 0
  assert "MB" in capsys.readouterr().out
  assert separator_lib.main([str(tmp_path / "nope"), str(tmp_path / "m2")]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and str(tmp_path / "nope") in err[0]
  assert not (tmp_path / "m2").exists()
  # An output folder below a file: one line naming it, no traceback.
  (tmp_path / "file").write_text("x")
  assert (
    separator_lib.main([str(tiny_model.workdir), str(tmp_path / "file" / "m")])
    == 2
  )
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and str(tmp_path / "file") in err[0], err
  assert err[0].startswith("error: ")


def test_shipped_default_model_separates_synthetic_test_mixtures():
  """The pretrained model in the repository loads and separates."""
  from examples.separation import data as data_lib  # pylint: disable=import-outside-toplevel

  separator = separator_lib.load_separator()
  assert separator.path == separator_lib.DEFAULT_MODEL
  test = data_lib.make_dataset("synthetic", split="test", num_examples=4)
  gains = []
  for example in itertools.islice(test.examples(), 4):
    estimates = separator(example["mix"], separator_lib.SAMPLE_RATE)
    scores = metrics.separation_metrics(
      estimates, example["sources"], example["mix"]
    )
    gains.append(float(np.mean(scores["si_sdri"])))
  # Its recorded synthetic test score is +6.0 dB over 100 mixtures
  # (results/pretrained/summary.md); these first four are easier.
  assert np.mean(gains) > 4.0, gains


def test_exports_store_init_from_without_the_local_checkout(tmp_path):
  inside = separator_lib.PRETRAINED_DIR / "synthetic_12k"
  assert (
    separator_lib._portable_path(str(inside))
    == "examples/separation/pretrained/synthetic_12k"
  )
  assert separator_lib._portable_path(str(tmp_path / "base")) == "base"


def test_shipped_models_record_their_lineage():
  default = json.loads(
    (separator_lib.DEFAULT_MODEL / "config.json").read_text()
  )["config"]
  # One run from scratch: the tiny preset's file-data curriculum, L_SNR.
  assert default["init_from"] is None and default["loss"] == "snr"
  assert default["data"] == "wsj0-2mix"
  assert default["synthetic_pretrain_steps"] == 12000
  base = separator_lib.load_separator(
    separator_lib.PRETRAINED_DIR / "synthetic_12k"
  )
  assert base.config.init_from is None and base.config.data == "synthetic"


def test_training_data_is_described_in_words(tiny_model):
  config = separator_lib.load_separator(tiny_model.exported).config
  assert separator_lib.describe_training_data(config).startswith("synthetic")
  files = dataclasses.replace(
    config,
    data="wsj0-2mix",
    dynamic_mixing=True,
    distinct_talkers=True,
    synthetic_fraction=0.5,
    synthetic_pretrain_steps=12000,
  )
  assert separator_lib.describe_training_data(files) == (
    "audio files in the wsj0-2mix layout, dynamically remixed (distinct "
    "talkers), 50% synthetic mixtures (pairing "
    f"{config.pairing}), after 12000 steps of synthetic mixtures"
  )
