"""Opting in to the CPU tuning: :func:`configure` and what it chose.

XLA reads ``XLA_FLAGS`` once, when JAX starts its first backend, so
:func:`configure` must run before the first JAX computation. It returns a
:class:`CpuSetup` that says which engine convolutions run with and which conv
weight gradient suits it; that choice is then handed to the models
(``conv_weight_grad=setup.conv_weight_grad``)::

    from nsnn_jax import cpu, models

    setup = cpu.configure()
    model = models.get_model("vggsnn", conv_weight_grad=setup.conv_weight_grad)

JAX has no public way to ask whether a backend already runs, so a call that
set the flag checks that it took effect: it compiles a tiny convolution on the
CPU and looks for a YNNPACK fusion in the compiled HLO. That starts the JAX
backends; call :func:`configure` after ``jax.distributed.initialize`` or pass
``verify=False`` (the check, and with it the warning of a late call, is then
skipped). A persistent compilation cache set up after the call is still used.
"""

from __future__ import annotations

import os
import warnings
from typing import NamedTuple, Optional

from nsnn_jax.cpu import flags

__all__ = ["CpuSetup", "configure", "convolutions_use_ynnpack", "recommended_weight_grad"]


class CpuSetup(NamedTuple):
    """What :func:`configure` chose.

    Attributes:
      engine: the engine CPU convolutions run with, ``'eigen'`` or
        ``'xla-default'`` (YNNPACK in jaxlib 0.10).
      conv_weight_grad: the conv weight gradient to hand to the models,
        ``'xla'`` or ``'shifted'`` (:func:`recommended_weight_grad`).
      applied: whether this call changed ``XLA_FLAGS`` (and it took effect).
      reason: why the engine is what it is, in words.
    """

    engine: str
    conv_weight_grad: str
    applied: bool
    reason: str


def recommended_weight_grad(engine: str, backend: str = "cpu") -> str:
    """The faster conv weight gradient for an engine on a backend.

    With XLA's default CPU engine (YNNPACK in jaxlib 0.10) XLA's weight gradient
    of a convolution is the slow part, and ``kh * kw`` matrix products
    (``'shifted'``) measured ~2.5x faster; with Eigen convolutions XLA's own is
    the faster one (1.15-1.4x). Accelerators keep XLA's.

    Args:
      engine: ``'eigen'`` or ``'xla-default'``.
      backend: the platform convolutions run on (``jax.default_backend()``).

    Returns:
      ``'shifted'`` on the CPU with ``'xla-default'``, else ``'xla'``.
    """
    flags.parse_engine(engine)
    return "shifted" if backend == "cpu" and engine == "xla-default" else "xla"


def convolutions_use_ynnpack() -> Optional[bool]:
    """Whether XLA compiles a 3x3, 64 -> 128 channel CPU convolution into a YNNPACK fusion.

    Compiling starts the JAX backends (with the ``XLA_FLAGS`` of that moment if
    none was running).

    Returns:
      ``True`` or ``False``; ``None`` when there is no CPU backend
      (``JAX_PLATFORMS`` without ``cpu``).
    """
    import jax
    import jax.numpy as jnp

    try:
        device = jax.devices("cpu")[0]
    except RuntimeError:
        return None
    sharding = jax.sharding.SingleDeviceSharding(device)
    x = jax.ShapeDtypeStruct((2, 8, 8, 64), jnp.float32, sharding=sharding)
    kernel = jax.ShapeDtypeStruct((3, 3, 64, 128), jnp.float32, sharding=sharding)
    compiled = jax.jit(lambda a, b: jax.lax.conv_general_dilated(
        a, b, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))).lower(x, kernel).compile()
    return "ynn_fusion" in compiled.as_text()


def _default_backend() -> str:
    import jax

    return jax.default_backend()


def configure(engine: Optional[str] = None, *, verify: bool = True) -> CpuSetup:
    """Sets the CPU convolution engine in ``XLA_FLAGS``, before JAX starts a backend.

    For ``'eigen'`` it appends :data:`~nsnn_jax.cpu.flags.EIGEN_FLAG` to
    ``XLA_FLAGS``, unless

    * ``XLA_FLAGS`` already sets :data:`~nsnn_jax.cpu.flags.FLAG` (the user's
      choice wins);
    * jaxlib is older than :data:`~nsnn_jax.cpu.flags.MIN_JAXLIB`, the first
      version checked to know the flag (XLA aborts on unknown flags);
    * a JAX backend was already running: XLA read its flags when it started, so
      setting them now changes nothing. ``XLA_FLAGS`` is then put back as it
      was, ``reason`` tells why and, when the CPU is the default backend, a
      ``RuntimeWarning`` says so.

    The flag only concerns the CPU backend; GPU and TPU compilations ignore it.

    Args:
      engine: ``'eigen'`` or ``'xla-default'`` (keep XLA's engine). ``None``
        reads the environment variable ``NSNN_JAX_CPU_CONV`` (default
        ``'eigen'``).
      verify: check, by compiling a tiny convolution, that the flag took effect
        (this starts the JAX backends), and take the backend into account for
        ``conv_weight_grad``. ``False`` starts nothing: a late call then goes
        unnoticed and ``conv_weight_grad`` assumes convolutions run on the CPU.

    Returns:
      A :class:`CpuSetup`.

    Raises:
      ValueError: ``engine`` (or ``NSNN_JAX_CPU_CONV``) is not one of
        :data:`~nsnn_jax.cpu.flags.ENGINES`.
    """
    if engine is None:
        requested = flags.parse_engine(os.environ.get(flags.ENV_VAR), flags.ENV_VAR)
    else:
        requested = flags.parse_engine(engine, "engine")
    xla_flags = os.environ.get("XLA_FLAGS")
    current = xla_flags or ""
    applied = False
    if flags.flag_value(current) is not None:
        reason = f"XLA_FLAGS already sets {flags.FLAG}; it is kept"
    elif requested == "xla-default":
        reason = "XLA's default CPU convolution engine was asked for"
    elif not flags.supports_flag():
        reason = (f"jaxlib is older than {'.'.join(map(str, flags.MIN_JAXLIB))}, which may not know {flags.FLAG}; "
                  f"XLA's default engine is kept")
    else:
        os.environ["XLA_FLAGS"] = f"{current} {flags.EIGEN_FLAG}".strip()
        applied = True
        reason = f"{flags.EIGEN_FLAG} added to XLA_FLAGS"
        if verify and convolutions_use_ynnpack():
            if xla_flags is None:
                del os.environ["XLA_FLAGS"]
            else:
                os.environ["XLA_FLAGS"] = xla_flags
            applied = False
            reason = ("a JAX backend was already running, so XLA had read its flags and CPU convolutions stay on "
                      "XLA's default engine")
            if _default_backend() == "cpu":  # elsewhere convolutions do not run on the CPU: nothing lost
                warnings.warn(
                    f"nsnn_jax.cpu.configure() had no effect: {reason} (measured 2.5-3.5x slower on some layers). "
                    f"Call it before the first JAX computation, or set XLA_FLAGS={flags.EIGEN_FLAG} before "
                    f"starting Python.", RuntimeWarning, stacklevel=2)
        elif not verify:
            reason += " (not verified: takes effect if no JAX backend was running yet)"
    chosen = flags.convolution_engine(os.environ.get("XLA_FLAGS", ""))
    backend = _default_backend() if verify else "cpu"
    return CpuSetup(chosen, recommended_weight_grad(chosen, backend), applied, reason)
