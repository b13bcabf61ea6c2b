"""Two processes joined by jax.distributed on 127.0.0.1 train with AutoClip."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests import multihost_problem

_WORKER = os.path.join(os.path.dirname(__file__), "multihost_worker.py")
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_match_each_other_and_one_process(tmp_path):
  port = _free_port()
  outs = [tmp_path / f"process{i}.json" for i in range(2)]
  env = dict(os.environ, PYTHONPATH=_ROOT)
  env.pop("XLA_FLAGS", None)
  procs = [
    subprocess.Popen(
      [sys.executable, _WORKER, str(i), "2", str(port), str(outs[i])],
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
    )
    for i in range(2)
  ]
  logs = []
  try:
    for proc in procs:
      logs.append(proc.communicate(timeout=180)[0])
  except subprocess.TimeoutExpired:
    pytest.fail("multi-process run timed out")
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
        proc.wait()
  for proc, log in zip(procs, logs, strict=True):
    assert proc.returncode == 0, log[-3000:]
  results = [json.loads(out.read_text()) for out in outs]
  assert [r["process_index"] for r in results] == [0, 1]
  assert results[0]["global_devices"] == 4
  for key in ("w", "b", "threshold", "num_clipped", "history"):
    assert results[0][key] == results[1][key], key

  params, state = multihost_problem.run_single_device()
  single = multihost_problem.summarize(params, state)
  assert results[0]["num_clipped"] == single["num_clipped"] > 0
  np.testing.assert_allclose(
    results[0]["history"], single["history"], rtol=1e-5
  )
  np.testing.assert_allclose(
    results[0]["threshold"], single["threshold"], rtol=1e-5
  )
  np.testing.assert_allclose(results[0]["w"], single["w"], rtol=1e-4, atol=1e-5)
