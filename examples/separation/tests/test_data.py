"""Tests of the synthetic mixtures and the wsj0-2mix / Libri2Mix loaders."""

import csv
import functools
import pickle
import time

import numpy as np
import pytest
import scipy.signal
import soundfile as sf

from examples.separation import configs
from examples.separation import data
from examples.separation import metrics

CHUNK = 8000  # 1 s chunks keep the synthetic tests fast.


def _first(ds, batch_size=4, rng=0):
  return next(ds.batches(batch_size, rng))


# ---------------------------------------------------------------------------
# Synthetic mixtures.
# ---------------------------------------------------------------------------


def test_default_chunk_is_400_centred_frames():
  assert data.DEFAULT_CHUNK_SAMPLES == 25536 == data.frames_to_samples(400)


def test_synthetic_shapes_dtypes_and_mixture_is_sum():
  ds = data.make_dataset(
    "synthetic", split="train", seed=0, chunk_samples=CHUNK
  )
  batch = _first(ds)
  assert batch["mix"].shape == (4, CHUNK)
  assert batch["sources"].shape == (4, 2, CHUNK)
  assert batch["classes"].shape == (4, 2)
  assert batch["mix"].dtype == batch["sources"].dtype == np.float32
  assert batch["classes"].dtype == np.int32
  np.testing.assert_array_equal(batch["classes"], data.SPEECH)
  np.testing.assert_allclose(batch["mix"], batch["sources"].sum(1), atol=1e-7)
  assert np.all(np.abs(batch["mix"]) < 1.0)
  assert np.all(np.std(batch["sources"], axis=-1) > 1e-3)  # No silent source.


def test_synthetic_relative_level_within_0_to_5_db():
  ds = data.make_dataset("synthetic", seed=1, chunk_samples=CHUNK)
  sources = _first(ds, 16)["sources"].astype(np.float64)
  power = (sources**2).sum(-1)
  level = 10 * np.log10(power[:, 0] / power[:, 1])
  assert np.all(np.abs(level) <= 5.0 + 1e-3)
  assert level.min() < 0 < level.max()  # Either source may be louder.


def test_synthetic_deterministic_by_seed():
  make = lambda seed: data.make_dataset(
    "synthetic", seed=seed, chunk_samples=CHUNK
  )
  a, b, c = _first(make(0)), _first(make(0)), _first(make(1))
  np.testing.assert_array_equal(a["mix"], b["mix"])
  np.testing.assert_array_equal(a["sources"], b["sources"])
  assert not np.allclose(a["mix"], c["mix"])
  # Successive batches differ; the rng argument picks another stream.
  stream = make(0).batches(4, 0)
  assert not np.allclose(next(stream)["mix"], next(stream)["mix"])
  assert not np.allclose(_first(make(0), rng=1)["mix"], a["mix"])
  # Evaluation sets are fixed, example by example.
  cfg = data.SyntheticConfig(eval_seconds=(0.5, 1.0))
  ev = lambda: data.make_dataset(
    "synthetic", split="test", seed=0, synthetic=cfg, num_examples=2
  )
  first, second = list(ev().examples()), list(ev().examples())
  for x, y in zip(first, second, strict=True):
    assert x["name"] == y["name"]
    np.testing.assert_array_equal(x["mix"], y["mix"])
  assert ev().example(1)["name"] == first[1]["name"]
  np.testing.assert_array_equal(ev().example(1)["mix"], first[1]["mix"])


def test_synthetic_batch_at_is_stateless():
  ds = data.make_dataset("synthetic", seed=0, chunk_samples=CHUNK)
  again = data.make_dataset("synthetic", seed=0, chunk_samples=CHUNK)
  np.testing.assert_array_equal(
    ds.batch_at(7, 2)["mix"], again.batch_at(7, 2)["mix"]
  )
  assert not np.allclose(ds.batch_at(7, 2)["mix"], ds.batch_at(8, 2)["mix"])


def test_synthetic_splits_are_disjoint():
  cfg = data.SyntheticConfig(eval_seconds=(0.5, 1.0))
  splits = {
    s: data.make_dataset(
      "synthetic",
      split=s,
      seed=0,
      synthetic=cfg,
      chunk_samples=CHUNK,
      num_examples=1,
    )
    for s in data.SPLITS
  }
  ids = [set(ds.speaker_ids) for ds in splits.values()]
  assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
  for split, ds in splits.items():
    batch = _first(ds)
    assert set(batch["speakers"].ravel()) <= set(ds.speaker_ids), split
    assert np.all(batch["speakers"][:, 0] != batch["speakers"][:, 1])
  val = next(splits["validation"].examples())
  test = next(splits["test"].examples())
  assert val["name"] != test["name"]
  assert val["mix"].shape != test["mix"].shape or not np.allclose(
    val["mix"], test["mix"]
  )


