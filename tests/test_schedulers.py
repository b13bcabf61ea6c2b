"""Epoch schedulers vs a plain-Python port of the reference; epochs; jit."""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from autoclip_optax import autoclip
from autoclip_optax import caswr
from autoclip_optax import caswr_rop2
from autoclip_optax import chained_rop2
from autoclip_optax import EpochSchedulerState
from autoclip_optax import rocp
from autoclip_optax import ROCPState
from autoclip_optax import rop2
from autoclip_optax import rop2_caswr_alt
from autoclip_optax import should_stop

F32_MAX = float(np.finfo(np.float32).max)


# ---------------------------------------------------------------------------
# Plain-Python port of the reference PyTorch schedulers (lr0 = 1, so lr is the
# scale). ``step(metric)`` is called at each epoch end; ``lr`` is then the rate
# of the next epoch. Deviations documented in the module are marked DEVIATION.


def cos_lr(x, period, min_scale):
  return (math.cos(x * math.pi / period) + 1) * (1 - min_scale) / 2


class RefROP2:
  def __init__(self, factor, patience, n_reduces):
    self.factor, self.patience, self.n_reduces = factor, patience, n_reduces
    self.lr, self.prev, self.bad, self.n, self.stop = 1.0, None, 0, 0, False
    self.phase = 0

  def step(self, m):
    if self.prev is None:
      self.prev = m
      return
    if m >= self.prev:
      self.bad += 1
    if self.bad >= self.patience:
      self.bad = 0
      self.n += 1
      if self.n >= self.n_reduces:
        self.stop = True
      self.lr *= self.factor
    self.prev = m


class RefChained:
  def __init__(self, factor, patience, n_reduces, n_rop):
    self.factor, self.patience = factor, patience
    self.n_reduces, self.n_rop = n_reduces, n_rop
    self.lr, self.prev, self.bad, self.n, self.stop = 1.0, None, 0, 0, False
    self.phase = 0

  def step(self, m):
    if self.prev is None:
      self.prev = m
      return
    if m >= self.prev:
      self.bad += 1
    if self.bad >= self.patience:
      self.bad = 0
      self._reduce()
    self.prev = m  # Overwrites the reset's ``prev = None``, as in the code.

  def _reduce(self):
    self.n += 1
    if self.n >= self.n_reduces:
      self.phase += 1
      if self.phase >= self.n_rop:
        self.stop = True
      self.lr, self.prev, self.bad, self.n = 1.0, None, 0, 0
      return
    self.lr *= self.factor


class RefCaswrRop2:
  def __init__(
    self, min_scale, period, n_annealings, factor, patience, n_reduces
  ):
    self.min_scale, self.period, self.n_ann = min_scale, period, n_annealings
    self.factor, self.patience, self.n_reduces = factor, patience, n_reduces
    # DEVIATION: with n_annealings=0 the reference starts in "CASWR" too and
    # drops the first epoch's metric; here that is plain ROP2 (see
    # test_caswr_rop2_without_annealing_is_rop2).
    self.phase_name = "CASWR" if n_annealings > 0 else "ROP2"
    self.sched = self._cycle()
    # DEVIATION: the reference keeps lr0 for epoch 0 (equal iff min_scale=0).
    self.lr = next(self.sched) if n_annealings > 0 else 1.0
    self.counter, self.prev, self.bad, self.n, self.stop = 0, None, 0, 0, False

  @property
  def phase(self):
    return self.counter

  def _cycle(self):
    return (cos_lr(t, self.period, self.min_scale) for t in range(self.period))

  def step(self, m):
    if self.phase_name == "CASWR":
      try:
        self.lr = next(self.sched)
      except StopIteration:
        self.sched = self._cycle()
        self.lr = next(self.sched)
        self.counter += 1
      if self.counter >= self.n_ann:
        self.phase_name, self.lr = "ROP2", 1.0
    else:
      if self.prev is None:
        self.prev = m
        return
      if m >= self.prev:
        self.bad += 1
      if self.bad >= self.patience:
        self.n += 1
        if self.n >= self.n_reduces:
          self.stop = True
        self.lr *= self.factor
        self.bad = 0
      self.prev = m


