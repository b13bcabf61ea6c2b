"""autoclip-optax: adaptive gradient clipping (AutoClip) and companions for optax."""

from autoclip_optax._autoclip import autoclip
from autoclip_optax._autoclip import AutoClipState
from autoclip_optax._autoclip import clip_fraction
from autoclip_optax._order_stats import percentile_of_sorted
from autoclip_optax._order_stats import PERCENTILE_METHODS

__version__ = "0.1.0"

__all__ = [
    "autoclip",
    "AutoClipState",
    "clip_fraction",
    "percentile_of_sorted",
    "PERCENTILE_METHODS",
]

# --- begin: epoch LR schedulers and softmax gradient reweighting -------------
# pylint: disable=g-import-not-at-top,wrong-import-position
from autoclip_optax._schedulers import caswr  # noqa: E402
from autoclip_optax._schedulers import caswr_rop2  # noqa: E402
from autoclip_optax._schedulers import chained_rop2  # noqa: E402
from autoclip_optax._schedulers import EpochSchedulerState  # noqa: E402
from autoclip_optax._schedulers import rocp  # noqa: E402
from autoclip_optax._schedulers import ROCPState  # noqa: E402
from autoclip_optax._schedulers import rop2  # noqa: E402
from autoclip_optax._schedulers import rop2_caswr_alt  # noqa: E402
from autoclip_optax._schedulers import should_stop  # noqa: E402
from autoclip_optax._reweighting import class_weights  # noqa: E402
from autoclip_optax._reweighting import curriculum_beta_schedule  # noqa: E402
from autoclip_optax._reweighting import curriculum_weights  # noqa: E402
from autoclip_optax._reweighting import reweighted_loss  # noqa: E402
from autoclip_optax._reweighting import robust_weights  # noqa: E402
from autoclip_optax._reweighting import softmax_weights  # noqa: E402
# pylint: enable=g-import-not-at-top,wrong-import-position

__all__ += [
    "caswr",
    "caswr_rop2",
    "chained_rop2",
    "EpochSchedulerState",
    "rocp",
    "ROCPState",
    "rop2",
    "rop2_caswr_alt",
    "should_stop",
    "class_weights",
    "curriculum_beta_schedule",
    "curriculum_weights",
    "reweighted_loss",
    "robust_weights",
    "softmax_weights",
]
# --- end: epoch LR schedulers and softmax gradient reweighting ---------------
