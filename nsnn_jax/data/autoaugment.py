"""AutoAugment in pure JAX: the operations on 8-bit images and the CIFAR-10 policy.

Every function here is jittable and vmappable, and all randomness comes from
explicit ``jax.random`` keys. The operations take and return ``uint8`` images
of shape ``(H, W, 3)``, because they are defined on 8-bit pixels (look-up
tables, truncation, clipping). :func:`autoaugment` applies one random
sub-policy of a policy; :func:`nsnn_jax.data.augment.augment_batch` runs it
after the random crop and flip.

AutoAugment operations follow Pillow, which the reference implementations
apply to ``PIL.Image`` objects:

* The policy, its magnitude bins and the random signs are those of the widely
  used PyTorch ``CIFAR10Policy`` (DeepVoltaire/AutoAugment), which reproduces
  Cubuk et al., "AutoAugment: Learning Augmentation Policies from Data"
  (CVPR 2019). torchvision's ``AutoAugmentPolicy.CIFAR10`` has the same 25
  sub-policies and bins but differs in details: solarize thresholds 255..0
  (here 256..0), translations truncated to whole pixels, black fill.
* Geometric operations resample with nearest neighbour (torchvision's default;
  DeepVoltaire uses bicubic for the shears) and fill uncovered pixels with
  grey :data:`FILL` = 128 (DeepVoltaire's ``fillcolor``).
* Each operation takes the value Pillow takes (enhancement factor, angle in
  degrees, shear level, offset in pixels, bits, threshold), as a float scalar
  that may be traced. Values are used at float32 precision, which Pillow also
  uses for ``Image.blend``; the geometric operations reproduce Pillow's 16.16
  fixed-point affine sampler, so only :func:`rotate` (whose cosine and sine are
  float32 here and double in Pillow) can differ from Pillow, on rare pixels.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = [
    "FILL",
    "OPS",
    "OP_NAMES",
    "CIFAR10_POLICY",
    "MAGNITUDE_RANGES",
    "SIGNED_OPS",
    "invert",
    "contrast",
    "rotate",
    "translate_x",
    "translate_y",
    "sharpness",
    "shear_x",
    "shear_y",
    "auto_contrast",
    "equalize",
    "solarize",
    "color",
    "posterize",
    "brightness",
    "op_magnitude",
    "autoaugment",
]

#: Grey level of pixels that a geometric operation uncovers.
FILL = 128


# --------------------------------------------------------------------------
# Shared pieces of the Pillow semantics


def _round_half_up(v: jax.Array) -> jax.Array:
    """``floor(v + 0.5)`` as int32, exact for any float32 ``v``.

    ``v + 0.5`` can round in float32 when it crosses a power of two; the
    fractional part ``v - floor(v)`` is always exact.
    """
    f = jnp.floor(v)
    return f.astype(jnp.int32) + (v - f >= jnp.float32(0.5)).astype(jnp.int32)


def _floor_div(numerator: jax.Array, denominator: jax.Array) -> jax.Array:
    """``numerator // denominator`` for int32 operands with ``0 <= numerator < 2**24``
    and ``denominator >= 1``, through float32.

    Vectorised float division is much faster than integer division on CPU,
    and it is exact here: both operands are exact in float32, and a quotient
    ``k - r/d`` just below an integer ``k`` (``r >= 1``) is at least ``1/d``
    below it, more than the rounding error ``k * 2**-24`` of the division.

    Returns:
        int32 array, the broadcast of the operands.
    """
    quotient = numerator.astype(jnp.float32) / denominator.astype(jnp.float32)
    return jnp.floor(quotient).astype(jnp.int32)


def _grey(image: jax.Array) -> jax.Array:
    """Pillow's RGB -> "L" conversion (ITU-R 601-2 luma, 16-bit fixed point).

    Args:
        image: uint8 array of shape ``(H, W, 3)``.

    Returns:
        int32 array of shape ``(H, W)`` with values in 0..255.
    """
    x = image.astype(jnp.int32)
    # Pillow's rgb2l: (R*19595 + G*38470 + B*7471 + 0x8000) >> 16, which rounds
    # to nearest; the documented R*299/1000 + ... truncates and differs.
    return (x[..., 0] * 19595 + x[..., 1] * 38470 + x[..., 2] * 7471 + 0x8000) >> 16


def _blend(degenerate: jax.Array, image: jax.Array, factor: jax.Array) -> jax.Array:
    """``Image.blend(degenerate, image, factor)`` as Pillow computes it.

    Pillow evaluates ``in1 + alpha * (in2 - in1)`` in single precision (``alpha``
    is a C float), then truncates towards zero and clips to 0..255.

    Args:
        degenerate: integer array broadcastable to ``image`` (values 0..255).
        image: uint8 array of shape ``(H, W, C)``.
        factor: float scalar, the enhancement factor.

    Returns:
        uint8 array of the shape of ``image``.
    """
    alpha = jnp.asarray(factor).astype(jnp.float32)
    base = degenerate.astype(jnp.int32)
    diff = (image.astype(jnp.int32) - base).astype(jnp.float32)
    # Compilers may fuse ``base + alpha * diff`` into one multiply-add, which
    # skips the float32 rounding of the product; truncation then turns that
    # into a different grey level. Splitting alpha into 12-bit halves makes
    # both partial products exact (|diff| < 2**8), so their sum is the
    # correctly rounded product whether or not anything is fused.
    bits = lax.bitcast_convert_type(alpha, jnp.uint32)
    alpha_hi = lax.bitcast_convert_type(bits & jnp.uint32(0xFFFFF000), jnp.float32)
    alpha_lo = alpha - alpha_hi
    scaled = alpha_hi * diff + alpha_lo * diff
    mixed = base.astype(jnp.float32) + scaled
    return jnp.clip(jnp.floor(mixed), 0.0, 255.0).astype(jnp.uint8)


def _channel_lut(image: jax.Array, lut: jax.Array) -> jax.Array:
    """Applies a per-channel look-up table.

    Args:
        image: uint8 array of shape ``(H, W, C)``.
        lut: integer array of shape ``(C, 256)``.

    Returns:
        uint8 array of shape ``(H, W, C)``.
    """
    # One flat gather: channel c's table starts at 256 * c.
    starts = 256 * jnp.arange(image.shape[-1], dtype=jnp.int32)
    flat = lut.reshape(-1).at[image.astype(jnp.int32) + starts].get(mode="promise_in_bounds")
    return flat.astype(jnp.uint8)


def _histograms(image: jax.Array) -> jax.Array:
    """Per-channel 256-bin histograms.

    Args:
        image: uint8 array of shape ``(H, W, C)``.

    Returns:
        int32 array of shape ``(C, 256)``.
    """
    channels = image.shape[-1]
    # A single 1-D scatter-add over channel-offset bins is the fastest
    # histogram on CPU (one-hot sums and sorting cost far more).
    bins = image.reshape(-1, channels).astype(jnp.int32) + 256 * jnp.arange(channels, dtype=jnp.int32)
    counts = jnp.zeros(256 * channels, jnp.int32).at[bins.reshape(-1)].add(1, mode="promise_in_bounds")
    return counts.reshape(channels, 256)


def _affine_nearest(image: jax.Array, coeffs: Sequence[jax.Array], fill: int) -> jax.Array:
    """Pillow's nearest-neighbour affine sampler in 16.16 fixed point.

    Output pixel ``(x, y)`` reads input pixel ``(xx >> 16, yy >> 16)`` with
    ``xx = a2 + y*a1 + x*a0`` and ``yy = a5 + y*a4 + x*a3``, and gets ``fill``
    when that lies outside the image. This is Pillow's ``affine_fixed``, which
    it uses for nearest-neighbour affine maps with an off-diagonal term
    whenever the mapped image corners stay within +-32768 pixels.

    Args:
        image: uint8 array of shape ``(H, W, C)``.
        coeffs: int32 scalars ``(a0, a1, a2, a3, a4, a5)``: the fixed-point
            matrix, with ``a2``/``a5`` already moved to the pixel centre.
        fill: grey level of uncovered pixels.

    Returns:
        uint8 array of shape ``(H, W, C)``.
    """
    a0, a1, a2, a3, a4, a5 = coeffs
    height, width = image.shape[:2]
    y = jnp.arange(height, dtype=jnp.int32)[:, None]
    x = jnp.arange(width, dtype=jnp.int32)[None, :]
    # Arithmetic shifts floor negative coordinates, as Pillow's ">> 16" does.
    xin = (a2 + y * a1 + x * a0) >> 16
    yin = (a5 + y * a4 + x * a3) >> 16
    inside = (xin >= 0) & (xin < width) & (yin >= 0) & (yin < height)
    sampled = image[jnp.clip(yin, 0, height - 1), jnp.clip(xin, 0, width - 1)]
    return jnp.where(inside[..., None], sampled, jnp.asarray(fill, image.dtype))


def _translate(image: jax.Array, dy: jax.Array, dx: jax.Array, fill: int) -> jax.Array:
    """Integer shift: output ``(x, y)`` reads input ``(x + dx, y + dy)``.

    Args:
        image: uint8 array of shape ``(H, W, C)``.
        dy: int32 scalar row offset.
        dx: int32 scalar column offset.
        fill: grey level of uncovered pixels.

    Returns:
        uint8 array of shape ``(H, W, C)``.
    """
    height, width = image.shape[:2]
    y = jnp.arange(height, dtype=jnp.int32)[:, None] + dy
    x = jnp.arange(width, dtype=jnp.int32)[None, :] + dx
    inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    sampled = image[jnp.clip(y, 0, height - 1), jnp.clip(x, 0, width - 1)]
    return jnp.where(inside[..., None], sampled, jnp.asarray(fill, image.dtype))


def _f32(value) -> jax.Array:
    """A Python or array scalar as a float32 array (no weak type)."""
    return jnp.asarray(value).astype(jnp.float32)


# --------------------------------------------------------------------------
# AutoAugment operations: uint8 (H, W, 3) -> uint8 (H, W, 3)


def invert(image: jax.Array, magnitude=0.0) -> jax.Array:
    """``ImageOps.invert``: ``255 - x``.

    Args:
        image: uint8 array of shape ``(H, W, C)``.
        magnitude: ignored (uniform signature for the policy).

    Returns:
        uint8 array of shape ``(H, W, C)``.
    """
    del magnitude
    return jnp.uint8(255) - image


def solarize(image: jax.Array, threshold) -> jax.Array:
    """``ImageOps.solarize(img, threshold)``: inverts pixels ``>= threshold``.

    Args:
        image: uint8 array of shape ``(H, W, C)``.
        threshold: float scalar; 256 leaves the image unchanged, 0 inverts it.

    Returns:
        uint8 array of shape ``(H, W, C)``.
    """
    keep = image.astype(jnp.float32) < _f32(threshold)
    return jnp.where(keep, image, jnp.uint8(255) - image)


def posterize(image: jax.Array, bits) -> jax.Array:
    """``ImageOps.posterize(img, bits)``: keeps the ``bits`` high bits.

    Args:
        image: uint8 array of shape ``(H, W, C)``.
        bits: scalar in 1..8 (a float is rounded to the nearest integer).

    Returns:
        uint8 array of shape ``(H, W, C)``.
    """
    drop = jnp.int32(8) - jnp.clip(_round_half_up(_f32(bits)), 1, 8)
    x = image.astype(jnp.int32)
    return ((x >> drop) << drop).astype(jnp.uint8)


def auto_contrast(image: jax.Array, magnitude=0.0) -> jax.Array:
    """``ImageOps.autocontrast(img)``: stretches each channel to 0..255.

    Pillow builds the table as ``int(ix * scale + offset)`` with
    ``scale = 255.0 / (hi - lo)`` and ``offset = -lo * scale`` in double
    precision. Where the exact value ``(ix - lo) * 255 / (hi - lo)`` is an
    integer, double rounding sometimes lands just below it and the truncation
    gives one less (e.g. ``hi`` maps to 254 when ``lo = 0, hi = 25``); those
    cases are tabulated once (:func:`_autocontrast_tables`) and subtracted.

    Args:
        image: uint8 array of shape ``(H, W, C)``.
        magnitude: ignored (uniform signature for the policy).

    Returns:
        uint8 array of shape ``(H, W, C)``; channels with a single value are
        unchanged.
    """
    del magnitude
    x = image.astype(jnp.int32)
    lo = jnp.min(x, axis=(0, 1))
    hi = jnp.max(x, axis=(0, 1))
    # Per pixel rather than through a 256-entry table: XLA fuses a table's
    # computation into the gather that applies it, so a table saves nothing.
    exact = _floor_div((x - lo) * 255, jnp.maximum(hi - lo, 1))
    listed = _autocontrast_listed(lo, hi)
    short = jnp.zeros(x.shape, jnp.int32)
    for slot in range(listed.shape[1]):
        short = short + (x == listed[:, slot]).astype(jnp.int32)
    stretched = jnp.clip(exact - short, 0, 255)
    return jnp.where(hi > lo, stretched, x).astype(jnp.uint8)


def _autocontrast_listed(lo: jax.Array, hi: jax.Array) -> jax.Array:
    """Inputs where Pillow's autocontrast table is one below the exact stretch.

    Args:
        lo: int32 array ``(C,)``, channel minima.
        hi: int32 array ``(C,)``, channel maxima.

    Returns:
        int32 array ``(C, K)``: each channel's affected pixel values, padded
        with -1 (``K`` is the longest list, 17).
    """
    pairs, starts, counts, values, most = _autocontrast_tables()
    pairs, starts, counts, values = map(jnp.asarray, (pairs, starts, counts, values))
    # One binary search per channel finds the (lo, hi) pair's run in values.
    pair = lo * 256 + hi
    pos = jnp.clip(jnp.searchsorted(pairs, pair), 0, pairs.shape[0] - 1)
    count = jnp.where(pairs[pos] == pair, counts[pos], 0)[:, None]
    slots = jnp.arange(most, dtype=jnp.int32)[None, :]
    listed = jnp.take(values, jnp.minimum(starts[pos][:, None] + slots, values.shape[0] - 1))
    return jnp.where(slots < count, listed, -1)


@functools.lru_cache(maxsize=None)
def _autocontrast_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Where Pillow's double-precision autocontrast table falls one short.

    Evaluates Pillow's formula for every ``lo < hi`` and input ``lo..hi`` with
    the same IEEE double operations in the same order, and lists the inputs
    where it is below the exact ``(ix - lo) * 255 // (hi - lo)`` (about 12k
    inputs in about 6k pairs, at most 17 per pair).

    Returns:
        ``(pairs, starts, counts, values, most)``: sorted int32 pair keys
        ``lo * 256 + hi``; for each pair the start and length of its run in
        ``values`` (int32 inputs ``ix``); and the longest run.
    """
    pair_keys, inputs = [], []
    ix = np.arange(256)[None, :]
    for lo in range(255):
        hi = np.arange(lo + 1, 256)[:, None]
        scale = 255.0 / (hi - lo).astype(np.float64)
        offset = -lo * scale
        pillow = np.trunc(ix.astype(np.float64) * scale + offset)
        exact = np.floor_divide((ix - lo) * 255, hi - lo)
        inside = (ix >= lo) & (ix <= hi)
        rows, cols = np.nonzero(inside & (pillow < exact))
        pair_keys.append(lo * 256 + hi[rows, 0])
        inputs.append(cols)
    keys = np.concatenate(pair_keys)
    values = np.concatenate(inputs)
    order = np.lexsort((values, keys))
    keys, values = keys[order], values[order]
    pairs, starts, counts = np.unique(keys, return_index=True, return_counts=True)
    return (
        pairs.astype(np.int32),
        starts.astype(np.int32),
        counts.astype(np.int32),
        values.astype(np.int32),
        int(counts.max()),
    )


