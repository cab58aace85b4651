"""Devices: multi-process start-up, a 1-D ``'data'`` mesh over every device of every process, and batches placed on it.

Several processes (one per host, or several on one machine) form one job when
the environment says so: SLURM or Open MPI (read by JAX's cluster detection),
or, for jobs launched by hand, ``--coordinator-address``, ``--num-processes``
and ``--process-id`` on every command (or ``NSNN_JAX_COORDINATOR_ADDRESS``,
``NSNN_JAX_NUM_PROCESSES``, ``NSNN_JAX_PROCESS_ID``; ``JAX_COORDINATOR_ADDRESS``
is read too).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Mapping, Optional, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

# The flags of a hand-launched multi-process job, and the environment variables read in their place.
DISTRIBUTED_FLAGS = {
    "coordinator_address": ("--coordinator-address", ("NSNN_JAX_COORDINATOR_ADDRESS", "JAX_COORDINATOR_ADDRESS"),
                            "HOST:PORT of process 0's coordinator (a job of several processes launched by hand)"),
    "num_processes": ("--num-processes", ("NSNN_JAX_NUM_PROCESSES",), "how many processes the job has"),
    "process_id": ("--process-id", ("NSNN_JAX_PROCESS_ID",), "this process's index, 0 .. --num-processes - 1"),
}
# Seconds before a lost peer ends the job; NSNN_JAX_HEARTBEAT_TIMEOUT / NSNN_JAX_INIT_TIMEOUT override them.
HEARTBEAT_TIMEOUT = 30
INIT_TIMEOUT = 120
_SLURM = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID")
_OMPI = ("OMPI_MCA_orte_hnp_uri", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK")
_PROCESS = (0, 1)  # (index, count) once the job is joined; read without starting a backend
_SETTINGS = None  # the DistributedSettings of the job joined
_PEER_FAILURE_SIGNS = ("Gloo", "Connection reset", "Connection closed", "UNAVAILABLE", "heartbeat", "coordination")


@dataclasses.dataclass(frozen=True)
class DistributedSettings:
    """How this process joins a job: by hand (all three fields) or through a cluster (``cluster``)."""

    coordinator_address: Optional[str] = None
    num_processes: Optional[int] = None
    process_id: Optional[int] = None
    cluster: Optional[str] = None  # "slurm" or "ompi" when the scheduler describes the job
    heartbeat_timeout: int = HEARTBEAT_TIMEOUT
    init_timeout: int = INIT_TIMEOUT

    @property
    def multi_process(self) -> bool:
        return self.num_processes is not None and self.num_processes > 1


def split_distributed_flags(argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Takes ``--coordinator-address``, ``--num-processes``, ``--process-id`` (``--x V`` or ``--x=V``) out of ``argv``.

    Returns:
      ``({field: text}, the other arguments)``.
    """
    by_flag = {spec[0]: name for name, spec in DISTRIBUTED_FLAGS.items()}
    found: dict[str, str] = {}
    rest: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        name, _, value = arg.partition("=")
        if name in by_flag:
            if not _:
                if i + 1 >= len(args):
                    raise ValueError(f"{name} expects a value.")
                i += 1
                value = args[i]
            found[by_flag[name]] = value
        else:
            rest.append(arg)
        i += 1
    return found, rest


