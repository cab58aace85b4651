"""``python -m train.dvs_cifar``: spiking CNNs on CIFAR10-DVS event frames (VGGSNN, T = 10).

Recordings (``.aedat``, one folder per class) from ``--data-dir`` are
integrated into T frames of two polarity channels, down-sampled to 48x48 and
cached; the split is 9k/1k (the first 900 recordings of each class train).
Training augmentation: random horizontal flip and roll of up to 5 pixels.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional, Sequence

from nsnn_jax.data import DataNotFoundError, Dataset, events
from train.common import cli, command
from train.common import dvs as dvs_common
from train.common.config import option
from train.common.registry import Experiment
from train.common.task import Task
from train.common.vision import ALGORITHMS, defaults_for_every_algorithm

ARCHS = ("vggsnn", "resnet19")
DEFAULTS = defaults_for_every_algorithm({
    "vggsnn": dict(epochs=200, batch_size=64, lr=1e-3, timesteps=10),
    "resnet19": dict(epochs=200, batch_size=64, lr=1e-3, timesteps=10),
})
MAX_ROLL = 5


@dataclasses.dataclass
class DvsCifarConfig(dvs_common.DvsConfig):
    """CIFAR10-DVS."""

    ARCHS: ClassVar[tuple[str, ...]] = ARCHS
    DEFAULTS: ClassVar[dict] = DEFAULTS

    arch: str = option("vggsnn", "architecture", ARCHS)
    algorithm: str = option("tet", "stbp: BN + rate CE; tdbn: tdBN + rate CE; tet: tdBN + TET loss", ALGORITHMS)
    sigma: float = option(0.2, "noise scale (Gaussian sigma; the scale of the other families)")
    size: int = option(48, "frame height and width after down-sampling (recorded at 128)")


def load_data(config: DvsCifarConfig) -> Dataset:
    try:
        data = events.load_cifar10_dvs(config.data_dir, timesteps=config.timesteps, size=config.size,
                                       split_by=config.split_by, cache_dir=config.cache_dir)
    except DataNotFoundError as error:
        raise error.rephrased("--data-dir") from None
    dvs_common.report_frames("cifar10_dvs", data)
    return data


def build_task(config: DvsCifarConfig, data: Optional[Dataset] = None, **model_options) -> Task:
    """The trainer task for ``config``; ``data`` replaces loading (tests)."""
    data = load_data(config) if data is None else data
    return dvs_common.build_task(config, data, "cifar10_dvs", 10, EXPERIMENT.command, MAX_ROLL, **model_options)


EXPERIMENT = Experiment("dvs_cifar", DvsCifarConfig, build_task)


def main(argv: Optional[Sequence[str]] = None) -> None:
    model_options = command.start()
    config = cli.parse_config(DvsCifarConfig, __doc__.splitlines()[0], argv)
    command.run(EXPERIMENT, config, model_options)


if __name__ == "__main__":
    main()
