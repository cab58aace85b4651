"""AutoAugment: the operations against Pillow, the CIFAR-10 policy, autoaugment.

Pillow is the reference: the AutoAugment implementations the policy comes from
(DeepVoltaire's ``CIFAR10Policy``, torchvision) apply these operations to
``PIL.Image`` objects. Every operation is compared on uint8 images of two
shapes, at the magnitudes the policy uses (both signs) and at a few more.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from nsnn_jax.data import autoaugment

FILL = (autoaugment.FILL,) * 3
SHAPES = ((32, 32, 3), (24, 40, 3))  # (H, W, C); the second is not square.


# --------------------------------------------------------------------------
# Pillow reference


def pillow_op(name, image, value):
    """The reference operation on a uint8 (H, W, 3) array; returns an array."""
    img = Image.fromarray(image)
    affine = Image.Transform.AFFINE
    nearest = Image.Resampling.NEAREST
    ops = {
        "invert": lambda: ImageOps.invert(img),
        "contrast": lambda: ImageEnhance.Contrast(img).enhance(value),
        "color": lambda: ImageEnhance.Color(img).enhance(value),
        "brightness": lambda: ImageEnhance.Brightness(img).enhance(value),
        "sharpness": lambda: ImageEnhance.Sharpness(img).enhance(value),
        "rotate": lambda: img.rotate(value, fillcolor=FILL),
        "translate_x": lambda: img.transform(img.size, affine, (1, 0, value, 0, 1, 0), nearest, fillcolor=FILL),
        "translate_y": lambda: img.transform(img.size, affine, (1, 0, 0, 0, 1, value), nearest, fillcolor=FILL),
        "shear_x": lambda: img.transform(img.size, affine, (1, value, 0, 0, 1, 0), nearest, fillcolor=FILL),
        "shear_y": lambda: img.transform(img.size, affine, (1, 0, 0, value, 1, 0), nearest, fillcolor=FILL),
        "auto_contrast": lambda: ImageOps.autocontrast(img),
        "equalize": lambda: ImageOps.equalize(img),
        "solarize": lambda: ImageOps.solarize(img, value),
        "posterize": lambda: ImageOps.posterize(img, int(value)),
    }
    return np.asarray(ops[name]())


def sample_images(shape):
    """Images that exercise the corner cases of the per-channel tables."""
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    full = rng.integers(0, 256, shape, dtype=np.uint8)
    # Channel range 0..25: Pillow's double-precision autocontrast maps 25 to
    # 254, not 255 (one of the tabulated shortfalls).
    low = rng.integers(0, 26, shape, dtype=np.uint8)
    low[0, 0], low[-1, -1] = 0, 25
    # About 400 pixels of four grey levels, the rest 255: equalize's step is
    # small and its table exceeds 255 at 255, which Pillow clips.
    levels = np.full(shape, 255, np.uint8)
    rows = 400 // shape[1] + 1
    levels[:rows] = rng.integers(0, 4, (rows,) + shape[1:]) * 60
    # Smooth gradients with noise, closer to a photograph.
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    ramp = np.stack([yy * 5 + 10, xx * 4 + 30, (yy + xx) * 3], axis=-1) + rng.integers(0, 20, shape)
    ramp = np.clip(ramp, 0, 255).astype(np.uint8)
    # One flat channel: autocontrast and equalize must leave it unchanged.
    flat = full.copy()
    flat[..., 1] = 77
    return {"full": full, "low": low, "levels": levels, "ramp": ramp, "flat": flat}


sample_images = functools.cache(sample_images)


@functools.cache
def jitted(name):
    """One compiled function per operation; the magnitude is a traced argument."""
    return jax.jit(autoaugment.OPS[name])


def policy_values(name, shape=(32, 32, 3)):
    """The values the CIFAR-10 policy passes to an operation, both signs."""
    values = {
        autoaugment.op_magnitude(name, index, negative, shape)
        for sub in autoaugment.CIFAR10_POLICY
        for op, _, index in sub
        if op == name
        for negative in (False, True)
    }
    return sorted(values)


# Values outside the policy too: enhancement factors beyond [0, 2] exercise
# Pillow's clipping, and rotations beyond 30 degrees the whole sampler.
EXTRA = {
    "invert": [0.0],
    "contrast": [0.0, 0.37, 2.7],
    "color": [0.0, 1.55, 2.7, -0.4],
    "brightness": [0.0, 0.55, 2.3],
    "sharpness": [0.0, 0.3, 1.45, 3.1],
    "rotate": [-30.0, -3.3333, 12.5, 30.0, 45.0, -170.0],
    "translate_x": [-14.5015, -3.5, 0.49, 7.2, 14.5015, 40.0],
    "translate_y": [-14.5015, -2.5, 1.5, 9.67, 14.5015],
    "shear_x": [-0.3, -0.1667, 0.0333, 0.2, 0.3, 0.9],
    "shear_y": [-0.3, -0.0667, 0.1, 0.2667, 0.3],
    "auto_contrast": [0.0],
    "equalize": [0.0],
    "solarize": [256.0, 227.5556, 128.0, 100.5, 0.0],
    "posterize": [1.0, 4.0, 5.0, 6.0, 7.0, 8.0],
}

CASES = [
    (name, value)
    for name in autoaugment.OP_NAMES
    for value in sorted(set(EXTRA[name]) | set(policy_values(name)))
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name, value", CASES, ids=lambda v: f"{v:.4g}" if isinstance(v, float) else v)
def test_op_matches_pillow(name, value, shape):
    """Tolerances:

    * exact for every operation but ``rotate``. The enhancements reproduce
      ``Image.blend`` (float32 alpha, truncation, clipping) and Pillow's grey
      conversion, mean and SMOOTH filter; the shears and translations reproduce
      Pillow's nearest-neighbour affine samplers (16.16 fixed point); the
      table operations reproduce Pillow's tables, including autocontrast's
      double-rounding shortfalls and equalize's clipping.
    * ``rotate``: at most 1% of the pixels may differ. Pillow computes cos/sin
      in double precision and the JAX version in float32, so a fixed-point
      coefficient can be one unit (1/65536 pixel) off and a pixel that sits on
      that boundary reads the neighbouring source pixel (at most 0.3% of the
      pixels over 2000 random angles; at the policy's angles none).
    """
    value32 = np.float32(value)  # the operation sees float32; give Pillow the same number
    for kind, image in sample_images(shape).items():
        expected = pillow_op(name, image, float(value32))
        got = np.asarray(jitted(name)(jnp.asarray(image), value32))
        assert got.dtype == np.uint8 and got.shape == image.shape
        if name == "rotate":
            differ = np.any(got != expected, axis=-1).mean()
            assert differ <= 0.01, f"{kind}: {differ:.2%} of pixels differ"
        else:
            np.testing.assert_array_equal(got, expected, err_msg=f"{name}({value}) on {kind}")


def test_rotate_exact_at_policy_angles():
    """The policy's angles (multiples of 10/3 degrees) match Pillow exactly."""
    for shape in SHAPES:
        for value in policy_values("rotate", shape):
            value32 = np.float32(value)
            for kind, image in sample_images(shape).items():
                expected = pillow_op("rotate", image, float(value32))
                got = np.asarray(jitted("rotate")(jnp.asarray(image), value32))
                np.testing.assert_array_equal(got, expected, err_msg=f"rotate({value}) on {kind} {shape}")


def test_rotate_fill_matches_reference_composite():
    """DeepVoltaire rotates an RGBA copy and composites it onto grey 128; that is
    ``rotate(..., fillcolor=128)``, which is what the JAX rotate reproduces."""
    image = sample_images((32, 32, 3))["full"]
    img = Image.fromarray(image)
    rot = img.convert("RGBA").rotate(23.3333)
    reference = Image.composite(rot, Image.new("RGBA", rot.size, (128,) * 4), rot).convert("RGB")
    np.testing.assert_array_equal(np.asarray(reference), pillow_op("rotate", image, 23.3333))


def test_autocontrast_and_equalize_corner_cases_are_exercised():
    """The test images reach the code paths the exact comparisons rely on."""
    images = sample_images((32, 32, 3))
    # Pillow's double rounding: the top of the 0..25 range goes to 254.
    assert pillow_op("auto_contrast", images["low"], 0.0).max() == 254
    # Equalize's table exceeds 255 for this image and Pillow clips it.
    hist = np.bincount(images["levels"][..., 0].ravel(), minlength=256)
    last = np.nonzero(hist)[0][-1]
    step = (hist.sum() - hist[last]) // 255
    assert (step // 2 + hist[:last].sum()) // step > 255


def test_blend_rounding_is_not_fused():
    """``Image.blend`` rounds ``alpha * diff`` to float32 before adding; a fused
    multiply-add does not. Factor 2.7 on a random image separates the two."""
    image = sample_images((32, 32, 3))["full"]
    value32 = np.float32(2.7)
    np.testing.assert_array_equal(
        np.asarray(jitted("color")(jnp.asarray(image), value32)), pillow_op("color", image, float(value32))
    )


# --------------------------------------------------------------------------
# Policy, autoaugment


def test_policy_table():
    policy = autoaugment.CIFAR10_POLICY
    assert len(policy) == 25 and all(len(sub) == 2 for sub in policy)
    for sub in policy:
        for name, prob, index in sub:
            assert name in autoaugment.OPS and 0.0 <= prob <= 1.0 and 0 <= index <= 9
    assert policy[0] == (("invert", 0.1, 7), ("contrast", 0.2, 6))
    assert policy[-1] == (("translate_y", 0.7, 9), ("auto_contrast", 0.9, 1))
    shape = (32, 32, 3)
    magnitude = autoaugment.op_magnitude
    assert [magnitude("posterize", i, False, shape) for i in range(10)] == [8, 8, 7, 7, 6, 6, 5, 5, 4, 4]
    assert magnitude("solarize", 0, True, shape) == 256 and magnitude("solarize", 9, False, shape) == 0
    assert magnitude("translate_x", 9, True, shape) == pytest.approx(-150 / 331 * 32)
    assert magnitude("translate_y", 9, False, (24, 40, 3)) == pytest.approx(150 / 331 * 24)
    assert magnitude("rotate", 3, True, shape) == pytest.approx(-10.0)
    assert magnitude("shear_x", 9, False, shape) == pytest.approx(0.3)
    assert magnitude("contrast", 9, True, shape) == pytest.approx(0.1)
    assert magnitude("brightness", 9, False, shape) == pytest.approx(1.9)


SMALL = (8, 8, 3)  # statistical tests: small images keep them cheap


@functools.cache
def jitted_autoaugment(policy):
    return jax.jit(jax.vmap(lambda image, key: autoaugment.autoaugment(image, key, policy), in_axes=(None, 0)))


@functools.cache
def jitted_single():
    return jax.jit(autoaugment.autoaugment)


def small_image():
    return np.random.default_rng(4).integers(1, 255, SMALL, dtype=np.uint8)


@pytest.mark.parametrize(
    "policy, p_inverted",
    [
        # First operation applies with probability 0.3.
        pytest.param(((("invert", 0.3, 0), ("invert", 0.0, 0)),), 0.3, id="first"),
        # Second operation applies with probability 0.7.
        pytest.param(((("invert", 0.0, 0), ("invert", 0.7, 0)),), 0.7, id="second"),
        # Sub-policies are chosen uniformly: one of the two always inverts.
        pytest.param(
            ((("invert", 1.0, 0), ("invert", 0.0, 0)), (("invert", 0.0, 0), ("invert", 0.0, 0))),
            0.5,
            id="uniform-choice",
        ),
    ],
)
def test_autoaugment_applies_ops_with_their_probability(policy, p_inverted):
    n = 2000
    image = small_image()
    keys = jax.random.split(jax.random.key(5), n)
    out = np.asarray(jitted_autoaugment(policy)(jnp.asarray(image), keys))
    inverted = np.all(out == 255 - image, axis=(1, 2, 3))
    unchanged = np.all(out == image, axis=(1, 2, 3))
    assert np.all(inverted ^ unchanged)
    # Binomial(2000, p): sd at most 0.0112; the bound is 4.5 sd.
    assert abs(inverted.mean() - p_inverted) < 0.05


def test_autoaugment_signs_are_random():
    """Signed magnitudes take each sign about half the time (translate by +-4 px)."""
    n = 1000
    policy = ((("translate_x", 1.0, 9), ("invert", 0.0, 0)),)
    image = small_image()
    keys = jax.random.split(jax.random.key(6), n)
    out = np.asarray(jitted_autoaugment(policy)(jnp.asarray(image), keys))
    shift = np.float32(autoaugment.op_magnitude("translate_x", 9, False, SMALL))
    left = np.asarray(autoaugment.translate_x(jnp.asarray(image), shift))
    right = np.asarray(autoaugment.translate_x(jnp.asarray(image), -shift))
    is_left = np.all(out == left, axis=(1, 2, 3))
    is_right = np.all(out == right, axis=(1, 2, 3))
    assert np.all(is_left ^ is_right)
    assert abs(is_left.mean() - 0.5) < 0.064  # 4 sd of Binomial(1000, 0.5)


def test_autoaugment_keys_dtype_shape_and_jit():
    image = jnp.asarray(small_image())
    run = jitted_autoaugment(autoaugment.CIFAR10_POLICY)
    keys = jax.random.split(jax.random.key(7), 64)
    first = np.asarray(run(image, keys))
    again = np.asarray(run(image, keys))
    other = np.asarray(run(image, jax.random.split(jax.random.key(8), 64)))
    assert first.dtype == np.uint8 and first.shape == (64,) + SMALL
    np.testing.assert_array_equal(first, again)
    assert np.any(first != other)
    # Different keys in one batch give different results (some ops apply).
    assert len({out.tobytes() for out in first}) > 10
    # The unbatched call agrees with the vmapped one.
    np.testing.assert_array_equal(np.asarray(jitted_single()(image, keys[3])), first[3])
