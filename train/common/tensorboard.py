"""TensorBoard event files beside ``metrics.jsonl`` (``--tensorboard``; needs ``tensorboardX``)."""

from __future__ import annotations

import math
import numbers
import os
from typing import Any, Mapping, Optional

from train.common import devices

__all__ = ["FOLDER", "ScalarLog", "open_log", "scalars"]

FOLDER = "tensorboard"
# Counters, not figures: they are the step axis or bookkeeping.
_NOT_SCALARS = frozenset({"epoch", "step", "best_epoch"})


def scalars(record: Mapping[str, Any]) -> dict[str, float]:
    """The finite numbers of a metrics record, nested ones as ``outer/inner`` (e.g. ``firing_rate/lif0``)."""
    out: dict[str, float] = {}
    for name, value in record.items():
        if name in _NOT_SCALARS or isinstance(value, bool):
            continue
        if isinstance(value, Mapping):
            for inner, number in scalars(value).items():
                out[f"{name.removesuffix('_layers')}/{inner}"] = number
        elif isinstance(value, numbers.Real) and math.isfinite(value):
            out[name] = float(value)
    return out


class ScalarLog:
    """Writes metrics records as scalars of one event-file folder.

    Args:
      logdir: the folder of the event files (``DIR/tensorboard``).

    Raises:
      ValueError: ``tensorboardX`` is not installed.
    """

    def __init__(self, logdir: str):
        try:
            from tensorboardX import SummaryWriter
        except ImportError as error:
            raise ValueError("--tensorboard needs the tensorboardX package: pip install -e '.[tensorboard]' "
                             "(or pip install tensorboardX).") from error
        self.logdir = logdir
        self._writer = SummaryWriter(logdir=logdir)

    def record(self, prefix: str, record: Mapping[str, Any], step: int) -> None:
        """Adds every scalar of ``record`` as ``prefix/name`` at ``step`` and flushes."""
        for name, value in scalars(record).items():
            self._writer.add_scalar(f"{prefix}/{name}", value, step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def open_log(enabled: bool, workdir: str) -> Optional[ScalarLog]:
    """The run's log when ``enabled`` on the process that writes files (process 0), else ``None``."""
    if not enabled or not devices.is_main_process():
        return None
    return ScalarLog(os.path.join(workdir, FOLDER))
