"""Checks that a built wheel holds the library and nothing else.

``python tools/check_wheel.py dist/autoclip_optax-*.whl`` fails if the wheel
contains anything outside ``autoclip_optax/`` and its ``.dist-info``
(``tests/``, ``examples/``, ``benchmarks/``, ...), lacks ``py.typed`` or a
module of the package, or if its version differs from
``autoclip_optax.__version__`` in the source tree.
"""

import ast
import pathlib
import sys
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[1]


def source_version() -> str:
  tree = ast.parse((ROOT / "autoclip_optax" / "__init__.py").read_text())
  for node in tree.body:
    if isinstance(node, ast.Assign) and any(
      isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
    ):
      return ast.literal_eval(node.value)
  raise SystemExit("no __version__ in autoclip_optax/__init__.py")


def check(wheel: pathlib.Path) -> list[str]:
  """Returns the problems found in ``wheel`` (empty if none)."""
  version = source_version()
  dist_info = f"autoclip_optax-{version}.dist-info/"
  with zipfile.ZipFile(wheel) as zf:
    names = zf.namelist()
  problems = [
    f"unexpected file {name}"
    for name in names
    if not (name.startswith("autoclip_optax/") or name.startswith(dist_info))
  ]
  expected = {
    path.relative_to(ROOT).as_posix()
    for path in (ROOT / "autoclip_optax").rglob("*.py")
  } | {"autoclip_optax/py.typed", dist_info + "METADATA"}
  problems += [f"missing {name}" for name in sorted(expected - set(names))]
  return problems


def main(argv: list[str]) -> int:
  if len(argv) != 1:
    raise SystemExit("usage: python tools/check_wheel.py WHEEL")
  problems = check(pathlib.Path(argv[0]))
  for problem in problems:
    print(problem)
  print(f"{argv[0]}: {'FAILED' if problems else 'ok'}")
  return 1 if problems else 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
