"""Runs the steps of a plan, reusing what a previous reproduction in the same folder finished.

A training step whose run folder reaches its last epoch is reused, one with a
``config.json`` but unfinished is continued with ``--resume``, others are
trained; an analysis step is reused when its JSON exists. Each step is
``python -m MODULE ARGS`` in a subprocess (or, with ``in_process``, the same
module run in this process, which saves the start-up), its output in
``OUT/logs/NAME.log``. (The in-process form looks the module up by its name
at run time, as the subprocess does.) Progress, with the time elapsed and an estimate of the
time left, goes to stderr.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import subprocess
import sys
import time
from typing import Callable, Optional

from analysis.paper.plan import Step
from train.common import rundir
from train.common.progress import format_seconds

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def log_path(out: str, step: Step) -> str:
    return os.path.join(out, "logs", step.name.replace("/", "__") + ".log")


def state(out: str, step: Step) -> str:
    """``"done"`` (reusable), ``"partial"`` (a run to resume) or ``"new"``."""
    if step.kind == "train":
        workdir = os.path.join(out, "runs", step.name)
        if rundir.run_finished(workdir):
            return "done"
        return "partial" if os.path.exists(os.path.join(workdir, rundir.CONFIG_FILE)) else "new"
    return "done" if os.path.exists(os.path.join(out, step.output)) else "new"


def command_line(out: str, step: Step, resume: bool = False) -> list[str]:
    """The argv of a step after ``python -m MODULE``."""
    args = list(step.args)
    if step.kind == "train":
        args += ["--workdir", os.path.join(out, "runs", step.name)]
        if resume:
            args.append("--resume")
    return args


def _in_process(module: str, args: list[str], log) -> int:
    """``MODULE.main(args)`` in this process (every command has ``main(argv)``); returns its exit status."""
    saved = sys.argv
    sys.argv = [module, *args]  # the start-up reads (and rewrites) sys.argv
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            importlib.import_module(module).main(args)
        return 0
    except SystemExit as error:
        return error.code if isinstance(error.code, int) else (0 if error.code is None else 1)
    finally:
        sys.argv = saved


def execute(out: str, step: Step, resume: bool, in_process: bool) -> int:
    """Runs one step, its output appended to its log; returns the exit status."""
    args = command_line(out, step, resume)
    path = log_path(out, step)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as log:
        log.write(f"$ python -m {step.module} {' '.join(args)}\n")
        log.flush()
        if in_process:
            return _in_process(step.module, args, log)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))}
        return subprocess.run([sys.executable, "-m", step.module, *args], stdout=log, stderr=subprocess.STDOUT,
                              env=env).returncode


class Runner:
    """Executes steps in order with progress and ETA on ``stream``.

    Args:
      out: the output folder.
      steps: the plan's steps.
      in_process: run each module in this process instead of a subprocess.
      stream: where progress goes (stderr).
    """

    def __init__(self, out: str, steps: list[Step], in_process: bool = False, stream=None):
        self.out, self.steps, self.in_process = out, steps, in_process
        self.stream = stream or sys.stderr
        self.status: dict[str, str] = {}
        self.seconds: dict[str, float] = {}
        self._t0 = time.perf_counter()

    def say(self, text: str) -> None:
        self.stream.write(f"[paper] {text}\n")
        self.stream.flush()

    def remaining(self, index: int) -> float:
        """Seconds left: the estimates of the steps to come, scaled by how the measured ones compared."""
        measured = [s for s in self.steps[:index] if self.status.get(s.name) in ("trained", "resumed", "ran")]
        ratio = 1.0
        if measured:
            ratio = sum(self.seconds[s.name] for s in measured) / max(sum(s.estimate_s for s in measured), 1e-9)
        todo = [s for s in self.steps[index:] if state(self.out, s) != "done"]
        return ratio * sum(s.estimate_s for s in todo)

    def run(self, on_failure: Optional[Callable[[Step, str], None]] = None) -> dict[str, str]:
        """Runs every step; returns ``name -> status`` (trained, resumed, ran, reused, failed)."""
        total = len(self.steps)
        for index, step in enumerate(self.steps):
            elapsed = time.perf_counter() - self._t0
            where = state(self.out, step)
            if where == "done":
                self.status[step.name] = "reused"
                self.say(f"{index + 1}/{total} reused {step.kind} {step.name}")
                continue
            self.say(f"{index + 1}/{total} {'resuming' if where == 'partial' else 'running'} {step.kind} "
                     f"{step.name} (elapsed {format_seconds(elapsed)}, remaining ~{format_seconds(self.remaining(index))})")
            start = time.perf_counter()
            code = execute(self.out, step, where == "partial", self.in_process)
            self.seconds[step.name] = time.perf_counter() - start
            if code == 0 and state(self.out, step) == "done":
                self.status[step.name] = ("resumed" if where == "partial" else "trained") if step.kind == "train" else "ran"
                self.say(f"{index + 1}/{total} done {step.name} in {self.seconds[step.name]:.0f} s")
            else:
                self.status[step.name] = "failed"
                self.say(f"{index + 1}/{total} FAILED {step.name} (exit {code}); see {log_path(self.out, step)}")
                if on_failure:
                    on_failure(step, log_path(self.out, step))
        counts = {k: sum(v == k for v in self.status.values()) for k in ("trained", "resumed", "ran", "reused", "failed")}
        self.say("summary: " + ", ".join(f"{k} {v}" for k, v in counts.items())
                 + f"; elapsed {format_seconds(time.perf_counter() - self._t0)}")
        return self.status
