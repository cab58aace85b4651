"""Model registry: architectures picked by name."""

from __future__ import annotations

from typing import Callable

import flax.linen as nn

from nsnn_jax.models.mlp import ReluMLP, SpikingMLP

__all__ = ["MODELS", "register_model", "get_model", "SpikingMLP", "ReluMLP"]

MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str, constructor: Callable[..., nn.Module]) -> None:
    """Registers ``constructor`` (a Module class or factory) under ``name``."""
    if name in MODELS:
        raise ValueError(f"Model {name!r} is already registered.")
    MODELS[name] = constructor


def get_model(name: str, **kwargs) -> nn.Module:
    """Builds the model registered as ``name`` with ``kwargs``.

    Raises:
      ValueError: unknown name.
    """
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; expected one of {sorted(MODELS)}.")
    return MODELS[name](**kwargs)


register_model("mlp", SpikingMLP)
register_model("ann_mlp", ReluMLP)
