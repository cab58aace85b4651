"""MNIST and Fashion-MNIST from IDX files, with numpy only.

The IDX format (LeCun's MNIST format) is a 4-byte magic ``0x00 0x00 <dtype
code> <ndim>``, then ``ndim`` big-endian uint32 dimensions, then the row-major
big-endian payload. Files are usually gzipped.

:func:`load_idx_dataset` looks for the four files of a data set in the order
of :mod:`nsnn_jax.data.sources`:

1. ``data_dir``, when given (an explicit folder never falls through);
2. a system folder (Debian's ``dataset-fashion-mnist`` installs
   ``/usr/share/datasets/fashion-mnist/``), see :data:`SYSTEM_DIRS`;
3. the cache (``$NSNN_JAX_DATA/<name>`` or ``~/.cache/nsnn_jax/<name>``);
4. the official download, when online, checked by size and MD5.

Local copies are validated by parsing, not by MD5: Debian re-gzips the files,
so their MD5 differs from the official downloads while the content is the same.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import os
import urllib.error
import urllib.parse
import zlib
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np

from nsnn_jax.data import sources
from nsnn_jax.data.dataset import Dataset
from nsnn_jax.data.download import download_file

__all__ = [
    "IdxFile",
    "DatasetSpec",
    "DATASETS",
    "SYSTEM_DIRS",
    "FASHION_MNIST_LABEL_NAMES",
    "MNIST_LABEL_NAMES",
    "FILE_KEYS",
    "MEAN_STD",
    "read_idx",
    "write_idx",
    "load_idx_dataset",
    "cache_folder",
]

PathLike = Union[str, os.PathLike]

# IDX dtype codes; the payload is always big-endian.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"

# The four files of a data set, by role, in loading order.
FILE_KEYS = ("train_images", "train_labels", "test_images", "test_labels")


@dataclasses.dataclass(frozen=True)
class IdxFile:
    """One official download.

    Attributes:
      name: file name, ending in ``.gz``.
      size: published size of the download in bytes.
      md5: published MD5 of the download (hex).
    """

    name: str
    size: int
    md5: str


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What a data set is and where to get it.

    Attributes:
      name: the data set's name, a key of :data:`DATASETS`.
      urls: base URLs of the official download, tried in order.
      files: the four :class:`IdxFile`, keyed by :data:`FILE_KEYS`.
      n_train: number of training images of the official set.
      n_test: number of test images of the official set.
      apt_package: Debian package that installs the files, if any.
      apt_dir: folder where ``apt_package`` puts them.
      image_shape: shape of one image.
      num_classes: labels are in ``0..num_classes - 1``.
      label_names: the class names, ``label_names[label]``.
    """

    name: str
    urls: tuple[str, ...]
    files: dict
    n_train: int = 60000
    n_test: int = 10000
    apt_package: Optional[str] = None
    apt_dir: Optional[str] = None
    image_shape: tuple[int, int] = (28, 28)
    num_classes: int = 10
    label_names: tuple[str, ...] = ()


FASHION_MNIST_LABEL_NAMES = ("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
                             "bag", "ankle boot")
MNIST_LABEL_NAMES = tuple(str(digit) for digit in range(10))


def _files(sizes_md5s):
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    return {key: IdxFile(name, size, md5) for key, name, (size, md5) in zip(FILE_KEYS, names, sizes_md5s)}


