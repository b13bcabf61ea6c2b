# Copyright 2024 The autoclip-optax Authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""tts2mix: a wsj0-2mix-style two-talker data set from Debian's TTS voices.

No speech corpus can be downloaded everywhere, but Debian ships text-to-speech
voices, several of them built from recordings of real talkers. This module
calls them as external programs (nothing is linked or bundled) and writes
two-talker mixtures in exactly the layout of wsj0-2mix::

  python -m examples.separation.tts2mix --root DIR \\
      [--num-train 300 --num-valid 20 --num-test 40] [--voices free|all] \\
      [--seed 0] [--jobs 2]

  DIR/wav8k/min/{tr,cv,tt}/{mix,s1,s2}/NAME.wav   8 kHz mono 16-bit
  DIR/voices.json     the voice split, seed, counts, augmentation, versions
  DIR/mixtures.csv    one row per mixture (voices, texts, levels, ...)
  DIR/README.txt      how the build was made

which ``data.make_dataset('wsj0-2mix', DIR, split)`` reads (and so does
``python -m examples.separation.train --data wsj0-2mix --data-root DIR``).

Engines (install line: ``APT_LINE``; ``--voices free``, the default, needs only
Debian main):

* festival: ``slt`` (female, CMU ARCTIC, HTS), ``kal`` and ``ked`` (male,
  diphones). One festival process synthesises a batch of utterances of one
  voice (a Scheme file), since loading a voice costs ~0.5 s.
