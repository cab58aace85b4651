"""``--tensorboard``: event files beside metrics.jsonl holding the epoch (and step) figures."""

import glob
import os
import struct

import pytest

from helpers import TINY, make_idx_dir, read_metrics
from train import fmnist
from train.common import tensorboard

pytestmark = pytest.mark.standard_promotion  # optax inside


def read_scalars(logdir):
    """``{tag: [(step, value), ...]}`` from the TFRecord event files in ``logdir`` (read without TensorBoard)."""
    event_pb2 = pytest.importorskip("tensorboardX.proto.event_pb2")
    scalars = {}
    for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
        with open(path, "rb") as f:
            data = f.read()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            payload = data[offset + 12:offset + 12 + length]  # after the length and its CRC
            offset += 12 + length + 4  # and the payload's CRC
            event = event_pb2.Event.FromString(payload)
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def test_scalars_flattens_nested_figures_and_skips_counters():
    record = {"epoch": 2, "step": 8, "best_epoch": 1, "test_accuracy": 0.5, "firing_rate_layers": {"lif0": 0.25},
              "best_selected_on": "test", "flag": True, "loss": float("nan")}
    assert tensorboard.scalars(record) == {"test_accuracy": 0.5, "firing_rate/lif0": 0.25}


def test_tiny_run_writes_the_epoch_and_step_scalars(tmp_path, capsys):
    pytest.importorskip("tensorboardX")
    data = make_idx_dir(tmp_path / "data")
    workdir = str(tmp_path / "run")
    fmnist.main(["--data-dir", data, "--workdir", workdir, *TINY, "--tensorboard", "--log-every", "2"])
    capsys.readouterr()
    records = read_metrics(workdir)
    scalars = read_scalars(os.path.join(workdir, "tensorboard"))
    for name in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "lr", "firing_rate"):
        want = [(r["epoch"], pytest.approx(r[name], rel=1e-6, abs=1e-7)) for r in records]
        assert scalars[f"epoch/{name}"] == want, name
    assert scalars["epoch/firing_rate/lif0"] == [(r["epoch"], pytest.approx(r["firing_rate_layers"]["lif0"]))
                                                for r in records]
    steps_per_epoch = records[0]["step"]
    assert [step for step, _ in scalars["step/train_loss"]] == list(range(2, 2 * steps_per_epoch + 1, 2))
    assert "step/lr" in scalars


def test_without_the_flag_no_event_files(tmp_path, capsys):
    data = make_idx_dir(tmp_path / "data")
    workdir = str(tmp_path / "run")
    fmnist.main(["--data-dir", data, "--workdir", workdir, *TINY])
    capsys.readouterr()
    assert not os.path.exists(os.path.join(workdir, "tensorboard"))