def test_synthetic_eval_set_sizes_and_lengths():
  cfg = data.SyntheticConfig(eval_seconds=(0.5, 1.0), num_validation=3)
  ds = data.make_dataset("synthetic", split="cv", synthetic=cfg)
  assert ds.split == "validation" and ds.num_examples == 3
  examples = list(ds.examples())
  assert len(examples) == 3
  for ex in examples:
    assert 4000 <= ex["mix"].shape[0] <= 8000
    assert ex["sources"].shape == (2,) + ex["mix"].shape
    np.testing.assert_allclose(ex["mix"], ex["sources"].sum(0), atol=1e-7)
  batches = list(ds.eval_batches(2, pad_to_multiple=1024))
  assert [len(b["names"]) for b in batches] == [2, 1]
  first = batches[0]
  assert first["mix"].shape[1] % 1024 == 0
  for i, n in enumerate(first["lengths"]):
    np.testing.assert_array_equal(first["mix"][i, :n], examples[i]["mix"])
    np.testing.assert_array_equal(first["mix"][i, n:], 0.0)


def test_synthetic_environmental_classes():
  env = data.SyntheticConfig(source_classes=("speech", "env"))
  batch = _first(
    data.make_dataset("synthetic", synthetic=env, chunk_samples=CHUNK)
  )
  np.testing.assert_array_equal(batch["classes"], [[0, 1]] * 4)
  np.testing.assert_array_equal(batch["speakers"][:, 1], -1)
  np.testing.assert_allclose(batch["mix"], batch["sources"].sum(1), atol=1e-7)
  assert np.all(np.std(batch["sources"], axis=-1) > 1e-3)
  anything = data.SyntheticConfig(source_classes=("any", "any"))
  classes = _first(
    data.make_dataset("synthetic", synthetic=anything, chunk_samples=CHUNK), 32
  )["classes"]
  pairs = {tuple(c) for c in classes}
  assert pairs == {(0, 0), (0, 1), (1, 0), (1, 1)}
  with pytest.raises(ValueError, match="source class"):
    data.SyntheticConfig(source_classes=("speech", "music"))


def _stft(x):
  window = np.sqrt(scipy.signal.get_window("hann", 256))
  return scipy.signal.stft(x, window=window, nperseg=256, noverlap=192)[2]


def _istft(spec, length):
  window = np.sqrt(scipy.signal.get_window("hann", 256))
  return scipy.signal.istft(spec, window=window, nperseg=256, noverlap=192)[1][
    ..., :length
  ]


@pytest.mark.parametrize("classes", [("speech", "speech"), ("any", "any")])
def test_synthetic_is_hard_but_separable(classes):
  """Mixture ~0 dB SI-SDR; an oracle ratio mask gains > 10 dB."""
  cfg = data.SyntheticConfig(source_classes=classes)
  ds = data.make_dataset(
    "synthetic", synthetic=cfg, seed=0, chunk_samples=16000
  )
  batch = _first(ds, 6)
  input_sdr, gains = [], []
  for mix, sources in zip(
    batch["mix"].astype(np.float64),
    batch["sources"].astype(np.float64),
    strict=True,
  ):
    mags = np.abs(_stft(sources))
    irm = mags / np.maximum(mags.sum(0), 1e-12)
    estimates = _istft(irm * _stft(mix), len(mix))
    result = metrics.separation_metrics(estimates, sources, mix)
    input_sdr.append(result["input_si_sdr"])
    gains.append(result["si_sdri"].mean())
  input_sdr = np.array(input_sdr)
  assert np.all(np.abs(input_sdr) < 6.0)
  assert abs(input_sdr.mean()) < 1.0
  assert np.mean(gains) > 10.0, gains


def test_synthetic_generation_is_fast():
  ds = data.make_dataset("synthetic", seed=0)
  stream = ds.batches(25, 0)
  start = time.perf_counter()
  batch = next(stream)
  elapsed = time.perf_counter() - start
  assert batch["mix"].shape == (25, data.DEFAULT_CHUNK_SAMPLES)
  # About 0.15 s on one idle core; generous for shared CI machines.
  assert elapsed < 3.0, elapsed


# ---------------------------------------------------------------------------
# wsj0-2mix and Libri2Mix on small fake trees.
# ---------------------------------------------------------------------------

