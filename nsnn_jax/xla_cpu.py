"""Which engine XLA's CPU backend runs convolutions with.

jaxlib 0.10 hands CPU convolutions to YNNPACK (an ``__ynn_fusion`` in the
compiled HLO). On a 2-core x86 machine with AVX-512, YNNPACK ran the 3x3
convolutions with 64 -> 128 and 128 -> 64 channels on one thread (cpu/wall
1.00, ~45 GFLOP/s at 32x32, B = 128). XLA's own Eigen convolution ran the same
ones on both cores (~160 GFLOP/s), 2.5-3.5x faster. With Eigen, XLA's weight
gradient also beats the per-tap matrix products of :mod:`nsnn_jax.conv`, so
:func:`nsnn_jax.conv.resolve_weight_grad` picks XLA's then.

Importing :mod:`nsnn_jax` calls :func:`configure`, which adds
``--xla_cpu_experimental_ynn_fusion_type=-individual_convolution`` to the
``XLA_FLAGS`` environment variable (convolutions go back to Eigen; matrix
products stay with YNNPACK, which was as fast or faster for them). XLA reads
``XLA_FLAGS`` once, when JAX starts its first backend, so the flag only takes
effect when :mod:`nsnn_jax` is imported before the first computation. It is
not added when:

* ``NSNN_JAX_CPU_CONV=xla-default`` is set (keep XLA's default engine);
* ``XLA_FLAGS`` already sets ``--xla_cpu_experimental_ynn_fusion_type``
  (the user's choice wins);
* jaxlib is older than :data:`MIN_JAXLIB`, the first version checked to know
  the flag (XLA aborts on unknown flags);
* a JAX backend is already running (a warning says so when it is the CPU).

The flag only concerns the CPU backend; GPU and TPU compilations ignore it.
"""

from __future__ import annotations

import os
import re
import warnings
from typing import Optional

__all__ = ["ENGINES", "ENV_VAR", "EIGEN_FLAG", "FLAG", "MIN_JAXLIB", "configure", "convolution_engine",
           "requested_engine", "supports_flag"]

ENV_VAR = "NSNN_JAX_CPU_CONV"
ENGINES = ("eigen", "xla-default")
FLAG = "--xla_cpu_experimental_ynn_fusion_type"
_CONVOLUTION_FUSION = "individual_convolution"
EIGEN_FLAG = f"{FLAG}=-{_CONVOLUTION_FUSION}"
MIN_JAXLIB = (0, 10, 2)


def requested_engine() -> str:
    """The engine asked for by ``NSNN_JAX_CPU_CONV`` (default ``'eigen'``).

    Raises:
      ValueError: the variable holds something other than :data:`ENGINES`.
    """
    value = os.environ.get(ENV_VAR, "eigen").strip().lower() or "eigen"
    if value not in ENGINES:
        raise ValueError(f"{ENV_VAR} must be one of {ENGINES}, got {value!r}.")
    return value


def supports_flag(jaxlib_version: Optional[str] = None) -> bool:
    """Whether ``jaxlib_version`` (default: the installed jaxlib) is at least :data:`MIN_JAXLIB`."""
    if jaxlib_version is None:
        import jaxlib

        jaxlib_version = jaxlib.__version__
    numbers = tuple(int(part) for part in re.findall(r"\d+", jaxlib_version)[:3])
    return numbers >= MIN_JAXLIB


def _flag_value(xla_flags: str) -> Optional[str]:
    """The value of the last ``FLAG=...`` in ``xla_flags``, or ``None``."""
    value = None
    for token in xla_flags.split():
        if token.startswith(FLAG + "="):
            value = token[len(FLAG) + 1:].strip("'\"")
    return value


def convolution_engine(xla_flags: Optional[str] = None) -> str:
    """The CPU convolution engine that ``xla_flags`` selects.

    Args:
      xla_flags: an ``XLA_FLAGS`` string (default: the environment's).

    Returns:
      ``'eigen'`` when the flag takes ``individual_convolution`` out of the
      YNNPACK fusions (``-individual_convolution``, or an explicit list without
      it), else ``'xla-default'``.
    """
    if xla_flags is None:
        xla_flags = os.environ.get("XLA_FLAGS", "")
    value = _flag_value(xla_flags)
    if value is None:
        return "xla-default"
    items = [item for item in value.split(",") if item]
    if items and all(item[0] in "+-" for item in items):
        # Edits of the default list: the last edit of convolutions wins.
        removed = False
        for item in items:
            if item[1:] == _CONVOLUTION_FUSION:
                removed = item[0] == "-"
        return "eigen" if removed else "xla-default"
    return "xla-default" if _CONVOLUTION_FUSION in items else "eigen"


def _backends_started() -> bool:
    try:
        from jax._src import xla_bridge
    except ImportError:  # pragma: no cover - a JAX without the private module
        return False
    started = getattr(xla_bridge, "backends_are_initialized", None)
    return bool(started()) if started is not None else False


def configure() -> str:
    """Adds :data:`EIGEN_FLAG` to ``XLA_FLAGS`` where it applies (see the module docstring).

    Returns:
      The engine convolutions will run with: :func:`convolution_engine` of
      ``XLA_FLAGS`` after the call, or of the flags already in force when a
      backend was running.
    """
    requested = requested_engine()
    xla_flags = os.environ.get("XLA_FLAGS", "")
    if requested != "eigen" or _flag_value(xla_flags) is not None or not supports_flag():
        return convolution_engine(xla_flags)
    if _backends_started():
        import jax

        if jax.default_backend() == "cpu":
            warnings.warn(
                f"A JAX backend was already running when nsnn_jax was imported, so CPU convolutions stay on "
                f"XLA's default engine, which was measured 2.5-3.5x slower on some layers. Import nsnn_jax "
                f"before the first JAX computation, or set XLA_FLAGS={EIGEN_FLAG} (or {ENV_VAR}=xla-default "
                f"to silence this).", RuntimeWarning, stacklevel=3)
        return convolution_engine(xla_flags)
    os.environ["XLA_FLAGS"] = f"{xla_flags} {EIGEN_FLAG}".strip()
    return "eigen"
