"""NIR (Neuromorphic Intermediate Representation) export and import.

NIR describes a network in continuous time. Its LIF node is::

    tau * dv/dt = (v_leak - v) + r * I,   spike when v > v_threshold,   then v = v_reset

One forward-Euler step of length ``dt`` gives
``v_t = (1 - dt / tau) * v_{t-1} + (dt / tau) * r * I_t``. The discrete neuron
of this package is ``u_t = beta * u_{t-1} * (1 - o_{t-1}) + I_t`` (``beta`` =
``LIFParams.tau``, 0.5 by default), spike when ``u_t > v_th``, reset to 0. The
two agree for every input exactly when::

    tau = dt / (1 - beta),   r = 1 / (1 - beta),   v_leak = 0,   v_reset = 0,   v_threshold = v_th

(``dt / tau = 1 - beta`` and ``r * dt / tau = 1``); ``beta = 1`` (no leak) is
NIR's IF node with ``r = 1 / dt``. This is the mapping snnTorch's exporter uses
for ``snn.Leaky`` and the inverse of its importer, which takes ``dt = 1e-4``:
export with ``dt=1e-4`` for a graph snnTorch reads back as the same network.

On import a node whose input scale ``r * dt / tau`` is not 1 keeps its
dynamics with the threshold divided by that scale (the same spikes);
``dt`` comes from the argument, else the graph's ``metadata['dt']``, else
from each node as the step at which its input scale is 1 (``dt = tau / r``).

Layout: NIR speaks PyTorch's channel-first shapes ``(C, H, W)`` and weights
(dense ``(out, in)``, conv ``(out, in, kh, kw)``); this package is NHWC. Conv
kernels are transposed, and the dense layer after a flatten has its input
columns permuted from ``(H, W, C)`` to ``(C, H, W)`` order. A static input (an
image repeated over T) is the graph's input at every step.

Each spiking node's ``metadata`` records the neuron the network was trained
with: ``noise`` (family name or ``'none'``), ``noise_scale`` (and ``sigma``
for a Gaussian), ``firing``, ``sampler``, ``decay`` (beta), ``dt`` and
``reset = 'zero'``. The graph itself describes the deterministic limit
(``deterministic=True``), which is what other libraries run.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Optional, Sequence, Union

import jax.numpy as jnp
import numpy as np

from nsnn_jax import neuron as neuron_lib
from nsnn_jax import noise as noise_lib
from nsnn_jax.interop import fold
from nsnn_jax.models import sequential as seq

__all__ = ["export", "import_graph", "write", "read", "IMPORTABLE_NODES"]

IMPORTABLE_NODES = ("Input", "Output", "Affine", "Linear", "Conv2d", "AvgPool2d", "SumPool2d", "Flatten", "LIF",
                    "IF", "CubaLIF (with tau_syn = dt)")
_MISSING = ("nsnn_jax.interop.nir needs the 'nir' package; install it with the optional extra: "
            "pip install 'nsnn-jax[interop]' (or pip install nir).")


def _nir():
    try:
        import nir
    except ImportError as error:
        raise ImportError(_MISSING) from error
    return nir


def _check_dt(dt: Any, what: str = "dt") -> float:
    if isinstance(dt, bool) or not isinstance(dt, (int, float, np.floating, np.integer)) \
            or not math.isfinite(float(dt)) or float(dt) <= 0:
        raise ValueError(f"{what} must be a finite time step > 0, got {dt!r}.")
    return float(dt)


# ------------------------------------------------------------------ export ---


def _nir_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """NHWC per-sample shape -> NIR's channel-first shape."""
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else tuple(shape)


def _symmetric(padding, what: str) -> tuple[int, int]:
    (top, bottom), (left, right) = padding
    if top != bottom or left != right:
        raise ValueError(f"{what} has asymmetric padding {padding}; NIR pads both sides alike.")
    return int(top), int(left)


