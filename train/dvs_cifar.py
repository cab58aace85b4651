"""``python -m train.dvs_cifar``: spiking CNNs on CIFAR10-DVS event frames (VGGSNN, ResNet-19, T = 10).

Recordings (``.aedat``, one folder per class) from ``--data-dir`` are
integrated into T frames of two polarity channels, down-sampled to 48x48 and
cached. The settings left unset come from the recipe of ``--arch``,
``--algorithm`` and ``--neuron`` (:mod:`train.common.recipes`); alone, the
command trains the row ``run_training.sh`` runs: NSNN VGGSNN with the authors'
tdBN (plain BN over T*B) and the per-step cross-entropy, lr 0.0003, batch 32,
sigma 0.2, 210 epochs; frames divided by their maximum, bilinear resizing, the
paper's 9k/1k split (``--dvs-split 70-30``: the authors' script).
Training augmentation: random horizontal flip and roll of up to 5 pixels.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional, Sequence

from nsnn_jax.data import Dataset, events
from train.common import cli, command
from train.common import dvs as dvs_common
from train.common.config import option
from train.common.registry import Experiment
from train.common.task import Task
from train.common.vision import ALGORITHMS, architectures

ARCHS = architectures("vggsnn", "resnet19")
FRAME_NORMS = ("none", "max")
RESIZES = ("bin", "bilinear")
DVS_SPLITS = ("9k1k", "70-30")
MAX_ROLL = 5
@dataclasses.dataclass
class DvsCifarConfig(dvs_common.DvsConfig):
    """CIFAR10-DVS."""

    ARCHS: ClassVar[tuple[str, ...]] = ARCHS
    DATASET: ClassVar[str] = "cifar10_dvs"

    arch: str = option("vggsnn", "architecture (NAME_table5: the paper's Table 5 reading of NAME)", ARCHS)
    algorithm: str = option("tdbn", "recipe row and preset of --norm/--loss: stbp and tdbn: BN over T*B + "
                                    "per-step CE (the authors' tdBN is plain BN); tet: BN + TET loss", ALGORITHMS)
    size: Optional[int] = option(None, "frame height and width after down-sampling, recorded at 128 "
                                       "(default: the recipe)")
    frame_norm: Optional[str] = option(None, "none: event counts; max: each frame divided by its maximum "
                                             "(default: the recipe)", FRAME_NORMS)
    resize: Optional[str] = option(None, "bin: integer coordinate binning; bilinear: bilinear resizing of the "
                                         "128x128 frames (default: the recipe)", RESIZES)
    dvs_split: Optional[str] = option(None, "9k1k: the paper's split; 70-30: the authors' script, per class "
                                            "(default: the recipe)", DVS_SPLITS)

    def validate(self) -> None:
        super().validate()
        self.check_choice("frame_norm", FRAME_NORMS)
        self.check_choice("resize", RESIZES)
        self.check_choice("dvs_split", DVS_SPLITS)


def load_data(config: DvsCifarConfig) -> Dataset:
    return command.load_dataset("cifar10_dvs", lambda: events.load_cifar10_dvs(
        config.data_dir, timesteps=config.timesteps, size=config.size, split_by=config.split_by,
        cache_dir=config.cache_dir, frame_norm=config.frame_norm, resize=config.resize, split=config.dvs_split),
        unit="recordings")


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
