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