def equalize(image: jax.Array, magnitude=0.0) -> jax.Array:
    """``ImageOps.equalize(img)``: per-channel histogram equalisation.

    Pillow's table: ``step = (n - h[last]) // 255`` with ``h[last]`` the count
    of the largest present value; ``lut[i] = (step // 2 + sum(h[:i])) // step``,
    clipped to 255; identity when a channel has one value or ``step == 0``.
    Exact for images of fewer than 2**23 pixels (see :func:`_floor_div`).

    Args:
        image: uint8 array of shape ``(H, W, C)``.
        magnitude: ignored (uniform signature for the policy).

    Returns:
        uint8 array of shape ``(H, W, C)``.
    """
    del magnitude
    hist = _histograms(image)
    total = jnp.sum(hist, axis=1, keepdims=True)
    present = hist > 0
    bins = jnp.arange(256, dtype=jnp.int32)[None, :]
    last = jnp.max(jnp.where(present, bins, -1), axis=1, keepdims=True)
    last_count = jnp.take_along_axis(hist, jnp.maximum(last, 0), axis=1)
    step = (total - last_count) // 255
    safe_step = jnp.maximum(step, 1)
    before = jnp.cumsum(hist, axis=1) - hist
    lut = jnp.minimum(_floor_div(safe_step // 2 + before, safe_step), 255)
    identity = (jnp.sum(present, axis=1, keepdims=True) <= 1) | (step == 0)
    lut = jnp.where(identity, jnp.broadcast_to(bins, lut.shape), lut)
    return _channel_lut(image, lut)


def brightness(image: jax.Array, factor) -> jax.Array:
    """``ImageEnhance.Brightness(img).enhance(factor)``: blend with black.

    Args:
        image: uint8 array of shape ``(H, W, C)``.
        factor: float scalar; 1 is the identity.

    Returns:
        uint8 array of shape ``(H, W, C)``.
    """
    return _blend(jnp.zeros((), jnp.int32), image, factor)


def color(image: jax.Array, factor) -> jax.Array:
    """``ImageEnhance.Color(img).enhance(factor)``: blend with the grey image.

    Args:
        image: uint8 array of shape ``(H, W, 3)``.
        factor: float scalar; 0 gives grey, 1 the identity.

    Returns:
        uint8 array of shape ``(H, W, 3)``.
    """
    return _blend(_grey(image)[..., None], image, factor)


def contrast(image: jax.Array, factor) -> jax.Array:
    """``ImageEnhance.Contrast(img).enhance(factor)``: blend with the mean grey.

    The degenerate image is the mean of the "L" image rounded half up,
    ``int(mean + 0.5)``, computed exactly in integers.

    Args:
        image: uint8 array of shape ``(H, W, 3)``.
        factor: float scalar; 0 gives flat grey, 1 the identity.

    Returns:
        uint8 array of shape ``(H, W, 3)``.
    """
    grey = _grey(image)
    count = grey.size
    mean = (2 * jnp.sum(grey) + count) // (2 * count)
    return _blend(mean, image, factor)


def sharpness(image: jax.Array, factor) -> jax.Array:
    """``ImageEnhance.Sharpness(img).enhance(factor)``: blend with a smoothed image.

    The degenerate image is ``ImageFilter.SMOOTH``: the 3x3 kernel
    ``[[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13``, rounded to nearest, on interior
    pixels; Pillow copies the one-pixel border unchanged. ``sum / 13`` is never
    exactly half-way between integers, so integer rounding matches Pillow's
    float32 sum.

    Args:
        image: uint8 array of shape ``(H, W, C)``.
        factor: float scalar; 0 gives the smoothed image, 1 the identity.

    Returns:
        uint8 array of shape ``(H, W, C)``.
    """
    height, width = image.shape[:2]
    # Padding the input (not the result) keeps one fused full-size pass; the
    # padded border values are discarded below. Sums of at most 13 * 255 are
    # exact in float32.
    x = jnp.pad(image.astype(jnp.float32), ((1, 1), (1, 1), (0, 0)))
    rows = x[:-2] + x[1:-1] + x[2:]
    total = rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:] + jnp.float32(4.0) * x[1:-1, 1:-1]
    # round(total / 13) via floor((2 * total + 13) / 26); see _floor_div.
    smoothed = _floor_div(2 * total.astype(jnp.int32) + 13, jnp.int32(26))
    row = jnp.arange(height)[:, None, None]
    col = jnp.arange(width)[None, :, None]
    border = (row == 0) | (row == height - 1) | (col == 0) | (col == width - 1)
    smooth = jnp.where(border, image.astype(jnp.int32), smoothed)
    return _blend(smooth, image, factor)


def _shear_fixed(level) -> tuple[jax.Array, ...]:
    """Pillow's 16.16 fixed-point coefficients of a shear: ``(1, 0, 1/2, level, centre)``.

    ``centre`` is FIX(0.5 + 0.5 * level) = 32768 + round(32768 * level), kept exact.
    """
    level = _f32(level)
    half = jnp.int32(32768)
    centre = half + _round_half_up(level * jnp.float32(32768.0))
    return jnp.int32(65536), jnp.int32(0), half, _round_half_up(level * jnp.float32(65536.0)), centre


def shear_x(image: jax.Array, level, fill: int = FILL) -> jax.Array:
    """``img.transform(size, AFFINE, (1, level, 0, 0, 1, 0), NEAREST, fillcolor=fill)``.

    Output ``(x, y)`` samples input ``(x + level * y, y)``.

    Args:
        image: uint8 array of shape ``(H, W, C)``.
        level: float scalar shear factor (AutoAugment: -0.3..0.3).
        fill: grey level of uncovered pixels.

    Returns:
        uint8 array of shape ``(H, W, C)``.
    """
    one, zero, half, slope, centre = _shear_fixed(level)
    return _affine_nearest(image, (one, slope, centre, zero, one, half), fill)


def shear_y(image: jax.Array, level, fill: int = FILL) -> jax.Array:
    """``img.transform(size, AFFINE, (1, 0, 0, level, 1, 0), NEAREST, fillcolor=fill)``.

    Output ``(x, y)`` samples input ``(x, y + level * x)``.

    Args:
        image: uint8 array of shape ``(H, W, C)``.
        level: float scalar shear factor (AutoAugment: -0.3..0.3).
        fill: grey level of uncovered pixels.

    Returns:
        uint8 array of shape ``(H, W, C)``.
    """
    one, zero, half, slope, centre = _shear_fixed(level)
    return _affine_nearest(image, (one, zero, half, slope, one, centre), fill)


def translate_x(image: jax.Array, pixels, fill: int = FILL) -> jax.Array:
    """``img.transform(size, AFFINE, (1, 0, pixels, 0, 1, 0), fillcolor=fill)``.

    Output column ``x`` samples input column ``floor(x + 0.5 + pixels)``, so a
    positive offset moves the content left (Pillow's nearest scaling path;
    ``floor(x + c) = x + floor(c)`` for integer ``x`` keeps it exact).

    Args:
        image: uint8 array of shape ``(H, W, C)``.
        pixels: float scalar offset in pixels.
        fill: grey level of uncovered pixels.

    Returns:
        uint8 array of shape ``(H, W, C)``.
    """
    shift = _round_half_up(_f32(pixels))
    return _translate(image, jnp.int32(0), shift, fill)


def translate_y(image: jax.Array, pixels, fill: int = FILL) -> jax.Array:
    """``img.transform(size, AFFINE, (1, 0, 0, 0, 1, pixels), fillcolor=fill)``.

    Output row ``y`` samples input row ``floor(y + 0.5 + pixels)``; a positive
    offset moves the content up.

    Args:
        image: uint8 array of shape ``(H, W, C)``.
        pixels: float scalar offset in pixels.
        fill: grey level of uncovered pixels.

    Returns:
        uint8 array of shape ``(H, W, C)``.
    """
    shift = _round_half_up(_f32(pixels))
    return _translate(image, shift, jnp.int32(0), fill)


def rotate(image: jax.Array, degrees, fill: int = FILL) -> jax.Array:
    """``img.rotate(degrees, fillcolor=fill)``: counter-clockwise about the centre.

    Builds Pillow's inverse matrix about ``(W/2, H/2)`` and samples it with
    Pillow's fixed-point nearest-neighbour sampler. Pillow computes the cosine
    and sine in double precision, here they are float32, so a fixed-point
    coefficient can differ by one unit (1/65536 pixel) and, rarely, a pixel
    lands on the neighbouring source pixel.

    Args:
        image: uint8 array of shape ``(H, W, C)``.
        degrees: float scalar angle; positive turns counter-clockwise.
        fill: grey level of uncovered pixels.

    Returns:
        uint8 array of shape ``(H, W, C)``.
    """
    height, width = image.shape[:2]
    # Range reduction in float32 before the trig keeps large angles accurate.
    turned = jnp.remainder(_f32(degrees), jnp.float32(360.0))
    angle = -turned * jnp.float32(math.pi / 180.0)
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    cx, cy = width / 2.0, height / 2.0
    scale = jnp.float32(65536.0)
    # a2 = FIX(cx - cos*cx - sin*cy + 0.5*cos + 0.5*sin); the large exact part
    # cx*65536 is added as an integer so that float32 rounds only the rest.
    a2 = int(cx * 65536) + _round_half_up(
        -(cos * jnp.float32(cx - 0.5) + sin * jnp.float32(cy - 0.5)) * scale
    )
    a5 = int(cy * 65536) + _round_half_up(
        (sin * jnp.float32(cx - 0.5) - cos * jnp.float32(cy - 0.5)) * scale
    )
    # Pillow's matrix (cos, sin, ., -sin, cos, .) with FIX = round half up.
    fix_cos = _round_half_up(cos * scale)
    coeffs = (fix_cos, _round_half_up(sin * scale), a2, _round_half_up(-sin * scale), fix_cos, a5)
    return _affine_nearest(image, coeffs, fill)


#: The AutoAugment operations by policy name, each ``op(image, magnitude)``.
OPS: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "invert": invert,
    "contrast": contrast,
    "rotate": rotate,
    "translate_x": translate_x,
    "translate_y": translate_y,
    "sharpness": sharpness,
    "shear_x": shear_x,
    "shear_y": shear_y,
    "auto_contrast": auto_contrast,
    "equalize": equalize,
    "solarize": solarize,
    "color": color,
    "posterize": posterize,
    "brightness": brightness,
}
OP_NAMES: tuple[str, ...] = tuple(OPS)


