"""``python -m examples.separation.separate``: round trips and every error."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from examples.separation import metrics
from examples.separation import separate
from examples.separation import separator as separator_lib

ROOT = pathlib.Path(__file__).resolve().parents[3]


def _audio(seconds: float, rate: int, channels: int, seed: int = 0):
  """Two gated harmonic tones plus a little noise, ``[L, C]`` float32."""
  rng = np.random.default_rng(seed)
  t = np.arange(int(seconds * rate)) / rate
  a = np.sin(2 * np.pi * 150 * t) * (np.sin(2 * np.pi * 3 * t) > 0)
  b = np.sin(2 * np.pi * 410 * t + 1.0) * (np.sin(2 * np.pi * 4.5 * t) > 0)
  mono = 0.2 * a + 0.15 * b + 0.002 * rng.standard_normal(len(t))
  gains = np.linspace(1.0, 0.6, channels)
  return (mono[:, None] * gains[None]).astype(np.float32)


def _run(argv, capsys):
  """``separate.main(argv)`` in process: ``(exit status, stdout, stderr)``."""
  try:
    code = separate.main([*argv, "--no-progress"])
  except SystemExit as e:
    code = e.code
  captured = capsys.readouterr()
  return code, captured.out, captured.err


def _listing(directory: pathlib.Path):
  return (
    sorted(p.name for p in directory.iterdir()) if directory.exists() else None
  )


def test_round_trip_keeps_rate_and_length(
  tmp_path, tiny_model, tiny_separator, capsys
):
  inputs = tmp_path / "in"
  inputs.mkdir()
  # Lengths of 1.1-1.2 s share one compiled shape at 8 kHz (fast test).
  stereo16k = _audio(1.13, 16000, 2)
  sf.write(inputs / "talk.wav", stereo16k, 16000, subtype="PCM_16")
  sf.write(inputs / "song.flac", _audio(1.07, 44100, 1, seed=1), 44100)
  sf.write(inputs / "three.ogg", _audio(1.2, 22050, 3, seed=2), 22050)
  (inputs / "notes.txt").write_text("not audio, and not taken from a folder")
  out = tmp_path / "out"
  code, stdout, err = _run(
    [
      str(inputs),
      "--model",
      str(tiny_model.exported),
      "--output-dir",
      str(out),
      "--plot",
    ],
    capsys,
  )
  assert code == 0, err
  assert _listing(out) == sorted(
    f"{stem}_{suffix}"
    for stem in ("song", "talk", "three")
    for suffix in ("s1.wav", "s2.wav", "spectrograms.png")
  )
  assert len(stdout.splitlines()) == 9
  for stem, source in (
    ("talk", "talk.wav"),
    ("song", "song.flac"),
    ("three", "three.ogg"),
  ):
    info = sf.info(str(inputs / source))
    for j in (1, 2):
      got = sf.info(str(out / f"{stem}_s{j}.wav"))
      assert (got.samplerate, got.channels, got.frames) == (
        info.samplerate,
        1,
        info.frames,
      ), (stem, j)
  # The file path (streaming resamplers) gives the array API's estimates.
  audio, _ = sf.read(str(inputs / "talk.wav"), dtype="float32")
  expected = tiny_separator(audio, 16000)
  written = np.stack([sf.read(str(out / f"talk_s{j}.wav"))[0] for j in (1, 2)])
  np.testing.assert_allclose(written, expected, atol=1e-4)
  assert (out / "talk_spectrograms.png").read_bytes()[:4] == b"\x89PNG"


def test_chunked_file_agrees_with_whole_file(tmp_path, tiny_model, capsys):
  sf.write(tmp_path / "long.wav", _audio(9.0, 16000, 1, seed=4), 16000)
  outputs = {}
  for name, flags in (
    ("whole", ["--chunk-seconds", "0"]),
    ("chunked", ["--chunk-seconds", "3", "--overlap-seconds", "0.75"]),
  ):
    code, _, err = _run(
      [
        str(tmp_path / "long.wav"),
        "--model",
        str(tiny_model.exported),
        "--output-dir",
        str(tmp_path / name),
        *flags,
      ],
      capsys,
    )
    assert code == 0, err
    outputs[name] = np.stack(
      [sf.read(str(tmp_path / name / f"long_s{j}.wav"))[0] for j in (1, 2)]
    )
  mix = sf.read(str(tmp_path / "long.wav"))[0]
  agreement = metrics.separation_metrics(
    outputs["chunked"], outputs["whole"], mix
  )["si_sdr"]
  assert np.all(agreement > 15.0), agreement


def _bad_input(kind, tmp_path, tiny_model):
  """``(argv, culprit path)`` for each kind of bad input."""
  model = ["--model", str(tiny_model.exported)]
  good = tmp_path / "good.wav"
  sf.write(good, _audio(0.5, 8000, 1), 8000)
  if kind == "missing file":
    path = tmp_path / "nope.wav"
    return [str(good), str(path), *model], path
  if kind == "not audio":
    path = tmp_path / "fake.wav"
    path.write_text("RIFF? no.")
    return [str(good), str(path), *model], path
  if kind == "empty audio":
    path = tmp_path / "silent.wav"
    sf.write(path, np.zeros((0,), np.float32), 8000)
    return [str(good), str(path), *model], path
  if kind == "empty folder":
    path = tmp_path / "empty"
    path.mkdir()
    (path / "readme.txt").write_text("no audio here")
    return [str(good), str(path), *model], path
  if kind == "same stem":
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "good.flac"
    sf.write(path, _audio(0.5, 8000, 1), 8000)
    return [str(good), str(path), *model], path
  if kind == "model not a model":
    path = tmp_path / "not_a_model"
    path.mkdir()
    (path / "weights.bin").write_bytes(b"0")
    return [str(good), "--model", str(path)], path
  if kind == "model missing":
    path = tmp_path / "no_model"
    return [str(good), "--model", str(path)], path
  if kind == "output not writable":
    path = tmp_path / "a_file"
    path.write_text("x")
    return [str(good), *model, "--output-dir", str(path / "out")], path
  raise ValueError(kind)


@pytest.mark.parametrize(
  "kind",
  [
    "missing file",
    "not audio",
    "empty audio",
    "empty folder",
    "same stem",
    "model not a model",
    "model missing",
    "output not writable",
  ],
)
def test_bad_input_is_one_line_naming_the_path(
  kind, tmp_path, tiny_model, capsys
):
  argv, culprit = _bad_input(kind, tmp_path, tiny_model)
  out = tmp_path / "separated"
  if "--output-dir" not in argv:
    argv += ["--output-dir", str(out)]
  code, stdout, err = _run(argv, capsys)
  assert code == 2
  lines = err.strip().splitlines()
  assert len(lines) == 1, err
  assert lines[0].startswith("error: ") and str(culprit) in lines[0], lines
  assert stdout == ""
  assert not out.exists()  # Nothing written, not even the folder.


def test_missing_default_model(tmp_path, capsys, monkeypatch):
  monkeypatch.setattr(separator_lib, "DEFAULT_MODEL", tmp_path / "default")
  sf.write(tmp_path / "a.wav", _audio(0.5, 8000, 1), 8000)
  code, _, err = _run(
    [str(tmp_path / "a.wav"), "--output-dir", str(tmp_path / "out")], capsys
  )
  assert code == 2
  assert err.count("\n") == 1 and str(tmp_path / "default") in err


def test_bad_chunking_flags(tmp_path, capsys):
  sf.write(tmp_path / "a.wav", _audio(0.5, 8000, 1), 8000)
  for flags in (
    ["--chunk-seconds", "1", "--overlap-seconds", "1"],
    ["--chunk-seconds", "-1"],
    ["--overlap-seconds", "x"],
  ):
    code, _, err = _run([str(tmp_path / "a.wav"), *flags], capsys)
    assert code == 2 and "error:" in err, flags


def test_failure_mid_run_leaves_no_partial_outputs(
  tmp_path, tiny_model, capsys, monkeypatch
):
  for name in ("a", "b"):
    sf.write(tmp_path / f"{name}.wav", _audio(0.6, 16000, 2), 16000)
  real_write = separate.write_resampled
  calls = []

  def failing_write(path, *args, **kwargs):
    calls.append(path)
    if len(calls) == 4:  # b's second source.
      real_write(path, *args, **kwargs)
      raise OSError("disk full")
    return real_write(path, *args, **kwargs)

  monkeypatch.setattr(separate, "write_resampled", failing_write)
  out = tmp_path / "out"
  code, _, err = _run(
    [
      str(tmp_path / "a.wav"),
      str(tmp_path / "b.wav"),
      "--model",
      str(tiny_model.exported),
      "--output-dir",
      str(out),
    ],
    capsys,
  )
  assert code == 1
  lines = err.strip().splitlines()
  assert len(lines) == 1 and str(tmp_path / "b.wav") in lines[0], err
  assert "disk full" in lines[0]
  assert _listing(out) == ["a_s1.wav", "a_s2.wav"]  # No b_*, no temp files.


def test_module_entry_point(tmp_path):
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  proc = subprocess.run(
    [
      sys.executable,
      "-m",
      "examples.separation.separate",
      str(tmp_path / "missing.wav"),
    ],
    cwd=tmp_path,
    env=env,
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines() == [
    f"error: {tmp_path / 'missing.wav'}: no such file or directory"
  ]
