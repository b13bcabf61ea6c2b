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

"""Separation losses of the AutoClip paper (Seetharaman et al. 2020, eqs. 4-8).

Five objectives with very different scales, which is the point of the paper:

* ``deep_clustering_loss``   L_DC,  eq. (5), in [0, 1].
* ``whitened_kmeans_loss``   L_WKM, eq. (6), in [D - min(D, S), D].
* ``mask_inference_loss``    L_MI,  eq. (4), truncated phase-sensitive L1, PIT.
* ``chimera_loss``           L_MI+WKM, eq. (7), alpha * L_MI + (1-alpha) L_WKM.
* ``snr_loss``               L_SNR, eq. (8), negative SNR on waveforms, PIT.

Shape conventions (all arrays carry a leading batch axis ``B``)::

  B batch, S sources (2), T STFT frames, F frequency bins (129),
  D embedding size (20), L waveform samples, N = T * F TF bins.

  mixture STFT          X          complex [B, T, F]
  mixture magnitude     |X|        float   [B, T, F]
  source STFTs          S          complex [B, S, T, F]
  masks                 M          float   [B, S, T, F]   (source axis 1,
                                                            like the sources)
  PSA targets                      float   [B, S, T, F]
  embeddings            V          float   [B, T, F, D]
  assignments           Y          float   [B, T, F, S]   (one-hot per bin)
  TF weights            diag(W)    float   [B, T, F]
  waveforms             s, s_hat   float   [B, S, L]

Every ``*_loss`` function returns the **per-example** loss, a ``[B]`` vector
(what per-example reweighting schemes need); the scalar training loss is its
``.mean()``. Everything is written in ``jax.numpy``, is jit-safe and has
finite gradients on silent or single-source chunks.

Permutation invariance (PIT) is utterance-level: each example picks the one
source permutation that minimises its whole loss (not one per TF bin). For
``S`` sources all ``S!`` permutations are evaluated. A permutation ``perm`` of
shape ``[B, S]`` means "estimate ``perm[b, j]`` is matched to reference
``j``", so ``apply_permutation(estimates, perm)`` lines estimates up with the
references.

Weights. Following Wang et al. (ICASSP 2018) and nussl, the deep-clustering
losses use magnitude weights ``W_ii = N |X_i| / sum_j |X_j|`` per example
(``magnitude_weights``), so that ``trace(W) = N`` (equivalently, the entries
``w_i = W_ii^(1/2)`` satisfy ``sum_i w_i^2 = N``). Silent bins, including
zero padding, get zero weight. L_DC is normalised by ``trace(W)^2`` (``= N^2``)
which puts it in ``[0, 1]`` for unit-norm embeddings, as in the paper and in
nussl; L_WKM is invariant to the scale of ``W``.

Scales. Eq. (6) as printed is at least ``D - S`` (18 for D = 20, S = 2): the
trace is at most ``min(D, S)``. L_MI is an average over the ``S * T * F``
bins of magnitudes, so its scale follows the STFT's: the paper's ~1e-5 comes
from a normalised STFT; with ``signal.stft`` (plain DFT of the windowed frame)
and -30..-20 dBFS mixtures it starts around 0.1. L_SNR is in dB.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

# Tiny constant that keeps divisions and logs finite on silent inputs.
_TINY = 1e-8


def permutations(num_sources: int) -> np.ndarray:
  """All ``num_sources!`` permutations of ``range(num_sources)``, ``[P, S]``."""
  return np.array(
    list(itertools.permutations(range(num_sources))), dtype=np.int32
  )


def apply_permutation(x: Array, perm: Array) -> Array:
  """Reorders the source axis (axis 1) of ``x`` per example.

  Args:
    x: ``[B, S, ...]``.
    perm: int ``[B, S]``; output source ``j`` is input source ``perm[b, j]``.

  Returns:
    ``[B, S, ...]`` with ``out[b, j] = x[b, perm[b, j]]``.
  """
  idx = perm.reshape(perm.shape + (1,) * (x.ndim - 2))
  return jnp.take_along_axis(x, idx, axis=1)


def pit(
  loss_fn: Callable[[Array, Array], Array],
  estimates: Array,
  targets: Array,
) -> tuple[Array, Array]:
  """Utterance-level permutation-invariant loss by brute force over ``S!``.

  Args:
    loss_fn: ``loss_fn(estimates, targets) -> [B]`` for sources in a given
      order (source axis 1 of both arguments).
    estimates: ``[B, S, ...]``.
    targets: ``[B, S, ...]``.

  Returns:
    ``(loss, perm)``: the minimum over permutations per example, ``[B]``, and
    the minimising permutation, int32 ``[B, S]`` (see ``apply_permutation``).
  """
  perms = permutations(estimates.shape[1])
  losses = jnp.stack(
    [loss_fn(estimates[:, p], targets) for p in perms], axis=-1
  )  # [B, P]
  best = jnp.argmin(losses, axis=-1)
  loss = jnp.take_along_axis(losses, best[:, None], axis=-1)[:, 0]
  return loss, jnp.asarray(perms)[best]


def pit_from_pairwise(pairwise: Array) -> tuple[Array, Array]:
  """PIT for losses that are a mean of per-source terms.

  Args:
    pairwise: ``[B, S, S]`` with ``pairwise[b, i, j]`` the loss of estimate
      ``i`` against reference ``j``.

  Returns:
    ``(loss, perm)`` where ``loss[b] = min_p mean_j pairwise[b, p[j], j]``,
    shapes ``[B]`` and int32 ``[B, S]``.
  """
  num_sources = pairwise.shape[-1]
  perms = permutations(num_sources)  # [P, S]
  cols = np.arange(num_sources)
  losses = pairwise[:, perms, cols].mean(axis=-1)  # [B, P]
  best = jnp.argmin(losses, axis=-1)
  loss = jnp.take_along_axis(losses, best[:, None], axis=-1)[:, 0]
  return loss, jnp.asarray(perms)[best]


# ---------------------------------------------------------------------------
# Targets and weights.
# ---------------------------------------------------------------------------


def magnitude_weights(mix_magnitude: Array) -> Array:
  """Per-bin weights ``W_ii = N |X_i| / sum_j |X_j|``, ``[B, T, F]``.

  ``sum(W) = N`` per example (``N = T * F``); an all-silent example gets all
  zeros rather than NaNs.
  """
  mag = jnp.abs(mix_magnitude)
  n = mag.shape[-1] * mag.shape[-2]
  total = mag.sum(axis=(-2, -1), keepdims=True)
  return jax.lax.stop_gradient(n * mag / jnp.maximum(total, _TINY))


def ideal_binary_assignments(source_magnitudes: Array) -> Array:
  """One-hot dominant-source assignment ``Y`` of every TF bin.

  Args:
    source_magnitudes: ``[B, S, T, F]`` (magnitudes, or complex STFTs).

  Returns:
    ``[B, T, F, S]`` float one-hot (ties go to the lowest source index).
  """
  mags = jnp.abs(source_magnitudes)
  num_sources = mags.shape[1]
  dominant = jnp.argmax(mags, axis=1)  # [B, T, F]
  return jax.nn.one_hot(dominant, num_sources, dtype=mags.dtype)


def psa_target(mix_stft: Array, source_stfts: Array) -> Array:
  """Truncated phase-sensitive target ``T_0^{|X|}(|S| cos(theta_X - theta_S))``.

  The estimate ``S_hat = M |X| e^{j theta_X}`` has the mixture phase, so the
  ``cos(theta_S_hat - theta_S)`` of eq. (4) is ``cos(theta_X - theta_S)``.

  Args:
    mix_stft: complex ``[B, T, F]``.
    source_stfts: complex ``[B, S, T, F]``.

  Returns:
    ``[B, S, T, F]`` real target in ``[0, |X|]`` (no gradient).
  """
  mix = mix_stft[:, None]
  mix_mag = jnp.abs(mix)
  # |S| cos(theta_X - theta_S) = Re(X conj(S)) / |X|.
  projection = jnp.real(mix * jnp.conj(source_stfts)) / jnp.maximum(
    mix_mag, _TINY
  )
  target = jnp.clip(projection, 0.0, mix_mag)
  return jax.lax.stop_gradient(target)


# ---------------------------------------------------------------------------
# Embedding losses: deep clustering and whitened k-means.
# ---------------------------------------------------------------------------


def _weighted_grams(
  embeddings: Array, assignments: Array, weights: Array | None
) -> tuple[Array, Array, Array]:
  """``V^T W~ V``, ``V^T W~ Y``, ``Y^T W~ Y`` with ``W~ = W / trace(W)``.

  With uniform weights (``weights=None``, ``W~ = I / N``) the plain sums are
  taken first and divided by ``N`` once: for 0/1 assignments ``Y^T Y`` holds
  integer counts, exact in float32 up to 2**24 bins, and so do ``V^T V`` and
  ``V^T Y`` for one-hot embeddings. Scaling every term by a rounded ``1 / N``
  before a long float32 sum would instead accumulate a bias that makes
  perfect embeddings score L_DC < 0 and L_WKM != D - S.
  """
  batch, dim = embeddings.shape[0], embeddings.shape[-1]
  num_sources = assignments.shape[-1]
  v = embeddings.reshape(batch, -1, dim)
  y = assignments.reshape(batch, -1, num_sources).astype(v.dtype)
  if weights is None:
    n = v.shape[1]
    vtv = jnp.einsum("bnd,bne->bde", v, v) / n
    vty = jnp.einsum("bnd,bns->bds", v, y) / n
    yty = jnp.einsum("bns,bnt->bst", y, y) / n
    return vtv, vty, yty
  w = weights.reshape(batch, -1).astype(v.dtype)
  w = w / jnp.maximum(w.sum(axis=-1, keepdims=True), _TINY)
  wv = w[..., None] * v
  vtv = jnp.einsum("bnd,bne->bde", wv, v)
  vty = jnp.einsum("bnd,bns->bds", wv, y)
  yty = jnp.einsum("bns,bnt->bst", w[..., None] * y, y)
  return vtv, vty, yty


def deep_clustering_loss(
  embeddings: Array, assignments: Array, weights: Array | None = None
) -> Array:
  """L_DC = ||W^1/2 (V V^T - Y Y^T) W^1/2||_F^2 / trace(W)^2, eq. (5).

  Uses the low-rank identity
  ``||V^T W V||^2 - 2 ||V^T W Y||^2 + ||Y^T W Y||^2`` (O(N D^2) time, the
  N x N affinity matrices are never formed).

  Args:
    embeddings: ``V``, ``[B, T, F, D]`` (unit-norm rows give the range [0, 1]).
    assignments: ``Y``, ``[B, T, F, S]``, e.g. ``ideal_binary_assignments``.
    weights: ``diag(W)``, ``[B, T, F]``, e.g. ``magnitude_weights``; ``None``
      means uniform weights.

  Returns:
    Per-example loss ``[B]``.
  """
  vtv, vty, yty = _weighted_grams(embeddings, assignments, weights)
  return (
    (vtv**2).sum(axis=(1, 2))
    - 2 * (vty**2).sum(axis=(1, 2))
    + (yty**2).sum(axis=(1, 2))
  )


def _ridge(gram: Array, eps: float) -> Array:
  """``gram + (eps * trace(gram) / n + tiny) I`` for a batch of ``[n, n]``."""
  n = gram.shape[-1]
  scale = jnp.trace(gram, axis1=-2, axis2=-1)[:, None, None] / n
  return gram + (eps * scale + _TINY) * jnp.eye(n, dtype=gram.dtype)


def whitened_kmeans_loss(
  embeddings: Array,
  assignments: Array,
  weights: Array | None = None,
  eps: float = 1e-6,
) -> Array:
  """L_WKM = D - tr((V^T W V)^-1 V^T W Y (Y^T W Y)^-1 Y^T W V), eq. (6).

  The weighted form (``V -> W^1/2 V``, ``Y -> W^1/2 Y``) of Wang et al. 2018.
  Both Gram matrices get a relative ridge ``eps * trace / n`` (plus 1e-8) on
  the diagonal, so a chunk where a source is absent (``Y^T W Y`` singular) or
  that is entirely silent gives a finite value with finite gradients: the
  absent source's column of ``V^T W Y`` is exactly zero and contributes 0.

  Args:
    embeddings: ``V``, ``[B, T, F, D]``.
    assignments: ``Y``, ``[B, T, F, S]``.
    weights: ``diag(W)``, ``[B, T, F]``, or ``None`` for uniform.
    eps: relative ridge.

  Returns:
    Per-example loss ``[B]``, in ``[D - min(D, S), D]``.
  """
  vtv, vty, yty = _weighted_grams(embeddings, assignments, weights)
  dim = embeddings.shape[-1]
  a = jnp.linalg.solve(_ridge(vtv, eps), vty)  # (V^T W V)^-1 V^T W Y, [B,D,S]
  c = jnp.linalg.solve(_ridge(yty, eps), jnp.swapaxes(vty, 1, 2))  # [B,S,D]
  trace = (a * jnp.swapaxes(c, 1, 2)).sum(axis=(1, 2))
  return dim - trace


# ---------------------------------------------------------------------------
# Mask inference (truncated PSA) and Chimera.
# ---------------------------------------------------------------------------


def mask_inference_pairwise(
  masks: Array, mix_magnitude: Array, targets: Array
) -> Array:
  """``[B, S, S]`` mean L1 between ``masks[:, i] |X|`` and ``targets[:, j]``."""
  estimates = masks * mix_magnitude[:, None]  # [B, S, T, F]
  diff = jnp.abs(estimates[:, :, None] - targets[:, None, :])  # [B,S,S,T,F]
  return diff.mean(axis=(-2, -1))


def mask_inference_loss(
  masks: Array, mix_magnitude: Array, targets: Array
) -> Array:
  """L_MI, eq. (4): PIT mean-L1 between ``M |X|`` and the truncated PSA target.

  Args:
    masks: ``[B, S, T, F]`` (e.g. sigmoid outputs).
    mix_magnitude: ``|X|``, ``[B, T, F]``.
    targets: ``psa_target(X, S)``, ``[B, S, T, F]``.

  Returns:
    Per-example loss ``[B]``, the mean over the ``S * T * F`` bins of the best
    utterance-level permutation.
  """
  return pit_from_pairwise(
    mask_inference_pairwise(masks, mix_magnitude, targets)
  )[0]


def chimera_loss(
  masks: Array,
  embeddings: Array,
  mix_magnitude: Array,
  targets: Array,
  assignments: Array,
  weights: Array | None = None,
  alpha: float = 0.75,
) -> Array:
  """L_MI+WKM = alpha L_MI + (1 - alpha) L_WKM, eq. (7) (alpha = 0.75).

  Arguments as in ``mask_inference_loss`` and ``whitened_kmeans_loss``.
  Returns the per-example loss ``[B]``.
  """
  mi = mask_inference_loss(masks, mix_magnitude, targets)
  wkm = whitened_kmeans_loss(embeddings, assignments, weights)
  return alpha * mi + (1.0 - alpha) * wkm


# ---------------------------------------------------------------------------
# Waveform SNR.
# ---------------------------------------------------------------------------


def neg_snr(estimates: Array, references: Array, eps: float = _TINY) -> Array:
  """``-10 log10((||s||^2 + eps) / (||s - s_hat||^2 + eps))``, last axis.

  ``eps`` keeps the value finite for a perfect estimate (then about
  ``-10 log10(||s||^2 / eps)``) and for silent references; it is an absolute
  energy, so it assumes waveforms at the usual [-1, 1] audio scale.
  """
  signal = (references**2).sum(axis=-1)
  noise = ((references - estimates) ** 2).sum(axis=-1)
  return -10.0 * jnp.log10((signal + eps) / (noise + eps))


def snr_pairwise(
  estimates: Array, references: Array, eps: float = _TINY
) -> Array:
  """``[B, S, S]`` negative SNR of estimate ``i`` against reference ``j``."""
  return neg_snr(estimates[:, :, None], references[:, None, :], eps)


def snr_loss(estimates: Array, references: Array, eps: float = _TINY) -> Array:
  """L_SNR, eq. (8): PIT negative SNR, averaged over sources.

  Args:
    estimates: waveforms ``[B, S, L]``.
    references: waveforms ``[B, S, L]``.
    eps: see ``neg_snr``.

  Returns:
    Per-example loss ``[B]`` in dB (lower is better).
  """
  return pit_from_pairwise(snr_pairwise(estimates, references, eps))[0]
