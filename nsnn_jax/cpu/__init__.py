"""Opt-in CPU tuning: the XLA convolution engine and the conv weight gradient that suits it.

Importing :mod:`nsnn_jax` changes nothing in the process. A program that runs
convolutions on the CPU calls :func:`configure` first, before any JAX
computation, and hands ``setup.conv_weight_grad`` to the models it builds::

    from nsnn_jax import cpu, models

    setup = cpu.configure()   # CpuSetup(engine='eigen', conv_weight_grad='xla', applied=True, reason=...)
    model = models.get_model("resnet18", conv_weight_grad=setup.conv_weight_grad)
"""

from nsnn_jax.cpu.engine import CpuSetup, configure, convolutions_use_ynnpack, recommended_weight_grad
from nsnn_jax.cpu.flags import (
    EIGEN_FLAG,
    ENGINES,
    ENV_VAR,
    FLAG,
    MIN_JAXLIB,
    convolution_engine,
    flag_value,
    parse_engine,
    supports_flag,
)

__all__ = ["CpuSetup", "EIGEN_FLAG", "ENGINES", "ENV_VAR", "FLAG", "MIN_JAXLIB", "configure", "convolution_engine",
           "convolutions_use_ynnpack", "flag_value", "parse_engine", "recommended_weight_grad", "supports_flag"]
