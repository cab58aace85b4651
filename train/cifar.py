"""``python -m train.cifar``: spiking CNNs on CIFAR-10/100 or Fashion-MNIST (CIFARNet, ResNet-18*, ResNet-19, VGGSNN).

Every setting left unset comes from the recipe of ``--dataset``, ``--arch``,
``--algorithm`` and ``--neuron`` (:mod:`train.common.recipes`: the paper's
Table 4 and the authors' code, each value with its source); a flag given wins,
and ``config.json`` records the recipe and the source of every value. Alone,
``python -m train.cifar`` trains the NSNN CIFARNet STBP CIFAR-10 row: T = 2,
lr 0.003, batch 256 (``--timesteps 4``: batch 128), 300 epochs, cosine decay
per epoch, the authors' neuron (noise also at evaluation), BN over T*B and the
per-step cross-entropy, the authors' z-scoring. ``--eval-only --workdir DIR``
reports the test accuracy of the run in DIR (stochastic and deterministic
inference).

``--dataset fashion_mnist`` is this project's small-scale setting, not a run of
the paper (which has no conv Fashion-MNIST run): 28x28 grey images (one
channel) at width 0.125, T = 2, batch 128, 10 epochs, z-scored with the
training set's mean and std, a random crop (2-pixel zero padding) and a
horizontal flip in training, no AutoAugment (its CIFAR-10 policy is for colour
images: ``--autoaugment`` is an error there). Every architecture takes 28x28
(CIFARNet pools to 7x7, the ResNets stride to 7x7 and 4x4); for VGGSNN, whose
four 2x2 pools would drop border rows of 28x28, the images are zero-padded to
32x32 first. ``--train-limit N`` / ``--test-limit N`` keep the first N samples.

Data, in this order: ``--data-dir`` (the official ``cifar-10-python.tar.gz``
or ``cifar-100-python.tar.gz``, or their extracted folders; for Fashion-MNIST
the four IDX files); a prepared tensorflow-datasets copy (CIFAR); Debian's
``dataset-fashion-mnist`` folder (Fashion-MNIST); the cache; the official
download when online.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional, Sequence

import jax.numpy as jnp

from nsnn_jax.data import Dataset, augment, cifar, idx
from train.common import cli, command, recipes
from train.common.config import option
from train.common.registry import Experiment
from train.common.task import Task
from train.common.vision import VisionConfig, architectures, build_model, limit_data, make_loss

ARCHS = architectures("cifarnet", "resnet18", "resnet19", "vggsnn")
GREY = ("fashion_mnist",)  # 28x28x1 IDX images: this project's small-scale setting
DATASETS = ("cifar10", "cifar100") + GREY
NORMALIZATIONS = ("authors", "dataset", "none")
# Zero-padded crop of the training augmentation, in pixels: CIFAR's 4 (dataset_utils.py L64-72), 2 on 28x28.
CROP_PADDING = {"cifar10": 4, "cifar100": 4, "fashion_mnist": 2}
# Architectures whose input side must be a multiple of N to pool without dropping pixels (VGGSNN: four 2x2
# pools); other sides are zero-padded to the next multiple (Fashion-MNIST's 28 -> 32).
SIDE_MULTIPLE = {"vggsnn": 16, "vggsnn_table5": 16}
# The authors' CIFAR-10 z-scoring (dataset_utils.py L64-72), for a data module without its table of them.
_AUTHORS_CIFAR10 = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))


def mean_std(dataset: str, normalization: str) -> tuple:
    """The z-scoring ``(mean, std)`` per channel of ``--normalization`` on ``dataset``.

    ``authors``: the constants of the authors' code (CIFAR only); ``dataset``:
    the data set's own statistics (``nsnn_jax.data.cifar.NORMALIZATIONS``, or
    ``nsnn_jax.data.idx.MEAN_STD`` for Fashion-MNIST); ``none``: pixels scaled
    to [0, 1] only (mean 0, std 1).

    Raises:
      ValueError: no such z-scoring for ``dataset``.
    """
    channels = 1 if dataset in GREY else 3
    if normalization == "none":
        return (0.0,) * channels, (1.0,) * channels
    if dataset in GREY:
        if normalization == "dataset" and dataset in idx.MEAN_STD:
            return idx.MEAN_STD[dataset]
    else:
        table = getattr(cifar, "NORMALIZATIONS", None)
        if table is not None:
            if normalization in table.get(dataset, {}):
                return tuple(table[dataset][normalization])
            if dataset in table.get(normalization, {}):
                return tuple(table[normalization][dataset])
        elif normalization == "dataset":
            return cifar.MEAN_STD[dataset]
        elif (normalization, dataset) == ("authors", "cifar10"):
            return _AUTHORS_CIFAR10
    if dataset in GREY:
        raise ValueError(f"--normalization={normalization!r} is not available for {dataset}: expected dataset "
                         "or none (the authors published no constants for it).")
    raise ValueError(f"--normalization={normalization!r} is not available for {dataset}: "
                     f"expected one of {NORMALIZATIONS} that nsnn_jax.data.cifar provides.")


@dataclasses.dataclass
class CifarConfig(VisionConfig):
    """CIFAR-10/100 (and Fashion-MNIST, the small-scale setting) spiking CNNs."""

    ARCHS: ClassVar[tuple[str, ...]] = ARCHS

    dataset: str = option("cifar10", "which data set (fashion_mnist: 28x28x1, this project's small-scale "
                                     "setting, not in the paper)", DATASETS)
    data_dir: Optional[str] = option(None, "folder holding the official archive (or its extracted folder); "
                                           "for fashion_mnist the four IDX .gz files")
    arch: str = option("cifarnet", "architecture (NAME_table5: the paper's Table 5 reading of NAME)", ARCHS)
    autoaugment: Optional[bool] = option(None, "AutoAugment (CIFAR-10 policy) after crop and flip in training; "
                                               "colour images only (default: the recipe)")
    normalization: Optional[str] = option(None, "z-scoring: authors (their code's constants), dataset (the "
                                                "data set's own statistics) or none (pixels in [0, 1]) "
                                                "(default: the recipe)", NORMALIZATIONS)

    def __post_init__(self) -> None:
        self.check_choice("dataset", DATASETS)
        super().__post_init__()

    def validate(self) -> None:
        super().validate()
        self.check_choice("dataset", DATASETS)
        self.check_choice("normalization", NORMALIZATIONS)
        mean_std(self.dataset, self.normalization)
        if self.autoaugment and self.dataset in GREY:
            raise ValueError(f"--autoaugment is not available for {self.dataset}: AutoAugment's CIFAR-10 policy "
                             "has colour operations for RGB images and these are grey (one channel); leave it "
                             "off (the recipe's default).")


def load_data(config: CifarConfig) -> Dataset:
    """The data set of ``--dataset``: NHWC uint8 images, Fashion-MNIST's given a channel axis ``(n, 28, 28, 1)``."""
    if config.dataset in GREY:
        data = command.load_dataset(config.dataset, lambda: idx.load_idx_dataset(config.dataset,
                                                                                 data_dir=config.data_dir))
        return with_channel_axis(data)
    return command.load_dataset(config.dataset, lambda: cifar.load_cifar(config.dataset, data_dir=config.data_dir))


