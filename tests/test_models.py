"""The models: conv architectures (parameter counts by hand, shapes, one step, remat, dtypes, the conv
weight gradient, the ReLU floor), the MLPs and the registry."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from helpers import fast_jit
from nsnn_jax import losses, models, noise
from nsnn_jax.neuron import LIFParams

NOISY = LIFParams(noise=noise.Gaussian(0.3))
ARCHS = ("cifarnet", "resnet18", "resnet19", "vggsnn")
TABLE5 = ("cifarnet_table5", "resnet18_table5", "resnet19_table5", "vggsnn_table5")


def conv(c_in, c_out, k=3):
    return c_in * c_out * k * k  # no bias: a norm follows


def norm(c):
    return 2 * c  # scale and shift (BN's running statistics are not parameters)


def dense(d_in, d_out):
    return d_in * d_out + d_out  # the readout: with bias, no norm


def basic_block(c_in, c_out, stride):
    count = conv(c_in, c_out) + norm(c_out) + conv(c_out, c_out) + norm(c_out)
    if stride != 1 or c_in != c_out:
        count += conv(c_in, c_out, 1) + norm(c_out)
    return count


def hand_count(arch, classes, channels=3, size=32):
    """Parameters of each architecture at ``size x size x channels``, from the layer list of its definition."""
    if arch == "cifarnet":  # the authors': conv with bias, no norm, three linear layers in the head
        chans = [3, 128, 256, 512, 1024, 512]
        total = sum(conv(a, b) + b for a, b in zip(chans, chans[1:]))
        return total + dense(8 * 8 * 512, 1024) + dense(1024, 512) + dense(512, classes)
    if arch == "vggsnn":  # the authors': conv with bias, then the norm
        chans = [channels, 64, 128, 256, 256, 512, 512, 512, 512]
        total = sum(conv(a, b) + b + norm(b) for a, b in zip(chans, chans[1:]))
        return total + dense((size // 16) ** 2 * 512, classes)
    if arch == "resnet19":  # the authors': stem 64, 64->128 first block, fc1 with bias and no norm
        total, c = conv(channels, 64) + norm(64), 64
        for width, blocks, stride in ((128, 3, 1), (256, 3, 2), (512, 2, 2)):
            for b in range(blocks):
                total += basic_block(c, width, stride if b == 0 else 1)
                c = width
        return total + dense(512, 256) + dense(256, classes)
    if arch == "resnet18_table5":
        return hand_count("resnet18", classes)
    if arch == "cifarnet_table5":  # 128c3-256c3-ap2-512c3-ap2-1024c3-512c3-1024fc-512fc-fc
        chans = [3, 128, 256, 512, 1024, 512]
        total = sum(conv(a, b) + norm(b) for a, b in zip(chans, chans[1:]))
        hidden = conv(8 * 8 * 512, 1024, 1) + norm(1024) + conv(1024, 512, 1) + norm(512)  # dense, no bias
        return total + hidden + dense(512, classes)
    if arch == "vggsnn_table5":  # 64c3-128c3-ap2-256c3-256c3-ap2-512c3-512c3-ap2-512c3-512c3-ap2-fc
        chans = [3, 64, 128, 256, 256, 512, 512, 512, 512]
        total = sum(conv(a, b) + norm(b) for a, b in zip(chans, chans[1:]))
        return total + dense(2 * 2 * 512, classes)
    if arch == "resnet18":
        total, c = conv(3, 64) + norm(64), 64
        for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            total += basic_block(c, width, stride) + basic_block(width, width, 1)
            c = width
        return total + dense(512, classes)
    if arch == "resnet19_table5":  # 128c3-(128)x3-(256)x3-(512)x2-ap-256fc-fc
        total, c = conv(3, 128) + norm(128), 128
        for width, blocks, stride in ((128, 3, 1), (256, 3, 2), (512, 2, 2)):
            for b in range(blocks):
                total += basic_block(c, width, stride if b == 0 else 1)
                c = width
        return total + conv(512, 256, 1) + norm(256) + dense(256, classes)
    raise AssertionError(arch)


def init(model, x, key=jax.random.key(1)):
    """Initial variables, initialised under jit (op-by-op initialisation of a conv net takes ~20 s)."""
    return fast_jit(lambda k: model.init({"params": jax.random.key(0), "noise": k}, x))(key)


def init_shapes(model, x):
    return jax.eval_shape(lambda: model.init({"params": jax.random.key(0), "noise": jax.random.key(1)}, x))


def param_count(shapes):
    return sum(math.prod(p.shape) for p in jax.tree.leaves(shapes["params"]))


@pytest.mark.parametrize("classes", [10, 100])
@pytest.mark.parametrize("arch", ARCHS + TABLE5)
def test_parameter_count_matches_hand_computation(arch, classes):
    model = models.get_model(arch, outputs=classes, timesteps=2, neuron=NOISY)
    shapes = init_shapes(model, jnp.zeros((2, 32, 32, 3)))
    assert param_count(shapes) == hand_count(arch, classes)
    # BN running statistics are state, not parameters; the authors' CIFARNet has no norm at all.
    assert ("batch_stats" in shapes) == (arch != "cifarnet")


@pytest.mark.parametrize("arch, classes, expected", [
    ("cifarnet", 10, 45_003_018), ("resnet19", 10, 12_630_858), ("resnet18", 10, 11_173_962),
    ("cifarnet_table5", 10, 45_006_986), ("resnet19_table5", 10, 12_698_250),
    ("resnet18_table5", 10, 11_173_962), ("vggsnn_table5", 10, 9_243_722),
    ("cifarnet", 100, 45_049_188), ("resnet19", 100, 12_653_988),
])
def test_published_parameter_counts_on_cifar(arch, classes, expected):
    """The counts of the authors' PyTorch networks (and of the Table 5 readings), at 32x32x3."""
    model = models.get_model(arch, outputs=classes, timesteps=2, neuron=NOISY)
    assert param_count(init_shapes(model, jnp.zeros((2, 32, 32, 3)))) == expected


