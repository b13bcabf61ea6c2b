"""Models and checkpoints written by the Flax Linen version still load.

``data/legacy_linen`` was written by the Linen implementation (before the
NNX port): a 1 x 4 BLSTM mask-inference model trained for 2 steps
(``workdir``: its orbax checkpoint and ``results.json``; ``exported``:
``export_model`` of it), ``expected.npz``, the Linen model's masks and
estimates for a fixed mixture, and ``init_chimera_2x4_seed7.npz``, the initial
weights Linen's ``create_train_state`` drew for a 2 x 4 chimera model.
"""

import dataclasses
import json
import pathlib
import shutil

import jax
import jax.numpy as jnp
import numpy as np

from examples.separation import configs
from examples.separation import separator as separator_lib
from examples.separation import train

DATA = pathlib.Path(__file__).parent / "data" / "legacy_linen"


def _config():
  meta = json.loads((DATA / "exported" / "config.json").read_text())
  return separator_lib._config_from_fields(meta["config"], DATA)  # pylint: disable=protected-access


def _estimates(model_dir, kind):
  params, separate = separator_lib._load_model(  # pylint: disable=protected-access
    _config(), model_dir, kind
  )
  expected = np.load(DATA / "expected.npz")
  return np.asarray(separate(params, jnp.asarray(expected["mix"]))), expected


def test_linen_export_gives_the_linen_estimates():
  estimates, expected = _estimates(DATA / "exported", "exported")
  np.testing.assert_allclose(
    estimates, expected["estimates"], rtol=1e-6, atol=1e-7
  )


def test_linen_checkpoint_gives_the_linen_estimates():
  estimates, expected = _estimates(DATA / "workdir", "workdir")
  np.testing.assert_allclose(
    estimates, expected["estimates"], rtol=1e-6, atol=1e-7
  )


def test_linen_checkpoint_resumes(tmp_path):
  workdir = tmp_path / "workdir"
  shutil.copytree(DATA / "workdir", workdir)
  # The test extends the finished 2-step run by a step. Its cosine schedule
  # depends on the run's length, so the config recorded in results.json
  # would (rightly) refuse that; without it the workdir is one interrupted
  # before it recorded anything, and the checkpoint alone is restored.
  (workdir / "results.json").unlink()
  config = _config()
  results = train.train_and_evaluate(
    dataclasses.replace(config, steps=3),
    str(workdir),
    resume=True,
    num_devices=1,
  )
  assert results["steps_done"] == 3
  records = [
    json.loads(line)
    for line in (workdir / "metrics.jsonl").read_text().splitlines()
  ]
  assert [r["step"] for r in records] == [3]
  assert np.isfinite(records[0]["loss"])


def test_linen_params_in_the_nnx_module_give_the_linen_masks():
  """The exported pure dict, loaded into ``models.Separator`` directly."""
  from flax import nnx  # pylint: disable=import-outside-toplevel
  from flax import serialization  # pylint: disable=import-outside-toplevel

  from examples.separation import models  # pylint: disable=import-outside-toplevel

  params = serialization.msgpack_restore(
    (DATA / "exported" / "params.msgpack").read_bytes()
  )
  model = train.create_model(_config(), nnx.Rngs(1))
  models.load_params(model, params)
  expected = np.load(DATA / "expected.npz")
  out = nnx.jit(lambda m, x: m(x))(model, jnp.asarray(expected["mix"]))
  np.testing.assert_allclose(
    np.asarray(out["masks"]), expected["masks"], rtol=1e-6, atol=1e-7
  )
  reloaded = models.params_dict(model)
  for a, b in zip(
    jax.tree.leaves(reloaded), jax.tree.leaves(params), strict=True
  ):
    np.testing.assert_array_equal(np.asarray(a), b)


def test_initial_weights_equal_the_linen_ones():
  """Same seed, same initial weights, bit for bit (results/ reproduce)."""
  config = configs.get_config(
    "tiny",
    num_layers=2,
    hidden=4,
    loss="chimera",
    embedding_dim=2,
    embedding_init_scale=3.0,
  )
  params = train.create_train_state(config, jax.random.key(7)).params
  flat = {
    "/".join(k.key for k in path): np.asarray(v)
    for path, v in jax.tree_util.tree_leaves_with_path(params)
  }
  expected = np.load(DATA / "init_chimera_2x4_seed7.npz")
  assert set(flat) == set(expected.files)
  for name, value in flat.items():
    np.testing.assert_array_equal(value, expected[name], err_msg=name)
