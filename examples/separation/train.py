"""Train and evaluate a BLSTM separator with AutoClip (paper Sec. 4).

``train_and_evaluate(config, workdir)`` is the whole pipeline: data, model,
optimizer ``optax.chain(autoclip(p), optax.adam(lr))`` (or no / fixed
clipping) in an ``nnx.Optimizer``, a jitted data-parallel train step over all
visible devices, periodic validation, orbax checkpoints with resume, and a
final test evaluation.

The model is an ``nnx.Module``; the train state is the ``nnx.split`` of the
model and its optimizer (``train_state.TrainState``), so that the step is a
pure function under ``jax.jit`` (merged and split inside) and the state can be
donated, sharded and checkpointed like any pytree. Checkpoints hold the pure
form ``{"step", "params", "opt_state"}`` (parameters as nested dicts), the
layout the Flax Linen version wrote: its checkpoints resume unchanged.

It writes to ``workdir``:

* ``metrics.jsonl``: one JSON object per logged step (``step``, ``loss``,
  ``grad_norm``, ``threshold``, ``clipped``, ``clip_fraction``, ``lr_scale``,
  and ``val_si_sdri_db`` on validation steps);
* ``config.json``: the configuration, written when the run starts: a run
  resumes (``--resume``) only with the settings it was started with, and a
  run without ``--resume`` does not start in a workdir that has checkpoints;
* ``results.json``: the configuration and the test SI-SDR / SI-SDRi;
* ``checkpoints/``: orbax checkpoints (``--resume`` continues from the last);
* ``examples/``: a few separated test utterances as wav files.

Command line: ``python -m examples.separation.train --help``.
"""

import contextlib
import dataclasses
import functools
import json
import pathlib
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import autoclip_optax
from examples.separation import cli
from examples.separation import configs
from examples.separation import data as data_lib
from examples.separation import evaluation
from examples.separation import inference
from examples.separation import input_pipeline
from examples.separation import losses
from examples.separation import models
from examples.separation import optimizer as optimizer_lib
from examples.separation import signal
from examples.separation import train_state

HEADS = {
  "mi": "mi",
  "dc": "dc",
  "wkm": "dc",
  "chimera": "chimera",
  "snr": "snr",
}


class TrainingError(RuntimeError):
  """A run that cannot continue (e.g. a non-finite loss)."""


class WorkdirError(ValueError):
  """A workdir that holds another run (other settings, or not resumed)."""


CONFIG_FILE = configs.CONFIG_FILE


def read_finished(config: configs.Config, workdir) -> dict | None:
  """A finished run's ``results.json`` in ``workdir``, or None.

  For callers that reuse finished runs and resume the others (``compare``,
  ``recipes``, ``reweighting_table``), which check every workdir before
  the first run trains: a run trained with other settings is not silently
  taken for this one, nor resumed as it.

  Raises:
    WorkdirError: the finished run's configuration differs from ``config``
      in a field that changes the result
      (:data:`configs.RESULT_NEUTRAL_FIELDS` may differ), or an unfinished
      one could not be resumed with ``config`` (:func:`check_run_workdir`).
  """
  results = configs.read_json_object(pathlib.Path(workdir) / "results.json")
  if results is None:  # None there, or a torn write: not finished.
    check_run_workdir(config, workdir, resume=True)
    return None
  mismatch = configs.config_mismatch(config, results)
  if mismatch:
    raise WorkdirError(
      f"{workdir} holds a finished run with other settings: "
      f"{', '.join(mismatch[:4])}; use another workdir or delete it"
    )
  return results