def _window_out(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def _neuron_metadata(params: neuron_lib.LIFParams, beta: float, dt: float) -> dict[str, Any]:
    family = params.noise
    meta: dict[str, Any] = {"noise": "none" if family is None else family.name, "firing": params.firing,
                            "sampler": params.sampler, "decay": float(beta), "dt": float(dt), "reset": "zero"}
    if family is not None:
        meta["noise_scale"] = float(family.scale)
        if isinstance(family, noise_lib.Gaussian):
            meta["sigma"] = float(family.scale)
    return meta


def _first_width(model: seq.SpikingSequential, params: Mapping) -> Optional[tuple[int, ...]]:
    """The input shape a dense-first network implies: ``(D,)``; ``None`` otherwise."""
    for i, layer in enumerate(model.layers):
        if isinstance(layer, seq.Flatten):
            continue
        if isinstance(layer, seq.Dense):
            return (int(np.shape(params[f"layer{i}"]["kernel"])[0]),)
        return None
    return None


def export(model, variables: Mapping[str, Any], *, dt: float = 1.0,
           input_shape: Optional[Sequence[int]] = None):
    """A trained network as a ``nir.NIRGraph`` (its deterministic limit).

    Args:
      model: a :class:`~nsnn_jax.models.SpikingMLP`, :class:`~nsnn_jax.models.CIFARNet`,
        :class:`~nsnn_jax.models.VGGSNN` or :class:`~nsnn_jax.models.SpikingSequential`;
        batch norm is folded into the layer before it (inference mode).
      variables: its variables (``params``, ``batch_stats``).
      dt: the graph's time step; each LIF node gets ``tau = dt / (1 - beta)``
        and ``r = 1 / (1 - beta)`` (module docstring). snnTorch reads graphs at
        ``dt = 1e-4``.
      input_shape: one sample's shape as the model takes it, ``(H, W, C)`` for a
        conv net (required there); a network starting with a dense layer
        defaults to ``(D,)``. An MLP's leading flatten of a sample without
        channels (``(H, W)``) is folded into the graph's input ``(H * W,)``.

    Returns:
      A ``nir.NIRGraph``: nodes ``input``, ``layer0``, ..., ``output`` in a
      chain; ``graph.metadata`` holds ``dt``, ``timesteps``, ``static_input``
      and the model's class name.

    Raises:
      ImportError: ``nir`` is not installed.
      ValueError: an unsupported model or layer (named), a missing or wrong
        ``input_shape``, or an invalid ``dt``.
    """
    nir = _nir()
    dt = _check_dt(dt)
    sequential, folded = fold.to_sequential(model, variables)
    params = {k: {n: np.asarray(a, np.float32) for n, a in v.items()} for k, v in folded["params"].items()}
    if input_shape is None:
        shape = _first_width(sequential, params)
        if shape is None:
            raise ValueError(f"export of {type(model).__name__} needs input_shape, one sample's (H, W, C).")
    else:
        shape = tuple(int(s) for s in input_shape)
        if not shape or min(shape) < 1:
            raise ValueError(f"input_shape must be one sample's shape, e.g. (H, W, C), got {input_shape!r}.")

    if sequential.layers and isinstance(sequential.layers[0], seq.Flatten) and len(shape) != 3:
        # Without a channel axis the flat order is layout-free: the graph takes flat samples.
        shape = (int(np.prod(shape)),)
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(_nir_shape(shape))})}
    names = ["input"]
    flattened_from: Optional[tuple[int, int, int]] = None  # (H, W, C) of a pending channel-first flatten
    for i, layer in enumerate(sequential.layers):
        name = f"layer{i}"
        p = params.get(name, {})
        if isinstance(layer, seq.Flatten):
            if len(shape) == 1:
                continue  # nothing to flatten
            node = nir.Flatten(input_type={"input": np.array(_nir_shape(shape))}, start_dim=0, end_dim=-1)
            if len(shape) == 3:
                flattened_from = shape
            shape = (int(np.prod(shape)),)
        elif isinstance(layer, seq.Dense):
            kernel = p["kernel"]
            if len(shape) != 1 or kernel.shape[0] != shape[0]:
                raise ValueError(f"{name}: a dense layer with {kernel.shape[0]} inputs gets activations of shape "
                                 f"{shape}; check input_shape.")
            if flattened_from is not None:
                h, w, c = flattened_from
                hwc_index = np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).ravel()
                kernel = kernel[hwc_index]
                flattened_from = None
            weight = np.ascontiguousarray(kernel.T)
            node = nir.Affine(weight=weight, bias=p["bias"]) if layer.use_bias else nir.Linear(weight=weight)
            shape = (kernel.shape[1],)
        elif isinstance(layer, seq.Conv):
            kernel = p["kernel"]
            if len(shape) != 3 or kernel.shape[2] != shape[2]:
                raise ValueError(f"{name}: a conv layer with {kernel.shape[2]} input channels gets activations of "
                                 f"shape {shape}; check input_shape (H, W, C).")
            pad = _symmetric(layer.padding, name)
            bias = p["bias"] if layer.use_bias else np.zeros(kernel.shape[3], np.float32)
            node = nir.Conv2d(input_shape=(shape[0], shape[1]), weight=np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)),
                              stride=tuple(layer.strides), padding=pad, dilation=(1, 1), groups=1, bias=bias)
            shape = (_window_out(shape[0], kernel.shape[0], layer.strides[0], pad[0]),
                     _window_out(shape[1], kernel.shape[1], layer.strides[1], pad[1]), kernel.shape[3])
        elif isinstance(layer, (seq.AvgPool, seq.SumPool)):
            if len(shape) != 3:
                raise ValueError(f"{name}: pooling needs (H, W, C) activations, got shape {shape}.")
            pad = _symmetric(layer.padding, name)
            kind = nir.AvgPool2d if isinstance(layer, seq.AvgPool) else nir.SumPool2d
            node = kind(kernel_size=np.array(layer.window), stride=np.array(layer.strides), padding=np.array(pad))
            shape = (_window_out(shape[0], layer.window[0], layer.strides[0], pad[0]),
                     _window_out(shape[1], layer.window[1], layer.strides[1], pad[1]), shape[2])
        elif isinstance(layer, seq.Spiking):
            beta = float(layer.tau)
            if not 0.0 <= beta <= 1.0:
                raise ValueError(f"{name}: decay {beta!r} is not in [0, 1].")
            full = lambda value: np.full(_nir_shape(shape), value, np.float64)  # noqa: E731
            meta = _neuron_metadata(sequential.neuron, beta, dt)
            if beta == 1.0:
                node = nir.IF(r=full(1.0 / dt), v_threshold=full(layer.v_th), v_reset=full(0.0), metadata=meta)
            else:
                node = nir.LIF(tau=full(dt / (1.0 - beta)), r=full(1.0 / (1.0 - beta)), v_leak=full(0.0),
                               v_threshold=full(layer.v_th), v_reset=full(0.0), metadata=meta)
        else:
            raise ValueError(f"{name}: {type(layer).__name__} has no NIR node.")
        nodes[name] = node
        names.append(name)
    if flattened_from is not None:
        raise ValueError("A flatten of (H, W, C) activations must be followed by a dense layer to export.")
    nodes["output"] = nir.Output(output_type={"output": np.array(_nir_shape(shape))})
    names.append("output")
    metadata = {"source": "nsnn_jax", "model": type(model).__name__, "dt": dt,
                "timesteps": int(sequential.timesteps), "static_input": not sequential.sequence_input}
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])), metadata=metadata)


