"""What the event-camera commands share: their settings, time-major inputs, augmentation."""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import jax
import jax.numpy as jnp

from nsnn_jax.data import Dataset
from train.common.config import flag, option
from train.common.task import Task
from train.common.vision import VisionConfig, build_model, limit_data, make_loss

SPLITS = ("number", "time")


@dataclasses.dataclass
class DvsConfig(VisionConfig):
    """Settings of the event-frame commands; subclasses set the data set and defaults."""

    data_dir: Optional[str] = option(None, "folder holding the recordings as their publishers distribute them")
    cache_dir: Optional[str] = option(None, "folder of the cached frames (default: beside the data)")
    split_by: str = option("number", "frames of equal event counts (number) or equal durations (time)", SPLITS)
    size: int = option(48, "frame height and width after down-sampling")

    def validate(self) -> None:
        super().validate()
        self.check_choice("split_by", SPLITS)
        if self.size < 1:
            raise ValueError(f"{flag('size')}={self.size!r} is invalid: expected an integer >= 1.")


def flip_and_roll(frames: jax.Array, key: jax.Array, max_shift: int) -> jax.Array:
    """Random horizontal flip and a random roll of up to ``max_shift`` pixels along each axis.

    Args:
      frames: one sample ``(T, H, W, P)``.
      key: its key.
      max_shift: largest roll, in pixels.

    Returns:
      ``(T, H, W, P)``, the same flip and roll at every step.
    """
    flip_key, roll_key = jax.random.split(key)
    frames = jnp.where(jax.random.bernoulli(flip_key), frames[:, :, ::-1], frames)
    dy, dx = jax.random.randint(roll_key, (2,), -max_shift, max_shift + 1)
    return jnp.roll(frames, (dy, dx), axis=(1, 2))


def make_preprocess(max_shift: int) -> Callable:
    """``preprocess(frames (B, T, H, W, P), key, train)`` -> time-major float ``(T, B, H, W, P)``.

    Training adds per-sample flips and rolls when ``max_shift > 0``.
    """

    def preprocess(frames, key, train):
        frames = frames.astype(jnp.float32)
        if train and max_shift > 0:
            keys = jax.random.split(key, frames.shape[0])
            frames = jax.vmap(lambda f, k: flip_and_roll(f, k, max_shift))(frames, keys)
        return jnp.swapaxes(frames, 0, 1)

    return preprocess


def build_task(config: DvsConfig, data: Dataset, name: str, classes: int, experiment: str,
               max_shift: int, **model_options) -> Task:
    """A trainer task on event frames ``data`` (cut to ``--train-limit``/``--test-limit``)."""
    model = build_model(config, classes, sequence_input=True, **model_options)
    return Task(f"{name}-{config.arch}", model, limit_data(config, data), make_loss(config),
                make_preprocess(max_shift), experiment=experiment)
