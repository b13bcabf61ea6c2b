"""Fixtures shared by the separate / evaluate / separator tests.

``tiny_model``: a separator trained for 3 steps by ``train_and_evaluate`` (a
1 x 8 BLSTM mask-inference model: it does not separate, but it exercises every
code path), as its training workdir and as an exported model directory.
Trained once per test session; under pytest-xdist the workers share it (the
first one trains, the others wait on a file lock).
"""

import collections
import fcntl
import json
import os
import pathlib

import pytest

TinyModel = collections.namedtuple("TinyModel", "workdir exported")


def _train_tiny_model(root: pathlib.Path) -> TinyModel:
  from examples.separation import configs  # pylint: disable=import-outside-toplevel
  from examples.separation import separator  # pylint: disable=import-outside-toplevel
  from examples.separation import train  # pylint: disable=import-outside-toplevel

  workdir, exported = root / "workdir", root / "exported"
  config = configs.get_config(
    "tiny",
    steps=3,
    hidden=8,
    num_layers=1,
    num_val_examples=1,
    num_test_examples=1,
    eval_every=3,
    checkpoint_every=3,
    log_every=1,
    chunk_frames=32,
    batch_size=2,
    history_size=64,
    num_wav_examples=0,
    progress=False,
  )
  train.train_and_evaluate(config, str(workdir), num_devices=1)
  separator.export_model(workdir, exported, note="tests/conftest.py")
  return TinyModel(workdir, exported)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> TinyModel:
  """``TinyModel(workdir, exported)`` paths (read-only for the tests)."""
  if os.environ.get("PYTEST_XDIST_WORKER"):
    shared = tmp_path_factory.getbasetemp().parent  # Common to the workers.
  else:
    shared = tmp_path_factory.getbasetemp()
  root = shared / "tiny_separation_model"
  done = root / "done.json"
  root.mkdir(parents=True, exist_ok=True)
  with open(shared / "tiny_separation_model.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      if not done.exists():
        model = _train_tiny_model(root)
        done.write_text(
          json.dumps(
            {"workdir": str(model.workdir), "exported": str(model.exported)}
          )
        )
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)
  paths = json.loads(done.read_text())
  return TinyModel(
    pathlib.Path(paths["workdir"]), pathlib.Path(paths["exported"])
  )


@pytest.fixture(scope="session")
def tiny_separator(tiny_model):
  """The exported tiny model, loaded (shared: jit caches stay warm)."""
  from examples.separation import separator  # pylint: disable=import-outside-toplevel

  return separator.load_separator(tiny_model.exported)


@pytest.fixture
def interrupted_run():
  """``train(config, workdir, at_step)``: a run stopped as Ctrl-C stops it.

  ``train_and_evaluate`` with a step callback that raises
  ``KeyboardInterrupt`` when the loop reads step ``at_step``'s logs (after
  the step before it, and any checkpoint of that step, were taken).
  """
  from examples.separation import train  # pylint: disable=import-outside-toplevel

  def run(config, workdir, at_step: int) -> None:
    def callback(step, logs):
      del logs
      if step == at_step:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
      train.train_and_evaluate(config, str(workdir), step_callback=callback)

  return run