# --------------------------------------------------------------------------
# The CIFAR-10 policy

_BINS = 10

#: Unsigned magnitude of bin ``i`` for each operation (DeepVoltaire's
#: ``CIFAR10Policy``); translations are fractions of the image side.
MAGNITUDE_RANGES: dict[str, np.ndarray] = {
    "shear_x": np.linspace(0.0, 0.3, _BINS),
    "shear_y": np.linspace(0.0, 0.3, _BINS),
    "translate_x": np.linspace(0.0, 150.0 / 331.0, _BINS),
    "translate_y": np.linspace(0.0, 150.0 / 331.0, _BINS),
    "rotate": np.linspace(0.0, 30.0, _BINS),
    "color": np.linspace(0.0, 0.9, _BINS),
    "posterize": np.round(np.linspace(8.0, 4.0, _BINS)),
    "solarize": np.linspace(256.0, 0.0, _BINS),
    "contrast": np.linspace(0.0, 0.9, _BINS),
    "sharpness": np.linspace(0.0, 0.9, _BINS),
    "brightness": np.linspace(0.0, 0.9, _BINS),
    "auto_contrast": np.zeros(_BINS),
    "equalize": np.zeros(_BINS),
    "invert": np.zeros(_BINS),
}

#: Operations whose magnitude gets a random sign (enhancements: 1 +/- m).
SIGNED_OPS = frozenset(
    {"shear_x", "shear_y", "translate_x", "translate_y", "rotate",
     "color", "contrast", "sharpness", "brightness"}
)
_ENHANCE_OPS = frozenset({"color", "contrast", "sharpness", "brightness"})