def _check_workdir(
  config: configs.Config, workdir: pathlib.Path, latest: int | None, resume
) -> None:
  """Raises WorkdirError if ``workdir``'s checkpoints are not this run's."""
  if latest is None:
    return
  if not resume:
    raise WorkdirError(
      f"{workdir} holds checkpoints of an earlier run (step {latest}): "
      "resume it (--resume), or train in another workdir (or delete this "
      "one) to start over"
    )
  if config.steps < latest:
    raise WorkdirError(
      f"cannot resume {workdir} at step {latest} with steps={config.steps}: "
      "the run is already longer"
    )
  recorded = configs.read_recorded(workdir)
  if recorded is None:  # A workdir from before config.json was written.
    return
  # ``steps`` may change (a run extended) only where nothing depends on the
  # run's length: no learning-rate decay, no curriculum reweighting.
  extendable = config.lr_decay == "none" and config.reweight != "curriculum"
  ignore = configs.TRAINING_NEUTRAL_FIELDS + (("steps",) if extendable else ())
  mismatch = configs.config_mismatch(config, recorded, ignore=ignore)
  if mismatch:
    raise WorkdirError(
      f"cannot resume {workdir} (step {latest}): it was trained with other "
      f"settings: {', '.join(mismatch[:4])}; resume it with its own "
      "settings, or train in another workdir"
    )


def latest_checkpoint(workdir) -> int | None:
  """The step of the latest checkpoint in a training ``workdir``, or None."""
  ckpt_dir = (pathlib.Path(workdir) / "checkpoints").absolute()
  if not ckpt_dir.is_dir():
    return None
  manager = ocp.CheckpointManager(
    ckpt_dir, options=ocp.CheckpointManagerOptions(create=False)
  )
  try:
    return manager.latest_step()
  finally:
    manager.close()


def check_run_workdir(
  config: configs.Config, workdir, resume: bool = False
) -> None:
  """Raises WorkdirError if ``train_and_evaluate`` would refuse ``workdir``.

  The check :func:`train_and_evaluate` makes before it reads any data, for
  callers that run several trainings (``compare``, ``recipes``) and check
  every workdir before the first one trains. Reads no data and writes
  nothing.
  """
  workdir = pathlib.Path(workdir)
  _check_workdir(config, workdir, latest_checkpoint(workdir), resume)


TrainState = train_state.TrainState


# ----------------------------------------------------------------------------
# Model, optimizer, data.
# ----------------------------------------------------------------------------


def create_model(config: configs.Config, rngs: nnx.Rngs) -> models.Separator:
  """The configured separator, initialised from ``rngs`` (op by op)."""
  return models.Separator(
    num_layers=config.num_layers,
    hidden=config.hidden,
    head=HEADS[config.loss],
    embedding_dim=config.embedding_dim,
    embedding_init_scale=config.embedding_init_scale,
    embedding_activation=config.embedding_activation,
    rngs=rngs,
  )


def abstract_params(config: configs.Config) -> dict:
  """The configured model's parameter shapes (``ShapeDtypeStruct`` dict)."""
  return models.abstract_params(lambda rngs: create_model(config, rngs))


def make_clipper(config: configs.Config) -> optax.GradientTransformation:
  if config.clip == "autoclip":
    # p is a traced hyperparameter: runs that differ only in p (the sweep)
    # share one compiled train step, and p can be changed mid-training.
    return optax.inject_hyperparams(
      autoclip_optax.autoclip, static_args=("history_size",)
    )(p=config.p, history_size=config.history_size)
  if config.clip == "fixed":
    return optax.clip_by_global_norm(config.max_norm)
  return optax.identity()


def make_optimizer(config: configs.Config) -> optax.GradientTransformation:
  """``chain(clipping, adam(lr))`` plus the configured lr schedule."""
  return optimizer_lib.make_optimizer(config, make_clipper(config))


