"""Tests of the background batch prefetcher."""

import functools
import os
import threading
import time

import numpy as np
import pytest

from examples.separation import data as data_lib
from examples.separation import input_pipeline


def test_yields_every_step_in_order_whatever_the_worker_timing():
  def load(step):
    # Later steps finish first: the order must still be the steps' order.
    time.sleep(0.002 * ((7 - step) % 4))
    return step * 10

  with input_pipeline.Prefetcher(load, 3, 15, depth=3, workers=3) as it:
    got = list(it)
  assert got == [(s, s * 10) for s in range(3, 15)]


def test_resumed_stream_equals_the_tail_of_the_full_stream():
  dataset = data_lib.SyntheticMixtures("train", seed=3, chunk_samples=2048)

  def load(step):
    return dataset.batch_at(step, 2)

  with input_pipeline.Prefetcher(load, 0, 6, depth=2) as it:
    full = dict(it)
  with input_pipeline.Prefetcher(load, 4, 6, depth=2) as it:
    resumed = dict(it)
  for step in (4, 5):
    for key in ("mix", "sources"):
      np.testing.assert_array_equal(resumed[step][key], full[step][key])


def test_runs_ahead_at_most_depth_plus_one():
  started = []
  lock = threading.Lock()

  def load(step):
    with lock:
      started.append(step)
    return step

  with input_pipeline.Prefetcher(load, 0, 100, depth=2) as it:
    next(it)
    time.sleep(0.05)
    with lock:
      # Step 0 consumed; steps 1..3 may be in flight, nothing beyond.
      assert max(started) <= 3


def test_error_is_raised_at_its_step_and_stops_the_workers():
  def load(step):
    if step == 2:
      raise RuntimeError("bad batch 2")
    return step

  it = input_pipeline.Prefetcher(load, 0, 10, depth=2)
  assert next(it) == (0, 0)
  assert next(it) == (1, 1)
  with pytest.raises(RuntimeError, match="bad batch 2"):
    next(it)
  with pytest.raises(StopIteration):
    next(it)


def test_early_exit_cancels_and_closes():
  calls = []

  def load(step):
    calls.append(step)
    return step

  with input_pipeline.Prefetcher(load, 0, 1000, depth=2) as it:
    for step, _ in it:
      if step == 5:
        break
  assert len(calls) <= 9
  it.close()  # Idempotent.


def test_empty_range_and_bad_arguments():
  assert not list(input_pipeline.Prefetcher(lambda s: s, 5, 5))
  with pytest.raises(ValueError, match="depth"):
    input_pipeline.Prefetcher(lambda s: s, 0, 1, depth=0)
  with pytest.raises(ValueError, match="workers"):
    input_pipeline.Prefetcher(lambda s: s, 0, 1, workers=0)


def _fail_at_three(step):
  if step == 3:
    raise ValueError("no batch 3")
  return step


def _exit_at_two(step):
  if step == 2:
    os._exit(7)
  return step


def test_process_loader_gives_the_batches_of_the_training_process():
  dataset = data_lib.SyntheticMixtures("train", seed=5, chunk_samples=2048)
  fn = functools.partial(dataset.batch_at, batch_size=2)
  with input_pipeline.ProcessLoader(fn, processes=2) as loader:
    # Through the prefetcher (two threads, two workers), as train.py does.
    with input_pipeline.Prefetcher(loader, 2, 7, depth=3, workers=2) as it:
      got = dict(it)
  assert sorted(got) == [2, 3, 4, 5, 6]
  for step, batch in got.items():
    want = dataset.batch_at(step, 2)
    assert set(batch) == set(want)
    for key in want:
      np.testing.assert_array_equal(batch[key], want[key])


def test_process_loader_reraises_the_workers_exception_and_goes_on():
  with input_pipeline.ProcessLoader(_fail_at_three) as loader:
    assert loader(1) == 1
    with pytest.raises(ValueError, match="no batch 3"):
      loader(3)
    assert loader(4) == 4


def test_process_loader_reports_a_dead_worker():
  with input_pipeline.ProcessLoader(_exit_at_two) as loader:
    assert loader(1) == 1
    with pytest.raises(input_pipeline.DataWorkerError, match="code 7"):
      loader(2)


def test_process_loader_rejects_what_cannot_be_pickled():
  with pytest.raises(TypeError, match="picklable"):
    input_pipeline.ProcessLoader(lambda step: step)
  with pytest.raises(ValueError, match="processes"):
    input_pipeline.ProcessLoader(_fail_at_three, processes=0)
