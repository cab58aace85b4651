"""nsnn_jax.cpu: parsing XLA_FLAGS, and, in fresh processes, what importing nsnn_jax and configure() do.

How the weight-gradient choice reaches the convolutions is tested in test_conv.py and test_models.py.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from nsnn_jax import cpu

FLAG = cpu.FLAG


@pytest.mark.parametrize("xla_flags, engine", [
    ("", "xla-default"),
    ("--xla_force_host_platform_device_count=4", "xla-default"),
    (cpu.EIGEN_FLAG, "eigen"),
    (f"--xla_force_host_platform_device_count=4 {cpu.EIGEN_FLAG}", "eigen"),
    (f"{FLAG}=+individual_convolution", "xla-default"),
    (f"{FLAG}=-individual_convolution,+individual_dot", "eigen"),
    (f"{FLAG}=-individual_convolution,+individual_convolution", "xla-default"),
    (f"{FLAG}=individual_dot", "eigen"),
    (f"{FLAG}=", "eigen"),  # an empty list: no YNNPACK fusions at all
    (f"{FLAG}=individual_dot,individual_convolution", "xla-default"),
    (f"{cpu.EIGEN_FLAG} {FLAG}=+individual_convolution", "xla-default"),
    (f"{FLAG}=+individual_convolution {cpu.EIGEN_FLAG}", "eigen"),
])
def test_engine_from_flags(xla_flags, engine):
    assert cpu.convolution_engine(xla_flags) == engine


@pytest.mark.parametrize("version, supported", [
    ("0.10.2", True), ("0.10.3", True), ("0.11.0", True), ("1.0.0", True), ("0.10.2.dev20260101", True),
    ("0.10.1", False), ("0.9.9", False), ("0.4.30", False),
])
def test_supported_jaxlib_versions(version, supported):
    assert cpu.supports_flag(version) is supported


def test_engine_names_are_parsed_and_bad_ones_raise(monkeypatch):
    assert cpu.parse_engine(" Eigen ") == "eigen"
    assert cpu.parse_engine(None) == cpu.parse_engine("") == "eigen"
    assert cpu.parse_engine("XLA-Default") == "xla-default"
    with pytest.raises(ValueError, match="engine must be one of.*'onednn'"):
        cpu.configure("onednn")  # rejected before anything is changed
    monkeypatch.setenv(cpu.ENV_VAR, "fastest")
    with pytest.raises(ValueError, match=f"{cpu.ENV_VAR} must be one of.*'fastest'"):
        cpu.configure()


@pytest.mark.parametrize("engine, backend, weight_grad", [
    ("eigen", "cpu", "xla"), ("xla-default", "cpu", "shifted"), ("xla-default", "gpu", "xla"), ("eigen", "tpu", "xla"),
])
def test_recommended_weight_grad(engine, backend, weight_grad):
    assert cpu.recommended_weight_grad(engine, backend) == weight_grad


# Runs in a fresh process: imports nsnn_jax the way a user does, then (for every mode but
# "import") calls cpu.configure(), compiles a 64 -> 128 channel convolution and reports.
_PROBE = textwrap.dedent("""
    import json, os, sys, warnings
    warnings.simplefilter("always")
    mode = sys.argv[1]
    import jax, jax.numpy as jnp
    if mode == "late":
        jnp.ones(2).block_until_ready()  # a backend starts before configure()
    before = dict(os.environ)
    import nsnn_jax
    report = {"environ_unchanged": dict(os.environ) == before}
    if mode == "import":
        # Had the import started a backend, XLA would have read its flags already.
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=3"
    else:
        with warnings.catch_warnings(record=True) as caught:
            setup = nsnn_jax.cpu.configure(*sys.argv[2:])
        report["setup"] = setup._asdict()
        report["warnings"] = [str(w.message) for w in caught if w.category is RuntimeWarning]
    report["devices"] = jax.device_count()
    report["ynn"] = nsnn_jax.cpu.convolutions_use_ynnpack()
    report["xla_flags"] = os.environ.get("XLA_FLAGS", "")
    print(json.dumps(report))
