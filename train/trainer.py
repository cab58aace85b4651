"""The trainer every entry point shares.

Adam with cosine decay to 0, one jitted step sharded over a 1-D ``'data'`` mesh
of all devices (batch split, parameters and optimizer state replicated), keys
derived as ``fold_in(key(seed), step)`` inside the step, metrics per epoch in
``metrics.jsonl``, an orbax checkpoint every epoch and on Ctrl-C, and exact
resumption: data order depends only on ``(seed, epoch)`` and noise only on
``(seed, step)``, so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import time
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from nsnn_jax import layers, losses
from nsnn_jax.checkpoint import CheckpointStore
from nsnn_jax.data import Dataset
from train.config import TrainConfig
from train.progress import Progress

LossFn = Callable[[jax.Array, jax.Array], jax.Array]
Preprocess = Callable[[jax.Array, jax.Array, bool], jax.Array]


@dataclasses.dataclass
class Task:
    """What to train: a model, its data, and how to score it.

    Attributes:
      name: experiment name (the default run folder prefix).
      model: a Flax module called as ``model(x, train=..., deterministic=...)``
        returning a readout ``(T, B, C)``.
      data: host arrays.
      loss: ``loss(outputs (T, B, C), targets)`` -> per-example losses ``(B,)``.
      preprocess: ``preprocess(x, key, train)`` run on device inside the step
        (normalisation, augmentation); must be jittable.
      classification: report accuracy (else a regression: ``test_mse``).
    """

    name: str
    model: nn.Module
    data: Dataset
    loss: LossFn
    preprocess: Preprocess
    classification: bool = True
    experiment: str = ""  # module of the entry point, e.g. "train.fmnist" (for analysis commands)

    @property
    def noisy(self) -> bool:
        """Whether the model's neurons carry noise (then deterministic accuracy is reported too)."""
        params = getattr(self.model, "neuron", None)
        return params is not None and params.noise is not None