@pytest.mark.parametrize("arch, expected", [("vggsnn", 9_271_498), ("vggsnn_table5", 9_268_746),
                                            ("resnet19", 12_630_282)])
def test_published_parameter_counts_on_dvs_frames(arch, expected):
    """DVS-CIFAR input: 2 polarities at 48x48, as a (T, B, H, W, C) sequence."""
    model = models.get_model(arch, outputs=10, timesteps=2, neuron=NOISY, sequence_input=True)
    shapes = init_shapes(model, jnp.zeros((2, 2, 48, 48, 2)))
    assert param_count(shapes) == expected


@pytest.mark.parametrize("arch", ["vggsnn", "resnet19"])
def test_dvs_parameter_count_matches_hand_computation(arch):
    model = models.get_model(arch, outputs=10, timesteps=2, neuron=NOISY, sequence_input=True)
    shapes = init_shapes(model, jnp.zeros((2, 2, 48, 48, 2)))
    assert param_count(shapes) == hand_count(arch, 10, channels=2, size=48)


def kurtosis(a):
    a = np.asarray(a, np.float64).ravel()
    return float(np.mean((a - a.mean()) ** 4) / np.var(a) ** 2)


def check_uniform(a, bound):
    """``a`` looks like U(-bound, bound): inside, reaching the edge, std bound/sqrt(3), kurtosis 1.8."""
    a = np.asarray(a).ravel()
    assert np.max(np.abs(a)) <= bound * (1 + 1e-6)
    assert np.max(np.abs(a)) > 0.95 * bound
    np.testing.assert_allclose(np.std(a), bound / math.sqrt(3), rtol=0.05)
    np.testing.assert_allclose(kurtosis(a), 1.8, atol=0.15)


