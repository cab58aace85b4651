"""``python -m train.cifar --dataset fashion_mnist``: the conv architectures on 28x28x1 grey images.

Every architecture on 28x28x1 inputs, the preprocessing (z-scoring, crop and flip, VGGSNN's padding to 32x32),
a tiny run through ``main`` on IDX files, its restore, and the settings that make no sense on grey images.
"""

import contextlib
import io
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import assert_eval_only_matches_last_epoch, make_idx_dir, read_metrics
from nsnn_jax import models
from nsnn_jax import neuron as neuron_lib
from nsnn_jax import noise as noise_lib
from nsnn_jax.data import Dataset, idx
from nsnn_jax.models import blocks
from train import cifar
from train.common import recipes, restore

pytestmark = [pytest.mark.standard_promotion,  # optax inside
              pytest.mark.usefixtures("fast_compilation")]

WIDTH = 0.0625
TINY = ["--dataset", "fashion_mnist", "--arch", "cifarnet", "--width", str(WIDTH), "--epochs", "1",
        "--timesteps", "2", "--batch-size", "16", "--train-limit", "48", "--test-limit", "16"]
NOISY = neuron_lib.LIFParams(noise=noise_lib.Gaussian(0.3), firing="reference")


def grey_data(n_train=8, n_test=4, seed=0):
    rng = np.random.default_rng(seed)
    return Dataset(rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), np.arange(n_train, dtype=np.int32) % 10,
                   rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), np.arange(n_test, dtype=np.int32) % 10)


PAPER_ARCHS = tuple(arch for arch in cifar.ARCHS if not arch.endswith("_table5"))


@pytest.mark.parametrize("arch", PAPER_ARCHS)
def test_every_architecture_runs_on_28x28x1_frames(arch):
    """(T, B, 28, 28, 1) in, (T, B, 10) out, finite; the Table 5 reading of it gives the same shape."""
    x = jax.random.uniform(jax.random.key(1), (2, 3, 28, 28, 1))
    rngs = {"params": jax.random.key(0), "noise": jax.random.key(2)}
    for name in (arch, arch + "_table5"):
        model = models.get_model(name, outputs=10, timesteps=2, neuron=NOISY, width=WIDTH, sequence_input=True,
                                 norm="bn")
        if name == arch:  # run it (noise off: the shapes are those of the noisy pass, which the run below covers)
            out, _ = jax.jit(lambda x: model.init_with_output(rngs, x, train=False, deterministic=True))(x)
            assert np.all(np.isfinite(np.asarray(out)))
        else:  # its Table 5 reading differs in initialisation and biases only: its shapes suffice
            out, _ = jax.eval_shape(lambda x: model.init_with_output(rngs, x, train=False), x)
        assert out.shape == (2, 3, 10), name


def test_readout_sizes_follow_the_input():
    """CIFARNet's first dense layer sees 7x7 maps on 28x28 (8x8 on 32x32); VGGSNN's readout 1x1 (2x2 padded)."""
    def kernel(arch, side, name):
        model = models.get_model(arch, outputs=10, timesteps=1, neuron=NOISY, width=WIDTH)
        shapes = jax.eval_shape(lambda x: model.init({"params": jax.random.key(0), "noise": jax.random.key(1)}, x),
                                jax.ShapeDtypeStruct((1, side, side, 1), jnp.float32))
        params = shapes["params"]
        return next(leaf.shape for path, leaf in jax.tree_util.tree_leaves_with_path(params)
                    if name in jax.tree_util.keystr(path) and "kernel" in jax.tree_util.keystr(path))

    c512 = blocks.scaled(512, WIDTH)
    assert kernel("cifarnet", 28, "fc0")[0] == 7 * 7 * c512
    assert kernel("cifarnet", 32, "fc0")[0] == 8 * 8 * c512
    assert kernel("vggsnn", 28, "readout")[0] == 1 * 1 * c512
    assert kernel("vggsnn", 32, "readout")[0] == 2 * 2 * c512


def test_an_input_too_small_for_the_poolings_is_a_clear_error():
    model = models.get_model("vggsnn", outputs=10, timesteps=1, neuron=NOISY, width=WIDTH)
    with pytest.raises(ValueError, match="too small"):
        jax.eval_shape(lambda x: model.init({"params": jax.random.key(0), "noise": jax.random.key(1)}, x),
                       jax.ShapeDtypeStruct((1, 12, 12, 1), jnp.float32))


def test_preprocessing_z_scores_pads_for_vggsnn_and_crops_and_flips_within_two_pixels():
    data = grey_data()
    mean, std = idx.MEAN_STD["fashion_mnist"]
    for arch, side in (("cifarnet", 28), ("resnet18", 28), ("vggsnn", 32)):
        config = cifar.CifarConfig(dataset="fashion_mnist", arch=arch)
        task = cifar.build_task(config, data)
        assert task.data.train_x.shape == (8, 28, 28, 1)
        evaluated = np.asarray(task.preprocess(jnp.asarray(task.data.test_x), jax.random.key(0), False))
        assert evaluated.shape == (4, side, side, 1)
        pad = (side - 28) // 2
        pixels = evaluated * std[0] + mean[0]  # back to [0, 1]
        np.testing.assert_allclose(pixels[:, pad:pad + 28, pad:pad + 28, 0], data.test_x / 255.0, atol=1e-5)
        if pad:
            np.testing.assert_allclose(pixels[:, :pad], 0.0, atol=1e-5)  # black border, as the background
    plain = cifar.build_task(cifar.CifarConfig(dataset="fashion_mnist", normalization="none"), data)
    np.testing.assert_allclose(np.asarray(plain.preprocess(jnp.asarray(plain.data.test_x), jax.random.key(0), False)),
                               plain.data.test_x / 255.0, atol=1e-6)
    # Training: each image is a window of its 2-pixel zero padding, flipped or not.
    config = cifar.CifarConfig(dataset="fashion_mnist", arch="cifarnet")
    task = cifar.build_task(config, data)
    trained = np.asarray(task.preprocess(jnp.asarray(task.data.train_x), jax.random.key(5), True))
    restored = np.rint((trained[..., 0] * std[0] + mean[0]) * 255.0).astype(np.int64)
    shifts = set()
    for image, out in zip(data.train_x.astype(np.int64), restored):
        padded = np.pad(image, 2)
        candidates = [(dy, dx, flip) for dy in range(5) for dx in range(5) for flip in (False, True)
                      if np.array_equal(out, (padded[dy:dy + 28, dx:dx + 28][:, ::-1] if flip
                                              else padded[dy:dy + 28, dx:dx + 28]))]
        assert candidates, "not a crop of the padded image"
        shifts.add(candidates[0])
    assert len(shifts) > 1  # augmentation varies across the batch


