"""Command line of ``python -m examples.separation.train``.

Every argument is checked before any data is generated or model compiled; a
bad one exits with status 2 and a one-line ``error:`` message naming it. Data
problems (missing root, mismatched files) exit with status 1, also without a
traceback, and so does a non-finite loss (reported with its step).
"""

import argparse
import dataclasses
import json
import os
import pathlib
import sys
import tempfile

from examples.separation import configs


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
    prog="python -m examples.separation.train",
    description="Train a BLSTM separator with AutoClip (Seetharaman et al. "
    "2020) and report test SI-SDR / SI-SDRi.",
  )
  add = parser.add_argument
  add("--loss", default="mi", help=f"objective, one of {configs.LOSSES}")
  add("--clip", default="autoclip", help=f"one of {configs.CLIPS}")
  add("--p", type=float, default=10.0, help="AutoClip percentile in [0, 100]")
  add(
    "--max-norm",
    type=float,
    default=None,
    help="max global norm for --clip fixed",
  )
  add(
    "--history-size",
    type=int,
    default=None,
    help="AutoClip history window (default 100000)",
  )
  add("--preset", default="tiny", help=f"one of {tuple(configs.PRESETS)}")
  add("--steps", type=int, default=None, help="training steps (preset)")
  add(
    "--hidden",
    type=int,
    default=None,
    help="BLSTM units per direction (preset)",
  )
  add("--num-layers", type=int, default=None, help="BLSTM layers (preset)")
  add(
    "--embedding-activation",
    default=None,
    choices=configs.EMBEDDING_ACTIVATIONS,
    help="deep-clustering embeddings before unit norm (preset)",
  )
  add("--batch-size", type=int, default=None, help="batch size (preset)")
  add(
    "--chunk-frames",
    type=int,
    default=None,
    help="training chunk length in STFT frames (preset)",
  )
  add(
    "--learning-rate",
    type=float,
    default=None,
    help="Adam's peak lr (default: the preset's, e.g. tiny 2e-3, 3e-3 for "
    "dc / wkm)",
  )
  add(
    "--warmup-steps",
    type=int,
    default=None,
    help="linear learning-rate warm-up steps (default: the preset's)",
  )
  add(
    "--lr-decay",
    default=None,
    choices=configs.LR_DECAYS,
    help="after the warm-up: cosine decay to --lr-final-fraction x lr over "
    "the run, or none (default: the preset's; a cosine run's schedule "
    "depends on --steps, so it cannot be extended by --resume --steps)",
  )
  add(
    "--lr-final-fraction",
    type=float,
    default=None,
    help="the cosine decay's final lr as a fraction of the peak (preset)",
  )
  add("--adam-b2", type=float, default=None, help="Adam's beta2 (preset)")
  add(
    "--checkpoint-every",
    type=positive_int,
    default=None,
    help="steps between orbax checkpoints (default: the preset's, or the "
    "run's length if shorter)",
  )
  add("--seed", type=int, default=0)
  add("--data", default="synthetic", help=f"one of {configs.DATASETS}")
  add("--data-root", default=None, help="root of wsj0-2mix / Libri2Mix")
  add(
    "--dynamic-mixing",
    action=argparse.BooleanOptionalAction,
    default=None,
    help="real data: train on new mixtures of the training sources "
    "(random pairs and levels) instead of the stored mixtures (tiny preset: "
    "on; otherwise off)",
  )
  add(
    "--speed-perturbation",
    type=float,
    default=None,
    help="with --dynamic-mixing: play each source at a random speed in "
    "1 +- this, e.g. 0.1 (pitch and formants move with it; 0)",
  )
  add(
    "--synthetic-fraction",
    type=float,
    default=None,
    help="real data: fraction of each training batch that is synthetic "
    "mixtures (0)",
  )
  add(
    "--synthetic-pretrain-steps",
    type=int,
    default=None,
    metavar="K",
    help="real data: train the first K steps on synthetic mixtures only "
    "(low + high register talkers), then on the real data, with a warm "
    "restart of the learning-rate schedule (tiny preset: 12000 of 21000 "
    "steps on real data; 0 elsewhere)",
  )
  add(
    "--distinct-talkers",
    action=argparse.BooleanOptionalAction,
    default=None,
    help="with --dynamic-mixing: never mix a talker with itself (talkers "
    "read from the wsj0-2mix / Libri2Mix names or a tts2mix mixtures.csv; "
    "tiny preset on real data: on; otherwise off)",
  )
  add(
    "--normalize-levels",
    action=argparse.BooleanOptionalAction,
    default=None,
    help="rescale every training mixture and its sources to the same RMS "
    "before the loss (equal weight per example in L_MI; tiny preset on real "
    "data: on; otherwise off)",
  )
  add(
    "--synthetic-renderer",
    default=None,
    choices=configs.RENDERERS,
    help="synthetic training batches: one jitted XLA program or the numpy "
    "reference (the same draws; preset: xla for tiny, numpy otherwise)",
  )
  add(
    "--pairing",
    default=None,
    choices=configs.PAIRINGS,
    help="synthetic talker pairs: a low with a high register (default) or "
    "any two speakers (much harder)",
  )
  add(
    "--num-test",
    type=int,
    default=None,
    help="test utterances (synthetic: generated; real data: the first N of "
    "the test split, and of the validation split too)",
  )
  add("--eval-every", type=int, default=None)
  add(
    "--data-workers",
    type=int,
    default=None,
    help="processes that prepare training batches (0, the default: a "
    "background thread of the training process)",
  )
  add(
    "--audio-cache-mb",
    type=int,
    default=None,
    metavar="MB",
    help="real data: keep up to MB MiB of decoded training audio in "
    "memory, per process that prepares batches (default "
    f"{configs.Config.audio_cache_mb}; 0: read every chunk from disk)",
  )
  add(
    "--init-from",
    default=None,
    metavar="MODEL_DIR",
    help="fine-tune: start from the weights of an exported model or a "
    "training workdir (same network) instead of a random initialisation",
  )
  add("--workdir", required=True, help="output directory")
  add(
    "--resume",
    action="store_true",
    help="continue from the latest checkpoint in --workdir, with the "
    "settings its run recorded (config.json); flags given override them, "
    "except those that change the trained weights (refused)",
  )
  add("--no-progress", action="store_true", help="no progress bar")
  sched = parser.add_argument_group("learning-rate schedule")
  sched.add_argument(
    "--schedule", default="constant", help=f"one of {configs.SCHEDULES}"
  )
  for name, typ in (
    ("steps-per-epoch", int),
    ("factor", float),
    ("patience", int),
    ("max-reductions", int),
    ("reductions-per-phase", int),
    ("phases", int),
    ("lr-min", float),
    ("period", int),
    ("n-annealings", int),
    ("n-reduces", int),
    ("rocp-threshold", float),
  ):
    sched.add_argument(f"--{name}", type=typ, default=None)
  sched.add_argument(
    "--starting-phase", default=None, help="rop2_caswr_alt: 'rop2' or 'caswr'"
  )
  rw = parser.add_argument_group("softmax gradient reweighting")
  rw.add_argument(
    "--reweight", default="none", help=f"one of {configs.REWEIGHTS}"
  )
  rw.add_argument("--alpha", type=float, default=None, help="robust: alpha")
  rw.add_argument(
    "--beta0",
    type=float,
    default=None,
    help="curriculum: initial beta, annealed to 0",
  )
  rw.add_argument(
    "--class-gammas",
    default=None,
    help="class: comma-separated gamma per source class (speech,environmental)",
  )
  rw.add_argument(
    "--environmental",
    action="store_true",
    help="synthetic mixtures of one talker and one "
    "environmental sound (class labels for --reweight class)",
  )
  return parser


