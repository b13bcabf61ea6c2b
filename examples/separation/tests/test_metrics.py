"""Tests of SI-SDR / SI-SDRi (numpy and jnp)."""

import numpy as np

from examples.separation import metrics


def _direct_si_sdr(est, ref):
  """Le Roux et al. 2019, eq. (3), with zero-mean signals, float64."""
  est = est - est.mean()
  ref = ref - ref.mean()
  target = (est @ ref) / (ref @ ref) * ref
  return 10 * np.log10((target @ target) / ((est - target) @ (est - target)))


def _signals(seed=0, length=400):
  rng = np.random.default_rng(seed)
  refs = rng.standard_normal((2, length))
  est = refs + 0.3 * rng.standard_normal((2, length)) + 0.7  # DC offset too.
  return est, refs


def test_si_sdr_matches_direct_formula():
  est, refs = _signals()
  got = metrics.si_sdr(est, refs)
  want = [_direct_si_sdr(est[j], refs[j]) for j in range(2)]
  np.testing.assert_allclose(got, want, rtol=1e-6)


def _asteroid_si_sdr(est, ref, eps=1e-8):
  """asteroid's SingleSrcNegSDR('sisdr') formula (absolute eps), negated."""
  est = est - est.mean(-1, keepdims=True)
  ref = ref - ref.mean(-1, keepdims=True)
  alpha = (est * ref).sum(-1, keepdims=True) / (
    (ref**2).sum(-1, keepdims=True) + eps
  )
  target = alpha * ref
  noise = est - target
  return 10 * np.log10((target**2).sum(-1) / ((noise**2).sum(-1) + eps) + eps)


def test_scaled_copy_hits_the_cap_and_scale_invariant():
  _, refs = _signals()
  # A perfect estimate scores 10 log10(1 / eps) = 80 dB whatever the level.
  np.testing.assert_allclose(
    metrics.si_sdr(-3.0 * refs + 0.5, refs), 80.0, atol=1e-6
  )
  np.testing.assert_allclose(
    metrics.si_sdr(1e-5 * refs, 1e-3 * refs), 80.0, atol=1e-6
  )
  est, _ = _signals(1)
  np.testing.assert_allclose(
    metrics.si_sdr(10 * est, refs), metrics.si_sdr(est, refs), rtol=1e-9
  )


def test_agrees_with_asteroid_at_normal_levels():
  rng = np.random.default_rng(4)
  refs = 0.05 * rng.standard_normal((2, 16000))  # About -26 dBFS.
  for noise in (0.03, 0.3, 1.0):
    est = refs + noise * 0.05 * rng.standard_normal((2, 16000))
    np.testing.assert_allclose(
      metrics.si_sdr(est, refs), _asteroid_si_sdr(est, refs), atol=1e-4
    )


def test_quiet_copy_scores_like_the_unscaled_one():
  rng = np.random.default_rng(5)
  refs = 0.05 * rng.standard_normal((2, 16000))
  est = refs + 0.1 * 0.05 * rng.standard_normal((2, 16000))  # ~20 dB.
  loud = metrics.si_sdr(est, refs)
  # x 1e-4 (about -105 dBFS): asteroid's absolute eps costs ~6 dB here.
  quiet = metrics.si_sdr(1e-4 * est, 1e-4 * refs)
  np.testing.assert_allclose(quiet, loud, atol=1e-6)
  assert np.all(_asteroid_si_sdr(1e-4 * est, 1e-4 * refs) < loud - 5)
  # The float32 jnp version too.
  quiet32 = metrics.batch_si_sdr(
    (1e-4 * est)[None].astype(np.float32),
    (1e-4 * refs)[None].astype(np.float32),
  )
  np.testing.assert_allclose(np.asarray(quiet32)[0], loud, atol=1e-3)
  silent = metrics.batch_si_sdr(
    np.zeros((1, 8), np.float32), np.zeros((1, 8), np.float32)
  )
  assert np.all(np.isfinite(np.asarray(silent)))


def test_separation_metrics_permutation_invariant():
  est, refs = _signals()
  mix = refs.sum(0)
  straight = metrics.separation_metrics(est, refs, mix)
  swapped = metrics.separation_metrics(est[::-1], refs, mix)
  np.testing.assert_allclose(swapped["si_sdr"], straight["si_sdr"])
  np.testing.assert_array_equal(straight["permutation"], [0, 1])
  np.testing.assert_array_equal(swapped["permutation"], [1, 0])
  np.testing.assert_allclose(
    straight["si_sdri"], straight["si_sdr"] - straight["input_si_sdr"]
  )


def test_mixture_as_estimate_gives_zero_improvement():
  _, refs = _signals()
  mix = refs.sum(0)
  result = metrics.separation_metrics(np.stack([mix, mix]), refs, mix)
  np.testing.assert_allclose(result["si_sdri"], 0.0, atol=1e-9)
  # Two equal-power independent sources: about 0 dB each.
  np.testing.assert_allclose(result["input_si_sdr"], 0.0, atol=1.5)


def test_jnp_batch_matches_numpy_with_lengths():
  rng = np.random.default_rng(2)
  lengths = np.array([300, 400])
  est = np.zeros((2, 2, 400), np.float32)
  refs = np.zeros((2, 2, 400), np.float32)
  mixes = np.zeros((2, 400), np.float32)
  want = []
  for b, n in enumerate(lengths):
    e, r = _signals(int(rng.integers(100)), n)
    e = e[::-1] if b == 1 else e  # Second example permuted.
    est[b, :, :n], refs[b, :, :n], mixes[b, :n] = e, r, r.sum(0)
    want.append(metrics.separation_metrics(e, r, r.sum(0)))
  got = metrics.batch_separation_metrics(est, refs, mixes, lengths)
  for key in ("si_sdr", "input_si_sdr", "si_sdri"):
    np.testing.assert_allclose(
      np.asarray(got[key]), np.stack([w[key] for w in want]), atol=2e-3
    )
  np.testing.assert_array_equal(
    np.asarray(got["permutation"]), [[0, 1], [1, 0]]
  )
  # Without lengths on unpadded data it is the plain formula.
  plain = metrics.batch_si_sdr(est[:1, :, :400], refs[:1, :, :400])
  np.testing.assert_allclose(
    np.asarray(plain)[0], metrics.si_sdr(est[0], refs[0]), atol=2e-3
  )
