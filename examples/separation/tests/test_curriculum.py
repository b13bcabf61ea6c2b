"""The synthetic-first curriculum on file-backed data.

The tiny preset trains on wsj0-2mix / Libri2Mix-style data in two stages:
synthetic low + high register pairs first, then the real data blended with
synthetic any-pairs, with a warm restart of the learning rate. These tests
pin the data stream, the schedule, the preset and its errors, and that a run
crossing the switch resumes bit-identically.
"""

import dataclasses
import json

import numpy as np
import pytest
import soundfile as sf

from examples.separation import cli
from examples.separation import configs
from examples.separation import data
from examples.separation import optimizer
from examples.separation import train

CHUNK = 24 * 64  # samples of a 25-frame chunk


def _tree(root, seconds=0.6):
  """A wsj0-2mix-layout tree of noise 'utterances' (3 per split)."""
  rng = np.random.default_rng(0)
  for split in ("tr", "cv", "tt"):
    for i in range(3):
      sources = rng.uniform(-0.3, 0.3, (2, int(seconds * 8000)))
      base = root / "wav8k" / "min" / split
      for folder, audio in (
        ("s1", sources[0]),
        ("s2", sources[1]),
        ("mix", sources.sum(0)),
      ):
        (base / folder).mkdir(parents=True, exist_ok=True)
        sf.write(base / folder / f"u{i}.wav", audio, 8000, subtype="FLOAT")
  return root


def _micro(root, **overrides):
  base = dict(
    data="wsj0-2mix",
    data_root=str(root),
    num_layers=1,
    hidden=8,
    batch_size=8,
    chunk_frames=25,
    steps=6,
    synthetic_pretrain_steps=3,
    num_val_examples=2,
    num_test_examples=2,
    max_eval_examples=2,
    log_every=1,
    eval_every=6,
    checkpoint_every=3,
    num_wav_examples=0,
    progress=False,
    history_size=64,
    synthetic_renderer="numpy",
  )
  base.update(overrides)
  return configs.get_config("tiny", **base)


def test_curriculum_serves_the_first_dataset_then_the_second(tmp_path):
  _tree(tmp_path)
  kwargs = dict(seed=1, chunk_samples=CHUNK)
  real = data.make_dataset("wsj0-2mix", tmp_path, "train", **kwargs)
  synthetic = data.make_dataset("synthetic", split="train", **kwargs)
  stream = data.CurriculumTraining(synthetic, real, 5)
  for step, source in ((0, synthetic), (4, synthetic), (5, real), (9, real)):
    batch = stream.batch_at(step, 3)
    assert set(batch) == {"mix", "sources", "classes"}
    np.testing.assert_array_equal(batch["mix"], source.batch_at(step, 3)["mix"])
  # Everything but the training stream is the second dataset's.
  assert stream.name == "wsj0-2mix"
  assert stream.num_examples == real.num_examples


def test_curriculum_errors(tmp_path):
  _tree(tmp_path)
  real = data.make_dataset("wsj0-2mix", tmp_path, "train", chunk_samples=CHUNK)
  other = data.make_dataset(
    "synthetic", split="train", chunk_samples=CHUNK + 64
  )
  with pytest.raises(ValueError, match="chunk length"):
    data.CurriculumTraining(other, real, 2)
  with pytest.raises(ValueError, match="switch"):
    data.CurriculumTraining(real, real, -1)


def test_make_dataset_builds_the_two_stages(tmp_path):
  _tree(tmp_path)
  config = _micro(tmp_path, synthetic_fraction=0.5, pairing="any")
  stream = train.make_dataset(config, "train")
  assert isinstance(stream, data.CurriculumTraining)
  assert stream.switch == 3
  # Stage one: synthetic low + high register pairs, whatever the blend's
  # pairing; stage two: the real data blended with synthetic any-pairs.
  assert stream.first.config.pairing == "cross_register"
  assert isinstance(stream.then, data.BlendedTraining)
  assert stream.then.secondary.config.pairing == "any"
  # Evaluation splits are the real data's, without the synthetic stage.
  assert not isinstance(
    train.make_dataset(config, "validation"), data.CurriculumTraining
  )


def test_learning_rate_restarts_at_the_switch():
  config = configs.get_config(
    "tiny",
    data="wsj0-2mix",
    data_root="unused",
    steps=1000,
    synthetic_pretrain_steps=600,
    warmup_steps=100,
    learning_rate=2e-3,
  )
  schedule = optimizer.learning_rate_schedule(config)
  lr = [float(schedule(s)) for s in range(1000)]
  np.testing.assert_allclose(lr[0], 2e-3 / 100, rtol=1e-5)
  np.testing.assert_allclose(lr[100], 2e-3, rtol=1e-5)
  # The first cycle has decayed towards 2e-4 before the switch; the second
  # starts its own warm-up at step 600 and peaks again at 700.
  assert lr[599] < 3e-4
  np.testing.assert_allclose(lr[600], 2e-3 / 100, rtol=1e-5)
  np.testing.assert_allclose(lr[700], 2e-3, rtol=1e-5)
  assert lr[999] < 3e-4
  # Without the curriculum: one cycle over all steps.
  plain = optimizer.learning_rate_schedule(
    dataclasses.replace(config, synthetic_pretrain_steps=0)
  )
  assert float(plain(600)) > 5e-4