_LENGTHS = {"a": 3000, "b": 1200, "c": 2500}  # 'b' is shorter than a chunk.
SMALL_CHUNK = 2000


def _write(path, length, seed, sr=8000):
  path.parent.mkdir(parents=True, exist_ok=True)
  audio = np.random.default_rng(seed).uniform(-0.5, 0.5, length)
  sf.write(str(path), audio.astype(np.float32), sr, subtype="FLOAT")


def _wsj_tree(root, splits=("tt",)):
  for split in splits:
    for i, (name, n) in enumerate(_LENGTHS.items()):
      for j, folder in enumerate(("mix", "s1", "s2")):
        _write(
          root / "wav8k" / "min" / split / folder / f"{name}.wav", n, 10 * i + j
        )
  # A decoy 16 kHz variant that must not be picked.
  _write(root / "wav16k" / "min" / "tt" / "mix" / "z.wav", 10, 0, sr=16000)
  for folder in ("s1", "s2"):
    _write(root / "wav16k" / "min" / "tt" / folder / "z.wav", 10, 0, sr=16000)
  return root / "wav8k" / "min" / "tt"


def _check_file_dataset(ds, split_dir=None):
  assert ds.num_examples == 3
  examples = list(ds.examples())
  assert [ex["name"] for ex in examples] == ["a", "b", "c"]
  for ex in examples:
    assert ex["mix"].dtype == np.float32
    assert ex["sources"].shape == (2, _LENGTHS[ex["name"]])
  batches = ds.batches(3, rng=0)
  for _ in range(2):  # Two epochs: every utterance once per epoch.
    batch = next(batches)
    assert batch["mix"].shape == (3, SMALL_CHUNK)
    assert batch["sources"].shape == (3, 2, SMALL_CHUNK)
    np.testing.assert_array_equal(batch["classes"], 0)
    by_len = {}
    for mix, sources in zip(batch["mix"], batch["sources"], strict=True):
      # Find which utterance and offset the chunk came from.
      for ex in examples:
        full = ex["mix"]
        if len(full) < SMALL_CHUNK:
          if np.array_equal(mix[: len(full)], full):
            # Short mixture: read whole, zero-padded at the end.
            np.testing.assert_array_equal(mix[len(full) :], 0.0)
            np.testing.assert_array_equal(sources[:, len(full) :], 0.0)
            np.testing.assert_array_equal(
              sources[:, : len(full)], ex["sources"]
            )
            by_len[ex["name"]] = 0
        else:
          hits = np.nonzero(
            np.all(
              np.lib.stride_tricks.sliding_window_view(full, SMALL_CHUNK)
              == mix,
              axis=1,
            )
          )[0]
          if len(hits):
            off = hits[0]
            np.testing.assert_array_equal(
              sources, ex["sources"][:, off : off + SMALL_CHUNK]
            )
            by_len[ex["name"]] = off
    assert sorted(by_len) == ["a", "b", "c"]


def _chunk_source(chunk, examples):
  """Name of the utterance a training chunk was cut from."""
  for ex in examples:
    full = ex["mix"]
    if len(full) <= SMALL_CHUNK:
      if np.array_equal(chunk[: len(full)], full):
        return ex["name"]
    elif np.any(
      np.all(
        np.lib.stride_tricks.sliding_window_view(full, SMALL_CHUNK) == chunk,
        axis=1,
      )
    ):
      return ex["name"]
  raise AssertionError("chunk not found")


def test_file_batch_at_covers_each_epoch(tmp_path):
  _wsj_tree(tmp_path)
  ds = data.make_dataset(
    "wsj0-2mix", tmp_path, "test", seed=3, chunk_samples=SMALL_CHUNK
  )
  examples = list(ds.examples())
  names = [
    _chunk_source(chunk, examples)
    for step in range(3)
    for chunk in ds.batch_at(step, 2)["mix"]
  ]
  assert sorted(names[:3]) == sorted(names[3:]) == ["a", "b", "c"]
  np.testing.assert_array_equal(
    ds.batch_at(2, 2)["sources"], ds.batch_at(2, 2)["sources"]
  )


def test_wsj0_2mix_loader(tmp_path):
  split_dir = _wsj_tree(tmp_path)
  assert data.find_wsj0_2mix_split(tmp_path, "test") == split_dir
  ds = data.make_dataset(
    "wsj0-2mix", tmp_path, "tt", seed=0, chunk_samples=SMALL_CHUNK
  )
  _check_file_dataset(ds)
  assert ds.utterances[0].mix_path == split_dir / "mix" / "a.wav"
  # Pointing at the split directory itself works too.
  ds = data.make_dataset(
    "wsj0-2mix", split_dir, "test", chunk_samples=SMALL_CHUNK
  )
  assert ds.num_examples == 3
  ds = data.make_dataset("wsj0-2mix", tmp_path, "test", num_examples=2)
  assert ds.num_examples == 2


