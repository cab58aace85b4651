"""nsnn_jax.conv: the forward, both weight gradients, the explicit choice between them and the Flax module.

Tolerances: float32 gradients must match ``jax.grad`` of the plain
``lax.conv_general_dilated`` loss to ``rtol=1e-4`` and ``atol=1e-5 * max|ref|``
(the matmul weight gradient sums in another order than XLA's convolution).
bfloat16 gradients are compared with the float32 gradient of the same
bfloat16-rounded inputs to ``atol=rtol=1e-2`` (times ``max|ref|`` for atol):
bfloat16 keeps 8 significant bits, a relative step of 2**-8 ~ 4e-3.
"""

import itertools
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from benchmarks import conv as conv_bench
from nsnn_jax import conv, cpu

DN = ("NHWC", "HWIO", "NHWC")

# (batch, height, width, c_in, c_out, kernel_hw, strides, padding)
CASES = [
    (2, 8, 8, 3, 5, (3, 3), (1, 1), "SAME"),
    (2, 7, 7, 3, 5, (3, 3), (1, 1), "VALID"),
    (2, 8, 8, 4, 6, (3, 3), (2, 2), "SAME"),  # even input, stride 2: XLA pads (0, 1)
    (2, 9, 9, 4, 6, (3, 3), (2, 2), "SAME"),
    (2, 8, 8, 4, 6, (3, 3), (2, 2), "VALID"),
    (2, 7, 8, 4, 6, (3, 3), (2, 2), ((0, 2), (1, 0))),
    (2, 8, 7, 4, 6, (1, 1), (1, 1), "SAME"),
    (2, 9, 9, 4, 6, (1, 1), (2, 2), "VALID"),
    (1, 6, 9, 5, 3, (2, 3), (1, 2), "SAME"),
    # >= 16 input channels: one product per tap rather than im2col
    (2, 6, 6, 16, 8, (3, 3), (2, 2), ((1, 0), (2, 1))),
    (2, 8, 8, 20, 12, (3, 3), (1, 1), "SAME"),
    (2, 7, 7, 17, 9, (3, 3), (2, 2), "VALID"),
]
CASE_IDS = [f"{c[1]}x{c[2]}x{c[3]}-{c[4]}_k{c[5][0]}{c[5][1]}_s{c[6][0]}{c[6][1]}_{c[7]}" for c in CASES]


def normal(shape, seed, dtype=jnp.float32, scale=1.0):
    # numpy draws: jax.random compiles anew for every shape, seconds each here.
    values = np.random.default_rng(seed).standard_normal(shape) * scale
    return jnp.asarray(values.astype(np.float32)).astype(dtype)


def make_case(case, dtype=jnp.float32, seed=0):
    batch, h, w, c_in, c_out, kernel_hw, strides, padding = case
    x = normal((batch, h, w, c_in), seed, dtype)
    kernel = normal(kernel_hw + (c_in, c_out), seed + 1, dtype, 1 / np.sqrt(c_in * np.prod(kernel_hw)))
    out_shape = jax.eval_shape(lambda a, b: lax.conv_general_dilated(a, b, strides, padding, dimension_numbers=DN),
                               x, kernel).shape
    cotangent = normal(out_shape, seed + 2, dtype)  # a generic upstream gradient
    return x, kernel, strides, padding, cotangent


def lax_loss(x, kernel, strides, padding, cotangent):
    y = lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=DN)
    return jnp.sum(y.astype(jnp.float32) * cotangent.astype(jnp.float32))


def conv_loss(x, kernel, strides, padding, cotangent, weight_grad):
    y = conv.conv2d(x, kernel, strides, padding, weight_grad)
    return jnp.sum(y.astype(jnp.float32) * cotangent.astype(jnp.float32))


