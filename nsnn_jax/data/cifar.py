"""CIFAR-10 and CIFAR-100 from the official Python archives, with numpy only.

The official archives (``cifar-10-python.tar.gz``, ``cifar-100-python.tar.gz``)
hold pickled dicts (Python 2 pickles: read with ``encoding="bytes"``, so keys
are bytes such as ``b"data"``). ``b"data"`` is a uint8 ``(n, 3072)`` array whose
rows are channel-planar: 1024 red, then 1024 green, then 1024 blue bytes, each
plane a 32x32 image in row-major order. This module returns NHWC images.

:func:`load_cifar` looks for a data set in the order of :mod:`nsnn_jax.data.sources`:

1. ``data_dir``, when given (an explicit folder never falls through): the
   archive, its extracted folder (``cifar-10-batches-py/``,
   ``cifar-100-python/``), or that extracted folder itself;
2. a copy already prepared by tensorflow-datasets in ``$TFDS_DATA_DIR`` or
   ``~/tensorflow_datasets`` (read with ``tfds.data_source``, which needs no
   TensorFlow; tfds is never allowed to download);
3. the cache (``$NSNN_JAX_DATA/<name>`` or ``~/.cache/nsnn_jax/<name>``);
4. the official download, when online, checked by size and MD5, into the cache.

Archives are read member by member with :mod:`tarfile`, never extracted to
disk. Pickles are read with an unpickler that only accepts the few numpy
globals an array needs, so a tampered archive cannot run code.
"""

from __future__ import annotations

import codecs
import dataclasses
import gzip
import importlib.util
import io
import json
import os
import pickle
import posixpath
import re
import sys
import tarfile
import zlib
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np

from nsnn_jax.data import sources
from nsnn_jax.data.dataset import Dataset
from nsnn_jax.data.download import download_file

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray

__all__ = [
    "CifarSpec",
    "DATASETS",
    "CIFAR10_LABEL_NAMES",
    "CIFAR100_LABEL_NAMES",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "MEAN_STD",
    "AUTHORS_CIFAR10_STD",
    "NORMALIZATIONS",
    "load_cifar",
    "write_cifar_archive",
    "cache_folder",
]

PathLike = Union[str, os.PathLike]

IMAGE_SHAPE = (32, 32, 3)
_ROW_BYTES = 32 * 32 * 3

CIFAR10_LABEL_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR100_LABEL_NAMES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger",
    "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)


# Per-channel statistics of the training sets on the [0, 1] pixel scale.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
#: ``(mean, std)`` per data set name, for :func:`nsnn_jax.data.augment.normalize`.
MEAN_STD = {"cifar10": (CIFAR10_MEAN, CIFAR10_STD), "cifar100": (CIFAR100_MEAN, CIFAR100_STD)}

# The CIFAR-10 std of the NSNN authors' code (a constant common in CIFAR training scripts; not the training
# set's std, which is CIFAR10_STD): the same z-score attack budget is ~1.25x smaller in pixels with ours.
AUTHORS_CIFAR10_STD = (0.2023, 0.1994, 0.2010)
#: ``{"authors": MEAN_STD-like, "dataset": MEAN_STD}``: the z-scoring constants per data set name.
#: ``"authors"`` holds the NSNN authors' CIFAR-10 constants (mean CIFAR10_MEAN, std AUTHORS_CIFAR10_STD).
#: The authors published no CIFAR-100 code or constants, so ``"authors"`` uses the data set's own
#: CIFAR-100 statistics (the same as ``"dataset"``).
NORMALIZATIONS = {
    "authors": {"cifar10": (CIFAR10_MEAN, AUTHORS_CIFAR10_STD), "cifar100": (CIFAR100_MEAN, CIFAR100_STD)},
    "dataset": MEAN_STD,
}


