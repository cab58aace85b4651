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
import sys
from typing import Optional, Sequence

from nsnn_jax.data import DataNotFoundError, augment, cifar
from train import cli, trainer
from train.config import option
from train.vision import ALGORITHMS, VisionConfig, build_model, make_loss, train_or_evaluate

ARCHS = ("cifarnet", "resnet18", "resnet19", "vggsnn")
DATASETS = ("cifar10", "cifar100")

# Training defaults per (architecture, algorithm): epochs, batch size, peak
# learning rate (Adam, cosine decay to 0) and timesteps. The same values serve
# CIFAR-10 and CIFAR-100.
_PER_ARCH = {
    "cifarnet": dict(epochs=200, batch_size=128, lr=1e-3, timesteps=8),
    "resnet18": dict(epochs=200, batch_size=128, lr=1e-3, timesteps=2),
    "resnet19": dict(epochs=300, batch_size=64, lr=1e-3, timesteps=2),
    "vggsnn": dict(epochs=300, batch_size=64, lr=1e-3, timesteps=4),
}
DEFAULTS = {(arch, algorithm): values for arch, values in _PER_ARCH.items() for algorithm in ALGORITHMS}
MEAN_STD = cifar.MEAN_STD


@dataclasses.dataclass
class CifarConfig(VisionConfig):
    """CIFAR-10/100 spiking CNNs."""

    dataset: str = option("cifar10", "which CIFAR", DATASETS)
    data_dir: Optional[str] = option(None, "folder holding the official archive (or its extracted folder)")
    arch: str = option("cifarnet", "architecture", ARCHS)
    autoaugment: bool = option(True, "AutoAugment (CIFAR-10 policy) after crop and flip in training")

    def validate(self) -> None:
        self.check_choice("arch", ARCHS)
        self.check_choice("dataset", DATASETS)
        self.resolve_defaults(DEFAULTS)


def make_preprocess(config: CifarConfig):
    """``preprocess(images uint8 (B, 32, 32, 3), key, train)`` -> z-scored float32, augmented in training."""
    mean, std = MEAN_STD[config.dataset]

    def preprocess(images, key, train):
        if train:
            images = augment.augment_batch(images, key, autoaugment=config.autoaugment)
        return augment.normalize(images, mean, std)

    return preprocess


def build_task(config: CifarConfig, data: Optional[trainer.Dataset] = None) -> trainer.Task:
    """The trainer task for ``config``; ``data`` overrides loading (tests)."""
    if data is None:
        try:
            data = cifar.load_cifar(config.dataset, data_dir=config.data_dir)
        except DataNotFoundError as error:
            raise error.rephrased("--data-dir") from None
        print(f"{config.dataset}: {len(data.train_y)} train / {len(data.test_y)} test "
              f"images from {data.source}", file=sys.stderr)
    classes = 100 if config.dataset == "cifar100" else 10
    return trainer.Task(f"{config.dataset}-{config.arch}", build_model(config, classes), data,
                        make_loss(config), make_preprocess(config), experiment="train.cifar")


CONFIG = CifarConfig


def main(argv: Optional[Sequence[str]] = None) -> None:
    config = cli.parse_config(CifarConfig, __doc__.splitlines()[0], argv)
    train_or_evaluate(config, build_task)


if __name__ == "__main__":
    main()
