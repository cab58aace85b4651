"""Jobs of several processes (real subprocesses, a localhost coordinator, gloo collectives on CPU)."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import jax.numpy as jnp
import numpy as np
import pytest

from helpers import REPO, TINY, make_idx_dir, read_metrics, without_timing
from test_cifar_train import make_archive
from analysis import fano
from nsnn_jax import checkpoint
from train.common import devices, restore

pytestmark = [pytest.mark.standard_promotion, pytest.mark.slow]
HEARTBEAT = 5  # seconds: NSNN_JAX_HEARTBEAT_TIMEOUT of these jobs
ARGS = [*TINY[:-2], "--epochs", "2"]
# CIFARNet at 1/16 width, T = 2, 32 training images: a vision command's whole pipeline, quickly compiled.
VISION = ["--arch", "cifarnet", "--width", "0.0625", "--timesteps", "2", "--batch-size", "8", "--epochs", "2",
          "--lr", "0.003"]
FAST = {"JAX_DISABLE_MOST_OPTIMIZATIONS": "1"}
TWO_DEVICES = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}  # one process
# FGSM with the authors' per-step sign, the one-sample and the 2-sample (EOT) gradient; 11 images in
# batches of 4: the last batch is padded to a multiple of the devices.
ROBUSTNESS = ["--attack", "fgsm", "--fgsm-sign", "per-step", "--strengths", "0,0.1", "--seeds", "2", "--samples", "2",
              "--limit", "11", "--batch-size", "4"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(n, argv, env=None, command="train.fmnist"):
    """Starts ``python -m COMMAND ARGV`` as processes 0 .. n-1 of one job (one process: no job)."""
    port = free_port()
    procs = []
    for i in range(n):
        job = {"NSNN_JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}", "NSNN_JAX_NUM_PROCESSES": str(n),
               "NSNN_JAX_PROCESS_ID": str(i)} if n > 1 else {}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", command, *argv], cwd=REPO, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": REPO, "PYTHONFAULTHANDLER": "1",
                 "NSNN_JAX_HEARTBEAT_TIMEOUT": str(HEARTBEAT), **job, **(env or {})}))
    return procs


def finish(procs, timeout=180):
    """``[(returncode, stdout, stderr)]`` of ``procs``; a job still running after ``timeout`` s fails the test.

    A hung job is sent SIGABRT first, so that each process prints where it
    stands (``PYTHONFAULTHANDLER``: the Python stack of every thread).
    """
    deadline = time.monotonic() + timeout
    results = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            for q in procs:
                if q.poll() is None:
                    q.send_signal(signal.SIGABRT)
            stacks = [q.communicate(timeout=30)[1][-4000:] for q in procs]
            pytest.fail(f"the job still ran after {timeout} s; where each process stood:\n" +
                        "\n".join(f"--- process {i}:\n{err}" for i, err in enumerate(stacks)))
        results.append((p.returncode, out, err))
    return results


def wait_for_checkpoint(workdir, step, procs, timeout=200):
    """Waits until ``checkpoints/STEP`` is finalised and its epoch's record written.

    Orbax renames the step folder into place last, after its metadata and
    ``commit_success.txt``; the record of the epoch is appended before the
    checkpoint is saved.
    """
    deadline = time.monotonic() + timeout
    path = os.path.join(workdir, "checkpoints", str(step))
    metrics = os.path.join(workdir, "metrics.jsonl")

    def done():
        if not os.path.exists(metrics) or not all(os.path.exists(os.path.join(path, name)) for name in ("_CHECKPOINT_METADATA", "commit_success.txt")):
            return False
        with open(metrics) as f:
            return any(line.endswith("\n") and json.loads(line)["step"] == step for line in f)

    while not done():
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.1)


def test_two_processes_write_once_equal_two_devices_and_resume(tmp_path):
    data = make_idx_dir(tmp_path / "data")
    two = str(tmp_path / "two_processes")
    (rc0, out0, err0), (rc1, out1, err1) = finish(launch(2, ["--data-dir", data, "--workdir", two, *ARGS]))
    assert rc0 == 0 and rc1 == 0, err0[-3000:] + err1[-3000:]
    records = read_metrics(two)
    assert [r["epoch"] for r in records] == [1, 2]  # one line per epoch: process 0 alone writes
    assert out0.strip().splitlines()[-1].startswith("final test_accuracy=")
    assert "final" not in out1 and "epoch 1/2" not in err1 and "epoch 1/2" in err0  # process 1 is quiet

    one = str(tmp_path / "two_devices")
    (rc, _, err), = finish(launch(1, ["--data-dir", data, "--workdir", one, *ARGS], env=TWO_DEVICES))
    assert rc == 0, err[-3000:]
    assert "2 cpu device(s)" in err
    assert without_timing(read_metrics(one)) == without_timing(records)

    # The analysis of the run by the same two processes: trials over both, one result, written once.
    analysis = launch(2, ["--workdir", two, "--samples", "6", "--trials", "5"], command="analysis.fano")
    (rc0, out0, err0), (rc1, out1, err1) = finish(analysis)
    assert rc0 == 0 and rc1 == 0, err0[-3000:] + err1[-3000:]
    assert "wrote" in out0 and "wrote" not in out1
    with open(os.path.join(two, "analysis", "fano.json")) as f:
        by_two = json.load(f)
    alone = fano.main(["--workdir", two, "--samples", "6", "--trials", "5"])
    assert by_two["trials"] == 5 and by_two["fano_factor_per_sample"] == alone["fano_factor_per_sample"]
    assert by_two["stability_per_sample"] == alone["stability_per_sample"]

    # The attack of the run by the two processes, each image on one device of one of them, and by one process of two.
    by_two, by_one = str(tmp_path / "attacked_by_two"), str(tmp_path / "attacked_by_one")
    (rc0, out0, err0), (rc1, out1, err1) = finish(launch(
        2, ["--workdir", two, *ROBUSTNESS, "--out", by_two], command="analysis.robustness"))
    assert rc0 == 0 and rc1 == 0, err0[-3000:] + err1[-3000:]
    assert "wrote" in out0 and "wrote" not in out1
    assert sorted(os.listdir(by_two)) == ["robustness-fgsm.csv", "robustness-fgsm.json", "robustness-fgsm.png"]
    (rc, _, err), = finish(launch(1, ["--workdir", two, *ROBUSTNESS, "--out", by_one], env=TWO_DEVICES,
                                  command="analysis.robustness"))
    assert rc == 0, err[-3000:]
    with open(os.path.join(by_two, "robustness-fgsm.json")) as f, \
            open(os.path.join(by_one, "robustness-fgsm.json")) as g:
        rows_two, rows_one = json.load(f)["rows"], json.load(g)["rows"]
    assert [r["variant"] for r in rows_two] == ["single", "single", "eot2", "eot2"]
    assert rows_two == rows_one

    # Both processes killed once epoch 1's checkpoint is saved; the job resumed with two processes.
    resumed = str(tmp_path / "resumed")
    procs = launch(2, ["--data-dir", data, "--workdir", resumed, *ARGS])
    wait_for_checkpoint(resumed, 4, procs)
    for p in procs:
        p.send_signal(signal.SIGKILL)
    finish(procs)
    (rc0, _, err0), (rc1, _, err1) = finish(launch(2, ["--data-dir", data, "--workdir", resumed, "--resume", *ARGS]))
    assert rc0 == 0 and rc1 == 0, err0[-3000:] + err1[-3000:]
    assert "resumed at step 4" in err0
    assert without_timing(read_metrics(resumed)) == without_timing(records)


def test_vision_command_by_two_processes_equals_two_devices(tmp_path):
    archive = make_archive(tmp_path / "cifar")
    two, one = str(tmp_path / "two_processes"), str(tmp_path / "two_devices")
    (rc0, out0, err0), (rc1, out1, err1) = finish(launch(
        2, ["--data-dir", archive, "--workdir", two, *VISION], env=FAST, command="train.cifar"))
    assert rc0 == 0 and rc1 == 0, err0[-3000:] + err1[-3000:]
    assert "final test_accuracy=" in out0 and "final" not in out1
    records = read_metrics(two)
    assert [r["epoch"] for r in records] == [1, 2]  # one line per epoch
    (rc, _, err), = finish(launch(1, ["--data-dir", archive, "--workdir", one, *VISION], env={**FAST, **TWO_DEVICES},
                                  command="train.cifar"))
    assert rc == 0 and "2 cpu device(s)" in err, err[-3000:]
    assert without_timing(read_metrics(one)) == without_timing(records)



@pytest.mark.skipif(shutil.which("mpirun") is None, reason="Open MPI's mpirun is not installed")
def test_mpirun_job_equals_two_devices(tmp_path):
    """Under ``mpirun -np 2`` JAX's Open MPI detection joins the processes: one result, the figures of two devices."""
    data = make_idx_dir(tmp_path / "data")
    by_mpi, one = str(tmp_path / "mpirun"), str(tmp_path / "two_devices")
    root = ["--allow-run-as-root"] if os.geteuid() == 0 else []
    job = subprocess.Popen(
        ["mpirun", "-np", "2", "--oversubscribe", *root, sys.executable, "-m", "train.fmnist",
         "--data-dir", data, "--workdir", by_mpi, *ARGS], cwd=REPO, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env={**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": REPO,
                                     "PYTHONFAULTHANDLER": "1", "NSNN_JAX_HEARTBEAT_TIMEOUT": str(HEARTBEAT)})
    (rc, out, err), = finish([job])
    assert rc == 0, err[-3000:]
    assert out.count("final test_accuracy=") == 1 and "2 cpu device(s)" in err  # both ranks' output, merged
    (rc, _, err), = finish(launch(1, ["--data-dir", data, "--workdir", one, *ARGS], env=TWO_DEVICES))
    assert rc == 0, err[-3000:]
    assert without_timing(read_metrics(by_mpi)) == without_timing(read_metrics(one))