def make_dataset(config: configs.Config, split: str):
  """The configured dataset for ``split`` (validated up front)."""
  num = {
    "train": None,
    "validation": config.num_val_examples,
    "test": config.num_test_examples,
  }[split]
  if config.data != "synthetic" and config.max_eval_examples is not None:
    num = config.max_eval_examples if split != "train" else None
  classes = (
    ("speech", "environmental")
    if config.environmental
    else ("speech", "speech")
  )
  if config.reweight == "class":
    # Class biasing needs both kinds of mixture in a batch: the second
    # source is speech or environmental (probability 1/2).
    classes = ("speech", "any")
  synthetic = data_lib.SyntheticConfig(
    source_classes=classes, pairing=config.pairing
  )
  chunk_samples = signal.frames_to_samples(config.chunk_frames)
  dataset = data_lib.make_dataset(
    config.data,
    config.data_root,
    split,
    seed=config.seed,
    chunk_samples=chunk_samples,
    num_examples=num if config.data == "synthetic" or num else None,
    synthetic=synthetic,
    dynamic_mixing=config.dynamic_mixing and config.data != "synthetic",
    speed_perturbation=config.speed_perturbation,
    # (validate: only with dynamic mixing of real data)
    distinct_talkers=config.distinct_talkers,
    renderer=config.synthetic_renderer,
    # The training stream rereads its files; evaluation sets are read once.
    audio_cache_bytes=config.audio_cache_mb * 2**20 if split == "train" else 0,
  )

  def synthetic_training(synthetic_config):
    return data_lib.make_dataset(
      "synthetic",
      split=split,
      seed=config.seed,
      chunk_samples=chunk_samples,
      synthetic=synthetic_config,
      renderer=config.synthetic_renderer,
    )

  if (
    split == "train"
    and config.data != "synthetic"
    and config.synthetic_fraction
  ):
    dataset = data_lib.BlendedTraining(
      dataset, synthetic_training(synthetic), config.synthetic_fraction
    )
  if split == "train" and config.synthetic_pretrain_steps:
    # The curriculum's first stage: the default synthetic talker pairs
    # (low + high register), whatever ``pairing`` the blend uses.
    easy = dataclasses.replace(synthetic, pairing="cross_register")
    dataset = data_lib.CurriculumTraining(
      synthetic_training(easy), dataset, config.synthetic_pretrain_steps
    )
  return dataset


def train_batch(dataset, config: configs.Config, step: int) -> dict:
  """The training batch of ``step``: a pure function of (seed, step).

  Resumed runs see exactly the batches an uninterrupted run sees; real data
  still covers every utterance once per epoch.
  """
  return dataset.batch_at(step, config.batch_size)


# ----------------------------------------------------------------------------
# Losses.
# ----------------------------------------------------------------------------


def per_example_loss(
  outputs: dict, batch: dict, config: configs.Config
) -> jax.Array:
  """The configured objective, one value per example ``[B]``."""
  if config.loss == "snr":
    return losses.snr_loss(outputs["waveforms"], batch["sources"])
  mix_stft = outputs["mix_stft"]
  mix_mag = jnp.abs(mix_stft)
  source_stfts = signal.stft(batch["sources"])
  if config.loss in ("mi", "chimera"):
    targets = losses.psa_target(mix_stft, source_stfts)
  if config.loss in ("dc", "wkm", "chimera"):
    assignments = losses.ideal_binary_assignments(source_stfts)
    weights = losses.magnitude_weights(mix_mag)
  if config.loss == "mi":
    return losses.mask_inference_loss(outputs["masks"], mix_mag, targets)
  if config.loss == "dc":
    return losses.deep_clustering_loss(
      outputs["embedding"], assignments, weights
    )
  if config.loss == "wkm":
    return losses.whitened_kmeans_loss(
      outputs["embedding"], assignments, weights
    )
  return losses.chimera_loss(
    outputs["masks"],
    outputs["embedding"],
    mix_mag,
    targets,
    assignments,
    weights,
    alpha=config.chimera_alpha,
  )


def batch_loss(
  per_example: jax.Array, batch: dict, step: jax.Array, config: configs.Config
) -> jax.Array:
  """Batch mean, or its softmax-reweighted replacement (``--reweight``)."""
  return optimizer_lib.reduce_batch(per_example, batch, step, config)


# ----------------------------------------------------------------------------
# Train step.
# ----------------------------------------------------------------------------


def create_train_state(
  config: configs.Config, rng: jax.Array
) -> train_state.TrainState:
  """The initial model and its ``nnx.Optimizer``.

  The weights come from ``rng``, or from ``config.init_from`` (fine-tuning;
  see :func:`initial_params`).
  """
  # Jitted: one compile instead of op-by-op dispatch of the whole init.
  model = models.init_separator(lambda rngs: create_model(config, rngs), rng)
  if config.init_from is not None:
    models.load_params(model, initial_params(config))
  optimizer = nnx.Optimizer(model, make_optimizer(config), wrt=nnx.Param)
  return train_state.TrainState.create(model, optimizer)


