"""Test-wide settings: 8 simulated CPU devices for the multi-device tests.

Must run before JAX initialises its backends, which is why it lives in the root
conftest (pytest imports it before any test module).
"""

import os

_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
  os.environ["XLA_FLAGS"] = (
    _flags + " --xla_force_host_platform_device_count=8"
  ).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# Property tests: CI runs a fixed, derandomised set of examples so that a
# submission cannot fail by chance; local runs keep exploring new examples.
# Select explicitly with HYPOTHESIS_PROFILE=ci|dev.
try:
  import hypothesis
except ImportError:  # pragma: no cover - hypothesis is a test extra
  hypothesis = None
if hypothesis is not None:
  hypothesis.settings.register_profile(
    "ci", derandomize=True, print_blob=True, deadline=None
  )
  hypothesis.settings.register_profile("dev", print_blob=True)
  hypothesis.settings.load_profile(
    os.environ.get(
      "HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"
    )
  )
