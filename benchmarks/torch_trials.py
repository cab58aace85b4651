"""The trial loop of :mod:`benchmarks.trials` in PyTorch, with the authors' noisy neuron.

The network mirrors the JAX model of the configuration (random weights, NCHW
layout): the first synaptic layer once on the static input, later layers on
``T*B`` samples. The neuron is the authors' form: each step the membrane
``u_t = tau * u_{t-1} * (1 - o_{t-1}) + I_t + e_t`` takes Gaussian noise, and
fires when ``u_t - v_th + e'_t > 0`` with a second draw, both
``torch.randn * sigma``. Trials run one after another under
``torch.inference_mode``, the spikes of the last spiking layer copied to numpy
as uint8, as the JAX loop does.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["build_loop"]


def _neuron(currents, tau: float, v_th: float, sigma: float):
    """Spikes ``(T, B, ...)`` of the authors' noisy LIF on currents ``(T, B, ...)``."""
    import torch

    membrane = torch.zeros_like(currents[0])
    spikes, out = torch.zeros_like(currents[0]), []
    for current in currents:
        membrane = tau * membrane * (1 - spikes) + current + sigma * torch.randn_like(current)
        spikes = (membrane - v_th + sigma * torch.randn_like(current) > 0).to(current.dtype)
        out.append(spikes)
    return torch.stack(out)


def build_loop(model, x, n_trials: int, seed: int = 0) -> Callable[[], np.ndarray]:
    """``run()``: ``n_trials`` trials of a PyTorch copy of ``model``'s architecture on ``x``'s shape; trial 0's spikes."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    params = model.neuron
    tau, v_th, sigma = params.tau, params.v_th, params.noise.scale
    timesteps = model.timesteps
    if x.ndim == 2:  # the MLP
        widths = (x.shape[1], *model.hidden)
        synapses = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        readout = nn.Linear(widths[-1], model.outputs)
        inputs = torch.from_numpy(np.array(x))

        def trial():
            h = synapses[0](inputs).unsqueeze(0).expand((timesteps,) + (-1,) * inputs.dim())
            s = _neuron(h, tau, v_th, sigma)
            for synapse in synapses[1:]:
                s = _neuron(synapse(s), tau, v_th, sigma)
            readout(s)
            return s
    else:  # CIFARNet, the authors' form: five spiking convs with bias, pools after the 2nd and 3rd, a linear head
        def scaled(c):
            return max(1, int(round(c * model.width)))

        convs = ((128, False), (256, True), (512, True), (1024, False), (512, False))
        channels = (3, *(scaled(c) for c, _ in convs))
        layers = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(channels[:-1], channels[1:]))
        side = x.shape[1] // 4
        head = nn.Sequential(nn.Linear(channels[-1] * side * side, scaled(1024)), nn.Linear(scaled(1024), scaled(512)),
                             nn.Linear(scaled(512), model.outputs))
        inputs = torch.from_numpy(np.array(x)).permute(0, 3, 1, 2).contiguous()
        batch = inputs.shape[0]

        def trial():
            s = None
            for i, (conv, (_, pool)) in enumerate(zip(layers, convs)):
                if i == 0:
                    h = conv(inputs).unsqueeze(0).expand((timesteps,) + (-1,) * inputs.dim())
                else:
                    h = conv(s.flatten(0, 1))
                    h = h.reshape((timesteps, batch) + h.shape[1:])
                s = _neuron(h, tau, v_th, sigma)
                if pool:
                    p = nn.functional.avg_pool2d(s.flatten(0, 1), 2)
                    s = p.reshape((timesteps, batch) + p.shape[1:])
            head(s.flatten(2))
            return s

    def run():
        kept = None  # every trial's spikes, as the JAX candidates keep them
        with torch.inference_mode():
            for i in range(n_trials):
                spikes = trial().to(torch.uint8).numpy()
                if kept is None:
                    kept = np.empty((n_trials,) + spikes.shape, spikes.dtype)
                kept[i] = spikes
        return kept[0]

    return run
