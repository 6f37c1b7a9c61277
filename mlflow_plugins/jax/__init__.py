"""JAX/Flax NNX/optax adapters: `monitored` (statistics inside `jit`), `watch_jax`, `probe_norms`.

Example:
    >>> probe_norms(model)
    >>> graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    >>> tx = monitored(optax.adam(1e-3))
    >>> monitor = watch_jax(params)  # then monitor.observe(step, opt_state, ...) every step

Needs the extra `fixlab[jax]`.
"""

from .. import _require

_require(__name__, "jax", "jax", "flax", "optax")

from ..session import TrainingStopped
from .modules import L2Normalize
from .monitor import JaxMonitor, watch_jax
from .norm_probes import NormTap, probe_norms, unprobe_norms
from .transform import MonitoredState, monitored

__all__ = ["JaxMonitor", "L2Normalize", "MonitoredState", "NormTap", "TrainingStopped",
           "monitored", "probe_norms", "unprobe_norms", "watch_jax"]