def initial_params(config: configs.Config) -> dict:
  """The weights of ``config.init_from`` for a model configured by ``config``.

  Raises:
    TrainingError: ``init_from`` is not a model directory, or its network
      differs from ``config``'s (layers, width, head, embeddings); the
      message names the path and the differing fields.
  """
  from examples.separation import separator  # pylint: disable=import-outside-toplevel

  try:
    source = separator.load_separator(config.init_from, chunk_seconds=None)
  except separator.ModelError as e:
    raise TrainingError(f"init_from: {e}") from None
  fields = ("loss", "num_layers", "hidden", "embedding_dim")
  if config.loss in ("dc", "wkm", "chimera"):
    fields += ("embedding_activation",)
  expected = jax.tree.map(lambda s: s.shape, abstract_params(config))
  found = jax.tree.map(lambda x: tuple(np.shape(x)), source.params)
  differ = [
    f for f in fields if getattr(source.config, f) != getattr(config, f)
  ]
  if found != expected or "embedding_activation" in differ:
    detail = ", ".join(
      f"{f}={getattr(source.config, f)!r} (run: {getattr(config, f)!r})"
      for f in differ
    )
    raise TrainingError(
      f"init_from {config.init_from}: its network does not fit this run's"
      + (f" ({detail})" if detail else "")
    )
  return jax.tree.map(jnp.asarray, source.params)


def optimizer_logs(opt_state: Any, grads: Any, config: configs.Config) -> dict:
  """Grad norm, clip threshold and clip flag, read inside jit."""
  if config.clip == "autoclip":
    return {
      "grad_norm": optax.tree.get(opt_state, "grad_norm"),
      "threshold": optax.tree.get(opt_state, "threshold"),
      "clipped": optax.tree.get(opt_state, "clipped"),
      "clip_fraction": autoclip_optax.clip_fraction(opt_state),
    }
  norm = optax.tree.norm(grads)
  if config.clip == "fixed":
    threshold = jnp.asarray(config.max_norm, jnp.float32)
  else:
    threshold = jnp.asarray(jnp.inf, jnp.float32)
  return {
    "grad_norm": norm,
    "threshold": threshold,
    "clipped": norm > threshold,
    "clip_fraction": jnp.float32(jnp.nan),
  }


# Mixture RMS of level-normalised training examples (-20 dBFS), and the
# largest gain that normalisation applies (40 dB: a near-silent chunk is not
# blown up to full weight).
NORMALIZED_RMS = 0.1
MAX_NORMALIZING_GAIN = 100.0


def normalize_levels(batch: dict) -> dict:
  """``batch`` with each mixture and its sources scaled to mixture RMS 0.1.

  One gain per example for the mixture and its sources (at most
  ``MAX_NORMALIZING_GAIN``), so the sources still sum to the mixture;
  silent (all-zero) mixtures stay zero.
  """
  mix = batch["mix"]
  rms = jnp.sqrt(jnp.mean(jnp.square(mix), axis=-1, keepdims=True))
  gain = jnp.minimum(
    NORMALIZED_RMS / jnp.maximum(rms, 1e-12), MAX_NORMALIZING_GAIN
  )
  return {
    **batch,
    "mix": mix * gain,
    "sources": batch["sources"] * gain[..., None],
  }


def loss_and_grads(
  model: models.Separator, batch: dict, step: jax.Array, config: configs.Config
) -> tuple[tuple[jax.Array, jax.Array], Any]:
  """``((loss, per_example_losses), grads)`` of ``model`` on ``batch``."""

  if config.normalize_levels:
    batch = normalize_levels(batch)

  def loss_fn(model):
    per_example = per_example_loss(model(batch["mix"]), batch, config)
    return batch_loss(per_example, batch, step, config), per_example

  return nnx.value_and_grad(loss_fn, has_aux=True)(model)


