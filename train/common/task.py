"""What a command trains: :class:`Task`."""

from __future__ import annotations

import dataclasses
from typing import Callable

import flax.linen as nn
import jax

from nsnn_jax.data import Dataset

LossFn = Callable[[jax.Array, jax.Array], jax.Array]
Preprocess = Callable[[jax.Array, jax.Array, bool], jax.Array]


@dataclasses.dataclass
class Task:
    """What to train: a model, its data, and how to score it.

    Attributes:
      name: experiment name (the default run folder prefix).
      model: a Flax module called as ``model(x, train=..., deterministic=...)``
        returning a readout ``(T, B, C)``.
      data: host arrays.
      loss: ``loss(outputs (T, B, C), targets)`` -> per-example losses ``(B,)``.
      preprocess: ``preprocess(x, key, train)`` run on device inside the step
        (normalisation, augmentation); must be jittable.
      classification: report accuracy (else a regression: ``test_mse``).
      experiment: the command that built it, e.g. ``"train.fmnist"``; recorded
        in ``config.json`` so the registry can rebuild the run.
    """

    name: str
    model: nn.Module
    data: Dataset
    loss: LossFn
    preprocess: Preprocess
    classification: bool = True
    experiment: str = ""

    @property
    def noisy(self) -> bool:
        """Whether the model's neurons carry noise (then deterministic accuracy is reported too)."""
        params = getattr(self.model, "neuron", None)
        return params is not None and params.noise is not None