@dataclasses.dataclass(frozen=True)
class CifarSpec:
    """What a CIFAR data set is and where to get it.

    Attributes:
      name: the data set's name, a key of :data:`DATASETS`.
      url: the official download.
      md5: published MD5 of the download (hex).
      size: size of the download in bytes.
      archive: file name of the download.
      folder: the folder inside the archive.
      train_member: CIFAR-10: prefix of the train batches ``data_batch_1..K``;
        CIFAR-100: the single train file.
      batched: whether the train set is split into numbered batches.
      test_member: the test file.
      meta_member: the file with the class names.
      label_key: key of the labels in a batch (without the ``b``).
      names_key: key of the class names in the meta file.
      num_classes: labels are in ``0..num_classes - 1``.
      n_train: number of training images of the official set.
      n_test: number of test images of the official set.
    """

    name: str
    url: str
    md5: str
    size: int
    archive: str
    folder: str
    train_member: str
    batched: bool
    test_member: str
    meta_member: str
    label_key: str
    names_key: str
    num_classes: int
    n_train: int = 50000
    n_test: int = 10000


DATASETS: dict[str, CifarSpec] = {
    "cifar10": CifarSpec(
        name="cifar10",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        md5="c58f30108f718f92721af3b95e74349a",
        size=170498071,
        archive="cifar-10-python.tar.gz",
        folder="cifar-10-batches-py",
        train_member="data_batch_",
        batched=True,
        test_member="test_batch",
        meta_member="batches.meta",
        label_key="labels",
        names_key="label_names",
        num_classes=10,
    ),
    "cifar100": CifarSpec(
        name="cifar100",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        md5="eb9058c3a382ffc7106e4002c42a8d85",
        size=169001437,
        archive="cifar-100-python.tar.gz",
        folder="cifar-100-python",
        train_member="train",
        batched=False,
        test_member="test",
        meta_member="meta",
        label_key="fine_labels",
        names_key="fine_label_names",
        num_classes=100,
    ),
}

_DEFAULT_NAMES = {"cifar10": CIFAR10_LABEL_NAMES, "cifar100": CIFAR100_LABEL_NAMES}


def _get_spec(name: Union[str, CifarSpec]) -> CifarSpec:
    if isinstance(name, CifarSpec):
        return name
    key = str(name).lower().replace("-", "").replace("_", "")
    if key not in DATASETS:
        raise ValueError(f"Unknown CIFAR dataset {name!r}; known: {', '.join(sorted(DATASETS))}.")
    return DATASETS[key]


def cache_folder(name: Union[str, CifarSpec], cache_dir: Optional[PathLike] = None) -> Path:
    """The cache folder of data set ``name``.

    Args:
      name: ``"cifar10"`` or ``"cifar100"``.
      cache_dir: cache root; default ``$NSNN_JAX_DATA`` or ``~/.cache/nsnn_jax``.

    Returns:
      ``<root>/<name>``, the folder that holds the downloaded archive.
    """
    return sources.cache_root(cache_dir) / _get_spec(name).name


# --------------------------------------------------------------------------- pickles


class _Unpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes and numpy arrays; refuses every other global."""

    def find_class(self, module, name):
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in ("_reconstruct", "scalar"):
            return getattr(_multiarray, name)
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if (module, name) == ("_codecs", "encode"):  # bytes in protocol-2 pickles written by Python 3
            return codecs.encode
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR pickle")


def _load_pickle(data: bytes, where: str) -> dict:
    """The pickled dict, keys decoded to str. Raises ValueError naming ``where``."""
    try:
        obj = _Unpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as error:  # corrupt pickles raise almost anything
        raise ValueError(f"{where}: not a readable CIFAR pickle ({type(error).__name__}: {error}).") from error
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a pickled dict, got {type(obj).__name__}.")
    return {key.decode("latin-1") if isinstance(key, bytes) else key: value for key, value in obj.items()}


def _rows_to_nhwc(rows: np.ndarray) -> np.ndarray:
    """``(n, 3072)`` channel-planar rows -> ``(n, 32, 32, 3)``, contiguous."""
    return np.ascontiguousarray(rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def _nhwc_to_rows(images: np.ndarray) -> np.ndarray:
    """``(n, 32, 32, 3)`` -> ``(n, 3072)`` channel-planar rows, contiguous."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(len(images), _ROW_BYTES))


