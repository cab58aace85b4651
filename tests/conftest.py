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

import functools  # noqa: E402
import http.server  # noqa: E402
import threading  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402

import nsnn_jax  # noqa: E402

# XLA's CPU convolution engine, before any test starts a backend (the commands and benchmarks do the same).
CPU_SETUP = nsnn_jax.cpu.configure()


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


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """Serves tmp_path/served on 127.0.0.1; yields (base URL, served folder)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    served = tmp_path / "served"
    served.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", served
    httpd.shutdown()
    httpd.server_close()
