"""Runs the README's quick-start snippet against the installed package.

``python tools/quickstart_check.py [README.md]`` takes the first ```python
block of the README (the quick start right after the set-up commands), runs
it, then takes one optimizer step with the ``opt`` it defines. It fails
unless ``autoclip_optax`` is imported from an installed distribution (not
from a source checkout on ``sys.path``) whose metadata version equals
``autoclip_optax.__version__`` and which ships ``py.typed``.

CI runs it from outside the checkout in a fresh virtual environment where
only the built wheel is installed, so a packaging mistake fails there.
"""

import importlib.metadata
import os
import pathlib
import re
import sys

DEFAULT_README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def quickstart_snippet(readme: str) -> str:
  """The first ```python fenced block of ``readme``."""
  match = re.search(r"^```python\n(.*?)^```", readme, re.M | re.S)
  if match is None:
    raise SystemExit("README has no ```python block")
  return match.group(1)


def main(argv: list[str]) -> int:
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  readme = pathlib.Path(argv[0]) if argv else DEFAULT_README
  code = quickstart_snippet(readme.read_text(encoding="utf-8"))
  namespace: dict = {}
  exec(compile(code, f"{readme} (quick start)", "exec"), namespace)

  import jax.numpy as jnp  # After the snippet, which imports them itself.
  import optax

  import autoclip_optax

  opt = namespace["opt"]
  params = {"w": jnp.ones(3)}
  state = opt.init(params)
  updates, state = opt.update({"w": jnp.full(3, 2.0)}, state, params)
  threshold = float(optax.tree.get(state, "threshold"))
  assert abs(threshold - 12**0.5) < 1e-5, threshold

  package = pathlib.Path(autoclip_optax.__file__).resolve().parent
  dist = importlib.metadata.distribution("autoclip-optax")
  location = pathlib.Path(str(dist.locate_file(""))).resolve()
  checks = {
    "imported from the installed distribution": package.parent == location,
    "metadata version == __version__": (
      dist.version == autoclip_optax.__version__
    ),
    "py.typed installed": (package / "py.typed").is_file(),
  }
  for name, ok in checks.items():
    print(f"{'ok' if ok else 'FAILED'}: {name}")
  print(f"autoclip-optax {dist.version} from {package}")
  return 0 if all(checks.values()) else 1


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
