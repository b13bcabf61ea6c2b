"""The jitted synthetic renderer against the numpy reference."""

import dataclasses

import numpy as np
import pytest

from examples.separation import configs
from examples.separation import data
from examples.separation import synthetic_xla

CHUNK = 8000


def _pair(renderer_a="numpy", renderer_b="xla", **kwargs):
  kwargs.setdefault("chunk_samples", CHUNK)
  return (
    data.SyntheticMixtures("train", seed=3, renderer=renderer_a, **kwargs),
    data.SyntheticMixtures("train", seed=3, renderer=renderer_b, **kwargs),
  )


def _snr_db(reference, estimate):
  err = np.sum((reference - estimate) ** 2)
  return 10 * np.log10(np.sum(reference**2) / max(err, 1e-30))


@pytest.mark.parametrize("step", [0, 7])
def test_xla_batches_equal_numpy_up_to_rounding(step):
  ref_ds, xla_ds = _pair()
  ref, fast = ref_ds.batch_at(step, 4), xla_ds.batch_at(step, 4)
  assert set(ref) == set(fast)
  for key in ("classes", "speakers"):
    np.testing.assert_array_equal(ref[key], fast[key])
  for key in ("mix", "sources"):
    assert fast[key].shape == ref[key].shape
    assert fast[key].dtype == np.float32
    peak = np.abs(ref[key]).max()
    # Float32 rounding only: the same draws, rendered by another program.
    np.testing.assert_allclose(fast[key], ref[key], rtol=0, atol=2e-3 * peak)
    assert _snr_db(ref[key], fast[key]) > 50.0
  np.testing.assert_allclose(
    fast["mix"], fast["sources"].sum(1), rtol=0, atol=1e-6
  )


def test_xla_lengths_that_are_not_whole_hops():
  ref_ds, xla_ds = _pair(chunk_samples=1001)
  ref, fast = ref_ds.batch_at(2, 3), xla_ds.batch_at(2, 3)
  assert fast["sources"].shape == (3, 2, 1001)
  peak = np.abs(ref["sources"]).max()
  np.testing.assert_allclose(
    fast["sources"], ref["sources"], rtol=0, atol=2e-3 * peak
  )


def test_xla_batches_are_a_pure_function_of_the_step():
  _, ds = _pair()
  again = data.SyntheticMixtures(
    "train", seed=3, chunk_samples=CHUNK, renderer="xla"
  )
  np.testing.assert_array_equal(
    ds.batch_at(5, 2)["mix"], again.batch_at(5, 2)["mix"]
  )
  assert not np.allclose(ds.batch_at(5, 2)["mix"], ds.batch_at(6, 2)["mix"])
  stream = ds.batches(2, rng=1)
  assert not np.allclose(next(stream)["mix"], next(stream)["mix"])


def test_evaluation_examples_do_not_depend_on_the_renderer():
  ref = data.SyntheticMixtures("test", seed=0, renderer="numpy").example(1)
  fast = data.SyntheticMixtures("test", seed=0, renderer="xla").example(1)
  np.testing.assert_array_equal(ref["mix"], fast["mix"])
  np.testing.assert_array_equal(ref["sources"], fast["sources"])


def test_environmental_sources_are_rendered_by_numpy():
  cfg = data.SyntheticConfig(source_classes=("speech", "environmental"))
  ref_ds, xla_ds = _pair(config=cfg)
  np.testing.assert_array_equal(
    ref_ds.batch_at(1, 3)["sources"], xla_ds.batch_at(1, 3)["sources"]
  )


def test_unknown_renderer_is_refused():
  with pytest.raises(ValueError, match="renderer='jax'"):
    data.SyntheticMixtures("train", renderer="jax")
  with pytest.raises(ValueError, match="synthetic_renderer='jax'"):
    configs.get_config("tiny", synthetic_renderer="jax")


def test_presets_and_recorded_studies_pick_their_renderer():
  assert configs.get_config("tiny").synthetic_renderer == "xla"
  assert configs.get_config("small").synthetic_renderer == "numpy"
  from examples.separation import dynamics  # pylint: disable=import-outside-toplevel
  from examples.separation import recipes  # pylint: disable=import-outside-toplevel
  from examples.separation import reweighting_table  # pylint: disable=import-outside-toplevel

  assert (
    dynamics.base_config(steps=20, every=5, hidden=8, seed=0).synthetic_renderer
    == "numpy"
  )
  assert (
    recipes.recipe_config("synthetic", "/nonexistent", 4).synthetic_renderer
    == "numpy"
  )
  assert (
    reweighting_table.run_config(1.0, quick=True).synthetic_renderer == "numpy"
  )


def test_sin_is_accurate_over_the_arguments_met():
  x = np.concatenate(
    [np.linspace(-20, 20, 40001), np.linspace(0, 450, 90001)]
  ).astype(np.float32)
  got = np.asarray(synthetic_xla._sin(x))  # pylint: disable=protected-access
  np.testing.assert_allclose(
    got, np.sin(x.astype(np.float64)), rtol=0, atol=4e-7
  )


def test_harmonic_phase_matches_the_float64_reference():
  rng = np.random.default_rng(0)
  length, frames = 1001, data._syn_num_frames(1001)  # pylint: disable=protected-access
  f0 = rng.uniform(60.0, 420.0, (3, frames))
  offset = rng.uniform(0, 2 * np.pi, (3, 1))
  ref = (
    np.cumsum(data._f0_samples(f0, length), axis=1)
    * (  # pylint: disable=protected-access
      2 * np.pi / data.SAMPLE_RATE
    )
    + offset
  )
  controls = data.SpeechControls(
    **{
      **dict.fromkeys(f.name for f in dataclasses.fields(data.SpeechControls)),
      "f0_frames": f0,
      "phase_offset": offset,
      "noise": np.zeros((3, length), np.float32),
    }
  )
  got = np.asarray(
    synthetic_xla._harmonic_phase(  # pylint: disable=protected-access
      f0.astype(np.float32), synthetic_xla.block_phase(controls), length
    )
  )
  assert got.shape == (3, length)
  assert got.min() >= 0 and got.max() < 2 * np.pi + 1e-5
  wrapped = np.angle(np.exp(1j * (got - ref)))
  assert np.abs(wrapped).max() < 2e-5


def test_the_sweep_pins_the_numpy_renderer():
  from examples.separation import sweep  # pylint: disable=import-outside-toplevel

  runs = sweep.sweep_configs(
    "tiny", seeds=1, steps=20, losses=("mi",), ps=(10,)
  )
  assert runs and all(c.synthetic_renderer == "numpy" for c in runs)
