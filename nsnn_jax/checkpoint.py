"""Checkpoints of training state with orbax: save, restore, resume."""

from __future__ import annotations

import os
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

    def close(self) -> None:
        self._manager.close()