#: The 25 sub-policies of the CIFAR-10 AutoAugment policy (Cubuk et al. 2019,
#: as in DeepVoltaire's ``CIFAR10Policy`` and torchvision), each a pair of
#: ``(op_name, probability, magnitude_index)``.
CIFAR10_POLICY: tuple[tuple[tuple[str, float, int], tuple[str, float, int]], ...] = (
    (("invert", 0.1, 7), ("contrast", 0.2, 6)),
    (("rotate", 0.7, 2), ("translate_x", 0.3, 9)),
    (("sharpness", 0.8, 1), ("sharpness", 0.9, 3)),
    (("shear_y", 0.5, 8), ("translate_y", 0.7, 9)),
    (("auto_contrast", 0.5, 8), ("equalize", 0.9, 2)),
    (("shear_y", 0.2, 7), ("posterize", 0.3, 7)),
    (("color", 0.4, 3), ("brightness", 0.6, 7)),
    (("sharpness", 0.3, 9), ("brightness", 0.7, 9)),
    (("equalize", 0.6, 5), ("equalize", 0.5, 1)),
    (("contrast", 0.6, 7), ("sharpness", 0.6, 5)),
    (("color", 0.7, 7), ("translate_x", 0.5, 8)),
    (("equalize", 0.3, 7), ("auto_contrast", 0.4, 8)),
    (("translate_y", 0.4, 3), ("sharpness", 0.2, 6)),
    (("brightness", 0.9, 6), ("color", 0.2, 8)),
    (("solarize", 0.5, 2), ("invert", 0.0, 3)),
    (("equalize", 0.2, 0), ("auto_contrast", 0.6, 0)),
    (("equalize", 0.2, 8), ("equalize", 0.6, 4)),
    (("color", 0.9, 9), ("equalize", 0.6, 6)),
    (("auto_contrast", 0.8, 4), ("solarize", 0.2, 8)),
    (("brightness", 0.1, 3), ("color", 0.7, 0)),
    (("solarize", 0.4, 5), ("auto_contrast", 0.9, 3)),
    (("translate_y", 0.9, 9), ("translate_y", 0.7, 9)),
    (("auto_contrast", 0.9, 2), ("solarize", 0.8, 3)),
    (("equalize", 0.8, 8), ("invert", 0.1, 3)),
    (("translate_y", 0.7, 9), ("auto_contrast", 0.9, 1)),
)


