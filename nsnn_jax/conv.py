"""2-D convolution with a faster weight gradient on CPU.

With its default CPU convolution engine (YNNPACK in jaxlib 0.10), XLA computes
the weight gradient of ``lax.conv_general_dilated`` (NHWC input, HWIO kernel)
several times more slowly than the same number of flops spent in plain matrix
products. :func:`conv2d` is the same convolution with a
custom VJP: the input gradient is still XLA's own transpose of the convolution,
and the weight gradient is either XLA's (``'xla'``) or ``kh * kw`` matrix
products, one per kernel tap (``'shifted'``)::

    dW[i, j] = sum_{b, h, w} x_pad[b, h * sh + i, w * sw + j, :]^T  g[b, h, w, :]

a ``(C_in, C_out)`` product contracting over the batch and output positions
(for fewer than 16 input channels, where those products are too thin to run
well, one im2col product over all taps instead). On two CPU cores this weight
gradient measured ~2.5x faster than that engine's, and a whole forward +
backward of a 3x3 conv layer with 64 or more channels 1.4-1.8x faster. With
XLA's Eigen convolutions (:func:`nsnn_jax.cpu.configure`) XLA's own weight
gradient is the faster one (1.15-1.4x).

The weight gradient is an explicit argument (``weight_grad`` of :func:`conv2d`
and of :class:`Conv`, ``conv_weight_grad`` of the models), ``'xla'`` by
default; :func:`nsnn_jax.cpu.configure` returns the one that suits the engine
it set. Nothing is read from the environment. ``'taps'`` and ``'im2col'``
(:data:`MATMUL_FORMULATIONS`) force one of the two formulations ``'shifted'``
chooses between, for benchmarks.

:class:`Conv` is a Flax module with the parameters of ``flax.linen.Conv`` (names,
shapes, initialisers), so it replaces ``nn.Conv`` without changing checkpoints.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["Conv", "MATMUL_FORMULATIONS", "WEIGHT_GRAD_MODES", "conv2d", "explicit_padding",
           "check_weight_grad"]

WEIGHT_GRAD_MODES = ("xla", "shifted")
MATMUL_FORMULATIONS = ("taps", "im2col")
_DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")

Padding = Union[str, int, Sequence[Union[int, tuple[int, int]]]]
Pairs = tuple[tuple[int, int], tuple[int, int]]


def check_weight_grad(weight_grad: str, what: str = "weight_grad") -> str:
    """Returns ``weight_grad`` if it is one of :data:`WEIGHT_GRAD_MODES` or :data:`MATMUL_FORMULATIONS`.

    Raises:
      ValueError: anything else, naming ``what`` and the valid values.
    """
    if weight_grad not in WEIGHT_GRAD_MODES + MATMUL_FORMULATIONS:
        raise ValueError(f"{what} must be one of {WEIGHT_GRAD_MODES} (or {MATMUL_FORMULATIONS} to force one "
                         f"formulation of 'shifted'), got {weight_grad!r}.")
    return weight_grad


def _pair(value: Union[int, Sequence[int]], what: str) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        return (int(value), int(value))
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f"{what} must be an int or a pair, got {value!r}.")
    return value


def explicit_padding(padding: Padding, in_hw: Sequence[int], kernel_hw: Sequence[int],
                     strides: Sequence[int]) -> Pairs:
    """Explicit ``((top, bottom), (left, right))`` padding, as XLA pads ``'SAME'``/``'VALID'``.

    ``'SAME'`` gives an output of ``ceil(in / stride)`` and puts the odd pixel
    of the total padding at the bottom/right (so for stride 2 on an even
    input, a 3x3 kernel pads ``(0, 1)``), like ``lax.padtype_to_pads``.

    Args:
      padding: ``'SAME'``, ``'VALID'``, an int (both sides of both axes), a pair
        of ints (per axis, both sides) or a pair of ``(low, high)`` pairs.
      in_hw: input height and width.
      kernel_hw: kernel height and width.
      strides: vertical and horizontal stride.

    Returns:
      ``((top, bottom), (left, right))`` as Python ints.
    """
    if isinstance(padding, str):
        kind = padding.upper()
        if kind == "VALID":
            return ((0, 0), (0, 0))
        if kind != "SAME":
            raise ValueError(f"padding must be 'SAME', 'VALID' or explicit, got {padding!r}.")
        pairs = []
        for size, k, s in zip(in_hw, kernel_hw, strides):
            out = -(-size // s)
            total = max((out - 1) * s + k - size, 0)
            pairs.append((total // 2, total - total // 2))
        return tuple(pairs)
    if isinstance(padding, (int, np.integer)):
        return ((int(padding),) * 2,) * 2
    padding = tuple(padding)
    if len(padding) != 2:
        raise ValueError(f"padding needs one entry per spatial axis (2), got {padding!r}.")
    return tuple(_pair(p, "padding entry") for p in padding)


# Weight gradients. x: (B, H, W, C_in); g: (B, H_out, W_out, C_out);
# result: (kh, kw, C_in, C_out) in float32.

def _tap_views(x: jax.Array, out_hw: Sequence[int], kernel_hw: Sequence[int], strides: Sequence[int],
               padding: Pairs):
    """Yields, per kernel tap ``(i, j)`` in row-major order, the ``(B, H_out, W_out, C_in)``
    input pixels that tap multiplies."""
    (pt, pb), (pl, pr) = padding
    zero = jnp.zeros((), x.dtype)
    # Negative padding crops, as in lax.conv.
    xp = lax.pad(x, zero, ((0, 0, 0), (pt, pb, 0), (pl, pr, 0), (0, 0, 0)))
    (ho, wo), (sh, sw) = out_hw, strides
    for i in range(kernel_hw[0]):
        for j in range(kernel_hw[1]):
            yield lax.slice(xp, (0, i, j, 0), (xp.shape[0], i + (ho - 1) * sh + 1, j + (wo - 1) * sw + 1, xp.shape[3]),
                            (1, sh, sw, 1))


# Contracting over one flattened (B * H_out * W_out) axis: XLA's CPU backend
# runs that as a single GEMM, while contracting over the three axes (B, H, W)
# directly was measured about twice as slow.
_CONTRACT_ROWS = (((0,), (0,)), ((), ()))


def _rows(a: jax.Array) -> jax.Array:
    return a.reshape(-1, a.shape[-1])


def _weight_grad_shifted(x: jax.Array, g: jax.Array, kernel_hw: Sequence[int], strides: Sequence[int],
                         padding: Pairs) -> jax.Array:
    """One ``(C_in, C_out)`` product per tap, accumulated in float32."""
    g_rows = _rows(g)
    taps = [lax.dot_general(_rows(view), g_rows, _CONTRACT_ROWS, preferred_element_type=jnp.float32)
            for view in _tap_views(x, g.shape[1:3], kernel_hw, strides, padding)]
    return jnp.stack(taps).reshape(tuple(kernel_hw) + taps[0].shape)


def _weight_grad_im2col(x: jax.Array, g: jax.Array, kernel_hw: Sequence[int], strides: Sequence[int],
                        padding: Pairs) -> jax.Array:
    """One ``(kh * kw * C_in, C_out)`` product over the patches, accumulated in float32."""
    patches = jnp.concatenate(list(_tap_views(x, g.shape[1:3], kernel_hw, strides, padding)), axis=-1)
    dw = lax.dot_general(_rows(patches), _rows(g), _CONTRACT_ROWS, preferred_element_type=jnp.float32)
    return dw.reshape(tuple(kernel_hw) + (x.shape[-1], g.shape[-1]))


# Below this many input channels the per-tap products are too thin to run
# well (3 -> 64 channels: im2col measured ~1.8x faster than per-tap), and the
# patches, kh * kw * C_in values per output pixel, stay small.
_IM2COL_BELOW_CHANNELS = 16


def _weight_grad_matmul(x: jax.Array, g: jax.Array, kernel_hw: Sequence[int], strides: Sequence[int],
                        padding: Pairs) -> jax.Array:
    """The ``'shifted'`` weight gradient: im2col for few input channels, else one product per tap."""
    if g.size == 0:  # no output pixels (kernel larger than the padded input): no tap views to slice
        return jnp.zeros(tuple(kernel_hw) + (x.shape[-1], g.shape[-1]), jnp.float32)
    if x.shape[-1] < _IM2COL_BELOW_CHANNELS:
        return _weight_grad_im2col(x, g, kernel_hw, strides, padding)
    return _weight_grad_shifted(x, g, kernel_hw, strides, padding)


_MATMUL_WEIGHT_GRADS = {"shifted": _weight_grad_matmul, "taps": _weight_grad_shifted, "im2col": _weight_grad_im2col}


def _forward(x: jax.Array, kernel: jax.Array, strides: tuple[int, int], padding: Pairs) -> jax.Array:
    return lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=_DIMENSION_NUMBERS)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv(x, kernel, strides, padding, mode):
    return _forward(x, kernel, strides, padding)


def _conv_fwd(x, kernel, strides, padding, mode):
    return _forward(x, kernel, strides, padding), (x, kernel)


def _conv_bwd(strides, padding, mode, residuals, g):
    x, kernel = residuals
    # linear_transpose only traces the forward, so nothing is recomputed even outside jit.
    x_spec = jax.ShapeDtypeStruct(x.shape, x.dtype)
    (dx,) = jax.linear_transpose(lambda x_: _forward(x_, kernel, strides, padding), x_spec)(g)
    if mode == "xla":
        k_spec = jax.ShapeDtypeStruct(kernel.shape, kernel.dtype)
        (dk,) = jax.linear_transpose(lambda k_: _forward(x, k_, strides, padding), k_spec)(g)
    else:
        dk = _MATMUL_WEIGHT_GRADS[mode](x, g, kernel.shape[:2], strides, padding).astype(kernel.dtype)
    return dx, dk


_conv.defvjp(_conv_fwd, _conv_bwd)


def conv2d(x: jax.Array, kernel: jax.Array, strides: Union[int, Sequence[int]] = (1, 1),
           padding: Padding = "SAME", weight_grad: str = "xla", *,
           lhs_dilation: Any = None, rhs_dilation: Any = None, feature_group_count: int = 1) -> jax.Array:
    """``lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=('NHWC', 'HWIO', 'NHWC'))``.

    Same forward values; the gradient w.r.t. ``x`` is XLA's, the gradient
    w.r.t. ``kernel`` is chosen by ``weight_grad`` (see the module docstring).
    float32 and bfloat16 are supported; the matmul weight gradient accumulates
    in float32 and returns ``kernel.dtype``.

    Args:
      x: input ``(B, H, W, C_in)``.
      kernel: ``(kh, kw, C_in, C_out)``, same dtype as ``x``.
      strides: an int or ``(sh, sw)``.
      padding: ``'SAME'``, ``'VALID'``, an int, a pair of ints or
        ``((top, bottom), (left, right))``; strings are turned into explicit
        pairs as XLA does (:func:`explicit_padding`).
      weight_grad: ``'xla'`` (XLA's transpose of the convolution, default) or
        ``'shifted'`` (matrix products); ``'taps'`` or ``'im2col'`` force one
        formulation of ``'shifted'``.
      lhs_dilation, rhs_dilation, feature_group_count: not supported; anything
        but the defaults raises ``ValueError``.

    Returns:
      ``(B, H_out, W_out, C_out)`` in ``x``'s dtype.
    """
    for name, dilation in (("lhs_dilation", lhs_dilation), ("rhs_dilation", rhs_dilation)):
        if dilation is not None and _pair(dilation, name) != (1, 1):
            raise ValueError(f"conv2d does not support {name}, got {dilation!r}.")
    if feature_group_count != 1:
        raise ValueError(f"conv2d does not support feature_group_count, got {feature_group_count!r}.")
    if x.ndim != 4 or kernel.ndim != 4:
        raise ValueError(f"conv2d needs x (B, H, W, C) and kernel (kh, kw, C_in, C_out), got shapes "
                         f"{x.shape} and {kernel.shape}.")
    if x.shape[-1] != kernel.shape[2]:
        raise ValueError(f"x has {x.shape[-1]} channels but the kernel expects {kernel.shape[2]}.")
    strides = _pair(strides, "strides")
    pairs = explicit_padding(padding, x.shape[1:3], kernel.shape[:2], strides)
    return _conv(x, kernel, strides, pairs, check_weight_grad(weight_grad))


class Conv(nn.Module):
    """A 2-D ``flax.linen.Conv`` (NHWC, HWIO) that computes with :func:`conv2d`.

    The parameters are those of ``nn.Conv`` with the same settings (``kernel``
    ``(kh, kw, C_in, features)`` initialised with ``lecun_normal``, ``bias``
    ``(features,)`` zeros), drawn identically from the same key, so either
    module loads the other's checkpoints.

    Attributes:
      features: output channels.
      kernel_size: ``(kh, kw)``; an int means a square kernel.
      strides: an int or ``(sh, sw)``.
      padding: as for :func:`conv2d` (default ``'SAME'``, like ``nn.Conv``).
      use_bias: add a bias.
      dtype: computation dtype (``None``: from the inputs and parameters, as ``nn.Conv``).
      param_dtype: parameter dtype.
      kernel_init: kernel initialiser.
      bias_init: bias initialiser.
      weight_grad: ``'xla'`` (default) or ``'shifted'`` (see :func:`conv2d`).
    """

    features: int
    kernel_size: Union[int, Sequence[int]]
    strides: Union[int, Sequence[int]] = 1
    padding: Padding = "SAME"
    use_bias: bool = True
    dtype: Optional[Any] = None
    param_dtype: Any = jnp.float32
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros_init()
    weight_grad: str = "xla"

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        """Args: inputs ``(..., H, W, C_in)``; leading axes are flattened into the batch.

        Returns: ``(..., H_out, W_out, features)``.
        """
        if inputs.ndim < 3:
            raise ValueError(f"Conv needs inputs (..., H, W, C), got shape {inputs.shape}.")
        kernel_hw = _pair(self.kernel_size, "kernel_size")
        batch_shape = inputs.shape[:-3]
        x = inputs.reshape((-1,) + inputs.shape[-3:])
        kernel = self.param("kernel", self.kernel_init, kernel_hw + (x.shape[-1], self.features), self.param_dtype)
        bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
        x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
        y = conv2d(x, kernel, self.strides, self.padding, self.weight_grad)
        if bias is not None:
            y = y + bias
        return y.reshape(batch_shape + y.shape[1:])