class RefAlt:
  def __init__(
    self, starting_phase, factor, patience, n_reduces, min_scale, period
  ):
    self.factor, self.patience, self.n_reduces = factor, patience, n_reduces
    self.min_scale, self.period = min_scale, period
    self.phase_name, self.phase, self.stop = starting_phase.upper(), 0, False
    self.lr, self.counter, self.bad, self.prev = 1.0, 0, 0, None
    if self.phase_name == "CASWR":  # DEVIATION: the reference crashes here.
      self.sched = self._cycle()
      self.lr = next(self.sched)

  def _cycle(self):
    return (cos_lr(t, self.period, self.min_scale) for t in range(self.period))

  def step(self, m):
    if self.phase_name == "CASWR":
      try:
        self.lr = next(self.sched)
      except StopIteration:
        self.phase_name, self.phase = "ROP2", self.phase + 1
        self.lr, self.counter, self.prev = 1.0, 0, None
    else:
      if self.prev is None:
        self.prev = m
        return
      if m >= self.prev:
        self.bad += 1
      if self.bad == self.patience:
        self.lr *= self.factor
        self.bad = 0
        self.counter += 1
      if self.counter == self.n_reduces:
        self.phase_name, self.phase = "CASWR", self.phase + 1
        self.sched = self._cycle()  # Not advanced: one more reduced epoch.
      self.prev = m


class RefROCP:
  def __init__(self, factor, threshold, n_reduces):
    self.factor, self.threshold, self.n_reduces = factor, threshold, n_reduces
    self.lr, self.prev, self.n, self.stop, self.phase = 1.0, None, 0, False, 0

  def step(self, c):
    if self.prev is None:
      self.prev = c
      return
    if abs(c - self.prev) / c < self.threshold:
      self.n += 1
      if self.n >= self.n_reduces:
        self.stop = True
      self.lr *= self.factor
    self.prev = c


class RefCaswr:
  def __init__(self, min_scale, period):
    self.min_scale, self.period, self.e = min_scale, period, 0
    self.lr, self.phase, self.stop = cos_lr(0, period, min_scale), 0, False

  def step(self, m):
    del m
    self.e += 1
    self.phase = self.e // self.period
    self.lr = cos_lr(self.e % self.period, self.period, self.min_scale)


def ref_run(ref, metrics):
  """Per-epoch lr (len E + 1), phase and stop after each epoch end."""
  lrs, phases, stops = [ref.lr], [], []
  for m in metrics:
    ref.step(float(m))
    lrs.append(ref.lr)
    phases.append(ref.phase)
    stops.append(ref.stop)
  return np.array(lrs), np.array(phases), np.array(stops)


# ---------------------------------------------------------------------------
# Drivers of the optax transformations.

PARAMS = jnp.zeros(())


def runner_b(tx):
  """Mode (b): each call is the first step of the next epoch."""

  @jax.jit
  def run(metrics):
    state = tx.init(PARAMS)

    def body(state, m):
      u, state = tx.update(jnp.ones(()), state, PARAMS, value=m, epoch_end=True)
      return state, (u, state.phase, state.stop)

    _, (us, phases, stops) = jax.lax.scan(body, state, metrics)
    return jnp.concatenate([state.scale[None], us]), phases, stops

  return lambda metrics: jax.tree.map(
    np.asarray, run(jnp.asarray(metrics, jnp.float32))
  )


def runner_a(tx, steps_per_epoch):
  """Mode (a): per-step values around each epoch's metric (exact f32 mean)."""
  offsets = np.arange(steps_per_epoch) - (steps_per_epoch - 1) / 2

  @jax.jit
  def run(values):
    state = tx.init(PARAMS)

    def body(state, v):
      u, state = tx.update(jnp.ones(()), state, PARAMS, value=v)
      return state, (u, state.phase, state.stop)

    return jax.lax.scan(body, state, values)[1]

  def go(metrics):
    values = (np.asarray(metrics)[:, None] + offsets).reshape(-1)
    us, phases, stops = jax.tree.map(
      np.asarray, run(jnp.asarray(values, jnp.float32))
    )
    last = np.arange(len(metrics)) * steps_per_epoch + steps_per_epoch - 1
    # Every step of an epoch must use the same scale.
    per_epoch = us.reshape(len(metrics), steps_per_epoch)
    np.testing.assert_array_equal(
      per_epoch, per_epoch[:, :1] * np.ones_like(per_epoch)
    )
    return per_epoch[:, 0], phases[last], stops[last]

  return go