def assert_grads_close(got, ref, rtol, atol_scale):
    for g, r in zip(got, ref):
        assert g.shape == r.shape
        r = np.asarray(r, np.float32)
        np.testing.assert_allclose(np.asarray(g, np.float32), r, rtol=rtol, atol=atol_scale * np.abs(r).max())


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_forward_equals_lax_conv(case):
    x, kernel, strides, padding, _ = make_case(case)
    ref = lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=DN)
    got = conv.conv2d(x, kernel, strides, padding)
    assert got.shape == ref.shape and got.dtype == ref.dtype
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)


def test_explicit_padding_matches_xla():
    for size, kernel, stride, padding in itertools.product(range(1, 12), range(1, 6), range(1, 4), ["SAME", "VALID"]):
        got = conv.explicit_padding(padding, (size, size + 1), (kernel, kernel + 1), (stride, stride))
        ref = lax.padtype_to_pads((size, size + 1), (kernel, kernel + 1), (stride, stride), padding)
        assert got == tuple(tuple(p) for p in ref), (size, kernel, stride, padding)


def test_explicit_padding_forms():
    assert conv.explicit_padding(1, (8, 8), (3, 3), (1, 1)) == ((1, 1), (1, 1))
    assert conv.explicit_padding((1, 2), (8, 8), (3, 3), (1, 1)) == ((1, 1), (2, 2))
    assert conv.explicit_padding([(0, 2), [1, 0]], (8, 8), (3, 3), (1, 1)) == ((0, 2), (1, 0))
    assert conv.explicit_padding("same", (8, 8), (3, 3), (2, 2)) == ((0, 1), (0, 1))