def test_tiny_preset_uses_the_curriculum_on_file_data_only():
  files = configs.get_config("tiny", data="wsj0-2mix", data_root="r")
  assert files.synthetic_pretrain_steps == 12000 and files.steps == 21000
  assert files.dynamic_mixing and files.synthetic_fraction == 0.5
  assert files.pairing == "any"
  assert files.distinct_talkers and files.normalize_levels
  synthetic = configs.get_config("tiny")
  assert not synthetic.distinct_talkers and not synthetic.normalize_levels
  assert synthetic.synthetic_pretrain_steps == 0 and synthetic.steps == 3000
  assert synthetic.pairing == "cross_register"
  # Explicit fields win over the refinement, and without_data_preset undoes
  # it (the recorded sweeps and recipes use it).
  pinned = configs.get_config(
    "tiny",
    data="wsj0-2mix",
    data_root="r",
    **configs.without_data_preset("tiny"),
  )
  assert pinned.synthetic_pretrain_steps == 0 and pinned.steps == 3000
  assert not pinned.dynamic_mixing and pinned.synthetic_fraction == 0.0
  assert not pinned.distinct_talkers and not pinned.normalize_levels
  assert configs.get_config("small", data="wsj0-2mix", data_root="r").steps == (
    configs.get_config("small").steps
  )


@pytest.mark.parametrize(
  "overrides, message",
  [
    (dict(steps=3000), r"synthetic_pretrain_steps=12000 .* below steps=3000"),
    (dict(synthetic_pretrain_steps=-1), "synthetic_pretrain_steps=-1"),
  ],
)
def test_invalid_curriculum_names_the_field(overrides, message):
  with pytest.raises(ValueError, match=message):
    configs.get_config("tiny", data="wsj0-2mix", data_root="r", **overrides)


def test_distinct_talkers_follows_dynamic_mixing():
  # The preset's distinct talkers go with its dynamic mixing...
  plain = configs.get_config(
    "tiny", data="wsj0-2mix", data_root="r", dynamic_mixing=False
  )
  assert not plain.distinct_talkers and plain.normalize_levels
  # ... and asking for them without it is an error naming the field.
  for overrides in (
    dict(distinct_talkers=True),
    dict(data="wsj0-2mix", data_root="r", dynamic_mixing=False)
    | dict(distinct_talkers=True),
  ):
    with pytest.raises(ValueError, match="distinct_talkers=True needs"):
      configs.get_config("tiny", **overrides)


@pytest.mark.parametrize(
  "field", ["dynamic_mixing", "distinct_talkers", "normalize_levels"]
)
def test_switches_must_be_booleans(field):
  with pytest.raises(ValueError, match=f"{field}='no' must be True or False"):
    configs.get_config("tiny", data="wsj0-2mix", data_root="r", **{field: "no"})


def test_synthetic_data_has_no_synthetic_stage():
  with pytest.raises(ValueError, match="needs real data"):
    configs.get_config("tiny", synthetic_pretrain_steps=10)


def test_cli_flags():
  parser = cli.build_parser()
  base = ["--data", "wsj0-2mix", "--data-root", "r", "--workdir", "w"]
  config = cli.config_from_args(parser.parse_args(base))
  assert config.dynamic_mixing and config.synthetic_pretrain_steps == 12000
  config = cli.config_from_args(
    parser.parse_args(
      [*base, "--no-dynamic-mixing", "--steps", "500"]
      + ["--synthetic-pretrain-steps", "0", "--synthetic-fraction", "0"]
    )
  )
  assert not config.dynamic_mixing and config.synthetic_pretrain_steps == 0
  assert config.steps == 500 and config.synthetic_fraction == 0.0
  # Distinct talkers go with dynamic mixing; level normalisation stays.
  assert not config.distinct_talkers and config.normalize_levels
  config = cli.config_from_args(parser.parse_args(base))
  assert config.distinct_talkers and config.normalize_levels
  config = cli.config_from_args(
    parser.parse_args([*base, "--no-distinct-talkers", "--no-normalize-levels"])
  )
  assert not config.distinct_talkers and not config.normalize_levels


def test_run_across_the_switch_resumes_bit_identically(
  tmp_path, interrupted_run
):
  root = _tree(tmp_path / "tree")
  config = _micro(root, synthetic_pretrain_steps=2)
  straight = train.train_and_evaluate(config, str(tmp_path / "straight"))
  # Interrupted after the checkpoint of step 3 (one step past the switch),
  # then resumed to the end.
  interrupted = tmp_path / "interrupted"
  interrupted_run(config, interrupted, at_step=4)
  resumed = train.train_and_evaluate(config, str(interrupted), resume=True)
  assert resumed["steps_done"] == 6
  assert resumed["test_si_sdri_db"] == straight["test_si_sdri_db"]
  assert np.isfinite(straight["test_si_sdri_db"])

  def losses(path):
    return [
      json.loads(x)["loss"]
      for x in (path / "metrics.jsonl").read_text().splitlines()
    ]

  assert losses(interrupted) == losses(tmp_path / "straight")
