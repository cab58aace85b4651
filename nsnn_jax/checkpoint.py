"""Checkpoints of training state with orbax: save, restore, resume."""

from __future__ import annotations

import os
import warnings
from typing import Any, Optional

import jax
import orbax.checkpoint as ocp

__all__ = ["CheckpointStore"]


class CheckpointStore:
    """Numbered checkpoints of one pytree structure in ``directory``.

    Saves are synchronous, so a checkpoint is complete on disk when ``save``
    returns (an interrupted run never leaves a half-written latest step: orbax
    writes to a temporary folder and renames it).

    Args:
      directory: folder for the checkpoints (created if missing).
      max_to_keep: how many recent checkpoints to keep.
    """

    def __init__(self, directory: str, max_to_keep: int = 2):
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> Optional[int]:
        """The newest saved step, or ``None`` when there is none."""
        return self._manager.latest_step()

    def save(self, step: int, state: Any) -> None:
        """Saves ``state`` (a pytree of arrays) as ``step``, replacing an older save of it."""
        if step in self._manager.all_steps():
            self._manager.delete(step)
        self._manager.save(step, args=ocp.args.StandardSave(state))
        self._manager.wait_until_finished()

    def restore(self, state_like: Any, step: Optional[int] = None) -> Any:
        """Restores ``step`` (default: latest) into the structure, shapes and shardings of ``state_like``.

        Raises:
          FileNotFoundError: no checkpoint in ``directory``.
        """
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"No checkpoint found in {self.directory}.")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_like)
        return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))

    def all_steps(self) -> list[int]:
        """The saved steps, oldest first."""
        return sorted(self._manager.all_steps())

    def restore_intact(self, state_like: Any) -> Any:
        """Restores the newest checkpoint that reads back whole, warning of each damaged newer one.

        Raises:
          FileNotFoundError: no checkpoint in ``directory``.
          ValueError: every checkpoint is damaged (or does not fit ``state_like``); names the folder.
        """
        steps = self.all_steps()
        if not steps:
            raise FileNotFoundError(f"No checkpoint found in {self.directory}.")
        failures = []
        for step in reversed(steps):
            try:
                state = self.restore(state_like, step)
            except Exception as error:  # orbax reports damage as JSON, tensorstore or value errors
                reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
                failures.append(f"step {step} ({os.path.join(self.directory, str(step))}): {reason}")
                continue
            for failure in failures:
                warnings.warn(f"checkpoint {failure.split(' (')[0]} is damaged, restored step {step} "
                              f"instead: {failure}", RuntimeWarning, stacklevel=2)
            return state
        raise ValueError(f"No intact checkpoint in {self.directory}: " + "; ".join(failures))

    def close(self) -> None:
        self._manager.close()
