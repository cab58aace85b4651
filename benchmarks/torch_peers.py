"""The peer-benchmark workloads in PyTorch: a ReLU floor, SpikingJelly, snnTorch and norse.

Written for :mod:`benchmarks.peers`, computing what :mod:`benchmarks.workloads`
describes: layers in PyTorch's own NCHW layout, the first synaptic layer once on
``B`` samples, later layers on ``T*B`` samples, and each library's LIF neuron
(decay 0.5, threshold 1, hard reset to 0, each library's default surrogate)
over T in the form the library documents as its fastest on CPU:

* ``spikingjelly``: ``LIFNode(step_mode="m")`` on the whole ``(T, B, ...)``
  tensor (``tau=2, decay_input=False`` is ``u_t = u_{t-1}/2 + I_t``);
* ``snntorch``: ``snn.Leaky(beta=0.5, reset_mechanism="zero")`` stepped over T;
* ``norse``: ``LIFBoxCell`` (no synaptic current) stepped over T with
  ``dt * tau_mem_inv = 0.5`` and threshold 1/2 (its membrane is half this one's).

Each peer's neuron gives this library's deterministic spikes on the same currents
(``tests/test_benchmarks.py``, when the peers are installed).

PyTorch and the peers are an optional extra; :func:`available` says which are
installed and why the others are not.
"""

from __future__ import annotations

import importlib
from typing import Callable, Optional

from benchmarks.workloads import Workload

__all__ = ["TORCH_CANDIDATES", "available", "build_torch"]

TORCH_CANDIDATES = ("torch_floor", "spikingjelly", "snntorch", "norse")
_MODULES = {"torch_floor": "torch", "spikingjelly": "spikingjelly.activation_based.neuron",
            "snntorch": "snntorch", "norse": "norse.torch"}


def available(name: str) -> Optional[str]:
    """``None`` if candidate ``name`` can run here, else why not."""
    try:
        importlib.import_module("torch")
    except ImportError:
        return "PyTorch is not installed (pip install -e .[bench])"
    try:
        importlib.import_module(_MODULES[name])
    except ImportError as error:
        return f"{name} is not installed ({error}); see the README's benchmark section"
    return None


def make_neuron(name: str) -> Callable:
    """A ``(T, B, ...) -> (T, B, ...)`` spiking module factory for peer ``name``."""
    import torch

    if name == "spikingjelly":
        from spikingjelly.activation_based import neuron

        return lambda: neuron.LIFNode(tau=2.0, decay_input=False, v_threshold=1.0, v_reset=0.0, step_mode="m")

    class Stepped(torch.nn.Module):
        """Steps a single-step neuron over the leading time axis."""

        def __init__(self, cell, call):
            super().__init__()
            self.cell, self.call = cell, call

        def forward(self, currents):
            state, spikes = None, []
            for current in currents:
                spike, state = self.call(self.cell, current, state)
                spikes.append(spike)
            return torch.stack(spikes)

    if name == "snntorch":
        import snntorch

        def leaky_step(cell, current, mem):
            return cell(current, torch.zeros_like(current) if mem is None else mem)

        return lambda: Stepped(snntorch.Leaky(beta=0.5, threshold=1.0, reset_mechanism="zero"), leaky_step)
    if name == "norse":
        import norse.torch as norse

        # LIFBox integrates v += dt * tau_mem_inv * (i - v), i.e. v_t = v_{t-1}/2 + I_t/2 here:
        # half this library's membrane, so threshold 1/2 gives the same spikes.
        params = norse.LIFBoxParameters(tau_mem_inv=torch.tensor(500.0), v_th=torch.tensor(0.5),
                                        v_reset=torch.tensor(0.0))
        return lambda: Stepped(norse.LIFBoxCell(params, dt=1e-3), lambda cell, current, state: cell(current, state))
    raise ValueError(f"Unknown spiking peer {name!r}.")


def _model(name: str, workload: Workload):
    from torch import nn

    timesteps = workload.timesteps
    floor = name == "torch_floor"
    neuron_factory = nn.ReLU if floor else make_neuron(name)

    class TimeDistributed(nn.Module):
        """Applies ``layer`` to ``(T, B, ...)`` with T merged into the batch."""

        def __init__(self, layer):
            super().__init__()
            self.layer = layer

        def forward(self, x):
            y = self.layer(x.flatten(0, 1))
            return y.reshape(x.shape[:2] + y.shape[1:])

    if workload.kind == "mlp":
        widths = (workload.inputs, *workload.widths)
        synapses = [nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:])]
        pools = [False] * len(synapses)
        readout_in = widths[-1]
    else:
        channels = (3, *workload.widths)
        synapses = [nn.Sequential(nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b))
                    for a, b in zip(channels[:-1], channels[1:])]
        pools = [i > 0 for i in range(len(synapses))]
        readout_in = channels[-1] * (workload.image_size // 2 ** (len(synapses) - 1)) ** 2

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.synapses = nn.ModuleList(synapses)
            self.neurons = nn.ModuleList(neuron_factory() for _ in synapses)
            self.readout = nn.Linear(readout_in, workload.classes)

        def forward(self, x):
            if floor:  # x: the input repeated over T, (T*B, ...)
                for synapse, neuron, pool in zip(self.synapses, self.neurons, pools):
                    x = neuron(synapse(x))
                    x = nn.functional.avg_pool2d(x, 2) if pool else x
                out = self.readout(x.flatten(1))
                return out.reshape((timesteps, -1) + out.shape[1:])
            for i, (synapse, neuron, pool) in enumerate(zip(self.synapses, self.neurons, pools)):
                if i == 0:  # static input: the currents are the same at every step
                    currents = synapse(x).unsqueeze(0).expand((timesteps,) + (-1,) * x.dim())
                else:
                    currents = TimeDistributed(synapse)(x)
                x = neuron(currents)
                x = TimeDistributed(lambda s: nn.functional.avg_pool2d(s, 2))(x) if pool else x
            return TimeDistributed(self.readout)(x.flatten(2))

    return Net()


def build_torch(name: str, workload: Workload, seed: int = 0):
    """A training step of candidate ``name``: ``(run, None)`` (nothing is compiled ahead).

    ``run()`` performs one step and returns the loss as a Python float.
    """
    import torch

    torch.manual_seed(seed)
    model = _model(name, workload)
    shape = workload.input_shape()
    shape = shape if workload.kind == "mlp" else (3, shape[0], shape[1])
    x = torch.randn((workload.batch, *shape))
    if name == "torch_floor":
        x = x.unsqueeze(0).expand((workload.timesteps,) + x.shape).reshape((-1,) + x.shape[1:]).contiguous()
    y = torch.randint(0, workload.classes, (workload.batch,))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    reset = None
    if name == "spikingjelly":
        from spikingjelly.activation_based import functional

        reset = functional.reset_net  # its neurons keep the membrane between calls

    def run():
        if reset is not None:
            reset(model)
        optimiser.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x).mean(0), y)
        loss.backward()
        optimiser.step()
        return loss.item()

    return run, None
