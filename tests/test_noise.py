"""Noise families (density, CDF, sampling, validation) and the SGL <-> NDL table.

Every value is checked against an independent computation: ``scipy.stats``
laws, numerical quadrature, or the closed forms of Ma, Yan & Tang (2023), Table 1.
"""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from nsnn_jax import noise, surrogate
from helpers import fast_jit, scipy_law

FAMILIES = sorted(noise.NOISE_FAMILIES)
SCALES = (0.3, 1.7)
EXPECTED_FORM = {
    "gaussian": "erf",
    "logistic": "sigmoid",
    "uniform": "rectangular",
    "triangular": "triangular",
    "arctan": "arctan",
}





def off_kink_grid(scale, n=601, width=4.0):
    """Points on ``[-width*scale, width*scale]`` shifted off the kinks ``0, +-scale``."""
    return np.linspace(-width * scale, width * scale, n) + 1.234e-3 * scale


def jit_sample(family, key, shape, dtype=jnp.float32):
    """``family.sample`` under ``jax.jit`` (one compile instead of many eager ops)."""
    return fast_jit(family.sample, static_argnums=(1, 2))(key, shape, dtype)


def integrate_density(fn, name, scale):
    """Integral over R of ``fn`` (a density with the family's tails), float64.

    Light tails: trapezoid on ``[-60 s, 60 s]`` (kinks of the compact laws on grid
    points). Cauchy tails: ``x = s tan(theta)`` maps R onto ``(-pi/2, pi/2)``.
    Returns ``(integral, tolerance)``.
    """
    if name == "arctan":
        theta = np.linspace(-np.pi / 2, np.pi / 2, 20001)[1:-1]
        x = scale * np.tan(theta)
        y = np.asarray(fn(jnp.asarray(x))) * scale / np.cos(theta) ** 2
        # The end cells lost to the open interval hold 2 * h / pi of mass at most.
        return np.trapezoid(y, theta), 2 * (theta[1] - theta[0])
    x = np.linspace(-60 * scale, 60 * scale, 240001)
    y = np.asarray(fn(jnp.asarray(x)))
    h = x[1] - x[0]
    # Trapezoid error: a jump of height 1/(2 s) costs up to h/(2 s) per side; a kink
    # of the triangle costs O(h^2 / s^2); smooth fast-decaying laws are exact to ~1e-12.
    tol = {"uniform": 1.01 * h / scale, "triangular": (h / scale) ** 2}.get(name, 1e-9)
    return np.trapezoid(y, x), tol


# --------------------------------------------------------------------------- PDF/CDF


