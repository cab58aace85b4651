"""``python -m train.dvs_cifar``: spiking CNNs on CIFAR10-DVS event frames (VGGSNN, T = 10).

Recordings (``.aedat``, one folder per class) from ``--data-dir`` are
integrated into T frames of two polarity channels, down-sampled to 48x48 and
cached; the split is 9k/1k (the first 900 recordings of each class train).
Training augmentation: random horizontal flip and roll of up to 5 pixels.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

from nsnn_jax.data import events
from train import cli, dvs as dvs_common, trainer
from train.config import option
from train.vision import ALGORITHMS, train_or_evaluate

ARCHS = ("vggsnn", "resnet19")
_PER_ARCH = {
    "vggsnn": dict(epochs=200, batch_size=64, lr=1e-3, timesteps=10),
    "resnet19": dict(epochs=200, batch_size=64, lr=1e-3, timesteps=10),
}
DEFAULTS = {(arch, algorithm): values for arch, values in _PER_ARCH.items() for algorithm in ALGORITHMS}
MAX_ROLL = 5


@dataclasses.dataclass
class DvsCifarConfig(dvs_common.DvsConfig):
    """CIFAR10-DVS."""

    arch: str = option("vggsnn", "architecture", ARCHS)
    algorithm: str = option("tet", "stbp: BN + rate CE; tdbn: tdBN + rate CE; tet: tdBN + TET loss", ALGORITHMS)
    sigma: float = option(0.2, "noise scale (Gaussian sigma; the scale of the other families)")
    size: int = option(48, "frame height and width after down-sampling (recorded at 128)")

    def validate(self) -> None:
        self.check_choice("arch", ARCHS)
        super().validate()
        self.resolve_defaults(DEFAULTS)


def load(config: DvsCifarConfig):
    return events.load_cifar10_dvs(config.data_dir, timesteps=config.timesteps, size=config.size,
                                   split_by=config.split_by, cache_dir=config.cache_dir)


def build_task(config: DvsCifarConfig, data: Optional[trainer.Dataset] = None) -> trainer.Task:
    """The trainer task for ``config``; ``data`` overrides loading (tests)."""
    return dvs_common.build_task(config, data, load, "cifar10_dvs", 10, "train.dvs_cifar", MAX_ROLL)


CONFIG = DvsCifarConfig


def main(argv: Optional[Sequence[str]] = None) -> None:
    config = cli.parse_config(DvsCifarConfig, __doc__.splitlines()[0], argv)
    train_or_evaluate(config, build_task)


if __name__ == "__main__":
    main()
