"""``python -m train.cifar``: spiking CNNs on CIFAR-10/100 (CIFARNet, ResNet-18*, ResNet-19, VGGSNN).

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

Data, in this order: ``--data-dir`` (the official ``cifar-10-python.tar.gz``
or ``cifar-100-python.tar.gz``, or their extracted folders); a prepared
tensorflow-datasets copy; the cache; the official download when online.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional, Sequence

from nsnn_jax.data import Dataset, augment, cifar
from train.common import cli, command
from train.common.config import option
from train.common.registry import Experiment
from train.common.task import Task
from train.common.vision import VisionConfig, architectures, build_model, make_loss

ARCHS = architectures("cifarnet", "resnet18", "resnet19", "vggsnn")
DATASETS = ("cifar10", "cifar100")
NORMALIZATIONS = ("authors", "dataset")
# The authors' CIFAR-10 z-scoring (dataset_utils.py L64-72), for a data module without its table of them.
_AUTHORS_CIFAR10 = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))


def mean_std(dataset: str, normalization: str) -> tuple:
    """The z-scoring ``(mean, std)`` per channel of ``--normalization`` on ``dataset``.

    ``authors``: the constants of the authors' code; ``dataset``: the data set's
    own statistics. Read from ``nsnn_jax.data.cifar.NORMALIZATIONS`` where the
    data module has it.

    Raises:
      ValueError: no such z-scoring for ``dataset``.
    """
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
    raise ValueError(f"--normalization={normalization!r} is not available for {dataset}: "
                     f"expected one of {NORMALIZATIONS} that nsnn_jax.data.cifar provides.")


@dataclasses.dataclass
class CifarConfig(VisionConfig):
    """CIFAR-10/100 spiking CNNs."""

    ARCHS: ClassVar[tuple[str, ...]] = ARCHS

    dataset: str = option("cifar10", "which CIFAR", DATASETS)
    data_dir: Optional[str] = option(None, "folder holding the official archive (or its extracted folder)")
    arch: str = option("cifarnet", "architecture (NAME_table5: the paper's Table 5 reading of NAME)", ARCHS)
    autoaugment: bool = option(True, "AutoAugment (CIFAR-10 policy) after crop and flip in training")
    normalization: Optional[str] = option(None, "z-scoring: authors (their code's constants) or dataset (the "
                                                "data set's own statistics) (default: the recipe)", NORMALIZATIONS)

    def __post_init__(self) -> None:
        self.check_choice("dataset", DATASETS)
        super().__post_init__()

    def validate(self) -> None:
        super().validate()
        self.check_choice("dataset", DATASETS)
        self.check_choice("normalization", NORMALIZATIONS)
        mean_std(self.dataset, self.normalization)


def load_data(config: CifarConfig) -> Dataset:
    return command.load_dataset(config.dataset, lambda: cifar.load_cifar(config.dataset, data_dir=config.data_dir))


def make_preprocess(config: CifarConfig):
    """``preprocess(images uint8 (B, 32, 32, 3), key, train)`` -> z-scored float32, augmented in training."""
    mean, std = mean_std(config.dataset, config.normalization)

    def preprocess(images, key, train):
        if train:
            images = augment.augment_batch(images, key, autoaugment=config.autoaugment)
        return augment.normalize(images, mean, std)

    return preprocess


def build_task(config: CifarConfig, data: Optional[Dataset] = None, **model_options) -> Task:
    """The trainer task for ``config``; ``data`` replaces loading (tests)."""
    classes = 100 if config.dataset == "cifar100" else 10
    data = load_data(config) if data is None else data
    return Task(f"{config.dataset}-{config.arch}", build_model(config, classes, **model_options), data,
                make_loss(config), make_preprocess(config), experiment=EXPERIMENT.command)


EXPERIMENT = Experiment("cifar", CifarConfig, build_task)


def main(argv: Optional[Sequence[str]] = None) -> None:
    model_options = command.start()
    config = cli.parse_config(CifarConfig, __doc__.splitlines()[0], argv)
    command.run(EXPERIMENT, config, model_options)


if __name__ == "__main__":
    main()
