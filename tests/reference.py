"""Plain-numpy AutoClip (Algorithm 1 of Seetharaman et al. 2020) for tests."""

import numpy as np


def global_norm(leaves):
  """Float64 global L2 norm (NaN and inf propagate)."""
  total = 0.0
  for x in leaves:
    x = np.asarray(x, np.float64)
    total += float(np.sum(x * x))
  return float(np.sqrt(total))


def reference_autoclip(
  grad_stream,
  p,
  history_size,
  method="linear",
  warmup_steps=0,
  warmup_max_norm=None,
):
  """Runs Algorithm 1 over a list of gradient leaf-lists.

  Returns a list of dicts with the threshold, norm and clipped leaves of each
  step. A non-finite norm is not appended to the history and its gradient is
  returned unchanged (the library's documented behaviour).
  """
  history = []
  out = []
  for t, leaves in enumerate(grad_stream):
    norm = global_norm(leaves)
    finite = np.isfinite(norm)
    if finite:
      history.append(np.float32(norm))
      history = history[-history_size:]
    if t < warmup_steps:
      threshold = np.inf if warmup_max_norm is None else warmup_max_norm
    elif history:
      threshold = float(
        np.percentile(np.asarray(history, np.float64), p, method=method)
      )
    else:
      threshold = np.inf
    # The library keeps norms in float32; compare at that precision.
    clipped = bool(finite and np.float32(norm) > threshold)
    scale = threshold / norm if clipped else 1.0
    out.append(
      {
        "threshold": threshold,
        "norm": norm,
        "clipped": clipped,
        "updates": [np.asarray(x, np.float64) * scale for x in leaves],
      }
    )
  return out


def hostile_stream(num_steps, seed, shapes=((2000,), (3,), (5, 4))):
  """Random gradients with spikes, zeros, tiny and huge scales, NaN and inf."""
  rng = np.random.default_rng(seed)
  stream = []
  kinds = ["normal"] * 10 + [
    "spike",
    "zeros",
    "tiny",
    "huge",
    "nan",
    "inf",
    "big_leaf",
  ]
  for _ in range(num_steps):
    kind = kinds[rng.integers(len(kinds))]
    scale = float(rng.lognormal(0.0, 1.0))
    leaves = [rng.standard_normal(s).astype(np.float32) * scale for s in shapes]
    if kind == "spike":
      leaves = [x * 1e4 for x in leaves]
    elif kind == "zeros":
      leaves = [np.zeros_like(x) for x in leaves]
    elif kind == "tiny":  # Squares underflow float32.
      leaves = [(x * 1e-30).astype(np.float32) for x in leaves]
    elif kind == "huge":  # Squares overflow float32, the norm does not.
      leaves = [(x * 1e20).astype(np.float32) for x in leaves]
    elif kind == "nan":
      leaves[1] = leaves[1].copy()
      leaves[1][0] = np.nan
    elif kind == "inf":
      leaves[2] = leaves[2].copy()
      leaves[2].flat[3] = np.inf
    elif kind == "big_leaf":
      leaves[0] = leaves[0] * 1e3
    stream.append(leaves)
  return stream
