"""An event-camera emulator: static images moved along saccades, seen by a DVS-like pixel model.

N-MNIST (Orchard et al. 2015) was recorded by moving an ATIS camera in front
of the MNIST digits shown on a monitor, in three straight saccades forming a
triangle. This module does the same to images in software:

**Motion.** The image (zero-padded, black outside) is shifted by an offset
``(dx, dy)`` in pixels that moves at constant speed along straight segments
between ``vertices`` (:func:`triangle`: three segments forming a triangle that
ends where it starts), ``saccade_us`` microseconds per segment. The scene is
sampled every ``1e6 / sample_rate_hz`` us (``t_k = round(k * 1e6 /
sample_rate_hz)``, ``k = 0 .. K`` over the whole path); a sub-pixel offset is
rendered by bilinear interpolation, ``I(x, y) = image(x - dx, y - dy)``.

**Pixels.** Each pixel keeps a reference log intensity ``r``, set to
``log(I + eps)`` at ``t_0`` (intensities in ``[0, 1]``; ``eps`` keeps black
pixels finite). At each later sample, with ``L = log(I + eps)``, ``d = L - r``
and the pixel's threshold ``C``: when ``|d| >= C`` and the pixel is not
refractory, it emits one event at ``t_k`` (``p = 1``, ON, when ``d > 0``;
``p = 0``, OFF, when ``d < 0``) and ``r`` moves by the whole multiples of
``C`` crossed, ``r += sign(d) * floor(|d| / C) * C``. A pixel is refractory
for ``refractory_us`` after its last event (it may fire again at ``t >=
t_last + refractory_us``); a change during that time is not lost: ``r`` is
left as it was, so the change fires once the period ends (if it still
exceeds ``C``). ``C`` is ``threshold`` for every pixel, or, with
``mismatch > 0``, ``threshold * max(1 + mismatch * z, 0.1)`` with one
standard normal ``z`` per sensor pixel drawn from ``seed`` (the same map for
every image, as one sensor). There is no noise, no bandwidth limit and no
latency: the output is a deterministic function of the image and the
settings.

**Output.** :class:`~nsnn_jax.data.events.aedat.Events` (``t`` in us,
``x`` column, ``y`` row, ``p`` polarity, ON = 1 as the AEDAT 3.1 polarity
bit), ordered by time, then row, then column: what the AEDAT readers return
and :func:`~nsnn_jax.data.events.frames.events_to_frames` integrates (channel
``p``), on a sensor of ``(H + 2 * pad, W + 2 * pad)`` pixels. They can be
written as recordings with :func:`~nsnn_jax.data.events.aedat.write_aedat31`
or (sensors up to 128 x 128) :func:`~nsnn_jax.data.events.aedat.write_aedat2`.

Numpy only, in float32: the loop runs over time samples, vectorised over the
pixels of a batch of images (about 10 ms of one CPU core per 28 x 28 image
with the default settings).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Sequence

import numpy as np

from nsnn_jax.data.events.aedat import Events

__all__ = ["EmulatorSettings", "triangle", "saccade_offsets", "render", "emulate", "emulate_batch"]


def triangle(amplitude: float = 3.0) -> tuple[tuple[float, float], ...]:
    """Vertices of three saccades forming an isosceles triangle, as N-MNIST's camera moved.

    The triangle has base and height ``amplitude`` pixels and its centroid at
    the origin; the path starts at the lower-left corner, moves up-right to the
    apex, down-right to the lower-right corner and left back to the start (in
    image coordinates, ``y`` grows downwards).

    Args:
      amplitude: base and height in pixels, >= 0.

    Returns:
      Four ``(dx, dy)`` offsets: start, apex, lower right, start.
    """
    a = float(amplitude)
    if not a >= 0 or not math.isfinite(a):
        raise ValueError(f"triangle amplitude must be a finite number >= 0, got {amplitude!r}.")
    start = (-a / 2, a / 3)
    return (start, (0.0, -2 * a / 3), (a / 2, a / 3), start)


@dataclasses.dataclass(frozen=True)
class EmulatorSettings:
    """The emulated camera and its motion.

    Attributes:
      threshold: contrast threshold ``C``, in log-intensity units (> 0).
      refractory_us: refractory period of a pixel after an event, us (>= 0).
      saccade_us: duration of each straight segment of the path, us (>= 1).
      sample_rate_hz: how often the scene is sampled, Hz (> 0; at most 1 MHz,
        the timestamp resolution).
      vertices: the path, ``(dx, dy)`` offsets in pixels, at least two.
      pad: black pixels added on each side of the image (N-MNIST's 34 x 34
        sensor holds a 28 x 28 digit: ``pad=3``).
      eps: offset of the log, ``log(I + eps)`` with ``I`` in ``[0, 1]`` (> 0).
      mismatch: relative spread of the per-pixel thresholds (0: none).
      seed: seed of the threshold map (used only when ``mismatch > 0``).
    """

    threshold: float = 0.2
    refractory_us: int = 1000
    saccade_us: int = 100_000
    sample_rate_hz: float = 1000.0
    vertices: tuple = triangle(3.0)
    pad: int = 3
    eps: float = 0.01
    mismatch: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "vertices", tuple((float(dx), float(dy)) for dx, dy in self.vertices))
        checks = [
            (math.isfinite(self.threshold) and self.threshold > 0, "threshold", "a finite number > 0"),
            (int(self.refractory_us) == self.refractory_us and self.refractory_us >= 0, "refractory_us",
             "an integer >= 0"),
            (int(self.saccade_us) == self.saccade_us and self.saccade_us >= 1, "saccade_us", "an integer >= 1"),
            (math.isfinite(self.sample_rate_hz) and 0 < self.sample_rate_hz <= 1e6, "sample_rate_hz",
             "in (0, 1e6]"),
            (len(self.vertices) >= 2 and all(map(math.isfinite, np.ravel(self.vertices))), "vertices",
             "at least two finite (dx, dy) offsets"),
            (int(self.pad) == self.pad and self.pad >= 0, "pad", "an integer >= 0"),
            (math.isfinite(self.eps) and self.eps > 0, "eps", "a finite number > 0"),
            (math.isfinite(self.mismatch) and self.mismatch >= 0, "mismatch", "a finite number >= 0"),
        ]
        for ok, name, expected in checks:
            if not ok:
                raise ValueError(f"EmulatorSettings: {name} must be {expected}, got {getattr(self, name)!r}.")

    def tag(self) -> str:
        """A short name of these settings for cache folders: the threshold and a digest of all fields."""
        digest = hashlib.sha1(repr(dataclasses.astuple(self)).encode()).hexdigest()[:10]
        return f"c{self.threshold:g}-{digest}"


def saccade_offsets(settings: EmulatorSettings) -> tuple[np.ndarray, np.ndarray]:
    """The sample times and the image offsets along the path.

    Returns:
      ``(t, offsets)``: int64 ``(K + 1,)`` times in us from 0 to
      ``(len(vertices) - 1) * saccade_us`` (``t_k = round(k * 1e6 /
      sample_rate_hz)``, the end added when the rate does not land on it),
      and float64 ``(K + 1, 2)`` offsets ``(dx, dy)``, linear in time within
      each segment.
    """
    vertices = np.asarray(settings.vertices, np.float64)
    segments = len(vertices) - 1
    total = segments * int(settings.saccade_us)
    count = int(math.floor(total * settings.sample_rate_hz / 1e6 + 1e-9))
    t = np.unique(np.append(np.round(np.arange(count + 1) * 1e6 / settings.sample_rate_hz), total)).astype(np.int64)
    t = t[t <= total]
    knots = np.arange(segments + 1) * int(settings.saccade_us)
    offsets = np.stack([np.interp(t, knots, vertices[:, axis]) for axis in (0, 1)], axis=1)
    return t, offsets


def _as_intensity(images: np.ndarray) -> np.ndarray:
    """``(B, H, W)`` float32 intensities in ``[0, 1]``: uint8 divided by 255, floats checked."""
    images = np.asarray(images)
    if images.ndim != 3 or min(images.shape[1:], default=0) < 1:
        raise ValueError(f"emulate: expected images (B, H, W) (or one (H, W)), got shape {images.shape}.")
    if images.dtype == np.uint8:
        return images.astype(np.float32) / np.float32(255.0)
    if images.dtype.kind != "f":
        raise ValueError(f"emulate: expected uint8 images or floats in [0, 1], got {images.dtype}.")
    values = images.astype(np.float32)
    if values.size and (not np.isfinite(values).all() or values.min() < 0 or values.max() > 1):
        raise ValueError(f"emulate: float intensities must be finite and in [0, 1], got "
                         f"{np.nanmin(values)}..{np.nanmax(values)}.")
    return values


def render(images: np.ndarray, offset: Sequence[float], pad: int = 0) -> np.ndarray:
    """The images padded with ``pad`` black pixels per side, shifted by ``offset``, bilinear.

    Args:
      images: ``(B, H, W)`` intensities in ``[0, 1]`` (uint8 is divided by 255).
      offset: ``(dx, dy)`` in pixels: ``out(x, y) = padded(x - dx, y - dy)``,
        zero outside the padded image.
      pad: black border per side.

    Returns:
      float32 ``(B, H + 2 pad, W + 2 pad)``.
    """
    padded = np.pad(_as_intensity(images), ((0, 0), (pad, pad), (pad, pad)))
    return _Renderer(padded, np.asarray([offset], np.float64))(offset)


class _Renderer:
    """Bilinear shifts of padded images by offsets within the range it was built for."""

    def __init__(self, padded: np.ndarray, offsets: np.ndarray):
        self.height, self.width = padded.shape[1:]
        self.margin = int(np.ceil(np.abs(offsets).max(initial=0.0))) + 1
        m = self.margin
        self.canvas = np.pad(padded, ((0, 0), (m, m), (m, m)))

    def _shift(self, ix: int, iy: int) -> np.ndarray:
        top, left = self.margin - iy, self.margin - ix
        return self.canvas[:, top:top + self.height, left:left + self.width]

    def __call__(self, offset) -> np.ndarray:
        dx, dy = float(offset[0]), float(offset[1])
        ix, iy = math.floor(dx), math.floor(dy)
        fx, fy = dx - ix, dy - iy
        # out(x) = padded(x - dx): between the integer shifts ix and ix + 1, weights 1 - fx and fx.
        f32 = np.float32
        out = f32((1 - fx) * (1 - fy)) * self._shift(ix, iy)
        if fx:
            out += f32(fx * (1 - fy)) * self._shift(ix + 1, iy)
        if fy:
            out += f32((1 - fx) * fy) * self._shift(ix, iy + 1)
        if fx and fy:
            out += f32(fx * fy) * self._shift(ix + 1, iy + 1)
        return out


def _thresholds(settings: EmulatorSettings, shape: tuple) -> np.ndarray:
    if settings.mismatch == 0:
        return np.full(shape, settings.threshold, np.float32)
    z = np.random.default_rng(settings.seed).standard_normal(shape)
    return (settings.threshold * np.maximum(1.0 + settings.mismatch * z, 0.1)).astype(np.float32)


def emulate_batch(images: np.ndarray, settings: EmulatorSettings = EmulatorSettings()) -> list[Events]:
    """The event streams of a batch of images moved along the settings' path (see the module docstring).

    Args:
      images: ``(B, H, W)`` uint8 (divided by 255) or float intensities in ``[0, 1]``.
      settings: the camera and the motion.

    Returns:
      ``B`` :class:`~nsnn_jax.data.events.aedat.Events` on a sensor of
      ``(H + 2 pad, W + 2 pad)`` pixels, each ordered by time, row, column.

    Raises:
      ValueError: images of another shape or type, or out of ``[0, 1]``.
    """
    intensity = _as_intensity(images)
    pad = int(settings.pad)
    padded = np.pad(intensity, ((0, 0), (pad, pad), (pad, pad)))
    batch, height, width = padded.shape
    times, offsets = saccade_offsets(settings)
    renderer = _Renderer(padded, offsets)
    threshold = _thresholds(settings, (height, width))
    refractory = int(settings.refractory_us)
    eps = np.float32(settings.eps)
    reference = np.log(renderer(offsets[0]) + eps)
    ready_at = np.full((batch, height, width), np.iinfo(np.int64).min, np.int64)
    parts = []
    for t, offset in zip(times[1:], offsets[1:]):
        change = np.log(renderer(offset) + eps) - reference
        crossed = np.floor(np.abs(change) / threshold)
        fire = (crossed >= 1) & (ready_at <= t)
        if not fire.any():
            continue
        b, y, x = np.nonzero(fire)  # row-major: by image, then row, then column
        step = np.where(change > 0, crossed, -crossed) * threshold
        reference[fire] += step[fire]
        ready_at[fire] = t + refractory
        parts.append((np.full(len(b), t, np.int64), b, x, y, (change[fire] > 0).astype(np.uint8)))
    if not parts:
        empty = Events(np.zeros(0, np.int64), np.zeros(0, np.int16), np.zeros(0, np.int16), np.zeros(0, np.uint8))
        return [empty for _ in range(batch)]
    t, b, x, y, p = (np.concatenate(column) for column in zip(*parts))
    order = np.argsort(b, kind="stable")  # keeps time, row, column order within each image
    bounds = np.searchsorted(b[order], np.arange(batch + 1))
    t, x, y, p = t[order], x[order].astype(np.int16), y[order].astype(np.int16), p[order]
    return [Events(t[lo:hi], x[lo:hi], y[lo:hi], p[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])]


def emulate(image: np.ndarray, settings: EmulatorSettings = EmulatorSettings()) -> Events:
    """The event stream of one image ``(H, W)`` (see :func:`emulate_batch`)."""
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"emulate: expected one image (H, W), got shape {image.shape}.")
    return emulate_batch(image[None], settings)[0]
