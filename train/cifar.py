"""``python -m train.cifar``: spiking CNNs on CIFAR-10/100 (CIFARNet, ResNet-18*, ResNet-19, VGGSNN).

Algorithms: ``stbp`` (BPTT, rate-coded cross-entropy, plain BN over T*B),
``tdbn`` (STBP with threshold-dependent BN) and ``tet`` (tdBN with the TET
loss). ``--epochs``, ``--batch-size``, ``--lr`` and ``--timesteps`` default to
the values of :data:`DEFAULTS` for the chosen dataset, architecture and
algorithm; a flag given explicitly wins. ``--eval-only --workdir DIR`` reports
the test accuracy of the run in DIR (stochastic and deterministic inference).

Data, in this order: ``--data-dir`` (the official ``cifar-10-python.tar.gz``
or ``cifar-100-python.tar.gz``, or their extracted folders); a prepared
tensorflow-datasets copy; the cache; the official download when online.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
from typing import Optional, Sequence

import jax.numpy as jnp

from nsnn_jax import losses, models
from nsnn_jax.data import augment, cifar
from train import cli, trainer
from train.config import TrainConfig, option

ARCHS = ("cifarnet", "resnet18", "resnet19", "vggsnn")
ALGORITHMS = ("stbp", "tdbn", "tet")
DATASETS = ("cifar10", "cifar100")
NORM_OF_ALGORITHM = {"stbp": "bn", "tdbn": "tdbn", "tet": "tdbn"}

# Training defaults per (architecture, algorithm): epochs, batch size, peak
# learning rate (Adam, cosine decay to 0) and timesteps. The same values serve
# CIFAR-10 and CIFAR-100.
DEFAULTS = {
    ("cifarnet", "stbp"): dict(epochs=200, batch_size=128, lr=1e-3, timesteps=8),
    ("cifarnet", "tdbn"): dict(epochs=200, batch_size=128, lr=1e-3, timesteps=8),
    ("cifarnet", "tet"): dict(epochs=200, batch_size=128, lr=1e-3, timesteps=8),
    ("resnet18", "stbp"): dict(epochs=200, batch_size=128, lr=1e-3, timesteps=2),
    ("resnet18", "tdbn"): dict(epochs=200, batch_size=128, lr=1e-3, timesteps=2),
    ("resnet18", "tet"): dict(epochs=200, batch_size=128, lr=1e-3, timesteps=2),
    ("resnet19", "stbp"): dict(epochs=300, batch_size=64, lr=1e-3, timesteps=2),
    ("resnet19", "tdbn"): dict(epochs=300, batch_size=64, lr=1e-3, timesteps=2),
    ("resnet19", "tet"): dict(epochs=300, batch_size=64, lr=1e-3, timesteps=2),
    ("vggsnn", "stbp"): dict(epochs=300, batch_size=64, lr=1e-3, timesteps=4),
    ("vggsnn", "tdbn"): dict(epochs=300, batch_size=64, lr=1e-3, timesteps=4),
    ("vggsnn", "tet"): dict(epochs=300, batch_size=64, lr=1e-3, timesteps=4),
}
MEAN_STD = {"cifar10": (augment.CIFAR10_MEAN, augment.CIFAR10_STD),
            "cifar100": (augment.CIFAR100_MEAN, augment.CIFAR100_STD)}


@dataclasses.dataclass
class CifarConfig(TrainConfig):
    """CIFAR-10/100 spiking CNNs."""

    dataset: str = option("cifar10", "which CIFAR", DATASETS)
    data_dir: Optional[str] = option(None, "folder holding the official archive (or its extracted folder)")
    arch: str = option("cifarnet", "architecture", ARCHS)
    algorithm: str = option("tdbn", "stbp: BN + rate CE; tdbn: tdBN + rate CE; tet: tdBN + TET loss", ALGORITHMS)
    tet_lambda: float = option(0.05, "weight of TET's MSE term (--algorithm tet)")
    tet_phi: float = option(1.0, "target of TET's MSE term (--algorithm tet)")
    width: float = option(1.0, "channel multiplier of the architecture (1: as published)")
    autoaugment: bool = option(True, "AutoAugment (CIFAR-10 policy) after crop and flip in training")
    remat: bool = option(False, "recompute each block in the backward pass (less memory, ~1 more forward)")
    eval_only: bool = option(False, "only evaluate the checkpoint in --workdir (stochastic and deterministic)")
    epochs: Optional[int] = option(None, "training epochs (default: DEFAULTS for --arch/--algorithm)")
    batch_size: Optional[int] = option(None, "global batch size, split over devices (default: DEFAULTS)")
    lr: Optional[float] = option(None, "peak Adam learning rate, cosine decay to 0 (default: DEFAULTS)")
    timesteps: Optional[int] = option(None, "simulation steps T (default: DEFAULTS)")

    def validate(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"--arch={self.arch!r} is invalid: expected one of {ARCHS}.")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"--algorithm={self.algorithm!r} is invalid: expected one of {ALGORITHMS}.")
        if self.dataset not in DATASETS:
            raise ValueError(f"--dataset={self.dataset!r} is invalid: expected one of {DATASETS}.")
        for name, value in DEFAULTS[(self.arch, self.algorithm)].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        super().validate()
        if not 0.0 <= self.tet_lambda <= 1.0:
            raise ValueError(f"--tet-lambda={self.tet_lambda!r} is invalid: expected a weight in [0, 1].")
        if not self.width > 0:
            raise ValueError(f"--width={self.width!r} is invalid: expected > 0.")


def make_preprocess(config: CifarConfig):
    """``preprocess(images uint8 (B, 32, 32, 3), key, train)`` -> z-scored float32, augmented in training."""
    mean, std = MEAN_STD[config.dataset]

    def preprocess(images, key, train):
        if train:
            images = augment.augment_batch(images, key, autoaugment=config.autoaugment)
        return augment.normalize(images, mean, std)

    return preprocess


def make_loss(config: CifarConfig):
    if config.algorithm == "tet":
        return functools.partial(losses.tet_loss, lam=config.tet_lambda, phi=config.tet_phi)
    return losses.rate_cross_entropy


def build_model(config: CifarConfig, classes: int):
    return models.get_model(
        config.arch, outputs=classes, timesteps=config.timesteps, neuron=config.lif_params(),
        norm=NORM_OF_ALGORITHM[config.algorithm], width=config.width, remat=config.remat,
        dtype=jnp.bfloat16 if config.dtype == "bfloat16" else None)


def build_task(config: CifarConfig, data: Optional[trainer.Dataset] = None) -> trainer.Task:
    """The trainer task for ``config``; ``data`` overrides loading (tests)."""
    if data is None:
        loaded = cifar.load_cifar(config.dataset, data_dir=config.data_dir)
        print(f"{config.dataset}: {len(loaded.train_labels)} train / {len(loaded.test_labels)} test "
              f"images from {loaded.source}", file=sys.stderr)
        data = trainer.Dataset(loaded.train_images, loaded.train_labels,
                               loaded.test_images, loaded.test_labels)
    classes = 100 if config.dataset == "cifar100" else 10
    return trainer.Task(f"{config.dataset}-{config.arch}", build_model(config, classes), data,
                        make_loss(config), make_preprocess(config), experiment="train.cifar")


CONFIG = CifarConfig


def evaluate_only(config: CifarConfig) -> dict:
    """Test accuracy of the checkpoint in ``config.workdir``; written to ``DIR/eval.json``."""
    if not config.workdir:
        raise ValueError("--eval-only needs --workdir (the run folder to evaluate).")
    overrides = {"eval_trials": config.eval_trials}
    if config.data_dir:
        overrides["data_dir"] = config.data_dir
    result = trainer.evaluate_run(config.workdir, overrides=overrides)
    path = os.path.join(config.workdir, "eval.json")
    with open(path, "w") as f:
        f.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
    for name, value in result.items():
        print(f"{name}={value:.4f}" if isinstance(value, float) else f"{name}={value}")
    print(f"wrote {path}", file=sys.stderr)
    return result


def main(argv: Optional[Sequence[str]] = None) -> None:
    config = cli.parse_config(CifarConfig, __doc__.splitlines()[0], argv)
    if config.eval_only:
        try:
            evaluate_only(config)
        except (FileNotFoundError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(1) from error
        return
    trainer.run_experiment(config, build_task)


if __name__ == "__main__":
    main()