def make_train_step(config: configs.Config) -> Callable:
  """``step(state, batch) -> (state, logs)``, to be jitted."""

  def step(state: train_state.TrainState, batch: dict):
    model, optimizer = state.merge()
    step = optimizer.step.get_value().astype(jnp.int32)
    (loss, per_example), grads = loss_and_grads(model, batch, step, config)
    # Plus the extra arguments (the loss) that plateau schedulers read.
    optimizer.update(
      model, grads, **optimizer_lib.extra_args(per_example.mean(), config)
    )
    opt_state = train_state.pure_opt_state(optimizer)
    logs = {
      "loss": loss,
      "mean_loss": per_example.mean(),
      **optimizer_logs(opt_state, grads, config),
      **optimizer_lib.schedule_logs(opt_state),
    }
    return state.update(model, optimizer), logs

  return step


def make_mesh(num_devices: int | None = None) -> Mesh:
  devices = jax.devices()[:num_devices] if num_devices else jax.devices()
  return Mesh(np.array(devices), ("data",))


def shard_batch(batch: dict, mesh: Mesh) -> dict:
  sharding = NamedSharding(mesh, P("data"))
  return {
    k: jax.device_put(np.asarray(v), sharding)
    for k, v in batch.items()
    if k in ("mix", "sources", "classes")
  }


# ----------------------------------------------------------------------------
# Evaluation.
# ----------------------------------------------------------------------------


def make_separate_fn(config: configs.Config) -> Callable:
  """Jitted ``separate(params, mix [B, L]) -> [B, S, L]`` (pure-dict params)."""
  apply, _ = models.functional(
    nnx.eval_shape(lambda: create_model(config, nnx.Rngs(0)))
  )

  @jax.jit
  def separate(params, mix):
    return inference.estimate_sources(apply(params, mix), mix)

  return separate


def evaluate(
  params: Any,
  dataset,
  config: configs.Config,
  separate: Callable | None = None,
  keep: int = 0,
  *,
  sdr: bool = False,
  extra_metrics=(),
  per_utterance_csv: pathlib.Path | None = None,
) -> tuple[dict, list]:
  """Metrics over ``dataset.examples()`` (whole utterances).

  The same code path as ``python -m examples.separation.evaluate``
  (:func:`evaluation.evaluate_dataset`): SI-SDR(i) always, BSS-Eval SDR(i)
  with ``sdr=True`` (slower: the final test, not validation).

  Returns the summary dict (plus ``si_sdri_per_utterance_db``) and, for the
  first ``keep`` utterances, tuples ``(name, mix, estimates, references)``.
  """
  separate = separate or make_separate_fn(config)
  fn = evaluation.utterance_fn(lambda mix: separate(params, jnp.asarray(mix)))
  try:
    result = evaluation.evaluate_dataset(
      fn, dataset, sdr=sdr, extra_metrics=extra_metrics, keep=keep
    )
  except evaluation.NonFiniteOutputError as e:
    raise TrainingError(str(e)) from None
  if per_utterance_csv is not None:
    evaluation.write_csv(result.rows, per_utterance_csv)
  return (
    {**result.summary, "si_sdri_per_utterance_db": result.column("si_sdri_db")},
    result.examples,
  )


class CachedExamples:
  """A dataset's fixed evaluation utterances, loaded once and kept in memory."""

  def __init__(self, dataset):
    self.name = getattr(dataset, "name", "dataset")
    self.split = getattr(dataset, "split", None)
    self.sample_rate = dataset.sample_rate
    self._examples = list(dataset.examples())

  def examples(self):
    return iter(self._examples)


# ----------------------------------------------------------------------------
# The loop.
# ----------------------------------------------------------------------------


def _json_value(x):
  x = np.asarray(x)
  if x.dtype == np.bool_:
    return bool(x) if x.ndim == 0 else x.tolist()
  if x.ndim == 0:
    v = float(x)
    return v if np.isfinite(v) else None
  return [(float(v) if np.isfinite(v) else None) for v in x.ravel()]