def root_keys(seed: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(init, train, eval)`` keys; train steps use ``fold_in(train, step)``."""
    init_key, train_key, eval_key = jax.random.split(jax.random.key(seed), 3)
    return init_key, train_key, eval_key


# ---------------------------------------------------------------- devices ---


def maybe_initialize_distributed() -> None:
    """Starts multi-host JAX when a cluster environment describes several processes."""
    if os.environ.get("JAX_COORDINATOR_ADDRESS") or int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        jax.distributed.initialize()


def data_mesh() -> Mesh:
    """A 1-D mesh over every device, axis ``'data'``."""
    return Mesh(np.asarray(jax.devices()), ("data",))


def shard_batch(mesh: Mesh, array: np.ndarray) -> jax.Array:
    """Places a global host batch on the mesh, split along its first axis."""
    sharding = NamedSharding(mesh, PartitionSpec("data"))
    if jax.process_count() == 1:
        return jax.device_put(array, sharding)
    per_process = array.shape[0] // jax.process_count()
    local = array[jax.process_index() * per_process:(jax.process_index() + 1) * per_process]
    return jax.make_array_from_process_local_data(sharding, local, array.shape)


# ------------------------------------------------------------------ steps ---


def make_schedule(config: TrainConfig, total_steps: int) -> optax.Schedule:
    """Cosine decay from ``config.lr`` to 0 over the run."""
    return optax.cosine_decay_schedule(config.lr, max(total_steps, 1), alpha=0.0)


def make_optimizer(config: TrainConfig, schedule: optax.Schedule) -> optax.GradientTransformation:
    if config.weight_decay > 0:
        return optax.adamw(schedule, weight_decay=config.weight_decay)
    return optax.adam(schedule)


def make_train_step(task: Task, tx: optax.GradientTransformation, train_key: jax.Array) -> Callable:
    """The un-jitted train step ``(state, x, y) -> state``.

    ``state`` holds ``step``, ``params``, ``batch_stats``, ``opt_state`` and
    ``sums`` (running training sums for the epoch: loss, correct, count, rates).
    """

    def train_step(state, x, y):
        key = jax.random.fold_in(train_key, state["step"])
        noise_key, augment_key = jax.random.split(key)

        def objective(params):
            inputs = task.preprocess(x, augment_key, True)
            variables = {"params": params, **state["batch_stats"]}
            outputs, updates = task.model.apply(
                variables, inputs, train=True, rngs={"noise": noise_key},
                mutable=["intermediates", "batch_stats"],
            )
            return jnp.mean(task.loss(outputs, y)), (outputs, updates)

        (loss, (outputs, updates)), grads = jax.value_and_grad(objective, has_aux=True)(state["params"])
        param_updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], param_updates)
        batch = y.shape[0]
        sums = dict(state["sums"])
        sums["loss"] = sums["loss"] + loss * batch
        sums["count"] = sums["count"] + batch
        if task.classification:
            sums["correct"] = sums["correct"] + jnp.sum(losses.correct(outputs, y))
        rates = layers.sown_by_layer(updates.get("intermediates", {}), "firing_rate")
        sums["rates"] = {k: sums["rates"][k] + v * batch for k, v in rates.items()}
        batch_stats = {"batch_stats": updates["batch_stats"]} if "batch_stats" in updates else {}
        return {"step": state["step"] + 1, "params": params, "batch_stats": batch_stats,
                "opt_state": opt_state, "sums": sums}

    return train_step


def make_eval_step(task: Task, trials: int, deterministic: bool) -> Callable:
    """``(variables, x, y, weight, key) -> (loss_sum, correct_sum, count)``; padded rows have weight 0."""

    def eval_step(variables, x, y, weight, key):
        inputs = task.preprocess(x, key, False)

        def one_trial(trial_key):
            return task.model.apply(variables, inputs, train=False, deterministic=deterministic,
                                    rngs={"noise": trial_key})

        keys = jax.random.split(key, trials)
        outputs = jnp.mean(jax.lax.map(one_trial, keys), axis=0)
        result = {"loss": jnp.sum(task.loss(outputs, y) * weight), "count": jnp.sum(weight)}
        if task.classification:
            result["correct"] = jnp.sum(losses.correct(outputs, y) * weight)
        return result

    return eval_step


# ---------------------------------------------------------------- trainer ---


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
        maybe_initialize_distributed()
        self.mesh = data_mesh()
        devices = self.mesh.devices.size
        if config.batch_size % devices:
            raise ValueError(f"--batch-size={config.batch_size} must be a multiple of the {devices} devices.")
        self.steps_per_epoch = len(data.train_x) // config.batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"--batch-size={config.batch_size} exceeds the {len(data.train_x)} training samples.")
        self.total_steps = self.steps_per_epoch * config.epochs
        self.workdir = config.workdir or os.path.join(
            "runs", f"{task.name}-{time.strftime('%Y%m%d-%H%M%S')}")
        config.workdir = self.workdir
        self.schedule = make_schedule(config, self.total_steps)
        self.tx = make_optimizer(config, self.schedule)
        self.init_key, train_key, self.eval_key = root_keys(config.seed)
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        self._train_step = jax.jit(
            make_train_step(task, self.tx, train_key), donate_argnums=(0,),
            out_shardings=self.replicated)
        self._eval_steps = {
            det: jax.jit(make_eval_step(task, 1 if det else config.eval_trials, det))
            for det in (False, True)
        }

    # -- state ------------------------------------------------------------

    def init_state(self) -> dict:
        x = self.task.data.train_x[: self.config.batch_size]
        init_key, noise_key = jax.random.split(self.init_key)

        def initialise(x):  # under jit: op-by-op initialisation of a deep conv net takes tens of seconds
            inputs = self.task.preprocess(x, noise_key, False)
            return self.task.model.init({"params": init_key, "noise": noise_key}, inputs, train=False,
                                        mutable=True)  # intermediates too: the firing-rate names

        variables = jax.jit(initialise)(jnp.asarray(x))
        params = variables["params"]
        batch_stats = {"batch_stats": variables["batch_stats"]} if "batch_stats" in variables else {}
        rates = layers.sown_by_layer(variables.get("intermediates", {}), "firing_rate")
        state = {
            "step": jnp.zeros((), jnp.int32),
            "params": params,
            "batch_stats": batch_stats,
            "opt_state": self.tx.init(params),
            "sums": self._zero_sums(rates),
        }
        return jax.device_put(state, self.replicated)

    def _zero_sums(self, rates: dict) -> dict:
        sums = {"loss": jnp.zeros((), jnp.float32), "count": jnp.zeros((), jnp.float32),
                "rates": {k: jnp.zeros((), jnp.float32) for k in rates}}
        if self.task.classification:
            sums["correct"] = jnp.zeros((), jnp.float32)
        return sums

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
            out = eval_step(variables, shard_batch(self.mesh, x), shard_batch(self.mesh, y),
                            shard_batch(self.mesh, weight), jax.random.fold_in(self.eval_key, index))
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

    def _prepare_workdir(self) -> Optional[CheckpointStore]:
        os.makedirs(self.workdir, exist_ok=True)
        config_path = os.path.join(self.workdir, "config.json")
        store = CheckpointStore(os.path.join(self.workdir, "checkpoints"))
        if store.latest_step() is not None and not self.config.resume:
            raise ValueError(
                f"{self.workdir} already holds a run; pass --resume to continue it or choose another --workdir.")
        if self.config.resume and os.path.exists(config_path):
            with open(config_path) as f:
                saved = json.load(f)
            current = json.loads(json.dumps(dataclasses.asdict(self.config)))  # tuples -> lists
            ignore = {"resume", "workdir", "log_every", "eval_only", "data_dir", "eval_trials", "compile_cache"}
            changed = {k: (saved.get(k), v) for k, v in current.items()
                       if k not in ignore and saved.get(k) != v}
            if changed:
                raise ValueError(f"--resume with settings that differ from the saved run (saved, given): {changed}")
        saved = {"experiment": self.task.experiment, **dataclasses.asdict(self.config)}
        with open(config_path, "w") as f:
            f.write(json.dumps(saved, indent=2, sort_keys=True) + "\n")
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

    def _write_metrics(self, path: str, record: dict, keep_epochs_below: Optional[int] = None) -> None:
        lines = []
        if keep_epochs_below is not None and os.path.exists(path):
            with open(path) as f:
                lines = [l for l in f if l.strip() and json.loads(l)["epoch"] < keep_epochs_below]
            with open(path, "w") as f:
                f.writelines(lines)
        if record:
            with open(path, "a") as f:
                f.write(json.dumps(record) + "\n")

    def _finish_epoch(self, state: dict, epoch: int, seconds: float, metrics_path: str) -> tuple[dict, dict]:
        """Evaluates, appends the epoch's record, and resets the running sums."""
        step = int(state["step"])
        record = {"epoch": epoch, "step": step, **self._epoch_metrics(state["sums"])}
        record.update(self.evaluate(state))
        if self.task.classification and self.task.noisy:
            record["test_accuracy_deterministic"] = self.evaluate(state, deterministic=True)["test_accuracy"]
        record["lr"] = float(self.schedule(step))
        record["seconds"] = seconds
        self._write_metrics(metrics_path, record)
        print(json.dumps(record), file=sys.stderr)
        state["sums"] = jax.device_put(self._zero_sums(state["sums"]["rates"]), self.replicated)
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
        metrics_path = os.path.join(self.workdir, "metrics.jsonl")
        state = self.init_state()
        print(f"{self.task.name}: {self.parameter_count(state):,} parameters, "
              f"{jax.device_count()} {jax.devices()[0].platform} device(s), run folder {self.workdir}",
              file=sys.stderr)
        if config.resume and store.latest_step() is not None:
            state = store.restore(state)
            print(f"resumed at step {int(state['step'])}", file=sys.stderr)
        start = int(state["step"])
        # A checkpoint is saved after its epoch's record is written, so any later record is stale.
        self._write_metrics(metrics_path, {}, keep_epochs_below=start // self.steps_per_epoch + 1)

        previous_handlers = self._install_stop_handlers()
        record: dict[str, Any] = {}
        progress = None
        try:
            epoch_start = time.perf_counter()
            for step in range(start, self.total_steps):
                epoch, index = divmod(step, self.steps_per_epoch)
                if progress is None:
                    order = np.random.default_rng([config.seed, epoch]).permutation(len(data.train_x))
                    progress = Progress(self.steps_per_epoch, f"epoch {epoch + 1}/{config.epochs}",
                                        config.batch_size, start=index)
                rows = order[index * config.batch_size:(index + 1) * config.batch_size]
                state = self._train_step(state, shard_batch(self.mesh, data.train_x[rows]),
                                         shard_batch(self.mesh, data.train_y[rows]))
                extra = ""
                if index % 20 == 19 or index + 1 == self.steps_per_epoch:
                    sums = jax.device_get(state["sums"])
                    extra = f"loss {float(sums['loss']) / max(float(sums['count']), 1):.4f}"
                progress.update(1, extra)
                if config.log_every and (step + 1) % config.log_every == 0:
                    print(json.dumps({"step": step + 1, **self._epoch_metrics(state["sums"])}), file=sys.stderr)
                if index + 1 == self.steps_per_epoch:
                    progress.close()
                    progress = None
                    state, record = self._finish_epoch(
                        state, epoch + 1, time.perf_counter() - epoch_start, metrics_path)
                    store.save(step + 1, state)
                    epoch_start = time.perf_counter()
                if self._stop_requested and step + 1 < self.total_steps:
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
        self.last_state = state
        if not record:  # resumed an already finished run
            with open(metrics_path) as f:
                record = json.loads(f.readlines()[-1])
        return record


def _restore_run(workdir: str, data: Optional[Dataset], overrides: Optional[dict]) -> tuple["Trainer", dict]:
    import importlib

    config_path = os.path.join(workdir, "config.json")
    if not os.path.exists(config_path):
        raise FileNotFoundError(f"{workdir} is not a run folder: no config.json (expected the --workdir of a train.* command).")
    with open(config_path) as f:
        saved = json.load(f)
    experiment = saved.pop("experiment", "")
    if not experiment.startswith("train."):
        raise ValueError(f"{config_path} names no training experiment (got {experiment!r}).")
    module = importlib.import_module(experiment)
    saved = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()}  # JSON lists -> tuples
    config = module.CONFIG(**{**saved, **(overrides or {}), "workdir": workdir, "resume": True})
    task = module.build_task(config, data)
    store = CheckpointStore(os.path.join(workdir, "checkpoints"))
    try:
        if store.latest_step() is None:
            raise FileNotFoundError(f"No checkpoint in {store.directory}: the run saved none yet.")
        run = Trainer(config, task)
        try:
            state = store.restore(run.init_state())
        except Exception as error:  # orbax reports shape/structure mismatches in many types
            raise ValueError(f"The checkpoint in {store.directory} does not match the model its "
                             f"config.json describes: {str(error)[:300]}") from error
    finally:
        store.close()
    return run, state


def load_run(workdir: str, data: Optional[Dataset] = None,
             overrides: Optional[dict] = None) -> tuple[TrainConfig, Task, dict]:
    """Rebuilds a finished (or interrupted) run: its config, task and latest variables.

    Args:
      workdir: the run folder written by a ``train.*`` command.
      data: overrides the experiment's data loading (tests).
      overrides: config fields to replace (e.g. ``{"data_dir": ...}``).

    Returns:
      ``(config, task, variables)`` where ``variables`` holds ``params`` (and
      ``batch_stats`` when the model has them).

    Raises:
      FileNotFoundError: no ``config.json`` or no checkpoint in ``workdir``.
      ValueError: the config names no known experiment, or the checkpoint does not fit.
    """
    run, state = _restore_run(workdir, data, overrides)
    variables = {"params": state["params"], **state["batch_stats"]}
    return run.config, run.task, variables


def evaluate_run(workdir: str, data: Optional[Dataset] = None,
                 overrides: Optional[dict] = None) -> dict[str, Any]:
    """Test loss and accuracy of the latest checkpoint in ``workdir``.

    Noisy models are scored twice: stochastic inference (the average of
    ``eval_trials`` passes, keys from the run's seed) and deterministic
    inference (noise off, the DSNN limit).

    Returns:
      ``{"step", "eval_trials", "test_loss", "test_accuracy"`` (or
      ``"test_mse"``) and, for noisy classifiers, ``"test_accuracy_deterministic"}``.
    """
    run, state = _restore_run(workdir, data, overrides)
    result: dict[str, Any] = {"step": int(state["step"]), "eval_trials": run.config.eval_trials}
    result.update(run.evaluate(state))
    if run.task.classification and run.task.noisy:
        result["test_accuracy_deterministic"] = run.evaluate(state, deterministic=True)["test_accuracy"]
    return result


def enable_compile_cache(config: TrainConfig) -> Optional[str]:
    """Turns on JAX's persistent compilation cache (unless ``--compile-cache false``); returns its folder."""
    if not getattr(config, "compile_cache", False):
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


def run_experiment(config: TrainConfig, build_task: Callable[[TrainConfig], Task]) -> dict[str, Any]:
    """Builds the task, trains, prints the final line; user errors exit 1 with a message."""
    enable_compile_cache(config)
    try:
        record = Trainer(config, build_task(config)).run()
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from error
    report_final(record)
    return record


def report_final(record: dict[str, Any]) -> None:
    """Prints the contract's last line: ``final test_accuracy=...`` or ``final test_mse=...``."""
    if "test_accuracy" in record:
        print(f"final test_accuracy={record['test_accuracy']:.4f}")
    else:
        print(f"final test_mse={record['test_mse']:.6f}")
