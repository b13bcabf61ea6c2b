"""Tests of tts2mix, the wsj0-2mix-style builder from Debian's TTS voices.

The end-to-end tests build one tiny tree (3/2/2 mixtures, a few seconds on
two cores) with the real engines; they are skipped, with the install line,
only where espeak-ng / festival / flite / wordnet-base are missing. The error
and signal-processing tests need no engine.
"""

import csv
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from examples.separation import data
from examples.separation import tts2mix

REPO = pathlib.Path(__file__).resolve().parents[3]
TINY = [
  "--num-train",
  "3",
  "--num-valid",
  "2",
  "--num-test",
  "2",
  "--jobs",
  "2",
  "--no-progress",
]
MISSING = tts2mix.missing_requirements()
SKIP_REASON = (
  "espeak-ng/festival/flite not installed (missing: "
  f"{', '.join(MISSING)}): {tts2mix.APT_LINE}"
)


def _require_engines():
  if MISSING:
    pytest.skip(SKIP_REASON)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
  """A 3/2/2 build with the free voices, seed 0."""
  _require_engines()
  root = tmp_path_factory.mktemp("tts2mix") / "build"
  assert tts2mix.main(["--root", str(root), *TINY]) == 0
  return root


def _read(path):
  audio, rate = sf.read(str(path), dtype="float32")
  return audio, rate


def _names(split_dir, folder):
  return sorted(p.name for p in (split_dir / folder).iterdir())


# ---------------------------------------------------------------------------
# The tiny build.
# ---------------------------------------------------------------------------


def test_layout_is_wsj0_2mix_with_same_names(tiny_root):
  base = tiny_root / "wav8k" / "min"
  assert sorted(p.name for p in base.iterdir()) == ["cv", "tr", "tt"]
  for split, count in (("tr", 3), ("cv", 2), ("tt", 2)):
    split_dir = base / split
    assert sorted(p.name for p in split_dir.iterdir()) == ["mix", "s1", "s2"]
    names = _names(split_dir, "mix")
    assert len(names) == count
    assert all(n.endswith(".wav") for n in names)
    assert _names(split_dir, "s1") == names == _names(split_dir, "s2")
  top = sorted(p.name for p in tiny_root.iterdir())
  assert top == [
    ".tts2mix.json",
    "README.txt",
    "mixtures.csv",
    "voices.json",
    "wav8k",
  ]  # No work dir, no partial split.
  assert not list(tiny_root.rglob("*.tmp"))
  assert not list(tiny_root.rglob("*.partial"))


def test_mix_is_exactly_s1_plus_s2_at_8khz(tiny_root):
  for mix_path in sorted(tiny_root.glob("wav8k/min/*/mix/*.wav")):
    info = sf.info(str(mix_path))
    assert info.samplerate == 8000 and info.channels == 1
    assert info.subtype == "PCM_16"
    mix, _ = _read(mix_path)
    s1, _ = _read(mix_path.parent.parent / "s1" / mix_path.name)
    s2, _ = _read(mix_path.parent.parent / "s2" / mix_path.name)
    assert len(mix) == len(s1) == len(s2) > 8000
    np.testing.assert_array_equal(mix, s1 + s2)
    assert np.abs(mix).max() <= tts2mix.PEAK + 1e-4  # No clipping.
    assert np.abs(s1).max() > 1e-3 and np.abs(s2).max() > 1e-3


def test_relative_levels_within_0_to_5_db(tiny_root):
  for mix_path in sorted(tiny_root.glob("wav8k/min/*/mix/*.wav")):
    s1, _ = _read(mix_path.parent.parent / "s1" / mix_path.name)
    s2, _ = _read(mix_path.parent.parent / "s2" / mix_path.name)
    power = [np.mean(s.astype(np.float64) ** 2) for s in (s1, s2)]
    level = 10 * np.log10(power[0] / power[1])
    assert abs(level) <= 5.0 + 0.01
    # The name records the gains; their difference is the level.
    parts = mix_path.stem.split("_")
    np.testing.assert_allclose(
      level, float(parts[2]) - float(parts[4]), atol=0.01
    )


def test_test_voices_never_in_train_or_valid(tiny_root):
  info = json.loads((tiny_root / "voices.json").read_text())
  train_talkers = set(info["talkers"]["tr_cv"])
  test_talkers = set(info["talkers"]["tt"])
  assert train_talkers and test_talkers
  assert not train_talkers & test_talkers
  assert {v["sex"] for v in info["split"]["tt"]} == {"F", "M"}
  assert info["seed"] == 0
  assert info["counts"] == {"tr": 3, "cv": 2, "tt": 2}
  with open(tiny_root / "mixtures.csv", newline="") as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 7
  for row in rows:
    talkers = {row["s1_talker"], row["s2_talker"]}
    assert len(talkers) == 2  # Two different talkers per mixture.
    assert talkers <= (test_talkers if row["split"] == "tt" else train_talkers)


