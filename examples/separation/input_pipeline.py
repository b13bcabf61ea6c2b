"""Background prefetching of training batches, keyed by step.

The synthetic generator (numpy) and the wav reader take a few to tens of
milliseconds per batch; done in the training loop they add that to every step.
:class:`Prefetcher` computes ``load(step)`` for the next ``depth`` steps in
background threads while the jitted step runs (numpy, soundfile and
``jax.device_put`` release the GIL for the bulk of their work), and hands the
batches back strictly in step order.

Because every batch is a pure function of its step (``dataset.batch_at``),
prefetching changes nothing in what the model sees: a run resumed at step
``k`` builds a new prefetcher starting at ``k`` and gets exactly the batches an
uninterrupted run would.

Example::

  def load(step):
    return shard_batch(dataset.batch_at(step, batch_size), mesh)

  with Prefetcher(load, start=0, stop=num_steps, depth=2) as batches:
    for step, batch in batches:
      state, logs = train_step(state, batch)
"""

from __future__ import annotations

import collections
import concurrent.futures
from collections.abc import Callable, Iterator
from typing import Any


class Prefetcher:
  """Iterates ``(step, load(step))`` for ``step`` in ``[start, stop)``.

  Args:
    load: ``load(step) -> batch``; called from worker threads, so it must not
      depend on mutable state shared with the consumer.
    start: first step.
    stop: one past the last step.
    depth: how many batches are prepared ahead of the consumer (>= 1). Memory
      holds at most ``depth + 1`` batches.
    workers: background threads (>= 1). One is enough when ``load`` is faster
      than a training step; more help a slow ``load`` keep up.

  Errors raised by ``load`` are re-raised by the iterator at the step they
  belong to. Leaving early (``break``, an exception) cancels the batches not
  yet started; use it as a context manager, or call :meth:`close`.
  """

  def __init__(
    self,
    load: Callable[[int], Any],
    start: int,
    stop: int,
    depth: int = 2,
    workers: int = 1,
  ):
    if depth < 1:
      raise ValueError(f"depth={depth!r} must be >= 1")
    if workers < 1:
      raise ValueError(f"workers={workers!r} must be >= 1")
    self._load = load
    self._next_submit = int(start)
    self._next_yield = int(start)
    self._stop = int(stop)
    self._depth = int(depth)
    self._pool = concurrent.futures.ThreadPoolExecutor(
      max_workers=workers, thread_name_prefix="prefetch"
    )
    self._pending: collections.deque = collections.deque()
    self._closed = False
    self._fill()

  def _fill(self) -> None:
    while (
      len(self._pending) < self._depth + 1 and self._next_submit < self._stop
    ):
      step = self._next_submit
      self._pending.append((step, self._pool.submit(self._load, step)))
      self._next_submit += 1

  def __iter__(self) -> Iterator[tuple[int, Any]]:
    return self

  def __next__(self) -> tuple[int, Any]:
    if self._closed or not self._pending:
      self.close()
      raise StopIteration
    step, future = self._pending.popleft()
    self._fill()
    try:
      batch = future.result()
    except BaseException:
      self.close()
      raise
    self._next_yield = step + 1
    return step, batch

  def close(self) -> None:
    """Cancels pending work and joins the threads (idempotent)."""
    if self._closed:
      return
    self._closed = True
    for _, future in self._pending:
      future.cancel()
    self._pending.clear()
    self._pool.shutdown(wait=True, cancel_futures=True)

  def __enter__(self) -> Prefetcher:
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()
