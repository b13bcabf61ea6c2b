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

"""Scale-invariant SDR (SI-SDR) and its improvement, as nussl/asteroid report.

SI-SDR (Le Roux et al., "SDR - half-baked or well done?", ICASSP 2019), per
source, over the time axis::

  s, s_hat  <- s - mean(s), s_hat - mean(s_hat)        (zero_mean=True)
  alpha      = <s_hat, s> / (||s||^2 (1 + eps) + tiny)
  SI-SDR     = 10 log10(||alpha s||^2
                        / (||alpha s - s_hat||^2 + eps ||alpha s||^2 + tiny)
                        + eps)

with ``eps = 1e-8`` and ``tiny`` the dtype's smallest normal number. This is
asteroid's formula with its guards made relative to the signals' energy:
asteroid adds an absolute ``1e-8`` to both denominators, which is negligible
at normal levels (the two agree to ~1e-6 dB there) but makes quiet signals
score lower (a pair scaled by 1e-4, about -105 dBFS, loses ~6 dB at 20 dB
SI-SDR). Here SI-SDR is invariant to the scale of either signal down to
energies near ``tiny``; a perfect estimate scores 10 log10(1 / eps) = 80 dB
and an orthogonal one -80 dB, at any level.

Separation metrics of one utterance pick the source permutation that maximises
the SI-SDR averaged over sources, and report the improvement over using the
mixture itself as every source's estimate::

  SI-SDRi_j = SI-SDR(s_hat_perm(j), s_j) - SI-SDR(x, s_j)

Two implementations of the same formula:

* numpy, for evaluation on the host, one utterance at a time with its own
  length: ``si_sdr``, ``pairwise_si_sdr``, ``separation_metrics``;
* ``jax.numpy``, batched and jit-safe, with optional per-example ``lengths``
  for zero-padded batches: ``batch_si_sdr``, ``batch_separation_metrics``.

Shapes: waveforms are ``[..., L]``; an utterance's sources ``[S, L]``; a batch
``[B, S, L]``; mixtures ``[L]`` / ``[B, L]``.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

EPS = 1e-8


def _si_sdr(xp: Any, estimate, reference, mask, zero_mean: bool, eps: float):
  """SI-SDR over the last axis with array namespace ``xp`` (np or jnp)."""
  if mask is not None:
    count = xp.maximum(mask.sum(axis=-1, keepdims=True), 1)
    estimate = estimate * mask
    reference = reference * mask
  else:
    count = estimate.shape[-1]
  if zero_mean:
    estimate = estimate - estimate.sum(axis=-1, keepdims=True) / count
    reference = reference - reference.sum(axis=-1, keepdims=True) / count
    if mask is not None:
      estimate = estimate * mask
      reference = reference * mask
  # Guards relative to the energies (plus the smallest normal number, for
  # all-zero inputs), so that the result does not depend on the level.
  tiny = xp.finfo(xp.result_type(estimate, reference)).tiny
  dot = (estimate * reference).sum(axis=-1, keepdims=True)
  ref_energy = (reference**2).sum(axis=-1, keepdims=True)
  alpha = dot / (ref_energy * (1.0 + eps) + tiny)
  target = alpha * reference
  noise = estimate - target
  target_energy = (target**2).sum(axis=-1)
  ratio = target_energy / ((noise**2).sum(axis=-1) + eps * target_energy + tiny)
  return 10.0 * xp.log10(ratio + eps)


def si_sdr(
  estimate: np.ndarray,
  reference: np.ndarray,
  *,
  zero_mean: bool = True,
  eps: float = EPS,
) -> np.ndarray:
  """SI-SDR in dB over the last axis (numpy, float64); broadcasts."""
  estimate = np.asarray(estimate, np.float64)
  reference = np.asarray(reference, np.float64)
  return _si_sdr(np, estimate, reference, None, zero_mean, eps)


def pairwise_si_sdr(
  estimates: np.ndarray, references: np.ndarray, **kwargs
) -> np.ndarray:
  """``[S_est, S_ref]`` SI-SDR of every estimate against every reference."""
  estimates = np.asarray(estimates)
  references = np.asarray(references)
  return si_sdr(estimates[:, None], references[None, :], **kwargs)


def best_permutation(pairwise: np.ndarray) -> np.ndarray:
  """Permutation maximising ``mean_j pairwise[perm[j], j]``, int ``[S]``.

  ``perm[j]`` is the estimate matched to reference ``j`` (so
  ``estimates[perm]`` is aligned with the references).
  """
  num = pairwise.shape[-1]
  perms = np.array(list(itertools.permutations(range(num))))
  scores = pairwise[perms, np.arange(num)].mean(axis=-1)
  return perms[int(np.argmax(scores))]


def separation_metrics(
  estimates: np.ndarray,
  references: np.ndarray,
  mixture: np.ndarray,
  **kwargs,
) -> dict[str, np.ndarray]:
  """PIT SI-SDR and SI-SDRi of one utterance (numpy).

  Args:
    estimates: ``[S, L]`` separated sources, any order.
    references: ``[S, L]`` true sources.
    mixture: ``[L]`` the input mixture.
    **kwargs: ``zero_mean`` and ``eps`` for ``si_sdr``.

  Returns:
    A dict of ``si_sdr``, ``input_si_sdr`` and ``si_sdri`` (float64 ``[S]``,
    ordered like the references) and ``permutation`` (int ``[S]``, the
    estimate matched to each reference).
  """
  estimates = np.asarray(estimates)
  references = np.asarray(references)
  if estimates.shape != references.shape or estimates.ndim != 2:
    raise ValueError(
      f"estimates {estimates.shape} and references {references.shape} must "
      "both be [S, L]."
    )
  pairwise = pairwise_si_sdr(estimates, references, **kwargs)
  perm = best_permutation(pairwise)
  scores = pairwise[perm, np.arange(len(perm))]
  baseline = si_sdr(np.asarray(mixture)[None], references, **kwargs)
  return {
    "si_sdr": scores,
    "input_si_sdr": baseline,
    "si_sdri": scores - baseline,
    "permutation": perm,
  }


@functools.partial(jax.jit, static_argnames=("zero_mean", "eps"))
def batch_si_sdr(
  estimates: jax.Array,
  references: jax.Array,
  lengths: jax.Array | None = None,
  *,
  zero_mean: bool = True,
  eps: float = EPS,
) -> jax.Array:
  """SI-SDR in dB over the last axis (jnp, jitted); broadcasts.

  Args:
    estimates: ``[B, ..., L]``.
    references: ``[B, ..., L]``.
    lengths: optional int ``[B]``: only the first ``lengths[b]`` samples of
      example ``b`` count (zero-padded batches).
    zero_mean: subtract the (valid-sample) mean first.
    eps: relative stabiliser (see the module docstring).

  Returns:
    ``[B, ...]`` SI-SDR.
  """
  estimates = jnp.asarray(estimates)
  references = jnp.asarray(references)
  mask = None
  if lengths is not None:
    shape = jnp.broadcast_shapes(estimates.shape, references.shape)
    positions = jnp.arange(shape[-1])
    lengths = jnp.asarray(lengths).reshape((-1,) + (1,) * (len(shape) - 1))
    mask = (positions < lengths).astype(estimates.dtype)
  return _si_sdr(jnp, estimates, references, mask, zero_mean, eps)


@functools.partial(jax.jit, static_argnames=("zero_mean", "eps"))
def batch_separation_metrics(
  estimates: jax.Array,
  references: jax.Array,
  mixture: jax.Array,
  lengths: jax.Array | None = None,
  *,
  zero_mean: bool = True,
  eps: float = EPS,
) -> dict[str, jax.Array]:
  """Batched ``separation_metrics`` in jnp (jitted).

  Args:
    estimates: ``[B, S, L]``.
    references: ``[B, S, L]``.
    mixture: ``[B, L]``.
    lengths: optional int ``[B]`` valid lengths.
    zero_mean: as in ``batch_si_sdr``.
    eps: as in ``batch_si_sdr``.

  Returns:
    Dict of ``si_sdr``, ``input_si_sdr``, ``si_sdri`` (``[B, S]``, ordered like
    the references) and ``permutation`` (int32 ``[B, S]``).
  """
  num = references.shape[1]
  kwargs = dict(zero_mean=zero_mean, eps=eps)
  pairwise = batch_si_sdr(
    estimates[:, :, None], references[:, None, :], lengths, **kwargs
  )  # [B, S_est, S_ref]
  perms = np.array(list(itertools.permutations(range(num))), np.int32)
  cols = np.arange(num)
  scores = pairwise[:, perms, cols]  # [B, P, S]
  best = jnp.argmax(scores.mean(axis=-1), axis=-1)
  si = jnp.take_along_axis(scores, best[:, None, None], axis=1)[:, 0]
  baseline = batch_si_sdr(mixture[:, None], references, lengths, **kwargs)
  return {
    "si_sdr": si,
    "input_si_sdr": baseline,
    "si_sdri": si - baseline,
    "permutation": jnp.asarray(perms)[best],
  }
