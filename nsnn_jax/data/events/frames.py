"""Event frames: integration by event count or by time, down-sampling, and the frame cache.

:func:`events_to_frames` turns events into per-pixel counts in ``T`` frames
with one channel per polarity, ``(T, H, W, 2)`` float32, ``channel = p``.

:func:`max_normalise` divides each frame by its maximum and
:func:`resize_bilinear` resizes frames with Pillow's antialiased bilinear
filter (the NSNN authors' DVS-CIFAR preprocessing, ``frame_norm='max'`` and
``resize='bilinear'`` of :func:`frames_maker`); the default down-sampling
(``resize='bin'``) maps event coordinates to the smaller grid so every event
is counted once.

The event data set loaders keep the frames of every sample in a cache, one
``.npy`` file per sample written atomically (a temp file renamed into place,
so a file is whole or absent), so recordings are decoded once per setting of
(timesteps, size, split_by, frame_norm, resize). A sample's file name carries a digest of the
identity of the files it was decoded from (resolved path, size and
modification time): a changed recording, or another recording tree sharing
the same cache folder, is decoded again instead of read from stale frames.
:func:`build_dataset` decodes what is missing and assembles the
:class:`~nsnn_jax.data.Dataset`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, NamedTuple, Optional, Sequence, Union

import numpy as np

from nsnn_jax.data.dataset import Dataset
from nsnn_jax.data.events.aedat import SENSOR_SIZE, Events, check_range, event_arrays
from nsnn_jax.data.sources import cache_root

__all__ = [
    "SPLIT_MODES",
    "FRAME_NORMS",
    "RESIZE_MODES",
    "max_normalise",
    "resize_bilinear",
    "PROGRESS_MIN_FILES",
    "Recording",
    "events_to_frames",
    "frames_cache_folder",
    "source_digest",
    "build_dataset",
    "check_settings",
    "frames_maker",
    "visible_files",
]

PathLike = Union[str, os.PathLike]

SPLIT_MODES = ("number", "time")
FRAME_NORMS = ("none", "max")
RESIZE_MODES = ("bin", "bilinear")

# Decoding at least this many recordings prints progress lines on stderr.
PROGRESS_MIN_FILES = 20


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _check_split_by(split_by: str) -> None:
    if split_by not in SPLIT_MODES:
        raise ValueError(f"split_by must be one of {', '.join(map(repr, SPLIT_MODES))}, got {split_by!r}.")


def events_to_frames(events: Events, timesteps: int, height: int, width: int, split_by: str = "number",
                     downsample_to: Optional[tuple[int, int]] = None) -> np.ndarray:
    """Integrates events into per-pixel count frames.

    Splitting rules (``N`` events, ``T = timesteps``):

    * ``"number"``: frame ``j`` holds the events ``[j * N // T, (j + 1) * N // T)``
      in the given order, so frame sizes differ by at most one event.
      (SpikingJelly's ``integrate_events_by_fixed_frames_number`` uses
      ``N // T`` events per frame and puts the ``N % T`` remaining events in
      the last frame.)
    * ``"time"``: with ``t0 = min(t)`` and ``D = max(t) - t0``, an event goes to
      frame ``min((t - t0) * T // D, T - 1)``: ``T`` equal windows
      ``[t0 + j D / T, t0 + (j + 1) D / T)``, the last one closed so that the
      last event lands in frame ``T - 1``. When ``D == 0`` every event goes to
      frame 0. (SpikingJelly uses integer windows of ``D // T`` us and gives
      the last frame the rest.)

    Args:
      events: :class:`Events` (or any ``(t, x, y, p)``); ``0 <= x < width``,
        ``0 <= y < height``, ``p`` in ``{0, 1}``.
      timesteps: number of frames ``T``, >= 1.
      height: sensor height ``H``.
      width: sensor width ``W``.
      split_by: ``"number"`` or ``"time"``.
      downsample_to: optional ``(h, w)`` with ``1 <= h <= height`` and
        ``1 <= w <= width``: coordinates are mapped with ``x * w // width`` and
        ``y * h // height``, so every event is counted once (counts add up).

    Returns:
      float32 ``(T, H, W, 2)`` (or ``(T, h, w, 2)``): ``frames[j, y, x, p]`` is
      the number of events of polarity ``p`` at pixel ``(x, y)`` in frame
      ``j``. No events: all-zero frames.

    Raises:
      ValueError: bad ``timesteps``, sizes, ``split_by`` or ``downsample_to``;
        coordinates or polarities out of range; a time span too long for exact
        int64 arithmetic (``D * T >= 2**62``).
    """
    steps = _positive("timesteps", timesteps)
    height, width = _positive("height", height), _positive("width", width)
    _check_split_by(split_by)
    out_h, out_w = (height, width) if downsample_to is None else tuple(downsample_to)
    out_h, out_w = _positive("downsample_to height", out_h), _positive("downsample_to width", out_w)
    if out_h > height or out_w > width:
        raise ValueError(f"downsample_to {(out_h, out_w)} must not exceed the sensor size {(height, width)}.")
    t, x, y, p = event_arrays(events, "events_to_frames")
    n = len(t)
    if n == 0:
        return np.zeros((steps, out_h, out_w, 2), np.float32)
    check_range("events_to_frames", "x", x, 0, width - 1)
    check_range("events_to_frames", "y", y, 0, height - 1)
    if split_by == "number":
        bounds = (np.arange(steps + 1, dtype=np.int64) * n) // steps
        frame = np.repeat(np.arange(steps, dtype=np.int64), np.diff(bounds))
    else:
        t0 = int(t.min())
        span = int(t.max()) - t0
        if span == 0:
            frame = np.zeros(n, np.int64)
        else:
            if span * steps >= 2**62:
                raise ValueError(f"events_to_frames: time span {span} us x {steps} timesteps overflows int64.")
            frame = np.minimum((t - t0) * steps // span, steps - 1)
    if (out_h, out_w) != (height, width):
        x, y = x * out_w // width, y * out_h // height
    index = ((frame * out_h + y) * out_w + x) * 2 + p
    counts = np.bincount(index, minlength=steps * out_h * out_w * 2)
    return counts.reshape(steps, out_h, out_w, 2).astype(np.float32)


def max_normalise(frames: np.ndarray) -> np.ndarray:
    """Divides each frame ``(H, W, 2)`` of ``(T, H, W, 2)`` frames by its maximum over both polarities.

    An empty frame (maximum 0) stays all zero (no division, no NaN).

    Args:
      frames: non-negative ``(T, H, W, P)`` frames.

    Returns:
      float32 frames of the same shape, each frame's maximum 1 (or 0 when empty).
    """
    frames = np.asarray(frames, np.float32)
    if frames.ndim != 4:
        raise ValueError(f"max_normalise expects (T, H, W, P) frames, got shape {frames.shape}.")
    peak = frames.max(axis=(1, 2, 3), keepdims=True)
    return np.divide(frames, peak, out=np.zeros_like(frames), where=peak > 0)


def _bilinear_weights(in_size: int, out_size: int) -> np.ndarray:
    """``(out_size, in_size)`` resampling matrix of Pillow's bilinear filter (antialiased when shrinking).

    As Pillow's ``ImagingResample``: the triangle filter's support grows with
    the scale ``in/out`` when shrinking; output pixel ``i`` is centred at
    input coordinate ``(i + 0.5) * scale``; the weights of each row sum to 1.
    """
    scale = in_size / out_size
    filter_scale = max(scale, 1.0)
    support = filter_scale  # the triangle's support is 1
    weights = np.zeros((out_size, in_size), np.float64)
    for i in range(out_size):
        center = (i + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        taps = np.arange(lo, hi)
        w = np.maximum(0.0, 1.0 - np.abs((taps - center + 0.5) / filter_scale))
        total = w.sum()
        weights[i, lo:hi] = w / total if total > 0 else 0.0
    return weights


def resize_bilinear(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resizes ``(T, H, W, P)`` frames to ``(T, height, width, P)`` with Pillow's bilinear filter.

    Each channel is resized independently, as Pillow resizes an ``'F'``
    (float32) image: separable, antialiased when shrinking (the filter widens
    with the scale, so every input pixel contributes). The NSNN authors'
    preprocessing differs in two ways this does not copy: they resize 8-bit
    images (values rounded to multiples of 1/255 before and after) and, as a
    two-channel ``'LA'`` image, Pillow premultiplies the first channel by the
    second before resizing and divides after.

    Args:
      frames: ``(T, H, W, P)`` frames.
      height, width: the output size.

    Returns:
      float32 ``(T, height, width, P)``.
    """
    frames = np.asarray(frames, np.float32)
    if frames.ndim != 4:
        raise ValueError(f"resize_bilinear expects (T, H, W, P) frames, got shape {frames.shape}.")
    height, width = _positive("height", height), _positive("width", width)
    rows = _bilinear_weights(frames.shape[1], height)
    cols = _bilinear_weights(frames.shape[2], width)
    # Pillow resizes horizontally first, then vertically; both are linear, so the order does not matter
    # beyond rounding.
    out = np.einsum("wx,thxp->thwp", cols, frames.astype(np.float64))
    out = np.einsum("hy,tywp->thwp", rows, out)
    return out.astype(np.float32)


# --------------------------------------------------------------------------- frame cache


def _settings_name(timesteps: int, size: int, split_by: str, frame_norm: str = "none", resize: str = "bin") -> str:
    name = f"T{timesteps}-{size}px-{split_by}"
    # The default settings keep the folder names frames were cached under before these options existed.
    if frame_norm != "none":
        name += f"-{frame_norm}norm"
    if resize != "bin":
        name += f"-{resize}"
    return name


def frames_cache_folder(dataset: str, data_root: PathLike, timesteps: int, size: int, split_by: str,
                        cache_dir: Optional[PathLike] = None, frame_norm: str = "none",
                        resize: str = "bin") -> Path:
    """Where the loaders keep the frames of one data set and one setting.

    Args:
      dataset: ``"dvs_cifar10"``, ``"dvs_gesture"`` or ``"fashion_mnist_dvs-<emulator settings>"``.
      data_root: the folder holding the recordings.
      timesteps: frames per sample.
      size: frame height and width.
      split_by: ``"number"`` or ``"time"``.
      cache_dir: explicit cache root, or None.
      frame_norm: ``"none"`` or ``"max"`` (adds ``-maxnorm`` to the name).
      resize: ``"bin"`` or ``"bilinear"`` (adds ``-bilinear``).

    Returns:
      ``<cache_dir>/<dataset>-T<timesteps>-<size>px-<split_by>[-maxnorm][-bilinear]`` when
      ``cache_dir`` is given (shared by every recording tree cached there: the
      samples' file names tell their source files apart); otherwise
      ``<data_root>/.frames-T<timesteps>-<size>px-<split_by>`` when
      ``data_root`` is writable, else
      ``<$NSNN_JAX_DATA or ~/.cache/nsnn_jax>/dvs_frames/<dataset>-<hash of
      data_root>-T...``.
    """
    settings = _settings_name(timesteps, size, split_by, frame_norm, resize)
    if cache_dir is not None:
        return Path(cache_dir).expanduser() / f"{dataset}-{settings}"
    root = Path(data_root).expanduser()
    if os.access(root, os.W_OK):
        return root / f".frames-{settings}"
    digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
    return cache_root() / "dvs_frames" / f"{dataset}-{digest}-{settings}"


def _save_atomic(path: Path, array: np.ndarray) -> None:
    """``np.save`` into a temp file next to ``path``, then renamed: ``path`` is whole or absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.save(stream, array)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _storage(frames: np.ndarray) -> np.ndarray:
    """Counts as the smallest exact unsigned type (uint16 almost always); other frames (max-normalised,
    resized) as float32."""
    if not np.array_equal(frames, np.round(frames)):
        return frames.astype(np.float32)
    return frames.astype(np.uint16 if frames.max(initial=0) <= np.iinfo(np.uint16).max else np.uint32)


def _load_cached(path: Path, shape: tuple) -> Optional[np.ndarray]:
    """The cached frames as float32, or None when missing, unreadable or of another shape."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if array.shape != shape or array.dtype.kind not in "uif":
        return None
    return array.astype(np.float32)


class Recording(NamedTuple):
    """One recording and the samples cut from it.

    Attributes:
      path: the recording file.
      keys: the cache names of its samples, in order (``/`` makes subfolders).
      labels: the 0-based labels of its samples.
      split: ``"train"`` or ``"test"``.
      depends: other files its samples are decoded from (e.g. a labels CSV).
      digest: the identity of a source that is not a file (e.g. a digest of
        the images an emulator turns into events), used instead of the files'
        identity; ``path`` then only names the source in messages.
    """

    path: Path
    keys: tuple
    labels: tuple
    split: str
    depends: tuple = ()
    digest: str = ""


def source_digest(recording: Recording) -> str:
    """A short digest of the identity of the recording's files: resolved path, size, mtime.

    A recording with a ``digest`` returns it instead.

    Raises:
      OSError: a file cannot be examined.
    """
    if recording.digest:
        return recording.digest
    identity = []
    for path in (recording.path, *recording.depends):
        stat = Path(path).stat()
        identity.append(f"{Path(path).resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}")
    return hashlib.sha1("\n".join(identity).encode()).hexdigest()[:12]


def _sample_files(recording: Recording, folder: Path) -> list:
    digest = source_digest(recording)
    return [folder / f"{key}-{digest}.npy" for key in recording.keys]


class _Progress:
    """Progress lines on stderr when there are many recordings to decode."""

    def __init__(self, name: str, total: int, folder: Path):
        self.name, self.total, self.start = name, total, time.monotonic()
        self.every = max(1, total // 20)
        self.enabled = total >= PROGRESS_MIN_FILES
        if self.enabled:
            print(f"{name}: decoding {total} recordings into frames cached in {folder}", file=sys.stderr, flush=True)

    def step(self, done: int) -> None:
        if self.enabled and (done % self.every == 0 or done == self.total):
            print(f"{self.name}: {done}/{self.total} recordings ({time.monotonic() - self.start:.0f} s)",
                  file=sys.stderr, flush=True)


def _decode_into_cache(recording: Recording, decode: Callable, files: list) -> list:
    """Decodes one recording into its samples' frames and caches them in ``files``; returns the frames."""
    try:
        frames = decode(recording)
    except ValueError as error:
        if str(recording.path) in str(error):
            raise
        raise ValueError(f"{recording.path}: {error}") from error
    if len(frames) != len(recording.keys):
        raise ValueError(f"{recording.path}: gave {len(frames)} samples, expected {len(recording.keys)} "
                         f"(did its labels change while loading?).")
    for path, sample in zip(files, frames):
        _save_atomic(path, _storage(sample))
    return frames


def build_dataset(name: str, recordings: Sequence[Recording], decode: Callable[[Recording], list], folder: Path,
                  frame_shape: tuple, label_names: Sequence[str], source: str) -> Dataset:
    """Decodes the recordings whose frames are not cached yet, then reads every sample from the cache.

    Args:
      name: the data set's name, for progress lines.
      recordings: the recordings, each with its samples' keys, labels and split.
      decode: ``decode(recording)`` -> one frames array ``frame_shape`` per key.
      folder: the cache folder (:func:`frames_cache_folder`).
      frame_shape: ``(T, H, W, 2)`` of one sample.
      label_names: the class names.
      source: where the data came from, for :attr:`Dataset.source`.

    Returns:
      A :class:`~nsnn_jax.data.Dataset`: ``x`` float32 ``(n, T, H, W, 2)``,
      ``y`` int32 ``(n,)``, samples in the order of ``recordings``.

    Raises:
      ValueError: ``decode`` failed (the message names the recording).
    """
    files = [_sample_files(recording, folder) for recording in recordings]
    missing = [i for i, paths in enumerate(files) if not all(path.is_file() for path in paths)]
    progress = _Progress(name, len(missing), folder)
    for done, i in enumerate(missing, 1):
        _decode_into_cache(recordings[i], decode, files[i])
        progress.step(done)
    splits = {}
    for split in ("train", "test"):
        chosen = [i for i, rec in enumerate(recordings) if rec.split == split]
        x = np.zeros((sum(len(recordings[i].keys) for i in chosen),) + frame_shape, np.float32)
        y = np.asarray([label for i in chosen for label in recordings[i].labels], np.int32)
        row = 0
        for i in chosen:
            recording = recordings[i]
            cached = [_load_cached(path, frame_shape) for path in files[i]]
            if any(sample is None for sample in cached):
                print(f"warning: unreadable cached frames of {recording.path} in {folder}; decoding it again",
                      file=sys.stderr)
                cached = _decode_into_cache(recording, decode, files[i])
            for sample in cached:
                x[row] = sample
                row += 1
        splits[split] = (x, y)
    return Dataset(*splits["train"], *splits["test"], tuple(label_names), source)


def check_settings(timesteps: int, size: int, split_by: str, frame_norm: str = "none",
                   resize: str = "bin") -> tuple[int, int]:
    """``(timesteps, size)`` as ints after checking them, ``split_by``, ``frame_norm`` and ``resize``;
    raises ValueError."""
    steps = _positive("timesteps", timesteps)
    size = _positive("size", size)
    if size > SENSOR_SIZE:
        raise ValueError(f"size must be in 1..{SENSOR_SIZE} (the DVS128 sensor), got {size}.")
    _check_split_by(split_by)
    if frame_norm not in FRAME_NORMS:
        raise ValueError(f"frame_norm must be one of {FRAME_NORMS}, got {frame_norm!r}.")
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}.")
    return steps, size


def frames_maker(steps: int, size: int, split_by: str, frame_norm: str = "none",
                 resize: str = "bin") -> Callable[[Events], np.ndarray]:
    """``events -> (steps, size, size, 2)`` frames of a DVS128 recording.

    ``resize='bin'``: event coordinates mapped to the ``size`` grid (counts
    add up). ``resize='bilinear'``: frames integrated at 128 x 128, then
    (after ``frame_norm``) resized by :func:`resize_bilinear`.
    ``frame_norm='max'``: each frame divided by its maximum
    (:func:`max_normalise`), before the resize as in the authors' pipeline.
    """
    check_settings(steps, size, split_by, frame_norm, resize)
    downsample = None if size == SENSOR_SIZE or resize == "bilinear" else (size, size)

    def make(events: Events) -> np.ndarray:
        frames = events_to_frames(events, steps, SENSOR_SIZE, SENSOR_SIZE, split_by, downsample)
        if frame_norm == "max":
            frames = max_normalise(frames)
        if resize == "bilinear" and size != SENSOR_SIZE:
            frames = resize_bilinear(frames, size, size)
        return frames

    return make


def visible_files(folder: Path, suffix: str) -> list:
    """Files of ``folder`` ending in ``suffix``, sorted by name; hidden files (``.``, e.g. ``._x``) skipped."""
    return sorted((path for path in folder.iterdir()
                   if path.is_file() and path.suffix == suffix and not path.name.startswith(".")),
                  key=lambda path: path.name)
