"""End-to-end tests of the training pipeline on tiny generated data."""

import dataclasses
import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from examples.separation import cli
from examples.separation import configs
from examples.separation import inference
from examples.separation import metrics
from examples.separation import train
from examples.separation import train_state


def micro_config(**overrides):
  """A very small model and data so that a few steps take seconds."""
  base = dict(
    num_layers=1,
    hidden=16,
    batch_size=8,
    chunk_frames=24,
    steps=4,
    num_val_examples=2,
    num_test_examples=2,
    log_every=1,
    eval_every=4,
    checkpoint_every=2,
    num_wav_examples=1,
    progress=False,
    history_size=64,
  )
  base.update(overrides)
  return configs.get_config("tiny", **base)


def _params_changed(a, b):
  return any(
    not np.allclose(x, y)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
  )


@pytest.mark.parametrize("loss", configs.LOSSES)
def test_one_jitted_step_changes_params_with_finite_logs(loss):
  config = micro_config(loss=loss, batch_size=2)
  state = train.create_train_state(config, jax.random.key(0))
  before = jax.tree.map(np.asarray, state.params)
  batch = train.train_batch(train.make_dataset(config, "train"), config, 0)
  batch = {
    k: jnp.asarray(v)
    for k, v in batch.items()
    if k in ("mix", "sources", "classes")
  }
  state, logs = jax.jit(train.make_train_step(config))(state, batch)
  assert _params_changed(before, state.params)
  for key in ("loss", "grad_norm", "threshold"):
    assert np.isfinite(float(logs[key])), key
  assert int(state.step) == 1


def test_normalize_levels_weighs_every_example_the_same():
  config = micro_config(loss="mi", batch_size=3)
  batch = train.train_batch(train.make_dataset(config, "train"), config, 0)
  batch = {k: jnp.asarray(batch[k]) for k in ("mix", "sources", "classes")}
  gains = jnp.asarray([0.1, 1.0, 10.0])[:, None]
  scaled = {
    **batch,
    "mix": batch["mix"] * gains,
    "sources": batch["sources"] * gains[..., None],
  }
  normal = train.normalize_levels(batch)
  rms = jnp.sqrt(jnp.mean(normal["mix"] ** 2, axis=-1))
  np.testing.assert_allclose(rms, train.NORMALIZED_RMS, rtol=1e-5)
  np.testing.assert_allclose(
    normal["mix"], normal["sources"].sum(axis=1), atol=1e-6
  )
  # Level-invariant after normalisation; the plain L_MI is not.
  model = train.create_model(config, nnx.Rngs(0))

  def losses(b):
    return np.asarray(train.per_example_loss(model(b["mix"]), b, config))

  np.testing.assert_allclose(
    losses(train.normalize_levels(scaled)), losses(normal), rtol=1e-3
  )
  ratio = losses(scaled) / losses(batch)
  # (up to the log-magnitude floor of the quietest one).
  np.testing.assert_allclose(ratio, [0.1, 1.0, 10.0], rtol=1e-2)
  # A silent example stays silent (no NaN).
  silent = {**batch, "mix": batch["mix"].at[0].set(0.0)}
  assert np.all(np.isfinite(train.normalize_levels(silent)["mix"]))
  assert not np.any(train.normalize_levels(silent)["mix"][0])


def test_loss_falls_and_si_sdri_rises_on_a_fixed_small_set():
  """The tiny preset's network, trained on 8 fixed mixtures."""
  config = configs.get_config("tiny", progress=False)
  state = train.create_train_state(config, jax.random.key(0))
  batch = train.train_batch(train.make_dataset(config, "train"), config, 0)
  fixed = {k: jnp.asarray(batch[k]) for k in ("mix", "sources")}
  step = jax.jit(train.make_train_step(config))
  separate = train.make_separate_fn(config)

  def si_sdri(params):
    est = np.asarray(separate(params, fixed["mix"]))
    return np.mean(
      [
        metrics.separation_metrics(
          est[i], batch["sources"][i], batch["mix"][i]
        )["si_sdri"].mean()
        for i in range(len(est))
      ]
    )

  before_sdri = si_sdri(state.params)
  losses = []
  for _ in range(60):
    state, logs = step(state, fixed)
    losses.append(float(logs["loss"]))
  after_sdri = si_sdri(state.params)
  assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])
  assert after_sdri > before_sdri + 3.0, (before_sdri, after_sdri)


