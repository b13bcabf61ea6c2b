"""autoclip-optax: AutoClip gradient clipping and companions for optax.

* :func:`autoclip`: AutoClip (Seetharaman et al., MLSP 2020) as an optax
  gradient transformation, with :class:`AutoClipState`, :func:`clip_fraction`
  and the order-statistics helper :func:`percentile_of_sorted`.
* Epoch learning-rate schedulers of Vial (2022): :func:`rop2`,
  :func:`chained_rop2`, :func:`caswr`, :func:`caswr_rop2`,
  :func:`rop2_caswr_alt`, :func:`rocp`, with :func:`should_stop`.
* Softmax gradient reweighting (Tzinis et al., ICASSP 2021):
  :func:`softmax_weights`, :func:`robust_weights`, :func:`curriculum_weights`,
  :func:`class_weights`, :func:`reweighted_loss`,
  :func:`curriculum_beta_schedule`.
"""

from autoclip_optax._autoclip import autoclip
from autoclip_optax._autoclip import AutoClipState
from autoclip_optax._autoclip import clip_fraction
from autoclip_optax._order_stats import PERCENTILE_METHODS
from autoclip_optax._order_stats import percentile_of_sorted
from autoclip_optax._reweighting import class_weights
from autoclip_optax._reweighting import curriculum_beta_schedule
from autoclip_optax._reweighting import curriculum_weights
from autoclip_optax._reweighting import reweighted_loss
from autoclip_optax._reweighting import robust_weights
from autoclip_optax._reweighting import softmax_weights
from autoclip_optax._schedulers import caswr
from autoclip_optax._schedulers import caswr_rop2
from autoclip_optax._schedulers import chained_rop2
from autoclip_optax._schedulers import EpochSchedulerState
from autoclip_optax._schedulers import rocp
from autoclip_optax._schedulers import ROCPState
from autoclip_optax._schedulers import rop2
from autoclip_optax._schedulers import rop2_caswr_alt
from autoclip_optax._schedulers import should_stop

# The one version number: pyproject.toml reads it (setuptools `attr:`).
__version__ = "0.1.0"

__all__ = [
  # AutoClip.
  "autoclip",
  "AutoClipState",
  "clip_fraction",
  "percentile_of_sorted",
  "PERCENTILE_METHODS",
  # Epoch learning-rate schedulers.
  "rop2",
  "chained_rop2",
  "caswr",
  "caswr_rop2",
  "rop2_caswr_alt",
  "rocp",
  "should_stop",
  "EpochSchedulerState",
  "ROCPState",
  # Softmax gradient reweighting.
  "softmax_weights",
  "robust_weights",
  "curriculum_weights",
  "class_weights",
  "reweighted_loss",
  "curriculum_beta_schedule",
]