def _error(match, *args, **kwargs):
  with pytest.raises(data.DatasetError, match=match) as info:
    data.make_dataset(*args, **kwargs)
  message = str(info.value)
  assert "\n" not in message
  assert isinstance(info.value, ValueError)
  return message


def test_wsj0_2mix_errors(tmp_path):
  missing = tmp_path / "nowhere"
  message = _error("root not found", "wsj0-2mix", missing, "test")
  assert str(missing) in message and "{mix,s1,s2}" in message
  split_dir = _wsj_tree(tmp_path)
  message = _error("no wsj0-2mix 'tr' split", "wsj0-2mix", tmp_path, "train")
  assert str(tmp_path) in message

  # Missing partner file.
  partner = split_dir / "s2" / "b.wav"
  partner.unlink()
  message = _error("missing partner file", "wsj0-2mix", tmp_path, "test")
  assert str(partner) in message
  _write(partner, _LENGTHS["b"], 0)

  # Sample rate.
  culprit = split_dir / "s1" / "c.wav"
  _write(culprit, _LENGTHS["c"], 0, sr=16000)
  message = _error("sample rate 16000", "wsj0-2mix", tmp_path, "test")
  assert str(culprit) in message
  _write(culprit, _LENGTHS["c"], 0)

  # Unequal lengths.
  culprit = split_dir / "s2" / "a.wav"
  _write(culprit, _LENGTHS["a"] - 5, 0)
  message = _error("unequal lengths", "wsj0-2mix", tmp_path, "test")
  assert str(culprit) in message

  with pytest.raises(ValueError, match="unknown dataset"):
    data.make_dataset("wsj0-3mix", tmp_path)
  with pytest.raises(ValueError, match="unknown split"):
    data.make_dataset("wsj0-2mix", tmp_path, "holdout")


def _libri_tree(root, *, absolute_elsewhere=True, length_column=True):
  """Libri2Mix-like tree; CSV paths are absolute on another machine."""
  base = root / "Libri2Mix" / "wav8k" / "min"
  rows = []
  for i, (name, n) in enumerate(_LENGTHS.items()):
    paths = []
    for j, folder in enumerate(("mix_clean", "s1", "s2")):
      path = base / "test" / folder / f"{name}.wav"
      _write(path, n, 10 * i + j)
      rel = path.relative_to(base)
      paths.append(
        f"/home/someone/Libri2Mix/wav8k/min/{rel}"
        if absolute_elsewhere
        else str(rel)
      )
    rows.append(
      {
        "mixture_ID": name,
        "mixture_path": paths[0],
        "source_1_path": paths[1],
        "source_2_path": paths[2],
        "length": n,
      }
    )
  csv_path = base / "metadata" / "mixture_test_mix_clean.csv"
  _write_csv(csv_path, rows, length_column)
  return csv_path, rows


def _write_csv(csv_path, rows, length_column=True):
  csv_path.parent.mkdir(parents=True, exist_ok=True)
  fields = ["mixture_ID", "mixture_path", "source_1_path", "source_2_path"]
  fields += ["length"] if length_column else []
  with open(csv_path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)


@pytest.mark.parametrize("absolute_elsewhere", [True, False])
def test_libri2mix_loader(tmp_path, absolute_elsewhere):
  csv_path, _ = _libri_tree(tmp_path, absolute_elsewhere=absolute_elsewhere)
  assert data.find_libri2mix_csv(tmp_path, "test") == csv_path
  ds = data.make_dataset(
    "libri2mix", tmp_path, "test", seed=0, chunk_samples=SMALL_CHUNK
  )
  _check_file_dataset(ds)
  assert ds.utterances[1].source_paths[0] == (
    csv_path.parent.parent / "test" / "s1" / "b.wav"
  )


