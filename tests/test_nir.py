"""nsnn_jax.interop: batch norm folding, NIR export/import, .nir files, and snnTorch's NIR reader/writer."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nsnn_jax import layers, models, neuron, noise
from nsnn_jax.interop import fold
from nsnn_jax.interop import nir as nsnn_nir
from nsnn_jax.models import sequential as seq

try:
    import nir
except ImportError:
    nir = None
needs_nir = pytest.mark.skipif(nir is None, reason="the optional 'nir' package (extra 'interop') is not installed")

T = 5


def spikes_by_layer(model, variables, x):
    """``(readout, [spikes of each spiking layer, in layer order])`` in the deterministic limit."""
    out, state = model.apply(variables, x, deterministic=True, mutable=["spikes"])
    found = layers.sown_by_layer(state["spikes"], "spikes")

    def order(name):  # 'conv2/lif' -> ('conv', 2): numeric within a prefix (layer10 after layer9)
        head = name.split("/")[0]
        prefix = head.rstrip("0123456789")
        return prefix, int(head[len(prefix):] or 0)

    return np.asarray(out), [np.asarray(found[k]) for k in sorted(found, key=order)]


def assert_busy(spike_list):
    """Every spiking layer fires sometimes but not always: a flipped spike would show."""
    for index, spikes in enumerate(spike_list):
        assert 0.02 < spikes.mean() < 0.9, f"spiking layer {index} has rate {spikes.mean():.3f}"


def mlp(tau=0.5, v_th=1.0):
    params = neuron.LIFParams(tau=tau, v_th=v_th, noise=noise.Gaussian(0.3))
    model = models.get_model("mlp", hidden=(12, 8), outputs=4, timesteps=T, neuron=params)
    x = jax.random.uniform(jax.random.key(0), (6, 10)) * 2.0
    variables = model.init({"params": jax.random.key(1), "noise": jax.random.key(2)}, x)
    # lecun-scaled weights leave the second layer silent; larger ones make every layer busy
    return model, {"params": jax.tree.map(lambda a: 3.0 * a, variables["params"])}, x


def with_trained_norms(variables, key):
    """Batch-norm statistics and affine parameters away from their initial 0/1."""
    leaves, tree = jax.tree_util.tree_flatten_with_path(variables)
    out = []
    for i, (path, leaf) in enumerate(leaves):
        names = [str(getattr(p, "key", p)) for p in path]
        k = jax.random.fold_in(key, i)
        if names[-1] == "var":
            leaf = jax.random.uniform(k, leaf.shape, minval=0.2, maxval=2.0)
        elif names[-1] == "mean":
            leaf = 0.3 * jax.random.normal(k, leaf.shape)
        elif names[-1] == "scale":
            leaf = jax.random.uniform(k, leaf.shape, minval=0.5, maxval=1.5)
        elif names[-1] == "bias" and "norm" in names:
            leaf = 0.3 + 0.3 * jax.random.normal(k, leaf.shape)
        out.append(leaf)
    return jax.tree_util.tree_unflatten(tree, out)


def conv_net(norm="tdbn", name="cifarnet", size=8):
    model = models.get_model(name, width=1 / 64, outputs=3, timesteps=T, norm=norm)
    x = jax.random.uniform(jax.random.key(0), (3, size, size, 3)) * 2.0
    variables = model.init({"params": jax.random.key(1), "noise": jax.random.key(2)}, x)
    variables = {"params": variables["params"], "batch_stats": variables["batch_stats"]}
    return model, with_trained_norms(variables, jax.random.key(5)), x


# ------------------------------------------------------------- the neuron ---


@needs_nir
@pytest.mark.parametrize("beta,v_th,dt", [(0.5, 1.0, 1.0), (0.5, 1.0, 1e-4), (0.8, 0.7, 0.25), (0.0, 1.0, 1.0)])
def test_lif_node_euler_step_is_the_discrete_neuron(beta, v_th, dt):
    """Forward Euler of the exported node's ODE, run in numpy, gives lif_scan's spikes and membrane."""
    params = neuron.LIFParams(tau=beta, v_th=v_th, noise=None)
    model = seq.SpikingSequential((seq.Dense(16), seq.Spiking(beta, v_th)), timesteps=12, neuron=params)
    x = jax.random.normal(jax.random.key(3), (4, 6))
    variables = model.init(jax.random.key(4), x)
    graph = nsnn_nir.export(model, variables, dt=dt)
    node = graph.nodes["layer1"]
    assert isinstance(node, nir.LIF)
    np.testing.assert_allclose(node.tau, dt / (1 - beta), rtol=1e-12)
    np.testing.assert_allclose(node.r, 1 / (1 - beta), rtol=1e-12)
    currents = np.asarray(x @ variables["params"]["layer0"]["kernel"] + variables["params"]["layer0"]["bias"],
                          np.float64)
    v = np.zeros_like(currents)
    euler = []
    for _ in range(12):
        v = v + dt / node.tau * (node.v_leak - v + node.r * currents)
        spikes = v > node.v_threshold
        euler.append(spikes)
        v = np.where(spikes, node.v_reset, v)
    expected = neuron.lif_scan(jnp.broadcast_to(currents.astype(np.float32), (12,) + currents.shape), None,
                               params, deterministic=True).spikes
    np.testing.assert_array_equal(np.stack(euler), np.asarray(expected) > 0)
    assert 0.05 < np.mean(euler) < 0.95


@needs_nir
def test_no_leak_exports_as_if_node():
    params = neuron.LIFParams(tau=1.0, noise=None)
    model = seq.SpikingSequential((seq.Dense(3), seq.Spiking(1.0, 1.0), seq.Dense(2)), timesteps=4, neuron=params)
    variables = model.init(jax.random.key(0), jnp.ones((1, 5)))
    graph = nsnn_nir.export(model, variables, dt=0.5)
    assert isinstance(graph.nodes["layer1"], nir.IF)
    np.testing.assert_allclose(graph.nodes["layer1"].r, 2.0)
    imported, _ = nsnn_nir.import_graph(graph)
    assert imported.layers[1] == seq.Spiking(1.0, 1.0)


# ----------------------------------------------------------- round trips ---


@needs_nir
@pytest.mark.parametrize("tau,v_th,dt", [(0.5, 1.0, 1.0), (0.5, 1.0, 1e-4), (0.8, 0.7, 0.37)])
def test_mlp_round_trip_same_outputs(tau, v_th, dt):
    model, variables, x = mlp(tau, v_th)
    graph = nsnn_nir.export(model, variables, dt=dt)
    imported, imported_vars = nsnn_nir.import_graph(graph)
    out, spikes = spikes_by_layer(model, variables, x)
    out2, spikes2 = spikes_by_layer(imported, imported_vars, x)
    assert_busy(spikes)
    assert len(spikes2) == len(spikes) == 2
    for a, b in zip(spikes, spikes2):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(out2, out, atol=1e-6)
    assert imported.layers[1] == seq.Spiking(tau, v_th)


@pytest.mark.parametrize("name,norm,size", [("cifarnet", "bn", 8), ("cifarnet", "tdbn", 8), ("cifarnet_table5", "tdbn", 8),
                                            ("cifarnet_table5", "bn", 8), ("vggsnn_table5", "bn", 16)])
def test_batch_norm_folding_matches_eval_mode_model(name, norm, size):
    """The folded layer list spikes as the unfolded model in inference mode (every spiking layer)."""
    model, variables, x = conv_net(norm, name, size)
    folded, folded_vars = fold.to_sequential(model, variables)
    assert "batch_stats" not in folded_vars
    out, spikes = spikes_by_layer(model, variables, x)
    out2, spikes2 = spikes_by_layer(folded, folded_vars, x)
    assert_busy(spikes)
    assert len(spikes2) == len(spikes)
    for index, (a, b) in enumerate(zip(spikes, spikes2)):
        np.testing.assert_array_equal(a, b, err_msg=f"spiking layer {index}")
    np.testing.assert_allclose(out2, out, atol=1e-5)


def test_folded_currents_match_conv_then_norm():
    """The first folded conv's currents equal conv (with its bias, the authors' form) -> eval-mode norm."""
    model, variables, x = conv_net("bn")
    folded, folded_vars = fold.to_sequential(model, variables)
    p = folded_vars["params"]["layer0"]
    folded_currents = jax.lax.conv_general_dilated(x, p["kernel"], (1, 1), ((1, 1), (1, 1)),
                                                   dimension_numbers=("NHWC", "HWIO", "NHWC")) + p["bias"]
    raw = jax.lax.conv_general_dilated(x, variables["params"]["conv0"]["conv"]["kernel"], (1, 1), ((1, 1), (1, 1)),
                                       dimension_numbers=("NHWC", "HWIO", "NHWC")) + variables["params"]["conv0"]["conv"]["bias"]
    bn_params = variables["params"]["conv0"]["norm"]["BatchNorm_0"]
    stats = variables["batch_stats"]["conv0"]["norm"]["BatchNorm_0"]
    expected = (raw - stats["mean"]) / jnp.sqrt(stats["var"] + 1e-5) * bn_params["scale"] + bn_params["bias"]
    np.testing.assert_allclose(folded_currents, expected, rtol=1e-5, atol=1e-5)


@needs_nir
@pytest.mark.parametrize("name,norm,size", [("cifarnet", "bn", 8), ("cifarnet_table5", "tdbn", 8), ("vggsnn_table5", "bn", 16)])
def test_conv_round_trip_same_outputs(name, norm, size):
    model, variables, x = conv_net(norm, name, size)
    graph = nsnn_nir.export(model, variables, input_shape=x.shape[1:])
    kinds = {type(n).__name__ for n in graph.nodes.values()}
    assert {"Conv2d", "LIF", "AvgPool2d", "Flatten", "Affine"} <= kinds
    imported, imported_vars = nsnn_nir.import_graph(graph)
    out, spikes = spikes_by_layer(model, variables, x)
    out2, spikes2 = spikes_by_layer(imported, imported_vars, x)
    assert_busy(spikes)
    for index, (a, b) in enumerate(zip(spikes, spikes2)):
        np.testing.assert_array_equal(a, b, err_msg=f"spiking layer {index}")
    np.testing.assert_allclose(out2, out, atol=1e-5)


@needs_nir
def test_nir_file_round_trip_keeps_weights_metadata_and_outputs(tmp_path):
    model, variables, x = conv_net("tdbn")
    graph = nsnn_nir.export(model, variables, dt=1e-3, input_shape=x.shape[1:])
    path = tmp_path / "net.nir"
    nsnn_nir.write(path, graph)
    back = nsnn_nir.read(path)
    assert sorted(back.nodes) == sorted(graph.nodes) and sorted(back.edges) == sorted(graph.edges)
    for name, node in graph.nodes.items():
        assert type(back.nodes[name]) is type(node)
        for field in ("weight", "bias", "tau", "r", "v_threshold"):
            if hasattr(node, field):
                np.testing.assert_array_equal(getattr(back.nodes[name], field), getattr(node, field))
    lif = back.nodes["layer1"]
    assert lif.metadata["noise"] == "gaussian" and float(lif.metadata["sigma"]) == pytest.approx(0.3)
    assert lif.metadata["firing"] == "membrane" and float(back.metadata["dt"]) == pytest.approx(1e-3)
    imported, imported_vars = nsnn_nir.import_graph(path)
    assert imported.neuron.noise == noise.Gaussian(0.3) and imported.timesteps == T
    np.testing.assert_allclose(spikes_by_layer(imported, imported_vars, x)[0], spikes_by_layer(model, variables, x)[0],
                               atol=1e-5)


@needs_nir
def test_imported_network_trains_as_nsnn():
    """A deterministic graph with a noise law: noisy spikes that depend on the key, finite NDL gradients."""
    model, variables, x = mlp()
    graph = nsnn_nir.export(model, variables)
    imported, imported_vars = nsnn_nir.import_graph(graph, neuron=neuron.LIFParams(noise=noise.Gaussian(0.3)))

    def loss(params, key):
        return jnp.mean(imported.apply({"params": params}, x, rngs={"noise": key}) ** 2)

    first, second = (imported.apply(imported_vars, x, rngs={"noise": jax.random.key(k)}) for k in (0, 1))
    assert not np.allclose(first, second)
    grads = jax.grad(loss)(imported_vars["params"], jax.random.key(0))
    norms = [float(jnp.linalg.norm(g)) for g in jax.tree.leaves(grads)]
    assert all(np.isfinite(norms)) and norms[0] > 0


@needs_nir
def test_cuba_lif_with_instant_synapse_imports_as_lif():
    weight = np.asarray(jax.random.normal(jax.random.key(0), (6, 4)), np.float32)
    ones = np.ones(6)

    def graph(neuron_node):
        return nir.NIRGraph.from_list(nir.Affine(weight=weight, bias=np.zeros(6, np.float32)), neuron_node)

    dt = 0.1
    lif = graph(nir.LIF(tau=2 * dt * ones, r=2 * ones, v_leak=0 * ones, v_threshold=ones))
    cuba = graph(nir.CubaLIF(tau_syn=dt * ones, tau_mem=2 * dt * ones, r=2 * ones, v_leak=0 * ones,
                             v_threshold=ones, w_in=ones))
    x = jax.random.uniform(jax.random.key(1), (T, 3, 4)) * 2
    outs = []
    for g in (lif, cuba):
        model, variables = nsnn_nir.import_graph(g, dt=dt)
        outs.append(np.asarray(model.apply(variables, x, deterministic=True)))
    assert 0.05 < outs[0].mean() < 0.95
    np.testing.assert_array_equal(outs[0], outs[1])


@needs_nir
def test_sum_pool_imports_as_average_times_window():
    """SumPool2d then Affine(W) equals AvgPool2d then Affine(4 W) for 2x2 windows."""
    rng = np.random.default_rng(0)
    conv = rng.normal(size=(3, 2, 3, 3)).astype(np.float32)
    dense = rng.normal(size=(4, 12)).astype(np.float32) * 0.5
    ones = np.ones((3, 4, 4))

    def graph(pool, weight):
        return nir.NIRGraph.from_list(
            nir.Conv2d(input_shape=(4, 4), weight=conv, stride=1, padding=1, dilation=1, groups=1,
                       bias=np.full(3, 0.5, np.float32)),
            nir.LIF(tau=2 * ones, r=2 * ones, v_leak=0 * ones, v_threshold=ones),
            pool(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
            nir.Flatten(input_type={"input": np.array([3, 2, 2])}, start_dim=0, end_dim=-1),
            nir.Affine(weight=weight, bias=np.zeros(4, np.float32)), type_check=False)

    x = jnp.asarray(rng.uniform(0, 2, (T, 2, 4, 4, 2)), jnp.float32)
    outs = []
    for g in (graph(nir.SumPool2d, dense), graph(nir.AvgPool2d, 4 * dense)):
        model, variables = nsnn_nir.import_graph(g, dt=1.0)
        out, spikes = spikes_by_layer(model, variables, x)
        assert_busy(spikes)
        outs.append(out)
    assert isinstance(model.layers[2], seq.AvgPool) and model.layers[2].window == (2, 2)
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-5)


def test_sequential_rejects_bad_layers():
    x = jnp.ones((2, 3))
    with pytest.raises(ValueError, match="at least one layer"):
        seq.SpikingSequential(()).init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="layer 1"):
        seq.SpikingSequential((seq.Dense(2), "relu")).init(jax.random.key(0), x)


# ---------------------------------------------------------------- errors ---


def test_missing_nir_package_is_a_clear_import_error(monkeypatch):
    model, variables, _ = mlp()
    monkeypatch.setitem(sys.modules, "nir", None)
    with pytest.raises(ImportError, match=r"nsnn-jax\[interop\]"):
        nsnn_nir.export(model, variables)


@needs_nir
@pytest.mark.parametrize("name", ["resnet18", "sevenb"])
def test_unsupported_model_is_named(name):
    model = models.get_model(name, width=1 / 64, outputs=3, timesteps=2)
    with pytest.raises(ValueError, match=type(model).__name__):
        nsnn_nir.export(model, {"params": {}}, input_shape=(8, 8, 3))


@needs_nir
def test_conv_export_needs_input_shape():
    model, variables, _ = conv_net()
    with pytest.raises(ValueError, match="input_shape"):
        nsnn_nir.export(model, variables)


@needs_nir
@pytest.mark.parametrize("make,match", [
    (lambda o: nir.LI(tau=o, r=o, v_leak=0 * o), "is a LI"),
    (lambda o: nir.Threshold(threshold=o), "is a Threshold"),
    (lambda o: nir.Delay(delay=o), "is a Delay"),
    (lambda o: nir.LIF(tau=o, r=o, v_leak=0.5 * o, v_threshold=o), "v_leak"),
    (lambda o: nir.LIF(tau=o, r=o, v_leak=0 * o, v_threshold=o, v_reset=-o), "v_reset"),
    (lambda o: nir.LIF(tau=o * np.arange(1, 5), r=o, v_leak=0 * o, v_threshold=o), "differs between neurons"),
    (lambda o: nir.CubaLIF(tau_syn=3 * o, tau_mem=2 * o, r=2 * o, v_leak=0 * o, v_threshold=o), "CubaLIF"),
])
def test_unsupported_node_is_a_clear_error(make, match):
    graph = nir.NIRGraph.from_list(nir.Affine(weight=np.eye(4, dtype=np.float32), bias=np.zeros(4, np.float32)),
                                   make(np.ones(4)), type_check=False)
    with pytest.raises(ValueError, match=match):
        nsnn_nir.import_graph(graph, dt=1.0)


@needs_nir
def test_branching_graph_is_rejected():
    eye = np.eye(3, dtype=np.float32)
    nodes = {"input": nir.Input(input_type={"input": np.array([3])}), "a": nir.Linear(weight=eye),
             "b": nir.Linear(weight=eye), "output": nir.Output(output_type={"output": np.array([3])})}
    edges = [("input", "a"), ("input", "b"), ("a", "output"), ("b", "output")]
    with pytest.raises(ValueError, match="feed-forward chains"):
        nsnn_nir.import_graph(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))


@needs_nir
def test_read_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no NIR file"):
        nsnn_nir.read(tmp_path / "absent.nir")


# --------------------------------------------------------------- command ---


@needs_nir
@pytest.mark.standard_promotion
def test_export_command_writes_a_graph_that_reads_back(tmp_path, capsys):
    import json
    import os

    from analysis import export_nir
    from helpers import TINY, make_idx_dir
    from train import fmnist
    data = make_idx_dir(tmp_path / "data")
    workdir = str(tmp_path / "run")
    fmnist.main(["--data-dir", data, "--workdir", workdir, *TINY[:-2], "--epochs", "1"])
    capsys.readouterr()
    result = export_nir.main(["--workdir", workdir, "--dt", "1e-4", "--check", "6"])
    out = os.path.join(workdir, "analysis", "network.nir")
    assert result["nir"] == out and "wrote" in capsys.readouterr().out
    saved = json.load(open(os.path.join(workdir, "analysis", "export_nir.json")))
    assert saved["checked_samples"] == 6 and saved["max_abs_output_difference"] < 1e-5
    assert saved["same_predictions"] and saved["input_shape"] == [28, 28]
    graph = nsnn_nir.read(out)
    assert float(graph.metadata["dt"]) == pytest.approx(1e-4) and graph.metadata["experiment"] == "train.fmnist"
    assert list(graph.nodes["input"].input_type["input"]) == [784]  # the MLP flattens its images
    assert isinstance(graph.nodes["layer2"], nir.LIF) and graph.nodes["layer2"].metadata["noise"] == "gaussian"


def test_export_command_help_and_missing_run(tmp_path, capsys):
    from analysis import export_nir
    with pytest.raises(SystemExit) as error:
        export_nir.main(["--help"])
    assert error.value.code == 0 and "--workdir" in capsys.readouterr().out
    with pytest.raises(SystemExit) as error:
        export_nir.main(["--workdir", str(tmp_path / "nope")])
    assert error.value.code == 1 and "config.json" in capsys.readouterr().err


# ------------------------------------------------------ snnTorch's reader ---


@pytest.fixture(scope="module")
def snntorch():
    torch = pytest.importorskip("torch", reason="PyTorch (extra 'bench') is not installed")
    pytest.importorskip("nirtorch", reason="nirtorch (extra 'bench') is not installed")
    snn = pytest.importorskip("snntorch", reason="snnTorch (extra 'bench') is not installed")
    torch.set_num_threads(1)
    from snntorch import export_nir, import_nir, utils
    return torch, snn, export_nir, import_nir, utils


def run_torch(snntorch, net, steps):
    """Runs ``net`` over ``steps`` (a list of per-step inputs); returns (outputs, [spikes of each Leaky])."""
    torch, snn, _, _, utils = snntorch
    leaky = [m for m in net.modules() if isinstance(m, snn.Leaky)]
    recorded = [[] for _ in leaky]
    hooks = [m.register_forward_hook(lambda mod, args, out, i=i: recorded[i].append(
        (out[0] if isinstance(out, tuple) else out).detach().numpy().copy())) for i, m in enumerate(leaky)]
    utils.reset(net)
    outputs, state = [], None
    with torch.no_grad():
        for x in steps:
            out = net(torch.from_numpy(np.ascontiguousarray(x))) if state is None else net(
                torch.from_numpy(np.ascontiguousarray(x)), state)
            if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict):
                out, state = out
            outputs.append(out.detach().numpy())
    for hook in hooks:
        hook.remove()
    return np.stack(outputs), [np.stack(r) for r in recorded]


@needs_nir
def test_snntorch_reads_exported_mlp_with_the_same_spikes(snntorch):
    _, _, _, import_nir, _ = snntorch
    model, variables, x = mlp()
    net = import_nir.import_from_nir(nsnn_nir.export(model, variables, dt=1e-4))  # snnTorch's fixed step
    out, spikes = spikes_by_layer(model, variables, x)
    torch_out, torch_spikes = run_torch(snntorch, net, [np.asarray(x)] * T)
    assert_busy(spikes)
    assert len(torch_spikes) == len(spikes)
    for a, b in zip(spikes, torch_spikes):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(torch_out, out, atol=1e-5)


@needs_nir
def test_snntorch_reads_exported_conv_net_with_the_same_spikes(snntorch):
    """One sample at a time: snnTorch's reader passes NIR's batch-free Flatten(start_dim=0) to
    torch.nn.Flatten, which then flattens the batch axis too."""
    _, _, _, import_nir, _ = snntorch
    model, variables, x = conv_net("tdbn")
    net = import_nir.import_from_nir(nsnn_nir.export(model, variables, dt=1e-4, input_shape=x.shape[1:]))
    out, spikes = spikes_by_layer(model, variables, x)
    assert_busy(spikes)
    for b in range(x.shape[0]):
        image = np.asarray(x[b:b + 1]).transpose(0, 3, 1, 2)  # NCHW
        torch_out, torch_spikes = run_torch(snntorch, net, [image] * T)
        assert len(torch_spikes) == len(spikes)
        for index, (a, c) in enumerate(zip(spikes, torch_spikes)):
            mine = a[:, b:b + 1]
            theirs = c.transpose(0, 1, 3, 4, 2) if c.ndim == 5 else c.reshape(mine.shape)
            np.testing.assert_array_equal(mine, theirs, err_msg=f"sample {b}, spiking layer {index}")
        np.testing.assert_allclose(torch_out.reshape(T, 1, -1), out[:, b:b + 1], atol=1e-5)


def snntorch_net(snntorch, kind):
    """A small snn.Leaky network (beta 0.5, threshold 1, reset to zero) and per-step inputs ``(T, B, ...)``.

    beta and threshold are per neuron: snnTorch's exporter writes scalar ones as 0-d arrays,
    which NIR's type check rejects.
    """
    torch, snn, _, _, _ = snntorch
    torch.manual_seed(0)

    def leaky(*shape):
        return snn.Leaky(beta=torch.full(shape, 0.5), threshold=torch.full(shape, 1.0), reset_mechanism="zero",
                         init_hidden=True)

    if kind == "mlp":
        net = torch.nn.Sequential(torch.nn.Linear(7, 12), leaky(12), torch.nn.Linear(12, 5), leaky(5))
        x = torch.rand(T, 4, 7) * 3
    else:
        net = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), leaky(4, 6, 6), torch.nn.AvgPool2d(2),
                                  torch.nn.Flatten(), torch.nn.Linear(4 * 3 * 3, 5), leaky(5))
        x = torch.rand(T, 3, 2, 6, 6) * 3
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3.0)
        net[-2].bias.add_(0.8)  # keeps the output layer firing
    return net, x


@needs_nir
@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_graph_exported_by_snntorch_imports_with_the_same_spikes(snntorch, kind):
    _, _, export_nir, _, _ = snntorch
    net, x = snntorch_net(snntorch, kind)
    graph = export_nir.export_to_nir(net, x[0], ignore_dims=[0])
    torch_out, torch_spikes = run_torch(snntorch, net, list(x.numpy()))
    model, variables = nsnn_nir.import_graph(graph)  # dt = tau / r = 1e-4 from the nodes
    assert model.sequence_input and model.neuron.noise is None
    assert all(layer == seq.Spiking(0.5, 1.0) for layer in model.layers if isinstance(layer, seq.Spiking))
    inputs = x.numpy() if kind == "mlp" else x.numpy().transpose(0, 1, 3, 4, 2)
    out, spikes = spikes_by_layer(model, variables, jnp.asarray(inputs))
    assert_busy(torch_spikes)
    for index, (mine, theirs) in enumerate(zip(spikes, torch_spikes)):
        theirs = theirs.transpose(0, 1, 3, 4, 2) if theirs.ndim == 5 else theirs
        np.testing.assert_array_equal(mine, theirs, err_msg=f"spiking layer {index}")
    np.testing.assert_array_equal(out, torch_out)
