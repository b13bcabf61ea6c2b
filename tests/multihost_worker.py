"""One process of the two-process AutoClip test (see test_multihost.py).

Usage: python multihost_worker.py PROCESS_ID NUM_PROCESSES PORT OUT_JSON
Each process owns 2 CPU devices; the global batch is sharded over all 4.
"""

import json
import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # pylint: disable=wrong-import-position

jax.config.update("jax_cpu_collectives_implementation", "gloo")

import numpy as np  # pylint: disable=wrong-import-position
from jax.sharding import Mesh  # pylint: disable=wrong-import-position
from jax.sharding import NamedSharding  # pylint: disable=wrong-import-position
from jax.sharding import PartitionSpec as P  # pylint: disable=wrong-import-position

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from tests import multihost_problem  # pylint: disable=wrong-import-position


def main():
  process_id, num_processes, port, out = (
    int(sys.argv[1]),
    int(sys.argv[2]),
    int(sys.argv[3]),
    sys.argv[4],
  )
  jax.distributed.initialize(
    coordinator_address=f"127.0.0.1:{port}",
    num_processes=num_processes,
    process_id=process_id,
    initialization_timeout=60,
  )
  mesh = Mesh(np.array(jax.devices()), ("data",))
  data_sharding = NamedSharding(mesh, P("data"))
  replicated = NamedSharding(mesh, P())
  x_all, y_all = multihost_problem.make_data()
  per_process = x_all.shape[1] // num_processes
  rows = slice(process_id * per_process, (process_id + 1) * per_process)

  params = multihost_problem.init_params()
  opt = multihost_problem.make_optimizer()
  params = jax.device_put(params, replicated)
  state = jax.device_put(opt.init(params), replicated)
  step = jax.jit(
    multihost_problem.make_step(opt), out_shardings=(replicated, replicated)
  )
  for t in range(x_all.shape[0]):
    x = jax.make_array_from_process_local_data(data_sharding, x_all[t, rows])
    y = jax.make_array_from_process_local_data(data_sharding, y_all[t, rows])
    params, state = step(params, state, x, y)
  result = multihost_problem.summarize(params, state)
  result["process_index"] = jax.process_index()
  result["global_devices"] = jax.device_count()
  with open(out, "w", encoding="utf-8") as f:
    json.dump(result, f)
  jax.distributed.shutdown()


if __name__ == "__main__":
  main()