def test_libri2mix_errors(tmp_path):
  missing = tmp_path / "nowhere"
  message = _error("root not found", "libri2mix", missing, "test")
  assert str(missing) in message and "metadata" in message
  csv_path, rows = _libri_tree(tmp_path)
  message = _error(
    "mixture_train-100_mix_clean.csv", "libri2mix", tmp_path, "train"
  )
  assert str(tmp_path) in message
  base = csv_path.parent.parent

  # Missing partner file (listed, but not on disk).
  partner = base / "test" / "s2" / "c.wav"
  partner.unlink()
  message = _error("missing file", "libri2mix", tmp_path, "test")
  assert "test/s2/c.wav" in message and str(csv_path) in message
  _write(partner, _LENGTHS["c"], 0)

  # Sample rate.
  culprit = base / "test" / "s1" / "a.wav"
  _write(culprit, _LENGTHS["a"], 0, sr=16000)
  message = _error("sample rate 16000", "libri2mix", tmp_path, "test")
  assert str(culprit) in message
  _write(culprit, _LENGTHS["a"], 0)

  # Unequal lengths: a source shorter than its mixture...
  culprit = base / "test" / "s1" / "b.wav"
  _write(culprit, _LENGTHS["b"] - 1, 0)
  message = _error("unequal lengths", "libri2mix", tmp_path, "test")
  assert str(culprit) in message
  _write(culprit, _LENGTHS["b"], 0)
  # ... or files that disagree with the CSV's length column.
  rows[0]["length"] = _LENGTHS["a"] + 1
  _write_csv(csv_path, rows)
  message = _error("unequal lengths", "libri2mix", tmp_path, "test")
  assert str(base / "test" / "mix_clean" / "a.wav") in message

  # Missing column.
  csv_path.write_text(csv_path.read_text().replace("source_2_path", "other"))
  message = _error("lacks column", "libri2mix", tmp_path, "test")
  assert "source_2_path" in message and str(csv_path) in message


def _found_in(chunk, signals):
  """Whether ``chunk`` (up to its zero padding) is a scaled window of one
  of ``signals``."""
  for sig in signals:
    n = min(len(sig), len(chunk))
    if len(sig) <= len(chunk):
      windows = sig[None, :]
    else:
      windows = np.lib.stride_tricks.sliding_window_view(sig, len(chunk))
    for w in windows:
      scale = np.dot(w[:n], chunk[:n]) / max(np.dot(w[:n], w[:n]), 1e-30)
      if scale > 0 and np.allclose(chunk[:n], scale * w[:n], atol=1e-5):
        return True
  return False


def test_dynamic_mixing_remixes_sources_of_two_utterances(tmp_path):
  _wsj_tree(tmp_path)
  kwargs = dict(seed=1, chunk_samples=SMALL_CHUNK)
  ds = data.make_dataset(
    "wsj0-2mix", tmp_path, "test", dynamic_mixing=True, **kwargs
  )
  plain = data.make_dataset("wsj0-2mix", tmp_path, "test", **kwargs)
  examples = {ex["name"]: ex for ex in plain.examples()}
  all_sources = [s for ex in examples.values() for s in ex["sources"]]
  for step in range(4):
    batch = ds.batch_at(step, 3)
    assert batch["mix"].shape == (3, SMALL_CHUNK)
    assert batch["sources"].shape == (3, 2, SMALL_CHUNK)
    np.testing.assert_allclose(
      batch["mix"], batch["sources"].sum(axis=1), rtol=0, atol=1e-6
    )
    for sources in batch["sources"]:
      # Each source is a (rescaled) window of one of the stored sources, and
      # the two come from different utterances.
      assert all(_found_in(s, all_sources) for s in sources)
      owners = [
        [
          name
          for name, ex in examples.items()
          if _found_in(s, list(ex["sources"]))
        ]
        for s in sources
      ]
      assert not set(owners[0]) & set(owners[1]), owners
      # Relative level within the wsj0-2mix range of [-5, 5] dB.
      p0, p1 = np.mean(sources**2, axis=-1)
      assert abs(10 * np.log10(p1 / p0)) <= 5.0 + 1e-3
  # A pure function of the step (resume-safe), and evaluation unaffected.
  np.testing.assert_array_equal(
    ds.batch_at(2, 3)["mix"], ds.batch_at(2, 3)["mix"]
  )
  for ex, ref in zip(ds.examples(), plain.examples(), strict=True):
    np.testing.assert_array_equal(ex["mix"], ref["mix"])
  # Training on the stored mixtures is the default.
  assert not plain.dynamic_mixing


def _sine_tree(root, freqs, length=8000, sr=8000):
  """A wsj0-2mix ``tt`` split whose sources are pure tones ``freqs``."""
  t = np.arange(length) / sr
  for i, (f1, f2) in enumerate(freqs):
    s1 = 0.3 * np.sin(2 * np.pi * f1 * t)
    s2 = 0.3 * np.sin(2 * np.pi * f2 * t)
    for folder, audio in (("mix", s1 + s2), ("s1", s1), ("s2", s2)):
      path = root / "wav8k" / "min" / "tt" / folder / f"u{i}.wav"
      path.parent.mkdir(parents=True, exist_ok=True)
      sf.write(str(path), audio.astype(np.float32), sr, subtype="FLOAT")