def test_loader_reads_the_build(tiny_root):
  ds = data.make_dataset("wsj0-2mix", tiny_root, "train", chunk_samples=4000)
  assert ds.num_examples == 3
  batch = next(ds.batches(2, 0))
  assert batch["mix"].shape == (2, 4000)
  assert batch["sources"].shape == (2, 2, 4000)
  np.testing.assert_allclose(batch["mix"], batch["sources"].sum(1), atol=0)
  assert ds.batch_at(5, 2)["mix"].shape == (2, 4000)
  test = data.make_dataset("wsj0-2mix", tiny_root, "test")
  examples = list(test.examples())
  assert len(examples) == 2
  for ex in examples:
    np.testing.assert_array_equal(ex["mix"], ex["sources"].sum(0))
  assert data.make_dataset("wsj0-2mix", tiny_root, "cv").num_examples == 2


def test_rerun_is_a_no_op_and_other_settings_are_refused(tiny_root, capsys):
  assert tts2mix.main(["--root", str(tiny_root), *TINY]) == 0
  assert "already complete" in capsys.readouterr().out
  with pytest.raises(SystemExit) as e:
    tts2mix.main(["--root", str(tiny_root), *TINY, "--seed", "1"])
  assert e.value.code == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "--seed" in err


def test_interrupted_build_resumes_to_the_same_result(
  tiny_root, tmp_path, monkeypatch, capsys
):
  root = tmp_path / "resumed"
  real = tts2mix.make_mixture
  calls = []

  def flaky(plan, *args):
    calls.append(plan.name)
    if len(calls) == 2:
      raise tts2mix.Tts2MixError("simulated failure")
    return real(plan, *args)

  monkeypatch.setattr(tts2mix, "make_mixture", flaky)
  assert tts2mix.main(["--root", str(root), *TINY, "--jobs", "1"]) == 1
  err = capsys.readouterr().err
  assert "simulated failure" in err and "rerun" in err
  assert not (root / "wav8k" / "min" / "tr").exists()  # Not renamed.
  monkeypatch.setattr(tts2mix, "make_mixture", real)
  assert tts2mix.main(["--root", str(root), *TINY]) == 0
  for path in sorted(tiny_root.glob("wav8k/min/*/*/*.wav")):
    other = root / path.relative_to(tiny_root)
    assert path.read_bytes() == other.read_bytes(), other


# ---------------------------------------------------------------------------
# Errors (no engine needed).
# ---------------------------------------------------------------------------


def test_missing_engine_is_one_line_naming_packages(
  tmp_path, monkeypatch, capsys
):
  monkeypatch.setattr(shutil, "which", lambda name: None)
  root = tmp_path / "out"
  assert tts2mix.main(["--root", str(root), *TINY]) == 1
  err = capsys.readouterr().err
  assert err.count("\n") == 1
  assert "festival" in err and "espeak-ng" in err
  assert (
    "apt-get install -y --no-install-recommends espeak-ng festival "
    "festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts flite "
    "wordnet-base"
  ) in err
  assert not root.exists()  # Nothing written.


def test_missing_engine_from_the_shell_without_traceback(tmp_path):
  env = dict(os.environ, PATH="")
  out = subprocess.run(
    [
      sys.executable,
      "-m",
      "examples.separation.tts2mix",
      "--root",
      str(tmp_path / "out"),
    ],
    cwd=REPO,
    env=env,
    capture_output=True,
    text=True,
    timeout=60,
    check=False,
  )
  assert out.returncode == 1
  assert "Traceback" not in out.stderr
  assert out.stderr.count("\n") == 1 and "apt-get install" in out.stderr
  assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
  "extra, flag",
  [
    (["--num-train", "-1"], "--num-train"),
    (["--num-valid", "0"], "--num-valid"),
    (["--num-test", "-5"], "--num-test"),
    (["--jobs", "0"], "--jobs"),
    (["--seed", "-1"], "--seed"),
    (["--voices", "nonfree"], "--voices"),
    (["--num-train", "many"], "--num-train"),
  ],
)
def test_bad_arguments_are_one_line_errors(tmp_path, capsys, extra, flag):
  with pytest.raises(SystemExit) as e:
    tts2mix.main(["--root", str(tmp_path / "out"), *extra])
  assert e.value.code == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and flag in err and err.startswith("tts2mix")