def _parse_batch(spec: CifarSpec, batch: dict, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows, labels) of one batch dict; raises ValueError naming ``where``."""
    for key in ("data", spec.label_key):
        if key not in batch:
            raise ValueError(f"{where}: no {key!r} entry (keys: {', '.join(map(str, batch))}).")
    rows = np.asarray(batch["data"])
    if rows.dtype != np.uint8 or rows.ndim != 2 or rows.shape[1] != _ROW_BYTES:
        raise ValueError(f"{where}: expected uint8 data (n, {_ROW_BYTES}), got {rows.dtype} {rows.shape}.")
    labels = np.asarray(batch[spec.label_key])
    if labels.size == 0:
        labels = labels.astype(np.int64)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"{where}: expected a 1-D list of integer {spec.label_key}, got {labels.dtype} "
                         f"{labels.shape}.")
    if len(labels) != len(rows):
        raise ValueError(f"{where}: {len(labels)} {spec.label_key} but {len(rows)} images.")
    return rows, labels


def _parse_names(spec: CifarSpec, meta: dict, where: str) -> tuple:
    names = meta.get(spec.names_key)
    if not isinstance(names, (list, tuple)) or len(names) != spec.num_classes:
        raise ValueError(f"{where}: expected {spec.num_classes} {spec.names_key}, got "
                         f"{len(names) if isinstance(names, (list, tuple)) else type(names).__name__}.")
    return tuple(name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name) for name in names)


def _train_keys(spec: CifarSpec, names) -> list:
    """The train member names among ``names``, in order (CIFAR-10: data_batch_1..K by number)."""
    if not spec.batched:
        return [spec.train_member] if spec.train_member in names else []
    pattern = re.compile(re.escape(spec.train_member) + r"([1-9][0-9]*)")
    numbered = {int(m.group(1)): name for name in names if (m := pattern.fullmatch(name))}
    return [numbered[k] for k in sorted(numbered)]


def _wanted(spec: CifarSpec, name: str) -> bool:
    return name in (spec.test_member, spec.meta_member) or bool(_train_keys(spec, [name]))


def _check_labels(spec: CifarSpec, labels: np.ndarray, where: str) -> None:
    if len(labels) and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise ValueError(f"{where}: labels must be in 0..{spec.num_classes - 1}, "
                         f"got {labels.min()}..{labels.max()}.")


def _check_batch_numbers(spec: CifarSpec, train_keys: list, batch_label, where: str) -> None:
    """Checks that the train batches are 1..K, K from ``"training batch 1 of K"`` when it says so."""
    numbers = [int(key[len(spec.train_member):]) for key in train_keys]
    if isinstance(batch_label, str):
        batch_label = batch_label.encode("latin-1", "replace")
    declared = re.search(rb"of ([0-9]+)", batch_label) if isinstance(batch_label, bytes) else None
    expected = list(range(1, (int(declared.group(1)) if declared else max(numbers)) + 1))
    if numbers != expected:
        missing = [f"{spec.train_member}{k}" for k in expected if k not in numbers]
        extra = [f"{spec.train_member}{k}" for k in numbers if k not in expected]
        raise ValueError(f"{where}: expected train batches {spec.train_member}1..{expected[-1]}; "
                         f"missing: {', '.join(missing) or 'none'}; unexpected: {', '.join(extra) or 'none'} "
                         f"(truncated or incomplete copy?).")


def _parse_members(spec: CifarSpec, members: dict, where: str, source: str,
                   official: bool) -> Dataset:
    """Builds the data set from the member files' bytes (``where``: the archive or folder, for errors)."""
    train_keys = _train_keys(spec, members)
    missing = [key for key in (spec.meta_member, spec.test_member) if key not in members]
    if not train_keys:
        missing.insert(0, spec.train_member + ("1" if spec.batched else ""))
    if missing:
        raise ValueError(f"{where}: lacks {', '.join(missing)} (truncated, or not the {spec.name} data?).")
    batches = [_load_pickle(members[key], f"{where}: {key}") for key in train_keys]
    if spec.batched:
        _check_batch_numbers(spec, train_keys, batches[0].get("batch_label"), where)
    parsed = [_parse_batch(spec, batch, f"{where}: {key}") for key, batch in zip(train_keys, batches)]
    test_rows, test_labels = _parse_batch(spec, _load_pickle(members[spec.test_member],
                                                             f"{where}: {spec.test_member}"),
                                          f"{where}: {spec.test_member}")
    names = _parse_names(spec, _load_pickle(members[spec.meta_member], f"{where}: {spec.meta_member}"),
                         f"{where}: {spec.meta_member}")
    train_rows = np.concatenate([rows for rows, _ in parsed]) if len(parsed) > 1 else parsed[0][0]
    train_labels = np.concatenate([labels for _, labels in parsed])
    _check_labels(spec, train_labels, f"{where}: {spec.train_member}{'*' if spec.batched else ''}")
    _check_labels(spec, test_labels, f"{where}: {spec.test_member}")
    if official and (len(train_rows), len(test_rows)) != (spec.n_train, spec.n_test):
        raise ValueError(f"{where}: expected {spec.n_train} train and {spec.n_test} test images of the official "
                         f"{spec.name}, got {len(train_rows)} and {len(test_rows)}.")
    return Dataset(_rows_to_nhwc(train_rows), train_labels.astype(np.int32), _rows_to_nhwc(test_rows),
                   test_labels.astype(np.int32), names, source)