@pytest.mark.parametrize("name", FAMILIES)
def test_pdf_integrates_to_one(name, scale=0.7):
    """The density has unit mass (quadrature, float64)."""
    family = noise.get_noise(name, scale)
    with jax.enable_x64():
        total, tol = integrate_density(fast_jit(family.pdf), name, scale)
    assert abs(total - 1.0) < tol, total


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("name", FAMILIES)
def test_pdf_and_cdf_match_scipy(name, scale):
    """``pdf`` and ``cdf`` equal the scipy law of the same name and scale."""
    family = noise.get_noise(name, scale)
    law = scipy_law(name, scale)
    x = off_kink_grid(scale, width=8.0)
    with jax.enable_x64():
        pdf = np.asarray(fast_jit(family.pdf)(jnp.asarray(x)))
        cdf = np.asarray(fast_jit(family.cdf)(jnp.asarray(x)))
    np.testing.assert_allclose(pdf, law.pdf(x), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(cdf, law.cdf(x), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", FAMILIES)
def test_grad_of_cdf_is_pdf(name, scale=1.7):
    """``jax.grad(cdf) == pdf`` at 601 points (vmap), kinks of the compact laws avoided."""
    family = noise.get_noise(name, scale)
    with jax.enable_x64():
        x = jnp.asarray(off_kink_grid(scale))
        grad = np.asarray(fast_jit(jax.vmap(jax.grad(family.cdf)))(x))
        pdf = np.asarray(fast_jit(family.pdf)(x))
    np.testing.assert_allclose(grad, pdf, rtol=1e-12, atol=1e-14)
    assert pdf.max() > 0.1 / scale  # not trivially zero


@pytest.mark.parametrize("name", FAMILIES)
def test_cdf_is_symmetric_with_median_zero(name):
    """``cdf(0) = 1/2``, ``cdf(-x) = 1 - cdf(x)`` and ``pdf(-x) = pdf(x)``."""
    family = noise.get_noise(name, 0.7)
    cdf, pdf = fast_jit(family.cdf), fast_jit(family.pdf)
    with jax.enable_x64():
        x = jnp.asarray(np.concatenate([[0.0], off_kink_grid(0.7)]))
        c_pos, c_neg = np.asarray(cdf(x)), np.asarray(cdf(-x))
        assert c_pos[0] == pytest.approx(0.5, abs=1e-15)
        np.testing.assert_allclose(c_neg, 1.0 - c_pos, atol=1e-14)
        np.testing.assert_allclose(pdf(-x), pdf(x), rtol=1e-14)
    assert float(cdf(jnp.zeros((), jnp.float32))) == 0.5


# --------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("name", FAMILIES)
def test_samples_follow_the_cdf(name, key):
    """Kolmogorov-Smirnov: sup |F_n - F| of 20000 draws < 1.95/sqrt(n) (99.9 %)."""
    n, scale = 20000, 0.7
    draws = np.sort(np.asarray(jit_sample(noise.get_noise(name, scale), key, (n,))))
    cdf = scipy_law(name, scale).cdf(draws.astype(np.float64))
    ks = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    assert ks < 1.95 / math.sqrt(n), ks


@pytest.mark.parametrize("name", FAMILIES)
def test_sample_dtype_follows_request(name, key):
    """float32 and bfloat16 requests give draws of that dtype and shape, with a
    median near 0."""
    family = noise.get_noise(name, 0.5)
    draws = fast_jit(lambda k: [family.sample(k, (64, 33), d) for d in (jnp.float32, jnp.bfloat16)])(key)
    for dtype, x in zip((jnp.float32, jnp.bfloat16), draws):
        assert x.dtype == dtype and x.shape == (64, 33)
        values = np.asarray(x).astype(np.float32)
        assert np.all(np.isfinite(values)) and np.std(values) > 0
        assert abs(np.median(values)) < 0.1  # IQR/2 of these laws is >= 0.17


def test_sample_float64_under_x64(key):
    """With x64 on, a float64 request gives float64 draws (not silently float32)."""
    with jax.enable_x64():
        for name in FAMILIES:
            assert jit_sample(noise.get_noise(name, 0.5), key, (3,), jnp.float64).dtype == jnp.float64


@pytest.mark.parametrize("name", FAMILIES)
def test_same_key_same_samples(name, key):
    """The draw is a pure function of the key; another key gives other draws."""
    family = noise.get_noise(name, 0.5)
    draw = fast_jit(lambda k: family.sample(k, (257,)))
    a = np.asarray(draw(key))
    np.testing.assert_array_equal(a, np.asarray(draw(jax.random.key(0))))
    b = np.asarray(draw(jax.random.key(1)))
    assert np.mean(a == b) < 0.05


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("bad", [0, 0.0, -1.0, math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("name", FAMILIES)
def test_bad_scale_raises_naming_the_value(name, bad):
    """scale <= 0, NaN or inf -> ValueError that quotes the value."""
    pattern = "got " + re.escape(repr(bad))
    with pytest.raises(ValueError, match=pattern):
        noise.get_noise(name, bad)
    with pytest.raises(ValueError, match=pattern):
        noise.NOISE_FAMILIES[name](bad)


def test_numpy_float32_scale_is_accepted():
    """``get_noise('gaussian', np.float32(0.5))`` is a valid scale > 0 (Surrogate
    accepts NumPy alphas; ``np.float64`` works because it subclasses float)."""
    assert noise.get_noise("gaussian", np.float32(0.5)).scale == 0.5
    with pytest.raises(ValueError, match="True"):
        noise.get_noise("gaussian", True)


def test_unknown_family_raises():
    """An unknown name -> ValueError that quotes it and lists the valid ones."""
    with pytest.raises(ValueError, match=r"'nope'.*gaussian"):
        noise.get_noise("nope", 1)


def test_get_noise_is_case_insensitive():
    """``get_noise('Gaussian', 1)`` is ``Gaussian(1.0)``; int scales become floats."""
    family = noise.get_noise("Gaussian", 1)
    assert family == noise.Gaussian(1.0) and isinstance(family.scale, float)


# --------------------------------------------------------------------------- SGL <-> NDL


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("name", FAMILIES)
def test_matching_surrogate_is_the_pdf(name, scale):
    """Table 1: the matching surrogate has the expected form and equals the noise PDF."""
    family = noise.get_noise(name, scale)
    sg = surrogate.matching_surrogate(family)
    assert sg.form == EXPECTED_FORM[name]
    x = off_kink_grid(scale, width=6.0)
    with jax.enable_x64():
        sg_x = np.asarray(sg(jnp.asarray(x)))
        np.testing.assert_allclose(sg_x, family.pdf(jnp.asarray(x)), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sg_x, scipy_law(name, scale).pdf(x), rtol=1e-12, atol=1e-14)
    assert sg_x.max() > 0.1 / scale


@pytest.mark.parametrize("scale", SCALES + (0.7,))
@pytest.mark.parametrize("name", FAMILIES)
def test_matching_round_trip(name, scale):
    """``matching_noise(matching_surrogate(f))`` is ``f`` (same law, scale to 1e-14).

    Exact ``==`` is not asked: ``1/(1/(s sqrt 2) sqrt 2)`` can be one ulp off ``s``.
    """
    family = noise.get_noise(name, scale)
    back = surrogate.matching_noise(surrogate.matching_surrogate(family))
    assert type(back) is type(family)
    assert back.scale == pytest.approx(scale, rel=1e-14)


@pytest.mark.parametrize("alpha", [0.4, 1.0, 3.0])
@pytest.mark.parametrize("form", surrogate.SURROGATES)
def test_surrogate_integrates_to_one(form, alpha):
    """Each surrogate form has unit mass for every sharpness alpha."""
    sg = surrogate.Surrogate(form, alpha)
    twin = surrogate.matching_noise(sg)
    with jax.enable_x64():
        total, tol = integrate_density(fast_jit(sg), twin.name, twin.scale)
    assert abs(total - 1.0) < tol, total


def test_paper_erf_surrogate_is_gaussian_pdf():
    """``exp(-x^2)/sqrt(pi)`` = ``Surrogate('erf', 1)`` = N(0, 1/2) density."""
    x = np.linspace(-5, 5, 1001)
    paper = np.exp(-x * x) / np.sqrt(np.pi)
    with jax.enable_x64():
        np.testing.assert_allclose(surrogate.Surrogate("erf", 1.0)(jnp.asarray(x)), paper, rtol=1e-13)
        np.testing.assert_allclose(noise.Gaussian(1 / math.sqrt(2)).pdf(jnp.asarray(x)), paper, rtol=1e-13)
    np.testing.assert_allclose(stats.norm(scale=1 / math.sqrt(2)).pdf(x), paper, rtol=1e-13)
    twin = surrogate.matching_noise(surrogate.Surrogate("erf", 1.0))
    assert twin.name == "gaussian" and twin.scale == pytest.approx(1 / math.sqrt(2), rel=1e-15)
