"""Jobs of several processes (real subprocesses, a localhost coordinator, gloo collectives on CPU)."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from helpers import REPO, TINY, make_idx_dir, read_metrics, without_timing
from analysis import fano
from train.common import devices, restore

pytestmark = [pytest.mark.standard_promotion, pytest.mark.slow]
HEARTBEAT = 5  # seconds: NSNN_JAX_HEARTBEAT_TIMEOUT of these jobs
ARGS = [*TINY[:-2], "--epochs", "2"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(n, argv, env=None):
    """Starts ``python -m train.fmnist ARGV`` as processes 0 .. n-1 of one job."""
    port = free_port()
    procs = []
    for i in range(n):
        job = {"NSNN_JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}", "NSNN_JAX_NUM_PROCESSES": str(n),
               "NSNN_JAX_PROCESS_ID": str(i)} if n > 1 else {}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "train.fmnist", *argv], cwd=REPO, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": REPO,
                 "NSNN_JAX_HEARTBEAT_TIMEOUT": str(HEARTBEAT), **job, **(env or {})}))
    return procs


def finish(procs, timeout=300):
    results = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        results.append((p.returncode, out, err))
    return results


def wait_for_checkpoint(workdir, step, procs, timeout=200):
    """Waits until ``checkpoints/STEP`` is complete (orbax renames it into place when done)."""
    deadline = time.monotonic() + timeout
    path = os.path.join(workdir, "checkpoints", str(step))
    while not os.path.isdir(path):
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
    (rc, _, err), = finish(launch(1, ["--data-dir", data, "--workdir", one, *ARGS],
                                  env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}))
    assert rc == 0, err[-3000:]
    assert "2 cpu device(s)" in err
    assert without_timing(read_metrics(one)) == without_timing(records)

    # The analysis of the run by the same two processes: trials over both, one result, written once.
    port = free_port()
    analysis = [subprocess.Popen(
        [sys.executable, "-m", "analysis.fano", "--workdir", two, "--samples", "6", "--trials", "5",
         "--coordinator-address", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
        cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": REPO}) for i in range(2)]
    (rc0, out0, err0), (rc1, out1, err1) = finish(analysis)
    assert rc0 == 0 and rc1 == 0, err0[-3000:] + err1[-3000:]
    assert "wrote" in out0 and "wrote" not in out1
    with open(os.path.join(two, "analysis", "fano.json")) as f:
        by_two = json.load(f)
    alone = fano.main(["--workdir", two, "--samples", "6", "--trials", "5"])
    assert by_two["trials"] == 5 and by_two["fano_factor_per_sample"] == alone["fano_factor_per_sample"]
    assert by_two["stability_per_sample"] == alone["stability_per_sample"]

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