def with_channel_axis(data: Dataset) -> Dataset:
    """Grey images ``(n, H, W)`` as ``(n, H, W, 1)``; NHWC images unchanged."""
    if data.train_x.ndim == 3:
        data = data._replace(train_x=data.train_x[..., None], test_x=data.test_x[..., None])
    return data


def padding_to_multiple(side: int, arch: str) -> int:
    """Zero pixels added on each side of a ``side``-pixel image for ``arch`` (``SIDE_MULTIPLE``; 0 if none).

    Raises:
      ValueError: an odd total padding (the image could not stay centred).
    """
    multiple = SIDE_MULTIPLE.get(arch, 1)
    total = -side % multiple
    if total % 2:
        raise ValueError(f"--arch {arch} needs sides that are multiples of {multiple}; {side} would need an "
                         f"odd padding of {total} pixels.")
    return total // 2


def make_preprocess(config: CifarConfig, side: int = 32):
    """``preprocess(images uint8 (B, H, W, C), key, train)`` -> z-scored float32, augmented in training.

    Images of ``side`` pixels are first zero-padded to the side ``--arch`` needs
    (:func:`padding_to_multiple`: VGGSNN on 28x28 -> 32x32), then cropped
    (``CROP_PADDING`` of ``--dataset``) and flipped in training, then z-scored.
    """
    mean, std = mean_std(config.dataset, config.normalization)
    pad = padding_to_multiple(side, config.arch)
    crop_padding = CROP_PADDING[config.dataset]

    def preprocess(images, key, train):
        if pad:
            images = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        if train:
            images = augment.augment_batch(images, key, autoaugment=config.autoaugment, padding=crop_padding)
        return augment.normalize(images, mean, std)

    return preprocess


def build_task(config: CifarConfig, data: Optional[Dataset] = None, **model_options) -> Task:
    """The trainer task for ``config``; ``data`` replaces loading (tests).

    The data are cut to ``--train-limit`` / ``--test-limit``; grey images get a channel axis.

    Raises:
      ValueError: images that are not square NHWC uint8 with the data set's channels.
    """
    classes = 100 if config.dataset == "cifar100" else 10
    data = limit_data(config, with_channel_axis(load_data(config) if data is None else data))
    channels = 1 if config.dataset in GREY else 3
    shape = data.train_x.shape[1:]
    if len(shape) != 3 or shape[0] != shape[1] or shape[2] != channels:
        raise ValueError(f"--dataset {config.dataset} expects square images (H, W, {channels}), got {shape}.")
    return Task(f"{config.dataset}-{config.arch}", build_model(config, classes, **model_options), data,
                make_loss(config), make_preprocess(config, shape[0]), experiment=EXPERIMENT.command)


EXPERIMENT = Experiment("cifar", CifarConfig, build_task)


def small_scale_summary() -> str:
    """One line on the Fashion-MNIST recipe, read from it (for ``--help``)."""
    recipe = recipes.get_recipe("fashion_mnist", "cifarnet", "stbp", "noisy")
    values = {name: sourced.value for name, sourced in recipe.values.items()}
    batch = recipe.batch_size(values["timesteps"]).value
    return (f"--dataset fashion_mnist is this project's small-scale setting, not in the paper (recipe "
            f"{recipe.name}: width {values['width']}, T {values['timesteps']}, batch {batch}, lr {values['lr']}, "
            f"{values['epochs']} epochs, sigma {values['sigma']}, crop and flip, no AutoAugment).")


def main(argv: Optional[Sequence[str]] = None) -> None:
    model_options = command.start()
    config = cli.parse_config(CifarConfig, __doc__.splitlines()[0] + " " + small_scale_summary(), argv)
    command.run(EXPERIMENT, config, model_options)


if __name__ == "__main__":
    main()