def test_speed_perturbation_moves_pitch_by_the_drawn_speed(tmp_path):
  # Every source is a 500 Hz tone: a source played at speed v peaks at 500 v.
  _sine_tree(tmp_path, [(500.0, 500.0)] * 3)
  chunk = 4096
  ds = data.make_dataset(
    "wsj0-2mix",
    tmp_path,
    "test",
    seed=4,
    chunk_samples=chunk,
    dynamic_mixing=True,
    speed_perturbation=0.2,
  )
  peaks = []
  for step in range(6):
    batch = ds.batch_at(step, 3)
    assert batch["sources"].shape == (3, 2, chunk)
    assert batch["sources"].dtype == np.float32
    assert np.all(np.isfinite(batch["sources"]))
    np.testing.assert_allclose(
      batch["mix"], batch["sources"].sum(axis=1), rtol=0, atol=1e-6
    )
    for source in batch["sources"].reshape(-1, chunk):
      # The full chunk is filled (the files are long enough), at an even
      # level: no zero-padding, no filter ramp at the edges.
      frames = source.reshape(16, -1)
      rms = np.sqrt(np.mean(frames**2, axis=-1))
      assert rms.min() > 0.5 * rms.max(), rms
      spectrum = np.abs(np.fft.rfft(source * np.hanning(chunk)))
      peaks.append(np.argmax(spectrum) * 8000 / chunk)
  speeds = np.array(peaks) / 500.0
  # 1 % steps within 1 +- 0.2 (up to the FFT's bin width), and not all equal.
  assert np.all(speeds > 0.8 - 0.01) and np.all(speeds < 1.2 + 0.01), speeds
  assert speeds.std() > 0.05, speeds
  # A pure function of the step (resume-safe).
  np.testing.assert_array_equal(
    ds.batch_at(3, 3)["sources"], ds.batch_at(3, 3)["sources"]
  )


def _talker_tree(root, pairs, freqs, length=4000, sr=8000):
  """A wsj0-2mix ``tt`` split named the official way (``U1_L1_U2_L2``) whose
  talkers each speak one pure tone, ``freqs[talker]``."""
  t = np.arange(length) / sr
  for i, (a, b) in enumerate(pairs):
    s1, s2 = (0.3 * np.sin(2 * np.pi * freqs[x] * t) for x in (a, b))
    name = f"{a}a010{i}_0.5_{b}c020{i}_-0.5.wav"
    for folder, audio in (("mix", s1 + s2), ("s1", s1), ("s2", s2)):
      path = root / "wav8k" / "min" / "tt" / folder / name
      path.parent.mkdir(parents=True, exist_ok=True)
      sf.write(str(path), audio.astype(np.float32), sr, subtype="FLOAT")


def test_talkers_from_name():
  name = "011a0101_0.061_40na010x_-0.061"
  assert data.talkers_from_name(name, "wsj0-2mix") == ("011", "40n")
  # tts2mix: an index prefix and voice names, which are the talkers.
  name = "00001_espeak-f2_1.7352_espeak-f5_-1.7352"
  assert data.talkers_from_name(name, "wsj0-2mix") == ("espeak-f2", "espeak-f5")
  name = "1089-134686-0000_121-121726-0000"
  assert data.talkers_from_name(name, "libri2mix") == ("1089", "121")
  name = "01AA010B_0.97482_209A010P_-0.97482"
  assert data.talkers_from_name(name, "wsj0-2mix") == ("01a", "209")
  for name, layout in (
    ("a", "wsj0-2mix"),
    ("x_y_z_w", "wsj0-2mix"),
    ("1089-134686-0000", "libri2mix"),
    ("a_b", "libri2mix"),
  ):
    assert data.talkers_from_name(name, layout) is None, name


