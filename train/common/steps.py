"""Keys, schedule, optimiser and the jitted steps of the trainer.

Keys are split explicitly and each is used for one purpose:

* ``key(seed)`` -> ``(init, train, eval)`` (:func:`root_keys`);
* ``init`` -> ``(params, noise, preprocess)`` of the initialisation (:func:`init_keys`);
* ``fold_in(train, step)`` -> ``(noise, augment, dropout)`` of one train step;
* ``fold_in(eval, batch)`` -> one noise key per trial, then the preprocessing key.

``jax.random.split(key, n)[i]`` does not depend on ``n`` (partitionable
threefry), so adding a purpose at the end of a split leaves the keys before it,
and so the figures they give, as they were.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from nsnn_jax import layers, losses
from train.common.config import TrainConfig
from train.common.task import Task


class RootKeys(NamedTuple):
    """The three streams of a run; train steps use ``fold_in(train, step)``, evaluation ``fold_in(eval, batch)``."""

    init: jax.Array
    train: jax.Array
    eval: jax.Array


class InitKeys(NamedTuple):
    """Keys of the initialisation: the parameters, the noise of the shape-inference pass, its preprocessing."""

    params: jax.Array
    noise: jax.Array
    preprocess: jax.Array


def root_keys(seed: int) -> RootKeys:
    return RootKeys(*jax.random.split(jax.random.key(seed), 3))


def init_keys(init_key: jax.Array) -> InitKeys:
    return InitKeys(*jax.random.split(init_key, 3))


def make_schedule(config: TrainConfig, total_steps: int) -> optax.Schedule:
    """Cosine decay from ``config.lr`` to 0 over the run, per step or per epoch (``config.schedule_unit``).

    Per epoch, as PyTorch's ``CosineAnnealingLR(T_max=epochs)`` stepped once an
    epoch: every step of epoch ``e`` (0-based) uses
    ``lr * (1 + cos(pi * e / epochs)) / 2``, so the last epoch's rate is still
    above 0 and 0 is reached after the run (``step = total_steps``).

    Args:
      config: ``lr``, ``epochs`` and ``schedule_unit`` (``"step"`` when absent).
      total_steps: steps of the run, a multiple of ``config.epochs``.
    """
    total_steps = max(total_steps, 1)
    if getattr(config, "schedule_unit", "step") == "step":
        return optax.cosine_decay_schedule(config.lr, total_steps, alpha=0.0)
    epochs = config.epochs
    steps_per_epoch = max(total_steps // epochs, 1)
    peak = config.lr

    def per_epoch(step):
        epoch = jnp.minimum(jnp.floor_divide(step, steps_per_epoch), epochs)
        return peak * 0.5 * (1.0 + jnp.cos(jnp.pi * epoch.astype(jnp.float32) / epochs))

    return per_epoch


def make_optimizer(config: TrainConfig, schedule: optax.Schedule) -> optax.GradientTransformation:
    if config.weight_decay > 0:
        return optax.adamw(schedule, weight_decay=config.weight_decay)
    return optax.adam(schedule)


def zero_sums(layer_names, classification: bool) -> dict:
    """Empty running sums of an epoch: loss, count, per-layer firing rates (and correct)."""
    sums = {"loss": jnp.zeros((), jnp.float32), "count": jnp.zeros((), jnp.float32),
            "rates": {name: jnp.zeros((), jnp.float32) for name in layer_names}}
    if classification:
        sums["correct"] = jnp.zeros((), jnp.float32)
    return sums


def initial_state(task: Task, tx: optax.GradientTransformation, init_key: jax.Array, x: jax.Array) -> dict:
    """The train step's state at step 0, the model initialised on the raw batch ``x``.

    Initialisation runs under ``jax.jit`` (op-by-op, a deep conv net takes tens
    of seconds); the sown firing rates of that pass name the layers whose rates
    the step sums.
    """
    keys = init_keys(init_key)

    def initialise(x):
        inputs = task.preprocess(x, keys.preprocess, False)
        return task.model.init({"params": keys.params, "noise": keys.noise}, inputs, train=False, mutable=True)

    variables = jax.jit(initialise)(x)
    params = variables["params"]
    rates = layers.sown_by_layer(variables.get("intermediates", {}), "firing_rate")
    return {
        "step": jnp.zeros((), jnp.int32),
        "params": params,
        "batch_stats": {"batch_stats": variables["batch_stats"]} if "batch_stats" in variables else {},
        "opt_state": tx.init(params),
        "sums": zero_sums(rates, task.classification),
    }


def make_train_step(task: Task, tx: optax.GradientTransformation, train_key: jax.Array) -> Callable:
    """The un-jitted train step ``(state, x, y) -> state``.

    ``state`` holds ``step``, ``params``, ``batch_stats``, ``opt_state`` and
    ``sums`` (running training sums for the epoch: loss, correct, count, rates).
    The loss minimised is the batch mean of ``task.loss``.
    """

    def train_step(state, x, y):
        key = jax.random.fold_in(train_key, state["step"])
        noise_key, augment_key, dropout_key = jax.random.split(key, 3)

        def objective(params):
            inputs = task.preprocess(x, augment_key, True)
            variables = {"params": params, **state["batch_stats"]}
            outputs, updates = task.model.apply(
                variables, inputs, train=True, rngs={"noise": noise_key, "dropout": dropout_key},
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
    """``(variables, x, y, weight, key) -> {loss, count[, correct]}`` sums; padded rows have weight 0.

    ``key`` is split into ``trials`` noise keys (the readouts of the trials
    are averaged) and, last, the key of the evaluation preprocessing.
    """

    def eval_step(variables, x, y, weight, key):
        keys = jax.random.split(key, trials + 1)
        trial_keys, preprocess_key = keys[:trials], keys[trials]
        inputs = task.preprocess(x, preprocess_key, False)

        def one_trial(trial_key):
            return task.model.apply(variables, inputs, train=False, deterministic=deterministic,
                                    rngs={"noise": trial_key})

        outputs = jnp.mean(jax.lax.map(one_trial, trial_keys), axis=0)
        result = {"loss": jnp.sum(task.loss(outputs, y) * weight), "count": jnp.sum(weight)}
        if task.classification:
            result["correct"] = jnp.sum(losses.correct(outputs, y) * weight)
        return result

    return eval_step