def test_authors_initialisation_of_the_vgg_and_cifarnet_convs_and_heads():
    """Kaiming fan-out normal conv kernels (std sqrt(2/fan_out), untruncated), PyTorch-default biases and
    dense layers U(+-1/sqrt(fan_in)); the _table5 form keeps lecun_normal (std 1/sqrt(fan_in)) and zero biases."""
    model = models.get_model("cifarnet", outputs=10, timesteps=1, neuron=NOISY, width=1 / 4)
    params = init(model, jnp.zeros((1, 8, 8, 3)))["params"]
    kernel = params["conv3"]["conv"]["kernel"]  # (3, 3, 128, 256)
    assert kernel.shape == (3, 3, 128, 256)
    np.testing.assert_allclose(np.std(kernel), math.sqrt(2 / (256 * 9)), rtol=0.02)
    np.testing.assert_allclose(kurtosis(kernel), 3.0, atol=0.1)  # a truncated normal has about 2.4-2.8
    check_uniform(params["conv3"]["conv"]["bias"], 1 / math.sqrt(128 * 9))
    dense_kernel = params["fc0"]["Dense_0"]["kernel"] if "Dense_0" in params["fc0"] else params["fc0"]["kernel"]
    fan_in = dense_kernel.shape[0]
    check_uniform(dense_kernel, 1 / math.sqrt(fan_in))
    vgg = init(models.get_model("vggsnn", outputs=10, timesteps=1, neuron=NOISY, width=1 / 4),
               jnp.zeros((1, 16, 16, 3)))["params"]
    np.testing.assert_allclose(np.std(vgg["conv5"]["conv"]["kernel"]), math.sqrt(2 / (128 * 9)), rtol=0.02)
    table5 = init(models.get_model("vggsnn_table5", outputs=10, timesteps=1, neuron=NOISY, width=1 / 4),
                  jnp.zeros((1, 16, 16, 3)))["params"]
    assert "bias" not in table5["conv5"]["conv"]
    np.testing.assert_allclose(np.std(table5["conv5"]["conv"]["kernel"]), math.sqrt(1 / (128 * 9)), rtol=0.02)


def test_authors_initialisation_of_the_resnets_is_pytorch_default():
    model = models.get_model("resnet19", outputs=10, timesteps=1, neuron=NOISY, width=1 / 4)
    params = init(model, jnp.zeros((1, 8, 8, 3)))["params"]
    kernel = params["stage2_block1"]["conv0"]["conv"]["kernel"]  # (3, 3, 128, 128)
    check_uniform(kernel, 1 / math.sqrt(128 * 9))
    fc = jax.tree.leaves(params["fc0"])
    (fc_bias,) = [a for a in fc if a.ndim == 1]
    (fc_kernel,) = [a for a in fc if a.ndim == 2]
    assert fc_kernel.shape == (128, 64) and "norm" not in params["fc0"]
    check_uniform(fc_kernel, 1 / math.sqrt(128))
    assert np.max(np.abs(fc_bias)) <= 1 / math.sqrt(128)
    r18 = init(models.get_model("resnet18", outputs=10, timesteps=1, neuron=NOISY, width=1 / 4),
               jnp.zeros((1, 8, 8, 3)))["params"]
    check_uniform(r18["stage3_block1"]["conv1"]["conv"]["kernel"], 1 / math.sqrt(128 * 9))


@pytest.mark.parametrize("scheme, std", [("torch", 1 / math.sqrt(3 * 64 * 9)), ("kaiming", math.sqrt(2 / (96 * 9)))])
def test_initialisers_by_their_closed_form(scheme, std):
    kernel_init, bias_init = models.init.initializers(scheme, 64 * 9)
    kernel = kernel_init(jax.random.key(0), (3, 3, 64, 96))
    np.testing.assert_allclose(np.std(kernel), std, rtol=0.03)
    check_uniform(bias_init(jax.random.key(1), (20000,)), 1 / math.sqrt(64 * 9))
    with pytest.raises(ValueError, match="init must be one of"):
        models.init.initializers("xavier", 3)


