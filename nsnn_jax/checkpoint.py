"""Checkpoints of training state with orbax: save, restore, resume."""

from __future__ import annotations

import os
import warnings
from typing import Any, Optional

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

__all__ = ["CheckpointStore"]

# The folder of a step that holds the state (the CheckpointManager's name of a single item).
_ITEM = "default"


def _allgather(value: np.ndarray) -> np.ndarray:
    """``value`` of every process of the job, stacked ``(processes, ...)`` (one process: ``value[None]``)."""
    if jax.process_count() == 1:
        return np.asarray(value)[None]
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(np.asarray(value)))


def _common_steps(steps: list[int]) -> list[int]:
    """The steps of ``steps`` (sorted) that every process of the job lists."""
    counts = _allgather(np.int32(len(steps)))
    padded = np.full(int(counts.max()), -1, np.int32)
    padded[:len(steps)] = steps
    everyone = _allgather(padded)
    return [s for s in steps if all(s in row for row in everyone)]


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

        In a job of several processes every process takes the same step: a step
        is tried only if every process lists it, and taken only if every
        process reads it back; a step read by some processes and not by others
        is an error on all of them (never a silent split, nor one process
        waiting in a collective the others never enter).

        Raises:
          FileNotFoundError: no checkpoint in ``directory``.
          ValueError: every checkpoint is damaged (or does not fit ``state_like``),
            or the processes of a job read the same step differently; names the folder.
        """
        listed = self.all_steps()
        steps = _common_steps(listed)
        if not steps:
            if listed:
                raise ValueError(f"Checkpoint steps {listed} in {self.directory} are not listed by every process "
                                 "of the job; every process must see the same files.")
            raise FileNotFoundError(f"No checkpoint found in {self.directory}.")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_like)
        failures = [f"step {step} ({os.path.join(self.directory, str(step))}): not listed by every process"
                    for step in reversed(listed) if step > steps[-1] and step not in steps]
        for step in reversed(steps):
            try:
                state, reason = self._read(step, abstract), None
            except Exception as error:  # orbax reports damage as JSON, tensorstore or value errors
                state = None
                reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
            read = _allgather(np.int32(reason is None))
            if read.all():
                for failure in failures:
                    warnings.warn(f"checkpoint {failure.split(' (')[0]} is damaged, restored step {step} "
                                  f"instead: {failure}", RuntimeWarning, stacklevel=2)
                return state
            if read.any():
                readers = [int(i) for i in np.flatnonzero(read)]
                others = [int(i) for i in np.flatnonzero(read == 0)]
                raise ValueError(
                    f"Checkpoint step {step} in {self.directory} reads back on processes {readers} but not on "
                    f"processes {others}" + (f" (here: {reason})" if reason else "") +
                    "; every process must see the same files (a shared folder, not per-host copies).")
            failures.append(f"step {step} ({os.path.join(self.directory, str(step))}): {reason}")
        raise ValueError(f"No intact checkpoint in {self.directory}: " + "; ".join(failures))

    def _read(self, step: int, abstract: Any) -> Any:
        """Step ``step`` read into ``abstract``, by this process alone (no barrier with the others)."""
        path = epath.Path(self.directory) / str(step)
        if not path.is_dir():
            raise FileNotFoundError(f"No checkpoint folder {path}.")
        handler = ocp.StandardCheckpointHandler()
        try:
            return handler.restore(path / _ITEM, args=ocp.args.StandardRestore(abstract))
        finally:
            handler.close()

    def close(self) -> None:
        self._manager.close()
