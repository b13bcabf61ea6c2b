"""Tests of the example's lr schedules and batch reweighting (optimizer.py)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from examples.separation import configs
from examples.separation import optimizer
from examples.separation import train

# Every schedule with a flat loss (every epoch is a plateau), one step per
# epoch: the lr scale logged after each of 6 steps, and the first step whose
# logs say stop (None: never). Settings of ``_schedule_config``.
EXPECTED = {
  "constant": ([1, 1, 1, 1, 1, 1], None),
  # Epoch 1 records; each later epoch is bad (tie); 2 reductions stop.
  "rop2": ([1, 0.5, 0.25, 0.125, 0.0625, 0.03125], 3),
  # The 2nd plateau of the phase restarts at 1: 1 phase done, stop.
  "chained_rop2": ([1, 0.5, 1, 0.5, 1, 0.5], 3),
  # Cosine over period 2: x = 1, 0, 1, ... (min_scale 0).
  "caswr": ([0.5, 1, 0.5, 1, 0.5, 1], None),
  # One cosine cycle, then ROP2 from 1 (first epoch records).
  "caswr_rop2": ([0.5, 1, 1, 0.5, 0.25, 0.125], 5),
  # ROP2 (1 reduction, used one more epoch), a cosine cycle, ROP2 again.
  "rop2_caswr_alt": ([1, 0.5, 1, 0.5, 1, 1], None),
  # Any clip-value change is below the huge threshold: 2 reductions stop.
  "rocp": ([1, 0.5, 0.25, 0.125, 0.0625, 0.03125], 3),
}


def _schedule_config(schedule, **overrides):
  kwargs = dict(
    schedule=schedule,
    steps_per_epoch=1,
    factor=0.5,
    patience=1,
    max_reductions=2,
    reductions_per_phase=2,
    phases=1,
    n_annealings=1,
    period=2,
    n_reduces=1,
    lr_min=0.0,
    rocp_threshold=1e6,
    history_size=16,
  )
  kwargs.update(overrides)
  return configs.get_config("tiny", **kwargs)


def _run_quadratic(config, num_steps=6, flat_loss=1.0):
  """Jitted steps on ``sum(w ** 2)``, passing a flat loss to the schedule."""
  tx = optimizer.make_optimizer(config, train.make_clipper(config))
  params = jnp.asarray([1.0, -2.0, 3.0])
  state = tx.init(params)

  @jax.jit
  def step(params, state):
    grads = jax.grad(lambda w: jnp.sum(w**2))(params)
    updates, state = tx.update(
      grads,
      state,
      params,
      **optimizer.extra_args(jnp.float32(flat_loss), config),
    )
    return (
      optax.apply_updates(params, updates),
      state,
      optimizer.schedule_logs(state),
    )

  scales, stops = [], []
  for _ in range(num_steps):
    params, state, logs = step(params, state)
    scales.append(float(logs["lr_scale"]))
    stops.append(bool(logs["stop"]))
  return params, scales, stops


@pytest.mark.parametrize("schedule", configs.SCHEDULES)
def test_every_schedule_runs_jitted_and_logs_scale_and_stop(schedule):
  params, scales, stops = _run_quadratic(_schedule_config(schedule))
  expected_scales, first_stop = EXPECTED[schedule]
  np.testing.assert_allclose(scales, expected_scales, rtol=1e-6)
  expected_stops = [
    first_stop is not None and i + 1 >= first_stop for i in range(len(stops))
  ]
  assert stops == expected_stops
  assert np.all(np.isfinite(np.asarray(params)))


def test_constant_schedule_is_the_plain_chain():
  config = _schedule_config("constant")
  assert optimizer.extra_args(jnp.float32(2.0), config) == {}
  tx = optimizer.make_optimizer(config, optax.identity())
  logs = optimizer.schedule_logs(tx.init(jnp.zeros(2)))
  assert float(logs["lr_scale"]) == 1.0 and not bool(logs["stop"])


def test_schedules_pass_the_mean_loss_as_value():
  loss = jnp.float32(2.5)
  assert optimizer.extra_args(loss, _schedule_config("rop2")) == {"value": loss}


def test_lr_min_is_absolute():
  config = _schedule_config("caswr", learning_rate=1e-3, lr_min=1e-4)
  assert optimizer.min_scale(config) == pytest.approx(0.1)
  _, scales, _ = _run_quadratic(config, num_steps=2)
  np.testing.assert_allclose(scales, [0.45, 0.9], rtol=1e-6)
  with pytest.raises(ValueError, match="lr_min"):
    optimizer.make_optimizer(
      _schedule_config("caswr", learning_rate=1e-3, lr_min=1e-3),
      optax.identity(),
    )


@pytest.mark.parametrize("clip", ["none", "fixed"])
def test_rocp_without_autoclip_raises(clip):
  config = _schedule_config("rocp", clip=clip, max_norm=1.0)
  with pytest.raises(ValueError, match="--schedule rocp"):
    optimizer.make_optimizer(config, train.make_clipper(config))


def test_train_and_evaluate_honours_the_stop_signal(tmp_path):
  """ROCP with a huge threshold stops after 2 of 12 steps (1 reduction)."""
  config = configs.get_config(
    "tiny",
    num_layers=1,
    hidden=8,
    chunk_frames=24,
    batch_size=2,
    steps=12,
    checkpoint=True,
    checkpoint_every=2,
    progress=False,
    num_val_examples=2,
    num_test_examples=2,
    eval_every=1000,
    num_wav_examples=0,
    history_size=64,
    log_every=10,
    schedule="rocp",
    rocp_threshold=1e6,
    steps_per_epoch=1,
    patience=1,
    max_reductions=1,
  )
  results = train.train_and_evaluate(config, str(tmp_path), num_devices=1)
  assert results["steps_done"] == 2
  assert results["val_si_sdri_db"] is not None  # Validated at the stop.
  assert len(results["test_si_sdri_per_utterance_db"]) == 2
  saved = json.loads((tmp_path / "results.json").read_text())
  assert saved["steps_done"] == 2
  records = [
    json.loads(line)
    for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
  ]
  # The stop step is logged although it is off the log_every grid.
  assert [r["step"] for r in records] == [2]
  assert records[-1]["stop"] is True
  assert records[-1]["lr_scale"] == 0.5
  assert "val_si_sdri_db" in records[-1]
  assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["2"]


def test_rop2_stops_training_early_on_the_tiny_model(tmp_path):
  config = configs.get_config(
    "tiny",
    num_layers=1,
    hidden=8,
    chunk_frames=24,
    batch_size=2,
    steps=20,
    checkpoint=False,
    progress=False,
    num_val_examples=2,
    num_test_examples=2,
    eval_every=1000,
    num_wav_examples=0,
    history_size=64,
    log_every=1,
    schedule="rop2",
    steps_per_epoch=1,
    patience=1,
    max_reductions=1,
  )
  results = train.train_and_evaluate(config, str(tmp_path), num_devices=1)
  records = [
    json.loads(line)
    for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
  ]
  assert results["steps_done"] < config.steps
  assert records[-1]["step"] == results["steps_done"]
  assert records[-1]["stop"] is True and records[-1]["lr_scale"] == 0.5
  assert all(r["lr_scale"] == 1.0 and not r["stop"] for r in records[:-1])


# ----------------------------------------------------------------------------
# Reweighting.
# ----------------------------------------------------------------------------


def _reweight_config(reweight, **overrides):
  return configs.get_config("tiny", reweight=reweight, steps=100, **overrides)


def _toy_losses(w, x, y):
  return (x @ w - y) ** 2


_X = jnp.asarray(np.random.default_rng(0).normal(size=(5, 3)), jnp.float32)
_Y = jnp.asarray([0.0, 1.0, -2.0, 3.0, 0.5], jnp.float32)
_W = jnp.asarray([0.3, -0.2, 0.1], jnp.float32)
_CLASSES = jnp.asarray([[0, 0], [0, 1], [1, 1], [0, 1], [0, 0]], jnp.int32)


def test_robust_alpha_zero_is_the_plain_mean_exactly():
  config = _reweight_config("robust", alpha=0.0)
  batch = {"classes": _CLASSES}

  def reduced(w):
    return optimizer.reduce_batch(
      _toy_losses(w, _X, _Y), batch, jnp.int32(0), config
    )

  def mean(w):
    return _toy_losses(w, _X, _Y).mean()

  assert reduced(_W) == mean(_W)
  for a, b in zip(jax.grad(reduced)(_W), jax.grad(mean)(_W), strict=True):
    assert a == b


@pytest.mark.parametrize(
  "reweight,overrides,step",
  [
    ("robust", dict(alpha=0.5), 0),
    ("curriculum", dict(beta0=1.0), 30),
    ("class", dict(class_gammas=(0.0, 3.0)), 0),
  ],
)
def test_gradient_is_the_weighted_sum_of_per_example_gradients(
  reweight, overrides, step
):
  config = _reweight_config(reweight, **overrides)
  batch = {"classes": _CLASSES}
  step = jnp.int32(step)
  grad = jax.grad(
    lambda w: optimizer.reduce_batch(
      _toy_losses(w, _X, _Y), batch, step, config
    )
  )(_W)
  weights = optimizer.batch_weights(
    _toy_losses(_W, _X, _Y), batch, step, config
  )
  per_example = jax.jacobian(_toy_losses)(_W, _X, _Y)  # [B, 3]
  assert not np.allclose(weights, 1 / 5)
  np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-6)
  np.testing.assert_allclose(grad, weights @ per_example, rtol=1e-5, atol=1e-6)


def test_robust_weights_favour_high_losses():
  losses = _toy_losses(_W, _X, _Y)
  weights = optimizer.batch_weights(
    losses, {}, jnp.int32(0), _reweight_config("robust", alpha=0.2)
  )
  assert int(jnp.argmax(weights)) == int(jnp.argmax(losses))


def test_curriculum_beta_goes_linearly_from_beta0_to_zero():
  config = _reweight_config("curriculum", beta0=0.4)
  losses = _toy_losses(_W, _X, _Y)

  def weights(step):
    return optimizer.batch_weights(losses, {}, jnp.int32(step), config)

  np.testing.assert_allclose(
    weights(0), jax.nn.softmax(-0.4 * losses), rtol=1e-5
  )
  np.testing.assert_allclose(
    weights(50), jax.nn.softmax(-0.2 * losses), rtol=1e-5
  )
  assert int(jnp.argmax(weights(0))) == int(jnp.argmin(losses))
  end = optimizer.reduce_batch(losses, {}, jnp.int32(100), config)
  assert end == losses.mean()


def test_class_weights_use_the_source_labels():
  config = _reweight_config("class", class_gammas=(0.0, 3.0))
  losses = _toy_losses(_W, _X, _Y)
  weights = optimizer.batch_weights(
    losses, {"classes": _CLASSES}, jnp.int32(0), config
  )
  # Logit: sum of the sources' gammas = 3 x number of environmental sources.
  expected = jax.nn.softmax(jnp.asarray([0.0, 3.0, 6.0, 3.0, 0.0]))
  np.testing.assert_allclose(weights, expected, rtol=1e-5)
  np.testing.assert_array_equal(
    optimizer.mixture_classes(_CLASSES), [0, 1, 2, 1, 0]
  )
  equal = _reweight_config("class", class_gammas=(1.0, 1.0))
  assert (
    optimizer.reduce_batch(losses, {"classes": _CLASSES}, jnp.int32(0), equal)
    == losses.mean()
  )
  bad = optimizer.batch_weights(
    losses, {"classes": _CLASSES.at[0, 0].set(2)}, jnp.int32(0), config
  )
  assert np.all(np.isnan(bad))
  with pytest.raises(ValueError, match="classes"):
    optimizer.reduce_batch(losses, {}, jnp.int32(0), config)
  with pytest.raises(ValueError, match="class_gammas"):
    optimizer.reduce_batch(
      losses,
      {"classes": _CLASSES},
      jnp.int32(0),
      _reweight_config("class", class_gammas=(0.0,)),
    )


def test_class_reweighting_data_mixes_both_kinds_of_mixture():
  config = _reweight_config(
    "class", class_gammas=(0.0, 3.0), environmental=True, chunk_frames=24
  )
  batch = train.train_batch(train.make_dataset(config, "train"), config, 0)
  labels = np.asarray(optimizer.mixture_classes(batch["classes"]))
  assert set(labels.tolist()) == {0, 1}  # speech+speech and speech+env.


@pytest.mark.parametrize("decay", configs.LR_DECAYS)
def test_warmup_starts_above_zero_and_reaches_the_peak(decay):
  config = configs.get_config(
    "tiny", learning_rate=2e-3, warmup_steps=100, lr_decay=decay, steps=1000
  )
  schedule = optimizer.learning_rate_schedule(config)
  np.testing.assert_allclose(float(schedule(0)), 2e-3 / 100, rtol=1e-5)
  np.testing.assert_allclose(float(schedule(100)), 2e-3, rtol=1e-5)
  assert float(schedule(50)) < float(schedule(100))
