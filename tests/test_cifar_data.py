"""The CIFAR-10/100 loader: archive format, sources, errors, download (no network)."""

import dataclasses
import hashlib
import importlib.util
import io
import pickle
import socket
import struct
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from nsnn_jax.data import DataNotFoundError, Dataset, cifar, download

N_TRAIN, N_TEST = 20, 8
NUM_CLASSES = {"cifar10": 10, "cifar100": 100}


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Every test sees empty tfds and cache roots, never the user's own copies."""
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds-empty"))
    monkeypatch.setenv("NSNN_JAX_DATA", str(tmp_path / "cache-env-empty"))


@pytest.fixture
def small_specs():
    """Both specs expecting the small generated sets (official counts), by name; passed to the loader."""
    return {name: dataclasses.replace(spec, n_train=N_TRAIN, n_test=N_TEST) for name, spec in cifar.DATASETS.items()}


def refuse_online(*args, **kwargs):
    pytest.fail("must not go online")


def no_network(monkeypatch):
    """Fails the test on any socket connection; loaders also get ``reachable=refuse_online``."""
    monkeypatch.setattr(socket, "create_connection", refuse_online)
    monkeypatch.setattr(socket.socket, "connect", refuse_online)


def make_arrays(name="cifar10", n_train=N_TRAIN, n_test=N_TEST, seed=0):
    rng = np.random.default_rng(seed)
    num_classes = NUM_CLASSES[name]
    return {
        "train_images": rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8),
        "train_labels": rng.integers(0, num_classes, n_train),
        "test_images": rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8),
        "test_labels": rng.integers(0, num_classes, n_test),
    }


def make_archive(path, name="cifar10", seed=0, **kwargs):
    """Writes an archive to ``path`` (a folder, created, unless it ends in .gz); returns (path, arrays)."""
    path = Path(path)
    if not path.name.endswith(".gz"):
        path.mkdir(parents=True, exist_ok=True)
    arrays = make_arrays(name, seed=seed)
    return cifar.write_cifar_archive(path, **arrays, name=name, **kwargs), arrays


# Dataset field of each array.
FIELDS = {"train_images": "train_x", "train_labels": "train_y", "test_images": "test_x", "test_labels": "test_y"}


def assert_matches(loaded, arrays, label_names=None):
    for key, array in arrays.items():
        np.testing.assert_array_equal(getattr(loaded, FIELDS[key]), array, err_msg=key)
    for key in ("train_x", "test_x"):
        assert getattr(loaded, key).dtype == np.uint8 and getattr(loaded, key).flags.c_contiguous
    assert loaded.train_y.dtype == np.int32 and loaded.test_y.dtype == np.int32
    if label_names is not None:
        assert loaded.label_names == tuple(label_names)


def extract(archive, folder):
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")


# --------------------------------------------------------------------------- archive format


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_archive_round_trip_tar_and_extracted_folder(tmp_path, monkeypatch, name):
    no_network(monkeypatch)
    names = [f"class {i}" for i in range(NUM_CLASSES[name])]
    archive, arrays = make_archive(tmp_path / "data", name, label_names=names)
    assert archive == tmp_path / "data" / cifar.DATASETS[name].archive
    loaded = cifar.load_cifar(name, data_dir=tmp_path / "data", reachable=refuse_online)
    assert_matches(loaded, arrays, names)
    assert loaded.train_x.shape == (N_TRAIN, 32, 32, 3) and loaded.test_y.shape == (N_TEST,)
    assert loaded.source == f"data_dir: {archive}"
    assert isinstance(loaded, Dataset) and loaded.num_classes == NUM_CLASSES[name]

    extract(archive, tmp_path / "extracted")
    folder = tmp_path / "extracted" / cifar.DATASETS[name].folder
    for data_dir in (tmp_path / "extracted", folder):  # the parent, or the extracted folder itself
        loaded = cifar.load_cifar(name, data_dir=data_dir, reachable=refuse_online)
        assert_matches(loaded, arrays, names)
        assert loaded.source == f"data_dir: {folder}"
    assert_matches(cifar.load_cifar(name, data_dir=archive, reachable=refuse_online), arrays, names)  # the archive file itself