@pytest.mark.parametrize("arch", ARCHS + ("cifarnet_table5", "resnet19_table5"))
def test_static_image_equals_the_image_repeated_over_time(arch):
    """The first layer computed once for a static image gives what the same model gives on the image
    repeated over T as a sequence (the input the per-step FGSM differentiates), same key, same parameters."""
    x, _ = make_batch(n=2, size=16)
    static, sequence = tiny(arch), tiny(arch, sequence_input=True)
    variables = init(static, x)
    key = jax.random.key(7)
    a = fast_jit(lambda v: static.apply(v, x, rngs={"noise": key}))(variables)
    b = fast_jit(lambda v: sequence.apply(v, jnp.broadcast_to(x, (2,) + x.shape), rngs={"noise": key}))(variables)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_authors_cifarnet_with_bn_is_their_earlier_form():
    model = models.get_model("cifarnet", timesteps=2, neuron=NOISY, norm="bn")
    assert param_count(init_shapes(model, jnp.zeros((2, 32, 32, 3)))) == 45_007_882


def test_sevenb_net_parameter_count_and_voting_readout():
    """7B-Net at 128x128x2: {c128k3-BN}x5 (max pools to 4x4) - FC512 (normalised) - FC110 - vote to 11."""
    model = models.get_model("sevenb", timesteps=2, neuron=NOISY)
    shapes = init_shapes(model, jnp.zeros((2, 1, 128, 128, 2)))
    count = sum(math.prod(p.shape) for p in jax.tree.leaves(shapes["params"]))
    convs = conv(2, 128) + norm(128) + 4 * (conv(128, 128) + norm(128))
    assert count == convs + conv(4 * 4 * 128, 512, 1) + norm(512) + dense(512, 110)
    small = models.get_model("sevenb", timesteps=2, neuron=NOISY, width=1 / 16)
    x = jnp.zeros((2, 3, 32, 32, 2))
    variables = init(small, x)
    # The readout averages each class's 10 votes: check against the readout's own output.
    out, state = fast_jit(lambda v: small.apply(v, x, capture_intermediates=True, mutable=["intermediates"],
                                                rngs={"noise": jax.random.key(1)}))(variables)
    raw = state["intermediates"]["TimeDistributed_0"]["__call__"][0]
    np.testing.assert_allclose(out, raw.reshape(2, 3, 11, 10).mean(-1), rtol=1e-6)


def test_published_sizes():
    """Independent of the hand formula: the well-known 11,173,962 of the CIFAR ResNet-18."""
    assert hand_count("resnet18", 10) == 11_173_962


def tiny(arch, **kwargs):
    return models.get_model(arch, outputs=5, timesteps=2, neuron=NOISY, width=1 / 16, **kwargs)


@pytest.mark.parametrize("arch", ARCHS)
def test_output_shape_static_and_sequence_input(arch):
    x = jnp.zeros((3, 16, 16, 3))
    out = jax.eval_shape(lambda: tiny(arch).init_with_output(
        {"params": jax.random.key(0), "noise": jax.random.key(1)}, x)[0])
    assert out.shape == (2, 3, 5)
    seq = jnp.zeros((4, 3, 16, 16, 2))
    out = jax.eval_shape(lambda: tiny(arch, sequence_input=True).init_with_output(
        {"params": jax.random.key(0), "noise": jax.random.key(1)}, seq)[0])
    assert out.shape == (4, 3, 5)
    with pytest.raises(ValueError, match="Expected images"):
        tiny(arch).init({"params": jax.random.key(0), "noise": jax.random.key(1)}, jnp.zeros((3, 16, 16)))