def _integer(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{what}={text!r} is invalid: expected an integer.") from None


def distributed_settings(flags: Mapping[str, str], environ: Mapping[str, str] = os.environ) -> DistributedSettings:
    """What ``flags`` (from :func:`split_distributed_flags`) and ``environ`` say about the job.

    Raises:
      ValueError: an inconsistent set (an address without a process count or
        id, a count without an address, an id outside ``0 .. count - 1``), or
        a value that is not a number.
    """
    given: dict[str, tuple[str, str]] = {}  # field -> (where it came from, text)
    for name, (flag, variables, _) in DISTRIBUTED_FLAGS.items():
        if flags.get(name) not in (None, ""):
            given[name] = (flag, flags[name])
            continue
        for variable in variables:
            if environ.get(variable):
                given[name] = (variable, environ[variable])
                break
    timeouts = {
        "heartbeat_timeout": _integer(environ.get("NSNN_JAX_HEARTBEAT_TIMEOUT", str(HEARTBEAT_TIMEOUT)),
                                      "NSNN_JAX_HEARTBEAT_TIMEOUT"),
        "init_timeout": _integer(environ.get("NSNN_JAX_INIT_TIMEOUT", str(INIT_TIMEOUT)), "NSNN_JAX_INIT_TIMEOUT"),
    }
    for name, value in timeouts.items():
        if value < 1:
            raise ValueError(f"{name} of {value} s is invalid: expected >= 1 second.")
    cluster = None
    if all(environ.get(v) for v in _SLURM) and _integer(environ["SLURM_NTASKS"], "SLURM_NTASKS") > 1:
        cluster = "slurm"
    elif all(environ.get(v) for v in _OMPI) and _integer(environ["OMPI_COMM_WORLD_SIZE"], "OMPI_COMM_WORLD_SIZE") > 1:
        cluster = "ompi"
    values: dict[str, object] = {}
    for name, (where, text) in given.items():
        values[name] = text if name == "coordinator_address" else _integer(text, where)
    if cluster is not None and "num_processes" not in values:
        values["num_processes"] = int(environ["SLURM_NTASKS" if cluster == "slurm" else "OMPI_COMM_WORLD_SIZE"])
    if cluster is not None and "process_id" not in values:
        values["process_id"] = int(environ["SLURM_PROCID" if cluster == "slurm" else "OMPI_COMM_WORLD_RANK"])
    if cluster is None and int(environ.get("OMPI_COMM_WORLD_SIZE", "1") or 1) > 1:
        # An mpirun that does not publish its address (Open MPI 5): the count and rank are known,
        # the coordinator must be given.
        values.setdefault("num_processes", int(environ["OMPI_COMM_WORLD_SIZE"]))
        values.setdefault("process_id", int(environ.get("OMPI_COMM_WORLD_RANK", "0")))
        given.setdefault("num_processes", ("OMPI_COMM_WORLD_SIZE", environ["OMPI_COMM_WORLD_SIZE"]))
        given.setdefault("process_id", ("OMPI_COMM_WORLD_RANK", environ.get("OMPI_COMM_WORLD_RANK", "0")))
    if not values:
        return DistributedSettings(**timeouts)

    def named(field: str) -> str:
        return given[field][0] if field in given else ("the " + cluster.upper() + " environment")

    count = values.get("num_processes")
    if count is not None and count < 1:
        raise ValueError(f"{named('num_processes')}={count} is invalid: expected a process count >= 1.")
    if count is None:
        raise ValueError(f"{named(next(iter(given)))} is given but not the number of processes: pass "
                         f"--num-processes (or NSNN_JAX_NUM_PROCESSES) and --process-id on every process.")
    if values.get("process_id") is None:
        if count == 1:
            values["process_id"] = 0
        else:
            raise ValueError(f"{named('num_processes')}={count} is given but not this process's index: pass "
                             "--process-id (or NSNN_JAX_PROCESS_ID), 0 .. count - 1.")
    pid = values["process_id"]
    if not 0 <= pid < count:
        raise ValueError(f"{named('process_id')}={pid} is invalid: expected 0 .. {count - 1} "
                         f"for a job of {count} processes.")
    if count > 1 and values.get("coordinator_address") is None and cluster is None:
        raise ValueError(f"A job of {count} processes needs the coordinator's HOST:PORT: pass "
                         "--coordinator-address (or NSNN_JAX_COORDINATOR_ADDRESS) on every process.")
    address = values.get("coordinator_address")
    if address is not None and (":" not in address or not address.rsplit(":", 1)[1].isdigit()):
        raise ValueError(f"{named('coordinator_address')}={address!r} is invalid: expected HOST:PORT.")
    return DistributedSettings(address, count, pid, cluster, **timeouts)


def initialize_distributed(settings: DistributedSettings) -> bool:
    """Joins the job ``settings`` describes (nothing for one process); returns whether it did.

    Must run before any JAX computation. A peer lost later ends this process
    within ``settings.heartbeat_timeout`` seconds (JAX's coordination service);
    a peer that never starts, within ``settings.init_timeout``.
    """
    if not settings.multi_process:
        return False
    global _PROCESS, _SETTINGS
    _PROCESS = (settings.process_id, settings.num_processes)
    _SETTINGS = settings
    try:
        jax.distributed.initialize(
            coordinator_address=settings.coordinator_address,
            num_processes=settings.num_processes,
            process_id=settings.process_id,
            initialization_timeout=settings.init_timeout,
            heartbeat_timeout_seconds=settings.heartbeat_timeout,
        )  # the shutdown timeout stays JAX's: process 0 may finish its files well after the others
    except Exception as error:  # the runtime's own types: say what was tried
        raise RuntimeError(
            f"process {settings.process_id} of {settings.num_processes} could not join the job at "
            f"{settings.coordinator_address or settings.cluster}: {error}") from error
    sys.excepthook = end_job_on_uncaught
    return True


def is_main_process() -> bool:
    """Whether this process writes the run's files and prints progress (process 0)."""
    return jax.process_index() == 0


def any_process(flag: bool) -> bool:
    """Whether ``flag`` holds on any process of the job (a collective: every process must call it)."""
    if jax.process_count() == 1:
        return bool(flag)
    from jax.experimental import multihost_utils

    return bool(np.any(multihost_utils.process_allgather(np.int32(bool(flag)))))


def data_mesh() -> Mesh:
    """A 1-D mesh over every device of every process, axis ``'data'``."""
    return Mesh(np.asarray(jax.devices()), ("data",))


def replicated(mesh: Mesh) -> NamedSharding:
    """Parameters and optimiser state: a full copy on every device."""
    return NamedSharding(mesh, PartitionSpec())


def shard_batch(mesh: Mesh, array: np.ndarray) -> jax.Array:
    """Places a global host batch on the mesh, split along its first axis.

    Every process holds the same host batch; each transfers only the rows of
    its own devices, so the figures do not depend on how devices are spread
    over processes.
    """
    sharding = NamedSharding(mesh, PartitionSpec("data"))
    if jax.process_count() == 1:
        return jax.device_put(array, sharding)
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def put_replicated(mesh: Mesh, tree):
    """Places host (or single-device) arrays as full copies on every device of every process."""
    sharding = replicated(mesh)
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)
    return jax.tree.map(
        lambda leaf: jax.make_array_from_callback(np.shape(leaf), sharding,
                                                  lambda index, host=np.asarray(leaf): host[index]), tree)