# Config fields whose flag is not simply copied into the field: the preset
# chooses the starting values.
_NOT_FIELDS = ("preset",)


def _field_values(args: argparse.Namespace) -> dict[str, dict]:
  """For each flag (argparse dest), the Config fields it sets.

  A flag left at ``None`` sets nothing (the preset's value stays).
  """
  fields = {f.name for f in dataclasses.fields(configs.Config)}
  values = {
    dest: {dest: value}
    for dest, value in vars(args).items()
    if dest in fields and dest not in _NOT_FIELDS and value is not None
  }
  values["no_progress"] = {"progress": not args.no_progress}
  if args.num_test is not None:
    values["num_test"] = {
      "num_test_examples": args.num_test,
      "max_eval_examples": args.num_test,
    }
  if args.class_gammas is not None:
    try:
      values["class_gammas"] = {
        "class_gammas": tuple(float(g) for g in args.class_gammas.split(","))
      }
    except ValueError:
      raise ValueError(
        f"--class-gammas must be comma-separated numbers, got "
        f"{args.class_gammas!r}"
      ) from None
  if args.reweight == "class":
    # Class reweighting needs class-labelled (environmental) mixtures.
    values["reweight"]["environmental"] = True
    values["environmental"] = {"environmental": True}
  return values


def _fit_eval_to_steps(config: configs.Config) -> configs.Config:
  if config.steps < config.eval_every:
    config = dataclasses.replace(
      config,
      eval_every=config.steps,
      checkpoint_every=min(config.checkpoint_every, config.steps),
    )
  return config