def _all_finite(tree) -> bool:
  """Whether every array of ``tree`` is finite (one device sync)."""
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
  return bool(jnp.all(jnp.stack(leaves))) if leaves else True


def _read_metrics(path: pathlib.Path) -> list[dict]:
  """The records of ``metrics.jsonl``; a line that is not a whole JSON
  record with a step (one torn by a killed process) is left out."""
  if not path.exists():
    return []
  records = []
  for line in path.read_text(encoding="utf-8").splitlines():
    try:
      record = json.loads(line)
    except json.JSONDecodeError:
      continue
    if isinstance(record, dict) and isinstance(record.get("step"), int):
      records.append(record)
  return records


def _truncate_metrics(path: pathlib.Path, last_step: int) -> None:
  """Drops log lines past ``last_step`` (written after the last checkpoint)
  and torn lines; the file is replaced atomically."""
  if not path.exists():
    return
  kept = [r for r in _read_metrics(path) if r["step"] <= last_step]
  evaluation.write_jsonl(kept, path)


def _last_logged(path: pathlib.Path, key: str):
  """The last value of ``key`` in ``metrics.jsonl`` (None if never logged)."""
  values = [r[key] for r in _read_metrics(path) if r.get(key) is not None]
  return values[-1] if values else None


def _progress(total: int, initial: int, enabled: bool):
  try:
    from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel
  except ImportError:  # pragma: no cover
    return None
  return tqdm(
    total=total,
    initial=initial,
    disable=not enabled,
    dynamic_ncols=True,
    desc="train",
  )


def train_and_evaluate(
  config: configs.Config,
  workdir: str,
  resume: bool = False,
  num_devices: int | None = None,
  step_callback: Callable | None = None,
) -> dict:
  """Trains, validates, checkpoints and tests; returns ``results.json``'s dict.

  Args:
    config: the run's configuration.
    workdir: output directory (created).
    resume: continue from the latest checkpoint in ``workdir`` if any.
      Unlike the Flax examples' ``train_and_evaluate``, which always
      restores a workdir's latest checkpoint, a workdir holding checkpoints
      is refused without it (a new run never silently continues an old one).
    num_devices: use the first ``num_devices`` devices (default: all).
    step_callback: optional ``fn(step, logs)`` called with each step's logs
      (host arrays) once the loop has read them: in step order, but up to one
      step late (see the loop).

  Raises:
    ValueError: an invalid ``config`` (schedule and reweighting settings
      included, ``optimizer.check_config``), or a batch the devices cannot
      share; raised before anything is written.
    WorkdirError: ``workdir`` holds checkpoints of another run: of any run
      when ``resume`` is false (start over in another workdir), or of one
      whose ``config.json`` differs from ``config`` in a field that changes
      the trained weights (:data:`configs.TRAINING_NEUTRAL_FIELDS` may
      differ, and ``steps``, to extend a run whose schedule does not depend
      on its length). Checked before any data is read.
    TrainingError: a non-finite loss, or non-finite weights at a checkpoint
      step (never saved).
    data.DatasetError: unreadable or invalid training data.
  """
  configs.validate(config)
  optimizer_lib.check_config(config)
  mesh = make_mesh(num_devices)
  if config.batch_size % mesh.size:
    raise ValueError(
      f"batch_size={config.batch_size} must be a multiple of the number of "
      f"devices ({mesh.size}); change --batch-size or set "
      "CUDA_VISIBLE_DEVICES / XLA_FLAGS"
    )
  workdir_path = pathlib.Path(workdir)
  workdir_path.mkdir(parents=True, exist_ok=True)
  ckpt_dir = (workdir_path / "checkpoints").absolute()
  manager = ocp.CheckpointManager(
    ckpt_dir, options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True)
  )
  try:
    # Before any data is read: the workdir must hold this run or none.
    latest = manager.latest_step()
    _check_workdir(config, workdir_path, latest, resume)
    if latest is None:
      # A new run: nothing of an earlier one (without checkpoints) stays.
      for name in ("results.json", "test_per_utterance.csv"):
        (workdir_path / name).unlink(missing_ok=True)
    evaluation.write_json(
      dataclasses.asdict(config), workdir_path / CONFIG_FILE
    )
    results = _train_and_evaluate(
      config, workdir_path, manager, mesh, resume, step_callback
    )
  except BaseException:
    # Also on an interruption: the checkpoint being written is completed,
    # and a failure to close does not hide the error that got us here.
    try:
      manager.close()
    except Exception:  # pylint: disable=broad-except
      pass
    raise
  manager.close()
  return results