def op_magnitude(name: str, index: int, negative: bool, image_shape: Sequence[int]) -> float:
    """The value an operation receives for a magnitude bin and sign.

    Computed in double precision as the reference does, then given to the
    operation as float32 (the precision Pillow's blend uses anyway).

    Args:
        name: operation name, a key of :data:`OPS`.
        index: magnitude bin, 0..9.
        negative: whether the random sign is negative (ignored for unsigned ops).
        image_shape: ``(H, W, ...)``; translations scale with the image side.

    Returns:
        The operation's argument: factor, degrees, level, pixels, bits or threshold.
    """
    value = float(MAGNITUDE_RANGES[name][index])
    if name == "translate_x":
        value *= image_shape[1]
    elif name == "translate_y":
        value *= image_shape[0]
    if name in SIGNED_OPS and negative:
        value = -value
    if name in _ENHANCE_OPS:
        value = 1.0 + value
    return value


def _policy_tables(policy, image_shape):
    """Static tables of a policy for one image shape.

    Each slot (first or second operation of a sub-policy) only evaluates the
    operations that occur in that slot of the policy, so choices index a
    per-slot list of names.

    Args:
        policy: sequence of sub-policies, each two ``(op_name, probability,
            magnitude_index)`` entries.
        image_shape: ``(H, W, C)``.

    Returns:
        ``(names, choices, probs, magnitudes)``: per slot a tuple of operation
        names; int32 ``(P, 2)`` positions in those tuples; float32 ``(P, 2)``
        probabilities; float32 ``(P, 2, 2)`` operation arguments for the
        (positive, negative) sign.
    """
    names = tuple(
        tuple(name for name in OP_NAMES if any(sub[slot][0] == name for sub in policy))
        for slot in range(2)
    )
    choices = np.array(
        [[names[slot].index(sub[slot][0]) for slot in range(2)] for sub in policy], np.int32
    )
    probs = np.array([[p for _, p, _ in sub] for sub in policy], np.float32)
    mags = np.array(
        [
            [
                [op_magnitude(name, idx, negative, image_shape) for negative in (False, True)]
                for name, _, idx in sub
            ]
            for sub in policy
        ],
        np.float32,
    )
    return names, jnp.asarray(choices), jnp.asarray(probs), jnp.asarray(mags)