def test_train_and_evaluate_writes_outputs(tmp_path):
  results = train.train_and_evaluate(micro_config(), str(tmp_path))
  records = [
    json.loads(line)
    for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
  ]
  assert [r["step"] for r in records] == [1, 2, 3, 4]
  for r in records:
    for key in ("step", "loss", "grad_norm", "threshold", "clipped"):
      assert key in r
  assert "val_si_sdri_db" in records[-1]
  saved = json.loads((tmp_path / "results.json").read_text())
  for key in (
    "loss",
    "clip",
    "p",
    "steps",
    "seed",
    "test_si_sdr_db",
    "test_si_sdri_db",
  ):
    assert key in saved
  assert saved == json.loads(json.dumps(results))
  assert np.isfinite(saved["test_si_sdri_db"])
  wavs = sorted(p.name for p in (tmp_path / "examples").glob("*.wav"))
  assert len(wavs) == 5 and any("estimate" in w for w in wavs)


def test_resume_equals_uninterrupted_run(tmp_path, interrupted_run):
  config = micro_config(steps=6, checkpoint_every=3, eval_every=6)
  straight = train.train_and_evaluate(config, str(tmp_path / "straight"))
  interrupted = tmp_path / "interrupted"
  # Stopped during step 5: resumed from the checkpoint of step 3.
  interrupted_run(config, interrupted, at_step=4)
  # A line torn by a killed process is dropped, not a crash.
  with open(interrupted / "metrics.jsonl", "a", encoding="utf-8") as f:
    f.write('{"step": 5, "clip_fr')
  resumed = train.train_and_evaluate(config, str(interrupted), resume=True)
  assert resumed["steps_done"] == straight["steps_done"] == 6
  assert resumed["test_si_sdri_db"] == straight["test_si_sdri_db"]
  assert resumed["final_threshold"] == straight["final_threshold"]

  def training_logs(path):
    # The training quantities (validation steps add validation keys).
    keys = ("step", "loss", "grad_norm", "threshold", "clipped")
    return [
      {k: json.loads(x)[k] for k in keys}
      for x in (path / "metrics.jsonl").read_text().splitlines()
    ]

  assert training_logs(interrupted) == training_logs(tmp_path / "straight")

  # Resumed at its end, a finished run trains nothing and keeps what its
  # training measured (validation score, training time).
  again = train.train_and_evaluate(
    config, str(tmp_path / "straight"), resume=True
  )
  assert again["steps_done"] == 6
  for key in ("val_si_sdri_db", "train_seconds_this_run", "test_si_sdri_db"):
    assert again[key] == straight[key], key
  assert again["val_si_sdri_db"] is not None


def test_data_worker_process_and_thread_train_identically(tmp_path):
  runs = {}
  for workers in (0, 2):
    config = micro_config(steps=4, eval_every=4, data_workers=workers)
    runs[workers] = train.train_and_evaluate(
      config, str(tmp_path / f"w{workers}")
    )
    logs = (tmp_path / f"w{workers}" / "metrics.jsonl").read_text()
    runs[workers]["logs"] = [
      {k: v for k, v in json.loads(x).items() if k != "time"}
      for x in logs.splitlines()
    ]
  assert runs[0]["logs"] == runs[2]["logs"]
  assert runs[0]["test_si_sdri_db"] == runs[2]["test_si_sdri_db"]