# --------------------------------------------------------------------------- archive and folder


def _read_archive_members(spec: CifarSpec, path: Path) -> dict:
    """The wanted members' bytes, read in one sequential pass without extracting to disk."""
    members = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                parent, base = posixpath.split(posixpath.normpath(member.name))
                if member.isfile() and posixpath.basename(parent) == spec.folder and _wanted(spec, base):
                    members[base] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise ValueError(f"{path}: corrupt or truncated archive ({type(error).__name__}: {error}).") from error
    return members


def _folder_has_data(spec: CifarSpec, folder: Path) -> bool:
    return (folder / spec.meta_member).is_file() and (folder / spec.test_member).is_file()


def _read_folder_members(spec: CifarSpec, folder: Path) -> dict:
    names = [path.name for path in folder.iterdir() if path.is_file() and _wanted(spec, path.name)]
    return {name: (folder / name).read_bytes() for name in names}


def _locate(spec: CifarSpec, folder: Path) -> Optional[Path]:
    """The archive or extracted folder holding ``spec`` in ``folder``, or None.

    In order: ``folder`` itself when it is a file (the archive); the extracted
    folder inside it (no decompression needed); the archive inside it;
    ``folder`` itself when it is the extracted folder.
    """
    if folder.is_file():
        return folder
    if _folder_has_data(spec, folder / spec.folder):
        return folder / spec.folder
    if (folder / spec.archive).is_file():
        return folder / spec.archive
    if _folder_has_data(spec, folder):
        return folder
    return None


def _read_local(spec: CifarSpec, path: Path, source: str, official: bool) -> Dataset:
    """Loads an archive file or an extracted folder."""
    members = _read_folder_members(spec, path) if path.is_dir() else _read_archive_members(spec, path)
    return _parse_members(spec, members, str(path), source, official)


# --------------------------------------------------------------------------- tensorflow-datasets


def _tfds_prepared(spec: CifarSpec, tfds_dir: Path) -> Optional[Path]:
    """The newest ``<tfds_dir>/<name>/<x.y.z>/`` holding a dataset_info.json, or None."""
    base = tfds_dir / spec.name
    if not base.is_dir():
        return None
    versions = [path for path in base.iterdir()  # skips tfds's "incomplete.*" folders of aborted builds
                if re.fullmatch(r"\d+\.\d+\.\d+", path.name) and (path / "dataset_info.json").is_file()]
    if not versions:
        return None
    return max(versions, key=lambda path: tuple(int(part) for part in path.name.split(".")))


def _sorted_by_id(images, labels, ids):
    """Restores the archive's order (tfds ids are ``train_00042``); tfds stores the examples shuffled."""
    if ids is None or len(ids) == 0:
        return images, labels
    order = np.argsort(np.asarray(ids), kind="stable")
    return images[order], labels[order]


def _tfds_data_source_split(tfds, name: str, split: str, data_dir: str):
    """(images, labels, label names) of a prepared array_record copy, without TensorFlow."""
    source = tfds.data_source(name, split=split, data_dir=data_dir, download=False, try_gcs=False)
    getitems = getattr(source, "__getitems__", None)
    records = list(getitems(list(range(len(source))))) if getitems else [source[i] for i in range(len(source))]
    images = np.stack([np.asarray(record["image"]) for record in records]) if records else (
        np.zeros((0,) + IMAGE_SHAPE, np.uint8))
    labels = np.asarray([int(record["label"]) for record in records], np.int64)
    ids = [record["id"] for record in records] if records and "id" in records[0] else None
    images, labels = _sorted_by_id(images, labels, ids)
    return images, labels, tuple(source.dataset_info.features["label"].names)