def test_a_lost_peer_ends_the_job_within_the_bound(tmp_path):
    data = make_idx_dir(tmp_path / "data")
    workdir = str(tmp_path / "run")
    procs = launch(2, ["--data-dir", data, "--workdir", workdir, *TINY[:-2], "--epochs", "400"])
    wait_for_checkpoint(workdir, 4, procs)
    procs[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    try:
        _, err = procs[0].communicate(timeout=HEARTBEAT + 30)
    except subprocess.TimeoutExpired:
        procs[0].kill()
        pytest.fail("process 0 still runs after its peer died")
    waited = time.monotonic() - killed
    assert procs[0].returncode not in (0, None)
    # Ours when the next collective fails first; JAX's runtime aborts the process itself when its
    # heartbeat check fires first (a loaded machine), listing the unhealthy task: either names process 1.
    jax_names_it = re.search(r"tasks are unhealthy \(stopped sending heartbeats\):\s*1\b", err)
    assert "lost process 1 of the 2-process job" in err or jax_names_it, err[-3000:]
    assert waited < HEARTBEAT + 10  # the heartbeat timeout and the poll that names the peer
    procs[1].communicate()
    result = restore.evaluate_run(workdir)  # the last checkpoint, restored by one process
    assert result["step"] >= 4 and result["step"] % 4 == 0


@pytest.mark.parametrize("flags, env, message", [
    ({"coordinator_address": "127.0.0.1:1234"}, {}, "not the number of processes"),
    ({"num_processes": "2", "process_id": "0"}, {}, "needs the coordinator"),
    ({"coordinator_address": "h:1", "num_processes": "2", "process_id": "2"}, {}, "expected 0 .. 1"),
    ({"coordinator_address": "h:1", "num_processes": "2"}, {}, "not this process's index"),
    ({}, {"NSNN_JAX_NUM_PROCESSES": "two"}, "expected an integer"),
    ({"coordinator_address": "nohost", "num_processes": "2", "process_id": "1"}, {}, "HOST:PORT"),
])
def test_inconsistent_settings_are_clear_errors(flags, env, message):
    with pytest.raises(ValueError, match=message):
        devices.distributed_settings(flags, env)


def test_settings_from_flags_environment_and_clusters():
    flags, rest = devices.split_distributed_flags(
        ["--epochs", "1", "--coordinator-address=10.0.0.1:5000", "--num-processes", "4", "--process-id", "3"])
    assert rest == ["--epochs", "1"]
    assert devices.distributed_settings(flags, {}) == devices.DistributedSettings("10.0.0.1:5000", 4, 3)
    from_env = devices.distributed_settings({}, {"JAX_COORDINATOR_ADDRESS": "h:1", "NSNN_JAX_NUM_PROCESSES": "2",
                                                 "NSNN_JAX_PROCESS_ID": "1", "NSNN_JAX_HEARTBEAT_TIMEOUT": "7"})
    assert (from_env.coordinator_address, from_env.num_processes, from_env.process_id,
            from_env.heartbeat_timeout) == ("h:1", 2, 1, 7)
    slurm = {"SLURM_JOB_ID": "9", "SLURM_STEP_NODELIST": "n[1-2]", "SLURM_NTASKS": "2", "SLURM_PROCID": "1",
             "SLURM_LOCALID": "0"}
    found = devices.distributed_settings({}, slurm)
    assert (found.cluster, found.num_processes, found.process_id, found.coordinator_address) == ("slurm", 2, 1, None)
    ompi = {"OMPI_MCA_orte_hnp_uri": "1.2.3.4:5", "OMPI_COMM_WORLD_SIZE": "3", "OMPI_COMM_WORLD_RANK": "2"}
    assert devices.distributed_settings({}, ompi).cluster == "ompi"
    with pytest.raises(ValueError, match="needs the coordinator"):  # mpirun without its address published
        devices.distributed_settings({}, {"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "1"})
    by_hand = devices.distributed_settings({"coordinator_address": "h:1"},
                                           {"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "1"})
    assert (by_hand.num_processes, by_hand.process_id) == (2, 1)
    assert not devices.distributed_settings({}, {**slurm, "SLURM_NTASKS": "1", "SLURM_PROCID": "0"}).multi_process
    assert not devices.distributed_settings({}, {}).multi_process


class _Peer:
    """A stand-in for ``checkpoint._allgather`` in a job of two: this process's value and a peer's.

    ``listing`` is the peer's list of steps; ``reads`` answers whether the peer reads back the step tried.
    """

    def __init__(self, listing, reads):
        self.listing, self.reads, self.calls = listing, reads, []

    def __call__(self, value):
        value = np.asarray(value)
        self.calls.append(value)
        if len(self.calls) == 1:  # the number of steps listed
            peer = np.int32(len(self.listing))
        elif len(self.calls) == 2:  # the steps, padded with -1
            peer = np.full(value.shape, -1, np.int32)
            peer[:len(self.listing)] = self.listing
        else:  # whether the step tried was read back
            peer = np.int32(self.reads(len(self.calls) - 3))
        return np.stack([value, peer])


@pytest.fixture
def two_steps(tmp_path):
    store = checkpoint.CheckpointStore(str(tmp_path / "checkpoints"))
    like = {"w": jnp.zeros(3), "step": jnp.int32(0)}
    for step in (4, 8):
        store.save(step, {"w": jnp.full(3, step, jnp.float32), "step": jnp.int32(step)})
    yield store, like
    store.close()


def test_processes_that_read_a_step_differently_stop_together(two_steps, monkeypatch):
    """A step read back here but not by the peer is an error on both, never two processes at two steps."""
    store, like = two_steps
    monkeypatch.setattr(checkpoint, "_allgather", _Peer([4, 8], reads=lambda attempt: False))
    with pytest.raises(ValueError, match=r"step 8 .* reads back on processes \[0\] but not on processes \[1\]"):
        store.restore_intact(like)


def test_a_step_one_process_does_not_list_is_skipped_by_all(two_steps, monkeypatch):
    store, like = two_steps
    peer = _Peer([4], reads=lambda attempt: True)
    monkeypatch.setattr(checkpoint, "_allgather", peer)
    with pytest.warns(RuntimeWarning, match="step 8 .* not listed by every process"):
        state = store.restore_intact(like)
    assert int(state["step"]) == 4 and len(peer.calls) == 3  # the common newest step, tried once
    monkeypatch.setattr(checkpoint, "_allgather", _Peer([], reads=lambda attempt: True))
    with pytest.raises(ValueError, match="not listed by every process"):
        store.restore_intact(like)