def test_init_from_starts_from_the_source_weights(tmp_path):
  source = micro_config(steps=2, eval_every=2, checkpoint_every=2)
  train.train_and_evaluate(source, str(tmp_path / "source"))
  trained = train.initial_params(
    dataclasses.replace(source, init_from=str(tmp_path / "source"))
  )
  # A fine-tune (another seed and loss with the same network) starts from
  # exactly those weights, not from its own random initialisation.
  tune = micro_config(
    loss="snr", seed=5, steps=2, init_from=str(tmp_path / "source")
  )
  state = train.create_train_state(tune, jax.random.key(tune.seed))
  start = jax.tree.map(np.asarray, train_state.checkpoint_tree(state)["params"])
  for a, b in zip(
    jax.tree.leaves(start), jax.tree.leaves(trained), strict=True
  ):
    np.testing.assert_array_equal(a, b)
  fresh = train.create_train_state(
    dataclasses.replace(tune, init_from=None), jax.random.key(tune.seed)
  )
  assert _params_changed(start, train_state.checkpoint_tree(fresh)["params"])
  results = train.train_and_evaluate(tune, str(tmp_path / "tune"))
  assert results["steps_done"] == 2 and np.isfinite(results["test_si_sdri_db"])


@pytest.mark.parametrize(
  "overrides, culprit",
  [
    (dict(hidden=8), "hidden=16 (run: 8)"),
    (dict(loss="dc"), "loss='mi' (run: 'dc')"),
    (dict(init_from="/nonexistent/model"), "/nonexistent/model"),
  ],
)
def test_init_from_a_different_network_is_refused(tmp_path, overrides, culprit):
  source = micro_config(steps=1, eval_every=1, checkpoint_every=1)
  train.train_and_evaluate(source, str(tmp_path / "source"))
  config = micro_config(**({"init_from": str(tmp_path / "source")} | overrides))
  with pytest.raises(train.TrainingError, match="init_from") as info:
    train.create_train_state(config, jax.random.key(0))
  assert culprit in str(info.value)


def test_eight_devices_equal_one_device():
  assert jax.device_count() == 8
  config = micro_config(batch_size=8)
  ds = train.make_dataset(config, "train")
  step = jax.jit(train.make_train_step(config))
  finals = []
  for num_devices in (1, 8):
    mesh = train.make_mesh(num_devices)
    state = jax.device_put(
      train.create_train_state(config, jax.random.key(0)),
      jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()),
    )
    for t in range(3):
      state, _ = step(
        state, train.shard_batch(train.train_batch(ds, config, t), mesh)
      )
    if num_devices == 8:
      leaf = jax.tree.leaves(state.params)[0]
      assert len(leaf.sharding.device_set) == 8
    finals.append(jax.tree.map(np.asarray, (state.params, state.opt_state)))
  for a, b in zip(
    jax.tree.leaves(finals[0]), jax.tree.leaves(finals[1]), strict=True
  ):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-6)


def test_jitted_step_does_not_recompile_and_updates_the_nnx_state():
  config = micro_config(batch_size=2)
  state = train.create_train_state(config, jax.random.key(0))
  ds = train.make_dataset(config, "train")
  step = jax.jit(train.make_train_step(config), donate_argnums=0)
  for t in range(3):
    batch = {
      k: jnp.asarray(v)
      for k, v in train.train_batch(ds, config, t).items()
      if k in ("mix", "sources", "classes")
    }
    state, _ = step(state, batch)
  assert step._cache_size() == 1  # pylint: disable=protected-access
  model, optimizer = state.merge()
  assert int(optimizer.step.get_value()) == int(state.step) == 3
  np.testing.assert_array_equal(
    np.asarray(model.mask.kernel.get_value()),
    np.asarray(state.params["mask"]["kernel"]),
  )


def test_checkpoint_tree_round_trip():
  """``checkpoint_tree`` / ``restore_tree`` keep every value of the state."""
  config = micro_config(batch_size=2)
  ds = train.make_dataset(config, "train")
  state = train.create_train_state(config, jax.random.key(0))
  batch = {
    k: jnp.asarray(v)
    for k, v in train.train_batch(ds, config, 0).items()
    if k in ("mix", "sources", "classes")
  }
  state, _ = jax.jit(train.make_train_step(config))(state, batch)
  tree = jax.tree.map(np.asarray, train_state.checkpoint_tree(state))
  assert set(tree) == {"step", "params", "opt_state"}
  assert tree["step"] == 1 and tree["step"].dtype == np.int32
  fresh = train.create_train_state(config, jax.random.key(1))
  restored = train_state.restore_tree(fresh, tree)
  # (The graphdefs differ: each create_train_state builds its own optax tx.)
  assert jax.tree.structure(restored.state) == jax.tree.structure(state.state)
  for a, b in zip(
    jax.tree.leaves(restored.state), jax.tree.leaves(state.state), strict=True
  ):
    assert a.dtype == b.dtype
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_nan_loss_is_reported_with_its_step(tmp_path, monkeypatch):
  real = train.per_example_loss

  def poisoned(outputs, batch, config):
    return real(outputs, batch, config) * jnp.nan

  monkeypatch.setattr(train, "per_example_loss", poisoned)
  with pytest.raises(train.TrainingError, match="step 1"):
    train.train_and_evaluate(micro_config(), str(tmp_path))


