"""``python -m train.dvs_gesture``: 7B-Net on DVS128 Gesture event frames (T = 16).

AEDAT 3.1 recordings with their ``*_labels.csv`` and the ``trials_to_train.txt``
/ ``trials_to_test.txt`` lists from ``--data-dir`` are cut into gestures,
integrated into T frames of two polarity channels at 128x128 (``--size`` to
down-sample) and cached. No augmentation: a mirrored gesture is another class.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

from nsnn_jax.data import events
from train import cli, dvs as dvs_common, trainer
from train.config import option
from train.vision import ALGORITHMS, train_or_evaluate

ARCHS = ("sevenb",)
DEFAULTS = {("sevenb", algorithm): dict(epochs=200, batch_size=16, lr=1e-3, timesteps=16)
            for algorithm in ALGORITHMS}


@dataclasses.dataclass
class DvsGestureConfig(dvs_common.DvsConfig):
    """DVS128 Gesture."""

    arch: str = option("sevenb", "architecture", ARCHS)
    algorithm: str = option("stbp", "stbp: BN + rate CE; tdbn: tdBN + rate CE; tet: tdBN + TET loss", ALGORITHMS)
    size: int = option(128, "frame height and width (128: as recorded)")

    def validate(self) -> None:
        self.check_choice("arch", ARCHS)
        super().validate()
        self.resolve_defaults(DEFAULTS)


def load(config: DvsGestureConfig):
    return events.load_dvs_gesture(config.data_dir, timesteps=config.timesteps, size=config.size,
                                   split_by=config.split_by, cache_dir=config.cache_dir)


def build_task(config: DvsGestureConfig, data: Optional[trainer.Dataset] = None) -> trainer.Task:
    """The trainer task for ``config``; ``data`` overrides loading (tests)."""
    return dvs_common.build_task(config, data, load, "dvs_gesture", 11, "train.dvs_gesture", max_shift=0)


CONFIG = DvsGestureConfig


def main(argv: Optional[Sequence[str]] = None) -> None:
    config = cli.parse_config(DvsGestureConfig, __doc__.splitlines()[0], argv)
    train_or_evaluate(config, build_task)


if __name__ == "__main__":
    main()
