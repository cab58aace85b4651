"""Repeated-trial sampling; the implementation lives in :mod:`nsnn_jax.trials`."""

from nsnn_jax.trials import Trials, sample_trials, spiking_layers

__all__ = ["Trials", "sample_trials", "spiking_layers"]