def test_root_not_a_build_or_a_file_is_refused(tmp_path, capsys):
  other = tmp_path / "other"
  other.mkdir()
  (other / "notes.txt").write_text("mine")
  a_file = tmp_path / "file"
  a_file.write_text("x")
  for root, words in (
    (other, "not a tts2mix build"),
    (a_file, "not a directory"),
  ):
    with pytest.raises(SystemExit) as e:
      tts2mix.main(["--root", str(root)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--root" in err and words in err
  assert (other / "notes.txt").read_text() == "mine"


def test_other_settings_named_in_the_error(tmp_path, monkeypatch, capsys):
  monkeypatch.setattr(tts2mix, "missing_requirements", lambda: [])
  root = tmp_path / "old"
  root.mkdir()
  voices = tts2mix.available_voices("free")
  old = tts2mix.Settings(
    seed=0,
    counts=(3, 2, 2),
    voices="free",
    voice_names=tuple(v.name for v in voices),
    format="pcm16",
    augment=True,
  )
  (root / tts2mix.MARKER).write_text(json.dumps(old.to_json()))
  with pytest.raises(SystemExit):
    tts2mix.main(
      ["--root", str(root), *TINY[:4], "--num-test", "3", "--seed", "1"]
    )
  err = capsys.readouterr().err
  assert err.count("\n") == 1, err
  assert "--seed 0 (not 1), --num-test 2 (not 3)" in err, err


# ---------------------------------------------------------------------------
# Voices, plans and signal processing (no engine needed).
# ---------------------------------------------------------------------------


def test_voice_table_splits_talkers_and_both_sexes_are_held_out():
  for extra in (False, True):
    voices = [v for v in tts2mix.VOICES if extra or not v.extra]
    split_of = {}
    for v in voices:
      assert split_of.setdefault(v.talker, v.split) == v.split, v.talker
      assert "_" not in v.name and v.sex in "FM"
    for split in ("train", "test"):
      assert {v.sex for v in voices if v.split == split} == {"F", "M"}
    recorded_test = {v.sex for v in voices if v.split == "test" and v.recorded}
    assert recorded_test == ({"F", "M"} if extra else {"M"})
  assert len({v.name for v in tts2mix.VOICES}) == len(tts2mix.VOICES)


def _sentences():
  return {
    s: [f"Sentence {s} number {i} is here." for i in range(20)]
    for s in tts2mix.SPLITS
  }


def test_plans_are_deterministic_and_tt_is_natural():
  voices = [v for v in tts2mix.VOICES if not v.extra]
  aug = tts2mix.Augmentation()
  make = lambda split, i, seed=0: tts2mix.plan_mixture(
    split, i, seed, voices, _sentences(), aug
  )
  assert make("tr", 3) == make("tr", 3)
  assert make("tr", 3) != make("tr", 3, seed=1)
  test_names = {v.name for v in voices if v.split == "test"}
  for i in range(40):
    tt, tr = make("tt", i), make("tr", i)
    assert abs(tt.level_db[0] - tt.level_db[1]) <= 5.0
    assert tt.level_db[0] == -tt.level_db[1]
    for src in tt.sources:
      assert src.voice in test_names
      assert (src.engine_rate, src.warp, src.pitch_range, src.tilt) == (
        1.0,
        1.0,
        1.0,
        0.0,
      )
    for src in tr.sources:
      assert src.voice not in test_names
      lo, hi = aug.rate
      assert lo - 1e-9 <= src.engine_rate * src.warp <= hi + 1e-9
    assert tt.mix_level_dbfs == tts2mix.TEST_MIX_LEVEL_DBFS


@pytest.mark.parametrize(
  "fmt, subtype", [("pcm16", "PCM_16"), ("float32", "FLOAT")]
)
def test_written_mixture_is_exact_sum_and_levels(tmp_path, fmt, subtype):
  rng = np.random.default_rng(0)
  a = rng.standard_normal(9000) * np.hanning(9000)
  b = 3 * rng.standard_normal(8000)
  s1, s2, mix = tts2mix.mix_sources(a, b, (1.5, -1.5), -10.0, fmt)
  assert len(mix) == 8000  # 'min' length.
  paths = []
  for name, audio in (("s1", s1), ("s2", s2), ("mix", mix)):
    paths.append(tmp_path / f"{name}.wav")
    tts2mix.write_wav(paths[-1], audio)
  assert sf.info(str(paths[2])).subtype == subtype
  r1, r2, rmix = (_read(p)[0] for p in paths)
  np.testing.assert_array_equal(rmix, r1 + r2)
  level = 10 * np.log10(
    np.mean(r1.astype(float) ** 2) / np.mean(r2.astype(float) ** 2)
  )
  np.testing.assert_allclose(level, 3.0, atol=0.01)
  assert np.abs(rmix).max() <= tts2mix.PEAK + 1e-4  # -10 dBFS would clip.
  assert not list(tmp_path.glob("*.tmp"))


def _peak_hz(x, rate):
  spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
  return np.argmax(spectrum) * rate / len(x)


def test_render_source_resamples_and_warps():
  rate = 16000
  t = np.arange(rate) / rate
  tone = np.sin(2 * np.pi * 200 * t)
  plain = tts2mix.SourcePlan("u", "v", "text", lead_silence_s=0.0)
  y = tts2mix.render_source(tone, rate, plain)
  assert abs(len(y) - 8000) <= 200  # Trimming keeps (almost) everything.
  assert abs(_peak_hz(y, 8000) - 200) < 3
  warped = tts2mix.SourcePlan("u", "v", "text", warp=1.1, lead_silence_s=0.1)
  y = tts2mix.render_source(tone, rate, warped)
  assert abs(_peak_hz(y[800:], 8000) - 220) < 3
  assert abs(len(y) - 800 - 8000 / 1.1) <= 200
  np.testing.assert_array_equal(y[:800], 0.0)  # Leading silence.