def test_archive_members_are_the_official_ones(tmp_path):
    archive, _ = make_archive(tmp_path / "c10.tar.gz", "cifar10", batches=3)
    with tarfile.open(archive, "r:gz") as tar:
        assert tar.getnames() == ["cifar-10-batches-py", "cifar-10-batches-py/data_batch_1",
                                  "cifar-10-batches-py/data_batch_2", "cifar-10-batches-py/data_batch_3",
                                  "cifar-10-batches-py/test_batch", "cifar-10-batches-py/batches.meta"]
        batch = pickle.load(tar.extractfile("cifar-10-batches-py/data_batch_2"), encoding="bytes")
        meta = pickle.load(tar.extractfile("cifar-10-batches-py/batches.meta"), encoding="bytes")
    assert batch[b"batch_label"] == b"training batch 2 of 3"
    assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape == (7, 3072)
    assert isinstance(batch[b"labels"], list) and len(batch[b"labels"]) == 7
    assert meta[b"label_names"][:2] == [b"airplane", b"automobile"]
    archive, arrays = make_archive(tmp_path / "c100.tar.gz", "cifar100")
    with tarfile.open(archive, "r:gz") as tar:
        assert tar.getnames() == ["cifar-100-python", "cifar-100-python/train", "cifar-100-python/test",
                                  "cifar-100-python/meta"]
        train = pickle.load(tar.extractfile("cifar-100-python/train"), encoding="bytes")
        meta = pickle.load(tar.extractfile("cifar-100-python/meta"), encoding="bytes")
    assert train[b"fine_labels"] == arrays["train_labels"].tolist() and len(train[b"coarse_labels"]) == N_TRAIN
    assert len(meta[b"fine_label_names"]) == 100 and len(meta[b"coarse_label_names"]) == 20
    # Same arrays, same bytes: the MD5 of a written archive is reproducible.
    again = cifar.write_cifar_archive(tmp_path / "again.tar.gz", **arrays, name="cifar100")
    assert again.read_bytes() == archive.read_bytes()


def test_statistics_constants():
    assert cifar.MEAN_STD == {"cifar10": (cifar.CIFAR10_MEAN, cifar.CIFAR10_STD),
                              "cifar100": (cifar.CIFAR100_MEAN, cifar.CIFAR100_STD)}
    assert cifar.CIFAR10_MEAN == (0.4914, 0.4822, 0.4465)
    assert cifar.CIFAR10_STD == (0.2470, 0.2435, 0.2616)
    assert cifar.CIFAR100_MEAN == (0.5071, 0.4865, 0.4409)
    assert cifar.CIFAR100_STD == (0.2673, 0.2564, 0.2762)


def test_normalizations_authors_and_dataset():
    """The authors' CIFAR-10 constants (their dataset_utils.py); CIFAR-100: unpublished, the data set's own."""
    assert set(cifar.NORMALIZATIONS) == {"authors", "dataset"}
    assert cifar.NORMALIZATIONS["dataset"] is cifar.MEAN_STD
    assert cifar.NORMALIZATIONS["authors"]["cifar10"] == ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
    assert cifar.NORMALIZATIONS["authors"]["cifar100"] == cifar.MEAN_STD["cifar100"]
    for table in cifar.NORMALIZATIONS.values():
        assert set(table) == set(cifar.DATASETS)
        for mean, std in table.values():
            assert len(mean) == len(std) == 3 and all(0 < s < 1 for s in std)


def test_default_label_names_are_official(tmp_path):
    make_archive(tmp_path, "cifar10")
    assert cifar.load_cifar("cifar10", data_dir=tmp_path).label_names[-1] == "truck"
    make_archive(tmp_path, "cifar100")
    names = cifar.load_cifar("cifar100", data_dir=tmp_path).label_names
    assert len(names) == 100 and names[:2] == ("apple", "aquarium_fish") and names[-1] == "worm"