def to_host(tree):
    """Numpy copies of the arrays of ``tree`` (replicated ones read from this process's own copy)."""
    def host(leaf):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            if not leaf.is_fully_replicated:
                raise ValueError("to_host takes replicated arrays; a sharded one spans other processes.")
            return np.asarray(leaf.addressable_shards[0].data)
        return np.asarray(leaf)
    return jax.tree.map(host, tree)


def quiet_unless_main() -> None:
    """Sends the output and progress lines of processes other than 0 to nothing; errors still reach stderr.

    Called at start-up, after joining the job. Errors are printed through
    :func:`report_error` (and uncaught exceptions through the exception hook),
    which write to the process's real stderr.
    """
    if _PROCESS[0] == 0:
        return
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115

    previous = sys.excepthook  # end_job_on_uncaught in a job: prints the traceback and exits at once

    def hook(kind, value, traceback):
        sys.stderr = sys.__stderr__  # the traceback goes to the real stderr
        report_error(f"{kind.__name__}: {value}")
        previous(kind, value, traceback)

    sys.excepthook = hook


def end_job_on_uncaught(kind, value, traceback) -> None:
    """``sys.excepthook`` of a job's processes: the traceback, then exit 1 at once.

    A plain exit would wait in JAX's shutdown barrier (minutes) while the peers
    wait in a collective this process never enters; exiting at once ends them
    within the heartbeat timeout.
    """
    sys.__excepthook__(kind, value, traceback)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


def report_error(message: str) -> None:
    """Prints ``message`` on the process's real stderr (every process, quiet or not)."""
    if _PROCESS[1] == 1:
        print(message, file=sys.stderr, flush=True)
        return
    # Processes other than 0 have their sys.stderr silenced: errors go to the real one.
    print(f"[process {_PROCESS[0]}] {message}", file=sys.__stderr__, flush=True)


def lost_peers(wait_seconds: Optional[float] = None) -> Optional[list[int]]:
    """The processes of the job that stopped answering (after up to ``wait_seconds`` of asking).

    Returns:
      Their indices; ``[0]`` when the coordinator (process 0) itself cannot be
      reached; ``None`` for a one-process run, or when every peer still answers.
    """
    index, count = _PROCESS
    if count == 1:
        return None
    from jax._src import distributed  # the runtime client: the only way to ask who is alive

    client = distributed.global_state.client
    if client is None:
        return None
    wait = _SETTINGS.heartbeat_timeout + 5 if wait_seconds is None else wait_seconds
    deadline = time.monotonic() + wait
    everyone = list(range(count))
    while True:
        try:
            live = client.get_live_nodes(everyone)
        except Exception:  # the coordination service is gone with process 0
            return [0] if index != 0 else None
        alive = set(live)  # the ids (or an id-keyed mapping) of the processes still heard from
        lost = [p for p in everyone if p not in alive]
        if lost or time.monotonic() >= deadline:
            return lost or None
        time.sleep(0.5)


def fail_job(error: BaseException) -> None:
    """Ends this process with status 1 after printing ``error`` and, in a job, the peers it lost.

    In a job of several processes the exit skips JAX's shutdown barrier, which a
    lost peer would hold up until the shutdown timeout.
    """
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    index, count = _PROCESS
    if count == 1:
        report_error(f"error: {text}")
        raise SystemExit(1) from error
    # A user error is raised by every process alike; a collective that failed names its transport.
    user_error = isinstance(error, (ValueError, FileNotFoundError)) and not any(
        sign in str(error) for sign in _PEER_FAILURE_SIGNS)
    lost = lost_peers(0 if user_error else None)
    if lost:
        names = ", ".join(f"process {p}" + (" (the coordinator)" if p == 0 else "") for p in lost)
        report_error(f"error: lost {names} of the {count}-process job; stopping this one ({text})")
    else:
        report_error(f"error: {text}")
    sys.stdout.flush()
    os._exit(1)
