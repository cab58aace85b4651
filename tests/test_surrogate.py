"""Surrogate gradients and the SGL <-> NDL table: each surrogate is the PDF of its noise twin.

Every value is checked against an independent computation: ``scipy.stats``
laws, numerical quadrature, or the closed forms of Ma, Yan & Tang (2023), Table 1.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from helpers import fast_jit, integrate_density, off_kink_grid, scipy_law
from nsnn_jax import noise, surrogate

FAMILIES = sorted(noise.NOISE_FAMILIES)
SCALES = (0.3, 1.7)

EXPECTED_FORM = {
    "gaussian": "erf",
    "logistic": "sigmoid",
    "uniform": "rectangular",
    "triangular": "triangular",
    "arctan": "arctan",
}


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


@pytest.mark.parametrize("name", FAMILIES)
def test_twin_lives_on_the_family_class(name):
    """``family.surrogate()`` is ``matching_surrogate``; ``twin_family`` of its form is the class."""
    family = noise.get_noise(name, 0.4)
    assert family.surrogate() == surrogate.matching_surrogate(family)
    assert surrogate.twin_family(family.surrogate_form) is type(family)
    assert type(family).from_surrogate_alpha(family.surrogate_alpha()).scale == pytest.approx(0.4, rel=1e-14)


def test_surrogate_validation_and_lookup_errors():
    with pytest.raises(ValueError, match="'quadratic'"):
        surrogate.get_surrogate("quadratic")
    with pytest.raises(ValueError, match="alpha"):
        surrogate.Surrogate("erf", 0.0)
    assert surrogate.get_surrogate("ERF", 2) == surrogate.Surrogate("erf", 2.0)
    with pytest.raises(ValueError, match="'quadratic'"):
        surrogate.twin_family("quadratic")
    with pytest.raises(ValueError, match="already has the twin"):
        surrogate.register_twin("erf", noise.Logistic)