def _py2_str(data: bytes) -> bytes:
    """A Python 2 ``str`` (SHORT_BINSTRING/BINSTRING), read back as bytes with encoding="bytes"."""
    return b"U" + bytes([len(data)]) + data if len(data) < 256 else b"T" + struct.pack("<i", len(data)) + data


def _py2_pickle(entries: dict) -> bytes:
    """A protocol-2 pickle laid out as Python 2 + numpy 1 wrote the official files.

    ``entries`` maps bytes keys to bytes (an ndarray of uint8 rows is given as
    (n, row bytes)), lists of ints, or lists of bytes.
    """
    out = [b"\x80\x02}("]
    for key, value in entries.items():
        out.append(_py2_str(key))
        if isinstance(value, tuple):  # (n, data): numpy.core.multiarray._reconstruct + __setstate__
            n, data = value
            out += [b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85", _py2_str(b"b"), b"\x87R(K\x01",
                    b"J" + struct.pack("<i", n), b"J" + struct.pack("<i", len(data) // max(n, 1)), b"\x86",
                    b"cnumpy\ndtype\n", _py2_str(b"u1"), b"K\x00K\x01\x87R(K\x03", _py2_str(b"|"),
                    b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89", _py2_str(data), b"tb"]
        elif isinstance(value, list):
            out.append(b"](")
            out += [_py2_str(item) if isinstance(item, bytes) else b"J" + struct.pack("<i", item) for item in value]
            out.append(b"e")
        else:
            out.append(_py2_str(value))
    out.append(b"u.")
    return b"".join(out)


def test_channel_planar_rows_become_nhwc_from_raw_python2_pickles(tmp_path):
    """A CIFAR-10 folder built byte by byte, without write_cifar_archive or numpy's pickling."""
    def value(i, y, x, c):
        return (37 * i + 101 * c + 7 * y + 3 * x + (y * x) % 5) % 256

    def rows(indices):
        # The documented layout: per image 1024 R, then 1024 G, then 1024 B; each plane row-major.
        return bytes(value(i, y, x, c) for i in indices for c in range(3) for y in range(32) for x in range(32))

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    train_ids, test_ids = [[0, 1], [2, 3], [4]], [5, 6]
    for k, ids in enumerate(train_ids, 1):
        (folder / f"data_batch_{k}").write_bytes(_py2_pickle({
            b"batch_label": f"training batch {k} of 3".encode(), b"labels": [i % 10 for i in ids],
            b"data": (len(ids), rows(ids)), b"filenames": [f"img{i}.png".encode() for i in ids]}))
    (folder / "test_batch").write_bytes(_py2_pickle({
        b"batch_label": b"testing batch 1 of 1", b"labels": [9, 8], b"data": (2, rows(test_ids))}))
    (folder / "batches.meta").write_bytes(_py2_pickle({
        b"num_cases_per_batch": [2], b"label_names": [f"n{j}".encode() for j in range(10)]}))

    loaded = cifar.load_cifar("cifar10", data_dir=folder)
    expected = np.array([[[[value(i, y, x, c) for c in range(3)] for x in range(32)] for y in range(32)]
                         for i in range(7)], np.uint8)
    np.testing.assert_array_equal(loaded.train_x, expected[:5])
    np.testing.assert_array_equal(loaded.test_x, expected[5:])
    assert loaded.train_x[1, 2, 3].tolist() == [value(1, 2, 3, 0), value(1, 2, 3, 1), value(1, 2, 3, 2)]
    assert loaded.train_y.tolist() == [0, 1, 2, 3, 4] and loaded.test_y.tolist() == [9, 8]
    assert loaded.label_names == tuple(f"n{j}" for j in range(10))


# --------------------------------------------------------------------------- data_dir errors


def test_corrupt_archive_raises_naming_file(tmp_path):
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match="cifar-10-python.tar.gz.*corrupt or truncated"):
        cifar.load_cifar("cifar10", data_dir=tmp_path)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_truncated_archive_raises_naming_file(tmp_path, name):
    archive, _ = make_archive(tmp_path, name)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(ValueError, match=cifar.DATASETS[name].archive.replace(".", r"\.")):
        cifar.load_cifar(name, data_dir=tmp_path)


def _replace_member(archive, member, data):
    """Rewrites ``archive`` with ``member``'s bytes replaced."""
    with tarfile.open(archive) as tar:
        members = [(info, tar.extractfile(info).read() if info.isfile() else None) for info in tar.getmembers()]
    with tarfile.open(archive, "w:gz") as tar:
        for info, content in members:
            if info.name.endswith("/" + member):
                content, info.size = data, len(data)
            tar.addfile(info, io.BytesIO(content) if content is not None else None)


def test_corrupt_pickle_member_raises_naming_it(tmp_path):
    archive, _ = make_archive(tmp_path)
    _replace_member(archive, "data_batch_2", b"\x80\x02}q\x00(X\x04\x00\x00\x00da")  # a cut pickle
    with pytest.raises(ValueError, match=r"cifar-10-python.tar.gz: data_batch_2: not a readable CIFAR pickle"):
        cifar.load_cifar("cifar10", data_dir=tmp_path)


def test_pickle_with_foreign_global_is_refused_not_run(tmp_path):
    class Evil:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    archive, _ = make_archive(tmp_path)
    _replace_member(archive, "test_batch", pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(ValueError, match="test_batch.*is not allowed"):
        cifar.load_cifar("cifar10", data_dir=tmp_path)
    assert not (tmp_path / "pwned").exists()


def test_missing_batch_in_extracted_folder_raises_naming_it(tmp_path):
    archive, _ = make_archive(tmp_path / "a.tar.gz")
    extract(archive, tmp_path / "x")
    (tmp_path / "x" / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(ValueError, match=r"cifar-10-batches-py.*1\.\.5; missing: data_batch_4"):
        cifar.load_cifar("cifar10", data_dir=tmp_path / "x")


def test_wrong_data_set_archive_lists_missing_members(tmp_path):
    archive, _ = make_archive(tmp_path / "cifar-10-python.tar.gz", "cifar100")  # CIFAR-100 under CIFAR-10's name
    with pytest.raises(ValueError, match=r"cifar-10-python.tar.gz: lacks data_batch_1, batches.meta, test_batch"):
        cifar.load_cifar("cifar10", data_dir=tmp_path)


def test_label_out_of_range_raises(tmp_path):
    archive, _ = make_archive(tmp_path)
    _replace_member(archive, "test_batch", pickle.dumps(
        {b"data": np.zeros((2, 3072), np.uint8), b"labels": [3, 10]}, protocol=2))
    with pytest.raises(ValueError, match=r"test_batch: labels must be in 0\.\.9, got 3\.\.10"):
        cifar.load_cifar("cifar10", data_dir=tmp_path)


def test_bad_data_shape_raises(tmp_path):
    archive, _ = make_archive(tmp_path)
    _replace_member(archive, "test_batch", pickle.dumps(
        {b"data": np.zeros((2, 1024), np.uint8), b"labels": [3, 1]}, protocol=2))
    with pytest.raises(ValueError, match=r"test_batch: expected uint8 data \(n, 3072\), got uint8 \(2, 1024\)"):
        cifar.load_cifar("cifar10", data_dir=tmp_path)


def test_data_dir_without_data_does_not_fall_through(tmp_path, monkeypatch, small_specs):
    make_archive(tmp_path / "cache" / "cifar10")  # a valid cache that must not be used
    no_network(monkeypatch)
    (tmp_path / "empty").mkdir()
    for data_dir in (tmp_path / "empty", tmp_path / "nowhere"):
        with pytest.raises(DataNotFoundError) as error:
            cifar.load_cifar(small_specs["cifar10"], data_dir=data_dir, cache_dir=tmp_path / "cache", reachable=refuse_online)
        message = str(error.value)
        assert "data_dir" in message and str(data_dir) in message and "cifar-10-python.tar.gz" in message
        assert "--data-dir" in error.value.rephrased("--data-dir").args[0] and "--data-dir" not in message


def test_unknown_name_lists_known():
    with pytest.raises(ValueError, match="imagenet.*cifar10, cifar100"):
        cifar.load_cifar("imagenet")
    assert cifar.cache_folder("CIFAR-10", "/r") == Path("/r/cifar10")


# --------------------------------------------------------------------------- cache, offline


def test_cache_is_used_and_checks_official_counts(tmp_path, monkeypatch, small_specs):
    archive, arrays = make_archive(tmp_path / "root" / "cifar10")
    no_network(monkeypatch)
    loaded = cifar.load_cifar(small_specs["cifar10"], cache_dir=tmp_path / "root", reachable=refuse_online)
    assert_matches(loaded, arrays)
    assert loaded.source == f"cache: {archive}"
    with pytest.raises(ValueError, match="cifar-10-python.tar.gz: expected 50000 train .* got 20"):
        cifar.load_cifar(dataclasses.replace(small_specs["cifar10"], n_train=50000), cache_dir=tmp_path / "root", reachable=refuse_online)


def test_cache_root_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("NSNN_JAX_DATA", str(tmp_path / "env"))
    assert cifar.cache_folder("cifar100") == tmp_path / "env" / "cifar100"
    monkeypatch.delenv("NSNN_JAX_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cifar.cache_folder("cifar10") == tmp_path / "home" / ".cache" / "nsnn_jax" / "cifar10"


def test_truncated_cached_archive_raises_naming_it(tmp_path, monkeypatch, small_specs):
    archive, _ = make_archive(tmp_path / "root" / "cifar100", "cifar100")
    archive.write_bytes(archive.read_bytes()[:-300])
    no_network(monkeypatch)
    with pytest.raises(ValueError, match=f"{archive}.*Delete it"):
        cifar.load_cifar(small_specs["cifar100"], cache_dir=tmp_path / "root", reachable=refuse_online)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_offline_fails_fast_saying_where_to_put_the_archive(tmp_path, monkeypatch, name):
    calls = []
    spec = cifar.DATASETS[name]
    start = time.monotonic()
    with pytest.raises(FileNotFoundError) as error:
        cifar.load_cifar(name, cache_dir=tmp_path / "cache",
                         reachable=lambda url, timeout: calls.append((url, timeout)) or False)
    assert time.monotonic() - start < 1.0
    message = str(error.value)
    for needle in ("pass DIR as data_dir", spec.archive, f"{spec.folder}/", str(tmp_path / "cache" / name), spec.url,
                   "not reachable", str(tmp_path / "tfds-empty" / name)):
        assert needle in message, needle
    assert calls == [(spec.url, pytest.approx(download.REACHABILITY_TIMEOUT_S, abs=0.5))]
    assert not (tmp_path / "cache").exists()  # nothing created when nothing was fetched


def test_offline_with_the_real_reachability_check_is_bounded(tmp_path, monkeypatch):
    # 192.0.2.1 (TEST-NET-1) never answers: the real check gives up after its short timeout.
    spec = dataclasses.replace(cifar.DATASETS["cifar10"], url="http://192.0.2.1:9/cifar-10-python.tar.gz")
    start = time.monotonic()
    with pytest.raises(FileNotFoundError, match="not reachable"):
        cifar.load_cifar(spec, cache_dir=tmp_path / "cache")
    assert time.monotonic() - start < download.REACHABILITY_TIMEOUT_S + 2


def test_download_disabled_never_goes_online(tmp_path, monkeypatch):
    no_network(monkeypatch)
    with pytest.raises(FileNotFoundError, match="download=False"):
        cifar.load_cifar("cifar10", cache_dir=tmp_path / "cache", download=False, reachable=refuse_online)


# --------------------------------------------------------------------------- download




def _serve(spec, base, served, md5=None):
    """Writes an archive into ``served``; returns ``spec`` pointing at it, the arrays and the real MD5."""
    archive, arrays = make_archive(served, spec.name)
    data = archive.read_bytes()
    spec = dataclasses.replace(spec, url=base + archive.name, size=len(data), md5=md5 or hashlib.md5(data).hexdigest())
    return spec, arrays, hashlib.md5(data).hexdigest()


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_download_verifies_md5_caches_and_reuses(tmp_path, monkeypatch, small_specs, server, capsys, name):
    base, served = server
    spec, arrays, _ = _serve(small_specs[name], base, served)
    loaded = cifar.load_cifar(spec, cache_dir=tmp_path / "cache")  # the real reachability check, on localhost
    assert_matches(loaded, arrays)
    cached = tmp_path / "cache" / name / spec.archive
    assert loaded.source == f"download: {spec.url} -> {cached}"
    assert sorted(p.name for p in cached.parent.iterdir()) == [spec.archive]  # no .part left
    assert cached.read_bytes() == (served / spec.archive).read_bytes()
    err = capsys.readouterr().err
    assert f"downloading {spec.url}" in err and "100%" in err
    # Next time: from the cache, with the server's file gone and the network refused.
    (served / spec.archive).unlink()
    no_network(monkeypatch)
    again = cifar.load_cifar(spec, cache_dir=tmp_path / "cache", reachable=refuse_online)
    assert again.source == f"cache: {cached}"
    assert_matches(again, arrays)


def test_download_md5_mismatch_raises_and_deletes(tmp_path, monkeypatch, small_specs, server):
    base, served = server
    spec, _, real_md5 = _serve(small_specs["cifar10"], base, served, md5="0" * 32)
    with pytest.raises(ValueError) as error:
        cifar.load_cifar(spec, cache_dir=tmp_path / "cache")
    message = str(error.value)
    assert "cifar-10-python.tar.gz" in message and spec.url in message
    assert "0" * 32 in message and real_md5 in message  # expected and received
    assert list((tmp_path / "cache" / "cifar10").iterdir()) == []  # neither the archive nor a .part


def test_download_http_error_is_reported(tmp_path, monkeypatch, small_specs, server):
    base, served = server
    spec, _, _ = _serve(small_specs["cifar10"], base, served)
    (served / "cifar-10-python.tar.gz").unlink()
    with pytest.raises(FileNotFoundError, match="404"):
        cifar.load_cifar(spec, cache_dir=tmp_path / "cache")


# --------------------------------------------------------------------------- tensorflow-datasets


def _prepare_tfds_copy(tfds_dir, name, arrays, label_names):
    """A real prepared tfds copy (array_record) written by tfds itself from ``arrays``, offline.

    The builder's split generators (which would download the binary archive
    and need TensorFlow to encode images) are replaced by ones yielding PIL
    images, which tfds encodes without TensorFlow.
    """
    tfds = pytest.importorskip("tensorflow_datasets")
    pil_image = pytest.importorskip("PIL.Image")
    pytest.importorskip("array_record")
    builder = tfds.builder(name, data_dir=str(tfds_dir), file_format="array_record")

    def examples(prefix, images, labels):
        for i, (image, label) in enumerate(zip(images, labels)):
            yield i, {"id": f"{prefix}{i:05d}", "image": pil_image.fromarray(image), "label": int(label),
                      **({"coarse_label": int(label) // 5} if name == "cifar100" else {})}

    def split_generators(dl_manager):
        builder.info.features["label"].names = label_names
        return {split: examples(f"{split}_", arrays[f"{split}_images"], arrays[f"{split}_labels"])
                for split in ("train", "test")}

    builder._split_generators = split_generators
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    return tfds, tfds_dir / name / str(builder.version)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_prepared_tfds_copy_is_used_without_downloading(tmp_path, monkeypatch, name):
    names = [f"label_{i}" for i in range(NUM_CLASSES[name])]
    arrays = make_arrays(name, seed=5)
    no_network(monkeypatch)
    tfds, version_dir = _prepare_tfds_copy(tmp_path / "tfds", name, arrays, names)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    calls = []
    real_data_source = tfds.data_source

    def data_source(*args, **kwargs):
        calls.append(kwargs)
        assert kwargs.get("download") is False and not kwargs.get("try_gcs")
        return real_data_source(*args, **kwargs)

    monkeypatch.setattr(tfds, "data_source", data_source)
    monkeypatch.setattr(tfds, "load", lambda *a, **k: pytest.fail("tfds.load needs TensorFlow here"))
    loaded = cifar.load_cifar(name, cache_dir=tmp_path / "cache", reachable=refuse_online)
    assert loaded.source == f"tfds: {version_dir}"
    assert_matches(loaded, arrays, names)  # tfds shuffles; the loader restores the archive order by id
    assert [call["split"] for call in calls] == ["train", "test"]
    assert not (tmp_path / "cache").exists()


def test_no_prepared_tfds_copy_never_calls_tfds(tmp_path, monkeypatch, small_specs):
    tfds = pytest.importorskip("tensorflow_datasets")
    (tmp_path / "tfds-empty" / "cifar10" / "incomplete.ABC_3.0.2").mkdir(parents=True)  # an aborted build
    monkeypatch.setattr(tfds, "data_source", lambda *a, **k: pytest.fail("tfds must not be asked"))
    monkeypatch.setattr(tfds, "load", lambda *a, **k: pytest.fail("tfds must not be asked"))
    archive, _ = make_archive(tmp_path / "cache" / "cifar10")
    no_network(monkeypatch)
    assert cifar.load_cifar(small_specs["cifar10"], cache_dir=tmp_path / "cache", reachable=refuse_online).source == f"cache: {archive}"


def test_tfds_import_failure_falls_through_to_the_cache(tmp_path, monkeypatch, small_specs):
    version_dir = tmp_path / "tfds-empty" / "cifar10" / "3.0.2"
    version_dir.mkdir(parents=True)
    (version_dir / "dataset_info.json").write_text('{"fileFormat": "array_record"}')
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import raises ImportError
    archive, arrays = make_archive(tmp_path / "cache" / "cifar10")
    no_network(monkeypatch)
    loaded = cifar.load_cifar(small_specs["cifar10"], cache_dir=tmp_path / "cache", reachable=refuse_online)
    assert loaded.source == f"cache: {archive}"
    assert_matches(loaded, arrays)
    archive.unlink()
    with pytest.raises(FileNotFoundError, match=r"(?s)3\.0\.2: cannot import tensorflow_datasets.*as data_dir"):
        cifar.load_cifar(small_specs["cifar10"], cache_dir=tmp_path / "cache", download=False, reachable=refuse_online)


def test_broken_tfds_copy_warns_and_falls_through(tmp_path, monkeypatch, small_specs, capsys):
    pytest.importorskip("tensorflow_datasets")
    version_dir = tmp_path / "tfds-empty" / "cifar10" / "3.0.2"
    version_dir.mkdir(parents=True)
    (version_dir / "dataset_info.json").write_text('{"fileFormat": "array_record"}')  # but no data files
    no_network(monkeypatch)
    with pytest.raises(FileNotFoundError, match=f"(?s){version_dir}: failed.*as data_dir"):
        cifar.load_cifar(small_specs["cifar10"], cache_dir=tmp_path / "cache", download=False, reachable=refuse_online)
    assert "warning: could not read" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is not None,
                    reason="TensorFlow is installed: a tfrecord copy is readable")
def test_tfrecord_tfds_copy_without_tensorflow_is_skipped_with_reason(tmp_path, monkeypatch):
    version_dir = tmp_path / "tfds-empty" / "cifar100" / "3.0.2"
    version_dir.mkdir(parents=True)
    (version_dir / "dataset_info.json").write_text('{"name": "cifar100"}')  # tfrecord: the older default
    no_network(monkeypatch)
    with pytest.raises(FileNotFoundError, match="stored as tfrecord, which needs TensorFlow"):
        cifar.load_cifar("cifar100", cache_dir=tmp_path / "cache", download=False, reachable=refuse_online)
