"""``python -m train.dvs_cifar``: spiking CNNs on CIFAR10-DVS (VGGSNN, ResNet-19, T = 10) or emulated event frames.

Recordings (``.aedat``, one folder per class) from ``--data-dir`` are
integrated into T frames of two polarity channels, down-sampled to 48x48 and
cached. The settings left unset come from the recipe of ``--arch``,
``--algorithm`` and ``--neuron`` (:mod:`train.common.recipes`); alone, the
command trains the row ``run_training.sh`` runs: NSNN VGGSNN with the authors'
tdBN (plain BN over T*B) and the per-step cross-entropy, lr 0.0003, batch 32,
sigma 0.2, 210 epochs; frames divided by their maximum, bilinear resizing, the
paper's 9k/1k split (``--dvs-split 70-30``: the authors' script).
Training augmentation: random horizontal flip and roll of up to 5 pixels.

``--dataset fashion_mnist_dvs`` trains on Fashion-MNIST seen by an emulated
event camera instead (:mod:`nsnn_jax.data.events.fashion_mnist_dvs`; the
images from ``--data-dir`` or found as ``train.fmnist`` finds them, e.g.
Debian's package), with this project's small-scale recipe (34x34
event-count frames, T = 4, 10 epochs; not the paper's setting);
``--train-limit`` / ``--test-limit`` take only the first N images (the
emulation costs about 10 ms per image on one CPU core, once: frames are cached). Rolls are then
of up to 3 pixels; ``--arch sevenb`` (7B-Net, the DVS Gesture network) trains
on these frames too.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional, Sequence

from nsnn_jax.data import Dataset, events
from train.common import cli, command
from train.common import dvs as dvs_common
from train.common.config import flag, option
from train.common.registry import Experiment
from train.common.task import Task
from train.common.vision import ALGORITHMS, architectures

ARCHS = architectures("vggsnn", "resnet19") + ("sevenb",)
# Architectures trained on one data set only: 7B-Net (the DVS Gesture network) on the emulated events.
ONLY_ON = {"sevenb": "fashion_mnist_dvs"}
DATASETS = ("cifar10_dvs", "fashion_mnist_dvs")
FRAME_NORMS = ("none", "max")
RESIZES = ("bin", "bilinear")
# The split choices of each data set (fashion_mnist_dvs: Fashion-MNIST's published 60k/10k).
DVS_SPLITS = {"cifar10_dvs": ("9k1k", "70-30"), "fashion_mnist_dvs": ("60k10k",)}
MAX_ROLL = {"cifar10_dvs": 5, "fashion_mnist_dvs": 3}


@dataclasses.dataclass
class DvsCifarConfig(dvs_common.DvsConfig):
    """CIFAR10-DVS, or Fashion-MNIST through the emulated event camera."""

    ARCHS: ClassVar[tuple[str, ...]] = ARCHS

    dataset: str = option("cifar10_dvs", "cifar10_dvs: the recordings in --data-dir; fashion_mnist_dvs: "
                                         "Fashion-MNIST through the emulated event camera (small-scale recipe, "
                                         "not the paper's)", DATASETS)
    arch: str = option("vggsnn", "architecture (NAME_table5: the paper's Table 5 reading of NAME)", ARCHS)
    algorithm: str = option("tdbn", "recipe row and preset of --norm/--loss: stbp and tdbn: BN over T*B + "
                                    "per-step CE (the authors' tdBN is plain BN); tet: BN + TET loss", ALGORITHMS)
    size: Optional[int] = option(None, "frame height and width after down-sampling, recorded at 128 "
                                       "(default: the recipe)")
    frame_norm: Optional[str] = option(None, "none: event counts; max: each frame divided by its maximum "
                                             "(default: the recipe)", FRAME_NORMS)
    resize: Optional[str] = option(None, "bin: integer coordinate binning; bilinear: bilinear resizing of the "
                                         "128x128 frames (default: the recipe)", RESIZES)
    dvs_split: Optional[str] = option(None, "9k1k: the paper's split; 70-30: the authors' script, per class; "
                                            "60k10k: Fashion-MNIST's (default: the recipe)",
                                      tuple(dict.fromkeys(sum(DVS_SPLITS.values(), ()))))
    train_limit: int = option(0, "fashion_mnist_dvs: emulate and train on only the first N training images "
                                 "(0: all 60000)")
    test_limit: int = option(0, "fashion_mnist_dvs: emulate and test on only the first N test images "
                                "(0: all 10000)")

    def validate(self) -> None:
        super().validate()
        self.check_choice("dataset", DATASETS)
        self.check_choice("frame_norm", FRAME_NORMS)
        self.check_choice("resize", RESIZES)
        self.check_choice("dvs_split", DVS_SPLITS[self.dataset])
        if ONLY_ON.get(self.arch, self.dataset) != self.dataset:
            raise ValueError(f"{flag('arch')}={self.arch!r} is invalid with --dataset {self.dataset}: it trains on "
                             f"--dataset {ONLY_ON[self.arch]} only.")
        for name in ("train_limit", "test_limit"):
            if getattr(self, name) < 0:
                raise ValueError(f"{flag(name)}={getattr(self, name)!r} is invalid: expected an integer >= 0 "
                                 "(0: all).")
        if self.dataset == "fashion_mnist_dvs":
            if self.resize != "bin":
                raise ValueError(f"{flag('resize')}={self.resize!r} is invalid with --dataset fashion_mnist_dvs: "
                                 "its frames are made at the sensor size (expected bin).")
            if self.size < 28 or (self.size - 28) % 2:
                raise ValueError(f"{flag('size')}={self.size!r} is invalid with --dataset fashion_mnist_dvs: "
                                 "expected the sensor size, >= 28 with size - 28 even (34: N-MNIST's).")
            if self.arch == "sevenb" and self.size < 32:
                raise ValueError(f"{flag('size')}={self.size!r} is too small for --arch sevenb: its five 2x2 "
                                 "poolings need >= 32.")
        elif self.train_limit or self.test_limit:
            raise ValueError(f"{flag('train_limit')} and {flag('test_limit')} apply to --dataset "
                             f"fashion_mnist_dvs only, got --dataset {self.dataset}.")


def load_data(config: DvsCifarConfig) -> Dataset:
    if config.dataset == "fashion_mnist_dvs":
        return command.load_dataset("fashion_mnist_dvs", lambda: events.load_fashion_mnist_dvs(
            config.data_dir, timesteps=config.timesteps, size=config.size, split_by=config.split_by,
            cache_dir=config.cache_dir, frame_norm=config.frame_norm, train_limit=config.train_limit or None,
            test_limit=config.test_limit or None), unit="emulated recordings")
    return command.load_dataset("cifar10_dvs", lambda: events.load_cifar10_dvs(
        config.data_dir, timesteps=config.timesteps, size=config.size, split_by=config.split_by,
        cache_dir=config.cache_dir, frame_norm=config.frame_norm, resize=config.resize, split=config.dvs_split),
        unit="recordings")


def build_task(config: DvsCifarConfig, data: Optional[Dataset] = None, **model_options) -> Task:
    """The trainer task for ``config``; ``data`` replaces loading (tests)."""
    data = load_data(config) if data is None else data
    return dvs_common.build_task(config, data, config.dataset, 10, EXPERIMENT.command, MAX_ROLL[config.dataset],
                                 **model_options)


EXPERIMENT = Experiment("dvs_cifar", DvsCifarConfig, build_task)


def main(argv: Optional[Sequence[str]] = None) -> None:
    model_options = command.start()
    config = cli.parse_config(DvsCifarConfig, __doc__.splitlines()[0], argv)
    command.run(EXPERIMENT, config, model_options)


if __name__ == "__main__":
    main()
