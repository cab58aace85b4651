"""``python -m train.dvs_gesture``: 7B-Net on DVS128 Gesture event frames (T = 16).

AEDAT 3.1 recordings with their ``*_labels.csv`` and the ``trials_to_train.txt``
/ ``trials_to_test.txt`` lists from ``--data-dir`` are cut into gestures,
integrated into T frames of two polarity channels at 128x128 (``--size`` to
down-sample) and cached. No augmentation: a mirrored gesture is another class.
The settings left unset come from the recipe of ``--algorithm`` and
``--neuron`` (:mod:`train.common.recipes`): T = 16 and sigma 0.3 from the
paper; the paper publishes no learning rate, batch or epochs for this data set.
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

ARCHS = ("sevenb",)


@dataclasses.dataclass
class DvsGestureConfig(dvs_common.DvsConfig):
    """DVS128 Gesture."""

    ARCHS: ClassVar[tuple[str, ...]] = ARCHS
    DATASET: ClassVar[str] = "dvs_gesture"

    arch: str = option("sevenb", "architecture", ARCHS)
    size: int = option(128, "frame height and width (128: as recorded)")


def load_data(config: DvsGestureConfig) -> Dataset:
    return command.load_dataset("dvs_gesture", lambda: events.load_dvs_gesture(
        config.data_dir, timesteps=config.timesteps, size=config.size, split_by=config.split_by,
        cache_dir=config.cache_dir), unit="recordings")


def build_task(config: DvsGestureConfig, data: Optional[Dataset] = None, **model_options) -> Task:
    """The trainer task for ``config``; ``data`` replaces loading (tests)."""
    data = load_data(config) if data is None else data
    return dvs_common.build_task(config, data, "dvs_gesture", 11, EXPERIMENT.command, max_shift=0,
                                 **model_options)


EXPERIMENT = Experiment("dvs_gesture", DvsGestureConfig, build_task)


def main(argv: Optional[Sequence[str]] = None) -> None:
    model_options = command.start()
    config = cli.parse_config(DvsGestureConfig, __doc__.splitlines()[0], argv)
    command.run(EXPERIMENT, config, model_options)


if __name__ == "__main__":
    main()