def _tfds_load_split(tfds, name: str, split: str, data_dir: str):
    """(images, labels, label names) of a prepared copy through TensorFlow (tfrecord copies)."""
    arrays = tfds.as_numpy(tfds.load(name, split=split, data_dir=data_dir, download=False, batch_size=-1,
                                     try_gcs=False))
    names = tfds.builder(name, data_dir=data_dir, try_gcs=False).info.features["label"].names
    images, labels = _sorted_by_id(np.asarray(arrays["image"]), np.asarray(arrays["label"]), arrays.get("id"))
    return images, labels, tuple(names)


def _from_tfds(spec: CifarSpec, tfds_dir: Path, tried: list) -> Optional[Dataset]:
    """Loads a prepared tfds copy, or returns None after noting in ``tried`` why not.

    Nothing here can download: tfds is only imported, and only called with
    ``download=False``, once a prepared version folder exists.
    """
    version_dir = _tfds_prepared(spec, tfds_dir)
    if version_dir is None:
        tried.append(f"tensorflow-datasets: no prepared copy in {tfds_dir / spec.name}/<version>/")
        return None
    where = f"tensorflow-datasets copy {version_dir}"
    try:
        file_format = json.loads((version_dir / "dataset_info.json").read_text()).get("fileFormat", "tfrecord")
    except (OSError, ValueError) as error:
        tried.append(f"{where}: unreadable dataset_info.json ({error})")
        return None
    if file_format != "array_record" and importlib.util.find_spec("tensorflow") is None:
        tried.append(f"{where}: stored as {file_format}, which needs TensorFlow (not installed)")
        return None
    try:
        import tensorflow_datasets as tfds  # lazy: slow, and its import failures must not matter elsewhere
    except Exception as error:  # noqa: BLE001 - any import failure only disables this source
        tried.append(f"{where}: cannot import tensorflow_datasets ({type(error).__name__}: {error})")
        return None
    read = _tfds_data_source_split if file_format == "array_record" else _tfds_load_split
    name, data_dir = f"{spec.name}:{version_dir.name}", str(version_dir.parent.parent)
    try:
        (train_images, train_labels, names), (test_images, test_labels, _) = (
            read(tfds, name, split, data_dir) for split in ("train", "test"))
        for split, images, labels in (("train", train_images, train_labels), ("test", test_images, test_labels)):
            if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE or len(labels) != len(images):
                raise ValueError(f"{split}: expected uint8 images (n, 32, 32, 3) with n labels, got "
                                 f"{images.dtype} {images.shape} and {len(labels)} labels")
            _check_labels(spec, labels, split)
    except Exception as error:  # noqa: BLE001 - a broken or incompatible copy falls through to the cache
        tried.append(f"{where}: failed ({type(error).__name__}: {error})")
        print(f"warning: could not read {where}: {type(error).__name__}: {error}", file=sys.stderr)
        return None
    return Dataset(train_images, train_labels.astype(np.int32), test_images, test_labels.astype(np.int32),
                   names, f"tfds: {version_dir}")


# --------------------------------------------------------------------------- loading


def _from_data_dir(spec: CifarSpec, folder: Path) -> Dataset:
    if not folder.exists():
        raise sources.DataNotFoundError(f"{sources.DATA_DIR} {folder} does not exist (it should hold {spec.archive} "
                                        f"or {spec.folder}/).")
    path = _locate(spec, folder)
    if path is None:
        raise sources.DataNotFoundError(
            f"{sources.DATA_DIR} {folder} holds neither {spec.archive} nor its extracted folder {spec.folder}/ "
            f"(with {spec.meta_member}, {spec.test_member} and {spec.train_member}{'1..5' if spec.batched else ''}).")
    return _read_local(spec, path, f"data_dir: {path}", official=False)


def _from_cache(spec: CifarSpec, cache: Path, tried: list) -> Optional[Dataset]:
    path = _locate(spec, cache) if cache.is_dir() else None
    if path is None:
        tried.append(f"cache {cache}: no {spec.archive} or {spec.folder}/")
        return None
    try:
        return _read_local(spec, path, f"cache: {path}", official=True)
    except ValueError as error:
        raise ValueError(f"{error} Delete it to download it again.") from error