def test_distinct_talkers_never_mixes_a_talker_with_itself(tmp_path):
  freqs = {"aaa": 400.0, "bbb": 1000.0, "ccc": 2200.0}
  pairs = [("aaa", "aaa"), ("aaa", "bbb"), ("bbb", "bbb"), ("ccc", "aaa")]
  _talker_tree(tmp_path, pairs, freqs)
  chunk = 1024

  def talkers(ds, steps=40):
    found = []
    for step in range(steps):
      batch = ds.batch_at(step, 4)
      np.testing.assert_allclose(
        batch["mix"], batch["sources"].sum(axis=1), rtol=0, atol=1e-6
      )
      spectra = np.abs(np.fft.rfft(batch["sources"] * np.hanning(chunk)))
      peaks = np.argmax(spectra, axis=-1) * 8000 / chunk
      found += [tuple(np.round(p, -2)) for p in peaks]
    return found

  kwargs = dict(seed=3, chunk_samples=chunk, dynamic_mixing=True)
  ds = data.make_dataset(
    "wsj0-2mix", tmp_path, "test", distinct_talkers=True, **kwargs
  )
  assert [u.talkers for u in ds.utterances] == pairs
  pairs_seen = talkers(ds)
  assert all(a != b for a, b in pairs_seen), pairs_seen
  # All three talkers appear as the second source (uniform partners).
  assert {b for _, b in pairs_seen} == {400.0, 1000.0, 2200.0}
  # Without it, the same layout pairs talkers with themselves.
  plain = data.make_dataset("wsj0-2mix", tmp_path, "test", **kwargs)
  assert any(a == b for a, b in talkers(plain))
  # A pure function of the step (resume-safe).
  np.testing.assert_array_equal(
    ds.batch_at(7, 4)["sources"], ds.batch_at(7, 4)["sources"]
  )
  with pytest.raises(ValueError, match="distinct_talkers needs dynamic"):
    data.make_dataset("wsj0-2mix", tmp_path, "test", distinct_talkers=True)


