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
    # Different in seconds, the same 16000 samples at 8 kHz.
    ["--chunk-seconds", "2", "--overlap-seconds", "1.99999"],
    ["--chunk-seconds", "1e-5", "--overlap-seconds", "5e-6"],
    ["--chunk-seconds", "-1"],
    ["--chunk-seconds", "inf"],
    ["--overlap-seconds", "x"],
  ):
    code, _, err = _run([str(tmp_path / "a.wav"), *flags], capsys)
    assert code == 2, (flags, err)
    last = err.strip().splitlines()[-1]  # After argparse's usage, if any.
    assert "error:" in last and "-seconds" in last, (flags, err)


def _separate_into(inputs, out, tiny_model, capsys, *flags):
  return _run(
    [
      *map(str, inputs),
      "--model",
      str(tiny_model.exported),
      "--output-dir",
      str(out),
      *flags,
    ],
    capsys,
  )


def test_existing_outputs_are_refused_skipped_or_replaced(
  tmp_path, tiny_model, capsys
):
  for name in ("a", "b"):
    sf.write(tmp_path / f"{name}.wav", _audio(0.5, 8000, 1), 8000)
  inputs = [tmp_path / "a.wav", tmp_path / "b.wav"]
  out = tmp_path / "out"
  out.mkdir()
  sf.write(out / "a_s1.wav", np.zeros(10, np.float32), 8000)
  before = (out / "a_s1.wav").read_bytes()

  code, stdout, err = _separate_into(inputs, out, tiny_model, capsys)
  assert code == 2 and stdout == ""
  assert err.count("\n") == 1 and str(out / "a_s1.wav") in err, err
  assert "--force-overwrite" in err and "--skip-existing" in err
  assert _listing(out) == ["a_s1.wav"]  # Nothing written.

  # a's outputs are incomplete (no a_s2.wav): --skip-existing redoes a.
  code, stdout, err = _separate_into(
    inputs, out, tiny_model, capsys, "--skip-existing"
  )
  assert code == 0, err
  assert (out / "a_s1.wav").read_bytes() != before
  assert _listing(out) == ["a_s1.wav", "a_s2.wav", "b_s1.wav", "b_s2.wav"]

  # Every output exists now: nothing to do, nothing rewritten.
  stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
  code, stdout, err = _separate_into(
    inputs, out, tiny_model, capsys, "--skip-existing"
  )
  assert code == 0 and "nothing to do" in err and stdout == ""
  assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps

  code, stdout, err = _separate_into(
    inputs, out, tiny_model, capsys, "--force-overwrite"
  )
  assert code == 0, err
  assert len(stdout.splitlines()) == 4

  code, _, err = _separate_into(
    inputs, out, tiny_model, capsys, "--force-overwrite", "--skip-existing"
  )
  assert code == 2 and "not allowed with" in err


def test_an_output_that_is_an_input_is_refused_even_when_forced(
  tmp_path, tiny_model, capsys
):
  folder = tmp_path / "rec"
  folder.mkdir()
  sf.write(folder / "a.wav", _audio(0.5, 8000, 1), 8000)
  sf.write(folder / "a_s1.wav", _audio(0.5, 11025, 1, seed=3), 11025)
  sf.write(folder / ".a.wav.x.tmp.wav", _audio(0.5, 8000, 1), 8000)
  before = {p.name: p.read_bytes() for p in folder.iterdir()}
  for flags in ([], ["--force-overwrite"], ["--skip-existing"]):
    code, _, err = _separate_into([folder], folder, tiny_model, capsys, *flags)
    assert code == 2, (flags, err)
    assert err.count("\n") == 1 and str(folder / "a_s1.wav") in err, err
    assert "is an input" in err
  assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_hidden_files_are_not_taken_from_a_folder(tmp_path):
  sf.write(tmp_path / "a.wav", _audio(0.5, 8000, 1), 8000)
  sf.write(tmp_path / ".a_s1.wav.abc.tmp.wav", _audio(0.5, 8000, 1), 8000)
  assert separate.collect_inputs([str(tmp_path)]) == [tmp_path / "a.wav"]


def test_non_finite_input_is_an_error_naming_the_file(
  tmp_path, tiny_model, capsys
):
  audio = _audio(0.5, 8000, 1)[:, 0]
  audio[100] = np.nan
  sf.write(tmp_path / "nan.wav", audio, 8000, subtype="FLOAT")
  out = tmp_path / "out"
  code, _, err = _separate_into([tmp_path / "nan.wav"], out, tiny_model, capsys)
  assert code == 1
  assert err.strip() == (
    f"error: {tmp_path / 'nan.wav'}: audio contains NaN or infinity"
  ), err
  assert _listing(out) == []


def test_keep_going_separates_the_other_files(tmp_path, tiny_model, capsys):
  bad = _audio(0.5, 8000, 1)[:, 0]
  bad[7] = np.inf
  sf.write(tmp_path / "a.wav", _audio(0.5, 8000, 1), 8000)
  sf.write(tmp_path / "b.wav", bad, 8000, subtype="FLOAT")
  sf.write(tmp_path / "c.wav", _audio(0.5, 8000, 1, seed=5), 8000)
  out = tmp_path / "out"
  code, stdout, err = _separate_into(
    [tmp_path / "a.wav", tmp_path / "b.wav", tmp_path / "c.wav"],
    out,
    tiny_model,
    capsys,
    "--keep-going",
  )
  assert code == 1
  assert err.strip().splitlines() == [
    f"error: {tmp_path / 'b.wav'}: audio contains NaN or infinity",
    "error: 1 of 3 inputs failed (named above); the others were separated",
  ]
  assert _listing(out) == ["a_s1.wav", "a_s2.wav", "c_s1.wav", "c_s2.wav"]
  assert len(stdout.splitlines()) == 4


def test_plot_of_an_input_shorter_than_one_window(tmp_path, tiny_model, capsys):
  sf.write(tmp_path / "blip.wav", _audio(0.01, 8000, 1), 8000)  # 80 samples.
  out = tmp_path / "out"
  code, _, err = _separate_into(
    [tmp_path / "blip.wav"], out, tiny_model, capsys, "--plot"
  )
  assert code == 0, err
  assert _listing(out) == [
    "blip_s1.wav",
    "blip_s2.wav",
    "blip_spectrograms.png",
  ]
  assert sf.info(str(out / "blip_s1.wav")).frames == 80


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