def make_batch(n=8, size=16, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.normal(0.0, 1.0, (n, size, size, 3)).astype(np.float32)
    x[np.arange(n), :, :, y % 3] += 2.0  # class-dependent colour: learnable
    return jnp.asarray(x), jnp.asarray(y, jnp.int32)


def loss_and_grads(model, variables, x, y, key):
    def objective(params):
        out, updates = model.apply({**variables, "params": params}, x, train=True, rngs={"noise": key},
                                   mutable=["batch_stats"])
        return jnp.mean(losses.rate_cross_entropy(out, y)), updates

    return jax.value_and_grad(objective, has_aux=True)(variables["params"])


@pytest.mark.standard_promotion  # optax
@pytest.mark.parametrize("arch", ARCHS)
def test_one_training_step_lowers_the_loss(arch):
    """One Adam step on the NDL gradient lowers the loss of a fixed batch.

    The loss is averaged over the same 8 noise keys before and after the step
    (an estimate of the expected loss, which is what NDL descends).
    """
    model = tiny(arch)
    x, y = make_batch()
    keys = jax.random.split(jax.random.key(3), 8)
    variables = init(model, x, keys[0])
    tx = optax.adam(1e-2)

    def mean_loss_and_grads(variables):
        (loss, _), grads = jax.vmap(lambda k: loss_and_grads(model, variables, x, y, k))(keys)
        return jnp.mean(loss), jax.tree.map(lambda g: jnp.mean(g, axis=0), grads)

    @fast_jit
    def step(variables):
        loss, grads = mean_loss_and_grads(variables)
        updates, _ = tx.update(grads, tx.init(variables["params"]), variables["params"])
        after = {**variables, "params": optax.apply_updates(variables["params"], updates)}
        return loss, mean_loss_and_grads(after)[0], grads

    loss, new_loss, grads = step(variables)
    assert np.isfinite(float(loss))
    assert float(new_loss) < float(loss)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert all(float(jnp.max(jnp.abs(g))) > 0 for g in jax.tree.leaves(grads["conv0"] if "conv0" in grads else grads["stem"]))


@pytest.mark.parametrize("arch", ["cifarnet", "resnet"])
def test_remat_gives_the_same_loss_and_gradients(arch):
    """Rematerialised conv layers (CIFARNet) and residual blocks (a two-block ResNet) change nothing."""
    x, y = make_batch(n=4)
    key = jax.random.key(5)
    if arch == "resnet":
        def build(remat):
            return models.SpikingResNet(stem=4, stages=((4, 1, 1), (8, 1, 2)), hidden=(8,), outputs=5,
                                        timesteps=2, neuron=NOISY, remat=remat)
    else:
        def build(remat):
            return tiny(arch, remat=remat)
    plain, remat = build(False), build(True)
    variables = init(plain, x, key)
    (loss_a, _), grads_a = fast_jit(lambda v: loss_and_grads(plain, v, x, y, key))(variables)
    (loss_b, _), grads_b = fast_jit(lambda v: loss_and_grads(remat, v, x, y, key))(variables)
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(grads_a), jax.tree.leaves(grads_b)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_tdbn_residual_scale_and_plain_bn_structure():
    """tdBN layers carry the threshold; 'bn' builds plain batch norms with learnt scale."""
    x = jnp.zeros((2, 16, 16, 3))
    td = init_shapes(tiny("resnet18"), x)["params"]
    bn = init_shapes(tiny("resnet18", norm="bn"), x)["params"]
    assert set(td["stage1_block0"]["shortcut"]["norm"]) == {"scale", "bias"}
    assert "BatchNorm_0" in bn["stage1_block0"]["shortcut"]["norm"]
    block = models.resnet.BasicBlock(8, NOISY, "tdbn", strides=2)
    z = jax.random.normal(jax.random.key(2), (2, 32, 4, 4, 4))
    variables = fast_jit(lambda: block.init({"params": jax.random.key(0), "noise": jax.random.key(1)}, z, True, True))()
    _, state = block.apply(variables, z, True, True, capture_intermediates=True,
                           mutable=["intermediates", "batch_stats"])
    captured = state["intermediates"]
    # At initialisation (scale 1, shift 0) tdBN outputs have std alpha * v_th.
    np.testing.assert_allclose(float(jnp.std(captured["conv0"]["norm"]["__call__"][0])), 1.0, rtol=1e-2)
    for name in ("conv1", "shortcut"):
        np.testing.assert_allclose(float(jnp.std(captured[name]["norm"]["__call__"][0])), 1 / math.sqrt(2), rtol=1e-2)


def test_bfloat16_computation_keeps_float32_parameters():
    model = tiny("vggsnn", dtype=jnp.bfloat16)
    x, _ = make_batch(n=2)
    variables = init(model, x)
    assert {p.dtype for p in jax.tree.leaves(variables["params"])} == {jnp.dtype(jnp.float32)}
    out = fast_jit(lambda v: model.apply(v, x, rngs={"noise": jax.random.key(2)}))(variables)
    assert out.dtype == jnp.bfloat16


def test_deterministic_inference_ignores_the_key_and_noisy_does_not():
    model = tiny("cifarnet")
    x, _ = make_batch(n=4)
    variables = init(model, x)
    apply = fast_jit(lambda v, k, det: model.apply(v, x, deterministic=det, rngs={"noise": k}),
                     static_argnums=2)
    a, b = apply(variables, jax.random.key(1), True), apply(variables, jax.random.key(2), True)
    np.testing.assert_array_equal(a, b)
    c, d = apply(variables, jax.random.key(1), False), apply(variables, jax.random.key(2), False)
    assert not np.array_equal(c, d)


def grad_primitive_counts(model, x):
    """(dot_generals, convolutions) in the jaxpr of the parameter gradient of one training-mode loss."""
    variables = init_shapes(model, x)

    def loss(params, batch_stats):
        out, _ = model.apply({"params": params, "batch_stats": batch_stats}, x, train=True,
                             rngs={"noise": jax.random.key(0)}, mutable=["batch_stats"])
        return jnp.sum(out)

    text = str(jax.make_jaxpr(jax.grad(loss))(variables["params"], variables.get("batch_stats", {})))
    return text.count("dot_general"), text.count("conv_general_dilated")


CONV_LAYERS = {"cifarnet": 5, "vggsnn": 8, "resnet18": 1 + 16 + 3, "resnet19": 1 + 16 + 3}  # resnet19: 64->128 shortcut


@pytest.mark.parametrize("arch", ARCHS)
def test_conv_weight_grad_reaches_every_conv_layer(arch):
    """``conv_weight_grad='shifted'`` turns each layer's XLA weight-gradient convolution into products."""
    x = jnp.zeros((2, 16, 16, 3))
    xla = grad_primitive_counts(tiny(arch), x)
    shifted = grad_primitive_counts(tiny(arch, conv_weight_grad="shifted"), x)
    assert xla == grad_primitive_counts(tiny(arch, conv_weight_grad="xla"), x)  # 'xla' is the default
    layers = CONV_LAYERS[arch]
    # forward + input gradient + weight gradient per layer
    assert xla[1] == 3 * layers
    assert shifted[1] == xla[1] - layers  # no weight-gradient convolution left
    assert shifted[0] > xla[0] + layers - 1  # at least one product per layer instead


def test_sevenb_net_takes_the_conv_weight_grad():
    x = jnp.zeros((2, 2, 32, 32, 2))
    small = dict(timesteps=2, neuron=NOISY, width=1 / 16, dropout=0.0)
    xla = grad_primitive_counts(models.get_model("sevenb", **small), x)
    shifted = grad_primitive_counts(models.get_model("sevenb", conv_weight_grad="shifted", **small), x)
    assert shifted[1] == xla[1] - 5


@pytest.mark.parametrize("arch", ARCHS)
def test_relu_floor_has_the_same_parameters_and_no_noise(arch):
    """``activation='relu'``: the same layers with ReLU, which needs no 'noise' rng and sows no firing rate."""
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3, 16, 16, 3)).astype(np.float32))
    floor = tiny(arch, activation="relu", sequence_input=True)
    spiking = tiny(arch, sequence_input=True)
    variables = fast_jit(lambda: floor.init({"params": jax.random.key(0)}, x))()
    spiking_variables = init_shapes(spiking, x)
    assert set(variables) == ({"params"} if arch == "cifarnet" else {"params", "batch_stats"})
    for collection in variables:
        assert jax.tree.structure(variables[collection]) == jax.tree.structure(spiking_variables[collection])
    out, state = fast_jit(lambda v: floor.apply(v, x, mutable=["intermediates"]))(variables)
    assert out.shape == (2, 3, 5) and np.all(np.isfinite(out))
    assert "intermediates" not in state or not jax.tree.leaves(state["intermediates"])
    # real-valued activations: the readout input is not binary as with spikes
    assert len(np.unique(np.asarray(out))) > 2


