"""Crop, flip, normalise and augment_batch (crop, flip, then optionally AutoAugment)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nsnn_jax.data import augment, autoaugment, cifar

SMALL = (8, 8, 3)  # small images keep the per-example checks cheap


# --------------------------------------------------------------------------
# Crop, flip, normalise


def test_random_crop_is_a_window_of_the_padded_image_and_covers_all_offsets():
    padding, n = 4, 2000
    rng = np.random.default_rng(0)
    # Channels 0/1 hold row/column numbers (1..32), so a pixel that is always
    # inside the image (the centre) reveals the offset; channel 2 is random.
    rows, cols = np.mgrid[1:33, 1:33]
    image = np.stack([rows, cols, rng.integers(0, 256, (32, 32))], axis=-1).astype(np.uint8)
    padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)))
    keys = jax.random.split(jax.random.key(1), n)
    crops = np.asarray(jax.jit(jax.vmap(augment.random_crop, in_axes=(None, 0)))(jnp.asarray(image), keys))
    assert crops.shape == (n, 32, 32, 3) and crops.dtype == np.uint8
    # Output (16, 16) is padded[16 + oy, 16 + ox] = image[12 + oy, 12 + ox].
    oy = crops[:, 16, 16, 0].astype(int) - 13
    ox = crops[:, 16, 16, 1].astype(int) - 13
    for crop, y, x in zip(crops, oy, ox):
        np.testing.assert_array_equal(crop, padded[y : y + 32, x : x + 32])
    counts = np.zeros((2 * padding + 1, 2 * padding + 1), int)
    np.add.at(counts, (oy, ox), 1)
    # All 81 offsets occur; each expects 2000/81 = 24.7 hits, and fewer than 5
    # has probability below 1e-6 per offset under the uniform distribution.
    assert counts.min() >= 5, counts


def test_random_flip_is_flip_or_identity_about_half_the_time():
    n = 1000
    image = np.random.default_rng(32032).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    keys = jax.random.split(jax.random.key(2), n)
    out = np.asarray(jax.jit(jax.vmap(augment.random_flip, in_axes=(None, 0)))(jnp.asarray(image), keys))
    flipped = np.all(out == image[:, ::-1], axis=(1, 2, 3))
    same = np.all(out == image, axis=(1, 2, 3))
    assert np.all(flipped ^ same)
    # Binomial(1000, 0.5): sd 0.0158; the bound is 4 sd.
    assert abs(flipped.mean() - 0.5) < 0.064


def test_normalize_matches_numpy():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    for mean, std in (cifar.MEAN_STD["cifar10"], cifar.MEAN_STD["cifar100"]):
        got = augment.normalize(jnp.asarray(images), mean, std)
        assert got.dtype == jnp.float32 and got.shape == images.shape
        expected = (images / 255.0 - np.array(mean)) / np.array(std)
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-6, atol=1e-5)


# --------------------------------------------------------------------------
# augment_batch


@functools.cache
def jitted_single():
    return jax.jit(autoaugment.autoaugment)


@functools.cache
def jitted_batch(use_policy):
    return jax.jit(functools.partial(augment.augment_batch, autoaugment=use_policy))


@pytest.mark.parametrize("use_policy", [False, True])
def test_augment_batch_is_crop_flip_autoaugment_per_example(use_policy):
    batch = 6
    images = np.random.default_rng(9).integers(0, 256, (batch,) + SMALL, dtype=np.uint8)
    key = jax.random.key(10)
    out = np.asarray(jitted_batch(use_policy)(jnp.asarray(images), key))
    assert out.dtype == np.uint8 and out.shape == images.shape
    np.testing.assert_array_equal(out, np.asarray(jitted_batch(use_policy)(jnp.asarray(images), key)))
    assert np.any(out != np.asarray(jitted_batch(use_policy)(jnp.asarray(images), jax.random.key(11))))
    for i, example_key in enumerate(jax.random.split(key, batch)):
        key_crop, key_flip, key_policy = jax.random.split(example_key, 3)
        expected = augment.random_flip(augment.random_crop(jnp.asarray(images[i]), key_crop), key_flip)
        if use_policy:
            expected = jitted_single()(expected, key_policy)
        np.testing.assert_array_equal(out[i], np.asarray(expected))


def test_augment_batch_cifar_shape():
    images = np.random.default_rng(12).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    out = jitted_batch(True)(jnp.asarray(images), jax.random.key(13))
    assert out.dtype == jnp.uint8 and out.shape == images.shape