def test_the_small_scale_recipe_is_marked_and_not_the_papers():
    config = cifar.CifarConfig(dataset="fashion_mnist")
    config.validate()
    assert config.recipe == "fashion_mnist/cifarnet/stbp/noisy"
    assert (config.width, config.timesteps, config.batch_size, config.autoaugment, config.normalization) == (
        0.125, 2, 128, False, "dataset")
    assert not recipes.get_recipe("fashion_mnist", "cifarnet", "stbp", "noisy").published
    for name in ("width", "epochs", "lr", "batch_size", "timesteps", "sigma", "autoaugment", "normalization"):
        assert config.recipe_sources[name].startswith(recipes.SMALL_SCALE), name
    for arch in cifar.ARCHS:  # every architecture has a recipe on it
        assert cifar.CifarConfig(dataset="fashion_mnist", arch=arch, neuron="lif").recipe.startswith("fashion_mnist/")
    assert cifar.CifarConfig().width == 1.0  # the paper's rows keep the published widths


@pytest.mark.skipif(not os.path.isdir(idx.SYSTEM_DIRS["fashion_mnist"][0]), reason="no Fashion-MNIST installed")
def test_the_stated_mean_and_std_are_the_training_sets():
    data = idx.load_idx_dataset("fashion_mnist", download=False)
    pixels = data.train_x.astype(np.float64) / 255.0
    (mean,), (std,) = idx.MEAN_STD["fashion_mnist"]
    assert abs(pixels.mean() - mean) < 1e-4 and abs(pixels.std() - std) < 1e-4


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    return make_idx_dir(tmp_path_factory.mktemp("fmnist"), n_train=64, n_test=24)


@pytest.fixture(scope="module")
def tiny_run(idx_dir, tmp_path_factory):
    """One epoch of CIFARNet at 1/16 width on 48 IDX images; ``(workdir, what it printed)``."""
    workdir = str(tmp_path_factory.mktemp("runs") / "fmnist-cifarnet")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        cifar.main(["--data-dir", idx_dir, "--workdir", workdir, *TINY])
    return workdir, printed.getvalue()


def test_a_tiny_run_writes_metrics_config_and_a_final_line(tiny_run):
    workdir, printed = tiny_run
    config = json.load(open(os.path.join(workdir, "config.json")))
    assert (config["experiment"], config["dataset"], config["recipe"]) == (
        "train.cifar", "fashion_mnist", "fashion_mnist/cifarnet/stbp/noisy")
    assert (config["train_limit"], config["test_limit"], config["autoaugment"]) == (48, 16, False)
    records = read_metrics(workdir)
    assert [(r["epoch"], r["step"]) for r in records] == [(1, 3)]  # 48 images / batch 16
    for name in ("train_loss", "test_loss", "test_accuracy", "test_accuracy_deterministic", "firing_rate"):
        assert np.isfinite(records[0][name]), name
    assert printed.strip().splitlines()[-1] == (
        f"final test_accuracy={records[0]['test_accuracy']:.4f} (best epoch 1: "
        f"{records[0]['test_accuracy']:.4f}, selected on the test set)")


def test_the_tiny_run_is_restored_and_evaluated_with_its_limits(tiny_run, capsys):
    workdir, _ = tiny_run
    _, task, variables = restore.load_run(workdir)  # the data come from the recorded --data-dir
    assert task.data.test_x.shape == (16, 28, 28, 1) and task.data.train_x.shape == (48, 28, 28, 1)
    assert "params" in variables
    capsys.readouterr()
    cifar.main(["--eval-only", "--workdir", workdir])
    out = capsys.readouterr().out
    assert_eval_only_matches_last_epoch(workdir, out)


@pytest.mark.parametrize("argv,message", [
    (["--autoaugment"], "grey"),
    (["--autoaugment", "true"], "grey"),
    (["--normalization", "authors"], "authors"),
    (["--train-limit", "-1"], "train-limit"),
])
def test_settings_that_do_not_fit_grey_images_fail_before_any_work(argv, message, capsys):
    with pytest.raises(SystemExit) as error:
        cifar.main(["--dataset", "fashion_mnist", *argv])
    assert error.value.code == 2
    assert message in capsys.readouterr().err


def test_a_limit_past_the_data_fails_naming_it(idx_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as error:
        cifar.main(["--data-dir", idx_dir, "--workdir", str(tmp_path / "run"), *TINY[:-4], "--train-limit", "1000"])
    assert error.value.code == 1
    assert "--train-limit=1000 exceeds the 64 train samples" in capsys.readouterr().err


def test_help_names_the_small_scale_setting(capsys):
    with pytest.raises(SystemExit):
        cifar.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ("fashion_mnist", "small-scale setting", "--train-limit", "--test-limit", "none"):
        assert phrase in text, phrase