def test_nan_gradient_with_a_finite_loss_is_reported(tmp_path, monkeypatch):
  real = train.per_example_loss

  def poisoned(outputs, batch, config):
    # d sqrt(u) / du is infinite at u = 0: NaN gradients, finite loss.
    zero = jnp.sum(jax.tree.leaves(outputs)[0] * 0.0)
    return real(outputs, batch, config) + jnp.sqrt(zero)

  monkeypatch.setattr(train, "per_example_loss", poisoned)
  with pytest.raises(train.TrainingError, match="weights after step 1"):
    train.train_and_evaluate(micro_config(checkpoint_every=1), str(tmp_path))
  assert not list((tmp_path / "checkpoints").glob("[0-9]*"))


def test_kmeans_masks_separate_clustered_embeddings():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 2, (1, 5, 7))
  centers = np.array([[1.0, 0.0], [0.0, 1.0]])
  emb = centers[labels] + 0.05 * rng.standard_normal((1, 5, 7, 2))
  masks = inference.kmeans_masks(
    jnp.asarray(emb, jnp.float32), jnp.ones((1, 5, 7))
  )
  m = np.asarray(masks)[0]
  agree = np.mean(m[0] == (labels[0] == 0))
  assert agree in (0.0, 1.0)


def test_a_fresh_run_does_not_start_in_a_workdir_with_checkpoints(
  tmp_path, capsys
):
  train.train_and_evaluate(micro_config(), str(tmp_path))
  assert json.loads((tmp_path / "config.json").read_text())["seed"] == 0
  saved = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
  # Orbax would keep the earlier run's later checkpoints, and a resume would
  # continue that run: refused, before any data is read.
  with pytest.raises(train.WorkdirError, match="step 4.*--resume"):
    train.train_and_evaluate(micro_config(seed=1), str(tmp_path))
  assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == saved
  assert json.loads((tmp_path / "config.json").read_text())["seed"] == 0
  # The command line says so in one line.
  assert cli.main(["--steps", "4", "--workdir", str(tmp_path)]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert err[-1].startswith("error: --workdir") and "--resume" in err[-1]


def test_resume_refuses_other_settings_but_not_other_evaluation(
  tmp_path, interrupted_run
):
  config = micro_config(steps=6, checkpoint_every=3, eval_every=6)
  interrupted_run(config, tmp_path, at_step=4)
  recorded = json.loads((tmp_path / "config.json").read_text())
  assert recorded == json.loads(json.dumps(dataclasses.asdict(config)))
  for change, culprit in (
    (dict(hidden=8), "hidden=16 (now 8)"),
    (dict(loss="snr"), "loss='mi' (now 'snr')"),
    # The cosine decay follows the run's length: not extendable.
    (dict(steps=7), "steps=6 (now 7)"),
    (dict(steps=2), "already longer"),
    (dict(normalize_levels=True), "normalize_levels=False (now True)"),
  ):
    with pytest.raises(train.WorkdirError, match=re.escape(culprit)):
      train.train_and_evaluate(
        dataclasses.replace(config, **change), str(tmp_path), resume=True
      )
  # Evaluation settings may change (and the length of a run without a
  # decaying schedule: tests/test_legacy_checkpoints.py extends one).
  results = train.train_and_evaluate(
    dataclasses.replace(config, num_test_examples=3, eval_every=2),
    str(tmp_path),
    resume=True,
  )
  assert results["steps_done"] == 6 and results["num_test_utterances"] == 3


def test_config_mismatch_reads_fields_added_later_as_their_default():
  config = configs.get_config("tiny")
  recorded = json.loads(json.dumps(dataclasses.asdict(config)))
  assert configs.config_mismatch(config, recorded) == []
  del recorded["normalize_levels"]  # A run from before the field existed.
  recorded["steps_done"] = 3000  # Not a config field.
  assert configs.config_mismatch(config, recorded) == []
  recorded["hidden"], recorded["progress"] = 128, False
  assert configs.config_mismatch(config, recorded) == ["hidden=128 (now 64)"]
  assert configs.config_mismatch(config, recorded, ignore=("hidden",)) == [
    "progress=False (now True)"
  ]


def test_recorded_config_round_trips():
  config = configs.get_config("tiny", reweight="class", class_gammas=(1.0, 2.0))
  recorded = json.loads(json.dumps(dataclasses.asdict(config)))
  assert configs.from_recorded(recorded) == config
  # A results.json also holds results; a field added later takes its
  # default (here not the tiny preset's value).
  del recorded["synthetic_renderer"]
  recorded["steps_done"] = 3000
  assert configs.from_recorded(recorded) == dataclasses.replace(
    config, synthetic_renderer=configs.Config.synthetic_renderer
  )
  assert config.synthetic_renderer != configs.Config.synthetic_renderer


def test_resume_from_the_command_line_takes_the_recorded_settings(
  tmp_path, interrupted_run, capsys
):
  # Settings that differ from the command line's defaults (tiny preset).
  config = micro_config(steps=6, checkpoint_every=3, eval_every=6, seed=3)
  interrupted_run(config, tmp_path, at_step=4)
  capsys.readouterr()
  # Nothing but --resume: the run goes on with its own settings.
  assert (
    cli.main(["--resume", "--workdir", str(tmp_path), "--no-progress"]) == 0
  )
  captured = capsys.readouterr()
  assert f"resuming with the settings recorded in {tmp_path}" in captured.err
  results = json.loads((tmp_path / "results.json").read_text())
  assert json.loads(captured.out)["steps_done"] == results["steps_done"] == 6
  assert (results["seed"], results["hidden"], results["num_layers"]) == (
    3,
    16,
    1,
  )
  assert results["num_test_utterances"] == 2


def test_resume_from_the_command_line_applies_only_the_flags_given(
  tmp_path, interrupted_run, capsys
):
  config = micro_config(steps=6, checkpoint_every=3, eval_every=6)
  interrupted_run(config, tmp_path, at_step=4)
  base = ["--resume", "--workdir", str(tmp_path), "--no-progress"]
  assert cli.given_flags([*base, "--steps", "5", "--no-dynamic-mixing"]) == {
    "resume",
    "workdir",
    "no_progress",
    "steps",
    "dynamic_mixing",
  }
  # A flag that changes the trained weights is refused, naming the field.
  capsys.readouterr()
  assert cli.main([*base, "--hidden", "8"]) == 2
  err = capsys.readouterr().err
  assert "except --hidden from the command line" in err
  assert "hidden=16 (now 8)" in err
  # The run's own preset may be named.
  flags = cli.given_flags([*base, "--preset", "tiny"])
  args = cli.build_parser().parse_args([*base, "--preset", "tiny"])
  recorded = configs.read_recorded(tmp_path)
  assert cli.resumed_config(args, flags, recorded).hidden == 16
  # Another preset is refused before anything is built.
  with pytest.raises(SystemExit) as exit_info:
    cli.main([*base, "--preset", "small"])
  assert exit_info.value.code == 2
  assert "--preset 'small'" in capsys.readouterr().err
  # An evaluation setting may change.
  assert cli.main([*base, "--num-test", "3"]) == 0
  results = json.loads((tmp_path / "results.json").read_text())
  assert results["steps_done"] == 6 and results["num_test_utterances"] == 3
  assert results["hidden"] == 16


@pytest.mark.parametrize(
  "data", [[], ["--data", "wsj0-2mix", "--data-root", "/data/wsj0-2mix"]]
)
def test_resume_with_more_steps_restores_the_shrunk_cadence(data):
  # A 100-step tiny run evaluates and checkpoints every 100 steps (the
  # preset's 500, shrunk to fit); resumed for 3000 steps it takes the
  # preset's cadence again, unless --eval-every is given. (Real data: the
  # preset is read without a data root, which a Config would need.)
  parser = cli.build_parser()
  start = ["--workdir", "w", "--steps", "100", *data]
  if data:
    start += ["--synthetic-pretrain-steps", "50"]
  recorded = json.loads(
    json.dumps(
      dataclasses.asdict(cli.config_from_args(parser.parse_args(start)))
    )
  )
  assert recorded["eval_every"] == recorded["checkpoint_every"] == 100
  preset = configs.get_config("tiny", data="synthetic")
  assert recorded["data"] == ("wsj0-2mix" if data else "synthetic")

  def resumed(*flags):
    argv = ["--resume", "--workdir", "w", *flags]
    args = parser.parse_args(argv)
    return cli.resumed_config(args, cli.given_flags(argv), recorded)

  config = resumed("--steps", "3000")
  assert config.data_root == (data[-1] if data else None)
  assert (config.eval_every, config.checkpoint_every) == (
    preset.eval_every,
    preset.checkpoint_every,
  )
  assert resumed("--steps", "300").eval_every == 300  # Still shrunk to fit.
  assert resumed("--steps", "3000", "--eval-every", "50").eval_every == 50
  assert resumed().eval_every == 100  # The run's own length: unchanged.
  assert resumed("--num-test", "3").eval_every == 100


def test_optimizer_and_checkpoint_fields_have_flags():
  parser = cli.build_parser()
  argv = ["--workdir", "w", "--warmup-steps", "0", "--lr-decay", "none"]
  argv += ["--lr-final-fraction", "0.5", "--adam-b2", "0.99"]
  argv += ["--checkpoint-every", "250"]
  config = cli.config_from_args(parser.parse_args(argv))
  assert (config.warmup_steps, config.lr_decay) == (0, "none")
  assert (config.lr_final_fraction, config.adam_b2) == (0.5, 0.99)
  assert config.checkpoint_every == 250
  preset = configs.get_config("tiny")
  default = cli.config_from_args(parser.parse_args(["--workdir", "w"]))
  for field in ("warmup_steps", "lr_decay", "adam_b2", "checkpoint_every"):
    assert getattr(default, field) == getattr(preset, field), field
  with pytest.raises(ValueError, match="adam_b2=1.5"):
    cli.config_from_args(parser.parse_args([*argv[:2], "--adam-b2", "1.5"]))


def test_class_reweighting_takes_class_labelled_mixtures():
  parser = cli.build_parser()
  argv = ["--workdir", "w", "--reweight", "class", "--class-gammas", "1,2"]
  config = cli.config_from_args(parser.parse_args(argv))
  assert config.environmental and config.class_gammas == (1.0, 2.0)
  assert not cli.config_from_args(
    parser.parse_args(["--workdir", "w"])
  ).environmental


def test_resume_without_recorded_settings_warns(tmp_path, capsys):
  # A workdir from before config.json: checkpoints only.
  config = micro_config(steps=4)
  train.train_and_evaluate(config, str(tmp_path))
  for name in ("config.json", "results.json"):
    (tmp_path / name).unlink()
  assert configs.read_recorded(tmp_path) is None
  argv = ["--resume", "--workdir", str(tmp_path), "--no-progress"]
  argv += ["--steps", "4", "--hidden", "16", "--num-layers", "1"]
  argv += ["--batch-size", "8", "--chunk-frames", "24", "--num-test", "2"]
  argv += ["--history-size", "64"]
  assert cli.main(argv) == 0
  assert "records no settings" in capsys.readouterr().err
  # A workdir with nothing in it (a typo): said, then a new run.
  argv[2] = str(tmp_path / "typo")
  assert cli.main(argv) == 0
  assert "nothing to resume" in capsys.readouterr().err
