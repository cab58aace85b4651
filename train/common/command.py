"""What every command's ``main`` does: start up, train (or evaluate), report.

A command's ``main`` is::

    model_options = command.start()
    config = cli.parse_config(ConfigClass, description, argv)
    command.run(EXPERIMENT, config, model_options)
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Optional, TypeVar

import jax

from nsnn_jax import cpu
from nsnn_jax.data import DataNotFoundError, Dataset
from train.common import devices, registry, restore
from train.common.config import TrainConfig
from train.common.loop import Trainer

R = TypeVar("R")


def start() -> dict[str, Any]:
    """Process-wide set-up, called first by every command, before JAX starts a backend.

    Sets the CPU convolution engine (:func:`nsnn_jax.cpu.configure`) and, when
    SLURM, Open MPI or ``--coordinator-address``/``--num-processes``/``--process-id``
    (taken out of ``sys.argv`` here) describe several processes, joins them
    (:func:`train.common.devices.initialize_distributed`); processes other
    than 0 then print only errors.

    Returns:
      Model options every command passes to its experiment's ``build_task``
      (and so to the model constructors): ``conv_weight_grad``, the conv
      weight gradient that suits the engine.
    """
    # XLA reads its CPU flags when the first backend starts, so this comes before any JAX
    # computation; verify=False because verifying would start the backends before a
    # multi-process start-up could run.
    setup = cpu.configure(verify=False)
    try:
        flags, rest = devices.split_distributed_flags(sys.argv[1:])
        settings = devices.distributed_settings(flags)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from error
    sys.argv[1:] = rest
    try:
        devices.initialize_distributed(settings)
    except RuntimeError as error:
        devices.report_error(f"error: {error}")
        raise SystemExit(1) from error
    devices.quiet_unless_main()
    return {"conv_weight_grad": setup.conv_weight_grad}


def load_dataset(name: str, load: Callable[[], Dataset], unit: str = "images") -> Dataset:
    """Runs a library loader for a command and says on stderr what it loaded.

    A missing data set names the command's ``--data-dir`` (the library says ``data_dir``).
    """
    try:
        data = load()
    except DataNotFoundError as error:
        raise error.rephrased("--data-dir") from None
    print(f"{name}: {len(data.train_y)} train / {len(data.test_y)} test {unit}, "
          f"inputs {data.train_x.shape[1:]} from {data.source}", file=sys.stderr)
    return data


def enable_compile_cache(config: TrainConfig) -> Optional[str]:
    """Turns on JAX's persistent compilation cache (unless ``--compile-cache false``); returns its folder."""
    if not config.compile_cache:
        return None
    folder = os.environ.get("NSNN_JAX_COMPILE_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "nsnn_jax", "xla")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:  # a read-only home: run without the cache
        print(f"warning: no compilation cache ({error})", file=sys.stderr)
        return None
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    return folder


def exit_on_user_error(fn: Callable[[], R]) -> R:
    """Runs ``fn``; a ``FileNotFoundError`` or ``ValueError`` prints ``error: ...`` and exits with status 1.

    In a job of several processes any error does so, naming the peers lost when
    a peer is why (see :func:`train.common.devices.fail_job`).
    """
    try:
        return fn()
    except (FileNotFoundError, ValueError) as error:
        devices.fail_job(error)
    except Exception as error:
        if jax.process_count() == 1:
            raise
        devices.fail_job(error)  # a lost peer: say which, and do not wait for it


def train(experiment: registry.Experiment, config: TrainConfig,
          model_options: Optional[dict] = None) -> dict[str, Any]:
    """Builds the task, trains to the end (or resumes), prints the final line; returns the last record."""
    enable_compile_cache(config)
    record = exit_on_user_error(
        lambda: Trainer(config, experiment.build_task(config, **(model_options or {}))).run())
    report_final(record)
    return record


def run(experiment: registry.Experiment, config: TrainConfig,
        model_options: Optional[dict] = None) -> dict[str, Any]:
    """``--eval-only``: rescores the checkpoint in ``--workdir``; otherwise trains."""
    if getattr(config, "eval_only", False):
        enable_compile_cache(config)
        return exit_on_user_error(lambda: restore.evaluate_only(config, model_options))
    return train(experiment, config, model_options)


def report_final(record: dict[str, Any]) -> None:
    """Prints the contract's last line: ``final test_accuracy=0.8100 (best epoch 7: 0.8300, selected on the test set)``.

    Regression runs print ``final test_mse=...`` the same way (best: the lowest).
    """
    figure, digits = ("test_accuracy", 4) if "test_accuracy" in record else ("test_mse", 6)
    line = f"final {figure}={record[figure]:.{digits}f}"
    if f"best_{figure}" in record:
        line += (f" (best epoch {record['best_epoch']}: {record[f'best_{figure}']:.{digits}f}, "
                 "selected on the test set)")
    print(line)
