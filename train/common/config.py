"""Typed configs: the settings every training command shares.

An experiment subclasses :class:`TrainConfig` with its own fields and
defaults, and extends :meth:`TrainConfig.validate` (calling ``super()``
first); :mod:`train.common.cli` turns the fields into flags.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

import jax.numpy as jnp

from nsnn_jax import neuron as neuron_lib
from nsnn_jax import noise as noise_lib
from nsnn_jax import sampling
from nsnn_jax import surrogate as surrogate_lib

NEURONS = ("noisy", "lif")
DTYPES = ("float32", "bfloat16")
SCHEDULE_UNITS = ("step", "epoch")


def option(default, help: str, choices=None):  # noqa: A002 - mirrors argparse
    """A config field with its flag's help text (and choices)."""
    metadata = {"help": help}
    if choices is not None:
        metadata["choices"] = choices
    return dataclasses.field(default=default, metadata=metadata)


def recorded(help: str, factory=dict):  # noqa: A002 - mirrors argparse
    """A field the command fills in and records in ``config.json``, not a flag (default ``factory()``)."""
    return dataclasses.field(default_factory=factory, metadata={"help": help, "flag": False})


def flag(name: str) -> str:
    """The command-line flag of a config field: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


@dataclasses.dataclass
class TrainConfig:
    """Settings shared by every training command."""

    workdir: Optional[str] = option(None, "run folder (default: runs/NAME-<timestamp>)")
    resume: bool = option(False, "continue from the last checkpoint in --workdir")
    seed: int = option(0, "seed for initialisation, data order and noise")
    epochs: int = option(1, "training epochs")
    batch_size: int = option(128, "global batch size (split over devices)")
    lr: float = option(1e-3, "peak Adam learning rate (cosine decay to 0 over the run)")
    schedule_unit: str = option("step", "cosine decay per step, or per epoch (lr fixed within an epoch)", SCHEDULE_UNITS)
    weight_decay: float = option(0.0, "decoupled weight decay (AdamW) when > 0")
    timesteps: int = option(8, "simulation steps T")
    neuron: str = option("noisy", "noisy: NSNN trained with NDL; lif: deterministic LIF with a surrogate", NEURONS)
    noise: str = option("gaussian", "membrane-noise family", tuple(noise_lib.NOISE_FAMILIES))
    sigma: float = option(0.3, "noise scale (Gaussian sigma; the scale of the other families)")
    tau: float = option(0.5, "membrane decay factor")
    v_th: float = option(1.0, "firing threshold")
    detach_reset: bool = option(False, "stop gradients through the reset")
    firing: str = option("membrane", "membrane: eq. (2); reference: the authors' PyTorch code", neuron_lib.FIRING_MODES)
    sampler: str = option("hash16", "noise sampler: hash16 (fast, 16-bit quantised law), hash16_quantile (the same law without the table gather) or threefry (exact)", sampling.SAMPLERS)
    surrogate: str = option("match", "surrogate of --neuron lif: 'match' (the twin of --noise at --sigma) or a form", ("match",) + surrogate_lib.SURROGATES)
    surrogate_alpha: float = option(1.0, "sharpness of an explicit --surrogate")
    eval_trials: int = option(1, "stochastic test passes averaged (logits) per image")
    dtype: str = option("float32", "computation dtype; parameters stay float32", DTYPES)
    log_every: int = option(0, "also print a metrics line every N steps (0: per epoch only)")
    tensorboard: bool = option(False, "also write the metrics (per epoch, and per step with --log-every) as "
                                      "TensorBoard event files in DIR/tensorboard (needs tensorboardX)")
    compile_cache: bool = option(True, "keep compiled steps on disk ($NSNN_JAX_COMPILE_CACHE or ~/.cache/nsnn_jax/xla) "
                                       "so a rerun or --resume starts without recompiling")

    def validate(self) -> None:
        """Raises ``ValueError`` naming the first invalid setting.

        Subclasses check their own fields after ``super().validate()``.
        """
        checks = [
            (self.epochs >= 1, "epochs", "an integer >= 1"),
            (self.batch_size >= 1, "batch_size", "an integer >= 1"),
            (self.lr > 0 and math.isfinite(self.lr), "lr", "a finite number > 0"),
            (self.weight_decay >= 0, "weight_decay", ">= 0"),
            (self.timesteps >= 1, "timesteps", "an integer >= 1 (T)"),
            (self.sigma > 0 and math.isfinite(self.sigma), "sigma", "a finite number > 0"),
            (0.0 <= self.tau <= 1.0, "tau", "a decay factor in [0, 1]"),
            (self.eval_trials >= 1, "eval_trials", "an integer >= 1"),
            (self.surrogate_alpha > 0, "surrogate_alpha", "> 0"),
        ]
        for ok, name, expected in checks:
            if not ok:
                raise ValueError(f"{flag(name)}={getattr(self, name)!r} is invalid: expected {expected}.")
        self.check_choice("neuron", NEURONS)
        self.check_choice("schedule_unit", SCHEDULE_UNITS)
        self.lif_params()

    def check_choice(self, name: str, choices: Sequence[str]) -> None:
        """Raises ``ValueError`` unless the field ``name`` holds one of ``choices``."""
        if getattr(self, name) not in choices:
            raise ValueError(f"{flag(name)}={getattr(self, name)!r} is invalid: expected one of {tuple(choices)}.")

    def lif_params(self) -> neuron_lib.LIFParams:
        """The neuron settings these flags describe."""
        family = noise_lib.get_noise(self.noise, self.sigma)
        if self.surrogate == "match":
            surrogate = surrogate_lib.matching_surrogate(family)
        else:
            surrogate = surrogate_lib.get_surrogate(self.surrogate, self.surrogate_alpha)
        return neuron_lib.LIFParams(
            tau=self.tau,
            v_th=self.v_th,
            noise=family if self.neuron == "noisy" else None,
            surrogate=surrogate,
            detach_reset=self.detach_reset,
            firing=self.firing,
            sampler=self.sampler,
        ).validate()

    def compute_dtype(self):
        """The computation dtype models take (``None``: float32)."""
        return jnp.bfloat16 if self.dtype == "bfloat16" else None
