"""Difficulty of the synthetic mixtures: mixture SI-SDR and oracle-mask gains.

``python -m examples.separation.data_stats [--num 100] [--seed 0]
[--pairing cross_register] [--consonant-probability 0.3] [--environmental]``
prints, over ``--num`` training chunks of 400 frames (25536 samples), the
mixture's SI-SDR against each source and the SI-SDR improvement of the ideal
ratio mask ``|S_i| / (|S_1| + |S_2|)`` applied to the mixture STFT with the
mixture phase (an upper reference for mask-based separators), plus the
generation time. The data module's docstring quotes its output.
"""

import argparse
import sys
import time

import jax.numpy as jnp
import numpy as np

from examples.separation import data as data_lib
from examples.separation import metrics
from examples.separation import signal


def difficulty(
  num: int = 100,
  seed: int = 0,
  synthetic: data_lib.SyntheticConfig | None = None,
) -> dict:
  """Mixture SI-SDR and oracle-IRM SI-SDRi statistics (dB) of ``num`` chunks."""
  chunk = signal.frames_to_samples(400)
  ds = data_lib.SyntheticMixtures(
    "train", seed=seed, chunk_samples=chunk, config=synthetic
  )
  t0 = time.perf_counter()
  batch = ds.generate(np.random.default_rng(seed), num, chunk)
  gen_seconds = time.perf_counter() - t0
  mix_stft = signal.stft(jnp.asarray(batch["mix"]))  # [B, T, F]
  src_mag = jnp.abs(signal.stft(jnp.asarray(batch["sources"])))  # [B,2,T,F]
  irm = src_mag / (src_mag.sum(1, keepdims=True) + 1e-8)
  oracle = np.asarray(signal.istft(irm * mix_stft[:, None], chunk))
  input_sdr, gains = [], []
  for b in range(num):
    m = metrics.separation_metrics(
      oracle[b], batch["sources"][b], batch["mix"][b]
    )
    input_sdr.append(m["input_si_sdr"])
    gains.append(m["si_sdri"])
  input_sdr, gains = np.concatenate(input_sdr), np.concatenate(gains)
  louder = np.maximum(*np.asarray(input_sdr).reshape(num, 2).T)
  return {
    "mixture_si_sdr_mean": float(input_sdr.mean()),
    "mixture_si_sdr_louder_mean": float(louder.mean()),
    "oracle_irm_si_sdri_mean": float(gains.mean()),
    "oracle_irm_si_sdri_p10": float(np.percentile(gains, 10)),
    "generation_seconds": gen_seconds,
  }


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--num", type=int, default=100)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument(
    "--pairing", default="cross_register", choices=("cross_register", "any")
  )
  parser.add_argument("--consonant-probability", type=float, default=0.3)
  parser.add_argument(
    "--environmental",
    action="store_true",
    help="second source environmental instead of speech",
  )
  args = parser.parse_args(argv)
  if args.num < 1:
    parser.error(f"--num must be >= 1, got {args.num}")
  try:
    cfg = data_lib.SyntheticConfig(
      source_classes=(
        "speech",
        "environmental" if args.environmental else "speech",
      ),
      pairing=args.pairing,
      consonant_probability=args.consonant_probability,
    )
  except ValueError as e:
    parser.error(str(e))
  stats = difficulty(args.num, args.seed, cfg)
  for key, value in stats.items():
    print(f"{key:28s} {value:8.2f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
