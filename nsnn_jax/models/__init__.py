"""Model registry: architectures picked by name."""

from __future__ import annotations

from typing import Callable

import flax.linen as nn

from nsnn_jax.models import init
from nsnn_jax.models.cifarnet import CIFARNet, cifarnet, cifarnet_table5
from nsnn_jax.models.mlp import ReluMLP, SpikingMLP
from nsnn_jax.models.resnet import SpikingResNet, resnet18, resnet18_table5, resnet19, resnet19_table5
from nsnn_jax.models.sevenb import SevenBNet
from nsnn_jax.models.sequential import SpikingSequential
from nsnn_jax.models.vgg import VGGSNN, vggsnn, vggsnn_table5

__all__ = ["MODELS", "register_model", "get_model", "init", "SpikingMLP", "ReluMLP", "CIFARNet", "cifarnet",
           "cifarnet_table5", "SpikingResNet", "resnet18", "resnet18_table5", "resnet19", "resnet19_table5",
           "VGGSNN", "vggsnn", "vggsnn_table5", "SevenBNet", "SpikingSequential"]

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
# The paper's names give the authors' forms (their code produced Table 1); "_table5" the reading of Table 5.
register_model("cifarnet", cifarnet)
register_model("cifarnet_table5", cifarnet_table5)
register_model("resnet18", resnet18)
register_model("resnet18_table5", resnet18_table5)
register_model("resnet19", resnet19)
register_model("resnet19_table5", resnet19_table5)
register_model("vggsnn", vggsnn)
register_model("vggsnn_table5", vggsnn_table5)
register_model("sevenb", SevenBNet)
register_model("sequential", SpikingSequential)
