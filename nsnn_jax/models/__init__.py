"""Model registry: architectures picked by name."""

from __future__ import annotations

from typing import Callable

import flax.linen as nn

from nsnn_jax.models.cifarnet import CIFARNet
from nsnn_jax.models.mlp import ReluMLP, SpikingMLP
from nsnn_jax.models.resnet import SpikingResNet, resnet18, resnet19
from nsnn_jax.models.sevenb import SevenBNet
from nsnn_jax.models.sequential import SpikingSequential
from nsnn_jax.models.vgg import VGGSNN

__all__ = ["MODELS", "register_model", "get_model", "SpikingMLP", "ReluMLP", "CIFARNet",
           "SpikingResNet", "resnet18", "resnet19", "VGGSNN", "SevenBNet", "SpikingSequential"]

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
register_model("cifarnet", CIFARNet)
register_model("resnet18", resnet18)
register_model("resnet19", resnet19)
register_model("vggsnn", VGGSNN)
register_model("sevenb", SevenBNet)
register_model("sequential", SpikingSequential)
