"""What the analysis commands share: loading a run, batching trials, writing results."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Optional

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")

from nsnn_jax import trials as trials_lib  # noqa: E402
from nsnn_jax.data import Dataset  # noqa: E402
from train.common import command, devices, restore  # noqa: E402
from train.common.progress import Progress  # noqa: E402

# Evaluation preprocessing draws nothing (no augmentation), so its key is a constant.
EVAL_PREPROCESS_SEED = 0


def start() -> dict:
    """The start-up every command does first (:func:`train.common.command.start`); returns the model options."""
    return command.start()


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--workdir", required=True, help="run folder written by a train.* command")
    p.add_argument("--seed", type=int, default=0, help="seed of the trial noise")
    p.add_argument("--layer", default=None, help="spiking layer to record (default: the last one)")
    return p


def load(workdir: str, data: Optional[Dataset] = None, model_options: Optional[dict] = None):
    """``(config, task, variables)`` of a run, rebuilt through the experiment registry, with errors the user can act on."""
    try:
        config, task, variables = restore.load_run(workdir, data, model_options=model_options)
        return config, task, devices.to_host(variables)
    except (FileNotFoundError, ValueError) as error:
        devices.fail_job(error)
    except Exception as error:  # a checkpoint that does not fit the rebuilt model
        # fail_job: in a job every process stops at once (none waits for the others at shutdown)
        devices.fail_job(ValueError(f"the checkpoint in {workdir} does not match its config.json: {error}"))


def run_trials(task, variables, raw_inputs, key, n_trials, layer, batch=100, label="trials"):
    """Trials over batches of raw (batch-major) inputs, preprocessed as at evaluation.

    Returns:
      ``(layer_name, spikes (N, T, B, K) uint8, outputs (N, T, B, C) float32)``.
    """
    layers = [layer] if layer else None
    spikes, outputs = [], []
    progress = Progress(-(-len(raw_inputs) // batch), label, items_per_step=batch)
    preprocess_key = jax.random.key(EVAL_PREPROCESS_SEED)
    name = None
    for index, start in enumerate(range(0, len(raw_inputs), batch)):
        inputs = task.preprocess(jnp.asarray(raw_inputs[start:start + batch]), preprocess_key, False)
        try:
            result = trials_lib.sample_trials(
                task.model, variables, inputs, jax.random.fold_in(key, index), n_trials, layers,
                mesh=devices.data_mesh())
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(1) from error
        name = next(iter(result.spikes))
        recorded = result.spikes[name]
        spikes.append(recorded.reshape(recorded.shape[:3] + (-1,)))
        outputs.append(result.outputs)
        progress.update(1)
    progress.close()
    return name, np.concatenate(spikes, axis=2), np.concatenate(outputs, axis=2)


def output_dir(workdir: str) -> str:
    path = os.path.join(workdir, "analysis")
    if devices.is_main_process():
        os.makedirs(path, exist_ok=True)
    return path


def writes_files() -> bool:
    """Whether this process writes the outputs (process 0 of a job of several)."""
    return devices.is_main_process()


def write_json(path: str, payload: dict[str, Any]) -> None:
    """Writes ``payload`` (process 0 alone)."""
    if not devices.is_main_process():
        return
    with open(path, "w") as f:
        json.dump(payload, f, indent=2)
