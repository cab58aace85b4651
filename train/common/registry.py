"""The experiments by name: ``name -> (config class, build_task)``.

Each command declares its :class:`Experiment` (``EXPERIMENT`` in
``train/NAME.py``); :func:`experiments` lists them all. Restoring a run looks
its experiment up here by the name ``config.json`` records.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from train.common.config import TrainConfig

COMMAND_PREFIX = "train."


class Experiment(NamedTuple):
    """One training command.

    Attributes:
      name: the command is ``python -m train.<name>``.
      config_class: its :class:`TrainConfig` subclass.
      build_task: ``build_task(config, data=None, **model_options) -> Task``;
        ``data`` replaces loading (tests), ``model_options`` go to the model
        constructor.
    """

    name: str
    config_class: type[TrainConfig]
    build_task: Callable

    @property
    def command(self) -> str:
        """The module that runs it, as ``config.json`` records it: ``train.<name>``."""
        return COMMAND_PREFIX + self.name


def experiments() -> dict[str, Experiment]:
    """Every experiment, by name."""
    # The commands import train.common, so they are imported when the table is first asked for.
    from train import cifar, dvs_cifar, dvs_gesture, fmnist, sine

    return {e.name: e for e in (fmnist.EXPERIMENT, sine.EXPERIMENT, cifar.EXPERIMENT,
                                dvs_cifar.EXPERIMENT, dvs_gesture.EXPERIMENT)}


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name`` (``"fmnist"``) or run by the command ``name`` (``"train.fmnist"``).

    Raises:
      ValueError: no such experiment; the message lists the known ones.
    """
    known = experiments()
    short = name[len(COMMAND_PREFIX):] if name.startswith(COMMAND_PREFIX) else name
    if short not in known:
        raise ValueError(f"Unknown experiment {name!r}: expected one of {sorted(known)} "
                         f"(or {COMMAND_PREFIX}<name>).")
    return known[short]
