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
    p.add_argument("--memory-budget", type=memory_size, default=None,
                   help="memory for the trials and their results, in bytes or with a unit (12G, 512M; "
                        "default: half the available memory)")
    return p


def memory_size(text: str) -> int:
    """Bytes from ``'12G'``, ``'12GiB'``, ``'512M'``, ``'1.5g'`` or a plain number of bytes (an argparse ``type``)."""
    units = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
    cleaned = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = cleaned[-1:] if cleaned[-1:] in units else ""
    try:
        value = float(cleaned[:len(cleaned) - len(unit)]) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size such as 12G, 512M or 1000000, got {text!r}") from None
    if not value >= 1:
        raise argparse.ArgumentTypeError(f"expected a size of at least one byte, got {text!r}")
    return int(value)


def load(workdir: str, data: Optional[Dataset] = None, model_options: Optional[dict] = None):
    """``(config, task, variables)`` of a run, rebuilt through the experiment registry, with errors the user can act on."""
    try:
        config, task, variables = restore.load_run(workdir, data, model_options=model_options)
        return config, task, devices.to_host(variables)
    except (FileNotFoundError, ValueError) as error:
        devices.fail_job(error)
    except Exception as error:  # a checkpoint that does not fit the rebuilt model
        print(f"error: the checkpoint in {workdir} does not match its config.json: {error}", file=sys.stderr)
        raise SystemExit(1) from error


def run_trials(task, variables, raw_inputs, key, n_trials, layer, batch=100, label="trials", memory_budget=None):
    """Trials over batches of raw (batch-major) inputs, preprocessed as at evaluation.

    Every batch has the same shape (the last one is padded), so the trials are
    compiled once. ``memory_budget`` (bytes; default: half the available
    memory) covers the results of every batch and one compiled chunk of trials.

    Returns:
      ``(layer_name, spikes (N, T, B, K) uint8, outputs (N, T, B, C) float32)``.
    """
    layers = [layer] if layer else None
    batch = min(batch, len(raw_inputs))
    budget = trials_lib.default_memory_budget() if memory_budget is None else int(memory_budget)
    preprocess_key = jax.random.key(EVAL_PREPROCESS_SEED)
    progress, sampler, spikes, outputs = None, None, None, None
    for index, start in enumerate(range(0, len(raw_inputs), batch)):
        raw = np.asarray(raw_inputs[start:start + batch])
        count = len(raw)
        if count < batch:  # the same shape as the others: no second compilation
            raw = np.concatenate([raw, np.repeat(raw[-1:], batch - count, axis=0)])
        inputs = task.preprocess(jnp.asarray(raw), preprocess_key, False)
        try:
            if sampler is None:
                sampler = trials_lib.trial_sampler(task.model, variables, inputs, layers, mesh=devices.data_mesh())
                per_sample = sampler.trial_bytes() // batch
                left = budget - n_trials * per_sample * len(raw_inputs)
                if left < 1:
                    raise ValueError(
                        f"the results alone ({n_trials} trials x {len(raw_inputs)} inputs) take "
                        f"{n_trials * per_sample * len(raw_inputs) / 2**30:.2f} GiB, more than the memory budget of "
                        f"{budget / 2**30:.2f} GiB")
                chunk = sampler.plan(n_trials, left)
                print(f"{label}: {chunk} trials per compiled chunk, planned {sampler.planned_bytes(chunk) / 2**30:.2f} "
                      f"GiB + results {(budget - left) / 2**30:.2f} GiB (budget {budget / 2**30:.2f} GiB)",
                      file=sys.stderr)
                progress = Progress(-(-len(raw_inputs) // batch), label, items_per_step=batch)
            result = sampler(variables, inputs, jax.random.fold_in(key, index), n_trials, chunk=chunk)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(1) from error
        name = next(iter(result.spikes))
        recorded = result.spikes[name]
        recorded = recorded.reshape(recorded.shape[:3] + (-1,))[:, :, :count]
        if spikes is None:  # filled in place: no second copy of the results
            spikes = np.empty(recorded.shape[:2] + (len(raw_inputs),) + recorded.shape[3:], recorded.dtype)
            outputs = np.empty(result.outputs.shape[:2] + (len(raw_inputs),) + result.outputs.shape[3:], np.float32)
        spikes[:, :, start:start + count] = recorded
        outputs[:, :, start:start + count] = result.outputs[:, :, :count]
        progress.update(1)
    progress.close()
    return name, spikes, outputs


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
