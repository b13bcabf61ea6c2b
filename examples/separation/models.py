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

"""BLSTM speech separators (Seetharaman et al., "AutoClip", MLSP 2020, 4.2).

Input contract (what the training loop passes)
----------------------------------------------
``Separator(..., rngs=nnx.Rngs(seed))(mix_wave, train=...)`` (an
``nnx.Module``) takes the *mixture waveform* ``mix_wave: float32 [B, L]``
(8 kHz) and computes everything else inside the network:

* ``mix_stft = signal.stft(mix_wave)``: complex64 ``[B, T, F]`` with
  ``T = signal.num_frames(L) = 1 + ceil(L / 64)`` and ``F = 129``.  A 400-frame
  training chunk is ``signal.frames_to_samples(400) = 25536`` samples.
* features ``signal.log_magnitude(mix_stft)``, standardised per example
  (mean / std over all T-F bins) unless ``normalize_features=False``;
* a stack of ``num_layers`` bidirectional LSTMs (``hidden`` units per
  direction; the paper uses 4 x 600, the training-dynamics study 2 x 300);
* the head(s) selected by ``head``.

It returns a dict (S = ``num_sources``, D = ``embedding_dim``):

=============  ======================  ==========================  ===========
key            shape / dtype           meaning                     heads
=============  ======================  ==========================  ===========
``mix_stft``   complex64 [B, T, F]     mixture STFT                all
``masks``      float32 [B, S, T, F]    sigmoid masks in [0, 1]     mi, chimera,
                                                                   snr
``embedding``  float32 [B, T, F, D]    sigmoid, then unit L2 norm  dc, chimera
                                       over D
``waveforms``  float32 [B, S, L]       ``istft(masks * mix_stft)`` snr
                                       (mask on the magnitude,
                                       mixture phase), same L as
                                       the input
=============  ======================  ==========================  ===========

Heads: ``'mi'`` (mask inference), ``'dc'`` (deep clustering), ``'chimera'``
(both) and ``'snr'`` (waveform network: masks applied to ``|X|`` and inverted
with the mixture phase, i.e. ``istft(mask * X)``, inside the network).

Dropout (between BLSTM layers, like ``torch.nn.LSTM(dropout=...)``) is active
only with ``train=True`` and draws from the ``rngs`` given to the
constructor (its ``dropout`` stream, else ``default``).

The fast BLSTM
--------------
:func:`bidirectional_lstm` is a hand-written bidirectional LSTM for CPU/GPU:

* the input projections of all frames and both directions are one matmul
  ``[T*B, D_in] x [D_in, 2*4H]`` hoisted out of the recurrence;
* both directions run in the *same* ``lax.scan`` (the backward direction is
  fed time-reversed), so each step is one batched ``[2] x [B, H] x [H, 4H]``
  recurrent matmul plus one fused elementwise cell, in ``[T, 2, B, ...]``
  (time-major) layout;
* the sigmoid gates use ``sigmoid(z) = 0.5 * tanh(z / 2) + 0.5`` so that all
  four gate nonlinearities are a single ``tanh`` over ``[2, B, 4H]`` (up to
  ~1.5-2x faster per forward step on XLA:CPU than ``logistic`` + ``tanh``);
* a ``jax.custom_vjp`` backward pass (as in cuDNN / PyTorch): the reverse scan
  only propagates ``dh``, ``dc`` and emits the gate gradients, with the
  recurrent kernel pre-transposed (a row-major ``[4H, H]`` operand: ~1.7x
  faster per step than contracting over the kernel's minor axis); the
  recurrent weight gradient ``sum_t h_{t-1}^T dgates_t`` and the
  input-projection gradients are then single large matmuls outside the loop
  (~20 % faster than autodiff through the scan).

Performance notes (2-core AMD EPYC, see ``benchmarks/blstm_step.py``): a
training step is ~1.5-2x faster than flax's (Linen)
``nn.Bidirectional(nn.RNN(nn.OptimizedLSTMCell))`` at 2x64 / 2x128 and
~1.1-1.25x at 2x300, on par with ``torch.nn.LSTM`` at 2x64 and ~1.2x slower at
2x128 and 2x300. What limits it on XLA:CPU: the ops of a loop iteration run one
after the other on one thread, and XLA only splits a dot over the cores above
~8 MFLOP, so at 2x128 (4 MFLOP per step) the recurrence uses one of the two
cores (torch's per-step GEMMs use both: torch is 1.6x slower with one thread).
Independent ``while`` loops are not run concurrently either (two
single-direction scans are slower than one batched scan), ``unroll > 1`` did
not help, and the residual writes of the forward scan into freshly allocated
(page-faulting) buffers are a sizeable part of the step at 2x300.

LSTM equations are the standard ones (gate order i, f, g, o as in PyTorch),
``c_t = f * c_{t-1} + i * g``, ``h_t = o * tanh(c_t)``, zero initial state.
Initialisation: weights ``U(-1/sqrt(H), 1/sqrt(H))`` (PyTorch), bias zero
except the forget gate (1.0).  Parameters per layer:
``kernel_ih [D_in, 2, 4H]``, ``kernel_hh [2, H, 4H]``, ``bias [2, 4H]``
(index 0: forward, 1: backward direction). :func:`init_separator` draws the
initial weights exactly as the former Linen modules did for the same seed.
Variable-length / masked sequences are not supported (not needed: training
uses fixed chunks and evaluation runs one utterance at a time).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from examples.separation import signal

Array = jax.Array
HEADS = ("mi", "dc", "chimera", "snr")
EMBEDDING_ACTIVATIONS = ("sigmoid", "tanh")


# ----------------------------------------------------------------------------
# Recurrence with a hand-written backward pass.
# ----------------------------------------------------------------------------


def _gate_scale(hidden: int, dtype: Any) -> Array:
  """Pre-tanh scale: 1/2 for the sigmoid gates (i, f, o), 1 for g."""
  half = jnp.full((hidden,), 0.5, dtype)
  one = jnp.ones((hidden,), dtype)
  return jnp.concatenate([half, half, one, half])


def _cell(pre: Array, c: Array, hidden: int) -> tuple[Array, ...]:
  """One LSTM cell from pre-activations ``pre [..., 4H]`` (order i, f, g, o)."""
  t = jnp.tanh(pre * _gate_scale(hidden, pre.dtype))
  i = 0.5 * t[..., :hidden] + 0.5
  f = 0.5 * t[..., hidden : 2 * hidden] + 0.5
  g = t[..., 2 * hidden : 3 * hidden]
  o = 0.5 * t[..., 3 * hidden :] + 0.5
  c = f * c + i * g
  tc = jnp.tanh(c)
  return i, f, g, o, c, tc


def _recurrence_fwd_impl(
  xs: Array, w_hh: Array, unroll: int, save: bool
) -> tuple[Array, Any]:
  """Scans ``xs [T, D, B, 4H]``; returns ``hs [T, D, B, H]`` (+ residuals)."""
  _, ndir, batch, four_h = xs.shape
  hidden = four_h // 4

  def step(carry, x):
    h, c = carry
    pre = x + jnp.einsum("dbh,dhg->dbg", h, w_hh)
    i, f, g, o, c, tc = _cell(pre, c, hidden)
    h = o * tc
    if save:
      return (h, c), (h, jnp.concatenate([i, f, g, o], axis=-1), c, tc)
    return (h, c), h

  zeros = jnp.zeros((ndir, batch, hidden), xs.dtype)
  _, out = lax.scan(step, (zeros, zeros), xs, unroll=unroll)
  if save:
    hs, acts, cs, tcs = out
    return hs, (acts, cs, tcs)
  return out, None


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def lstm_recurrence(xs: Array, w_hh: Array, unroll: int = 1) -> Array:
  """Runs ``D`` independent LSTMs (one per leading index of ``w_hh``), one scan.

  Args:
    xs: input pre-activations ``[T, D, B, 4H]`` (input projection + bias,
      gate order i, f, g, o), already in the order each LSTM consumes them.
    w_hh: recurrent kernels ``[D, H, 4H]``.
    unroll: ``lax.scan`` unroll factor.

  Returns:
    hidden states ``[T, D, B, H]`` (zero initial state).
  """
  return _recurrence_fwd_impl(xs, w_hh, unroll, save=False)[0]


def _lstm_recurrence_fwd(xs, w_hh, unroll):
  hs, (acts, cs, tcs) = _recurrence_fwd_impl(xs, w_hh, unroll, save=True)
  return hs, (w_hh, hs, acts, cs, tcs)


def _lstm_recurrence_bwd(unroll, res, dhs):
  w_hh, hs, acts, cs, tcs = res
  _, ndir, batch, four_h = acts.shape
  hidden = four_h // 4
  zero = jnp.zeros((1, ndir, batch, hidden), hs.dtype)
  c_prev = jnp.concatenate([zero, cs[:-1]], axis=0)
  # Transposed once so that each step's matmul reads its operand row-major
  # (noticeably faster on CPU than contracting over the minor axis).
  w_hh_t = jnp.swapaxes(w_hh, 1, 2)  # [D, 4H, H]

  def step(carry, inp):
    dh_rec, dc_next = carry
    dh_out, act, cp, tc = inp
    i = act[..., :hidden]
    f = act[..., hidden : 2 * hidden]
    g = act[..., 2 * hidden : 3 * hidden]
    o = act[..., 3 * hidden :]
    dh = dh_out + dh_rec
    dc = dc_next + dh * o * (1.0 - tc * tc)
    dpre = jnp.concatenate(
      [
        dc * g * i * (1.0 - i),
        dc * cp * f * (1.0 - f),
        dc * i * (1.0 - g * g),
        dh * tc * o * (1.0 - o),
      ],
      axis=-1,
    )
    dh_rec = jnp.einsum("dbg,dgh->dbh", dpre, w_hh_t)
    return (dh_rec, dc * f), dpre

  zeros = jnp.zeros((ndir, batch, hidden), hs.dtype)
  _, dpres = lax.scan(
    step, (zeros, zeros), (dhs, acts, c_prev, tcs), reverse=True, unroll=unroll
  )
  # The recurrent weight gradient as one big matmul, outside the loop.
  dw_hh = jnp.einsum("tdbh,tdbg->dhg", hs[:-1], dpres[1:])
  return dpres, dw_hh


lstm_recurrence.defvjp(_lstm_recurrence_fwd, _lstm_recurrence_bwd)


def bidirectional_lstm(
  x: Array, kernel_ih: Array, kernel_hh: Array, bias: Array, unroll: int = 1
) -> Array:
  """One bidirectional LSTM layer, time-major.

  Args:
    x: ``[T, B, D_in]``.
    kernel_ih: ``[D_in, 2, 4H]`` (index 0 forward, 1 backward direction).
    kernel_hh: ``[2, H, 4H]``.
    bias: ``[2, 4H]``.
    unroll: scan unroll factor.

  Returns:
    ``[T, B, 2H]``: forward states in ``[..., :H]``, backward in ``[..., H:]``.
  """
  length, batch, d_in = x.shape
  four_h = kernel_hh.shape[-1]
  proj = x.reshape(length * batch, d_in) @ kernel_ih.reshape(d_in, 2 * four_h)
  proj = proj.reshape(length, batch, 2, four_h) + bias
  xs = jnp.stack([proj[:, :, 0], proj[::-1, :, 1]], axis=1)  # [T, 2, B, 4H]
  hs = lstm_recurrence(xs, kernel_hh, unroll)  # [T, 2, B, H]
  return jnp.concatenate([hs[:, 0], hs[::-1, 1]], axis=-1)


# ----------------------------------------------------------------------------
# NNX modules.
# ----------------------------------------------------------------------------


def _uniform(scale: float) -> Callable[..., Array]:
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -scale, scale)

  return init


def _lstm_bias_init(key, shape, dtype=jnp.float32):
  """Zero bias, forget gate (second quarter of the last axis) 1.0."""
  del key
  hidden = shape[-1] // 4
  return jnp.zeros(shape, dtype).at[..., hidden : 2 * hidden].set(1.0)


class BiLSTMLayer(nnx.Module):
  """One bidirectional LSTM layer, time-major ``[T, B, D_in] -> [T, B, 2H]``.

  The parameters feed :func:`bidirectional_lstm` (the fused recurrence with
  its custom VJP), which stays a plain function.
  """

  def __init__(
    self, in_features: int, hidden: int, *, unroll: int = 1, rngs: nnx.Rngs
  ):
    self.hidden = hidden
    self.unroll = unroll
    shapes = {
      "kernel_ih": (in_features, 2, 4 * hidden),
      "kernel_hh": (2, hidden, 4 * hidden),
      "bias": (2, 4 * hidden),
    }
    for name, init in self.param_inits():
      setattr(self, name, nnx.Param(init(rngs.params(), shapes[name])))

  def param_inits(self) -> tuple[tuple[str, Callable[..., Array]], ...]:
    """``(name, initialiser)`` of the parameters, in creation order."""
    init = _uniform(self.hidden**-0.5)
    return (
      ("kernel_ih", init),
      ("kernel_hh", init),
      ("bias", _lstm_bias_init),
    )

  def __call__(self, x: Array) -> Array:
    return bidirectional_lstm(
      x, self.kernel_ih[...], self.kernel_hh[...], self.bias[...], self.unroll
    )


class Dense(nnx.Linear):
  """``nnx.Linear`` (Linen ``nn.Dense``'s initialisers by default) that
  reports its initialisers (:meth:`param_inits`, for :func:`init_separator`).
  """

  def __init__(
    self,
    in_features: int,
    out_features: int,
    *,
    kernel_init: Callable[..., Array] | None = None,
    rngs: nnx.Rngs,
  ):
    kernel_init = kernel_init or nnx.initializers.lecun_normal()
    super().__init__(
      in_features, out_features, kernel_init=kernel_init, rngs=rngs
    )
    self.kernel_init = kernel_init

  def param_inits(self) -> tuple[tuple[str, Callable[..., Array]], ...]:
    """``(name, initialiser)`` of the parameters, in creation order."""
    return (("kernel", self.kernel_init), ("bias", nnx.initializers.zeros))


class BLSTM(nnx.Module):
  """A stack of bidirectional LSTM layers (``layer_0``, ``layer_1``, ...).

  Args:
    in_features: input feature size ``D_in``.
    num_layers: number of BLSTM layers (paper: 4).
    hidden: units per direction (paper: 600).
    dropout: dropout rate between layers (not after the last one).
    time_major: if True inputs / outputs are ``[T, B, ...]``, else
      ``[B, T, ...]``.
    unroll: ``lax.scan`` unroll factor of the recurrence.
    rngs: ``params`` (initialisation) and, with ``dropout > 0``, ``dropout``
      streams.
  """

  def __init__(
    self,
    in_features: int,
    num_layers: int = 4,
    hidden: int = 600,
    dropout: float = 0.0,
    time_major: bool = False,
    unroll: int = 1,
    *,
    rngs: nnx.Rngs,
  ):
    self.num_layers = num_layers
    self.time_major = time_major
    for layer in range(num_layers):
      d_in = in_features if layer == 0 else 2 * hidden
      setattr(
        self,
        f"layer_{layer}",
        BiLSTMLayer(d_in, hidden, unroll=unroll, rngs=rngs),
      )
    self.dropout = (
      nnx.Dropout(dropout, rngs=rngs)
      if dropout > 0 and num_layers > 1
      else None
    )

  def __call__(self, x: Array, *, deterministic: bool = True) -> Array:
    """``x [B, T, D_in]`` (or ``[T, B, D_in]``) -> ``[B, T, 2 * hidden]``."""
    if not self.time_major:
      x = jnp.swapaxes(x, 0, 1)
    for layer in range(self.num_layers):
      x = getattr(self, f"layer_{layer}")(x)
      if self.dropout is not None and layer < self.num_layers - 1:
        x = self.dropout(x, deterministic=deterministic)
    if not self.time_major:
      x = jnp.swapaxes(x, 0, 1)
    return x


def normalize_features(features: Array, eps: float = 1e-5) -> Array:
  """Per-example standardisation over all but the batch axis."""
  axes = tuple(range(1, features.ndim))
  mean = jnp.mean(features, axis=axes, keepdims=True)
  var = jnp.var(features, axis=axes, keepdims=True)
  return (features - mean) * lax.rsqrt(var + eps)


class Separator(nnx.Module):
  """BLSTM separator with a mask-inference / deep-clustering / waveform head.

  See the module docstring for the input contract and the returned dict.
  The parameters (:func:`params_dict`, a pure nested dict) are
  ``{'blstm': {'layer_0': ...}, 'mask': ..., 'embedding': ...}``, the layout
  of the former Linen module (its exports and checkpoints load unchanged).

  Args:
    num_layers: BLSTM layers (paper: 4).
    hidden: units per direction (paper: 600).
    head: one of ``'mi'``, ``'dc'``, ``'chimera'``, ``'snr'``.
    num_sources: number of masks / output waveforms (2).
    embedding_dim: deep-clustering embedding size (20).
    dropout: dropout between BLSTM layers (used with ``train=True``).
    normalize_features: standardise the log-magnitude per example.
    unroll: scan unroll factor of the recurrence.
    embedding_init_scale: scale of the embedding head's initial weights.
    embedding_activation: ``'sigmoid'`` (nussl's) or ``'tanh'``, applied to
      the embeddings before their unit norm.
    rngs: ``params`` (and, with dropout, ``dropout``) streams. Drawn from
      directly, the weights have the Linen version's distributions but not its
      values; :func:`init_separator` (what training uses) reproduces those.
  """

  def __init__(
    self,
    num_layers: int = 4,
    hidden: int = 600,
    head: str = "mi",
    num_sources: int = 2,
    embedding_dim: int = 20,
    dropout: float = 0.0,
    normalize_features: bool = True,
    unroll: int = 1,
    embedding_init_scale: float = 1.0,
    embedding_activation: str = "sigmoid",
    *,
    rngs: nnx.Rngs,
  ):
    if head not in HEADS:
      raise ValueError(f"head must be one of {HEADS}, got {head!r}.")
    if embedding_activation not in EMBEDDING_ACTIVATIONS:
      raise ValueError(
        f"embedding_activation must be one of {EMBEDDING_ACTIVATIONS}, got "
        f"{embedding_activation!r}."
      )
    self.embedding_activation = embedding_activation
    self.head = head
    self.num_sources = num_sources
    self.embedding_dim = embedding_dim
    self.normalize_features = normalize_features
    bins = signal.NUM_BINS
    self.blstm = BLSTM(
      bins,
      num_layers,
      hidden,
      dropout,
      time_major=True,
      unroll=unroll,
      rngs=rngs,
    )
    self.mask = (
      Dense(2 * hidden, num_sources * bins, rngs=rngs)
      if head in ("mi", "chimera", "snr")
      else None
    )
    # A larger initial scale spreads the unit-norm embeddings apart at
    # initialisation (mean cosine 0.99 at scale 1, 0.73 at 10 for the tiny
    # preset), away from the collapsed point where L_DC's gradient through
    # the normalisation vanishes.
    init = nnx.initializers.variance_scaling(
      embedding_init_scale**2, "fan_in", "truncated_normal"
    )
    self.embedding = (
      Dense(2 * hidden, bins * embedding_dim, kernel_init=init, rngs=rngs)
      if head in ("dc", "chimera")
      else None
    )

  def __call__(
    self, mix_wave: Array, *, train: bool = False
  ) -> dict[str, Array]:
    """Separates ``mix_wave [B, L]``; returns the dict documented above."""
    if mix_wave.ndim != 2:
      raise ValueError(f"mix_wave must be [B, L], got shape {mix_wave.shape}.")
    length = mix_wave.shape[-1]
    mix_stft = signal.stft(mix_wave)  # [B, T, F]
    batch, frames, bins = mix_stft.shape
    features = signal.log_magnitude(mix_stft)
    if self.normalize_features:
      features = normalize_features(features)
    hidden = self.blstm(
      jnp.swapaxes(features, 0, 1), deterministic=not train
    )  # [T, B, 2H]
    out = {"mix_stft": mix_stft}
    if self.mask is not None:
      masks = nnx.sigmoid(self.mask(hidden))
      masks = masks.reshape(frames, batch, self.num_sources, bins)
      out["masks"] = jnp.transpose(masks, (1, 2, 0, 3))  # [B, S, T, F]
    if self.embedding is not None:
      act = nnx.sigmoid if self.embedding_activation == "sigmoid" else jnp.tanh
      emb = act(self.embedding(hidden))
      emb = emb.reshape(frames, batch, bins, self.embedding_dim)
      emb = emb * lax.rsqrt(jnp.sum(emb * emb, axis=-1, keepdims=True) + 1e-12)
      out["embedding"] = jnp.swapaxes(emb, 0, 1)  # [B, T, F, D]
    if self.head == "snr":
      estimates = out["masks"] * mix_stft[:, None]  # mask |X|, mixture phase.
      out["waveforms"] = signal.istft(estimates, length)  # [B, S, L]
    return out


# ----------------------------------------------------------------------------
# Parameters as pure dicts (exports, checkpoints) and functional application.
# ----------------------------------------------------------------------------


def params_dict(model: nnx.Module) -> dict:
  """The model's parameters as a pure nested dict of arrays."""
  return nnx.to_pure_dict(nnx.state(model, nnx.Param))


def load_params(model: nnx.Module, params: dict) -> None:
  """Sets ``model``'s parameters from a pure dict (as :func:`params_dict`)."""
  state = nnx.state(model, nnx.Param)
  nnx.replace_by_pure_dict(state, params)
  nnx.update(model, state)


def linen_key(rng: Array, *path: str | int) -> Array:
  """The key Flax Linen's ``init(rng)`` draws a parameter's value from.

  Linen folds the SHA-1 hash of the module path and the parameter's 1-based
  index among its module's parameters (e.g. ``('blstm', 'layer_0', 2)`` for
  ``kernel_hh``) into the root key (``flax.core.scope._fold_in_static``).
  """
  digest = hashlib.sha1()
  for x in path:
    if isinstance(x, str):
      digest.update(x.encode("utf-8"))
    else:
      digest.update(x.to_bytes((x.bit_length() + 7) // 8, byteorder="big"))
  data = int.from_bytes(digest.digest()[:4], byteorder="big")
  return jax.random.fold_in(rng, jnp.uint32(data))


def _init_like_linen(model: nnx.Module, rng: Array) -> None:
  """Redraws every parameter of ``model`` as the Linen version drew it."""
  for path, module in nnx.iter_graph(model):
    if not isinstance(module, nnx.Module) or not hasattr(module, "param_inits"):
      continue
    for index, (name, init) in enumerate(module.param_inits(), start=1):
      param = getattr(module, name)
      key = linen_key(rng, *path, index)
      param.set_value(init(key, param.shape, param.dtype))


def init_separator(create: Callable[[nnx.Rngs], nnx.Module], rng: Array):
  """``create(nnx.Rngs(rng))``, initialised as the Linen version was.

  The parameters are drawn with the keys Linen's ``model.init(rng, ...)``
  used (:func:`linen_key`; same initialisers), so a seed gives bit for bit
  the initial weights the Linen implementation gave (results reproduce).
  The whole initialisation is one jitted computation (op-by-op
  initialisation dispatches every initialiser separately).
  """

  def init(key):
    model = create(nnx.Rngs(key))
    _init_like_linen(model, key)
    return nnx.split(model)[1]

  graphdef, _ = nnx.split(nnx.eval_shape(lambda: create(nnx.Rngs(rng))))
  return nnx.merge(graphdef, jax.jit(init)(rng))


def abstract_params(create: Callable[[nnx.Rngs], nnx.Module]) -> dict:
  """The parameters' ``jax.ShapeDtypeStruct`` pure dict (nothing computed)."""
  model = nnx.eval_shape(lambda: create(nnx.Rngs(0)))
  return params_dict(model)


def functional(model: nnx.Module) -> tuple[Callable[..., Any], dict]:
  """``(apply, params)``: ``model`` as a pure function of pure-dict params.

  ``apply(params, *args, **kwargs)`` merges ``params`` into a copy of
  ``model``'s state and calls it (jittable and differentiable in ``params``,
  like Linen's ``model.apply({"params": params}, ...)``); ``params`` is
  :func:`params_dict` of ``model``. Works on an abstract model
  (``nnx.eval_shape``) too.
  """
  graphdef, state = nnx.split(model)

  def apply(params: dict, *args, **kwargs):
    copy = jax.tree.map(lambda x: x, state)
    nnx.replace_by_pure_dict(copy, params)
    return nnx.merge(graphdef, copy)(*args, **kwargs)

  return apply, params_dict(model)