@pytest.mark.parametrize("settings, match", [
    (dict(activation="tanh"), "activation must be one of"),
    (dict(conv_weight_grad="auto"), "conv_weight_grad must be one of"),
    (dict(neuron=None), "activation='relu'"),
])
def test_bad_model_settings_raise(settings, match):
    model = models.get_model("vggsnn", outputs=5, timesteps=2, width=1 / 16, **settings)
    with pytest.raises(ValueError, match=match):
        init_shapes(model, jnp.zeros((2, 16, 16, 3)))


def test_sevenb_dropout_draws_from_the_dropout_stream():
    """With a 'dropout' rng the masks follow it, not the membrane noise; without one, the 'noise' stream
    (earlier behaviour) still gives the same masks for the same key."""
    model = models.get_model("sevenb", timesteps=2, neuron=NOISY, width=1 / 16, dropout=0.5)
    x = jnp.asarray(np.random.default_rng(1).uniform(size=(3, 2, 32, 32, 2)).astype(np.float32))
    variables = init(model, x)

    @fast_jit
    def run(variables, noise_key, dropout_key):
        rngs = {"noise": noise_key} if dropout_key is None else {"noise": noise_key, "dropout": dropout_key}
        out, _ = model.apply(variables, x, train=True, rngs=rngs, mutable=["batch_stats"])
        return out

    k0, k1, k2 = jax.random.key(0), jax.random.key(1), jax.random.key(2)
    same = run(variables, k0, k1)
    np.testing.assert_array_equal(same, run(variables, k0, k1))
    assert not np.array_equal(same, run(variables, k0, k2))  # another dropout key: other masks
    old = run(variables, k0, None)
    np.testing.assert_array_equal(old, run(variables, k0, None))
    assert not np.array_equal(old, same)
    # evaluation (train=False) draws no masks and, deterministic, needs no rng at all
    eval_out = fast_jit(lambda v: model.apply(v, x, train=False, deterministic=True))(variables)
    assert eval_out.shape == (3, 2, 11)


