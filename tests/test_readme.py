"""The README's generated blocks match the result files they are copied from."""

import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _tool():
  spec = importlib.util.spec_from_file_location(
    "update_readme", ROOT / "tools" / "update_readme.py"
  )
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_readme_blocks_are_up_to_date():
  tool = _tool()
  readme = (ROOT / "README.md").read_text(encoding="utf-8")
  assert tool.update(readme) == readme, (
    "README.md is out of date: run python tools/update_readme.py"
  )
  for name in tool.SOURCES:
    assert f"<!-- BEGIN GENERATED: {name} -->" in readme, name


def test_readme_starts_with_the_two_setup_commands():
  lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
  commands = [l for l in lines[:12] if l.startswith("python3 -m venv")]
  assert len(commands) == 2
  assert "examples.separation.compare" in commands[0]
  assert 'pip install -e ".[test]"' in commands[1]
  assert "pytest" in commands[1]


def test_missing_source_says_which_command_writes_it(tmp_path, monkeypatch):
  tool = _tool()
  monkeypatch.setattr(tool, "ROOT", tmp_path)
  text = "<!-- BEGIN GENERATED: sweep -->\nold\n<!-- END GENERATED: sweep -->\n"
  new = tool.update(text)
  assert "old" not in new and "examples.separation.sweep" in new