def autoaugment(image: jax.Array, key: jax.Array, policy=CIFAR10_POLICY) -> jax.Array:
    """Applies one uniformly chosen sub-policy of an AutoAugment policy.

    Each of the sub-policy's two operations is applied, in order, with its
    probability; signed magnitudes get a fair random sign.

    Args:
        image: uint8 array of shape ``(H, W, 3)``.
        key: a ``jax.random`` key.
        policy: sequence of sub-policies, each two ``(op_name, probability,
            magnitude_index)`` entries.

    Returns:
        uint8 array of shape ``(H, W, 3)``.
    """
    names, choices, probs, mags = _policy_tables(policy, image.shape)
    key_sub, key_apply, key_sign = jax.random.split(key, 3)
    sub = jax.random.randint(key_sub, (), 0, choices.shape[0], dtype=jnp.int32)
    apply = jax.random.uniform(key_apply, (2,)) < probs[sub]
    negative = jax.random.bernoulli(key_sign, 0.5, (2,)).astype(jnp.int32)
    for slot in range(2):
        magnitude = mags[sub, slot, negative[slot]]
        # Index len(names) is "not applied": the input passes through.
        choice = jnp.where(apply[slot], choices[sub, slot], jnp.int32(len(names[slot])))
        image = _select_op(image, choice, magnitude, names[slot])
    return image


def _select_op(
    image: jax.Array, choice: jax.Array, magnitude: jax.Array, names: Sequence[str]
) -> jax.Array:
    """``OPS[names[choice]](image, magnitude)``, or ``image`` when ``choice``
    is ``len(names)``.

    Equivalent to ``lax.switch``, which under ``vmap`` also evaluates every
    operation. Stacking the results and indexing the stack keeps them as one
    materialised array; a select instead lets XLA fuse all the operations into
    the consumers of the result, and the next operation's gathers and 3x3
    neighbourhood reads then recompute them several times per pixel (about
    ten times slower for two operations in a row on CPU).

    Args:
        image: uint8 array of shape ``(H, W, 3)``.
        choice: int32 scalar in ``0..len(names)``.
        magnitude: float32 scalar, the operation's argument.
        names: the candidate operations, keys of :data:`OPS`.

    Returns:
        uint8 array of shape ``(H, W, 3)``.
    """
    results = [OPS[name](image, magnitude) for name in names] + [image]
    return jnp.stack(results)[choice]
