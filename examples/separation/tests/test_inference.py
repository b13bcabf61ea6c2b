"""k-means inference of the embedding heads recovers oracle assignments."""

import jax.numpy as jnp
import numpy as np

from examples.separation import data as data_lib
from examples.separation import inference
from examples.separation import losses
from examples.separation import metrics
from examples.separation import signal


def test_kmeans_on_oracle_embeddings_gives_the_ideal_binary_mask():
  ds = data_lib.SyntheticMixtures(
    "test", seed=3, chunk_samples=signal.frames_to_samples(100)
  )
  batch = ds.generate(np.random.default_rng(0), 4, ds.chunk_samples)
  mix_stft = signal.stft(jnp.asarray(batch["mix"]))
  src_mag = jnp.abs(signal.stft(jnp.asarray(batch["sources"])))
  ibm = losses.ideal_binary_assignments(src_mag)  # [B, T, F, S]
  # Oracle embeddings: a noisy unit vector per source (any rotation works).
  rng = np.random.default_rng(1)
  basis = np.linalg.qr(rng.normal(size=(20, 20)))[0][:2]  # [S, D]
  emb = ibm @ basis + 0.05 * rng.normal(size=ibm.shape[:-1] + (20,))
  emb = emb / np.linalg.norm(emb, axis=-1, keepdims=True)
  masks = inference.kmeans_masks(
    jnp.asarray(emb, jnp.float32), jnp.abs(mix_stft)
  )
  assert masks.shape == (4, 2, *mix_stft.shape[1:])
  np.testing.assert_allclose(np.asarray(masks.sum(1)), 1.0)
  est = np.asarray(
    inference.estimate_sources(
      {"mix_stft": mix_stft, "embedding": jnp.asarray(emb, jnp.float32)},
      jnp.asarray(batch["mix"]),
    )
  )
  gains = [
    metrics.separation_metrics(est[b], batch["sources"][b], batch["mix"][b])[
      "si_sdri"
    ].mean()
    for b in range(4)
  ]
  # The ideal binary mask gains ~10+ dB on these mixtures.
  assert min(gains) > 6.0, gains
