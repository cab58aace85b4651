"""Helpers shared by the event-data tests: random events, event comparison, error matching."""

import re

import numpy as np
import pytest

from nsnn_jax.data.events import aedat


def random_events(n, seed=0, size=128, t_max=2**32 - 1, sort=True):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, t_max, n, dtype=np.int64, endpoint=True)
    if sort:
        t = np.sort(t)
    return aedat.Events(t, rng.integers(0, size, n).astype(np.int16), rng.integers(0, size, n).astype(np.int16),
                      rng.integers(0, 2, n).astype(np.uint8))


def assert_events_equal(got, expected):
    assert isinstance(got, aedat.Events)
    assert got.t.dtype == np.int64 and got.x.dtype == np.int16 and got.y.dtype == np.int16
    assert got.p.dtype == np.uint8
    for name in aedat.Events._fields:
        np.testing.assert_array_equal(getattr(got, name), np.asarray(getattr(expected, name)), err_msg=name)


def raises_naming(path):
    """pytest.raises(ValueError) whose message must name ``path``."""
    return pytest.raises(ValueError, match=re.escape(str(path)))