# --------------------------------------------------------------------------- the MLPs and the registry


def test_mlp_shapes_and_parameter_count():
    """784-512-512-10: 784*512+512 + 512*512+512 + 512*10+10 parameters."""
    model = models.get_model("mlp", hidden=(512, 512), outputs=10, timesteps=3)
    x = jnp.zeros((2, 28, 28))
    variables = model.init({"params": jax.random.key(0), "noise": jax.random.key(1)}, x)
    count = sum(p.size for p in jax.tree.leaves(variables["params"]))
    assert count == 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10
    out = model.apply(variables, x, rngs={"noise": jax.random.key(2)})
    assert out.shape == (3, 2, 10)


def test_mlp_static_input_equals_repeated_sequence_input():
    """The broadcast first layer gives what a (T, B, D) repeated input gives."""
    kw = dict(hidden=(16, 8), outputs=3, timesteps=4)
    static = models.get_model("mlp", **kw)
    sequence = models.get_model("mlp", sequence_input=True, **kw)
    x = jax.random.uniform(jax.random.key(0), (5, 12)) * 2
    variables = static.init({"params": jax.random.key(1), "noise": jax.random.key(2)}, x)
    a = static.apply(variables, x, rngs={"noise": jax.random.key(3)})
    b = sequence.apply(variables, jnp.broadcast_to(x, (4, 5, 12)), rngs={"noise": jax.random.key(3)})
    chex.assert_trees_all_close(a, b, atol=1e-5)


@pytest.mark.parametrize("shape", [(784,), ()])
def test_mlp_rejects_wrong_rank(shape):
    model = models.get_model("mlp", hidden=(4,))
    with pytest.raises(ValueError, match=str(shape).replace("(", r"\(").replace(")", r"\)")):
        model.init({"params": jax.random.key(0), "noise": jax.random.key(0)}, jnp.zeros(shape))


def test_mlp_rejects_bad_timesteps():
    model = models.get_model("mlp", hidden=(4,), timesteps=0)
    with pytest.raises(ValueError, match="timesteps.*0"):
        model.init({"params": jax.random.key(0), "noise": jax.random.key(0)}, jnp.zeros((2, 3)))


def test_registry_rejects_unknown_model():
    with pytest.raises(ValueError, match="'resnet-1000'"):
        models.get_model("resnet-1000")
