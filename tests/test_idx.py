"""IDX reading/writing and the MNIST/Fashion-MNIST loader (no network)."""

import dataclasses
import gzip
import hashlib
import os
import time
from pathlib import Path

import numpy as np
import pytest

from nsnn_jax.data import DataNotFoundError, Dataset, download, idx

N_TRAIN, N_TEST = 20, 10
NAMES = {key: entry.name for key, entry in idx.DATASETS["fashion_mnist"].files.items()}
REAL_DIR = Path("/usr/share/datasets/fashion-mnist")


def make_dataset(folder, n_train=N_TRAIN, n_test=N_TEST, gz=True, seed=0):
    """Writes the four files in the real IDX format; returns the arrays by file key."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 10).astype(np.uint8)
    for key, array in arrays.items():
        name = NAMES[key] if gz else NAMES[key][: -len(".gz")]
        idx.write_idx(folder / name, array)
    return arrays


# Dataset field of each file's array.
FIELDS = {"train_images": "train_x", "train_labels": "train_y", "test_images": "test_x", "test_labels": "test_y"}


def assert_matches(loaded, arrays):
    for key, array in arrays.items():
        np.testing.assert_array_equal(getattr(loaded, FIELDS[key]), array)
    assert loaded.train_x.dtype == np.uint8 and loaded.test_x.dtype == np.uint8
    assert loaded.train_y.dtype == np.int32 and loaded.test_y.dtype == np.int32


@pytest.fixture
def small_spec():
    """fashion_mnist expecting the small generated set (counts); passed to the loader as its name."""
    return dataclasses.replace(idx.DATASETS["fashion_mnist"], n_train=N_TRAIN, n_test=N_TEST)


# --------------------------------------------------------------------------- format


@pytest.mark.parametrize("suffix", [".gz", ""])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_write_read_round_trip(tmp_path, dtype, suffix):
    array = (np.arange(2 * 3 * 5) * 7 - 50).reshape(2, 3, 5).astype(dtype)
    path = tmp_path / f"a.idx{suffix}"
    idx.write_idx(path, array)
    back = idx.read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    assert back.shape == (2, 3, 5)
    np.testing.assert_array_equal(back, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")


def test_header_is_big_endian_idx(tmp_path):
    idx.write_idx(tmp_path / "a", np.array([1, 256], np.int32))
    assert (tmp_path / "a").read_bytes() == bytes([0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 1, 0])


def test_gzip_is_detected_by_magic_not_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    idx.write_idx(tmp_path / "a.gz", array)
    os.rename(tmp_path / "a.gz", tmp_path / "plain-name")
    np.testing.assert_array_equal(idx.read_idx(tmp_path / "plain-name"), array)


def test_write_is_deterministic(tmp_path):
    array = np.arange(100, dtype=np.uint8)
    idx.write_idx(tmp_path / "a.gz", array)
    data = (tmp_path / "a.gz").read_bytes()
    assert data[4:8] == b"\x00" * 4  # gzip mtime zeroed: same array, same MD5
    assert data == gzip.compress(gzip.decompress(data), mtime=0)


def test_write_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError, match="int64"):
        idx.write_idx(tmp_path / "a", np.zeros(3, np.int64))


def test_truncated_gzip_bytes_raise_naming_file(tmp_path):
    path = tmp_path / "cut-images.gz"
    idx.write_idx(path, np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="cut-images.gz.*gzip"):
        idx.read_idx(path)


def test_corrupt_gzip_stream_raises_naming_file(tmp_path):
    path = tmp_path / "bad.gz"
    idx.write_idx(path, np.arange(1000, dtype=np.int32))
    data = bytearray(path.read_bytes())
    data[20:40] = b"\xff" * 20  # inside the deflate stream
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="bad.gz.*gzip"):
        idx.read_idx(path)


def test_valid_gzip_of_truncated_payload_raises_naming_file(tmp_path):
    path = tmp_path / "short.gz"
    idx.write_idx(tmp_path / "full", np.zeros((10, 28, 28), np.uint8))
    path.write_bytes(gzip.compress((tmp_path / "full").read_bytes()[:-28]))
    with pytest.raises(ValueError, match=r"short.gz.*7812 bytes.*7840"):
        idx.read_idx(path)


def test_trailing_bytes_raise(tmp_path):
    path = tmp_path / "long"
    idx.write_idx(path, np.zeros(4, np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(ValueError, match="long.*5 bytes"):
        idx.read_idx(path)


@pytest.mark.parametrize("header,message", [
    (b"\x01\x00\x08\x01", "magic"),
    (b"PK\x03\x04", "magic"),
    (b"\x00\x00\x07\x01", "dtype code 0x07"),
    (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
    (b"\x00\x00", "too short"),
])
def test_bad_header_raises_naming_file(tmp_path, header, message):
    path = tmp_path / "junk-file"
    path.write_bytes(header)
    with pytest.raises(ValueError, match=f"junk-file.*{message}"):
        idx.read_idx(path)


def test_huge_dims_fail_fast_without_allocating(tmp_path):
    path = tmp_path / "huge"
    path.write_bytes(bytes([0, 0, 0x0E, 3]) + b"\xff\xff\xff\xff" * 3 + b"\x00" * 8)
    with pytest.raises(ValueError, match="huge.*payload is 8 bytes"):
        idx.read_idx(path)


# --------------------------------------------------------------------------- data_dir


def test_load_from_data_dir(tmp_path):
    arrays = make_dataset(tmp_path / "data")
    loaded = idx.load_idx_dataset("fashion_mnist", data_dir=tmp_path / "data", download=False)
    assert_matches(loaded, arrays)
    assert loaded.train_x.shape == (N_TRAIN, 28, 28) and loaded.test_y.shape == (N_TEST,)
    assert str(tmp_path / "data") in loaded.source
    assert loaded.label_names == idx.FASHION_MNIST_LABEL_NAMES and loaded.num_classes == 10
    assert isinstance(loaded, Dataset)


def test_load_raw_uncompressed_names(tmp_path):
    arrays = make_dataset(tmp_path / "raw", gz=False, seed=3)
    assert not list((tmp_path / "raw").glob("*.gz"))
    assert_matches(idx.load_idx_dataset("mnist", data_dir=tmp_path / "raw"), arrays)


def test_missing_file_in_data_dir_names_it_and_does_not_fall_through(tmp_path):
    make_dataset(tmp_path / "data")
    (tmp_path / "data" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataNotFoundError) as error:
        idx.load_idx_dataset("fashion_mnist", data_dir=tmp_path / "data",
                             reachable=lambda *a, **k: pytest.fail("must not go online"))
    message = str(error.value)
    assert "t10k-labels-idx1-ubyte.gz" in message and str(tmp_path / "data") in message
    assert message.startswith(f"data_dir {tmp_path / 'data'} lacks")
    assert error.value.rephrased("--data-dir").args[0].startswith(f"--data-dir {tmp_path / 'data'} lacks")
    assert "train-images" not in message  # only the missing one is listed


def test_label_count_mismatch_raises_naming_file(tmp_path):
    make_dataset(tmp_path / "data")
    idx.write_idx(tmp_path / "data" / NAMES["train_labels"], np.zeros(N_TRAIN - 1, np.uint8))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.gz: 19 labels.*20 images"):
        idx.load_idx_dataset("fashion_mnist", data_dir=tmp_path / "data")


def test_label_out_of_range_raises(tmp_path):
    make_dataset(tmp_path / "data")
    idx.write_idx(tmp_path / "data" / NAMES["test_labels"], np.full(N_TEST, 10, np.uint8))
    with pytest.raises(ValueError, match=r"t10k-labels.*0\.\.9.*10\.\.10"):
        idx.load_idx_dataset("fashion_mnist", data_dir=tmp_path / "data")


def test_wrong_image_shape_raises(tmp_path):
    make_dataset(tmp_path / "data")
    idx.write_idx(tmp_path / "data" / NAMES["test_images"], np.zeros((N_TEST, 32, 32), np.uint8))
    with pytest.raises(ValueError, match=r"t10k-images.*\(10, 32, 32\)"):
        idx.load_idx_dataset("fashion_mnist", data_dir=tmp_path / "data")


def test_truncated_file_in_data_dir_raises_naming_it(tmp_path):
    make_dataset(tmp_path / "data")
    path = tmp_path / "data" / NAMES["train_images"]
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz"):
        idx.load_idx_dataset("fashion_mnist", data_dir=tmp_path / "data")


def test_unknown_name_lists_known():
    with pytest.raises(ValueError, match="cifar.*fashion_mnist.*mnist"):
        idx.load_idx_dataset("cifar")


# --------------------------------------------------------------------------- system folder, cache, offline


def test_system_folder_is_used_and_checks_official_counts(tmp_path, small_spec):
    arrays = make_dataset(tmp_path / "system")
    system_dirs = (str(tmp_path / "empty"), str(tmp_path / "system"))
    loaded = idx.load_idx_dataset(small_spec, cache_dir=tmp_path / "cache", download=False, system_dirs=system_dirs)
    assert_matches(loaded, arrays)
    assert loaded.source == f"system: {tmp_path / 'system'}"
    with pytest.raises(ValueError, match="train-images.*expected 60000 images, got 20"):
        idx.load_idx_dataset(dataclasses.replace(small_spec, n_train=60000), cache_dir=tmp_path / "cache",
                             download=False, system_dirs=system_dirs)


def test_cache_folder_is_used(tmp_path, small_spec):
    arrays = make_dataset(tmp_path / "root" / "fashion_mnist")
    loaded = idx.load_idx_dataset(small_spec, cache_dir=tmp_path / "root", system_dirs=(),
                                  reachable=lambda *a, **k: pytest.fail("must not go online"))
    assert_matches(loaded, arrays)
    assert loaded.source == f"cache: {tmp_path / 'root' / 'fashion_mnist'}"


def test_cache_root_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("NSNN_JAX_DATA", str(tmp_path / "env"))
    assert idx.cache_folder("mnist") == tmp_path / "env" / "mnist"
    assert idx.cache_folder("mnist", tmp_path / "arg") == tmp_path / "arg" / "mnist"
    monkeypatch.delenv("NSNN_JAX_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert idx.cache_folder("fashion_mnist") == tmp_path / "home" / ".cache" / "nsnn_jax" / "fashion_mnist"


def test_offline_fails_fast_naming_all_three_ways(tmp_path):
    calls = []
    start = time.monotonic()
    with pytest.raises(DataNotFoundError) as error:
        idx.load_idx_dataset("fashion_mnist", cache_dir=tmp_path / "cache", system_dirs=(str(tmp_path / "empty"),),
                             reachable=lambda url, timeout: calls.append((url, timeout)) or False)
    assert time.monotonic() - start < 1.0
    message = str(error.value)
    assert "--data-dir" in error.value.rephrased("--data-dir").args[0] and "--data-dir" not in message
    for needle in ("pass DIR as data_dir", "dataset-fashion-mnist", "/usr/share/datasets/fashion-mnist/",
                   "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                   "train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "not reachable"):
        assert needle in message, needle
    assert calls and 0 < calls[0][1] <= download.REACHABILITY_TIMEOUT_S
    assert not (tmp_path / "cache").exists()  # nothing created when nothing was fetched


def test_mnist_message_has_no_apt_package(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        idx.load_idx_dataset("mnist", cache_dir=tmp_path / "cache", reachable=lambda *a, **k: False)
    message = str(error.value)
    assert "data_dir" in message and "apt-get" not in message
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/" in message


# --------------------------------------------------------------------------- download




def _spec_for(folder, spec, base):
    """``spec`` pointing at ``base`` with the size and MD5 of the files in ``folder``."""
    files = {}
    for key, entry in spec.files.items():
        data = (folder / entry.name).read_bytes()
        files[key] = idx.IdxFile(entry.name, len(data), hashlib.md5(data).hexdigest())
    return dataclasses.replace(spec, urls=(base,), files=files)


def test_download_verifies_and_caches(tmp_path, small_spec, server, capsys):
    base, served = server
    arrays = make_dataset(served)
    spec = _spec_for(served, small_spec, base)
    loaded = idx.load_idx_dataset(spec, cache_dir=tmp_path / "cache", system_dirs=())
    assert_matches(loaded, arrays)
    assert loaded.source.startswith(f"download: {base}")
    cache = tmp_path / "cache" / "fashion_mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(NAMES.values())  # no .part left
    assert "100%" in capsys.readouterr().err
    # Second call: from the cache, even with the server gone.
    for path in served.iterdir():
        path.unlink()
    again = idx.load_idx_dataset(spec, cache_dir=tmp_path / "cache", system_dirs=())
    assert again.source == f"cache: {cache}"
    assert_matches(again, arrays)


def test_download_fetches_only_missing_files(tmp_path, small_spec, server):
    base, served = server
    arrays = make_dataset(served)
    spec = _spec_for(served, small_spec, base)
    cache = tmp_path / "cache" / "fashion_mnist"
    cache.mkdir(parents=True)
    os.replace(served / NAMES["train_images"], cache / NAMES["train_images"])
    assert_matches(idx.load_idx_dataset(spec, cache_dir=tmp_path / "cache", system_dirs=()), arrays)


def test_download_md5_mismatch_raises_and_deletes(tmp_path, small_spec, server):
    base, served = server
    make_dataset(served)
    spec = _spec_for(served, small_spec, base)
    bad = dataclasses.replace(spec.files["test_labels"], md5="0" * 32)
    with pytest.raises(ValueError) as error:
        idx.load_idx_dataset(dataclasses.replace(spec, files={**spec.files, "test_labels": bad}),
                             cache_dir=tmp_path / "cache", system_dirs=())
    message = str(error.value)
    assert "t10k-labels-idx1-ubyte.gz" in message and "0" * 32 in message
    assert spec.files["test_labels"].md5 in message  # the MD5 actually received
    cache = tmp_path / "cache" / "fashion_mnist"
    assert not (cache / NAMES["test_labels"]).exists()
    assert not list(cache.glob("*.part"))


def test_download_size_mismatch_raises(tmp_path, small_spec, server):
    base, served = server
    make_dataset(served)
    spec = _spec_for(served, small_spec, base)
    bad = dataclasses.replace(spec.files["train_labels"], size=spec.files["train_labels"].size - 5)
    with pytest.raises(ValueError, match=f"train-labels-idx1-ubyte.gz.*expected {bad.size} bytes"):
        idx.load_idx_dataset(dataclasses.replace(spec, files={**spec.files, "train_labels": bad}),
                             cache_dir=tmp_path / "cache", system_dirs=())


def test_download_404_falls_back_to_next_mirror_then_reports(tmp_path, small_spec, server):
    base, served = server
    arrays = make_dataset(served / "good")
    spec = _spec_for(served / "good", small_spec, base)
    mirrors = (base + "missing/", base + "good/")
    assert_matches(idx.load_idx_dataset(dataclasses.replace(spec, urls=mirrors), cache_dir=tmp_path / "c1",
                                        system_dirs=()), arrays)
    with pytest.raises(FileNotFoundError, match="404"):
        idx.load_idx_dataset(dataclasses.replace(spec, urls=mirrors[:1]), cache_dir=tmp_path / "c2", system_dirs=())


# --------------------------------------------------------------------------- real data


@pytest.mark.skipif(not REAL_DIR.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_from_debian_package(tmp_path):
    loaded = idx.load_idx_dataset("fashion_mnist", cache_dir=tmp_path / "cache", download=False)
    assert loaded.source == f"system: {idx.SYSTEM_DIRS['fashion_mnist'][0]}"
    assert loaded.train_x.shape == (60000, 28, 28) and loaded.train_x.dtype == np.uint8
    assert loaded.test_x.shape == (10000, 28, 28) and loaded.test_x.dtype == np.uint8
    assert loaded.train_y.shape == (60000,) and loaded.train_y.dtype == np.int32
    assert loaded.test_y.shape == (10000,) and loaded.test_y.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(loaded.train_y, minlength=10), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(loaded.test_y, minlength=10), np.full(10, 1000))
    assert loaded.train_x.max() == 255 and loaded.train_x.min() == 0
