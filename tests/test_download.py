"""Download helpers: the bounded reachability check and the verified, atomic download."""

import hashlib
import time

import pytest

from nsnn_jax.data import download


def test_real_reachability_check_is_bounded():
    # 192.0.2.1 (TEST-NET-1) never answers: the check must give up at its timeout.
    start = time.monotonic()
    assert not download.is_reachable("http://192.0.2.1:9/", timeout=0.5)
    assert time.monotonic() - start < 1.5


def test_reachable_urls_keeps_order_and_budget():
    calls = []

    def check(url, timeout):
        calls.append(timeout)
        return url.endswith("yes/")

    urls = ["http://a/yes/", "http://b/no/", "http://c/yes/"]
    assert download.reachable_urls(urls, check=check, budget=2.0) == ["http://a/yes/", "http://c/yes/"]
    assert len(calls) == 3 and all(0 < timeout <= 2.0 for timeout in calls)
    assert download.reachable_urls(urls, check=check, budget=0.0) == []


def test_download_file_checks_size_and_md5(tmp_path, server):
    base, served = server
    data = b"nsnn" * 1000
    (served / "blob.bin").write_bytes(data)
    md5 = hashlib.md5(data).hexdigest()
    path = download.download_file(base + "blob.bin", tmp_path / "out", "blob.bin", len(data), md5)
    assert path.read_bytes() == data
    with pytest.raises(ValueError, match="expected 4000 bytes with MD5 0+, got 4000 bytes"):
        download.download_file(base + "blob.bin", tmp_path / "bad", "blob.bin", len(data), "0" * 32)
    assert list((tmp_path / "bad").iterdir()) == []  # neither the file nor a .part
