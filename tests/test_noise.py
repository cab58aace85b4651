"""Noise families: density, CDF, quantile, sampling, validation, registration.

Every value is checked against an independent computation: ``scipy.stats``
laws, numerical quadrature, or the closed forms of Ma, Yan & Tang (2023), Table 1.
"""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nsnn_jax import noise, surrogate
from helpers import fast_jit, integrate_density, off_kink_grid, scipy_law

FAMILIES = sorted(noise.NOISE_FAMILIES)
SCALES = (0.3, 1.7)


def jit_sample(family, key, shape, dtype=jnp.float32):
    """``family.sample`` under ``jax.jit`` (one compile instead of many eager ops)."""
    return fast_jit(family.sample, static_argnums=(1, 2))(key, shape, dtype)


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


# --------------------------------------------------------------------------- quantiles


PROBABILITIES = np.concatenate([[1e-4, 1e-3], np.linspace(0.01, 0.99, 197), [1 - 1e-3, 1 - 1e-4]])


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("name", FAMILIES)
def test_quantile_inverts_the_cdf_in_float32(name, scale):
    """``cdf(quantile(u)) == u`` to float32 tolerance, and ``quantile`` is scipy's ``ppf``."""
    family = noise.get_noise(name, scale)
    u = jnp.asarray(PROBABILITIES, jnp.float32)
    q = fast_jit(family.quantile)(u)
    assert q.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(fast_jit(family.cdf)(q)), np.asarray(u), rtol=0, atol=2e-6)
    ppf = scipy_law(name, scale).ppf(np.asarray(u, np.float64))
    np.testing.assert_allclose(np.asarray(q), ppf, rtol=2e-5, atol=2e-6 * scale)
    assert np.all(np.diff(np.asarray(q)) > 0)


@pytest.mark.parametrize("name", FAMILIES)
def test_float64_quantile_is_scipys_ppf(name, scale=0.7):
    """``quantile_f64`` (the hash16 table's) is the exact inverse CDF in float64."""
    family = noise.get_noise(name, scale)
    u = np.concatenate([[2 ** -17], PROBABILITIES, [1 - 2 ** -17]])
    got = family.quantile_f64(u)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, scipy_law(name, scale).ppf(u), rtol=1e-12, atol=1e-14)


def test_families_register_themselves_by_name_and_twin():
    """Every family class is in NOISE_FAMILIES under its name and declares a distinct surrogate form."""
    assert noise.NOISE_FAMILIES == {cls.name: cls for cls in
                                    (noise.Gaussian, noise.Logistic, noise.Uniform, noise.Triangular, noise.Arctan)}
    assert sorted(cls.surrogate_form for cls in noise.NOISE_FAMILIES.values()) == sorted(surrogate.SURROGATES)


def test_a_family_with_an_unknown_surrogate_form_is_rejected_and_not_registered():
    with pytest.raises(ValueError, match="'quadratic'"):
        class Bad(noise.NoiseFamily):  # noqa: F841
            name = "bad"
            surrogate_form = "quadratic"
    assert "bad" not in noise.NOISE_FAMILIES


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


