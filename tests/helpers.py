"""Shared test fixtures: tiny datasets in the real file formats."""

import functools
import json
import os
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np

from nsnn_jax.data import idx

TINY = ["--hidden", "16", "--timesteps", "2", "--batch-size", "16", "--epochs", "2"]


def make_idx_dir(path, n_train=64, n_test=24, seed=0):
    """Writes the four Fashion-MNIST files, in the real IDX gz format, with learnable data."""
    rng = np.random.default_rng(seed)
    os.makedirs(path, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):  # a bright band per class
            images[i, 2 * label:2 * label + 3] = 250
        idx.write_idx(os.path.join(path, f"{split}-images-idx3-ubyte.gz"), images)
        idx.write_idx(os.path.join(path, f"{split}-labels-idx1-ubyte.gz"), labels)
    return str(path)


@functools.cache
def fast_compile_options():
    """XLA options for faster compilation, those this jax/jaxlib accepts.

    The graphs under test run in milliseconds while compiling them dominates the
    runtime: skip LLVM's expensive passes and the CPU fusion emitters.
    """
    wanted = {
        "xla_backend_optimization_level": 0,
        "xla_llvm_disable_expensive_passes": True,
        "xla_cpu_use_fusion_emitters": False,
    }
    accepted = {}
    for name, value in wanted.items():
        try:
            jax.jit(lambda x: x + 1, compiler_options={name: value}).lower(1.0).compile()
            accepted[name] = value
        except Exception:  # unknown option, or a jax.jit without compiler_options
            pass
    return accepted


def fast_jit(fn, **kwargs):
    """``jax.jit`` with fast_compile_options (results may differ by an ulp)."""
    if fast_compile_options():
        kwargs["compiler_options"] = fast_compile_options()
    return jax.jit(fn, **kwargs)


def scipy_law(name, scale):
    """The noise law ``name`` with ``scale``, built independently with ``scipy.stats``."""
    from scipy import stats

    return {
        "gaussian": lambda: stats.norm(scale=scale),
        "logistic": lambda: stats.logistic(scale=scale),
        "uniform": lambda: stats.uniform(loc=-scale, scale=2 * scale),
        "triangular": lambda: stats.triang(c=0.5, loc=-scale, scale=2 * scale),
        "arctan": lambda: stats.cauchy(scale=scale),
    }[name]()


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def compare_sharded(script, tmp_path, rtol, atol, env=None):
    """Runs ``script DEVICES WORKDIR PARAMS.npz`` on 1 and 4 forced CPU devices and compares.

    The script prints a last JSON line ``{"devices", "train_loss"}`` and saves
    its final arrays with ``np.savez``; losses and arrays must agree within
    ``rtol``/``atol``.
    """
    results = []
    for devices in (1, 4):
        out = subprocess.run(
            [sys.executable, "-c", script, str(devices), str(tmp_path / f"run{devices}"), str(tmp_path / f"p{devices}.npz")],
            capture_output=True, text=True, cwd=REPO, timeout=600, env={**os.environ, **(env or {})})
        assert out.returncode == 0, out.stderr[-3000:]
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert [r["devices"] for r in results] == [1, 4]
    np.testing.assert_allclose(results[0]["train_loss"], results[1]["train_loss"], rtol=rtol)
    one, four = np.load(tmp_path / "p1.npz"), np.load(tmp_path / "p4.npz")
    assert one.files == four.files and one.files
    for name in one.files:
        np.testing.assert_allclose(one[name], four[name], rtol=rtol, atol=atol)


def read_metrics(workdir):
    """The records of ``workdir/metrics.jsonl``."""
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def assert_eval_only_matches_last_epoch(workdir, out):
    """``--eval-only``'s eval.json and printed line (``out``) give the run's last epoch's test figures."""
    import pytest

    last = read_metrics(workdir)[-1]
    with open(os.path.join(workdir, "eval.json")) as f:
        saved = json.load(f)
    assert saved["test_accuracy"] == pytest.approx(last["test_accuracy"], abs=1e-9)
    assert saved["test_accuracy_deterministic"] == pytest.approx(last["test_accuracy_deterministic"], abs=1e-9)
    assert f"test_accuracy={last['test_accuracy']:.4f}" in out


def without_timing(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def interrupt_after(monkeypatch, progress_class, steps):
    """Sends the process a SIGINT (the user's Ctrl-C) after ``steps`` progress updates."""
    done = {"steps": 0}
    original = progress_class.update

    def update_then_interrupt(self, *args, **kwargs):
        original(self, *args, **kwargs)
        done["steps"] += 1
        if done["steps"] == steps:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(progress_class, "update", update_then_interrupt)


def off_kink_grid(scale, n=601, width=4.0):
    """Points on ``[-width*scale, width*scale]`` shifted off the kinks ``0, +-scale``."""
    return np.linspace(-width * scale, width * scale, n) + 1.234e-3 * scale


def integrate_density(fn, name, scale):
    """Integral over R of ``fn`` (a density with the family's tails), float64.

    Light tails: trapezoid on ``[-60 s, 60 s]`` (kinks of the compact laws on grid
    points). Cauchy tails: ``x = s tan(theta)`` maps R onto ``(-pi/2, pi/2)``.
    Returns ``(integral, tolerance)``.
    """
    if name == "arctan":
        theta = np.linspace(-np.pi / 2, np.pi / 2, 20001)[1:-1]
        x = scale * np.tan(theta)
        y = np.asarray(fn(jnp.asarray(x))) * scale / np.cos(theta) ** 2
        # The end cells lost to the open interval hold 2 * h / pi of mass at most.
        return np.trapezoid(y, theta), 2 * (theta[1] - theta[0])
    x = np.linspace(-60 * scale, 60 * scale, 240001)
    y = np.asarray(fn(jnp.asarray(x)))
    h = x[1] - x[0]
    # Trapezoid error: a jump of height 1/(2 s) costs up to h/(2 s) per side; a kink
    # of the triangle costs O(h^2 / s^2); smooth fast-decaying laws are exact to ~1e-12.
    tol = {"uniform": 1.01 * h / scale, "triangular": (h / scale) ** 2}.get(name, 1e-9)
    return np.trapezoid(y, x), tol