def load_cifar(name: Union[str, CifarSpec], data_dir: Optional[PathLike] = None,
               cache_dir: Optional[PathLike] = None, download: bool = True, *,
               tfds_dir: Optional[PathLike] = None,
               reachable: Optional[Callable[[str, float], bool]] = None) -> Dataset:
    """Loads CIFAR-10 or CIFAR-100.

    Args:
      name: ``"cifar10"`` or ``"cifar100"``, or a :class:`CifarSpec` (e.g. a
        copy of one of :data:`DATASETS` with other counts or another URL).
      data_dir: a folder holding the official archive or its extracted folder,
        the extracted folder itself, or the archive file; when given, it is the
        only source.
      cache_dir: cache root (default ``$NSNN_JAX_DATA`` or ``~/.cache/nsnn_jax``);
        the archive lives in ``<cache_dir>/<name>``.
      download: whether to download the archive into the cache when no local
        copy exists and the server is reachable.
      tfds_dir: the tensorflow-datasets folder searched for a prepared copy;
        default ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``.
      reachable: ``reachable(url, timeout) -> bool``, the check that the
        download server answers; default :func:`nsnn_jax.data.download.is_reachable`.

    Returns:
      A :class:`~nsnn_jax.data.Dataset`: ``train_x`` / ``test_x`` uint8 NHWC
      RGB images ``(n, 32, 32, 3)``, ``train_y`` / ``test_y`` int32 labels
      ``(n,)`` (CIFAR-100: the fine labels), the class names, the source.

    Raises:
      ValueError: unknown ``name``; a corrupt, truncated or inconsistent archive,
        folder or pickle (the message names the file); a download with the
        wrong size or MD5 (the file is deleted).
      DataNotFoundError: (a ``FileNotFoundError``) ``data_dir`` lacks the
        data, or no source had it (the message says where to put the archive).
    """
    spec = _get_spec(name)
    cache = cache_folder(spec, cache_dir)
    tfds_folder = sources.tfds_data_dir(tfds_dir)

    def fetch(bases: list, tried: list) -> Optional[Dataset]:
        try:
            path = download_file(spec.url, cache, spec.archive, spec.size, spec.md5)
        except OSError as error:  # urllib.error.URLError included
            tried.append(f"download {spec.url}: {error}")
            return None
        return _read_local(spec, path, f"download: {spec.url} -> {path}", official=True)

    ways = [
        f"put {spec.archive} in the cache folder {cache}",
        f"download {spec.archive} (needs internet) from {spec.url} (MD5 {spec.md5}); run again online and it is "
        f"downloaded into the cache",
        f"prepare it with tensorflow-datasets (`tfds build {spec.name}`, needs TensorFlow) into "
        f"$TFDS_DATA_DIR or ~/tensorflow_datasets",
    ]
    return sources.search(
        spec.name, data_dir, lambda folder: _from_data_dir(spec, folder),
        prepared=[lambda tried: _from_tfds(spec, tfds_folder, tried)],
        from_cache=lambda tried: _from_cache(spec, cache, tried),
        fetch=fetch, urls=[spec.url], download=download,
        data_dir_holds=f"{spec.archive} or its extracted folder {spec.folder}/", ways=ways, reachable=reachable)


# --------------------------------------------------------------------------- writing


def _check_split_arrays(spec: CifarSpec, images, labels, split: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = np.asarray(images), np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"write_cifar_archive: {split}_images must be uint8 (n, 32, 32, 3), got "
                         f"{images.dtype} {images.shape}.")
    if labels.size == 0:
        labels = labels.astype(np.int64)
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(images):
        raise ValueError(f"write_cifar_archive: {split}_labels must be {len(images)} integers, got "
                         f"{labels.dtype} {labels.shape}.")
    _check_labels(spec, labels, f"write_cifar_archive: {split}_labels")
    return images, labels


def _pickle(obj: dict) -> bytes:
    return pickle.dumps(obj, protocol=3)  # bytes stay bytes (protocol 2 would route them through latin-1 text)