# ------------------------------------------------------------------ import ---


def _chain(graph) -> list[tuple[str, Any]]:
    """The graph's nodes from its Input to its Output, checking that it is a chain."""
    nir = _nir()
    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    if len(inputs) != 1:
        raise ValueError(f"import_graph needs a graph with one Input node, found {inputs}.")
    successors: dict[str, list[str]] = {k: [] for k in graph.nodes}
    predecessors: dict[str, list[str]] = {k: [] for k in graph.nodes}
    for source, target in graph.edges:
        for end in (source, target):
            if end not in graph.nodes:
                raise ValueError(f"graph edge ({source!r}, {target!r}) names an unknown node {end!r}.")
        successors[source].append(target)
        predecessors[target].append(source)
    for name in graph.nodes:
        if len(successors[name]) > 1 or len(predecessors[name]) > 1:
            raise ValueError(f"node {name!r} has inputs {predecessors[name]} and outputs {successors[name]}; "
                             f"import_graph takes feed-forward chains (no branches, sums or recurrence).")
    order, name = [], inputs[0]
    while True:
        order.append((name, graph.nodes[name]))
        if isinstance(graph.nodes[name], nir.Output):
            break
        if not successors[name]:
            raise ValueError(f"the chain from {inputs[0]!r} ends at {name!r} without reaching an Output node.")
        name = successors[name][0]
        if any(name == seen for seen, _ in order):
            raise ValueError(f"node {name!r} closes a cycle; recurrent graphs are not imported.")
    if len(order) != len(graph.nodes):
        stray = sorted(set(graph.nodes) - {n for n, _ in order})
        raise ValueError(f"nodes {stray} are not on the chain from the Input to the Output.")
    return order


