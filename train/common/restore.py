"""Rebuilding a run folder through the registry: its config, task and latest checkpoint."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import warnings
from typing import Any, Optional

from nsnn_jax.data import Dataset
from train.common import devices, registry, rundir
from train.common.config import TrainConfig
from train.common.loop import Trainer
from train.common.task import Task


def config_of_run(workdir: str, overrides: Optional[dict] = None) -> tuple[registry.Experiment, TrainConfig]:
    """The experiment ``workdir/config.json`` names and its config, with ``overrides`` applied.

    Raises:
      FileNotFoundError: no ``config.json``.
      ValueError: an unknown experiment, or settings its config class does not have.
    """
    saved = rundir.read_config(workdir)
    recorded = saved.pop("experiment", "")
    try:
        experiment = registry.get_experiment(recorded)
    except ValueError as error:
        raise ValueError(f"{os.path.join(workdir, rundir.CONFIG_FILE)} names no known experiment: {error}") from error
    fields = {field.name for field in dataclasses.fields(experiment.config_class)}
    unknown = sorted(set(saved) - fields)
    if unknown:
        raise ValueError(f"{os.path.join(workdir, rundir.CONFIG_FILE)} holds settings {unknown} that "
                         f"{experiment.command} does not have.")
    saved = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()}  # JSON lists -> tuples
    config = experiment.config_class(**{**saved, **(overrides or {}), "workdir": workdir, "resume": True})
    return experiment, config


CHECKPOINTS = ("final", "best")


def _restore_run(workdir: str, data: Optional[Dataset], overrides: Optional[dict],
                 model_options: Optional[dict], checkpoint: str = "final") -> tuple[Trainer, dict]:
    if checkpoint not in CHECKPOINTS:
        raise ValueError(f"--checkpoint={checkpoint!r} is invalid: expected one of {CHECKPOINTS}.")
    experiment, config = config_of_run(workdir, overrides)
    task = experiment.build_task(config, data, **(model_options or {}))
    store = (rundir.checkpoint_store if checkpoint == "final" else rundir.best_checkpoint_store)(workdir)
    try:
        if store.latest_step() is None:
            raise FileNotFoundError(f"No {checkpoint} checkpoint in {store.directory}: the run saved none yet.")
        run = Trainer(config, task)
        with warnings.catch_warnings(record=True) as damaged:
            warnings.simplefilter("always")
            state = store.restore_intact(run.init_state())
        for warning in damaged:
            print(f"warning: {warning.message}", file=sys.stderr)
    except ValueError as error:
        raise ValueError(f"The checkpoint in {store.directory} does not match the model its "
                         f"config.json describes (or is damaged): {str(error)[:600]}") from error
    finally:
        store.close()
    return run, state


def load_run(workdir: str, data: Optional[Dataset] = None, overrides: Optional[dict] = None,
             model_options: Optional[dict] = None) -> tuple[TrainConfig, Task, dict]:
    """Rebuilds a finished (or interrupted) run: its config, task and latest variables.

    Args:
      workdir: the run folder written by a ``train.*`` command.
      data: overrides the experiment's data loading (tests).
      overrides: config fields to replace (e.g. ``{"data_dir": ...}``).
      model_options: passed to the experiment's ``build_task`` (e.g. what
        :func:`train.common.command.start` returned).

    Returns:
      ``(config, task, variables)`` where ``variables`` holds ``params`` (and
      ``batch_stats`` when the model has them).

    Raises:
      FileNotFoundError: no ``config.json`` or no checkpoint in ``workdir``.
      ValueError: the config names no known experiment, or the checkpoint does not fit.
    """
    run, state = _restore_run(workdir, data, overrides, model_options)
    variables = {"params": state["params"], **state["batch_stats"]}
    return run.config, run.task, variables


def evaluate_run(workdir: str, data: Optional[Dataset] = None, overrides: Optional[dict] = None,
                 model_options: Optional[dict] = None, checkpoint: str = "final") -> dict[str, Any]:
    """Test loss and accuracy of the latest (``checkpoint="final"``) or best epoch's checkpoint in ``workdir``.

    The best epoch is the one with the best test figure, so its score is a
    selection on the test set, not an unbiased estimate.

    Noisy models are scored twice: stochastic inference (the average of
    ``eval_trials`` passes, keys from the run's seed) and deterministic
    inference (noise off, the DSNN limit).

    Returns:
      ``{"step", "eval_trials", "test_loss", "test_accuracy"`` (or
      ``"test_mse"``) and, for noisy classifiers, ``"test_accuracy_deterministic"}``.
    """
    run, state = _restore_run(workdir, data, overrides, model_options, checkpoint)
    result: dict[str, Any] = {"checkpoint": checkpoint, "step": int(state["step"]),
                              "eval_trials": run.config.eval_trials}
    result.update(run.evaluate(state))
    if run.task.classification and run.task.noisy:
        result["test_accuracy_deterministic"] = run.evaluate(state, deterministic=True)["test_accuracy"]
    return result


def evaluate_only(config: TrainConfig, model_options: Optional[dict] = None) -> dict[str, Any]:
    """``--eval-only``: scores a checkpoint of ``config.workdir``, prints it and writes ``DIR/eval.json``.

    ``--checkpoint best`` scores the best epoch's (selected on the test set) and writes ``DIR/eval_best.json``.
    """
    if not config.workdir:
        raise ValueError("--eval-only needs --workdir (the run folder to evaluate).")
    overrides = {"eval_trials": config.eval_trials}
    if getattr(config, "data_dir", None):
        overrides["data_dir"] = config.data_dir
    checkpoint = getattr(config, "checkpoint", "final")
    result = evaluate_run(config.workdir, overrides=overrides, model_options=model_options, checkpoint=checkpoint)
    path = os.path.join(config.workdir, "eval.json" if checkpoint == "final" else f"eval_{checkpoint}.json")
    if devices.is_main_process():
        with open(path, "w") as f:
            f.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
    for name, value in result.items():
        print(f"{name}={value:.4f}" if isinstance(value, float) else f"{name}={value}")
    print(f"wrote {path}", file=sys.stderr)
    return result
