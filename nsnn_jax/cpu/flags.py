"""The XLA flag that picks the engine of CPU convolutions, and how to read it.

jaxlib 0.10 hands CPU convolutions to YNNPACK (an ``__ynn_fusion`` in the
compiled HLO). On a 2-core x86 machine with AVX-512, YNNPACK ran the 3x3
convolutions with 64 -> 128 and 128 -> 64 channels on one thread (cpu/wall
1.00, ~45 GFLOP/s at 32x32, B = 128). XLA's own Eigen convolution ran the same
ones on both cores (~160 GFLOP/s), 2.5-3.5x faster. :data:`EIGEN_FLAG` takes
convolutions out of the YNNPACK fusions (they go back to Eigen; matrix products
stay with YNNPACK, which was as fast or faster for them).

This module only parses flag strings; nothing here changes the process.
:func:`nsnn_jax.cpu.configure` is what sets the flag.
"""

from __future__ import annotations

import os
import re
from typing import Optional

__all__ = ["ENGINES", "ENV_VAR", "EIGEN_FLAG", "FLAG", "MIN_JAXLIB", "convolution_engine", "flag_value",
           "parse_engine", "supports_flag"]

ENV_VAR = "NSNN_JAX_CPU_CONV"
ENGINES = ("eigen", "xla-default")
FLAG = "--xla_cpu_experimental_ynn_fusion_type"
_CONVOLUTION_FUSION = "individual_convolution"
EIGEN_FLAG = f"{FLAG}=-{_CONVOLUTION_FUSION}"
MIN_JAXLIB = (0, 10, 2)


def parse_engine(value: Optional[str], what: str = "engine") -> str:
    """``value`` as one of :data:`ENGINES` (case and spaces ignored; empty or ``None`` is ``'eigen'``).

    Args:
      value: the requested engine.
      what: how to name ``value`` in the error (an argument or a variable).

    Raises:
      ValueError: ``value`` is something other than :data:`ENGINES`.
    """
    engine = (value or "").strip().lower() or "eigen"
    if engine not in ENGINES:
        raise ValueError(f"{what} must be one of {ENGINES}, got {value!r}.")
    return engine


def supports_flag(jaxlib_version: Optional[str] = None) -> bool:
    """Whether ``jaxlib_version`` (default: the installed jaxlib) is at least :data:`MIN_JAXLIB`.

    Older XLAs abort on the unknown :data:`FLAG`.
    """
    if jaxlib_version is None:
        import jaxlib

        jaxlib_version = jaxlib.__version__
    numbers = tuple(int(part) for part in re.findall(r"\d+", jaxlib_version)[:3])
    return numbers >= MIN_JAXLIB


def flag_value(xla_flags: str) -> Optional[str]:
    """The value of the last ``FLAG=...`` in ``xla_flags``, or ``None`` when it is not set."""
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
    value = flag_value(xla_flags)
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