def config_from_args(args: argparse.Namespace) -> configs.Config:
  """Builds and validates the Config; raises ValueError naming the flag.

  The ``--preset``'s values (with its refinements for the loss and the
  data), then every flag given.
  """
  if args.preset not in configs.PRESETS:
    raise ValueError(
      f"--preset {args.preset!r} is not one of {tuple(configs.PRESETS)}"
    )
  overrides = {}
  for fields in _field_values(args).values():
    overrides.update(fields)
  return _fit_eval_to_steps(configs.get_config(args.preset, **overrides))


def given_flags(argv) -> set[str]:
  """The argparse destinations of the flags written on the command line."""
  probe = build_parser()
  for action in probe._actions:  # pylint: disable=protected-access
    action.default = argparse.SUPPRESS  # A flag not given sets nothing.
  return set(vars(probe.parse_args(argv)))


def resumed_config(
  args: argparse.Namespace, given: set[str], recorded: dict
) -> configs.Config:
  """The config to resume a run with: its recorded one, then the flags given.

  ``recorded`` is the run's recorded configuration
  (:func:`configs.read_recorded`). A flag not written on the command line
  keeps the run's value instead of taking today's default, so a run is
  resumed with ``--resume --workdir W`` alone; a flag given that changes
  the trained weights is refused later, when the workdir is checked.

  Raises:
    ValueError: a flag's value is invalid, or ``--preset`` names another
      preset than the run's.
  """
  base = configs.from_recorded(recorded)
  if "preset" in given and args.preset != base.preset:
    raise ValueError(
      f"--preset {args.preset!r}: the run in --workdir was started with "
      f"preset {base.preset!r}; resume it without --preset, or train in "
      "another workdir"
    )
  overrides = {}
  for dest, fields in _field_values(args).items():
    if dest in given or dest == "no_progress":  # The display: as asked now.
      overrides.update(fields)
  config = dataclasses.replace(base, **overrides)
  if "steps" in given and config.steps != base.steps:
    config = _refit_cadence(base, config, given)
  config = _fit_eval_to_steps(config)
  configs.validate(config)
  return config


def _refit_cadence(
  base: configs.Config, config: configs.Config, given: set[str]
) -> configs.Config:
  """The cadences a run resumed with other ``--steps`` would be started with.

  A run shorter than its preset's evaluation (or checkpoint) interval was
  started with the interval shrunk to its length (``_fit_eval_to_steps``);
  resumed for more steps, it takes the preset's interval again instead of
  evaluating every ``base.steps`` steps. An interval given on the command
  line, or one that was not shrunk, is kept.
  """
  preset = configs.preset_fields(base.preset, loss=base.loss, data=base.data)
  changes = {}
  for field in ("eval_every", "checkpoint_every"):
    interval = preset.get(field, getattr(configs.Config, field))
    if field not in given and getattr(base, field) == base.steps < interval:
      changes[field] = interval
  return dataclasses.replace(config, **changes)


def train_reporting_errors(
  config: configs.Config, workdir: os.PathLike
) -> tuple[dict | None, int]:
  """Trains (or resumes) a run for a script that trains several.

  Returns:
    ``(results, 0)``, or ``(None, exit status)`` after printing one
    ``error:`` line (a dataset, training, workdir or settings error) or,
    on Ctrl-C, how to continue.
  """
  from examples.separation import data as data_lib  # pylint: disable=import-outside-toplevel
  from examples.separation import train  # pylint: disable=import-outside-toplevel

  try:
    return train.train_and_evaluate(config, str(workdir), resume=True), 0
  except (data_lib.DatasetError, train.TrainingError) as e:
    print(f"error: {workdir}: {e}", file=sys.stderr)
    return None, 1
  except train.WorkdirError as e:
    print(f"error: {e}", file=sys.stderr)
    return None, 1
  except ValueError as e:
    print(f"error: {workdir}: {_flag_message(str(e))}", file=sys.stderr)
    return None, 2
  except KeyboardInterrupt:
    print(
      f"interrupted while training {workdir}; rerun the same command to "
      "continue from its last checkpoint",
      file=sys.stderr,
    )
    return None, 130


def check_directory(flag: str, path) -> None:
  """Raises ValueError naming ``flag`` unless ``path`` is a directory."""
  if not os.path.isdir(path):
    raise ValueError(f"{flag} {path!r} does not exist or is not a directory")


