"""The benchmark commands run end to end on tiny configurations (no timing is asserted)."""

import json

import jax
import numpy as np
import pytest

from benchmarks import cifar as cifar_bench
from benchmarks import long_t
from benchmarks import noise_cost
from benchmarks import peers as peers_bench
from benchmarks import torch_peers
from benchmarks import trials as trials_bench
from benchmarks import step as step_bench
from nsnn_jax import cpu, noise, sampling

pytestmark = [pytest.mark.standard_promotion,  # optax inside
              pytest.mark.usefixtures("fast_compilation")]




def last_json_line(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_mlp_step_benchmark_reports_ratios(capsys):
    result = step_bench.main(["--hidden", "8", "--timesteps", "2", "--batch-size", "4", "--rounds", "1", "--steps", "1"])
    assert last_json_line(capsys) == pytest.approx(result)
    assert result["ratio"] > 0 and result["floor_steps_per_s"] > 0


def test_trials_benchmark_reports_trials_per_second_against_the_loop(capsys):
    """Tiny CIFARNet and MLP: every candidate reports, the loop's trial 0 equals sample_trials' (asserted inside)."""
    result = trials_bench.main(["--tiny", "--trials", "3", "--rounds", "1", "--no-memory", "--vmap-width", "2",
                                "--configs", "cifarnet,mlp_b8", "--candidates", "sample_trials,vmap,loop,torch_loop"])
    assert last_json_line(capsys) == json.loads(json.dumps(result))
    for config in result["configs"]:
        assert config["trials"] == 3
        figures = config["results"]
        assert {"sample_trials", "vmap", "loop"} <= set(figures)
        assert ("torch_loop" in figures) != ("torch_loop" in config["skipped"])
        for name, r in figures.items():
            assert r["trials_per_s"] > 0 and r["speedup_over_loop"] > 0, name
        assert figures["sample_trials"]["planned_bytes"] > 0 and figures["sample_trials"]["chunk"] == 3


def test_cifar_benchmark_reports_images_per_second_memory_and_remat(capsys):
    result = cifar_bench.main(["--arch", "cifarnet", "--width", "0.0625", "--timesteps", "2", "--batch-size", "2",
                               "--remat", "both", "--rounds", "1", "--steps", "1"])
    printed = last_json_line(capsys)
    assert printed["arch"] == "cifarnet" and printed["timesteps"] == 2
    for name in ("nsnn", "dsnn", "nsnn_remat", "dsnn_remat"):
        assert result[f"{name}_images_per_s"] > 0 and result[f"{name}_ratio"] > 0
        assert result[f"{name}_memory_bytes"] > 0 and result[f"{name}_compile_s"] > 0
    assert result["floor_images_per_s"] > 0


def test_cifar_benchmark_rejects_bad_sizes(capsys):
    with pytest.raises(SystemExit):
        cifar_bench.main(["--timesteps", "0"])
    assert "--timesteps" in capsys.readouterr().err


def test_cifar_benchmark_sweeps_several_timesteps(capsys):
    result = cifar_bench.main(["--arch", "vggsnn", "--width", "0.0625", "--timesteps", "1,2", "--batch-size", "2",
                               "--remat", "on", "--rounds", "1", "--steps", "1"])
    assert [run["timesteps"] for run in result["runs"]] == [1, 2]
    assert all(run["nsnn_remat_memory_bytes"] > 0 for run in result["runs"])
    assert last_json_line(capsys) == result


TINY_PEERS = {"mlp": ["--widths", "8", "--timesteps", "2", "--batch-size", "3"],
              "conv": ["--widths", "2,3,4", "--image-size", "8", "--timesteps", "2", "--batch-size", "2"]}


@pytest.mark.parametrize("workload", ["mlp", "conv"])
def test_peer_benchmark_times_every_candidate_or_says_why_not(workload, capsys):
    """Every candidate is timed or listed as skipped with a reason; losses are
    finite; the ratios the targets are stated in are in the JSON line."""
    result = peers_bench.main(["--workload", workload, *TINY_PEERS[workload],
                               "--rounds", "1", "--steps", "1", "--no-memory"])
    assert last_json_line(capsys) == json.loads(json.dumps(result))
    assert result["conv_engine"] == cpu.convolution_engine()
    assert set(result["results"]) | set(result["skipped"]) == set(peers_bench.CANDIDATES)
    assert not set(result["results"]) & set(result["skipped"])
    for name in torch_peers.TORCH_CANDIDATES:
        why = torch_peers.available(name)
        if why:  # not installed here: said so, with the reason
            assert result["skipped"][name] == why
        else:  # installed: it must also run
            assert name in result["results"], result["skipped"].get(name)
    for name, figures in result["results"].items():
        assert figures["steps_per_s"] > 0 and figures["min_ms"] <= figures["median_ms"] <= figures["max_ms"]
        assert figures["final_loss"] > 0 and figures["peak_memory_bytes"] is None
    assert result["results"]["jax_floor"]["ratio_to_jax_floor"] == 1.0
    assert result["nsnn_ratio_to_jax_floor"] == pytest.approx(
        result["results"]["jax_nsnn"]["median_ms"] / result["results"]["jax_floor"]["median_ms"])


def test_peer_benchmark_measures_peak_memory_in_a_fresh_process(capsys):
    result = peers_bench.main(["--workload", "mlp", *TINY_PEERS["mlp"], "--candidates", "jax_floor",
                               "--rounds", "1", "--steps", "1"])
    assert result["results"]["jax_floor"]["peak_memory_bytes"] > 0
    assert "jax_nsnn" not in result["results"] and "nsnn_ratio_to_jax_floor" not in result


@pytest.mark.parametrize("argv, match", [
    (["--candidates", "pytorch"], "pytorch"),
    (["--workload", "conv", "--image-size", "10"], "--image-size 10"),
    (["--widths", "0"], "--widths"),
    (["--timesteps", "0"], "--timesteps"),
])
def test_peer_benchmark_rejects_bad_arguments(argv, match, capsys):
    with pytest.raises(SystemExit):
        peers_bench.main(argv)
    assert match in capsys.readouterr().err


def test_torch_floor_computes_the_same_function_as_the_jax_floor():
    """With the same weights, the PyTorch and JAX MLP floors give the same loss, so
    the benchmark compares equal work."""
    torch = pytest.importorskip("torch")
    import jax
    import numpy as np

    from benchmarks import workloads

    workload = workloads.WORKLOADS["mlp"]._replace(timesteps=2, batch=3, widths=(5,))
    net = torch_peers._model("torch_floor", workload)
    x = np.random.default_rng(0).normal(size=(3, 784)).astype(np.float32)
    params = {"dense0": {"kernel": net.synapses[0].weight.detach().numpy().T, "bias": net.synapses[0].bias.detach().numpy()},
              "readout": {"kernel": net.readout.weight.detach().numpy().T, "bias": net.readout.bias.detach().numpy()}}
    want = workloads._model("jax_floor", workload, 0.3).apply({"params": params}, x)
    got = net(torch.from_numpy(np.concatenate([x, x]))).detach().numpy()
    np.testing.assert_allclose(got, np.asarray(jax.device_get(want)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("peer", ["spikingjelly", "snntorch", "norse"])
def test_each_peer_neuron_gives_this_librarys_deterministic_spikes(peer):
    """Decay 0.5, threshold 1, hard reset to 0: every peer's LIF, as the benchmark
    builds it, spikes exactly where ``lif_scan`` without noise does."""
    if torch_peers.available(peer):
        pytest.skip(torch_peers.available(peer))
    import jax
    import numpy as np
    import torch

    from nsnn_jax import neuron

    currents = np.random.default_rng(1).uniform(-0.5, 1.6, size=(12, 4, 16)).astype(np.float32)
    want = neuron.lif_scan(currents, None, neuron.LIFParams(noise=None)).spikes
    module = torch_peers.make_neuron(peer)()
    if peer == "spikingjelly":
        from spikingjelly.activation_based import functional

        functional.reset_net(module)
    got = module(torch.from_numpy(currents)).detach().numpy()
    np.testing.assert_array_equal(got, np.asarray(jax.device_get(want)))
    assert 0.1 < got.mean() < 0.9


def test_long_t_benchmark_sweeps_timesteps_unrolls_and_remat(capsys):
    mlp = long_t.main(["--workloads", "mlp", "--timesteps", "3", "--unroll", "auto,1", "--mlp-batch-size", "2",
                       "--rounds", "1", "--steps", "1"])
    assert last_json_line(capsys) == json.loads(json.dumps(mlp))
    conv = long_t.main(["--workloads", "conv", "--timesteps", "2", "--conv-batch-size", "1",
                        "--conv-widths", "2,2,2", "--image-size", "8", "--rounds", "1", "--steps", "1"])
    rows = {(r["workload"], r["timesteps"], r["candidate"]): r for r in mlp["rows"] + conv["rows"]}
    assert set(rows) == {("mlp", 3, "unroll=auto"), ("mlp", 3, "unroll=1"),
                         ("conv", 2, "unroll=auto"), ("conv", 2, "unroll=auto+remat")}
    assert rows[("mlp", 3, "unroll=1")]["steps_per_iteration"] == 1
    assert rows[("mlp", 3, "unroll=auto")]["steps_per_iteration"] == 3  # fully unrolled below the limit
    assert rows[("conv", 2, "unroll=auto+remat")]["remat"] and not rows[("conv", 2, "unroll=auto")]["remat"]
    for row in rows.values():
        assert row["median_ms"] > 0 and row["compile_s"] > 0 and row["memory_bytes"] > 0
        assert row["ms_per_timestep"] == pytest.approx(row["median_ms"] / row["timesteps"])


def test_long_t_benchmark_rejects_a_bad_unroll(capsys):
    with pytest.raises(SystemExit):
        long_t.main(["--unroll", "auto,0"])
    assert "--unroll" in capsys.readouterr().err


def test_noise_cost_benchmark_times_the_table_and_the_quantile(capsys):
    result = noise_cost.main(["--what", "layer", "--layer-shape", "2,3,5", "--families", "gaussian,arctan",
                              "--rounds", "1", "--steps", "1"])
    assert last_json_line(capsys) == json.loads(json.dumps(result))
    rows = result["results"]["layer"]
    assert set(rows) == {"dsnn", "gaussian_table", "gaussian_quantile", "arctan_table", "arctan_quantile"}
    assert rows["dsnn"]["median_x_dsnn"] == 1.0 and all(r["min_ms"] > 0 for r in rows.values())


def test_the_forced_quantile_sampler_draws_the_level_quantiles():
    """The benchmark's candidate (no gather) is within the stated bound of ``hash16``'s table values."""
    family = noise.Gaussian(0.3)
    key = jax.random.key(3)
    table = np.asarray(sampling.draw_noise(family, key, (5, 7)))
    with noise_cost.forced_sampler("hash16_quantile"):
        quantile = np.asarray(sampling.draw_noise(family, key, (5, 7)))
    assert np.all(np.isin(table, sampling.quantile_table(family)))
    assert not np.array_equal(quantile, table) or np.all(np.isin(quantile, sampling.quantile_table(family)))
    np.testing.assert_allclose(quantile, table, rtol=2 * family.level_quantile_rtol)
    direct = np.asarray(sampling.draw_noise(family, key, (5, 7), sampler="hash16_quantile"))
    np.testing.assert_array_equal(quantile, direct)

def test_noise_cost_parts_are_the_draw_without_one_piece_each(capsys):
    """--parts times every stand-in; 'interleaved' reorders hash16's levels, 'per_element' gathers table values,
    'free' is one value broadcast."""
    result = noise_cost.main(["--what", "layer", "--layer-shape", "2,3,4", "--families", "gaussian",
                              "--rounds", "1", "--steps", "1", "--parts"])
    assert {f"gaussian_{part}" for part in noise_cost.PARTS} <= set(result["results"]["layer"])
    family, key, shape = noise.Gaussian(0.3), jax.random.key(5), (6, 8)
    table = np.asarray(sampling.draw_noise(family, key, shape))
    drawn = {}
    for part in noise_cost.PARTS:
        with noise_cost.stand_in(part):
            drawn[part] = np.asarray(sampling.draw_noise(family, key, shape))
    assert np.unique(drawn["free"]).size == 1
    np.testing.assert_array_equal(np.sort(drawn["interleaved"], axis=None), np.sort(table, axis=None))
    assert not np.array_equal(drawn["interleaved"], table)
    assert np.all(np.isin(drawn["per_element"], sampling.quantile_table(family)))
    assert drawn["bits_only"].std() > 0 and np.abs(drawn["bits_only"]).max() < 2 * 0.3 * 32768 / 20000


def test_trials_benchmark_times_chosen_chunk_sizes(capsys):
    """--chunks adds sample_trials at fixed chunk sizes (their trial 0 is checked against the loop inside)."""
    result = trials_bench.main(["--tiny", "--trials", "4", "--rounds", "1", "--no-memory", "--configs", "mlp_b8",
                                "--candidates", "sample_trials,loop", "--chunks", "1,3,9"])
    figures = result["configs"][0]["results"]
    assert [figures[f"chunk={c}"]["chunk"] for c in (1, 3, 9)] == [1, 3, 4]
    assert all(figures[f"chunk={c}"]["trials_per_s"] > 0 for c in (1, 3, 9))
    assert figures["chunk=1"]["planned_bytes"] < figures["chunk=3"]["planned_bytes"]
