"""The run folder: ``config.json``, ``metrics.jsonl`` and ``checkpoints/``.

``config.json`` holds every setting of the run, resolved, and the command that
wrote it (``"experiment": "train.NAME"``); ``metrics.jsonl`` one JSON object
per epoch.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Optional

from nsnn_jax.checkpoint import CheckpointStore
from train.common.config import TrainConfig

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
BEST_CHECKPOINT = "best_checkpoint"  # the epoch with the best test figure (a selection on the test set)
# Settings a --resume may change: where and how a run is watched, scored or fed, not what it trains.
RESUME_MAY_CHANGE = frozenset({"resume", "workdir", "log_every", "eval_only", "data_dir", "eval_trials",
                               "compile_cache", "checkpoint", "tensorboard"})


def default_workdir(name: str) -> str:
    """``runs/NAME-<timestamp>``."""
    return os.path.join("runs", f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")


def config_record(config: TrainConfig, experiment: str, workdir: str) -> dict[str, Any]:
    """What ``config.json`` holds: the command, every field of ``config``, the resolved ``workdir``."""
    fields = json.loads(json.dumps(dataclasses.asdict(config)))  # tuples -> lists, as read back
    return {**fields, "experiment": experiment, "workdir": workdir}


def read_config(workdir: str) -> dict[str, Any]:
    """The ``config.json`` of ``workdir``.

    Raises:
      FileNotFoundError: ``workdir`` holds no ``config.json``.
    """
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{workdir} is not a run folder: no {CONFIG_FILE} "
                                "(expected the --workdir of a train.* command).")
    with open(path) as f:
        return json.load(f)


def write_config(workdir: str, record: dict[str, Any]) -> None:
    """Writes ``config.json`` whole or not at all: the other processes of a job may be reading the old one."""
    _replace(os.path.join(workdir, CONFIG_FILE), json.dumps(record, indent=2, sort_keys=True) + "\n")


def _replace(path: str, text: str) -> None:
    """Writes ``text`` to a temporary file beside ``path`` and renames it over ``path`` (atomic on POSIX)."""
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w") as f:
        f.write(text)
    os.replace(temporary, path)


def check_resume(saved: dict[str, Any], record: dict[str, Any]) -> None:
    """Raises ``ValueError`` when a resumed run's settings differ from the saved ones (beyond RESUME_MAY_CHANGE)."""
    changed = {k: (saved.get(k), v) for k, v in record.items()
               if k not in RESUME_MAY_CHANGE and k != "experiment" and saved.get(k) != v}
    if changed:
        raise ValueError(f"--resume with settings that differ from the saved run (saved, given): {changed}")


def checkpoint_store(workdir: str) -> CheckpointStore:
    return CheckpointStore(os.path.join(workdir, CHECKPOINTS))


def best_checkpoint_store(workdir: str) -> CheckpointStore:
    return CheckpointStore(os.path.join(workdir, BEST_CHECKPOINT), max_to_keep=1)


def metrics_path(workdir: str) -> str:
    return os.path.join(workdir, METRICS_FILE)


def append_metrics(path: str, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def keep_metrics_before(path: str, epoch: int) -> None:
    """Drops the records of ``epoch`` and later (written after the last checkpoint, so stale on resume)."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = [line for line in f if line.strip() and json.loads(line)["epoch"] < epoch]
    _replace(path, "".join(lines))


def read_metrics(workdir: str) -> list[dict[str, Any]]:
    """The records of ``workdir/metrics.jsonl``, in order."""
    with open(metrics_path(workdir)) as f:
        return [json.loads(line) for line in f if line.strip()]


def run_finished(workdir: str) -> bool:
    """Whether ``workdir`` holds a run whose metrics reach its last epoch."""
    try:
        epochs = read_config(workdir)["epochs"]
        records = read_metrics(workdir)
    except (OSError, ValueError, KeyError):
        return False
    return bool(records) and records[-1].get("epoch") == epochs


def last_record(workdir: str) -> Optional[dict[str, Any]]:
    records = read_metrics(workdir)
    return records[-1] if records else None