DATASETS: dict[str, DatasetSpec] = {
    "fashion_mnist": DatasetSpec(
        name="fashion_mnist",
        urls=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        files=_files([
            (26421880, "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            (29515, "25c81989df183df01b3e8a0aad5dffbe"),
            (4422102, "bef4ecab320f06d8554ea6380940ec79"),
            (5148, "bb300cfdad3c16e7a12a480ee83cd310"),
        ]),
        apt_package="dataset-fashion-mnist",
        apt_dir="/usr/share/datasets/fashion-mnist/",
        label_names=FASHION_MNIST_LABEL_NAMES,
    ),
    "mnist": DatasetSpec(
        name="mnist",
        urls=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        files=_files([
            (9912422, "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
            (28881, "d53e105ee54ea40749a09fcbcd1e9432"),
            (1648877, "9fb629c4189551a2d022fa330f9573f3"),
            (4542, "ec29112dd5afa0611ce80d1b7f02629c"),
        ]),
        label_names=MNIST_LABEL_NAMES,
    ),
}

# Per-channel (mean, std) of the training images on the [0, 1] pixel scale (one grey channel), for z-scoring:
# the mean and population std over all 60,000 x 28 x 28 pixels of Fashion-MNIST's official
# train-images-idx3-ubyte.gz (Debian's dataset-fashion-mnist copy; the content equals the official file), as
# `x = load_idx_dataset("fashion_mnist").train_x / 255; x.mean(), x.std()` gives them: 0.286041, 0.353024.
MEAN_STD: dict[str, tuple[tuple[float], tuple[float]]] = {
    "fashion_mnist": ((0.2860,), (0.3530,)),
}

# System folders searched per data set by default.
SYSTEM_DIRS: dict[str, tuple[str, ...]] = {
    "fashion_mnist": ("/usr/share/datasets/fashion-mnist/",),
    "mnist": (),
}


# --------------------------------------------------------------------------- IDX format


def _read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped if it starts with the gzip magic."""
    with open(path, "rb") as handle:
        raw = handle.read()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f"{path}: corrupt or truncated gzip data ({type(error).__name__}: {error}).") from error


def read_idx(path: PathLike) -> np.ndarray:
    """Reads an IDX file, gzipped or not.

    Args:
      path: the file. Gzip is detected by its magic bytes, not by the name.

    Returns:
      The array, in native byte order, with the file's shape.

    Raises:
      ValueError: bad magic, unknown dtype code, truncated or corrupt data, or
        a payload size that does not match the dimensions; the message names
        the file.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path}: too short for an IDX header ({len(data)} bytes).")
    zero0, zero1, code, ndim = data[:4]
    if zero0 != 0 or zero1 != 0:
        raise ValueError(f"{path}: bad IDX magic {data[:4].hex()} (expected 0000<dtype><ndim>).")
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX dtype code 0x{code:02x} (known: "
                         f"{', '.join(f'0x{c:02x}' for c in _IDX_DTYPES)}).")
    if ndim == 0:
        raise ValueError(f"{path}: IDX header has 0 dimensions.")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes, need {header}).")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    # Python ints: no overflow for absurd headers, and nothing is allocated before the check.
    expected = dtype.itemsize * int(np.prod(shape, dtype=object))
    got = len(data) - header
    if got != expected:
        raise ValueError(f"{path}: payload is {got} bytes but dimensions {shape} of {dtype.name} need "
                         f"{expected} bytes (truncated or corrupt file).")
    array = np.frombuffer(data, dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # native order, and a writable copy


def write_idx(path: PathLike, array: np.ndarray) -> None:
    """Writes ``array`` as an IDX file, gzipped when ``path`` ends in ``.gz``.

    Args:
      path: destination file.
      array: uint8, int8, int16, int32, float32 or float64 array, ndim >= 1.

    Raises:
      ValueError: unsupported dtype or ndim.
    """
    array = np.asarray(array)
    codes = {dtype.newbyteorder("=").str: code for code, dtype in _IDX_DTYPES.items()}
    key = array.dtype.newbyteorder("=").str
    if key not in codes:
        raise ValueError(f"write_idx: dtype {array.dtype} has no IDX code.")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx: ndim must be in 1..255, got {array.ndim}.")
    code = codes[key]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    data = header + np.ascontiguousarray(array, _IDX_DTYPES[code]).tobytes()
    if str(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)  # mtime=0: same array, same bytes, same MD5
    Path(path).write_bytes(data)


# --------------------------------------------------------------------------- local folders


def _get_spec(name: Union[str, DatasetSpec]) -> DatasetSpec:
    if isinstance(name, DatasetSpec):
        return name
    key = str(name).lower().replace("-", "_")
    if key not in DATASETS:
        raise ValueError(f"Unknown IDX dataset {name!r}; known: {', '.join(sorted(DATASETS))}.")
    return DATASETS[key]


def _find_files(spec: DatasetSpec, folder: Path) -> tuple[dict, list]:
    """Paths of the four files in ``folder`` (``.gz`` or raw name), and the missing names."""
    found, missing = {}, []
    for key, entry in spec.files.items():
        candidates = (folder / entry.name, folder / entry.name[: -len(".gz")])
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            missing.append(entry.name)
        else:
            found[key] = path
    return found, missing


def _check_split(spec, images, labels, image_path, label_path, n_expected):
    """Raises ValueError naming the file when a split is inconsistent."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != spec.image_shape:
        raise ValueError(f"{image_path}: expected uint8 images (n, {spec.image_shape[0]}, "
                         f"{spec.image_shape[1]}), got {images.dtype} {images.shape}.")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"{label_path}: expected 1-D integer labels, got {labels.dtype} {labels.shape}.")
    if len(labels) != len(images):
        raise ValueError(f"{label_path}: {len(labels)} labels but {image_path} holds {len(images)} images.")
    if n_expected is not None and len(images) != n_expected:
        raise ValueError(f"{image_path}: expected {n_expected} images, got {len(images)}.")
    if len(labels) and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise ValueError(f"{label_path}: labels must be in 0..{spec.num_classes - 1}, "
                         f"got {labels.min()}..{labels.max()}.")


def _load_files(spec: DatasetSpec, paths: dict, source: str, official: bool) -> Dataset:
    """Parses and validates the four files; ``official`` also checks the published counts."""
    arrays = {key: read_idx(paths[key]) for key in FILE_KEYS}
    for split, n_expected in (("train", spec.n_train), ("test", spec.n_test)):
        _check_split(spec, arrays[f"{split}_images"], arrays[f"{split}_labels"],
                     paths[f"{split}_images"], paths[f"{split}_labels"], n_expected if official else None)
    return Dataset(arrays["train_images"], arrays["train_labels"].astype(np.int32),
                   arrays["test_images"], arrays["test_labels"].astype(np.int32), tuple(spec.label_names), source)


def cache_folder(name: Union[str, DatasetSpec], cache_dir: Optional[PathLike] = None) -> Path:
    """The cache folder of data set ``name``.

    Args:
      name: data set name.
      cache_dir: cache root; default ``$NSNN_JAX_DATA`` or ``~/.cache/nsnn_jax``.

    Returns:
      ``<root>/<name>``: a per-set subfolder, since MNIST and Fashion-MNIST
      share their file names.
    """
    return sources.cache_root(cache_dir) / _get_spec(name).name


# --------------------------------------------------------------------------- download


def _download(base: str, entry: IdxFile, folder: Path) -> Path:
    """Downloads one file into ``folder`` via a temp file, checking size and MD5.

    Raises:
      ValueError: size or MD5 mismatch (the bad file is deleted).
      OSError: network or disk errors (``urllib.error.URLError`` included).
    """
    return download_file(urllib.parse.urljoin(base, entry.name), folder, entry.name, entry.size, entry.md5)


def _download_missing(spec: DatasetSpec, folder: Path, missing: list, bases: list) -> list:
    """Downloads the ``missing`` file names into ``folder``; returns the errors of files that failed."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = {entry.name: entry for entry in spec.files.values()}
    errors = []
    for name in missing:
        for base in bases:
            try:
                _download(base, entries[name], folder)
                break
            except (OSError, urllib.error.URLError) as error:  # try the next mirror
                errors.append(f"{urllib.parse.urljoin(base, name)}: {error}")
        else:
            return errors
    return []


# --------------------------------------------------------------------------- loading


def _from_data_dir(spec: DatasetSpec, folder: Path) -> Dataset:
    paths, missing = _find_files(spec, folder)
    if missing:
        raise sources.DataNotFoundError(f"{sources.DATA_DIR} {folder} lacks {', '.join(missing)} "
                                        f"(the four {spec.name} IDX files, .gz or uncompressed).")
    return _load_files(spec, paths, f"data_dir: {folder}", official=False)


def _from_folder(spec: DatasetSpec, folder: PathLike, label: str, kind: str, tried: list) -> Optional[Dataset]:
    """The data set in ``folder`` (named as given, in messages), or None after noting in ``tried`` why not."""
    paths, missing = _find_files(spec, Path(folder))
    if not missing:
        return _load_files(spec, paths, f"{label}: {folder}", official=True)
    tried.append(f"{kind} {folder}: missing {', '.join(missing)}")
    return None


def load_idx_dataset(name: Union[str, DatasetSpec], data_dir: Optional[PathLike] = None,
                     cache_dir: Optional[PathLike] = None, download: bool = True, *,
                     system_dirs: Optional[Sequence[PathLike]] = None,
                     reachable: Optional[Callable[[str, float], bool]] = None) -> Dataset:
    """Loads MNIST or Fashion-MNIST.

    Args:
      name: ``"fashion_mnist"`` or ``"mnist"``, or a :class:`DatasetSpec`
        (e.g. a copy of one of :data:`DATASETS` with other counts or URLs).
      data_dir: folder holding the four files (``.gz`` or uncompressed); when
        given, it is the only source.
      cache_dir: cache root (default ``$NSNN_JAX_DATA`` or ``~/.cache/nsnn_jax``);
        files live in ``<cache_dir>/<name>``.
      download: whether to download missing files into the cache when online.
      system_dirs: system folders searched before the cache; default
        ``SYSTEM_DIRS[name]``.
      reachable: ``reachable(url, timeout) -> bool``, the check that the
        download server answers; default :func:`nsnn_jax.data.download.is_reachable`.

    Returns:
      A :class:`~nsnn_jax.data.Dataset`: ``train_x`` / ``test_x`` uint8
      images ``(n, 28, 28)``, ``train_y`` / ``test_y`` int32 labels ``(n,)``
      in ``0..9``, the class names and the source.

    Raises:
      ValueError: unknown ``name``; a corrupt, truncated or inconsistent file
        (the message names it); a download with the wrong size or MD5.
      DataNotFoundError: (a ``FileNotFoundError``) ``data_dir`` lacks files,
        or no source had the data (the message says how to get it).
    """
    spec = _get_spec(name)
    folders = SYSTEM_DIRS.get(spec.name, ()) if system_dirs is None else tuple(system_dirs)
    cache = cache_folder(spec, cache_dir)

    def fetch(bases: list, tried: list) -> Optional[Dataset]:
        _, missing = _find_files(spec, cache)
        errors = _download_missing(spec, cache, missing, bases)
        if errors:
            tried.extend(f"download {error}" for error in errors)
            return None
        paths, _ = _find_files(spec, cache)
        return _load_files(spec, paths, f"download: {bases[0]} -> {cache}", official=True)

    names = ", ".join(entry.name for entry in spec.files.values())
    ways = []
    if spec.apt_package:
        ways.append(f"run `sudo apt-get install {spec.apt_package}`, which installs them in {spec.apt_dir}")
    ways.append(f"download them (needs internet) from {' or '.join(spec.urls)}")
    return sources.search(
        spec.name, data_dir, lambda folder: _from_data_dir(spec, folder),
        prepared=[functools.partial(_from_folder, spec, folder, "system", "system folder")
                  for folder in folders],
        from_cache=functools.partial(_from_folder, spec, cache, "cache", "cache"),
        fetch=fetch, urls=spec.urls, download=download,
        data_dir_holds=f"the four files {names} (or the same names without .gz)", ways=ways,
        reachable=reachable)