def test_a_mixtures_csv_names_the_talkers(tmp_path):
  # tts2mix's mixtures.csv: two voices of one talker (festival-slt and
  # flite-slt) are the same talker, whatever the names say.
  freqs = {"aaa": 400.0, "bbb": 1000.0, "ccc": 2200.0}
  pairs = [("aaa", "bbb"), ("ccc", "aaa")]
  _talker_tree(tmp_path, pairs, freqs)
  names = sorted(
    p.stem for p in (tmp_path / "wav8k" / "min" / "tt" / "mix").iterdir()
  )
  with (tmp_path / "mixtures.csv").open("w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["split", "name", "s1_talker", "s2_talker"])
    writer.writerow(["tt", names[0], "slt", "kal"])
  utterances = data.list_wsj0_2mix(tmp_path, "test")
  assert [u.talkers for u in utterances] == [("slt", "kal"), ("ccc", "aaa")]
  # A mixtures.csv without talker columns is ignored.
  (tmp_path / "mixtures.csv").write_text("name,other\nx,y\n")
  utterances = data.list_wsj0_2mix(tmp_path, "test")
  assert [u.talkers for u in utterances] == pairs


def test_distinct_talkers_falls_back_when_names_carry_no_talkers(tmp_path):
  # Names without talkers (the tree of the other tests): any other utterance.
  _wsj_tree(tmp_path)
  ds = data.make_dataset(
    "wsj0-2mix",
    tmp_path,
    "test",
    chunk_samples=SMALL_CHUNK,
    dynamic_mixing=True,
    distinct_talkers=True,
  )
  assert all(u.talkers is None for u in ds.utterances)
  batch = ds.batch_at(0, 3)
  assert batch["sources"].shape == (3, 2, SMALL_CHUNK)
  np.testing.assert_allclose(
    batch["mix"], batch["sources"].sum(axis=1), rtol=0, atol=1e-6
  )


def test_speed_perturbation_errors(tmp_path):
  _wsj_tree(tmp_path)
  with pytest.raises(ValueError, match="speed_perturbation needs dynamic"):
    data.make_dataset("wsj0-2mix", tmp_path, "test", speed_perturbation=0.1)
  with pytest.raises(ValueError, match=r"speed_perturbation=0\.5"):
    data.make_dataset(
      "wsj0-2mix",
      tmp_path,
      "test",
      dynamic_mixing=True,
      speed_perturbation=0.5,
    )


def test_blended_training_takes_a_fraction_from_the_second_dataset(tmp_path):
  _wsj_tree(tmp_path)
  kwargs = dict(seed=2, chunk_samples=SMALL_CHUNK)
  real = data.make_dataset("wsj0-2mix", tmp_path, "test", **kwargs)
  synthetic = data.make_dataset("synthetic", split="train", **kwargs)
  blended = data.BlendedTraining(real, synthetic, 0.25)
  batch = blended.batch_at(5, 8)
  assert set(batch) == {"mix", "sources", "classes"}
  assert batch["sources"].shape == (8, 2, SMALL_CHUNK)
  np.testing.assert_array_equal(batch["mix"][:6], real.batch_at(5, 6)["mix"])
  np.testing.assert_array_equal(
    batch["mix"][6:], synthetic.batch_at(5, 2)["mix"]
  )
  # Everything but the training stream is the primary dataset's.
  assert blended.num_examples == real.num_examples
  assert blended.name == "wsj0-2mix"
  with pytest.raises(ValueError, match="fraction"):
    data.BlendedTraining(real, synthetic, 1.0)


def test_batch_cache_serves_the_generated_batches():
  """Cached batches equal freshly generated ones, bit for bit, read-only."""

  def fresh(seed, step):
    return data.SyntheticMixtures(
      "train", seed=seed, chunk_samples=640
    ).batch_at(step, 3)

  want = {(s, i): fresh(s, i) for s in (0, 1) for i in range(3)}
  data.cache_training_batches(10**7)
  try:
    for _ in range(2):  # Fill, then serve (a new dataset object each time).
      for i in range(3):
        got = fresh(0, i)
        assert got.keys() == want[0, i].keys()
        for k, v in got.items():
          np.testing.assert_array_equal(v, want[0, i][k])
          assert not v.flags.writeable
    assert data.batch_cache_hits() == 3
    # Another seed is another namespace: generated, not served.
    for i in range(3):
      for k, v in fresh(1, i).items():
        np.testing.assert_array_equal(v, want[1, i][k])
    assert data.batch_cache_hits() == 3
    # Another batch size is another namespace too.
    assert fresh(1, 0)["mix"].shape == (3, 640)
    assert data.SyntheticMixtures("train", seed=1, chunk_samples=640).batch_at(
      0, 2
    )["mix"].shape == (2, 640)
  finally:
    data.cache_training_batches(0)
  assert fresh(0, 0)["mix"].flags.writeable  # Off again: nothing kept.
  with pytest.raises(ValueError, match="max_bytes"):
    data.cache_training_batches(-1)


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])
@pytest.mark.parametrize(
  "kwargs",
  [
    {},
    dict(dynamic_mixing=True),
    dict(dynamic_mixing=True, speed_perturbation=0.1),
  ],
)
def test_audio_cache_reads_the_same_samples(tmp_path, subtype, kwargs):
  for i, (name, n) in enumerate(_LENGTHS.items()):
    for j, folder in enumerate(("mix", "s1", "s2")):
      path = tmp_path / "wav8k" / "min" / "tr" / folder / f"{name}.wav"
      path.parent.mkdir(parents=True, exist_ok=True)
      audio = np.random.default_rng(10 * i + j).uniform(-0.5, 0.5, n)
      sf.write(str(path), audio, 8000, subtype=subtype)
  make = functools.partial(
    data.make_dataset,
    "wsj0-2mix",
    tmp_path,
    "train",
    seed=3,
    chunk_samples=SMALL_CHUNK,
    **kwargs,
  )
  disk = make()
  assert disk.audio_cache is None
  total = 4 * sum(_LENGTHS.values())  # float32 bytes of one folder
  # All files fit; and a budget that holds only some of them (the rest are
  # read from disk each time).
  for budget in (10 * total, total):
    cached = make(audio_cache_bytes=budget)
    for step in range(6):
      a, b = disk.batch_at(step, 4), cached.batch_at(step, 4)
      for key in ("mix", "sources"):
        np.testing.assert_array_equal(a[key], b[key])
    cache = cached.audio_cache
    assert 0 < cache.used_bytes <= budget
    # Every file the batches read (dynamic mixing reads sources only) is
    # kept when the budget allows.
    read = 6 if kwargs else 9
    assert len(cache) == read if budget > total else len(cache) < read
    for audio in cache._audio.values():  # pylint: disable=protected-access
      assert not audio.flags.writeable
  # A worker process gets the budget, not the contents.
  clone = pickle.loads(pickle.dumps(cached))
  assert clone.audio_cache.max_bytes == total and len(clone.audio_cache) == 0
  np.testing.assert_array_equal(
    clone.batch_at(7, 4)["mix"], disk.batch_at(7, 4)["mix"]
  )


def test_audio_cache_budget_is_validated(tmp_path):
  _wsj_tree(tmp_path)
  with pytest.raises(ValueError, match="audio_cache_bytes"):
    data.make_dataset("wsj0-2mix", tmp_path, "test", audio_cache_bytes=-1)
  with pytest.raises(ValueError, match="audio_cache_mb"):
    configs.get_config("tiny", audio_cache_mb=-5)
