"""``python -m train.sine``: sine-series forecasting (SSF) with a noisy spiking MLP.

The series is ``sin(0.1 k)``. A window of T consecutive values is fed one value
per time step; at every step the readout forecasts the next value of the
series, and the loss is the MSE over all steps. The model is the paper's
``32fc-16fc`` MLP with T = 48.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import jax.numpy as jnp
import numpy as np

from nsnn_jax import losses, models
from nsnn_jax.data import Dataset
from train.common import cli, command
from train.common.config import TrainConfig, flag, option
from train.common.registry import Experiment
from train.common.task import Task

STEP = 0.1
# The windows come from default_rng(seed + DATA_SEED_OFFSET): data apart from the seed's other uses.
DATA_SEED_OFFSET = 12345


@dataclasses.dataclass
class SineConfig(TrainConfig):
    """Sine-series forecasting."""

    hidden: tuple[int, ...] = option((32, 16), "hidden widths")
    timesteps: int = option(48, "window length T (one series value per step)")
    train_windows: int = option(4096, "training windows (random phases)")
    test_windows: int = option(512, "test windows (other phases)")
    epochs: int = option(40, "training epochs")
    batch_size: int = option(64, "global batch size (split over devices)")
    lr: float = option(1e-2, "peak Adam learning rate (cosine decay to 0 over the run)")

    def validate(self) -> None:
        super().validate()
        if not self.hidden or any(width < 1 for width in self.hidden):
            raise ValueError(f"{flag('hidden')}={self.hidden!r} is invalid: one or more widths >= 1.")
        if self.train_windows < 1 or self.test_windows < 1:
            raise ValueError("--train-windows and --test-windows must be >= 1.")


def make_windows(count: int, timesteps: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Windows of ``sin(0.1 k)`` at random offsets: inputs ``(N, T, 1)``, next values ``(N, T, 1)``."""
    offsets = rng.uniform(0.0, 2.0 * np.pi, size=(count, 1))
    grid = offsets + STEP * np.arange(timesteps + 1)
    series = np.sin(grid).astype(np.float32)[..., None]
    return series[:, :-1], series[:, 1:]


def sine_data(config: SineConfig) -> Dataset:
    rng = np.random.default_rng(config.seed + DATA_SEED_OFFSET)
    train_x, train_y = make_windows(config.train_windows, config.timesteps, rng)
    test_x, test_y = make_windows(config.test_windows, config.timesteps, rng)
    return Dataset(train_x, train_y, test_x, test_y, source="generated")


def to_time_major(windows, key, train):
    del key, train
    return jnp.swapaxes(windows, 0, 1)


def forecast_loss(outputs, targets):
    """Per-step MSE per example ``(B,)``; targets arrive batch-major ``(B, T, 1)``."""
    return losses.mse_loss(outputs, jnp.swapaxes(targets, 0, 1))


def build_task(config: SineConfig, data: Optional[Dataset] = None, conv_weight_grad: str = "xla") -> Task:
    del conv_weight_grad  # from the start-up, as for every experiment; the MLP has no convolution
    model = models.get_model(
        "mlp", hidden=tuple(config.hidden), outputs=1, timesteps=config.timesteps,
        neuron=config.lif_params(), sequence_input=True)
    data = sine_data(config) if data is None else data
    return Task("sine", model, data, forecast_loss, to_time_major, classification=False,
                experiment=EXPERIMENT.command)


EXPERIMENT = Experiment("sine", SineConfig, build_task)


def main(argv: Optional[Sequence[str]] = None) -> None:
    model_options = command.start()
    config = cli.parse_config(SineConfig, __doc__.splitlines()[0], argv)
    command.run(EXPERIMENT, config, model_options)


if __name__ == "__main__":
    main()