def _train_and_evaluate(
  config: configs.Config,
  workdir_path: pathlib.Path,
  manager: ocp.CheckpointManager,
  mesh: Mesh,
  resume: bool,
  step_callback: Callable | None,
) -> dict:
  train_ds = make_dataset(config, "train")
  # The validation set is read (or generated) once, not at every evaluation.
  val_ds = CachedExamples(make_dataset(config, "validation"))
  test_ds = make_dataset(config, "test")

  replicated = NamedSharding(mesh, P())
  state = create_train_state(config, jax.random.key(config.seed))
  state = jax.device_put(state, replicated)
  metrics_path = workdir_path / "metrics.jsonl"
  start = 0
  if resume and manager.latest_step() is not None:
    start = manager.latest_step()
    abstract = jax.tree.map(
      ocp.utils.to_shape_dtype_struct, train_state.checkpoint_tree(state)
    )
    state = train_state.restore_tree(
      state, manager.restore(start, args=ocp.args.StandardRestore(abstract))
    )
    _truncate_metrics(metrics_path, start)
  elif metrics_path.exists():
    metrics_path.unlink()
  # A run that the schedule already stopped does not train on when resumed.
  stopped = bool(
    np.asarray(optimizer_lib.schedule_logs(state.opt_state)["stop"])
  )

  step_fn = jax.jit(make_train_step(config), donate_argnums=0)
  separate = make_separate_fn(config)
  bar = _progress(config.steps, start, config.progress)
  t0 = time.time()
  val_summary = None

  with contextlib.ExitStack() as stack:
    if config.data_workers and not stopped and start < config.steps:
      make = stack.enter_context(
        input_pipeline.ProcessLoader(
          functools.partial(train_ds.batch_at, batch_size=config.batch_size),
          config.data_workers,
        )
      )
    else:
      make = functools.partial(train_batch, train_ds, config)

    def load(step: int) -> dict:
      # Runs in a background thread, ``prefetch`` steps ahead of the loop.
      return shard_batch(make(step), mesh)

    log_file = stack.enter_context(open(metrics_path, "a", encoding="utf-8"))
    batches = stack.enter_context(
      input_pipeline.Prefetcher(
        load,
        start,
        start if stopped else config.steps,
        depth=config.prefetch,
        workers=max(1, config.data_workers),
      )
    )

    def needs_state(done: int) -> bool:
      # Validation, checkpoints and the end of the run read the state.
      return (
        done % config.eval_every == 0
        or done == config.steps
        or (config.checkpoint and done % config.checkpoint_every == 0)
      )

    def after_step(done: int, logs: dict) -> bool:
      """Logs, validates and checkpoints step ``done``; True to stop."""
      nonlocal val_summary
      logs = jax.device_get(logs)
      loss = float(logs["loss"])
      if not np.isfinite(loss):
        raise TrainingError(
          f"non-finite loss {loss} at step {done} (loss={config.loss}, "
          f"clip={config.clip}); stopping instead of training through it"
        )
      stop = bool(np.asarray(logs.get("stop", False)))
      last = done == config.steps or stop  # Log and validate the last step.
      if step_callback is not None:
        step_callback(done, logs)
      record = None
      if done % config.log_every == 0 or last:
        record = {"step": done, **{k: _json_value(v) for k, v in logs.items()}}
      if done % config.eval_every == 0 or last:
        val_summary, _ = evaluate(state.params, val_ds, config, separate)
        record = record or {
          "step": done,
          **{k: _json_value(v) for k, v in logs.items()},
        }
        record["val_si_sdri_db"] = val_summary["si_sdri_db"]
        record["val_si_sdr_db"] = val_summary["si_sdr_db"]
      if record is not None:
        log_file.write(json.dumps(record) + "\n")
        log_file.flush()
      if config.checkpoint and (done % config.checkpoint_every == 0 or last):
        # A finite loss can still come with non-finite gradients (AutoClip
        # passes them through unclipped): never checkpoint such weights.
        if not _all_finite(state.params):
          raise TrainingError(
            f"non-finite weights after step {done} (loss={config.loss}, "
            f"clip={config.clip}); stopping without checkpointing them"
          )
        manager.save(
          done,
          args=ocp.args.StandardSave(train_state.checkpoint_tree(state)),
          force=stop,
        )
      if bar is not None:
        bar.update(1)
        postfix = {"loss": f"{loss:.4g}"}
        if config.clip != "none":
          postfix["thr"] = f"{float(logs['threshold']):.3g}"
        if config.clip == "autoclip":
          postfix["clip"] = f"{float(logs['clip_fraction']):.2f}"
        bar.set_postfix(postfix, refresh=False)
      if stop and bar is not None:
        bar.write(f"schedule signalled stop at step {done}")
      return stop

    # A step's logs are read after the next step has been dispatched, so
    # that the device does not idle while this thread waits for them, writes
    # metrics and takes the next batch (and for the interpreter lock, which
    # the data thread holds often). Steps whose state is read (validation,
    # checkpoint, the last step) are finished at once, and so is every step
    # of a schedule that can stop training: the next step must not run.
    lag = config.schedule == "constant"
    pending: tuple[int, dict] | None = None
    for step, batch in batches:
      state, logs = step_fn(state, batch)
      done = step + 1
      if pending is not None:
        after_step(*pending)
        pending = None
      if lag and not needs_state(done):
        pending = (done, logs)
      elif after_step(done, logs):
        break
  manager.wait_until_finished()
  if bar is not None:
    bar.close()
  train_seconds = time.time() - t0
  trained = int(state.step) - start
  val_si_sdri = val_summary["si_sdri_db"] if val_summary else None
  if not trained:
    # Resumed at its end (a finished run, one stopped by its schedule, or
    # one interrupted during the test evaluation): nothing was trained or
    # validated now; keep what the training run measured.
    val_si_sdri = _last_logged(metrics_path, "val_si_sdri_db")
    previous = configs.read_json_object(workdir_path / "results.json")
    if previous and previous.get("steps_done") == int(state.step):
      train_seconds = previous.get("train_seconds_this_run", train_seconds)

  test_summary, kept = evaluate(
    state.params,
    test_ds,
    config,
    separate,
    keep=config.num_wav_examples,
    sdr=True,
    per_utterance_csv=workdir_path / "test_per_utterance.csv",
  )
  evaluation.write_examples(
    kept, workdir_path / "examples", train_ds.sample_rate
  )
  results = {
    **dataclasses.asdict(config),
    "steps_done": int(state.step),
    "train_seconds_this_run": train_seconds,
    "devices": mesh.size,
    # Where train_seconds_this_run was measured.
    "machine": cli.machine_description(),
    "final_threshold": _json_value(optax.tree.get(state.opt_state, "threshold"))
    if config.clip == "autoclip"
    else None,
    "clip_fraction": _json_value(autoclip_optax.clip_fraction(state.opt_state))
    if config.clip == "autoclip"
    else None,
    "val_si_sdri_db": val_si_sdri,
    "test_si_sdr_db": test_summary["si_sdr_db"],
    "test_si_sdri_db": test_summary["si_sdri_db"],
    "test_sdr_db": test_summary.get("sdr_db"),
    "test_sdri_db": test_summary.get("sdri_db"),
    "test_si_sdri_per_utterance_db": test_summary["si_sdri_per_utterance_db"],
    "num_test_utterances": test_summary["num_utterances"],
  }
  evaluation.write_json(results, workdir_path / "results.json")
  return results


def main(argv=None):  # pragma: no cover - thin wrapper
  from examples.separation import cli  # pylint: disable=import-outside-toplevel

  return cli.main(argv)


if __name__ == "__main__":
  raise SystemExit(main())
