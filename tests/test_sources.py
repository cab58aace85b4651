"""The search order data_dir -> prepared copies -> cache -> download, and its error."""

from pathlib import Path

import pytest

from nsnn_jax.data import sources


def attempt(name, calls, result=None):
    def run(tried):
        calls.append(name)
        if result is None:
            tried.append(f"{name}: nothing")
        return result
    return run


def search(calls, data_dir=None, prepared=(), cache=None, fetched=None, download=True, reachable=None):
    def fetch(bases, tried):
        calls.append(("fetch", tuple(bases)))
        if fetched is None:
            tried.append("fetch: failed")
        return fetched

    return sources.search(
        "toy", data_dir, lambda folder: ("data_dir", folder),
        prepared=[attempt(f"prepared{i}", calls, result) for i, result in enumerate(prepared)],
        from_cache=attempt("cache", calls, cache), fetch=fetch, urls=["http://a/", "http://b/"],
        download=download, data_dir_holds="toy.bin", ways=["buy it"],
        reachable=reachable or (lambda url, timeout: pytest.fail("must not go online")))


def test_data_dir_is_the_only_source(tmp_path):
    calls = []
    assert search(calls, data_dir=tmp_path, cache="cached") == ("data_dir", tmp_path)
    assert calls == []
    assert search(calls, data_dir="~/x")[1] == Path.home() / "x"


def test_order_prepared_then_cache_then_download():
    calls = []
    assert search(calls, prepared=(None, "second", "third")) == "second"
    assert calls == ["prepared0", "prepared1"]
    calls.clear()
    assert search(calls, prepared=(None,), cache="cached") == "cached"
    assert calls == ["prepared0", "cache"]
    calls.clear()
    reachable = lambda url, timeout: url == "http://b/"  # noqa: E731
    assert search(calls, prepared=(None,), fetched="fetched", reachable=reachable) == "fetched"
    assert calls == ["prepared0", "cache", ("fetch", ("http://b/",))]


@pytest.mark.parametrize("case, line", [
    ("disabled", "download: disabled (download=False)"),
    ("offline", "download: http://a/, http://b/ not reachable"),
    ("failed", "fetch: failed"),
])
def test_nothing_found_lists_what_was_tried_and_the_ways(case, line):
    calls = []
    with pytest.raises(sources.DataNotFoundError) as error:
        search(calls, prepared=(None,), download=case != "disabled",
               reachable=lambda url, timeout: case == "failed")
    message = str(error.value)
    assert isinstance(error.value, FileNotFoundError)
    assert message.startswith("Could not find the toy data set. Tried:\n  - prepared0: nothing\n  - cache: nothing\n")
    assert line in message
    assert "  1. pass DIR as data_dir, a folder holding toy.bin\n  2. buy it" in message
    assert ("fetch", ("http://a/", "http://b/")) in calls if case == "failed" else not any(
        isinstance(call, tuple) for call in calls)


def test_rephrased_names_the_argument_as_the_caller_says_it():
    error = sources.DataNotFoundError(f"{sources.DATA_DIR} /x lacks y; pass DIR as {sources.DATA_DIR}.")
    assert str(error) == "data_dir /x lacks y; pass DIR as data_dir."
    flagged = error.rephrased("--data-dir")
    assert isinstance(flagged, sources.DataNotFoundError)
    assert str(flagged) == "--data-dir /x lacks y; pass DIR as --data-dir."


def test_cache_root_and_tfds_dir_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("NSNN_JAX_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    assert sources.cache_root() == tmp_path / "env"
    assert sources.cache_root(tmp_path / "arg") == tmp_path / "arg"
    assert sources.tfds_data_dir() == tmp_path / "tfds"
    assert sources.tfds_data_dir(tmp_path / "t2") == tmp_path / "t2"
    monkeypatch.delenv("NSNN_JAX_DATA")
    monkeypatch.delenv("TFDS_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert sources.cache_root() == tmp_path / "home" / ".cache" / "nsnn_jax"
    assert sources.tfds_data_dir() == tmp_path / "home" / "tensorflow_datasets"
