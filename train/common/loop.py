"""The training loop every command shares: :class:`Trainer`.

Adam with cosine decay to 0, one jitted step sharded over a 1-D ``'data'`` mesh
of all devices (batch split, parameters and optimizer state replicated), keys
derived as ``fold_in(key(seed), step)`` inside the step, metrics per epoch in
``metrics.jsonl``, an orbax checkpoint every epoch and on Ctrl-C, and exact
resumption: data order depends only on ``(seed, epoch)`` and noise only on
``(seed, step)``, so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nsnn_jax.checkpoint import CheckpointStore
from train.common import devices, rundir, steps, tensorboard
from train.common.config import TrainConfig
from train.common.progress import Progress
from train.common.task import Task


class NonFiniteError(ValueError):
    """Training produced a NaN or Inf loss (or parameters); the last good checkpoint is kept."""


def _is_better(record: dict, best: dict | None, classification: bool) -> bool:
    if best is None:
        return True
    if classification:
        return record["test_accuracy"] > best["test_accuracy"]
    return record["test_mse"] < best["test_mse"]


def best_of(records: list[dict], classification: bool) -> dict | None:
    """The epoch record with the best test figure (ties: the earliest) -- a selection on the test set."""
    best = None
    for record in records:
        if _is_better(record, best, classification):
            best = record
    return best


class Trainer:
    """Runs a :class:`Task` under a :class:`TrainConfig` and writes the run folder."""

    def __init__(self, config: TrainConfig, task: Task):
        config.validate()
        self.config = config
        self.task = task
        data = task.data
        if len(data.train_x) != len(data.train_y) or len(data.test_x) != len(data.test_y):
            raise ValueError("Inputs and targets differ in length: "
                             f"train {len(data.train_x)} vs {len(data.train_y)}, test {len(data.test_x)} vs {len(data.test_y)}.")
        self.mesh = devices.data_mesh()
        device_count = self.mesh.devices.size
        if config.batch_size % device_count:
            raise ValueError(f"--batch-size={config.batch_size} must be a multiple of the {device_count} devices.")
        self.steps_per_epoch = len(data.train_x) // config.batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"--batch-size={config.batch_size} exceeds the {len(data.train_x)} training samples.")
        self.total_steps = self.steps_per_epoch * config.epochs
        # Resolved here, never written back: the config stays what the caller gave.
        self.workdir = config.workdir or rundir.default_workdir(task.name)
        self.schedule = steps.make_schedule(config, self.total_steps)
        self.tx = steps.make_optimizer(config, self.schedule)
        self.keys = steps.root_keys(config.seed)
        self._board: "tensorboard.ScalarLog | None" = None  # opened by run() with --tensorboard
        self.replicated = devices.replicated(self.mesh)
        train_step = steps.make_train_step(task, self.tx, self.keys.train)

        def guarded_step(state, first_bad, x, y):
            # The step number after the first step whose loss or parameters were not finite (-1: none).
            new = train_step(state, x, y)
            finite = jnp.isfinite(new["sums"]["loss"])
            for leaf in jax.tree.leaves(new["params"]):
                finite &= jnp.all(jnp.isfinite(leaf))
            return new, jnp.where((first_bad < 0) & ~finite, new["step"], first_bad)

        self._train_step = jax.jit(guarded_step, donate_argnums=(0,), out_shardings=self.replicated)
        self._eval_steps = {
            det: jax.jit(steps.make_eval_step(task, 1 if det else config.eval_trials, det))
            for det in (False, True)
        }

    # -- state ------------------------------------------------------------

    def init_state(self) -> dict:
        x = jnp.asarray(self.task.data.train_x[: self.config.batch_size])
        return devices.put_replicated(self.mesh, steps.initial_state(self.task, self.tx, self.keys.init, x))

    def parameter_count(self, state: dict) -> int:
        return int(sum(np.prod(p.shape) for p in jax.tree.leaves(state["params"])))

    # -- evaluation -------------------------------------------------------

    def evaluate(self, state: dict, deterministic: bool = False) -> dict[str, float]:
        """Loss and accuracy (or MSE) on the test set; stochastic unless ``deterministic``."""
        data = self.task.data
        batch = self.config.batch_size
        variables = {"params": state["params"], **state["batch_stats"]}
        eval_step = self._eval_steps[deterministic]
        totals: dict[str, float] = {}
        for index, start in enumerate(range(0, len(data.test_x), batch)):
            x, y = data.test_x[start:start + batch], data.test_y[start:start + batch]
            weight = np.ones(len(x), np.float32)
            if len(x) < batch:  # pad so every batch has one shape: one compilation
                pad = batch - len(x)
                x = np.concatenate([x, np.repeat(x[-1:], pad, 0)])
                y = np.concatenate([y, np.repeat(y[-1:], pad, 0)])
                weight = np.concatenate([weight, np.zeros(pad, np.float32)])
            out = eval_step(variables, devices.shard_batch(self.mesh, x), devices.shard_batch(self.mesh, y),
                            devices.shard_batch(self.mesh, weight), jax.random.fold_in(self.keys.eval, index))
            for name, value in out.items():
                totals[name] = totals.get(name, 0.0) + float(value)
        count = totals.pop("count")
        result = {"test_loss": totals["loss"] / count}
        if self.task.classification:
            result["test_accuracy"] = totals["correct"] / count
        else:
            result["test_mse"] = totals["loss"] / count
        return result

    # -- the loop ---------------------------------------------------------

    def _check_writable(self) -> None:
        """Raises ``ValueError`` unless the run folder takes files."""
        probe = os.path.join(self.workdir, f".write-test-{jax.process_index()}")
        try:
            with open(probe, "wb") as f:
                f.write(b"\0" * 65536)
                f.flush()
                os.fsync(f.fileno())
            os.remove(probe)
        except OSError as error:
            raise ValueError(f"The run folder {self.workdir} is not writable ({error.strerror or error}); "
                             "choose another --workdir.") from error

    def _check_space(self, state: dict) -> None:
        """Raises ``ValueError`` unless the run folder has room for the checkpoints of ``state``."""
        state_bytes = sum(leaf.nbytes for leaf in jax.tree.leaves(state))
        needed = 3 * state_bytes + (1 << 20)  # the latest two checkpoints and the best epoch's
        free = shutil.disk_usage(self.workdir).free
        if free < needed:
            raise ValueError(f"The run folder {self.workdir} has {free / 2**20:.1f} MiB free; its checkpoints "
                             f"need {needed / 2**20:.1f} MiB. Free space or choose another --workdir.")

    def _prepare_workdir(self) -> CheckpointStore:
        try:
            os.makedirs(self.workdir, exist_ok=True)
        except OSError as error:
            raise ValueError(f"Cannot create the run folder {self.workdir} ({error.strerror or error}); "
                             "choose another --workdir.") from error
        self._check_writable()
        store = rundir.checkpoint_store(self.workdir)
        if store.latest_step() is not None and not self.config.resume:
            raise ValueError(
                f"{self.workdir} already holds a run; pass --resume to continue it or choose another --workdir.")
        record = rundir.config_record(self.config, self.task.experiment, self.workdir)
        if self.config.resume and os.path.exists(os.path.join(self.workdir, rundir.CONFIG_FILE)):
            rundir.check_resume(rundir.read_config(self.workdir), record)
        if devices.is_main_process():
            rundir.write_config(self.workdir, record)
        return store

    def _epoch_metrics(self, sums: dict) -> dict[str, Any]:
        sums = jax.device_get(sums)
        count = max(float(sums["count"]), 1.0)
        metrics: dict[str, Any] = {"train_loss": float(sums["loss"]) / count}
        if self.task.classification:
            metrics["train_accuracy"] = float(sums["correct"]) / count
        layer_rates = {k: float(v) / count for k, v in sums["rates"].items()}
        metrics["firing_rate"] = float(np.mean(list(layer_rates.values()))) if layer_rates else 0.0
        metrics["firing_rate_layers"] = layer_rates
        return metrics

    def _finish_epoch(self, state: dict, epoch: int, seconds: float, metrics_path: str,
                      best_store: CheckpointStore) -> tuple[dict, dict]:
        """Evaluates, keeps the best epoch's checkpoint, appends the epoch's record, and resets the running sums."""
        step = int(state["step"])
        record = {"epoch": epoch, "step": step, **self._epoch_metrics(state["sums"])}
        record.update(self.evaluate(state))
        if self.task.classification and self.task.noisy:
            record["test_accuracy_deterministic"] = self.evaluate(state, deterministic=True)["test_accuracy"]
        record["lr"] = float(self.schedule(step))
        record["seconds"] = seconds
        if _is_better(record, self.best, self.task.classification):
            self.best = dict(record)
            best_store.save(step, state)
        figure = "test_accuracy" if self.task.classification else "test_mse"
        # Chosen by the test figure itself: a selection on the test set, reported as such.
        record["best_epoch"] = self.best["epoch"]
        record[f"best_{figure}"] = self.best[figure]
        record["best_selected_on"] = "test"
        if devices.is_main_process():
            rundir.append_metrics(metrics_path, record)
        if self._board is not None:
            self._board.record("epoch", record, epoch)
        print(json.dumps(record), file=sys.stderr)
        state["sums"] = devices.put_replicated(
            self.mesh, steps.zero_sums(state["sums"]["rates"], self.task.classification))
        return state, record

    def _install_stop_handlers(self) -> dict:
        """Ctrl-C / SIGTERM ask for a stop at the next step boundary; a second Ctrl-C aborts."""
        self._stop_requested = False

        def request_stop(signum, frame):
            if self._stop_requested and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self._stop_requested = True
            print("\nstopping after this step (Ctrl-C again to abort without saving)", file=sys.stderr)

        previous = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[signum] = signal.signal(signum, request_stop)
            except ValueError:  # not the main thread: no handlers, no graceful stop
                pass
        return previous

    def run(self) -> dict[str, float]:
        """Trains to the end (or resumes), returns the last epoch's metrics.

        On Ctrl-C or SIGTERM the run stops at the next step boundary, saves a
        checkpoint and exits with status 130; ``--resume`` continues it.
        """
        config, data = self.config, self.task.data
        store = self._prepare_workdir()
        metrics_path = rundir.metrics_path(self.workdir)
        state = self.init_state()
        try:
            self._check_space(state)
        except ValueError:
            store.close()
            raise
        best_store = rundir.best_checkpoint_store(self.workdir)
        try:
            self._board = tensorboard.open_log(config.tensorboard, self.workdir)
        except ValueError:
            store.close()
            best_store.close()
            raise
        print(f"{self.task.name}: {self.parameter_count(state):,} parameters, "
              f"{jax.device_count()} {jax.devices()[0].platform} device(s), run folder {self.workdir}",
              file=sys.stderr)
        # Decided together: a process that lists no checkpoint must not start afresh while its peers resume
        # (restore_intact then makes every process take the same step, or stops them all with an error).
        if config.resume and devices.any_process(store.latest_step() is not None):
            with warnings.catch_warnings(record=True) as damaged:
                warnings.simplefilter("always")
                state = store.restore_intact(state)
            for warning in damaged:
                print(f"warning: {warning.message}", file=sys.stderr)
            print(f"resumed at step {int(state['step'])}", file=sys.stderr)
        elif config.resume:
            print(f"--resume: no checkpoint in {store.directory}; starting a new run", file=sys.stderr)
        start = int(state["step"])
        done_epochs = start // self.steps_per_epoch
        kept = [r for r in self._read_records(metrics_path) if r.get("epoch", 0) <= done_epochs]
        self.best = best_of(kept, self.task.classification)
        if jax.process_count() > 1:  # every process has read the records before process 0 trims them
            from jax.experimental import multihost_utils
            multihost_utils.sync_global_devices("records read")
        # A checkpoint is saved after its epoch's record is written, so any later record is stale.
        if devices.is_main_process():
            rundir.keep_metrics_before(metrics_path, done_epochs + 1)

        previous_handlers = self._install_stop_handlers()
        record: dict[str, Any] = {}
        progress = None
        first_bad = devices.put_replicated(self.mesh, np.int32(-1))
        try:
            epoch_start = time.perf_counter()
            for step in range(start, self.total_steps):
                epoch, index = divmod(step, self.steps_per_epoch)
                if progress is None:
                    order = np.random.default_rng([config.seed, epoch]).permutation(len(data.train_x))
                    progress = Progress(self.steps_per_epoch, f"epoch {epoch + 1}/{config.epochs}",
                                        config.batch_size, start=index)
                rows = order[index * config.batch_size:(index + 1) * config.batch_size]
                state, first_bad = self._train_step(
                    state, first_bad, devices.shard_batch(self.mesh, data.train_x[rows]),
                    devices.shard_batch(self.mesh, data.train_y[rows]))
                extra = ""
                if index % 20 == 19 or index + 1 == self.steps_per_epoch or self._stop_requested:
                    self._check_finite(first_bad, store)
                    sums = jax.device_get(state["sums"])
                    extra = f"loss {float(sums['loss']) / max(float(sums['count']), 1):.4f}"
                progress.update(1, extra)
                if config.log_every and (step + 1) % config.log_every == 0:
                    running = self._epoch_metrics(state["sums"])
                    print(json.dumps({"step": step + 1, **running}), file=sys.stderr)
                    if self._board is not None:
                        self._board.record("step", {**running, "lr": float(self.schedule(step))}, step + 1)
                if index + 1 == self.steps_per_epoch:
                    progress.close()
                    progress = None
                    state, record = self._finish_epoch(
                        state, epoch + 1, time.perf_counter() - epoch_start, metrics_path, best_store)
                    store.save(step + 1, state)
                    epoch_start = time.perf_counter()
                if self._stop_agreed(index) and step + 1 < self.total_steps:
                    if progress is not None:
                        progress.close()
                    if index + 1 != self.steps_per_epoch:
                        store.save(step + 1, state)
                    print(f"interrupted: checkpoint at step {step + 1} saved in {store.directory}; "
                          f"continue with --resume --workdir {self.workdir}", file=sys.stderr)
                    raise SystemExit(130)
        finally:
            for signum, handler in previous_handlers.items():
                signal.signal(signum, handler)
            store.close()
            best_store.close()
            if self._board is not None:
                self._board.close()
        self.last_state = state
        if not record:  # resumed an already finished run
            record = rundir.last_record(self.workdir)
        return record

    def _stop_agreed(self, index: int) -> bool:
        """Whether to stop after this step: asked here, or (several processes) asked of any, at a common step.

        The processes of a job compare requests every 20 steps and at the end of
        each epoch, so all stop after the same step and save the same checkpoint.
        """
        if jax.process_count() == 1:
            return self._stop_requested
        if index % 20 != 19 and index + 1 != self.steps_per_epoch:
            return False
        from jax.experimental import multihost_utils
        asked = multihost_utils.process_allgather(np.int32(self._stop_requested))
        return bool(np.any(asked))

    def _read_records(self, path: str) -> list[dict]:
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def _check_finite(self, first_bad: jax.Array, store: CheckpointStore) -> None:
        """Raises :class:`NonFiniteError` naming the step when a loss or parameter went NaN/Inf."""
        bad = int(jax.device_get(first_bad))
        if bad < 0:
            return
        epoch, index = divmod(bad - 1, self.steps_per_epoch)
        kept = store.latest_step()
        where = (f"the last good checkpoint, step {kept}, stays in {store.directory}" if kept is not None
                 else "no checkpoint was saved before it")
        raise NonFiniteError(
            f"Training diverged: the loss or parameters became NaN/Inf at step {bad} (epoch {epoch + 1}, "
            f"step {index + 1} of {self.steps_per_epoch}); {where}. Try a smaller --lr "
            f"(given {self.config.lr:g}).")