def _finite_float(text: str, *, positive: bool) -> float:
  try:
    value = float(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
  ok = value > 0 if positive else value >= 0
  if not ok or value == float("inf"):  # NaN: not ok.
    raise argparse.ArgumentTypeError(
      f"must be a finite number {'>' if positive else '>='} 0, got {text}"
    )
  return value


def nonnegative_float(text: str) -> float:
  """``argparse`` type: a finite number >= 0."""
  return _finite_float(text, positive=False)


def positive_float(text: str) -> float:
  """``argparse`` type: a finite number > 0."""
  return _finite_float(text, positive=True)


def positive_int(text: str) -> int:
  """``argparse`` type: an integer >= 1."""
  try:
    value = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
  if value < 1:
    raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
  return value


def machine_description() -> str:
  """One line naming this machine (CPU model, cores, JAX backend)."""
  import platform  # pylint: disable=import-outside-toplevel

  import jax  # pylint: disable=import-outside-toplevel

  model = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("model name"):
          model = line.split(":", 1)[1].strip()
          break
  except OSError:
    pass
  return (
    f"{model}, {os.cpu_count()} cores, jax {jax.__version__} on "
    f"{jax.default_backend()}"
  )


def check_workdir(path: str) -> pathlib.Path:
  """Creates ``path`` and checks it is writable; raises ValueError if not."""
  workdir = pathlib.Path(path)
  try:
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=workdir):
      pass
  except OSError as e:
    raise ValueError(
      f"--workdir {path!r} is not writable ({e.strerror})"
    ) from None
  return workdir


# Config fields set by a flag of another name.
_FLAGS = {"num_test_examples": "--num-test", "max_eval_examples": "--num-test"}


def _flag_message(message: str) -> str:
  # Config errors name fields (``p=...``); show them as flags (``--p``).
  for field in dataclasses.fields(configs.Config):
    flag = _FLAGS.get(field.name, "--" + field.name.replace("_", "-"))
    if message.startswith(field.name + "="):
      return flag + " " + message[len(field.name) + 1 :]
  return message


def main(argv=None) -> int:
  parser = build_parser()
  args = parser.parse_args(argv)
  try:
    recorded = configs.read_recorded(args.workdir) if args.resume else None
    if recorded is None:
      config = config_from_args(args)
      if args.resume and os.path.isdir(
        os.path.join(args.workdir, "checkpoints")
      ):
        print(
          f"warning: {args.workdir} records no settings (a run from before "
          "config.json); resuming with the command line's",
          file=sys.stderr,
        )
      elif args.resume:
        print(
          f"warning: nothing to resume in {args.workdir}; starting a new run",
          file=sys.stderr,
        )
    else:
      given = given_flags(argv)
      config = resumed_config(args, given, recorded)
      changed = given - {"workdir", "resume", "no_progress"}
      if args.preset == config.preset:
        changed.discard("preset")
      flags = ", ".join(f"--{d.replace('_', '-')}" for d in sorted(changed))
      print(
        f"resuming with the settings recorded in {args.workdir}"
        + (f", except {flags} from the command line" if flags else ""),
        file=sys.stderr,
      )
    if config.data != "synthetic":
      check_directory("--data-root", config.data_root)
    if config.init_from is not None:
      check_directory("--init-from", config.init_from)
    check_workdir(args.workdir)
  except ValueError as e:
    parser.exit(2, f"error: {_flag_message(str(e))}\n")

  # Heavy imports only once the arguments are known to be good.
  from examples.separation import data as data_lib  # pylint: disable=import-outside-toplevel
  from examples.separation import train  # pylint: disable=import-outside-toplevel

  try:
    results = train.train_and_evaluate(config, args.workdir, resume=args.resume)
  except data_lib.DatasetError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  except train.TrainingError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  except train.WorkdirError as e:
    print(f"error: --workdir: {e}", file=sys.stderr)
    return 2
  except ValueError as e:  # Settings that only training could check.
    print(f"error: {_flag_message(str(e))}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print(
      "interrupted; rerun with --resume to continue from the last checkpoint",
      file=sys.stderr,
    )
    return 130
  summary = {
    k: results[k]
    for k in (
      "loss",
      "clip",
      "p",
      "steps_done",
      "seed",
      "test_si_sdr_db",
      "test_si_sdri_db",
    )
  }
  print(json.dumps(summary))
  return 0


if __name__ == "__main__":
  sys.exit(main())
