"""What the convolutional classification commands share (CIFAR, DVS-CIFAR10, DVS Gesture).

Algorithms: ``stbp`` (BPTT, rate-coded cross-entropy, plain BN over T*B),
``tdbn`` (STBP with threshold-dependent BN) and ``tet`` (tdBN with the TET
loss). Per-(architecture, algorithm) defaults fill the flags left unset.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
from typing import Callable, Optional

import jax.numpy as jnp

from nsnn_jax import losses, models
from train import trainer
from train.config import TrainConfig, option

ALGORITHMS = ("stbp", "tdbn", "tet")
NORM_OF_ALGORITHM = {"stbp": "bn", "tdbn": "tdbn", "tet": "tdbn"}
DEFAULTED = ("epochs", "batch_size", "lr", "timesteps")


@dataclasses.dataclass
class VisionConfig(TrainConfig):
    """Settings of the conv-SNN commands; subclasses add ``arch``, data and the defaults table."""

    algorithm: str = option("tdbn", "stbp: BN + rate CE; tdbn: tdBN + rate CE; tet: tdBN + TET loss", ALGORITHMS)
    tet_lambda: float = option(0.05, "weight of TET's MSE term (--algorithm tet)")
    tet_phi: float = option(1.0, "target of TET's MSE term (--algorithm tet)")
    width: float = option(1.0, "channel multiplier of the architecture (1: as published)")
    remat: bool = option(False, "recompute each block in the backward pass (memory for time)")
    eval_only: bool = option(False, "only evaluate the checkpoint in --workdir (stochastic and deterministic)")
    epochs: Optional[int] = option(None, "training epochs (default: DEFAULTS for --arch/--algorithm)")
    batch_size: Optional[int] = option(None, "global batch size, split over devices (default: DEFAULTS)")
    lr: Optional[float] = option(None, "peak Adam learning rate, cosine decay to 0 (default: DEFAULTS)")
    timesteps: Optional[int] = option(None, "simulation steps T (default: DEFAULTS)")

    def check_choice(self, name: str, choices) -> None:
        if getattr(self, name) not in choices:
            raise ValueError(f"--{name.replace('_', '-')}={getattr(self, name)!r} is invalid: expected one of {tuple(choices)}.")

    def resolve_defaults(self, defaults: dict) -> None:
        """Fills the unset ``DEFAULTED`` flags from ``defaults[(arch, algorithm)]``, then validates."""
        self.check_choice("algorithm", ALGORITHMS)
        for name, value in defaults[(self.arch, self.algorithm)].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        TrainConfig.validate(self)
        if not 0.0 <= self.tet_lambda <= 1.0:
            raise ValueError(f"--tet-lambda={self.tet_lambda!r} is invalid: expected a weight in [0, 1].")
        if not self.width > 0:
            raise ValueError(f"--width={self.width!r} is invalid: expected > 0.")


def make_loss(config: VisionConfig):
    """TET for ``--algorithm tet``, else the rate-coded cross-entropy."""
    if config.algorithm == "tet":
        return functools.partial(losses.tet_loss, lam=config.tet_lambda, phi=config.tet_phi)
    return losses.rate_cross_entropy


def build_model(config: VisionConfig, classes: int, **kwargs):
    """The ``config.arch`` network with the neuron, norm, width, remat and dtype the flags give."""
    return models.get_model(
        config.arch, outputs=classes, timesteps=config.timesteps, neuron=config.lif_params(),
        norm=NORM_OF_ALGORITHM[config.algorithm], width=config.width, remat=config.remat,
        dtype=jnp.bfloat16 if config.dtype == "bfloat16" else None, **kwargs)


def evaluate_only(config: VisionConfig) -> dict:
    """Test accuracy of the checkpoint in ``config.workdir``; written to ``DIR/eval.json``."""
    if not config.workdir:
        raise ValueError("--eval-only needs --workdir (the run folder to evaluate).")
    overrides = {"eval_trials": config.eval_trials}
    if getattr(config, "data_dir", None):
        overrides["data_dir"] = config.data_dir
    result = trainer.evaluate_run(config.workdir, overrides=overrides)
    path = os.path.join(config.workdir, "eval.json")
    with open(path, "w") as f:
        f.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
    for name, value in result.items():
        print(f"{name}={value:.4f}" if isinstance(value, float) else f"{name}={value}")
    print(f"wrote {path}", file=sys.stderr)
    return result


def train_or_evaluate(config: VisionConfig, build_task: Callable) -> None:
    """``--eval-only``: rescore the checkpoint; otherwise train. User errors exit 1 with a message."""
    if not config.eval_only:
        trainer.run_experiment(config, build_task)
        return
    try:
        evaluate_only(config)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from error