@pytest.mark.parametrize("weight_grad", ["xla", "shifted"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_gradients_equal_lax_conv(case, weight_grad):
    x, kernel, strides, padding, cotangent = make_case(case)
    ref = jax.grad(lax_loss, argnums=(0, 1))(x, kernel, strides, padding, cotangent)
    got = jax.grad(conv_loss, argnums=(0, 1))(x, kernel, strides, padding, cotangent, weight_grad)
    assert_grads_close(got, ref, rtol=1e-4, atol_scale=1e-5)


@pytest.mark.parametrize("formulation", conv.MATMUL_FORMULATIONS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_both_matmul_formulations_equal_lax_conv(case, formulation):
    x, kernel, strides, padding, cotangent = make_case(case)
    ref = jax.grad(lax_loss, argnums=1)(x, kernel, strides, padding, cotangent)
    got = jax.grad(conv_loss, argnums=1)(x, kernel, strides, padding, cotangent, formulation)
    assert_grads_close((got,), (ref,), rtol=1e-4, atol_scale=1e-5)


@pytest.mark.parametrize("weight_grad", ["xla", "shifted"])
@pytest.mark.parametrize("case", [CASES[3], CASES[5], CASES[9]], ids=[CASE_IDS[3], CASE_IDS[5], CASE_IDS[9]])
def test_bfloat16_gradients(case, weight_grad):
    x, kernel, strides, padding, cotangent = make_case(case, jnp.bfloat16)
    as_f32 = [a.astype(jnp.float32) for a in (x, kernel, cotangent)]
    ref = jax.grad(lax_loss, argnums=(0, 1))(as_f32[0], as_f32[1], strides, padding, as_f32[2])
    y = conv.conv2d(x, kernel, strides, padding, weight_grad)
    assert y.dtype == jnp.bfloat16
    got = jax.grad(conv_loss, argnums=(0, 1))(x, kernel, strides, padding, cotangent, weight_grad)
    assert got[0].dtype == jnp.bfloat16 and got[1].dtype == jnp.bfloat16
    assert_grads_close(got, ref, rtol=1e-2, atol_scale=1e-2)


@pytest.mark.parametrize("weight_grad", ["xla", "shifted"])
def test_gradients_under_jit(weight_grad):
    x, kernel, strides, padding, cotangent = make_case(CASES[5])
    ref = jax.grad(lax_loss, argnums=(0, 1))(x, kernel, strides, padding, cotangent)
    grad = jax.jit(jax.grad(conv_loss, argnums=(0, 1)), static_argnums=(2, 3, 5))
    got = grad(x, kernel, strides, padding, cotangent, weight_grad)
    assert_grads_close(got, ref, rtol=1e-4, atol_scale=1e-5)


@pytest.mark.parametrize("weight_grad", ["xla", "shifted"])
def test_per_example_gradients_under_vmap(weight_grad):
    """vmap over a leading axis of x and the cotangent, with a shared kernel."""
    x, kernel, strides, padding, cotangent = make_case(CASES[9])
    xs, cts = jnp.stack([x, 2 * x]), jnp.stack([cotangent, -cotangent])

    def per_example(fn, *extra):
        grad = jax.grad(fn, argnums=(0, 1))
        return jax.vmap(lambda a, c: grad(a, kernel, strides, padding, c, *extra))(xs, cts)

    ref = per_example(lax_loss)
    got = per_example(conv_loss, weight_grad)
    assert_grads_close(got, ref, rtol=1e-4, atol_scale=1e-5)


def count_primitives(fn, *args):
    text = str(jax.make_jaxpr(fn)(*args))
    return text.count("dot_general"), text.count("conv_general_dilated")


def grad_primitives(weight_grad=None):
    """(dot_generals, convolutions) in the jaxpr of the gradient of a 3x3, 16 -> 8 channel conv."""
    x, kernel, strides, padding, cotangent = make_case(CASES[9])
    extra = () if weight_grad is None else (weight_grad,)

    def loss(a, b):
        y = conv.conv2d(a, b, strides, padding, *extra)
        return jnp.sum(y * cotangent)

    return count_primitives(jax.grad(loss, argnums=(0, 1)), x, kernel)


def test_modes_in_the_jaxpr():
    # forward + input gradient + XLA weight gradient: 3 convolutions, no products
    assert grad_primitives("xla") == (0, 3)
    # the weight gradient as one product per tap (16 input channels: no im2col)
    assert grad_primitives("shifted") == (9, 2)
    assert grad_primitives("taps") == (9, 2)
    assert grad_primitives("im2col") == (1, 2)


def test_default_is_xla_whatever_the_environment(monkeypatch):
    """No environment variable or XLA flag is read when a conv is traced."""
    monkeypatch.setenv("XLA_FLAGS", f"{cpu.FLAG}=+individual_convolution")
    monkeypatch.setenv("NSNN_JAX_CONV_WEIGHT_GRAD", "shifted")
    assert grad_primitives() == (0, 3)
    assert grad_primitives("shifted") == (9, 2)


@pytest.mark.parametrize("weight_grad, primitives", [("xla", (0, 3)), ("shifted", (9, 2))])
def test_module_field_reaches_the_jaxpr(weight_grad, primitives):
    x, kernel, _, _, _ = make_case(CASES[9])
    module = conv.Conv(8, (3, 3), strides=2, padding=((1, 0), (2, 1)), use_bias=False, weight_grad=weight_grad)
    params = module.init(jax.random.key(0), x)
    grad = jax.grad(lambda p: jnp.sum(module.apply(p, x)))
    assert count_primitives(grad, params) == primitives


def test_invalid_weight_grad_raises():
    x, kernel, strides, padding, _ = make_case(CASES[0])
    for bad in ("fast", "auto"):
        with pytest.raises(ValueError, match=f"weight_grad must be one of.*{bad!r}"):
            conv.conv2d(x, kernel, strides, padding, bad)
    with pytest.raises(ValueError, match="weight_grad must be one of"):
        conv.Conv(4, (3, 3), weight_grad="fast").init(jax.random.key(0), x)


def test_unsupported_arguments_raise():
    x, kernel, strides, padding, _ = make_case(CASES[0])
    with pytest.raises(ValueError, match="rhs_dilation"):
        conv.conv2d(x, kernel, rhs_dilation=(2, 2))
    with pytest.raises(ValueError, match="lhs_dilation"):
        conv.conv2d(x, kernel, lhs_dilation=2)
    with pytest.raises(ValueError, match="feature_group_count"):
        conv.conv2d(x, kernel, feature_group_count=3)
    with pytest.raises(ValueError, match="padding"):
        conv.conv2d(x, kernel, padding="CIRCULAR")
    with pytest.raises(ValueError, match="channels"):
        conv.conv2d(x, kernel[:, :, :2])
    conv.conv2d(x, kernel, rhs_dilation=(1, 1))  # the defaults are fine


MODULE_SETTINGS = [
    dict(features=6, kernel_size=(3, 3)),
    dict(features=6, kernel_size=(3, 3), strides=2, padding=((1, 1), (1, 1)), use_bias=False),
    dict(features=4, kernel_size=(1, 1), strides=(2, 1), padding="VALID"),
    dict(features=5, kernel_size=(2, 3), padding=((0, 1), (2, 0))),
]


@pytest.mark.parametrize("settings", MODULE_SETTINGS)
@pytest.mark.parametrize("shape", [(3, 9, 8, 3), (2, 3, 8, 8, 3)])  # (B, H, W, C) and (T, B, H, W, C)
def test_module_matches_flax_conv(settings, shape):
    x = normal(shape, 1)
    ours, theirs = conv.Conv(**settings), nn.Conv(**settings)
    params = ours.init(jax.random.key(2), x)
    flax_params = theirs.init(jax.random.key(2), x)
    assert jax.tree.structure(params) == jax.tree.structure(flax_params)
    jax.tree.map(np.testing.assert_array_equal, params, flax_params)
    if settings.get("use_bias", True):  # a nonzero bias, so that adding it is checked
        params = jax.tree.map(lambda p: p + 0.1, params)
    np.testing.assert_allclose(ours.apply(params, x), theirs.apply(params, x), rtol=1e-6, atol=1e-6)

    def loss(module, p):
        return jnp.sum(jnp.sin(module.apply(p, x)))

    got, ref = jax.grad(lambda p: loss(ours, p))(params), jax.grad(lambda p: loss(theirs, p))(params)
    jax.tree.map(lambda g, r: np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5 * np.abs(r).max()), got, ref)


def test_module_bfloat16_compute_keeps_float32_params():
    x = normal((2, 8, 8, 3), 1)
    settings = dict(features=4, kernel_size=(3, 3), dtype=jnp.bfloat16)
    ours, theirs = conv.Conv(**settings), nn.Conv(**settings)
    params = ours.init(jax.random.key(2), x)
    assert params["params"]["kernel"].dtype == jnp.float32
    y = ours.apply(params, x)
    assert y.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(y, np.float32), np.asarray(theirs.apply(params, x), np.float32),
                               rtol=1e-2, atol=1e-2)
    grads = jax.grad(lambda p: jnp.sum(ours.apply(p, x).astype(jnp.float32)))(params)
    assert grads["params"]["kernel"].dtype == jnp.float32


def test_benchmark_reports_speedups(capsys):
    result = conv_bench.main(["--layers", "6x6x3x4,4x4x16x8", "--batch-size", "2", "--formulations",
                              "--rounds", "1", "--steps", "1"])
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == json.loads(json.dumps(result))
    assert list(printed["speedups"]) == ["6x6x3->4", "4x4x16->8"]
    assert all(s > 0 for s in printed["speedups"].values()) and printed["total_speedup"] > 0
    assert set(printed["layers"][0]["ms"]) == {"xla", "shifted", "taps", "im2col"}
    # conftest calls nsnn_jax.cpu.configure() before any backend starts
    expected_engine = "eigen" if cpu.supports_flag() else "xla-default"
    assert printed["conv_engine"] == cpu.convolution_engine() == expected_engine


def test_benchmark_rejects_bad_layers(capsys):
    with pytest.raises(SystemExit):
        conv_bench.main(["--layers", "32x32x3"])
    assert "--layers" in capsys.readouterr().err
