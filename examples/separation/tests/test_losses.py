"""Tests of the separation losses (paper eqs. 4-8) against naive formulas."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from examples.separation import losses

B, T, F, D, S = 3, 5, 7, 4, 2

# Jitted once per input structure: eager linear algebra is slow to dispatch.
_wkm = jax.jit(losses.whitened_kmeans_loss)
_wkm_value_and_grad = jax.jit(
  jax.value_and_grad(
    lambda v, y, w: losses.whitened_kmeans_loss(v, y, w).mean()
  )
)


def _unit(x, axis=-1):
  return x / np.linalg.norm(x, axis=axis, keepdims=True)


@pytest.fixture
def embed_inputs():
  rng = np.random.default_rng(0)
  v = _unit(rng.standard_normal((B, T, F, D))).astype(np.float32)
  mags = np.abs(rng.standard_normal((B, S, T, F))).astype(np.float32)
  y = np.asarray(losses.ideal_binary_assignments(mags))
  w = np.asarray(losses.magnitude_weights(mags.sum(1)))
  return v, y, w


def _naive_dc(v, y, w):
  out = []
  for b in range(v.shape[0]):
    vb = v[b].reshape(-1, v.shape[-1]).astype(np.float64)
    yb = y[b].reshape(-1, y.shape[-1]).astype(np.float64)
    wh = np.diag(np.sqrt(w[b].reshape(-1).astype(np.float64)))
    a = wh @ (vb @ vb.T - yb @ yb.T) @ wh  # N x N affinity difference.
    out.append((a**2).sum() / w[b].sum() ** 2)
  return np.array(out)


def _naive_wkm(v, y, w):
  out = []
  for b in range(v.shape[0]):
    wh = np.sqrt(w[b].reshape(-1, 1).astype(np.float64))
    vb = wh * v[b].reshape(-1, v.shape[-1])
    yb = wh * y[b].reshape(-1, y.shape[-1])
    m = (
      np.linalg.inv(vb.T @ vb)
      @ vb.T
      @ yb
      @ np.linalg.inv(yb.T @ yb)
      @ yb.T
      @ vb
    )
    out.append(v.shape[-1] - np.trace(m))
  return np.array(out)


def test_magnitude_weights_sum_to_num_bins():
  mag = np.abs(np.random.default_rng(1).standard_normal((2, T, F)))
  mag[1] = 0.0  # Silent example: zeros, not NaN.
  w = np.asarray(losses.magnitude_weights(jnp.asarray(mag)))
  np.testing.assert_allclose(w[0].sum(), T * F, rtol=1e-5)
  np.testing.assert_array_equal(w[1], 0.0)


def test_ideal_binary_assignments_one_hot_dominant():
  mags = np.array([[[1.0, 3.0]], [[2.0, 0.5]]])  # [S=2, T=1, F=2]
  y = np.asarray(losses.ideal_binary_assignments(mags[None]))  # [1,1,2,2]
  np.testing.assert_array_equal(y[0, 0], [[0.0, 1.0], [1.0, 0.0]])


def test_deep_clustering_low_rank_equals_affinity_formula(embed_inputs):
  v, y, w = embed_inputs
  got = np.asarray(jax.jit(losses.deep_clustering_loss)(v, y, w))
  np.testing.assert_allclose(got, _naive_dc(v, y, w), rtol=1e-4, atol=1e-6)
  assert got.shape == (B,)
  assert np.all((got >= 0) & (got <= 1))


def test_deep_clustering_perfect_embedding_is_zero(embed_inputs):
  _, y, w = embed_inputs
  v = np.concatenate([y, np.zeros(y.shape[:-1] + (D - S,))], -1)
  np.testing.assert_allclose(
    losses.deep_clustering_loss(v, y, w), 0.0, atol=1e-6
  )


def test_perfect_embeddings_uniform_weights_are_exact_at_paper_length():
  # T = 400 frames x 129 bins: a float32 sum of N terms each pre-scaled by
  # 1/N drifts by ~1e-4 here (L_DC < 0, L_WKM = 18.9997 for D = 20, S = 2).
  t, f, d, s = 400, 129, 20, 2
  labels = np.random.default_rng(3).integers(0, s, (2, t, f))
  y = np.eye(s, dtype=np.float32)[labels]
  v = np.concatenate([y, np.zeros(y.shape[:-1] + (d - s,), np.float32)], -1)
  dc = np.asarray(jax.jit(losses.deep_clustering_loss)(v, y))
  wkm = np.asarray(_wkm(v, y))
  np.testing.assert_allclose(dc, 0.0, atol=1e-6)
  # One float32 ulp at D - S (1.9e-6) is the resolution of the result.
  np.testing.assert_allclose(wkm, d - s, atol=np.spacing(np.float32(d - s)))


def test_whitened_kmeans_matches_naive(embed_inputs):
  v, y, w = embed_inputs
  got = np.asarray(_wkm(v, y, w))
  np.testing.assert_allclose(got, _naive_wkm(v, y, w), rtol=1e-4, atol=1e-4)
  assert np.all((got >= D - S - 1e-4) & (got <= D + 1e-4))
  # Uniform weights also match.
  ones = np.ones_like(w)
  np.testing.assert_allclose(
    _wkm(v, y), _naive_wkm(v, y, ones), rtol=1e-4, atol=1e-4
  )


def test_whitened_kmeans_finite_when_source_absent(embed_inputs):
  v, y, w = embed_inputs
  y_absent = np.zeros_like(y)
  y_absent[..., 0] = 1.0  # Source 1 owns no bin: Y^T W Y is singular.
  silent = np.zeros_like(w)  # And an entirely silent example.
  for yy, ww in ((y_absent, w), (y, silent)):
    value, grad = _wkm_value_and_grad(v, yy, ww)
    assert np.isfinite(value)
    assert np.all(np.isfinite(np.asarray(grad)))
  # With one source present the loss equals the naive one-source formula.
  got = _wkm(v, y_absent, w)
  np.testing.assert_allclose(
    got, _naive_wkm(v, y_absent[..., :1], w), rtol=1e-4, atol=1e-4
  )


def test_psa_target_truncation():
  mix = np.array([1.0 + 0.0j, 1.0 + 0.0j, 1.0 + 0.0j, 0.0 + 0.0j])
  src = np.array(
    [
      3.0 + 0.0j,  # In phase, larger than |X|: clipped to |X|.
      -0.5 + 0.0j,  # Opposite phase: clipped to 0.
      0.5 + 0.5j,  # 45 degrees: |S| cos = 0.5.
      2.0 + 0.0j,
    ]
  )  # Silent mixture bin: 0.
  target = losses.psa_target(mix.reshape(1, 1, 4), src.reshape(1, 1, 1, 4))
  np.testing.assert_allclose(
    np.asarray(target).ravel(), [1.0, 0.0, 0.5, 0.0], atol=1e-6
  )


def test_pit_matches_brute_force_and_is_order_invariant():
  rng = np.random.default_rng(2)
  num = 3  # 3! permutations.
  est = rng.standard_normal((4, num, 16)).astype(np.float32)
  ref = rng.standard_normal((4, num, 16)).astype(np.float32)
  fn = lambda e, r: jnp.abs(e - r).mean(axis=(1, 2))
  loss, perm = losses.pit(fn, est, ref)
  for b in range(4):
    brute = {
      p: np.abs(est[b, list(p)] - ref[b]).mean()
      for p in itertools.permutations(range(num))
    }
    best = min(brute, key=brute.get)
    np.testing.assert_allclose(loss[b], brute[best], rtol=1e-6)
    assert tuple(np.asarray(perm[b])) == best
  # The pairwise variant gives the same answer.
  pairwise = jnp.abs(est[:, :, None] - ref[:, None]).mean(-1)
  loss2, perm2 = losses.pit_from_pairwise(pairwise)
  np.testing.assert_allclose(loss2, loss, rtol=1e-6)
  np.testing.assert_array_equal(perm2, perm)
  # Reordering the estimates does not change the loss; apply_permutation
  # lines them up with the references.
  swapped = est[:, ::-1]
  np.testing.assert_allclose(losses.pit(fn, swapped, ref)[0], loss, rtol=1e-6)
  aligned = losses.apply_permutation(jnp.asarray(est), perm)
  np.testing.assert_allclose(fn(aligned, ref), loss, rtol=1e-6)


def _spectra(rng):
  mix = rng.standard_normal((B, T, F)) + 1j * rng.standard_normal((B, T, F))
  src = rng.standard_normal((B, S, T, F)) + 1j * rng.standard_normal(
    (B, S, T, F)
  )
  return mix.astype(np.complex64), src.astype(np.complex64)


def test_mask_inference_loss_pit_over_whole_utterance():
  rng = np.random.default_rng(3)
  mix, src = _spectra(rng)
  target = losses.psa_target(mix, src)
  mix_mag = np.abs(mix)
  masks = rng.uniform(size=(B, S, T, F)).astype(np.float32)
  got = losses.mask_inference_loss(masks, mix_mag, target)
  t = np.asarray(target)
  for b in range(B):
    per_perm = [
      np.abs(masks[b, list(p)] * mix_mag[b] - t[b]).mean()
      for p in itertools.permutations(range(S))
    ]
    np.testing.assert_allclose(got[b], min(per_perm), rtol=1e-5)
  np.testing.assert_allclose(
    losses.mask_inference_loss(masks[:, ::-1], mix_mag, target), got, rtol=1e-6
  )
  # The ideal PSA mask (swapped, even) gives zero.
  ideal = np.asarray(target) / np.maximum(mix_mag[:, None], 1e-8)
  np.testing.assert_allclose(
    losses.mask_inference_loss(ideal[:, ::-1], mix_mag, target), 0.0, atol=1e-6
  )


def test_chimera_combines_mi_and_wkm(embed_inputs):
  v, y, w = embed_inputs
  rng = np.random.default_rng(4)
  mix, src = _spectra(rng)
  target = losses.psa_target(mix, src)
  masks = rng.uniform(size=(B, S, T, F)).astype(np.float32)
  got = jax.jit(losses.chimera_loss)(masks, v, np.abs(mix), target, y, w)
  want = 0.75 * losses.mask_inference_loss(
    masks, np.abs(mix), target
  ) + 0.25 * _wkm(v, y, w)
  np.testing.assert_allclose(got, want, rtol=1e-6)


def test_snr_loss_values_and_pit():
  rng = np.random.default_rng(5)
  ref = rng.standard_normal((B, S, 64)).astype(np.float32)
  perfect = losses.snr_loss(ref[:, ::-1], ref)  # Permuted perfect estimate.
  assert np.all(np.asarray(perfect) < -50.0)
  np.testing.assert_allclose(
    losses.snr_loss(np.zeros_like(ref), ref), 0.0, atol=1e-5
  )
  noisy = ref + 0.1 * rng.standard_normal(ref.shape).astype(np.float32)
  want = [
    np.mean(
      [
        -10
        * np.log10(
          (ref[b, j] ** 2).sum() / ((ref[b, j] - noisy[b, j]) ** 2).sum()
        )
        for j in range(S)
      ]
    )
    for b in range(B)
  ]
  np.testing.assert_allclose(losses.snr_loss(noisy, ref), want, rtol=1e-4)


def test_all_losses_jit_and_have_finite_gradients(embed_inputs):
  v, y, w = embed_inputs
  rng = np.random.default_rng(6)
  mix, src = _spectra(rng)
  target = losses.psa_target(mix, src)
  mix_mag = jnp.abs(mix)
  masks = jnp.asarray(rng.uniform(size=(B, S, T, F)), jnp.float32)
  wave = jnp.asarray(rng.standard_normal((B, S, 32)), jnp.float32)
  cases = {
    "dc": (lambda p: losses.deep_clustering_loss(p, y, w), v),
    "wkm": (lambda p: losses.whitened_kmeans_loss(p, y, w), v),
    "mi": (lambda p: losses.mask_inference_loss(p, mix_mag, target), masks),
    "chimera": (
      lambda p: losses.chimera_loss(p, v, mix_mag, target, y, w),
      masks,
    ),
    "snr": (lambda p: losses.snr_loss(p, wave), wave[:, ::-1] * 0.5),
    # A perfect estimate: the gradient of the eps-stabilised log is finite.
    "snr_perfect": (lambda p: losses.snr_loss(p, wave), wave),
  }
  for name, (fn, arg) in cases.items():
    per_example, vjp = jax.vjp(jax.jit(fn), jnp.asarray(arg))
    assert per_example.shape == (B,), name
    assert np.all(np.isfinite(np.asarray(per_example))), name
    (grad,) = vjp(jnp.full((B,), 1.0 / B))  # Gradient of the mean.
    assert np.all(np.isfinite(np.asarray(grad))), name
