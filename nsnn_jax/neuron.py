"""Spiking neurons as pure functions: the NDL spike, the surrogate spike, the LIF scan.

The noisy discrete LIF neuron (NSNN, eq. (2) of Ma, Yan & Tang 2023)::

    u_t = tau * u_{t-1} * (1 - o_{t-1}) + I_t + eps_t      (hard reset to 0)
    o_t = H(u_t - v_th)

With ``m_t = tau * u_{t-1} * (1 - o_{t-1}) + I_t`` the noise-free potential of
step ``t`` and ``v_t = m_t - v_th``, the neuron fires with probability
``F(v_t)``. Noise-driven learning (NDL) backpropagates through time with
``dO_t/dm_t = p(v_t)``, the noise PDF. The noise stays in the membrane: when the
neuron does not fire, ``eps_t`` decays into the next step with ``tau``.

Firing modes (``LIFParams.firing``):

* ``"membrane"`` (default): eq. (2) above; each neuron and step draws one noise
  sample, which both decides the spike and stays in the membrane.
* ``"reference"``: the authors' PyTorch code. The noise is written into the
  state (``u_t = m_t + eps_t``), then the spike is a Bernoulli draw with
  probability ``F(u_t - v_th)`` of that *noisy* potential, i.e. a second,
  independent noise sample decides it: firing sees the noise twice, so the
  effective firing noise is ``eps_t + eps'_t`` (for a Gaussian, std
  ``sigma * sqrt(2)``). The backward pass uses ``p(u_t - v_th)`` at the noisy
  potential. Use it to compare with published numbers.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from nsnn_jax import noise as noise_lib
from nsnn_jax import sampling
from nsnn_jax import surrogate as surrogate_lib

__all__ = ["ndl_spike", "sg_spike", "LIFParams", "LIFOutput", "lif_scan", "scan_unroll", "FIRING_MODES"]

FIRING_MODES = ("membrane", "reference")


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def ndl_spike(v: jax.Array, noise_sample: jax.Array, family: noise_lib.NoiseFamily) -> jax.Array:
    """Noisy spike ``H(v + eps)`` whose derivative is the noise PDF ``p(v)``.

    Args:
      v: noise-free potential relative to threshold, ``u - v_th``; any shape.
      noise_sample: ``eps`` drawn from ``family``, same shape as ``v``.
      family: the noise law ``eps`` was drawn from (static).

    Returns:
      Spikes in ``{0, 1}`` with the dtype of ``v``. Backward: ``g * family.pdf(v)``
      for ``v``, zero for the noise sample (it is not a parameter).
    """
    return (v + noise_sample > 0).astype(v.dtype)


def _ndl_fwd(v, noise_sample, family):
    return ndl_spike(v, noise_sample, family), (v, noise_sample)


def _ndl_bwd(family, residuals, g):
    v, noise_sample = residuals
    return (g * family.pdf(v).astype(g.dtype), jnp.zeros_like(noise_sample))


ndl_spike.defvjp(_ndl_fwd, _ndl_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def sg_spike(v: jax.Array, surrogate: surrogate_lib.Surrogate) -> jax.Array:
    """Deterministic spike ``H(v)`` with the surrogate derivative ``surrogate(v)``.

    Args:
      v: potential relative to threshold, ``u - v_th``; any shape.
      surrogate: the surrogate gradient (static).

    Returns:
      Spikes in ``{0, 1}`` with the dtype of ``v``.
    """
    return (v > 0).astype(v.dtype)


def _sg_fwd(v, surrogate):
    return sg_spike(v, surrogate), v


def _sg_bwd(surrogate, v, g):
    return (g * surrogate(v).astype(g.dtype),)


sg_spike.defvjp(_sg_fwd, _sg_bwd)


class LIFParams(NamedTuple):
    """Static settings of a discrete LIF population.

    Attributes:
      tau: decay factor in ``[0, 1]`` (``u_t = tau * u_{t-1} + I_t``).
      v_th: firing threshold.
      noise: the membrane-noise law, or ``None`` for the deterministic LIF (DSNN).
      surrogate: backward of the deterministic spike; ``None`` uses the surrogate
        matching ``noise`` (its PDF), or the paper's ERF (alpha = 1) without noise.
      detach_reset: stop the gradient through the reset path ``(1 - o_{t-1})``.
      firing: ``"membrane"`` (eq. (2), default) or ``"reference"`` (the authors'
        PyTorch code, firing sees the noise twice); see the module docstring.
      sampler: ``"hash16"`` (fast counter-based draw of the 16-bit quantised
        law, default) or ``"threefry"`` (exact ``jax.random``); see
        :mod:`nsnn_jax.sampling`.
    """

    tau: float = 0.5
    v_th: float = 1.0
    noise: Optional[noise_lib.NoiseFamily] = noise_lib.Gaussian(0.3)
    surrogate: Optional[surrogate_lib.Surrogate] = None
    detach_reset: bool = False
    firing: str = "membrane"
    sampler: str = "hash16"

    def validate(self) -> "LIFParams":
        """Raises ``ValueError`` on an invalid setting; returns ``self``."""
        if not 0.0 <= float(self.tau) <= 1.0:
            raise ValueError(f"tau is a decay factor in [0, 1], got {self.tau!r}.")
        if self.firing not in FIRING_MODES:
            raise ValueError(f"Unknown firing mode {self.firing!r}; expected one of {FIRING_MODES}.")
        if self.sampler not in sampling.SAMPLERS:
            raise ValueError(f"Unknown sampler {self.sampler!r}; expected one of {sampling.SAMPLERS}.")
        if self.noise is not None and not isinstance(self.noise, noise_lib.NoiseFamily):
            raise ValueError(f"noise must be a NoiseFamily or None, got {self.noise!r}.")
        return self

    def resolved_surrogate(self) -> surrogate_lib.Surrogate:
        if self.surrogate is not None:
            return self.surrogate
        if self.noise is not None:
            return surrogate_lib.matching_surrogate(self.noise)
        return surrogate_lib.Surrogate("erf", 1.0)


MAX_FULL_UNROLL = 32
PARTIAL_UNROLL = 8


def scan_unroll(timesteps: int, unroll: Optional[int] = None) -> int:
    """Steps per iteration of the time loop: ``unroll``, or the automatic choice for ``timesteps``."""
    if unroll is not None:
        return min(unroll, timesteps)
    return timesteps if timesteps <= MAX_FULL_UNROLL else PARTIAL_UNROLL


class LIFOutput(NamedTuple):
    """What :func:`lif_scan` returns; all arrays ``(T, B, ...)``.

    Attributes:
      spikes: ``o_t`` in ``{0, 1}``.
      membrane: ``u_t`` before reset (noise included), or ``None`` if not asked.
      probability: the firing probability given the past, ``F(v_t)`` (``H(v_t)``
        for the deterministic neuron), or ``None`` if not asked.
    """

    spikes: jax.Array
    membrane: Optional[jax.Array] = None
    probability: Optional[jax.Array] = None


def lif_scan(
    currents: jax.Array,
    key: Optional[jax.Array],
    params: LIFParams = LIFParams(),
    *,
    deterministic: bool = False,
    return_membrane: bool = False,
    return_probability: bool = False,
    unroll: Optional[int] = None,
) -> LIFOutput:
    """Runs a LIF population over time with ``lax.scan``.

    Only the element-wise membrane update is inside the scan; the synaptic
    currents of all ``T`` steps are computed before it. The noise of all steps is
    drawn up front from ``key`` with ``sampling.draw_noise(params.noise, key,
    currents.shape, dtype, params.sampler)``, so the same key gives the same spikes.

    Args:
      currents: input currents ``I_t``, shape ``(T, B, ...)``, floating.
      key: PRNG key for the noise; ignored (may be ``None``) when
        ``params.noise is None`` or ``deterministic``.
      params: neuron settings.
      deterministic: turn the noise off (the DSNN limit) and use the surrogate
        matching the noise law in the backward pass.
      return_membrane: also return ``u_t``.
      return_probability: also return ``F(v_t)``.
      unroll: time steps per loop iteration of the scan (forward and BPTT);
        ``None`` unrolls fully up to ``T = MAX_FULL_UNROLL`` and by
        ``PARTIAL_UNROLL`` beyond. A rolled loop costs a copy of the carry and
        a dynamic slice per step, which on CPU made the whole MLP training
        step 1.9x slower at ``T = 8`` (``python -m benchmarks.step``). On an
        idle 2-core CPU (``python -m benchmarks.long_t``, benchmarks/README.md)
        the full unroll ran the MLP step 1.6-2.6x and the conv step 1.1-2.2x
        faster than 8 steps per iteration at ``T = 32-48``, with less memory,
        and compiled in 14 s (MLP) and 24-31 s (conv) at ``T = 48``, against
        about 6 s for 8 per iteration at any ``T``. The limit stays at 32:
        the sine task's short training test (``T = 48``) took 50 s with the
        full unroll and 14 s without, its compile outweighing its gain.

    Returns:
      A :class:`LIFOutput`.

    Raises:
      ValueError: ``currents`` is not at least 2-D ``(T, B, ...)`` with ``T >= 1``,
        not floating, or a key is needed but missing.
    """
    params.validate()
    if unroll is not None and (not isinstance(unroll, int) or isinstance(unroll, bool) or unroll < 1):
        raise ValueError(f"unroll must be None or an integer >= 1, got {unroll!r}.")
    currents = jnp.asarray(currents)
    if currents.ndim < 2 or currents.shape[0] < 1:
        raise ValueError(
            f"lif_scan expects time-major currents (T, B, ...) with T >= 1, got shape {currents.shape}."
        )
    if not jnp.issubdtype(currents.dtype, jnp.floating):
        raise ValueError(f"lif_scan expects floating currents, got {currents.dtype}.")
    dtype = currents.dtype
    noisy = params.noise is not None and not deterministic
    if noisy and key is None:
        raise ValueError("lif_scan with noise needs a PRNG key (got None).")

    family = params.noise
    surrogate = params.resolved_surrogate()
    tau = jnp.asarray(params.tau, dtype)
    v_th = jnp.asarray(params.v_th, dtype)
    reference = params.firing == "reference"

    if noisy:
        if reference:
            membrane_key, firing_key = jax.random.split(key)
            membrane_noise = sampling.draw_noise(family, membrane_key, currents.shape, dtype, params.sampler)
            firing_noise = sampling.draw_noise(family, firing_key, currents.shape, dtype, params.sampler)
            xs = (currents, membrane_noise, firing_noise)
        else:
            xs = (currents, sampling.draw_noise(family, key, currents.shape, dtype, params.sampler))
    else:
        xs = (currents,)

    def step(carry, x):
        membrane, spikes = carry
        keep = 1.0 - (jax.lax.stop_gradient(spikes) if params.detach_reset else spikes)
        potential = tau * membrane * keep + x[0]  # m_t, noise-free for this step
        if not noisy:
            v = potential - v_th
            out = sg_spike(v, surrogate)
            membrane = potential
        elif reference:
            membrane = potential + x[1]
            v = membrane - v_th
            out = ndl_spike(v, x[2], family)
        else:
            v = potential - v_th
            out = ndl_spike(v, x[1], family)
            membrane = potential + x[1]
        ys = (out,)
        if return_membrane:
            ys += (membrane,)
        if return_probability:
            prob = family.cdf(v) if noisy else (v > 0).astype(dtype)
            ys += (jax.lax.stop_gradient(prob),)
        return (membrane, out), ys

    init = (jnp.zeros(currents.shape[1:], dtype), jnp.zeros(currents.shape[1:], dtype))
    _, ys = jax.lax.scan(step, init, xs, unroll=scan_unroll(currents.shape[0], unroll))
    ys = list(ys)
    spikes = ys.pop(0)
    membrane = ys.pop(0) if return_membrane else None
    probability = ys.pop(0) if return_probability else None
    return LIFOutput(spikes, membrane, probability)
