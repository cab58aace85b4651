"""``python -m train.fmnist``: a spiking MLP on Fashion-MNIST (or MNIST).

Data, in this order: ``--data-dir`` with the four IDX ``.gz`` files; Debian's
``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist/``); the official
download when online (checked by size and MD5, cached).
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import jax.numpy as jnp

from nsnn_jax import losses, models
from nsnn_jax.data import Dataset, idx
from train.common import cli, command
from train.common.config import TrainConfig, flag, option
from train.common.registry import Experiment
from train.common.task import Task

DEFAULT_HIDDEN = {"fashion_mnist": (512,), "mnist": (64,)}


@dataclasses.dataclass
class FmnistConfig(TrainConfig):
    """Fashion-MNIST / MNIST spiking MLP."""

    dataset: str = option("fashion_mnist", "which IDX dataset", tuple(DEFAULT_HIDDEN))
    data_dir: Optional[str] = option(None, "folder holding the four IDX .gz files")
    hidden: tuple[int, ...] = option((), "hidden widths, e.g. 512,512 (empty: 512 for fashion_mnist, 64 for mnist)")
    epochs: int = option(4, "training epochs")
    batch_size: int = option(128, "global batch size (split over devices)")
    lr: float = option(2e-3, "peak Adam learning rate (cosine decay to 0 over the run)")
    timesteps: int = option(8, "simulation steps T")

    def validate(self) -> None:
        super().validate()
        if any(width < 1 for width in self.hidden):
            raise ValueError(f"{flag('hidden')}={self.hidden!r} is invalid: widths must be >= 1.")

    def resolved_hidden(self) -> tuple[int, ...]:
        return tuple(self.hidden) or DEFAULT_HIDDEN[self.dataset]


def load_data(config: FmnistConfig) -> Dataset:
    return command.load_dataset(config.dataset, lambda: idx.load_idx_dataset(config.dataset, data_dir=config.data_dir))


def preprocess(images, key, train):
    del key, train  # no augmentation: pixels scaled to [0, 1]
    return images.astype(jnp.float32) * (1.0 / 255.0)


def build_task(config: FmnistConfig, data: Optional[Dataset] = None, conv_weight_grad: str = "xla") -> Task:
    """The trainer task for ``config``; ``data`` replaces loading (tests).

    ``conv_weight_grad`` (from the start-up, as for every experiment) is unused: the MLP has no convolution.
    """
    del conv_weight_grad
    model = models.get_model(
        "mlp", hidden=config.resolved_hidden(), outputs=10, timesteps=config.timesteps,
        neuron=config.lif_params(), dtype=config.compute_dtype())
    data = load_data(config) if data is None else data
    return Task(config.dataset, model, data, losses.rate_cross_entropy, preprocess, experiment=EXPERIMENT.command)


EXPERIMENT = Experiment("fmnist", FmnistConfig, build_task)


def main(argv: Optional[Sequence[str]] = None) -> None:
    model_options = command.start()
    config = cli.parse_config(FmnistConfig, __doc__.splitlines()[0], argv)
    command.run(EXPERIMENT, config, model_options)


if __name__ == "__main__":
    main()