def _uniform(name: str, field: str, value) -> float:
    values = np.unique(np.asarray(value, np.float64))
    if values.size != 1:
        raise ValueError(f"node {name!r}: {field} differs between neurons ({values[:4]}...); nsnn_jax layers "
                         f"share one value per layer.")
    return float(values[0])


def _pair(value, name: str, field: str) -> tuple[int, int]:
    value = np.atleast_1d(np.asarray(value)).astype(np.int64).ravel()
    if value.size == 1:
        return int(value[0]), int(value[0])
    if value.size != 2:
        raise ValueError(f"node {name!r}: {field} must be an int or a pair, got {value.tolist()}.")
    return int(value[0]), int(value[1])


def _text(value) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _conv_padding(padding, kernel: tuple[int, int], strides: tuple[int, int], name: str):
    padding = _text(padding)
    if isinstance(padding, np.ndarray) and padding.dtype.kind in "SUO":
        padding = _text(padding.item())
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding == "same" and strides == (1, 1):
            return tuple((int((k - 1) // 2), int(k - 1 - (k - 1) // 2)) for k in kernel)
        raise ValueError(f"node {name!r}: padding {padding!r} with stride {strides} is not supported.")
    ph, pw = _pair(padding, name, "padding")
    return ((ph, ph), (pw, pw))


def _spiking(name: str, node, dt: Optional[float]) -> tuple[seq.Spiking, dict]:
    """``Spiking(beta, v_th)`` of a LIF, IF or instantaneous-synapse CubaLIF node, and its metadata."""
    nir = _nir()
    reset = _uniform(name, "v_reset", node.v_reset)
    if reset != 0.0:
        raise ValueError(f"node {name!r}: v_reset = {reset}; nsnn_jax neurons reset to 0.")
    threshold = _uniform(name, "v_threshold", node.v_threshold)
    if isinstance(node, nir.IF):
        r = _uniform(name, "r", node.r)
        step = dt if dt is not None else 1.0 / r
        beta, scale = 1.0, r * step
    else:
        if isinstance(node, nir.CubaLIF):
            tau_syn = _uniform(name, "tau_syn", node.tau_syn)
            step = dt if dt is not None else tau_syn
            if not math.isclose(step, tau_syn, rel_tol=1e-9):
                raise ValueError(f"node {name!r}: a CubaLIF with tau_syn = {tau_syn} and dt = {step} filters its "
                                 f"input (synaptic decay 1 - dt/tau_syn = {1 - step / tau_syn:.6g} != 0), which an "
                                 f"nsnn_jax neuron cannot represent exactly.")
            tau, w_in = _uniform(name, "tau_mem", node.tau_mem), _uniform(name, "w_in", node.w_in)
        else:
            tau, w_in = _uniform(name, "tau", node.tau), 1.0
        r = _uniform(name, "r", node.r)
        leak = _uniform(name, "v_leak", node.v_leak)
        if leak != 0.0:
            raise ValueError(f"node {name!r}: v_leak = {leak}; nsnn_jax neurons leak towards 0.")
        if isinstance(node, nir.LIF):
            step = dt if dt is not None else tau / r
        beta, scale = 1.0 - step / tau, r * step / tau * w_in
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"node {name!r}: decay 1 - dt/tau = {beta} is outside [0, 1] (dt = {step}); pass a dt "
                         f"no longer than the node's tau.")
    if scale <= 0.0:
        raise ValueError(f"node {name!r}: input scale {scale} must be > 0.")
    return seq.Spiking(tau=beta, v_th=threshold / scale), dict(getattr(node, "metadata", {}) or {})


def _neuron_from(metadata: Mapping[str, Any]) -> neuron_lib.LIFParams:
    """The neuron an nsnn_jax export recorded; deterministic for anything else."""
    name = _text(metadata.get("noise", "none"))
    if name == "none" or "noise_scale" not in metadata:
        return neuron_lib.LIFParams(noise=None)
    family = noise_lib.get_noise(str(name), float(metadata["noise_scale"]))
    return neuron_lib.LIFParams(noise=family, firing=str(_text(metadata.get("firing", "membrane"))),
                                sampler=str(_text(metadata.get("sampler", "hash16"))))


def import_graph(graph, *, dt: Optional[float] = None, neuron: Optional[neuron_lib.LIFParams] = None,
                 timesteps: Optional[int] = None, sequence_input: Optional[bool] = None):
    """An nsnn_jax model from a NIR graph (a feed-forward chain of LIF layers).

    Args:
      graph: a ``nir.NIRGraph``, or the path of a ``.nir`` file.
      dt: the step to discretise at (module docstring); default the graph's
        ``metadata['dt']``, else each node's ``tau / r``.
      neuron: noise law, surrogate, firing form and sampler for every spiking
        layer (their decay and threshold come from the graph), e.g.
        ``LIFParams(noise=Gaussian(0.3))`` to train the network as an NSNN.
        Default: the neuron recorded by an nsnn_jax export, else the
        deterministic LIF (``noise=None``).
      timesteps: T for static inputs (default ``metadata['timesteps']``, else 8).
      sequence_input: inputs ``(T, B, ...)`` (default: ``True`` unless the graph
        records a static input).

    Returns:
      ``(SpikingSequential, {'params': ...})``; inputs are NHWC (a graph input
      ``(C, H, W)`` becomes ``(H, W, C)``).

    Raises:
      ImportError: ``nir`` is not installed.
      ValueError: a node type nsnn_jax cannot run exactly (named, with the
        supported ones), per-neuron parameters that differ within a layer, or
        a graph that is not a chain.
    """
    nir = _nir()
    if isinstance(graph, (str, os.PathLike)):
        graph = read(graph)
    if not isinstance(graph, nir.NIRGraph):
        raise ValueError(f"import_graph takes a nir.NIRGraph or a .nir path, got {type(graph).__name__}.")
    metadata = dict(graph.metadata or {})
    if dt is None and "dt" in metadata:
        dt = metadata["dt"]
    if dt is not None:
        dt = _check_dt(dt)

    order = _chain(graph)
    shape = tuple(int(s) for s in np.asarray(order[0][1].input_type["input"]).ravel())
    if len(shape) == 3:
        shape = (shape[1], shape[2], shape[0])  # (C, H, W) -> (H, W, C)
    layers: list = []
    params: dict = {}
    recorded: dict = {}
    flattened_from: Optional[tuple[int, int, int]] = None
    for name, node in order[1:-1]:
        index = f"layer{len(layers)}"
        if isinstance(node, (nir.Affine, nir.Linear)):
            weight = np.asarray(node.weight, np.float32)
            if weight.ndim != 2 or len(shape) != 1 or weight.shape[1] != shape[0]:
                raise ValueError(f"node {name!r}: weight {weight.shape} does not take activations of shape {shape}.")
            kernel = weight.T
            if flattened_from is not None:
                h, w, c = flattened_from
                hwc_index = np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).ravel()
                kernel = np.empty_like(kernel)
                kernel[hwc_index] = weight.T
                flattened_from = None
            has_bias = isinstance(node, nir.Affine)
            params[index] = {"kernel": np.ascontiguousarray(kernel)}
            if has_bias:
                params[index]["bias"] = np.asarray(node.bias, np.float32).reshape(-1)
            layers.append(seq.Dense(int(weight.shape[0]), use_bias=has_bias))
            shape = (int(weight.shape[0]),)
        elif isinstance(node, nir.Conv2d):
            weight = np.asarray(node.weight, np.float32)
            if weight.ndim != 4 or len(shape) != 3 or weight.shape[1] != shape[2]:
                raise ValueError(f"node {name!r}: conv weight {weight.shape} does not take activations of shape "
                                 f"{shape} (H, W, C).")
            if int(np.asarray(node.groups)) != 1 or _pair(node.dilation, name, "dilation") != (1, 1):
                raise ValueError(f"node {name!r}: grouped or dilated convolutions are not supported.")
            kernel_hw = (int(weight.shape[2]), int(weight.shape[3]))
            strides = _pair(node.stride, name, "stride")
            padding = _conv_padding(node.padding, kernel_hw, strides, name)
            params[index] = {"kernel": np.ascontiguousarray(weight.transpose(2, 3, 1, 0)),
                             "bias": np.asarray(node.bias, np.float32).reshape(-1)}
            layers.append(seq.Conv(int(weight.shape[0]), kernel_hw, strides, padding))
            shape = tuple((shape[d] + sum(padding[d]) - kernel_hw[d]) // strides[d] + 1 for d in range(2)) \
                + (int(weight.shape[0]),)
        elif isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
            if len(shape) != 3:
                raise ValueError(f"node {name!r}: pooling needs (C, H, W) activations, got {shape}.")
            window = _pair(node.kernel_size, name, "kernel_size")
            strides = _pair(node.stride, name, "stride")
            ph, pw = _pair(node.padding, name, "padding")
            kind = seq.AvgPool if isinstance(node, nir.AvgPool2d) else seq.SumPool
            layers.append(kind(window, strides, ((ph, ph), (pw, pw))))
            shape = ((shape[0] + 2 * ph - window[0]) // strides[0] + 1,
                     (shape[1] + 2 * pw - window[1]) // strides[1] + 1, shape[2])
        elif isinstance(node, nir.Flatten):
            start, end = int(np.asarray(node.start_dim)), int(np.asarray(node.end_dim))
            if start != 0 or end not in (-1, len(shape) - 1):
                raise ValueError(f"node {name!r}: Flatten(start_dim={start}, end_dim={end}); only a flatten of all "
                                 f"of a sample's axes (start_dim=0, end_dim=-1) is supported.")
            if len(shape) == 3:
                flattened_from = shape
            if len(shape) > 1:
                layers.append(seq.Flatten())
            shape = (int(np.prod(shape)),)
        elif isinstance(node, (nir.LIF, nir.IF, nir.CubaLIF)):
            spiking, meta = _spiking(name, node, dt)
            recorded = recorded or meta
            layers.append(spiking)
        else:
            raise ValueError(f"node {name!r} is a {type(node).__name__}, which nsnn_jax cannot run exactly; "
                             f"supported: {', '.join(IMPORTABLE_NODES)}.")
    if flattened_from is not None:
        raise ValueError("the graph flattens (C, H, W) activations without a dense layer after it.")
    if not layers:
        raise ValueError("the graph has no layers between its Input and Output.")
    if neuron is None:
        neuron = _neuron_from(recorded)
    if not isinstance(neuron, neuron_lib.LIFParams):
        raise ValueError(f"neuron must be LIFParams, got {neuron!r}.")
    if timesteps is None:
        timesteps = int(metadata.get("timesteps", 8))
    if sequence_input is None:
        sequence_input = not bool(metadata.get("static_input", False))
    model = seq.SpikingSequential(tuple(layers), timesteps=timesteps, neuron=neuron,
                                  sequence_input=bool(sequence_input))
    return model, {"params": {k: {n: jnp.asarray(a) for n, a in v.items()} for k, v in params.items()}}


# ------------------------------------------------------------------- files ---


def write(path: Union[str, os.PathLike], graph) -> None:
    """Writes ``graph`` to a ``.nir`` (HDF5) file with ``nir.write``."""
    nir = _nir()
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write {os.fspath(path)!r}: folder {folder!r} does not exist.")
    nir.write(path, graph)


def read(path: Union[str, os.PathLike]):
    """Reads a ``nir.NIRGraph`` from a ``.nir`` file with ``nir.read``."""
    nir = _nir()
    if not os.path.isfile(os.fspath(path)):
        raise FileNotFoundError(f"no NIR file at {os.fspath(path)!r}.")
    return nir.read(path)
