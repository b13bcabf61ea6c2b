"""Test-wide settings: 8 simulated CPU devices for the multi-device tests.

Must run before JAX initialises its backends, which is why it lives in the root
conftest (pytest imports it before any test module).
"""
import os

_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
  os.environ["XLA_FLAGS"] = (
      _flags + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