""")


def probe(extra_env, mode, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", cpu.ENV_VAR)}
    env.update(extra_env, JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", _PROBE, mode, *args], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


needs_flag = pytest.mark.skipif(not cpu.supports_flag(), reason="jaxlib too old for the YNN fusion flag")


def test_import_changes_nothing_and_starts_no_backend():
    report = probe({}, "import")
    assert report["environ_unchanged"]
    assert report["devices"] == 3  # flags set after the import were still read: no backend had started
    assert report["xla_flags"] == "--xla_force_host_platform_device_count=3"
    if cpu.supports_flag():
        assert report["ynn"]  # jaxlib 0.10's default engine for this convolution: nothing was configured


@needs_flag
def test_configure_moves_convolutions_to_eigen():
    report = probe({"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}, "configure")
    assert report["environ_unchanged"]
    setup = report["setup"]
    assert setup["engine"] == "eigen" and setup["conv_weight_grad"] == "xla" and setup["applied"]
    assert cpu.EIGEN_FLAG in setup["reason"]
    assert not report["ynn"]
    # the user's flags are kept
    assert report["xla_flags"].split() == ["--xla_force_host_platform_device_count=2", cpu.EIGEN_FLAG]
    assert report["devices"] == 2
    assert report["warnings"] == []


@needs_flag
@pytest.mark.parametrize("how", ["environment", "argument"])
def test_opting_out_keeps_xla_default(how):
    if how == "environment":
        report = probe({cpu.ENV_VAR: "xla-default"}, "configure")
    else:
        report = probe({}, "configure", "xla-default")
    setup = report["setup"]
    assert setup["engine"] == "xla-default" and setup["conv_weight_grad"] == "shifted" and not setup["applied"]
    assert "default" in setup["reason"]
    assert report["ynn"]
    assert FLAG not in report["xla_flags"]


@needs_flag
def test_user_flag_wins():
    flags = f"{FLAG}=+individual_convolution"
    report = probe({"XLA_FLAGS": flags}, "configure")
    assert report["xla_flags"] == flags
    setup = report["setup"]
    assert setup["engine"] == "xla-default" and setup["conv_weight_grad"] == "shifted" and not setup["applied"]
    assert "already sets" in setup["reason"]
    assert report["ynn"]


@needs_flag
def test_late_configure_warns_and_changes_nothing():
    report = probe({}, "late")
    setup = report["setup"]
    assert not setup["applied"] and "already running" in setup["reason"]
    assert setup["engine"] == "xla-default" and setup["conv_weight_grad"] == "shifted"
    assert report["ynn"]
    assert report["xla_flags"] == ""  # put back as it was
    assert len(report["warnings"]) == 1 and "had no effect" in report["warnings"][0]
    assert "already running" in report["warnings"][0]


_CACHE_AFTER_CONFIGURE = textwrap.dedent("""
    import os, sys
    import jax, jax.numpy as jnp
    import nsnn_jax
    nsnn_jax.cpu.configure()  # compiles its probe before any cache folder is set
    jax.config.update("jax_compilation_cache_dir", sys.argv[1])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.jit(lambda x: jnp.sin(x) * 3.0 + 1.0)(jnp.ones(5)).block_until_ready()
    print(len(os.listdir(sys.argv[1])))
""")


def test_a_compilation_cache_set_up_after_configure_is_used(tmp_path):
    folder = tmp_path / "xla"
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", cpu.ENV_VAR)}
    done = subprocess.run([sys.executable, "-c", _CACHE_AFTER_CONFIGURE, str(folder)], capture_output=True,
                          text=True, timeout=300, env={**env, "JAX_PLATFORMS": "cpu"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip().splitlines()[-1]) > 0
