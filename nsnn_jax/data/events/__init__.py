"""Event-camera data: AEDAT files, frame integration and its cache, an event-camera emulator, one module per
data set."""

from nsnn_jax.data.events import aedat, cifar10_dvs, dvs_gesture, emulate, fashion_mnist_dvs, frames
from nsnn_jax.data.events.aedat import SENSOR_SIZE, Events, read_aedat2, read_aedat31, write_aedat2, write_aedat31
from nsnn_jax.data.events.cifar10_dvs import CIFAR10_DVS_LABEL_NAMES, load_cifar10_dvs
from nsnn_jax.data.events.dvs_gesture import (GESTURE_LABEL_NAMES, gesture_samples, load_dvs_gesture,
                                              read_gesture_labels, write_gesture_labels)
from nsnn_jax.data.events.emulate import EmulatorSettings, emulate_batch
from nsnn_jax.data.events.fashion_mnist_dvs import load_fashion_mnist_dvs
from nsnn_jax.data.events.frames import SPLIT_MODES, events_to_frames, frames_cache_folder

__all__ = [
    "aedat",
    "cifar10_dvs",
    "dvs_gesture",
    "emulate",
    "fashion_mnist_dvs",
    "frames",
    "EmulatorSettings",
    "emulate_batch",
    "Events",
    "SENSOR_SIZE",
    "SPLIT_MODES",
    "CIFAR10_DVS_LABEL_NAMES",
    "GESTURE_LABEL_NAMES",
    "read_aedat2",
    "write_aedat2",
    "read_aedat31",
    "write_aedat31",
    "read_gesture_labels",
    "write_gesture_labels",
    "gesture_samples",
    "events_to_frames",
    "frames_cache_folder",
    "load_cifar10_dvs",
    "load_dvs_gesture",
    "load_fashion_mnist_dvs",
]
