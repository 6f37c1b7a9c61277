"""Which framework an object belongs to, to say so when it is given to the other one's monitor
(`watch_jax(<torch module>)`, `watch(<flax module>)`). Reads type names only: importing neither
torch nor JAX, so a JAX user does not pay for torch and the other way round.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["a torch.nn.Module", "a torch.Tensor", "a Flax NNX module", "a JAX pytree"]
_MAX_DEPTH = 4  # how deep into dicts, lists and tuples to look for a framework's leaf
_MAX_ITEMS = 64  # items looked at per container


def kind_of(value: object) -> Kind | None:
    """What `value` is in a framework's terms, or None when it belongs to neither.

    Example:
        >>> kind_of(torch.nn.Linear(2, 2)), kind_of({"w": jnp.ones(2)})
        ('a torch.nn.Module', 'a JAX pytree')
    """
    return _kind(value, _MAX_DEPTH)


def _kind(value: object, depth: int) -> Kind | None:
    mro = type(value).__mro__
    if any(c.__module__.startswith("torch.nn.modules") and c.__name__ == "Module" for c in mro):
        return "a torch.nn.Module"
    if any(c.__module__ == "torch" and c.__name__ == "Tensor" for c in mro):
        return "a torch.Tensor"
    if any(c.__module__.startswith("flax.nnx") and c.__name__ == "Module" for c in mro):
        return "a Flax NNX module"
    root = type(value).__module__.partition(".")[0]
    if root in ("jax", "jaxlib", "flax"):
        return "a JAX pytree"
    if depth > 0 and isinstance(value, (dict, list, tuple)):
        items = value.values() if isinstance(value, dict) else value
        for i, item in enumerate(items):
            found = _kind(item, depth - 1)
            if found is not None or i >= _MAX_ITEMS:
                return "a JAX pytree" if found in ("a JAX pytree", "a Flax NNX module") else found
    return None
