"""The CPU convolution engine: parsing XLA_FLAGS, and what importing nsnn_jax does in a fresh process.

How ``conv``'s ``'auto'`` weight gradient follows the engine is tested in test_conv.py.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from nsnn_jax import xla_cpu

FLAG = xla_cpu.FLAG


@pytest.mark.parametrize("xla_flags, engine", [
    ("", "xla-default"),
    ("--xla_force_host_platform_device_count=4", "xla-default"),
    (xla_cpu.EIGEN_FLAG, "eigen"),
    (f"--xla_force_host_platform_device_count=4 {xla_cpu.EIGEN_FLAG}", "eigen"),
    (f"{FLAG}=+individual_convolution", "xla-default"),
    (f"{FLAG}=-individual_convolution,+individual_dot", "eigen"),
    (f"{FLAG}=-individual_convolution,+individual_convolution", "xla-default"),
    (f"{FLAG}=individual_dot", "eigen"),
    (f"{FLAG}=", "eigen"),  # an empty list: no YNNPACK fusions at all
    (f"{FLAG}=individual_dot,individual_convolution", "xla-default"),
    (f"{xla_cpu.EIGEN_FLAG} {FLAG}=+individual_convolution", "xla-default"),
    (f"{FLAG}=+individual_convolution {xla_cpu.EIGEN_FLAG}", "eigen"),
])
def test_engine_from_flags(xla_flags, engine):
    assert xla_cpu.convolution_engine(xla_flags) == engine


@pytest.mark.parametrize("version, supported", [
    ("0.10.2", True), ("0.10.3", True), ("0.11.0", True), ("1.0.0", True), ("0.10.2.dev20260101", True),
    ("0.10.1", False), ("0.9.9", False), ("0.4.30", False),
])
def test_supported_jaxlib_versions(version, supported):
    assert xla_cpu.supports_flag(version) is supported


def test_bad_engine_request_raises(monkeypatch):
    monkeypatch.setenv(xla_cpu.ENV_VAR, "onednn")
    with pytest.raises(ValueError, match=xla_cpu.ENV_VAR):
        xla_cpu.requested_engine()
    monkeypatch.setenv(xla_cpu.ENV_VAR, " Eigen ")
    assert xla_cpu.requested_engine() == "eigen"


# Imports nsnn_jax the way a user does, compiles a 64 -> 128 channel convolution and
# reports what XLA compiled it to.
_PROBE = textwrap.dedent("""
    import json, os, sys, warnings
    warnings.simplefilter("always")
    import jax, jax.numpy as jnp
    if sys.argv[1] == "late":
        jnp.ones(2).block_until_ready()  # a backend starts before nsnn_jax is imported
    with warnings.catch_warnings(record=True) as caught:
        import nsnn_jax
    from nsnn_jax import xla_cpu
    spec = jax.ShapeDtypeStruct((2, 8, 8, 64), jnp.float32), jax.ShapeDtypeStruct((3, 3, 64, 128), jnp.float32)
    hlo = jax.jit(lambda x, k: jax.lax.conv_general_dilated(
        x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))).lower(*spec).compile().as_text()
    print(json.dumps({"engine": xla_cpu.convolution_engine(), "ynn": "ynn_fusion" in hlo,
                      "xla_flags": os.environ.get("XLA_FLAGS", ""),
                      "warnings": [str(w.message) for w in caught if w.category is RuntimeWarning]}))
""")


def probe(extra_env, when="early"):
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", xla_cpu.ENV_VAR)}
    env.update(extra_env, JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-c", _PROBE, when], env=env, capture_output=True, text=True,
                          timeout=300)


def probe_json(extra_env, when="early"):
    done = probe(extra_env, when)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


needs_flag = pytest.mark.skipif(not xla_cpu.supports_flag(), reason="jaxlib too old for the YNN fusion flag")


@needs_flag
def test_import_moves_convolutions_to_eigen():
    report = probe_json({"XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert report["engine"] == "eigen"
    assert not report["ynn"]
    # the user's flags are kept
    assert report["xla_flags"].split() == ["--xla_force_host_platform_device_count=2", xla_cpu.EIGEN_FLAG]
    assert report["warnings"] == []


@needs_flag
def test_opting_out_keeps_xla_default():
    report = probe_json({xla_cpu.ENV_VAR: "xla-default"})
    assert report["engine"] == "xla-default"
    assert report["ynn"]  # jaxlib 0.10's default engine for this convolution
    assert xla_cpu.FLAG not in report["xla_flags"]


@needs_flag
def test_user_flag_wins():
    flags = f"{FLAG}=+individual_convolution"
    report = probe_json({"XLA_FLAGS": flags})
    assert report["xla_flags"] == flags
    assert report["engine"] == "xla-default"
    assert report["ynn"]


@needs_flag
def test_late_import_warns_and_changes_nothing():
    report = probe_json({}, when="late")
    assert report["engine"] == "xla-default"
    assert report["ynn"]
    assert report["xla_flags"] == ""
    assert len(report["warnings"]) == 1 and "already running" in report["warnings"][0]


def test_bad_engine_request_fails_the_import():
    done = probe({xla_cpu.ENV_VAR: "fastest"})
    assert done.returncode != 0
    assert f"{xla_cpu.ENV_VAR} must be one of" in done.stderr