def assert_matches_ref(got, want, epochs):
  (g_lr, g_phase, g_stop), (w_lr, w_phase, w_stop) = got, want
  np.testing.assert_allclose(g_lr[:epochs], w_lr[:epochs], rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(g_phase, w_phase)
  np.testing.assert_array_equal(g_stop, w_stop)


# name -> (factory(**kw), reference(**kw) with the same kwargs).
CONFIGS = {
  "rop2": (lambda **k: rop2(0.5, 2, 3, **k), lambda: RefROP2(0.5, 2, 3)),
  "rop2_p1": (lambda **k: rop2(0.7, 1, 4, **k), lambda: RefROP2(0.7, 1, 4)),
  "chained": (
    lambda **k: chained_rop2(0.5, 2, 3, 3, **k),
    lambda: RefChained(0.5, 2, 3, 3),
  ),
  "chained_n1": (
    lambda **k: chained_rop2(0.5, 1, 1, 4, **k),
    lambda: RefChained(0.5, 1, 1, 4),
  ),
  "caswr": (lambda **k: caswr(0.25, 4, **k), lambda: RefCaswr(0.25, 4)),
  "caswr_rop2": (
    lambda **k: caswr_rop2(0.0, 3, 2, 0.5, 2, 3, **k),
    lambda: RefCaswrRop2(0.0, 3, 2, 0.5, 2, 3),
  ),
  "caswr_rop2_min": (
    lambda **k: caswr_rop2(0.2, 2, 1, 0.5, 1, 2, **k),
    lambda: RefCaswrRop2(0.2, 2, 1, 0.5, 1, 2),
  ),
  "caswr_rop2_n0": (
    lambda **k: caswr_rop2(0.0, 3, 0, 0.5, 2, 3, **k),
    lambda: RefCaswrRop2(0.0, 3, 0, 0.5, 2, 3),
  ),
  "alt_rop2": (
    lambda **k: rop2_caswr_alt("rop2", 0.5, 2, 2, 0.0, 3, **k),
    lambda: RefAlt("rop2", 0.5, 2, 2, 0.0, 3),
  ),
  "alt_caswr": (
    lambda **k: rop2_caswr_alt("CASWR", 0.5, 1, 2, 0.1, 4, **k),
    lambda: RefAlt("caswr", 0.5, 1, 2, 0.1, 4),
  ),
}


def random_metrics(seed, epochs=40):
  # Few distinct values, so ties are frequent; drifting down like a loss.
  rng = np.random.default_rng(seed)
  return rng.integers(0, 4, epochs) + np.linspace(8, 0, epochs).round()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_matches_reference_mode_b(name):
  make, make_ref = CONFIGS[name]
  run = runner_b(make())
  for seed in range(4):
    metrics = random_metrics(seed)
    assert_matches_ref(
      run(metrics), ref_run(make_ref(), metrics), len(metrics) + 1
    )


@pytest.mark.parametrize(
  "name", ["rop2", "chained", "caswr_rop2", "alt_rop2", "caswr"]
)
def test_matches_reference_mode_a(name):
  make, make_ref = CONFIGS[name]
  run = runner_a(make(steps_per_epoch=3), 3)
  for seed in range(2):
    metrics = random_metrics(seed + 10, 30)
    # Mode (a) gives the scale of epochs 0..E-1 (no call after the last end).
    assert_matches_ref(run(metrics), ref_run(make_ref(), metrics), len(metrics))


# ---------------------------------------------------------------------------
# Hand-worked sequences (independent of the reference port).


def test_rop2_hand_worked_ties_and_no_reset():
  # e2 tie: bad 1; e3 improves but does not reset; e4 tie: bad 2 -> reduce.
  lrs, phases, stops = runner_b(rop2(0.5, 2, 2))([5, 4, 4, 3, 3, 2, 2, 2, 9])
  np.testing.assert_allclose(lrs, [1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25])
  np.testing.assert_array_equal(stops, [0, 0, 0, 0, 0, 0, 0, 1, 1])
  np.testing.assert_array_equal(phases, 0)


def test_chained_hand_worked_keeps_previous_metric_across_reset():
  # patience 1, reset at the 3rd plateau, 2 phases. After the reset at e3 the
  # tie at e4 is compared with e3 (the reference overwrites prev = None).
  lrs, phases, stops = runner_b(chained_rop2(0.5, 1, 3, 2))([1] * 7)
  np.testing.assert_allclose(lrs, [1, 1, 0.5, 0.25, 1, 0.5, 0.25, 1])
  np.testing.assert_array_equal(phases, [0, 0, 0, 1, 1, 1, 2])
  np.testing.assert_array_equal(stops, [0, 0, 0, 0, 0, 0, 1])


def test_caswr_hand_worked():
  lrs, phases, stops = runner_b(caswr(0.25, 4))(np.zeros(9))
  f = [(math.cos(math.pi * x / 4) + 1) * 0.75 / 2 for x in range(4)]
  np.testing.assert_allclose(lrs, (f * 3)[:10], rtol=1e-6)
  np.testing.assert_array_equal(phases, [0, 0, 0, 1, 1, 1, 1, 2, 2])
  assert not stops.any()
  assert f[0] == 0.75  # No + lr_min term: the peak is lr0 - lr_min.


def test_caswr_rop2_hand_worked():
  lrs, phases, stops = runner_b(caswr_rop2(0.0, 2, 2, 0.5, 1, 2))(
    [9, 0, 9, 0, 5, 5, 4, 4]
  )
  np.testing.assert_allclose(
    lrs, [1, 0.5, 1, 0.5, 1, 1, 0.5, 0.5, 0.25], atol=1e-7
  )
  np.testing.assert_array_equal(phases, [0, 1, 1, 2, 2, 2, 2, 2])
  np.testing.assert_array_equal(stops, [0, 0, 0, 0, 0, 0, 0, 1])


def test_caswr_rop2_without_annealing_is_rop2():
  # Chosen behaviour: n_annealings=0 is exactly rop2, epoch for epoch.
  for seed in range(3):
    metrics = random_metrics(seed + 20, 30)
    got = runner_b(caswr_rop2(0.3, 4, 0, 0.5, 2, 3))(metrics)
    want = runner_b(rop2(0.5, 2, 3))(metrics)
    for g, w in zip(got, want, strict=True):
      np.testing.assert_array_equal(g, w)
  # Constant metric, patience 1: epoch 0 is recorded, epoch 1 is bad, so
  # epoch 2 already runs at lr0 * factor.
  lrs, phases, stops = runner_b(caswr_rop2(0.0, 8, 0, 0.5, 1, 2))([1.0] * 4)
  np.testing.assert_allclose(lrs, [1, 1, 0.5, 0.25, 0.125])
  np.testing.assert_array_equal(phases, [0, 0, 0, 0])
  np.testing.assert_array_equal(stops, [0, 0, 1, 1])


def test_caswr_rop2_without_annealing_differs_from_reference_by_one_epoch():
  # The reference (no DEVIATION: starts in CASWR and switches at the first
  # epoch end) keeps lr0 for epoch 2 and lags rop2 by one epoch.
  ref = RefCaswrRop2(0.0, 8, 0, 0.5, 1, 2)
  ref.phase_name, ref.lr = "CASWR", 1.0
  ref_lrs, _, ref_stops = ref_run(ref, [1.0] * 4)
  np.testing.assert_allclose(ref_lrs, [1, 1, 1, 0.5, 0.25])
  np.testing.assert_array_equal(ref_stops, [0, 0, 0, 1])
  # Its rates are ours on the metrics without the first epoch, one epoch late.
  metrics = random_metrics(7, 30)
  ref = RefCaswrRop2(0.0, 8, 0, 0.5, 2, 3)
  ref.phase_name, ref.lr = "CASWR", 1.0
  ref_lrs, _, _ = ref_run(ref, metrics)
  lrs, _, _ = runner_b(caswr_rop2(0.0, 8, 0, 0.5, 2, 3))(metrics[1:])
  np.testing.assert_allclose(ref_lrs[1:], lrs, atol=1e-7)


def test_alt_hand_worked_from_rop2():
  lrs, phases, stops = runner_b(rop2_caswr_alt("rop2", 0.5, 1, 2, 0.0, 2))(
    [3, 3, 3, 9, 9, 9, 1, 1, 1]
  )
  # e2: 2nd reduction -> one epoch at .25, then cos cycle (1, .5), then ROP2.
  np.testing.assert_allclose(
    lrs, [1, 1, 0.5, 0.25, 1, 0.5, 1, 1, 0.5, 0.25], atol=1e-7
  )
  np.testing.assert_array_equal(phases, [0, 0, 1, 1, 1, 2, 2, 2, 3])
  assert not stops.any()


def test_alt_hand_worked_from_caswr():
  lrs, phases, _ = runner_b(rop2_caswr_alt("caswr", 0.5, 1, 1, 0.0, 2))(
    [7, 7, 5, 5, 0, 0, 0]
  )
  # Cycle (1, .5); ROP2 from 1: record 5, tie -> .5 and switch; one epoch at
  # .5; cycle (1, .5); ROP2 again.
  np.testing.assert_allclose(lrs, [1, 0.5, 1, 1, 0.5, 1, 0.5, 1], atol=1e-7)
  np.testing.assert_array_equal(phases, [0, 1, 1, 2, 2, 2, 3])


def test_first_epoch_only_records_mode_a():
  # Epoch means 3, 3 (tie -> plateau with patience 1), steps_per_epoch 2.
  tx = rop2(0.5, 1, 5, steps_per_epoch=2)
  state = tx.init(PARAMS)
  got = []
  for v in [2.0, 4.0, 3.0, 3.0, 1.0]:
    u, state = tx.update(jnp.ones(()), state, PARAMS, value=v)
    got.append(float(u))
  assert got == [1, 1, 1, 1, 0.5]  # The closing step still uses the old scale.
  assert int(state.epoch) == 2 and int(state.step_in_epoch) == 1


def test_nonfinite_step_values_left_out_of_epoch_mean():
  tx = rop2(0.5, 1, 5, steps_per_epoch=2)
  state = tx.init(PARAMS)
  for v in [2.0, 2.0, jnp.nan, 2.5]:  # Means 2 and 2.5 (NaN dropped): bad.
    _, state = tx.update(jnp.ones(()), state, PARAMS, value=v)
  assert float(state.scale) == 0.5
  assert float(state.prev_metric) == 2.5


def test_nan_epoch_metric_is_not_bad_like_reference():
  lrs, _, _ = runner_b(rop2(0.5, 1, 5))([1.0, np.nan, 1.0, 1.0])
  np.testing.assert_allclose(lrs, [1, 1, 1, 1, 0.5])


# ---------------------------------------------------------------------------
# ROCP.


class StandInClipState(NamedTuple):
  threshold: jax.Array  # float32[], largest |entry| of the last update.


def stand_in_clip():
  """Records max |update| as ``threshold``: scripts the clip values."""

  def init_fn(params):
    del params
    return StandInClipState(jnp.asarray(F32_MAX, jnp.float32))

  def update_fn(updates, state, params=None):
    del params, state
    return updates, StandInClipState(
      optax.tree.max(jax.tree.map(jnp.abs, updates)).astype(jnp.float32)
    )

  return optax.GradientTransformation(init_fn, update_fn)


ROCP_CLIPS = [10.0, 5.0, 4.75, 4.75, 2.0, 1.9375, 8.0, 8.0, 8.0]


def test_rocp_hand_worked_and_reference_mode_a():
  tx = rocp(stand_in_clip(), 0.5, 0.1, 3, steps_per_epoch=2)
  state = tx.init(PARAMS)
  update = jax.jit(tx.update)
  scales, stops = [], []
  for c in ROCP_CLIPS:  # The epoch's clip value is the last step's.
    for g in [123.0, c]:
      u, state = update(jnp.asarray(g), state, PARAMS)
      scales.append(float(u) / g)
    stops.append(bool(state.schedule.stop))
  want_lr, _, want_stop = ref_run(RefROCP(0.5, 0.1, 3), ROCP_CLIPS)
  np.testing.assert_allclose(scales[::2], want_lr[:-1], rtol=1e-6)
  np.testing.assert_allclose(scales[1::2], want_lr[:-1], rtol=1e-6)
  np.testing.assert_array_equal(stops, want_stop)
  # By hand: 4.75 vs 5 (5%) and 4.75 vs 4.75 reduce; 1.9375 vs 2 (3%) is the
  # 3rd reduction (stop); as in the reference, the rule goes on after it.
  np.testing.assert_allclose(
    want_lr, [1, 1, 1, 0.5, 0.25, 0.25, 0.125, 0.125, 0.0625, 0.03125]
  )
  assert int(state.schedule.phase) == 0


def test_rocp_mode_b_reads_previous_epochs_last_step():
  tx = rocp(stand_in_clip(), 0.5, 0.1, 3)
  state = tx.init(PARAMS)
  update = jax.jit(tx.update)
  scales = []
  for e, c in enumerate(ROCP_CLIPS + [1.0]):
    for i, g in enumerate([c, 77.0, c]):
      u, state = update(
        jnp.asarray(g), state, PARAMS, epoch_end=(e > 0 and i == 0)
      )
      if i == 0:
        scales.append(float(u) / g)
  want_lr, _, _ = ref_run(RefROCP(0.5, 0.1, 3), ROCP_CLIPS)
  np.testing.assert_allclose(scales, want_lr, rtol=1e-6)


def test_rocp_ignores_unusable_clip_values():
  # AutoClip reports float32's max when it does not clip; 0 has no relative
  # change. Neither may count as a plateau, even when repeated.
  tx = rocp(stand_in_clip(), 0.5, 0.1, 3, steps_per_epoch=1)
  state = tx.init(PARAMS)
  for c in [F32_MAX, F32_MAX, 0.0, 0.0, 5.0]:
    _, state = tx.update(jnp.asarray(c), state, PARAMS)
  assert float(state.schedule.scale) == 1.0
  _, state = tx.update(jnp.asarray(5.0), state, PARAMS)
  assert float(state.schedule.scale) == 0.5


def test_rocp_with_real_autoclip():
  inner = optax.chain(autoclip(p=50.0, history_size=64), optax.sgd(1.0))
  tx = rocp(inner, 0.5, 0.02, 2, steps_per_epoch=4)
  params = jnp.zeros(2)
  state = tx.init(params)
  update = jax.jit(tx.update)
  rng = np.random.default_rng(0)
  clips, scales, stops = [], [], []
  for _ in range(10):
    for _ in range(4):
      g = jnp.asarray(
        rng.normal(size=2) * (1 + 0.2 * rng.random()), jnp.float32
      )
      u, state = update(g, state, params)
    clips.append(float(optax.tree.get(state.inner_state, "threshold")))
    scales.append(float(state.schedule.scale))
    stops.append(bool(state.schedule.stop))
  want_lr, _, want_stop = ref_run(RefROCP(0.5, 0.02, 2), clips)
  np.testing.assert_allclose(scales, want_lr[1:], rtol=1e-6)
  np.testing.assert_array_equal(stops, want_stop)
  assert want_lr[-1] < 1  # The median settles: at least one plateau.


def test_rocp_scales_inner_updates_and_forwards_extra_args():
  inner = optax.chain(
    autoclip(p=100.0, history_size=8), optax.adam(0.1), rop2(0.5, 1, 5)
  )
  tx = rocp(inner, 0.5, 0.01, 5)
  params = jnp.zeros(3)
  state = tx.init(params)
  g = jnp.array([1.0, -2.0, 3.0])
  u, state = tx.update(g, state, params, value=1.0, epoch_end=False)
  u_inner, _ = inner.update(
    g, tx.init(params).inner_state, params, value=1.0, epoch_end=False
  )
  np.testing.assert_array_equal(u, u_inner)  # Scale 1 in the first epoch.
  assert (
    int(optax.tree.get(state.inner_state, "EpochSchedulerState").epoch) == 0
  )


def test_rocp_requires_a_threshold():
  with pytest.raises(ValueError, match="no 'threshold'"):
    rocp(optax.adam(1e-3)).init(PARAMS)
  inner = optax.chain(stand_in_clip(), stand_in_clip())
  with pytest.raises(ValueError, match="several 'threshold'"):
    rocp(inner).init(PARAMS)
  tx = rocp(inner, clip_value_fn=lambda s: s[1].threshold)
  tx.init(PARAMS)


# ---------------------------------------------------------------------------
# Integration: jit, chains, state, stop signal, dtypes.


ALL_FACTORIES = {
  "rop2": lambda **k: rop2(**k),
  "chained_rop2": lambda **k: chained_rop2(**k),
  "caswr": lambda **k: caswr(**k),
  "caswr_rop2": lambda **k: caswr_rop2(**k),
  "rop2_caswr_alt": lambda **k: rop2_caswr_alt(**k),
  "rocp": lambda **k: rocp(stand_in_clip(), **k),
}


@pytest.mark.parametrize("name", sorted(ALL_FACTORIES))
@pytest.mark.parametrize("spe", [None, 2])
def test_jit_no_retrace_and_array_state(name, spe):
  tx = ALL_FACTORIES[name](steps_per_epoch=spe)
  params = {"w": jnp.zeros(2)}
  traces = []

  @jax.jit
  def step(state, value, flag):
    traces.append(1)
    kwargs = {"value": value}
    if spe is None:
      kwargs["epoch_end"] = flag
    return tx.update({"w": jnp.ones(2)}, state, params, **kwargs)

  state = tx.init(params)
  for i, v in enumerate([3.0, 2.0, 2.0, 2.0, 1.0, 1.0]):
    _, state = step(state, v, i % 2 == 1)
  assert len(traces) == 1
  if name == "rocp":
    assert isinstance(state, ROCPState)
  sched = state.schedule if name == "rocp" else state
  assert isinstance(sched, EpochSchedulerState)
  for field, leaf in zip(sched._fields, sched, strict=True):
    assert isinstance(leaf, jax.Array), field
    assert leaf.shape == (), field
  assert sched.scale.dtype == jnp.float32
  assert sched.phase.dtype == jnp.int32 and sched.stop.dtype == jnp.bool_
  assert int(sched.epoch) == 3
  assert int(sched.step_in_epoch) == (1 if spe is None else 0)


def test_chain_with_adam_scales_adam_updates():
  params = {"w": jnp.array([1.0, -1.0, 2.0])}
  adam = optax.adam(1e-2)
  opt = optax.chain(adam, rop2(0.5, 1, 2))
  state, adam_state = opt.init(params), adam.init(params)
  update = jax.jit(opt.update)
  for i, metric in enumerate([1.0, 2.0, 3.0, 4.0]):
    g = {"w": jnp.array([0.5, 1.0, -1.5]) * (i + 1)}
    u, state = update(g, state, params, value=metric, epoch_end=i > 0)
    u_adam, adam_state = adam.update(g, adam_state, params)
    # The first epoch_end only records its metric; 3 >= 2 and 4 >= 3 reduce.
    np.testing.assert_allclose(
      u["w"], u_adam["w"] * [1, 1, 0.5, 0.25][i], rtol=1e-6
    )
  assert bool(should_stop(state)) and bool(state[1].stop)


def test_autoclip_adam_rop2_chain_trains():
  opt = optax.chain(
    autoclip(p=10.0, history_size=32),
    optax.adam(0.05),
    rop2(0.5, 2, 3, steps_per_epoch=5),
  )
  x = jnp.linspace(-1, 1, 16)
  y = 3 * x + 1
  params = {"a": jnp.zeros(()), "b": jnp.zeros(())}

  def loss_fn(p):
    return jnp.mean((p["a"] * x + p["b"] - y) ** 2)

  @jax.jit
  def step(params, state):
    loss, g = jax.value_and_grad(loss_fn)(params)
    u, state = opt.update(g, state, params, value=loss)
    return optax.apply_updates(params, u), state, loss

  state = opt.init(params)
  first = None
  for _ in range(100):
    params, state, loss = step(params, state)
    first = loss if first is None else first
  assert float(loss) < 0.1 * float(first)
  assert int(state[2].epoch) == 20


def test_should_stop_nested_and_jit():
  opt = optax.chain(
    optax.sgd(1.0),
    rop2(0.5, 1, 1),
    optax.chain(caswr(), chained_rop2(0.5, 1, 1, 5)),
  )
  state = opt.init(PARAMS)
  assert not bool(should_stop(state))
  assert not bool(should_stop(optax.adam(1.0).init(PARAMS)))
  for i, m in enumerate([1.0, 1.0]):
    _, state = opt.update(jnp.ones(()), state, PARAMS, value=m, epoch_end=i > 0)
  assert not bool(should_stop(state))
  _, state = opt.update(jnp.ones(()), state, PARAMS, value=1.0, epoch_end=True)
  assert bool(jax.jit(should_stop)(state))
  assert bool(state[1].stop) and not bool(state[2][1].stop)


def test_peek_stop_before_next_epoch_leaves_state_untouched():
  opt = optax.chain(optax.adam(0.1), rop2(0.5, 1, 1))
  params = jnp.ones(2)
  state = opt.init(params)
  _, state = opt.update(jnp.ones(2), state, params, value=0.0, epoch_end=False)
  _, state = opt.update(jnp.ones(2), state, params, value=1.0, epoch_end=True)
  before = jax.tree.map(np.asarray, state)
  _, peek = opt.update(jnp.zeros(2), state, params, value=1.0, epoch_end=True)
  assert bool(should_stop(peek)) and not bool(should_stop(state))
  jax.tree.map(np.testing.assert_array_equal, before, state)


def test_low_precision_updates_keep_dtype():
  params = {"w": jnp.zeros(3, jnp.bfloat16), "v": jnp.zeros(2, jnp.float16)}
  tx = caswr(0.0, 4)
  state = tx.init(params)
  g = {"w": jnp.ones(3, jnp.bfloat16), "v": jnp.ones(2, jnp.float16)}
  for flag in [False, True]:
    u, state = tx.update(g, state, params, epoch_end=flag)
  assert u["w"].dtype == jnp.bfloat16 and u["v"].dtype == jnp.float16
  np.testing.assert_allclose(
    np.asarray(u["w"], np.float32), 0.8535534, rtol=1e-2
  )


def test_phase_field_exposed_via_tree_get():
  opt = optax.chain(optax.adam(1e-3), caswr_rop2(0.0, 2, 1, 0.5, 3, 5))
  state = opt.init(PARAMS)
  for i in range(3):
    _, state = opt.update(
      jnp.ones(()), state, PARAMS, value=1.0, epoch_end=i > 0
    )
  assert int(optax.tree.get(state, "phase")) == 1
  assert float(optax.tree.get(state, "scale")) == 1.0


# ---------------------------------------------------------------------------
# Argument validation.


@pytest.mark.parametrize(
  "factory, kwargs, name",
  [
    (rop2, {"factor": 1.0}, "factor"),
    (rop2, {"factor": 0.0}, "factor"),
    (rop2, {"factor": True}, "factor"),
    (rop2, {"patience": 0}, "patience"),
    (rop2, {"patience": 2.0}, "patience"),
    (rop2, {"max_reductions": 0}, "max_reductions"),
    (rop2, {"steps_per_epoch": 0}, "steps_per_epoch"),
    (chained_rop2, {"reductions_per_phase": 0}, "reductions_per_phase"),
    (chained_rop2, {"phases": 0}, "phases"),
    (chained_rop2, {"factor": 1.5}, "factor"),
    (caswr, {"period": 0}, "period"),
    (caswr, {"min_scale": 1.0}, "min_scale"),
    (caswr, {"min_scale": -0.1}, "min_scale"),
    (caswr_rop2, {"n_annealings": -1}, "n_annealings"),
    (caswr_rop2, {"period": 1.5}, "period"),
    (caswr_rop2, {"patience": 0}, "patience"),
    (rop2_caswr_alt, {"starting_phase": "sgdr"}, "starting_phase"),
    (rop2_caswr_alt, {"n_reduces": 0}, "n_reduces"),
    (rop2_caswr_alt, {"min_scale": 2.0}, "min_scale"),
    (lambda **k: rocp(stand_in_clip(), **k), {"threshold": 0.0}, "threshold"),
    (
      lambda **k: rocp(stand_in_clip(), **k),
      {"threshold": float("nan")},
      "threshold",
    ),
    (
      lambda **k: rocp(stand_in_clip(), **k),
      {"max_reductions": 0},
      "max_reductions",
    ),
    (lambda **k: rocp("adam", **k), {}, "inner"),
  ],
)
def test_bad_arguments_raise_value_error_naming_them(factory, kwargs, name):
  with pytest.raises(ValueError, match=name):
    factory(**kwargs)


def test_update_argument_errors():
  tx = rop2()
  state = tx.init(PARAMS)
  with pytest.raises(ValueError, match="epoch_end"):
    tx.update(jnp.ones(()), state, value=1.0)
  with pytest.raises(ValueError, match="value"):
    tx.update(jnp.ones(()), state, epoch_end=True)
  with pytest.raises(ValueError, match="value must be a scalar"):
    tx.update(jnp.ones(()), state, value=jnp.ones(2), epoch_end=True)
  tx = rop2(steps_per_epoch=4)
  with pytest.raises(ValueError, match="epoch_end"):
    tx.update(jnp.ones(()), tx.init(PARAMS), value=1.0, epoch_end=True)
  # Metric-free schedulers need no value.
  tx = caswr(steps_per_epoch=2)
  tx.update(jnp.ones(()), tx.init(PARAMS))


@pytest.mark.parametrize("module", ["_epoch", "_rop2", "_caswr", "_rocp"])
def test_docstring_examples(module):
  import doctest  # pylint: disable=import-outside-toplevel
  import importlib  # pylint: disable=import-outside-toplevel

  mod = importlib.import_module(f"autoclip_optax._schedulers.{module}")
  result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
  assert result.attempted > 0 and result.failed == 0