* flite: ``slt`` (the same talker as festival's), ``awb``, ``rms`` (male,
  clustergen) and ``kal16`` (festival's kal, diphones).
* espeak-ng: formant variants (rule-based, clearly synthetic) of both sexes.
* ``--voices all`` adds, when installed (never required), espeak-ng's MBROLA
  voices (contrib/non-free ``mbrola-us1`` ... packages) and SVOX pico
  (``libttspico-utils``, non-free).

Voice split. The speakers of ``tt`` never appear in ``tr`` or ``cv`` (like
wsj0-2mix, ``cv`` uses the training speakers). Voices are grouped by *talker*
(festival's and flite's ``slt`` are one person, and so are their ``kal``), and
talkers, not voices, are assigned to a split by the fixed table ``VOICES``,
independently of ``--seed``. With the free set there is only one recorded
female talker (slt), and she stays in training; the test split holds out one
recorded male talker (festival ``ked``) and four espeak-ng variants (``f2``,
``f5``, ``m3``, ``m7``), so ``tt`` has held-out voices of both sexes, its
females being formant voices. ``--voices all`` also holds out MBROLA's ``us3``
(male) and ``de5``, ``sw2`` (female, accented English). ``print_voice_split``
prints the table; ``voices.json`` records it.

Text: the example sentences of WordNet (``wordnet-base``, the quoted strings
after ``|`` in ``/usr/share/wordnet/data.*``), two per utterance. The sentence
pool is split ~80/10/10 between tr/cv/tt by a hash of the sentence, so test
texts are unseen too.

Mixing, the wsj0-2mix way: two utterances of two different talkers (pairs:
female-male 50 %, female-female 25 %, male-male 25 %, where the split's pool
allows); leading/trailing silence trimmed, then a random 0.05-0.5 s of leading
silence; both cut to the shorter ('min' length); each scaled to unit power,
then to a relative level drawn uniformly in 0-5 dB (``+r/2`` and ``-r/2`` dB,
either one louder); the mixture set to an RMS level (-25 dBFS in tt, drawn
in -33..-18 dBFS in tr/cv) and scaled down if any peak would exceed 0.9.
``mix = s1 + s2`` exactly as written: the sources are quantised to 16 bits
and the mixture is their integer sum (``--format float32``: float32 sources
and their float32 sum), so reading the three files back gives
``mix == s1 + s2`` bit for bit.

Augmentation (``tr`` and ``cv`` only; ``tt`` is natural, engine defaults, to
measure on unaltered voices; ``--no-augment`` turns it off everywhere).
Models trained on this data are meant for *real* speech, whose pitch moves
more (0.32-0.39 semitones per 10 ms, 4.8-7.1 semitones SD) than any TTS
voice's, so every training utterance gets its own:

* speaking rate: log-uniform 0.8-1.25x, through the engine (espeak-ng ``-s``,
  flite ``duration_stretch``, festival ``Duration_Stretch`` or HTS ``-r``);
* pitch: -3..+3 semitones and an intonation range of 0.9-2.5x through the
  engine where it has controls (espeak-ng ``-p`` and SSML ``prosody range``;
  flite ``int_f0_target_mean/stddev`` for slt, awb, kal16; festival diphone
  ``int_lr_params``); festival's HTS slt and flite's rms only get the warps
  below;
* a vocal-tract-length-like warp: resampling by a log-uniform factor
  0.89-1.12 shifts formants and pitch together (a smaller or larger talker);
  the engine rate is pre-divided by the factor, so the speaking rate stays
  the one drawn above (tempo correction without a time-stretch algorithm);
* slow intonation "roughening": the same warp made time-varying by a smooth
  random contour (0.7-4 Hz, up to 1.2 semitones);
* spectral tilt: a first-order filter ``1 - c z^-1``, ``c`` in -0.3..0.3
  (microphone/channel colouration, about +-5 dB across the band);
* level: a slow gain envelope of up to 3 dB (0.2-1 Hz) on each source, and
  the random mixture level above.

Resumability. Settings are stored in ``DIR/.tts2mix.json`` first; raw engine
output goes to ``DIR/.tts2mix-work`` (deleted at the end); a split is written
to ``DIR/wav8k/min/.NAME.partial`` and renamed to ``NAME`` only when
complete; every file is written under a temporary name and renamed. Rerunning
the same command after an interruption continues where it stopped (mixture
``i`` of a split depends only on ``(seed, split, i)``, so the result is the
same as an uninterrupted build); a different command on a non-empty root is
refused.

Measured (2026-12-03, shared 2-core CPU under load from other jobs, free
voices, seed 0, ``--jobs 2``): a 300/20/40 build takes 127 s (74 s of CPU;
tr 115 s, cv 8 s, tt 3 s), 0.41 h of mixtures (mean 4.0-4.2 s), 70 MB.
Mixture SI-SDR against its sources: 0.0 dB. The oracle ideal ratio mask
``|S_i| / (|S_1| + |S_2|)`` (the 256-sample sqrt-Hann STFT of ``signal.py``,
hop 64, mixture phase) gains 10.7 dB SI-SDRi on ``tt`` (10th percentile 9.4;
female-female 9.9, mixed 11.4, male-male 9.8) and 12.1 dB on ``cv``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import dataclasses
import glob
import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence

import numpy as np

SAMPLE_RATE = 8000
WORK_RATE = 32000  # Warps are applied at 4x the output rate.
SPLITS = ("tr", "cv", "tt")
SPLIT_CODES = {"tr": 0, "cv": 1, "tt": 2}
FORMAT_VERSION = 1
MARKER = ".tts2mix.json"
WORK_DIR = ".tts2mix-work"
LAYOUT = pathlib.Path("wav8k", "min")

FREE_PACKAGES = (
  "espeak-ng",
  "festival",
  "festvox-kallpc16k",
  "festvox-kdlpc16k",
  "festvox-us-slt-hts",
  "flite",
  "wordnet-base",
)
APT_LINE = "apt-get install -y --no-install-recommends " + " ".join(
  FREE_PACKAGES
)
WORDNET_GLOB = "/usr/share/wordnet/data.*"
FESTIVAL_VOICE_DIRS = ("/usr/share/festival/voices", "/usr/lib/festival/voices")
MBROLA_DIRS = ("/usr/share/mbrola", "/usr/lib/mbrola")
FESTIVAL_BATCH = 24  # Utterances per festival process.
ESPEAK_WPM = 175  # espeak-ng's default rate.


class Tts2MixError(Exception):
  """A problem reported as one line, without a traceback."""


# ===========================================================================
# Voices.
# ===========================================================================


@dataclasses.dataclass(frozen=True)
class Voice:
  """One synthetic voice.

  Attributes:
    name: file-name-safe identifier, e.g. ``'flite-awb'``.
    engine: ``'festival'``, ``'flite'``, ``'espeak'`` (also MBROLA) or
      ``'pico'``.
    engine_voice: the engine's own voice name.
    talker: the person (or formant preset) behind the voice; voices of one
      talker are always in the same split.
    sex: ``'F'`` or ``'M'``.
    recorded: built from recordings of a person (else formant rules).
    split: ``'train'`` (used in tr and cv) or ``'test'`` (tt only).
    extra: ``False`` for Debian main, ``True`` for contrib/non-free voices
      (``--voices all`` only).
    f0: typical f0 in Hz where the engine takes an absolute pitch target;
      0 where pitch is not controllable through the engine.
  """

  name: str
  engine: str
  engine_voice: str
  talker: str
  sex: str
  recorded: bool
  split: str
  extra: bool = False
  f0: float = 0.0


def _espeak(variant: str, sex: str, split: str) -> Voice:
  return Voice(
    f"espeak-{variant}",
    "espeak",
    f"en-us+{variant}",
    f"espeak-{variant}",
    sex,
    False,
    split,
  )


def _mbrola(code: str, sex: str, split: str) -> Voice:
  return Voice(
    f"mbrola-{code}",
    "espeak",
    f"mb-{code}",
    f"mbrola-{code}",
    sex,
    True,
    split,
    extra=True,
  )


VOICES: tuple[Voice, ...] = (
  # Debian main: recorded talkers.
  Voice(
    "festival-slt",
    "festival",
    "cmu_us_slt_arctic_hts",
    "slt",
    "F",
    True,
    "train",
  ),
  Voice("flite-slt", "flite", "slt", "slt", "F", True, "train", f0=165.0),
  Voice(
    "festival-kal",
    "festival",
    "kal_diphone",
    "kal",
    "M",
    True,
    "train",
    f0=105.0,
  ),
  Voice("flite-kal16", "flite", "kal16", "kal", "M", True, "train", f0=105.0),
  Voice("flite-awb", "flite", "awb", "awb", "M", True, "train", f0=126.0),
  Voice("flite-rms", "flite", "rms", "rms", "M", True, "train"),
  Voice(
    "festival-ked",
    "festival",
    "ked_diphone",
    "ked",
    "M",
    True,
    "test",
    f0=105.0,
  ),
  # Debian main: espeak-ng formant variants.
  *(_espeak(v, "F", "train") for v in ("f1", "f3", "f4", "Annie", "steph")),
  *(_espeak(v, "M", "train") for v in ("m1", "m2", "m4", "m6", "Andy")),
  *(_espeak(v, "F", "test") for v in ("f2", "f5")),
  *(_espeak(v, "M", "test") for v in ("m3", "m7")),
  # contrib / non-free (``--voices all``, when installed).
  *(_mbrola(c, "F", "train") for c in ("us1", "de1", "fr4")),
  *(_mbrola(c, "M", "train") for c in ("us2", "en1", "de2")),
  _mbrola("us3", "M", "test"),
  *(_mbrola(c, "F", "test") for c in ("de5", "sw2")),
  Voice("pico-en-US", "pico", "en-US", "pico", "F", True, "train", extra=True),
  Voice("pico-en-GB", "pico", "en-GB", "pico", "F", True, "train", extra=True),
)

_FESTIVAL_PACKAGES = {
  "cmu_us_slt_arctic_hts": "festvox-us-slt-hts",
  "kal_diphone": "festvox-kallpc16k",
  "ked_diphone": "festvox-kdlpc16k",
}


def _festival_voice_installed(engine_voice: str) -> bool:
  for base in FESTIVAL_VOICE_DIRS:
    if glob.glob(os.path.join(base, "*", engine_voice)):
      return True
  return False


def _mbrola_installed(code: str) -> bool:
  return any(os.path.exists(os.path.join(d, code)) for d in MBROLA_DIRS)


def missing_requirements(
  which: Callable[[str], str | None] | None = None,
) -> list[str]:
  """What of the free set is missing (commands, festival voices, WordNet).

  Args:
    which: ``shutil.which``-like lookup (defaults to ``shutil.which``, looked
      up at call time so that tests may monkeypatch it).

  Returns:
    Human-readable names of the missing parts, empty when all is there.
  """
  which = which or shutil.which
  missing = [
    cmd for cmd in ("espeak-ng", "festival", "flite") if which(cmd) is None
  ]
  if "festival" not in missing:
    for engine_voice, package in _FESTIVAL_PACKAGES.items():
      if not _festival_voice_installed(engine_voice):
        missing.append(f"festival voice {engine_voice} ({package})")
  if not glob.glob(WORDNET_GLOB):
    missing.append("WordNet example sentences (wordnet-base)")
  return missing


def available_voices(
  mode: str, which: Callable[[str], str | None] | None = None
) -> list[Voice]:
  """The voices of ``VOICES`` usable with ``--voices mode`` on this machine."""
  which = which or shutil.which
  voices = [v for v in VOICES if not v.extra]
  if mode == "all":
    has_mbrola = which("mbrola") is not None and which("espeak-ng")
    for v in VOICES:
      if not v.extra:
        continue
      if v.engine == "pico" and which("pico2wave") is not None:
        voices.append(v)
      elif (
        v.engine == "espeak"
        and has_mbrola
        and _mbrola_installed(v.engine_voice[3:])
      ):
        voices.append(v)
  return voices


def print_voice_split(voices: Sequence[Voice], file=sys.stdout) -> None:
  """Prints which voices (and talkers) go to tr/cv and which to tt."""
  for split, title in (("train", "tr/cv"), ("test", "tt")):
    pool = [v for v in voices if v.split == split]
    talkers = {v.talker for v in pool}
    print(
      f"{title} voices ({len(pool)} voices, {len(talkers)} talkers):", file=file
    )
    for sex in ("F", "M"):
      names = [
        f"{v.name}{'*' if v.recorded else ''}" for v in pool if v.sex == sex
      ]
      print(f"  {sex}: {', '.join(names) or '-'}", file=file)
  print(
    "  (* = built from recordings of a person; the others are formant rules)",
    file=file,
  )


def engine_versions(voices: Sequence[Voice]) -> dict[str, str]:
  """Versions of the engines and packages in use (best effort)."""
  versions = {}
  commands = {
    "espeak-ng": ["espeak-ng", "--version"],
    "festival": ["festival", "--version"],
    "flite": ["flite", "--version"],
  }
  for name, cmd in commands.items():
    try:
      out = subprocess.run(
        cmd, capture_output=True, text=True, timeout=10, check=False
      )
      text = (out.stdout + out.stderr).strip().splitlines()
      versions[name] = next(
        (
          t.strip()
          for t in text
          if "ersion" in t or "Speech" in t or "eSpeak" in t
        ),
        text[0] if text else "?",
      )
    except (OSError, subprocess.SubprocessError):
      versions[name] = "?"
  packages: list[str] = list(FREE_PACKAGES)
  if any(v.engine == "pico" for v in voices):
    packages.append("libttspico-utils")
  packages += [
    f"mbrola-{v.engine_voice[3:]}"
    for v in voices
    if v.engine_voice.startswith("mb-")
  ]
  if shutil.which("dpkg-query"):
    out = subprocess.run(
      ["dpkg-query", "-W", "-f", "${Package} ${Version}\n", *packages],
      capture_output=True,
      text=True,
      check=False,
    )
    for line in out.stdout.splitlines():
      if " " in line:
        package, version = line.split(" ", 1)
        versions[f"package {package}"] = version
  return versions


# ===========================================================================
# Text.
# ===========================================================================

_QUOTED = re.compile(r'"([^"]+)"')
_UNSAFE = re.compile(r"[^A-Za-z0-9 ,.;:'!?-]+")


def _clean_sentence(text: str) -> str | None:
  """A sentence safe to pass to every engine, or None to drop it."""
  text = _UNSAFE.sub(" ", text)
  text = " ".join(text.split()).strip(" ,;:-'")
  if not text or not text[0].isalnum():
    return None
  words = text.split()
  if not 4 <= len(words) <= 30:
    return None
  if text[-1] not in ".!?":
    text += "."
  return text


def load_sentences(pattern: str = WORDNET_GLOB) -> dict[str, list[str]]:
  """WordNet example sentences, split ~80/10/10 into tr/cv/tt by a hash.

  Returns:
    ``{'tr': [...], 'cv': [...], 'tt': [...]}``, each sorted and unique.
  """
  sentences = set()
  for path in sorted(glob.glob(pattern)):
    if path.endswith(".pl"):
      continue
    with open(path, encoding="latin-1") as f:
      for line in f:
        if line.startswith(" ") or "|" not in line:
          continue
        for quoted in _QUOTED.findall(line.split("|", 1)[1]):
          clean = _clean_sentence(quoted)
          if clean:
            sentences.add(clean)
  pools = {s: [] for s in SPLITS}
  for sentence in sorted(sentences):
    bucket = zlib.crc32(sentence.lower().encode()) % 10
    pools["tt" if bucket == 0 else "cv" if bucket == 1 else "tr"].append(
      sentence
    )
  return pools


# ===========================================================================
# Plans: everything random is drawn here, from (seed, split, index).
# ===========================================================================


@dataclasses.dataclass(frozen=True)
class Augmentation:
  """Ranges of the per-utterance variations (see the module docstring)."""

  rate: tuple[float, float] = (0.8, 1.25)  # Log-uniform, net speaking rate.
  pitch_semitones: tuple[float, float] = (-3.0, 3.0)  # Through the engine.
  pitch_range: tuple[float, float] = (0.9, 2.5)  # Log-uniform intonation.
  warp: tuple[float, float] = (0.89, 1.12)  # Log-uniform VTL-like warp.
  wobble_semitones: tuple[float, float] = (0.0, 1.2)  # Time-varying warp.
  wobble_hz: tuple[float, float] = (0.7, 4.0)
  tilt: tuple[float, float] = (-0.3, 0.3)  # 1 - c z^-1.
  gain_envelope_db: tuple[float, float] = (0.0, 3.0)
  gain_envelope_hz: tuple[float, float] = (0.2, 1.0)
  mix_level_dbfs: tuple[float, float] = (-33.0, -18.0)


TEST_MIX_LEVEL_DBFS = -25.0
LEAD_SILENCE_S = (0.05, 0.5)
MAX_RELATIVE_LEVEL_DB = 5.0
PEAK = 0.9


@dataclasses.dataclass(frozen=True)
class SourcePlan:
  """One source of a mixture: what to synthesise and how to alter it."""

  uid: str  # Raw file name (without .wav) in the work directory.
  voice: str
  text: str
  engine_rate: float = 1.0  # Speed factor asked of the engine.
  pitch_semitones: float = 0.0
  pitch_range: float = 1.0
  warp: float = 1.0
  wobble_semitones: float = 0.0
  wobble_seed: int = 0
  tilt: float = 0.0
  gain_envelope_db: float = 0.0
  lead_silence_s: float = 0.2


@dataclasses.dataclass(frozen=True)
class MixturePlan:
  """One mixture: two sources, the relative level and the mixture level."""

  split: str
  index: int
  sources: tuple[SourcePlan, SourcePlan]
  level_db: tuple[float, float]  # +-r/2 dB, r in [0, 5].
  mix_level_dbfs: float

  @property
  def name(self) -> str:
    (a, b), (da, db) = self.sources, self.level_db
    return f"{self.index:05d}_{a.voice}_{da:.4f}_{b.voice}_{db:.4f}"


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
  return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _pick_talkers(
  rng: np.random.Generator, pool: Sequence[Voice]
) -> tuple[Voice, Voice]:
  """Two voices of two different talkers: F-M 50 %, F-F 25 %, M-M 25 %."""
  by_sex = {s: sorted({v.talker for v in pool if v.sex == s}) for s in "FM"}
  pairs = [("F", "M"), ("F", "F"), ("M", "M")]
  weights = np.array([0.5, 0.25, 0.25])
  possible = np.array(
    [
      len(by_sex[a]) >= (2 if a == b else 1) and len(by_sex[b]) >= 1
      for a, b in pairs
    ]
  )
  weights = weights * possible
  sexes = pairs[rng.choice(3, p=weights / weights.sum())]
  chosen = []
  for sex in sexes:
    candidates = [t for t in by_sex[sex] if t not in {v.talker for v in chosen}]
    recorded = [
      t for t in candidates if any(v.recorded for v in pool if v.talker == t)
    ]
    formant = [t for t in candidates if t not in recorded]
    # Recorded talkers are rarer but closer to real speech: favour them.
    if recorded and formant:
      group = recorded if rng.random() < 0.6 else formant
    else:
      group = recorded or formant
    talker = group[rng.integers(len(group))]
    voices = [v for v in pool if v.talker == talker]
    chosen.append(voices[rng.integers(len(voices))])
  if rng.random() < 0.5:
    chosen.reverse()
  return chosen[0], chosen[1]


def _pick_text(rng: np.random.Generator, sentences: Sequence[str]) -> str:
  a, b = rng.choice(len(sentences), size=2, replace=False)
  return f"{sentences[a]} {sentences[b]}"


def plan_mixture(
  split: str,
  index: int,
  seed: int,
  voices: Sequence[Voice],
  sentences: dict[str, list[str]],
  augmentation: Augmentation | None,
) -> MixturePlan:
  """The plan of mixture ``index`` of ``split``; depends on nothing else.

  Args:
    split: ``'tr'``, ``'cv'`` or ``'tt'``.
    index: mixture number in the split.
    seed: the build's seed.
    voices: available voices (both splits; the split's own are used).
    sentences: ``load_sentences()``.
    augmentation: ranges for tr/cv, or None for natural voices (tt is never
      augmented).
  """
  rng = np.random.default_rng([seed, SPLIT_CODES[split], index])
  pool = [
    v for v in voices if v.split == ("test" if split == "tt" else "train")
  ]
  pair = _pick_talkers(rng, pool)
  aug = augmentation if split != "tt" else None
  sources = []
  for k, voice in enumerate(pair):
    text = _pick_text(rng, sentences[split])
    lead = float(rng.uniform(*LEAD_SILENCE_S))
    natural = SourcePlan(
      uid=f"{split}_{index:05d}_{k}",
      voice=voice.name,
      text=text,
      lead_silence_s=lead,
    )
    if aug is None:
      sources.append(natural)
      continue
    rate = _log_uniform(rng, *aug.rate)
    warp = _log_uniform(rng, *aug.warp)
    sources.append(
      dataclasses.replace(
        natural,
        engine_rate=rate / warp,
        pitch_semitones=float(rng.uniform(*aug.pitch_semitones)),
        pitch_range=_log_uniform(rng, *aug.pitch_range),
        warp=warp,
        wobble_semitones=float(rng.uniform(*aug.wobble_semitones)),
        wobble_seed=int(rng.integers(2**31)),
        tilt=float(rng.uniform(*aug.tilt)),
        gain_envelope_db=float(rng.uniform(*aug.gain_envelope_db)),
      )
    )
  relative = float(rng.uniform(0.0, MAX_RELATIVE_LEVEL_DB))
  sign = 1.0 if rng.random() < 0.5 else -1.0
  level = (
    TEST_MIX_LEVEL_DBFS
    if aug is None
    else float(rng.uniform(*aug.mix_level_dbfs))
  )
  return MixturePlan(
    split,
    index,
    (sources[0], sources[1]),
    (sign * relative / 2, -sign * relative / 2),
    level,
  )


# ===========================================================================
# Synthesis (external programs).
# ===========================================================================


def _run(
  cmd: Sequence[str], what: str, timeout: float = 600.0, cwd: str | None = None
) -> None:
  try:
    out = subprocess.run(
      list(cmd),
      capture_output=True,
      text=True,
      timeout=timeout,
      check=False,
      cwd=cwd,
      stdin=subprocess.DEVNULL,
    )
  except subprocess.TimeoutExpired:
    raise Tts2MixError(f"{what}: {cmd[0]} timed out") from None
  except OSError as e:
    raise Tts2MixError(f"{what}: cannot run {cmd[0]}: {e.strerror}") from None
  if out.returncode != 0:
    tail = " ".join((out.stderr or out.stdout).split())[-300:]
    raise Tts2MixError(f"{what}: {cmd[0]} exited with {out.returncode}: {tail}")


def _check_written(path: pathlib.Path, what: str) -> None:
  if not path.exists() or path.stat().st_size <= 44:
    raise Tts2MixError(f"{what}: the engine wrote no audio to {path}")


def _festival_lines(
  src: SourcePlan, voice: Voice, out: pathlib.Path
) -> list[str]:
  lines = []
  natural = (
    src.engine_rate == 1.0
    and src.pitch_semitones == 0.0
    and src.pitch_range == 1.0
  )
  if natural:
    pass  # The voice's own settings.
  elif voice.engine_voice.endswith("_hts"):
    lines.append(
      "(set! hts_engine_params (append "
      f"{voice.engine_voice}::hts_engine_params "
      f'\'(("-r" {src.engine_rate:.4f}))))'
    )
  else:
    # Diphone voices: the voice default stretch is 1.1.
    lines.append(
      f"(Parameter.set 'Duration_Stretch {1.1 / src.engine_rate:.4f})"
    )
    mean = voice.f0 * 2 ** (src.pitch_semitones / 12)
    std = 0.14 * mean * src.pitch_range
    lines.append(
      f"(set! int_lr_params '((target_f0_mean {mean:.2f}) "
      f"(target_f0_std {std:.2f}) (model_f0_mean 170) "
      "(model_f0_std 34)))"
    )
  text = src.text.replace("\\", " ").replace('"', " ")
  lines.append(
    f'(utt.save.wave (utt.synth (Utterance Text "{text}")) "{out}" \'riff)'
  )
  return lines


def synthesise_festival(
  sources: Sequence[SourcePlan], voice: Voice, raw_dir: pathlib.Path
) -> None:
  """Synthesises utterances of one festival voice in one process."""
  lines = []
  parts = []
  for src in sources:
    part = raw_dir / f"{src.uid}.part.wav"
    parts.append(part)
    lines.append(f"(voice_{voice.engine_voice})")  # Resets the parameters.
    lines.extend(_festival_lines(src, voice, part))
  with tempfile.NamedTemporaryFile(
    "w", suffix=".scm", dir=raw_dir, delete=False
  ) as f:
    f.write("\n".join(lines) + "\n")
    script = f.name
  try:
    _run(["festival", "-b", script], f"festival {voice.engine_voice}")
  finally:
    os.unlink(script)
  for src, part in zip(sources, parts, strict=True):
    _check_written(part, f"festival {voice.engine_voice} {src.uid}")
    os.replace(part, raw_dir / f"{src.uid}.wav")


def synthesise_one(
  src: SourcePlan, voice: Voice, raw_dir: pathlib.Path
) -> None:
  """Synthesises one utterance with flite, espeak-ng or pico2wave."""
  part = raw_dir / f"{src.uid}.part.wav"
  if voice.engine == "flite":
    cmd = ["flite", "-voice", voice.engine_voice]
    if src.engine_rate != 1.0:
      cmd += ["--setf", f"duration_stretch={1.0 / src.engine_rate:.4f}"]
    if voice.f0 and (src.pitch_semitones != 0.0 or src.pitch_range != 1.0):
      mean = voice.f0 * 2 ** (src.pitch_semitones / 12)
      cmd += ["--setf", f"int_f0_target_mean={mean:.2f}"]
      if src.pitch_range != 1.0:
        cmd += [
          "--setf",
          f"int_f0_target_stddev={0.14 * mean * src.pitch_range:.2f}",
        ]
    cmd += ["-t", src.text, "-o", str(part)]
  elif voice.engine == "espeak":
    speed = int(round(min(max(ESPEAK_WPM * src.engine_rate, 80), 450)))
    pitch = int(round(min(max(50 + 6 * src.pitch_semitones, 0), 99)))
    cmd = [
      "espeak-ng",
      "-v",
      voice.engine_voice,
      "-s",
      str(speed),
      "-p",
      str(pitch),
      "-w",
      str(part),
    ]
    if src.pitch_range != 1.0:
      cmd += [
        "-m",
        f'<speak><prosody range="{100 * src.pitch_range:.0f}%">'
        f"{src.text}</prosody></speak>",
      ]
    else:
      cmd.append(src.text)
  elif voice.engine == "pico":
    cmd = ["pico2wave", "-l", voice.engine_voice, "-w", str(part), src.text]
  else:
    raise ValueError(f"not a single-utterance engine: {voice.engine}")
  what = f"{voice.name} {src.uid}"
  _run(cmd, what, timeout=120.0)
  _check_written(part, what)
  os.replace(part, raw_dir / f"{src.uid}.wav")


# ===========================================================================
# Signal processing (numpy / scipy).
# ===========================================================================


def _smooth_contour(
  rng: np.random.Generator,
  times: np.ndarray,
  hz: tuple[float, float],
  num: int = 3,
) -> np.ndarray:
  """A smooth random contour in [-1, 1]: a few slow sinusoids.

  Evaluated on a 200 Hz grid and interpolated (the contour is below 5 Hz).
  """
  freqs = rng.uniform(*hz, size=num)
  phases = rng.uniform(0, 2 * np.pi, size=num)
  amps = rng.uniform(0.5, 1.0, size=num)
  coarse = np.arange(0.0, times[-1] + 0.01, 0.005) if len(times) else times
  contour = (
    amps[:, None]
    * np.sin(2 * np.pi * freqs[:, None] * coarse[None] + phases[:, None])
  ).sum(0)
  return np.interp(times, coarse, contour / amps.sum())


def trim_silence(
  x: np.ndarray, sr: int, threshold_db: float = -40.0, margin_s: float = 0.02
) -> np.ndarray:
  """Cuts leading and trailing parts quieter than ``threshold_db`` re peak."""
  hop = max(sr // 100, 1)
  n = len(x) // hop
  if n == 0:
    return x
  energy = (x[: n * hop].reshape(n, hop) ** 2).mean(1)
  active = np.flatnonzero(energy > energy.max() * 10 ** (threshold_db / 10))
  if active.size == 0:
    return x[:0]
  margin = int(margin_s * sr)
  start = max(active[0] * hop - margin, 0)
  stop = min((active[-1] + 1) * hop + margin, len(x))
  return x[start:stop]


def render_source(
  x: np.ndarray,
  sr: int,
  src: SourcePlan,
  augmentation: Augmentation | None = None,
) -> np.ndarray:
  """Raw engine output -> 8 kHz float64 source, with the planned alterations.

  Args:
    x: mono waveform at ``sr``.
    sr: its sample rate.
    src: the plan (warp, wobble, tilt, gain envelope, leading silence).
    augmentation: ranges of the contours' frequencies (defaults).

  Returns:
    The 8 kHz source, float64.
  """
  import scipy.signal  # pylint: disable=import-outside-toplevel

  aug = augmentation or Augmentation()
  x = trim_silence(np.asarray(x, np.float64), sr)
  if len(x) == 0:
    raise Tts2MixError(f"{src.uid} ({src.voice}): the engine produced silence")
  rng = np.random.default_rng(src.wobble_seed)
  if src.warp != 1.0 or src.wobble_semitones > 0.0:
    g = math.gcd(WORK_RATE, sr)
    y = scipy.signal.resample_poly(x, WORK_RATE // g, sr // g)
    # Output sample n reads input position phi[n]; d phi / dn is the warp
    # factor times the (smooth) wobble, so pitch and formants move together.
    bound = int(len(y) / (src.warp * 2 ** (-src.wobble_semitones / 12))) + 2
    times = np.arange(bound) / WORK_RATE
    semis = src.wobble_semitones * _smooth_contour(rng, times, aug.wobble_hz)
    speed = src.warp * 2 ** (semis / 12)
    phi = np.concatenate([[0.0], np.cumsum(speed[:-1])])
    phi = phi[phi <= len(y) - 1]
    y = np.interp(phi, np.arange(len(y)), y)
    y = scipy.signal.resample_poly(y, 1, WORK_RATE // SAMPLE_RATE)
  else:
    g = math.gcd(SAMPLE_RATE, sr)
    y = scipy.signal.resample_poly(x, SAMPLE_RATE // g, sr // g)
  if src.tilt:
    y = scipy.signal.lfilter([1.0, -src.tilt], [1.0], y)
  if src.gain_envelope_db > 0.0:
    times = np.arange(len(y)) / SAMPLE_RATE
    db = src.gain_envelope_db * _smooth_contour(
      rng, times, aug.gain_envelope_hz, 2
    )
    y = y * 10 ** (db / 20)
  lead = np.zeros(int(round(src.lead_silence_s * SAMPLE_RATE)))
  return np.concatenate([lead, y])


def read_audio(path: pathlib.Path) -> tuple[np.ndarray, int]:
  """Mono float64 audio and its rate."""
  import soundfile as sf  # pylint: disable=import-outside-toplevel

  x, sr = sf.read(str(path), dtype="float64", always_2d=True)
  return x.mean(1), int(sr)


def mix_sources(
  s1: np.ndarray,
  s2: np.ndarray,
  level_db: Sequence[float],
  mix_level_dbfs: float,
  fmt: str = "pcm16",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """wsj0-2mix mixing: 'min' length, relative level, exact ``mix = s1 + s2``.

  Args:
    s1, s2: the two sources (float).
    level_db: gains in dB applied after power normalisation, e.g. ``(+r/2,
      -r/2)``.
    mix_level_dbfs: RMS level of the mixture (before peak limiting).
    fmt: ``'pcm16'`` (int16 arrays; mix is the integer sum) or ``'float32'``.

  Returns:
    ``(s1, s2, mix)`` ready to write, int16 or float32.
  """
  n = min(len(s1), len(s2))
  sources = np.stack([s1[:n], s2[:n]]).astype(np.float64)
  power = (sources**2).mean(1, keepdims=True)
  if np.any(power <= 0):
    raise Tts2MixError("a source is silent over the mixture")
  sources = sources / np.sqrt(power)
  sources = sources * 10 ** (np.asarray(level_db, np.float64)[:, None] / 20)
  mix = sources.sum(0)
  scale = 10 ** (mix_level_dbfs / 20) / np.sqrt((mix**2).mean())
  peak = scale * max(np.abs(sources).max(), np.abs(mix).max())
  if peak > PEAK:
    scale *= PEAK / peak
  sources = sources * scale
  if fmt == "pcm16":
    q = np.round(sources * 32768).astype(np.int32)
    total = q.sum(0)
    if np.abs(total).max() > 32767 or np.abs(q).max() > 32767:
      raise AssertionError("peak limiting failed")  # Cannot happen.
    return (
      q[0].astype(np.int16),
      q[1].astype(np.int16),
      total.astype(np.int16),
    )
  if fmt == "float32":
    f = sources.astype(np.float32)
    return f[0], f[1], f[0] + f[1]
  raise ValueError(f"unknown format {fmt!r}")


def write_wav(path: pathlib.Path, audio: np.ndarray) -> None:
  """Writes ``audio`` (int16 or float32) at 8 kHz, atomically."""
  import soundfile as sf  # pylint: disable=import-outside-toplevel

  subtype = "PCM_16" if audio.dtype == np.int16 else "FLOAT"
  tmp = path.with_name(path.name + ".tmp")
  sf.write(str(tmp), audio, SAMPLE_RATE, subtype=subtype, format="WAV")
  os.replace(tmp, path)


def make_mixture(
  plan: MixturePlan, raw_dir: pathlib.Path, split_dir: pathlib.Path, fmt: str
) -> int:
  """Renders, mixes and writes one mixture; returns its length in samples."""
  rendered = []
  for src in plan.sources:
    x, sr = read_audio(raw_dir / f"{src.uid}.wav")
    rendered.append(render_source(x, sr, src))
  s1, s2, mix = mix_sources(
    rendered[0], rendered[1], plan.level_db, plan.mix_level_dbfs, fmt
  )
  name = plan.name + ".wav"
  # Sources first, mixture last: a mixture present means a complete one.
  write_wav(split_dir / "s1" / name, s1)
  write_wav(split_dir / "s2" / name, s2)
  write_wav(split_dir / "mix" / name, mix)
  return len(mix)


# ===========================================================================
# The build.
# ===========================================================================


@dataclasses.dataclass(frozen=True)
class Settings:
  """Everything that determines the output (stored in ``MARKER``)."""

  seed: int
  counts: tuple[int, int, int]
  voices: str
  voice_names: tuple[str, ...]
  format: str
  augment: bool
  format_version: int = FORMAT_VERSION

  def to_json(self) -> dict:
    """As stored in ``MARKER`` (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(self)))


def _describe_difference(old: dict, new: dict) -> str:
  flags = {
    "seed": "--seed",
    "voices": "--voices",
    "format": "--format",
    "augment": "--no-augment",
    "voice_names": "installed voices",
    "format_version": "tts2mix version",
  }
  differences = []
  for key, value in new.items():
    if key == "counts":
      for flag, a, b in zip(
        ("--num-train", "--num-valid", "--num-test"),
        old.get("counts", []),
        value,
        strict=False,
      ):
        if a != b:
          differences.append(f"{flag} {a} (not {b})")
      continue
    if old.get(key) != value:
      differences.append(
        f"{flags.get(key, key)} {old.get(key)!r} (not {value!r})"
      )
  return ", ".join(differences) or "different settings"


def _progress(total: int, desc: str, enabled: bool):
  try:
    from tqdm import tqdm  # pylint: disable=import-outside-toplevel
  except ImportError:
    tqdm = None
  if tqdm is None or not enabled:

    class _Null:
      def update(self, n=1):
        del n

      def close(self):
        pass

    return _Null()
  return tqdm(
    total=total,
    desc=desc,
    unit="utt" if "synth" in desc else "mix",
    dynamic_ncols=True,
    leave=False,
  )


def _run_pool(
  tasks: Sequence[tuple[Callable[[], object], int]],
  jobs: int,
  desc: str,
  progress: bool,
) -> list:
  """Runs ``(function, weight)`` tasks on ``jobs`` threads with a bar."""
  bar = _progress(sum(w for _, w in tasks), desc, progress)
  results = []
  pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs)
  try:
    futures = {pool.submit(fn): w for fn, w in tasks}
    for future in concurrent.futures.as_completed(futures):
      results.append(future.result())
      bar.update(futures[future])
  except BaseException:
    pool.shutdown(wait=True, cancel_futures=True)
    raise
  finally:
    bar.close()
  pool.shutdown(wait=True)
  return results


def build_split(
  split: str,
  plans: Sequence[MixturePlan],
  voices: dict[str, Voice],
  root: pathlib.Path,
  fmt: str,
  jobs: int,
  progress: bool,
) -> None:
  """Synthesises and mixes one split into ``.SPLIT.partial``, then renames."""
  final = root / LAYOUT / split
  if final.is_dir():
    return
  partial = root / LAYOUT / f".{split}.partial"
  raw_dir = root / WORK_DIR / split
  for folder in ("mix", "s1", "s2"):
    (partial / folder).mkdir(parents=True, exist_ok=True)
  raw_dir.mkdir(parents=True, exist_ok=True)
  todo = [
    p
    for p in plans
    if not all(
      (partial / f / f"{p.name}.wav").exists() for f in ("s1", "s2", "mix")
    )
  ]
  needed = [
    s
    for p in todo
    for s in p.sources
    if not (raw_dir / f"{s.uid}.wav").exists()
  ]
  # Festival: one process per batch of one voice (voice loading is slow).
  tasks = []
  by_voice: dict[str, list[SourcePlan]] = {}
  for src in needed:
    if voices[src.voice].engine == "festival":
      by_voice.setdefault(src.voice, []).append(src)
    else:
      tasks.append(
        ((lambda s=src: synthesise_one(s, voices[s.voice], raw_dir)), 1)
      )
  festival_tasks = []
  for name, group in sorted(by_voice.items()):
    for i in range(0, len(group), FESTIVAL_BATCH):
      batch = group[i : i + FESTIVAL_BATCH]
      festival_tasks.append(
        (
          (lambda b=batch, v=voices[name]: synthesise_festival(b, v, raw_dir)),
          len(batch),
        )
      )
  # Longest tasks first balances the workers.
  tasks = festival_tasks + tasks
  if tasks:
    _run_pool(tasks, jobs, f"synth {split}", progress)
  if todo:
    _run_pool(
      [((lambda p=p: make_mixture(p, raw_dir, partial, fmt)), 1) for p in todo],
      jobs,
      f"mix {split}",
      progress,
    )
  for folder in ("mix", "s1", "s2"):
    for stale in (partial / folder).glob("*.tmp"):
      stale.unlink()
  os.replace(partial, final)
  shutil.rmtree(raw_dir, ignore_errors=True)


def _mixture_rows(
  plans: Sequence[MixturePlan], voices: dict[str, Voice], root: pathlib.Path
) -> list[dict]:
  import soundfile as sf  # pylint: disable=import-outside-toplevel

  rows = []
  for p in plans:
    length = sf.info(
      str(root / LAYOUT / p.split / "mix" / f"{p.name}.wav")
    ).frames
    row = {
      "split": p.split,
      "name": p.name,
      "samples": length,
      "mix_level_dbfs": round(p.mix_level_dbfs, 2),
    }
    pairs = zip(p.sources, p.level_db, strict=True)
    for k, (src, level) in enumerate(pairs, start=1):
      v = voices[src.voice]
      row.update(
        {
          f"s{k}_voice": v.name,
          f"s{k}_talker": v.talker,
          f"s{k}_sex": v.sex,
          f"s{k}_recorded": int(v.recorded),
          f"s{k}_level_db": round(level, 4),
          f"s{k}_rate": round(src.engine_rate * src.warp, 4),
          f"s{k}_pitch_semitones": round(src.pitch_semitones, 3),
          f"s{k}_pitch_range": round(src.pitch_range, 3),
          f"s{k}_warp": round(src.warp, 4),
          f"s{k}_wobble_semitones": round(src.wobble_semitones, 3),
          f"s{k}_tilt": round(src.tilt, 3),
          f"s{k}_gain_envelope_db": round(src.gain_envelope_db, 3),
          f"s{k}_text": src.text,
        }
      )
    rows.append(row)
  return rows


def _voice_json(v: Voice) -> dict:
  return {
    "name": v.name,
    "engine": v.engine,
    "engine_voice": v.engine_voice,
    "talker": v.talker,
    "sex": v.sex,
    "recorded": v.recorded,
    "non_free": v.extra,
  }


_README = """\
tts2mix: two-talker mixtures of Debian text-to-speech voices
============================================================

Made by `python -m examples.separation.tts2mix {args}`
(autoclip-optax, examples/separation/tts2mix.py) on {date}.

Layout (wsj0-2mix): wav8k/min/{{tr,cv,tt}}/{{mix,s1,s2}}/NAME.wav, 8 kHz mono
{fmt}; the same NAME in mix, s1 and s2, and mix == s1 + s2 exactly.
Mixtures: tr {n_tr}, cv {n_cv}, tt {n_tt} ({hours:.2f} h of mixtures).
Seed {seed}; voices '{voices}'.

Mixing: two talkers per mixture, 'min' length, relative level uniform in
0-5 dB, either source louder (the NAME holds each source's voice and gain in
dB). Voices of tt are never used in tr/cv (see voices.json); tr/cv sources are
{augment}; tt sources are not altered.

Text: WordNet example sentences (wordnet-base), two per utterance; the
sentence pool is split between tr/cv/tt, so test texts are unseen.

Per-mixture details: mixtures.csv. Voice split, versions: voices.json.
Train: python -m examples.separation.train --data wsj0-2mix --data-root DIR
"""


def write_metadata(
  root: pathlib.Path,
  settings: Settings,
  voices: Sequence[Voice],
  plans: dict[str, list[MixturePlan]],
  seconds: float,
  argv: Sequence[str],
) -> None:
  """Writes ``voices.json``, ``mixtures.csv`` and ``README.txt``."""
  by_name = {v.name: v for v in voices}
  rows = []
  for split in SPLITS:
    rows += _mixture_rows(plans[split], by_name, root)
  usage: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
  for row in rows:
    for k in ("s1_voice", "s2_voice"):
      usage[row["split"]][row[k]] = usage[row["split"]].get(row[k], 0) + 1
  hours = sum(r["samples"] for r in rows) / SAMPLE_RATE / 3600
  info = {
    "tool": "examples.separation.tts2mix",
    "format_version": FORMAT_VERSION,
    "seed": settings.seed,
    "voices": settings.voices,
    "counts": dict(zip(SPLITS, settings.counts, strict=True)),
    "sample_rate": SAMPLE_RATE,
    "subtype": "PCM_16" if settings.format == "pcm16" else "FLOAT",
    "layout": "wav8k/min/{tr,cv,tt}/{mix,s1,s2}/NAME.wav",
    "split": {
      "tr_cv": [_voice_json(v) for v in voices if v.split == "train"],
      "tt": [_voice_json(v) for v in voices if v.split == "test"],
    },
    "talkers": {
      "tr_cv": sorted({v.talker for v in voices if v.split == "train"}),
      "tt": sorted({v.talker for v in voices if v.split == "test"}),
    },
    "voice_usage": usage,
    "augmentation": (
      {"splits": ["tr", "cv"], **dataclasses.asdict(Augmentation())}
      if settings.augment
      else None
    ),
    "mixing": {
      "relative_level_db": [0.0, MAX_RELATIVE_LEVEL_DB],
      "length": "min",
      "tt_mix_level_dbfs": TEST_MIX_LEVEL_DBFS,
      "lead_silence_s": list(LEAD_SILENCE_S),
      "peak": PEAK,
    },
    "engines": engine_versions(voices),
    "hours": round(hours, 4),
    "build_seconds": round(seconds, 1),
  }
  tmp = root / "voices.json.tmp"
  tmp.write_text(json.dumps(info, indent=2) + "\n")
  os.replace(tmp, root / "voices.json")
  tmp = root / "mixtures.csv.tmp"
  with open(tmp, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  os.replace(tmp, root / "mixtures.csv")
  readme = _README.format(
    args=" ".join(argv),
    date=time.strftime("%Y-%m-%d"),
    fmt="16-bit PCM" if settings.format == "pcm16" else "32-bit float",
    n_tr=settings.counts[0],
    n_cv=settings.counts[1],
    n_tt=settings.counts[2],
    hours=hours,
    seed=settings.seed,
    voices=settings.voices,
    augment=(
      "varied per utterance (rate, pitch, vocal-tract warp, "
      "intonation, tilt, level)"
      if settings.augment
      else "not altered"
    ),
  )
  (root / "README.txt").write_text(readme)


# ===========================================================================
# Command line.
# ===========================================================================


class _Parser(argparse.ArgumentParser):
  """argparse with one-line errors (``tts2mix: error: ...``)."""

  def error(self, message: str):
    self.exit(2, f"tts2mix: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
  parser = _Parser(
    prog="python -m examples.separation.tts2mix",
    description="Build a wsj0-2mix-style two-talker data set from "
    "Debian's text-to-speech voices.",
  )
  add = parser.add_argument
  add(
    "--root",
    required=True,
    help="output directory (new, empty, or a "
    "previous tts2mix build with the same settings to resume)",
  )
  add("--num-train", type=int, default=300, help="tr mixtures (300)")
  add("--num-valid", type=int, default=20, help="cv mixtures (20)")
  add("--num-test", type=int, default=40, help="tt mixtures (40)")
  add(
    "--voices",
    default="free",
    choices=("free", "all"),
    help="'free': Debian main only (default); 'all': also MBROLA / pico "
    "voices when installed",
  )
  add("--seed", type=int, default=0)
  add("--jobs", type=int, default=2, help="parallel synthesis jobs (2)")
  add(
    "--format",
    default="pcm16",
    choices=("pcm16", "float32"),
    help="wav sample format (pcm16)",
  )
  add(
    "--no-augment",
    action="store_true",
    help="no per-utterance variation in tr/cv either",
  )
  add("--no-progress", action="store_true", help="no progress bars")
  return parser


def _check_root_path(root: pathlib.Path) -> bool:
  """Checks ``--root`` before anything else; True if it holds a build."""
  if root.exists() and not root.is_dir():
    raise ValueError(f"--root {str(root)!r} exists and is not a directory")
  if root.is_dir() and any(root.iterdir()):
    if not (root / MARKER).is_file():
      raise ValueError(
        f"--root {str(root)!r} exists, is not empty and is not a tts2mix "
        "build; choose a new or empty directory"
      )
    return True
  parent = root
  while not parent.exists():
    parent = parent.parent
  if not os.access(parent, os.W_OK):
    raise ValueError(f"--root {str(root)!r} is not writable")
  return False


def _check_root_settings(root: pathlib.Path, settings: Settings) -> None:
  """Refuses to resume a build made with other settings."""
  try:
    old = json.loads((root / MARKER).read_text())
  except (OSError, ValueError):
    raise ValueError(
      f"--root {str(root)!r}: unreadable {MARKER}; delete "
      "the directory and rebuild"
    ) from None
  if old != settings.to_json():
    raise ValueError(
      f"--root {str(root)!r} holds a tts2mix build with "
      f"{_describe_difference(old, settings.to_json())}; use another "
      "--root or delete it"
    )


def main(argv: Sequence[str] | None = None) -> int:
  """Command-line entry point; returns the exit status."""
  argv = list(sys.argv[1:] if argv is None else argv)
  parser = build_parser()
  args = parser.parse_args(argv)
  counts = (args.num_train, args.num_valid, args.num_test)
  for flag, value in zip(
    ("--num-train", "--num-valid", "--num-test"), counts, strict=True
  ):
    if value < 1:
      parser.error(f"{flag} must be >= 1, got {value}")
  if args.jobs < 1:
    parser.error(f"--jobs must be >= 1, got {args.jobs}")
  if args.seed < 0:
    parser.error(f"--seed must be >= 0, got {args.seed}")

  root = pathlib.Path(args.root).expanduser().absolute()
  try:
    resuming = _check_root_path(root)
  except ValueError as e:
    parser.error(str(e))

  # Engines before any work.
  missing = missing_requirements()
  if missing:
    print(
      f"tts2mix: {', '.join(missing)} not found; install it with: {APT_LINE}",
      file=sys.stderr,
    )
    return 1
  voices = available_voices(args.voices)
  settings = Settings(
    seed=args.seed,
    counts=counts,
    voices=args.voices,
    voice_names=tuple(v.name for v in voices),
    format=args.format,
    augment=not args.no_augment,
  )
  if resuming:
    try:
      _check_root_settings(root, settings)
    except ValueError as e:
      parser.error(str(e))
    if (root / "voices.json").is_file() and all(
      (root / LAYOUT / s).is_dir() for s in SPLITS
    ):
      print(
        f"tts2mix: {root} is already complete (same settings); nothing to do"
      )
      return 0

  sentences = load_sentences()
  if min(len(s) for s in sentences.values()) < 50:
    print(
      "tts2mix: too few WordNet example sentences found in "
      f"{WORDNET_GLOB}; reinstall wordnet-base",
      file=sys.stderr,
    )
    return 1
  if args.voices == "all" and not any(v.extra for v in voices):
    print(
      "tts2mix: --voices all: no MBROLA or pico voices installed; "
      "using the free voices only"
    )
  print_voice_split(voices)

  augmentation = None if args.no_augment else Augmentation()
  plans = {
    split: [
      plan_mixture(split, i, args.seed, voices, sentences, augmentation)
      for i in range(n)
    ]
    for split, n in zip(SPLITS, counts, strict=True)
  }
  root.mkdir(parents=True, exist_ok=True)
  if not resuming:
    tmp = root / (MARKER + ".tmp")
    tmp.write_text(json.dumps(settings.to_json(), indent=2) + "\n")
    os.replace(tmp, root / MARKER)
  by_name = {v.name: v for v in voices}
  start = time.perf_counter()
  try:
    for split in SPLITS:
      t0 = time.perf_counter()
      build_split(
        split,
        plans[split],
        by_name,
        root,
        args.format,
        args.jobs,
        not args.no_progress,
      )
      print(
        f"{split}: {len(plans[split])} mixtures "
        f"({time.perf_counter() - t0:.1f} s)"
      )
    write_metadata(
      root, settings, voices, plans, time.perf_counter() - start, argv
    )
  except Tts2MixError as e:
    print(f"tts2mix: {e}; rerun the same command to resume", file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    print(
      "tts2mix: interrupted; rerun the same command to resume", file=sys.stderr
    )
    return 130
  shutil.rmtree(root / WORK_DIR, ignore_errors=True)
  print(
    f"tts2mix: wrote {root / LAYOUT} in {time.perf_counter() - start:.1f} s"
  )
  return 0


if __name__ == "__main__":
  sys.exit(main())
