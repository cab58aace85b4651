"""Training augmentation of images in pure JAX, per example, on the accelerator.

Every function here is jittable and vmappable, and all randomness comes from
explicit ``jax.random`` keys (no Python-side randomness), so a batch is
augmented inside the compiled training step with one key per example.

Order of the training pipeline (as in the AutoAugment paper's CIFAR setup):

1. :func:`random_crop` -- zero-pad by 4 pixels, take a random 32x32 window;
2. :func:`random_flip` -- horizontal flip with probability 0.5;
3. :func:`nsnn_jax.data.autoaugment.autoaugment` -- one random sub-policy of
   the CIFAR-10 policy;
4. :func:`normalize` -- z-score with the data set's per-channel mean and std
   (e.g. :data:`nsnn_jax.data.cifar.MEAN_STD`).

Steps 1-3 take and return ``uint8`` images of shape ``(H, W, C)`` (``C = 3``
for AutoAugment's colour operations); only :func:`normalize` turns them into
``float32``. :func:`augment_batch` runs steps 1-3 on a batch.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from nsnn_jax.data import autoaugment as _policy

__all__ = [
    "normalize",
    "random_crop",
    "random_flip",
    "augment_batch",
]


# --------------------------------------------------------------------------
# Normalisation, crop and flip


def normalize(images: jax.Array, mean: Sequence[float], std: Sequence[float]) -> jax.Array:
    """Z-scores uint8 images per channel.

    Args:
        images: uint8 array of shape ``(..., H, W, C)``.
        mean: ``C`` channel means on the [0, 1] pixel scale.
        std: ``C`` channel standard deviations on the [0, 1] pixel scale.

    Returns:
        float32 array of shape ``(..., H, W, C)``: ``(images / 255 - mean) / std``.
    """
    x = jnp.asarray(images).astype(jnp.float32) / jnp.float32(255.0)
    return (x - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)


def random_crop(image: jax.Array, key: jax.Array, padding: int = 4) -> jax.Array:
    """Zero-pads an image and takes a random window of the original size.

    Args:
        image: uint8 array of shape ``(H, W, C)``.
        key: a ``jax.random`` key.
        padding: pixels of zeros added on every side.

    Returns:
        Array of shape ``(H, W, C)`` and the dtype of ``image``; the window's top
        left corner in the padded image is uniform in ``{0..2*padding}^2``.
    """
    height, width, channels = image.shape
    padded = jnp.pad(image, ((padding, padding), (padding, padding), (0, 0)))
    offsets = jax.random.randint(key, (2,), 0, 2 * padding + 1, dtype=jnp.int32)
    zero = jnp.zeros((), jnp.int32)
    return lax.dynamic_slice(padded, (offsets[0], offsets[1], zero), (height, width, channels))


def random_flip(image: jax.Array, key: jax.Array) -> jax.Array:
    """Flips an image left-right with probability 0.5.

    Args:
        image: array of shape ``(H, W, C)``.
        key: a ``jax.random`` key.

    Returns:
        ``image`` or ``image[:, ::-1]``, same shape and dtype.
    """
    return jnp.where(jax.random.bernoulli(key), image[:, ::-1], image)



def augment_batch(
    images: jax.Array, key: jax.Array, autoaugment: bool = True, padding: int = 4
) -> jax.Array:
    """Random crop, horizontal flip and (optionally) AutoAugment, per example.

    Example ``i`` uses ``k = jax.random.split(key, B)[i]``, split once more into
    ``(crop, flip, policy)`` keys with ``jax.random.split(k, 3)``.

    Args:
        images: uint8 array of shape ``(B, H, W, C)``.
        key: a ``jax.random`` key.
        autoaugment: whether to apply
            :data:`~nsnn_jax.data.autoaugment.CIFAR10_POLICY` after the flip
            (a Python bool; static under ``jax.jit``).
        padding: zero padding of the random crop.

    Returns:
        uint8 array of shape ``(B, H, W, C)``.
    """
    use_policy = autoaugment

    def one(image, example_key):
        key_crop, key_flip, key_policy = jax.random.split(example_key, 3)
        image = random_crop(image, key_crop, padding)
        image = random_flip(image, key_flip)
        if use_policy:
            image = _policy.autoaugment(image, key_policy)
        return image

    keys = jax.random.split(key, images.shape[0])
    return jax.vmap(one)(images, keys)
