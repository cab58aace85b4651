"""Shared test fixtures: tiny datasets in the real file formats."""

import functools
import os

import jax
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
