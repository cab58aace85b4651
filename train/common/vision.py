"""What the convolutional classification commands share (CIFAR, DVS-CIFAR10, DVS Gesture).

Algorithms: ``stbp`` (BPTT, rate-coded cross-entropy, plain BN over T*B),
``tdbn`` (STBP with threshold-dependent BN) and ``tet`` (tdBN with the TET
loss). Per-(architecture, algorithm) defaults fill the flags left unset.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar, Optional

from nsnn_jax import losses, models
from train.common.config import TrainConfig, flag, option

ALGORITHMS = ("stbp", "tdbn", "tet")
NORM_OF_ALGORITHM = {"stbp": "bn", "tdbn": "tdbn", "tet": "tdbn"}
DEFAULTED = ("epochs", "batch_size", "lr", "timesteps")


def defaults_for_every_algorithm(per_arch: dict[str, dict]) -> dict[tuple[str, str], dict]:
    """``{(arch, algorithm): values}`` with the same values for every algorithm."""
    return {(arch, algorithm): values for arch, values in per_arch.items() for algorithm in ALGORITHMS}


@dataclasses.dataclass
class VisionConfig(TrainConfig):
    """Settings of the conv-SNN commands.

    Subclasses add an ``arch`` field and set ``ARCHS`` (its choices) and
    ``DEFAULTS`` (``{(arch, algorithm): {field: value}}`` for the ``DEFAULTED``
    fields). The defaults are filled in at construction, where a flag left
    unset (``None``); :meth:`validate` only checks.
    """

    ARCHS: ClassVar[tuple[str, ...]] = ()
    DEFAULTS: ClassVar[dict] = {}

    algorithm: str = option("tdbn", "stbp: BN + rate CE; tdbn: tdBN + rate CE; tet: tdBN + TET loss", ALGORITHMS)
    tet_lambda: float = option(0.05, "weight of TET's MSE term (--algorithm tet)")
    tet_phi: float = option(1.0, "target of TET's MSE term (--algorithm tet)")
    width: float = option(1.0, "channel multiplier of the architecture (1: as published)")
    remat: bool = option(False, "recompute each block in the backward pass (memory for time)")
    eval_only: bool = option(False, "only evaluate the checkpoint in --workdir (stochastic and deterministic)")
    checkpoint: str = option("final", "with --eval-only: the final checkpoint, or the best epoch's "
                                      "(selected on the test set)", ("final", "best"))
    epochs: Optional[int] = option(None, "training epochs (default: DEFAULTS for --arch/--algorithm)")
    batch_size: Optional[int] = option(None, "global batch size, split over devices (default: DEFAULTS)")
    lr: Optional[float] = option(None, "peak Adam learning rate, cosine decay to 0 (default: DEFAULTS)")
    timesteps: Optional[int] = option(None, "simulation steps T (default: DEFAULTS)")

    def __post_init__(self) -> None:
        for name, value in self.DEFAULTS.get((getattr(self, "arch", None), self.algorithm), {}).items():
            if getattr(self, name) is None:
                setattr(self, name, value)

    def validate(self) -> None:
        self.check_choice("arch", self.ARCHS)
        self.check_choice("algorithm", ALGORITHMS)
        super().validate()
        if not 0.0 <= self.tet_lambda <= 1.0:
            raise ValueError(f"{flag('tet_lambda')}={self.tet_lambda!r} is invalid: expected a weight in [0, 1].")
        if not self.width > 0:
            raise ValueError(f"{flag('width')}={self.width!r} is invalid: expected > 0.")


def make_loss(config: VisionConfig):
    """TET for ``--algorithm tet``, else the rate-coded cross-entropy (per example)."""
    if config.algorithm == "tet":
        return functools.partial(losses.tet_loss, lam=config.tet_lambda, phi=config.tet_phi)
    return losses.rate_cross_entropy


def build_model(config: VisionConfig, classes: int, **model_options):
    """The ``config.arch`` network with the neuron, norm, width, remat and dtype the flags give.

    ``model_options`` (e.g. ``sequence_input``, or what the start-up chose)
    go to the constructor as they are.
    """
    return models.get_model(
        config.arch, outputs=classes, timesteps=config.timesteps, neuron=config.lif_params(),
        norm=NORM_OF_ALGORITHM[config.algorithm], width=config.width, remat=config.remat,
        dtype=config.compute_dtype(), **model_options)
