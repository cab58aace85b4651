"""Test configuration: CPU, strict dtype promotion around the library code.

Strict promotion catches silent float64/int promotions in our code. optax's
Adam is not strict-clean, so tests that run an optimizer are marked
``standard_promotion``.
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Commands turn on JAX's persistent compilation cache: keep the tests' entries out of the user's cache.
if "NSNN_JAX_COMPILE_CACHE" not in os.environ:
    import tempfile

    os.environ["NSNN_JAX_COMPILE_CACHE"] = tempfile.mkdtemp(prefix="nsnn_jax_xla_")

import jax  # noqa: E402
import pytest  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "standard_promotion: run without strict dtype promotion (optax)")
    config.addinivalue_line("markers", "slow: end-to-end runs of a command")


@pytest.fixture(autouse=True)
def strict_dtype_promotion(request):
    if request.node.get_closest_marker("standard_promotion"):
        yield
        return
    with jax.numpy_dtype_promotion("strict"):
        yield


@pytest.fixture
def key():
    return jax.random.key(0)


@pytest.fixture(scope="module")
def fast_compilation():
    """XLA without most optimisations, for modules whose graphs run in milliseconds but compile for seconds."""
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)