def write_cifar_archive(path: PathLike, train_images: np.ndarray, train_labels: np.ndarray,
                        test_images: np.ndarray, test_labels: np.ndarray, name: str = "cifar10",
                        label_names: Optional[Sequence[str]] = None, batches: int = 5) -> Path:
    """Writes an archive in the official CIFAR Python format (for tests and fixtures).

    The tar.gz holds the official folder (``cifar-10-batches-py/`` or
    ``cifar-100-python/``) with the official members: CIFAR-10 ``data_batch_1..K``,
    ``test_batch``, ``batches.meta``; CIFAR-100 ``train``, ``test``, ``meta``
    (with fine labels and placeholder coarse labels ``fine // 5``, which are
    not the official superclasses). Pickles have bytes keys, uint8
    channel-planar ``(n, 3072)`` ``data``, and labels as lists of ints. Same
    arrays, same bytes (zeroed timestamps), so the MD5 is reproducible.

    Args:
      path: the archive to write, or an existing folder, in which case the
        official file name (e.g. ``cifar-10-python.tar.gz``) is used in it.
      train_images: uint8, ``(n_train, 32, 32, 3)`` NHWC.
      train_labels: integers, ``(n_train,)``, in ``0..num_classes - 1``.
      test_images: uint8, ``(n_test, 32, 32, 3)``.
      test_labels: integers, ``(n_test,)``.
      name: ``"cifar10"`` or ``"cifar100"``.
      label_names: ``num_classes`` class names; default the official ones.
      batches: CIFAR-10 only: number of train batches (official: 5), each
        ``ceil(n_train / batches)`` images but the last.

    Returns:
      The path of the archive written.

    Raises:
      ValueError: unknown ``name``, bad shapes, dtypes, labels, ``label_names``
        or ``batches``.
    """
    spec = _get_spec(name)
    train_images, train_labels = _check_split_arrays(spec, train_images, train_labels, "train")
    test_images, test_labels = _check_split_arrays(spec, test_images, test_labels, "test")
    names = tuple(_DEFAULT_NAMES[spec.name] if label_names is None else label_names)
    if len(names) != spec.num_classes:
        raise ValueError(f"write_cifar_archive: {spec.name} needs {spec.num_classes} label_names, got {len(names)}.")
    encoded_names = [str(label).encode("utf-8") for label in names]
    members = {}
    if spec.batched:
        if int(batches) != batches or batches < 1 or (len(train_images) and batches > len(train_images)):
            raise ValueError(f"write_cifar_archive: batches must be in 1..{max(len(train_images), 1)}, "
                             f"got {batches}.")
        batches = int(batches)
        per_batch = -(-len(train_images) // batches)
        for k in range(batches):
            index = np.arange(k * per_batch, min((k + 1) * per_batch, len(train_images)))
            members[f"{spec.train_member}{k + 1}"] = _pickle({
                b"batch_label": f"training batch {k + 1} of {batches}".encode(),
                b"labels": [int(label) for label in train_labels[index]],
                b"data": _nhwc_to_rows(train_images[index]),
                b"filenames": [f"train_{i:05d}.png".encode() for i in index],
            })
        members[spec.test_member] = _pickle({
            b"batch_label": b"testing batch 1 of 1",
            b"labels": [int(label) for label in test_labels],
            b"data": _nhwc_to_rows(test_images),
            b"filenames": [f"test_{i:05d}.png".encode() for i in range(len(test_images))],
        })
        members[spec.meta_member] = _pickle({
            b"num_cases_per_batch": per_batch, b"label_names": encoded_names, b"num_vis": _ROW_BYTES})
    else:
        for member, split, images, labels in ((spec.train_member, "training", train_images, train_labels),
                                              (spec.test_member, "testing", test_images, test_labels)):
            members[member] = _pickle({
                b"filenames": [f"{member}_{i:05d}.png".encode() for i in range(len(images))],
                b"batch_label": f"{split} batch 1 of 1".encode(),
                b"fine_labels": [int(label) for label in labels],
                b"coarse_labels": [int(label) // 5 for label in labels],
                b"data": _nhwc_to_rows(images),
            })
        members[spec.meta_member] = _pickle({
            b"fine_label_names": encoded_names,
            b"coarse_label_names": [f"superclass_{i}".encode() for i in range(spec.num_classes // 5)]})
    path = Path(path)
    if path.is_dir():
        path = path / spec.archive
    raw = io.BytesIO()
    # mtime=0 in the gzip header and the tar entries: same arrays, same bytes.
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz, \
            tarfile.open(fileobj=gz, mode="w") as tar:
        folder = tarfile.TarInfo(spec.folder)
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        for member, data in members.items():
            info = tarfile.TarInfo(f"{spec.folder}/{member}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(raw.getvalue())
    return path
