"""Recipes: every Table 4 row as the commands resolve it, flags winning, config.json, schedule, surrogate."""

import json
import math
import os

import numpy as np
import pytest

from nsnn_jax import neuron as neuron_lib
from train import cifar, dvs_cifar, dvs_gesture, fmnist
from train.common import cli, recipes, restore, rundir, steps

# Table 4 of the paper as printed (neuron, dataset, algorithm, arch, lr, batch at T = 2 / T = 4, or at T = 10).
TABLE4 = [
    ("lif", "cifar10", "stbp", "resnet18", 0.01, {2: 256, 4: 256}),
    ("lif", "cifar10", "tet", "resnet18", 0.01, {2: 256, 4: 256}),
    ("lif", "cifar10", "stbp", "cifarnet", 0.004, {2: 256, 4: 256}),
    ("lif", "cifar100", "stbp", "resnet18", 0.005, {2: 256, 4: 256}),
    ("lif", "cifar100", "tet", "resnet18", 0.005, {2: 256, 4: 256}),
    ("lif", "cifar100", "stbp", "cifarnet", 0.001, {2: 256, 4: 256}),
    ("lif", "cifar10_dvs", "stbp", "resnet19", 0.0005, {10: 32}),
    ("lif", "cifar10_dvs", "tet", "vggsnn", 0.0002, {10: 64}),
    ("lif", "cifar10_dvs", "tdbn", "vggsnn", 0.0002, {10: 64}),
    ("noisy", "cifar10", "stbp", "resnet18", 0.002, {2: 256, 4: 256}),
    ("noisy", "cifar10", "tet", "resnet18", 0.002, {2: 256, 4: 256}),
    ("noisy", "cifar10", "stbp", "cifarnet", 0.003, {2: 256, 4: 128}),
    ("noisy", "cifar100", "stbp", "resnet18", 0.001, {2: 256, 4: 256}),
    ("noisy", "cifar100", "tet", "resnet18", 0.001, {2: 256, 4: 256}),
    ("noisy", "cifar100", "stbp", "cifarnet", 0.002, {2: 256, 4: 256}),
    ("noisy", "cifar10_dvs", "stbp", "resnet19", 0.0005, {10: 20}),
    ("noisy", "cifar10_dvs", "tet", "vggsnn", 0.0003, {10: 32}),
    ("noisy", "cifar10_dvs", "tdbn", "vggsnn", 0.0003, {10: 32}),
]
SOURCES = ("Table 4", "run_training.sh", "paper ", "not published: our choice", "main_cifar10.py",
           "main_dvs-cifar10.py", "models/", "dataset_utils.py", "step2-dvscifar", "step3-dvscifar")


def command_config(dataset, arch, algorithm, neuron, **flags):
    """The config the command of ``dataset`` builds from these flags (the DVS frames any loader makes)."""
    if dataset == "cifar10_dvs":
        return dvs_cifar.DvsCifarConfig(arch=arch, algorithm=algorithm, neuron=neuron, **flags)
    return cifar.CifarConfig(dataset=dataset, arch=arch, algorithm=algorithm, neuron=neuron, **flags)


def test_the_table_holds_exactly_table4():
    published = [key for key, recipe in recipes.RECIPES.items() if recipe.published]
    assert sorted(published) == sorted((d, a, g, n) for n, d, g, a, _, _ in TABLE4)
    for key, recipe in recipes.RECIPES.items():  # the rest: the small-scale setting, so marked
        if not recipe.published:
            assert key[0] == "fashion_mnist", key
            assert all(s.source.startswith(recipes.SMALL_SCALE) for s in recipe.values.values()
                       if s.source.startswith("not published")), key


@pytest.mark.parametrize("neuron,dataset,algorithm,arch,lr,batches", TABLE4)
def test_every_row_resolves_to_its_documented_values(neuron, dataset, algorithm, arch, lr, batches):
    dvs = dataset == "cifar10_dvs"
    config = command_config(dataset, arch, algorithm, neuron)
    default_t = min(batches)
    assert config.recipe == f"{dataset}/{arch}/{algorithm}/{neuron}"
    assert (config.lr, config.timesteps, config.batch_size) == (lr, default_t, batches[default_t])
    assert config.epochs == (210 if dvs else 300)
    assert config.sigma == (0.2 if dvs else 0.3)
    assert config.tet_lambda == (0.001 if dvs else 0.05)
    # The authors' CIFARNet has no normalisation; their "tdBN" elsewhere is plain BN.
    assert (config.loss, config.norm) == ("tet" if algorithm == "tet" else "per-step",
                                          "none" if arch == "cifarnet" else "bn")
    assert (config.schedule_unit, config.firing, config.surrogate, config.surrogate_alpha, config.weight_decay) == (
        "epoch", "reference", "erf", 1.0, 0.0)
    if dvs:
        assert (config.frame_norm, config.resize, config.dvs_split, config.size) == ("max", "bilinear", "9k1k", 48)
    else:
        assert (config.normalization, config.autoaugment) == ("authors", True)
    for t, batch in batches.items():  # the other T of "2/4" picks its own batch
        assert command_config(dataset, arch, algorithm, neuron, timesteps=t).batch_size == batch
    assert config.recipe_sources["lr"].startswith("Table 4")
    assert config.recipe_sources["batch_size"].startswith("Table 4")
    for name, source in config.recipe_sources.items():
        assert source.startswith(SOURCES), (name, source)


def test_table4_wins_over_run_training_sh_and_says_so():
    config = cifar.CifarConfig(arch="resnet18")
    assert config.lr == 0.002
    assert "run_training.sh" in config.recipe_sources["lr"] and "0.003" in config.recipe_sources["lr"]


def test_the_command_alone_runs_the_nsnn_cifarnet_stbp_row():
    config = cli.parse_config(cifar.CifarConfig, "", ["--sigma", "0.3"])
    assert (config.recipe, config.lr, config.batch_size, config.timesteps, config.sigma) == (
        "cifar10/cifarnet/stbp/noisy", 0.003, 256, 2, 0.3)
    assert config.recipe_sources["sigma"].startswith("paper Sec. 4.1")  # given equal to the recipe: its source
    config = cli.parse_config(cifar.CifarConfig, "", ["--timesteps", "4"])
    assert (config.batch_size, config.recipe_sources["batch_size"]) == (128, "Table 4 (T = 4)")


def test_the_command_builds_the_authors_cifarnet_without_normalisation():
    """The paper command's CIFARNet is the authors' (no norm): 45,003,018 parameters, not BN's 45,007,882."""
    import jax
    import jax.numpy as jnp

    from train.common import vision

    config = cli.parse_config(cifar.CifarConfig, "", ["--sigma", "0.3"])
    assert config.norm == "none" and "norm_layer=False" in config.recipe_sources["norm"]
    model = vision.build_model(config, 10)
    shapes = jax.eval_shape(lambda x: model.init({"params": jax.random.key(0), "noise": jax.random.key(1)}, x),
                            jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32))
    assert sum(int(np.prod(p.shape)) for p in jax.tree.leaves(shapes["params"])) == 45_003_018
    assert "batch_stats" not in shapes


@pytest.mark.parametrize("argv,field,value", [
    (["--lr", "0.02"], "lr", 0.02), (["--batch-size", "64"], "batch_size", 64), (["--epochs", "7"], "epochs", 7),
    (["--timesteps", "6"], "timesteps", 6), (["--firing", "membrane"], "firing", "membrane"),
    (["--schedule-unit", "step"], "schedule_unit", "step"), (["--loss", "rate"], "loss", "rate"),
    (["--norm", "tdbn"], "norm", "tdbn"), (["--surrogate", "match"], "surrogate", "match"),
    (["--normalization", "dataset"], "normalization", "dataset"), (["--sigma", "0.5"], "sigma", 0.5),
])
def test_a_given_flag_overrides_the_recipe(argv, field, value):
    config = cli.parse_config(cifar.CifarConfig, "", argv)
    assert getattr(config, field) == value
    assert config.recipe_sources[field] == recipes.GIVEN
    untouched = cifar.CifarConfig()
    assert getattr(untouched, field) != value


def test_a_t_table4_does_not_list_keeps_the_default_batch_and_says_so():
    config = cifar.CifarConfig(timesteps=8)
    assert config.batch_size == 256
    assert config.recipe_sources["batch_size"].startswith("not published: our choice")


@pytest.mark.parametrize("dataset,arch,algorithm,neuron,nearest_lr", [
    ("cifar10", "cifarnet", "tet", "noisy", 0.003),  # no TET CIFARNet row: its STBP row's values
    ("cifar10_dvs", "vggsnn", "stbp", "lif", 0.0002),  # VGGSNN STBP: the tdBN row of the same neuron
    ("cifar10", "resnet19", "stbp", "noisy", 0.003),  # no ResNet-19 CIFAR row at all
])
def test_combinations_without_a_row_are_marked_unpublished(dataset, arch, algorithm, neuron, nearest_lr):
    recipe = recipes.get_recipe(dataset, arch, algorithm, neuron)
    assert not recipe.published and recipe.values["lr"].value == nearest_lr
    assert recipe.values["lr"].source.startswith("not published: our choice")
    assert recipe.values["epochs"] == recipes.RECIPES[next(k for k in recipes.RECIPES if k[0] == dataset)].values["epochs"]


def test_unknown_keys_raise_naming_what_is_expected():
    with pytest.raises(ValueError, match="dataset 'svhn'"):
        recipes.get_recipe("svhn", "cifarnet", "stbp", "noisy")
    with pytest.raises(ValueError, match="architecture 'sevenb'"):
        recipes.get_recipe("cifar10", "sevenb", "stbp", "noisy")


def test_dvs_gesture_has_the_papers_t_and_sigma_and_says_the_rest_is_unpublished():
    config = dvs_gesture.DvsGestureConfig()
    assert (config.recipe, config.timesteps, config.sigma, config.firing) == (
        "dvs_gesture/sevenb/stbp/noisy", 16, 0.3, "reference")
    assert config.recipe_sources["timesteps"].startswith("paper Table 1")
    for name in ("lr", "batch_size", "epochs"):
        assert config.recipe_sources[name].startswith("not published: our choice")


def test_config_json_records_the_recipe_and_a_run_is_rebuilt_from_it(tmp_path):
    config = cli.parse_config(cifar.CifarConfig, "", ["--lr", "0.01", "--workdir", str(tmp_path)])
    rundir.write_config(str(tmp_path), rundir.config_record(config, "train.cifar", str(tmp_path)))
    saved = json.load(open(os.path.join(tmp_path, "config.json")))
    assert saved["recipe"] == "cifar10/cifarnet/stbp/noisy"
    assert saved["recipe_sources"]["lr"] == "given" and saved["lr"] == 0.01
    assert saved["recipe_sources"]["batch_size"] == "Table 4 (T = 2)" and saved["batch_size"] == 256
    _, rebuilt = restore.config_of_run(str(tmp_path))
    for name in ("lr", "batch_size", "epochs", "firing", "loss", "norm", "schedule_unit", "recipe", "recipe_sources"):
        assert getattr(rebuilt, name) == getattr(config, name), name


def test_library_and_other_commands_keep_their_defaults():
    """The authors' neuron is the paper commands' default; the library and train.fmnist keep eq. (2), per step."""
    assert neuron_lib.LIFParams().firing == "membrane"
    config = fmnist.FmnistConfig()
    assert (config.firing, config.schedule_unit, config.surrogate) == ("membrane", "step", "match")


def test_dsnn_surrogate_is_erf_with_alpha_one_in_closed_form():
    """--neuron lif: SG(x) = exp(-x^2) / sqrt(pi); --surrogate match: the Gaussian twin, alpha = 1/(sigma sqrt 2)."""
    x = np.linspace(-4.0, 4.0, 81, dtype=np.float32)
    config = cifar.CifarConfig(neuron="lif")
    surrogate = config.lif_params().resolved_surrogate()
    np.testing.assert_allclose(surrogate(x), np.exp(-x.astype(np.float64) ** 2) / math.sqrt(math.pi), rtol=1e-6,
                               atol=1e-12)
    twin = cifar.CifarConfig(neuron="lif", surrogate="match").lif_params().resolved_surrogate()
    assert twin.alpha == pytest.approx(1.0 / (0.3 * math.sqrt(2.0)))


@pytest.mark.parametrize("epochs,steps_per_epoch", [(5, 3), (1, 4), (300, 1)])
def test_per_epoch_schedule_is_the_closed_form(epochs, steps_per_epoch):
    """Every step of epoch e uses lr0 (1 + cos(pi e / E)) / 2 (CosineAnnealingLR stepped per epoch)."""
    config = cifar.CifarConfig(epochs=epochs, lr=0.004)
    assert config.schedule_unit == "epoch"
    schedule = steps.make_schedule(config, epochs * steps_per_epoch)
    for step in range(epochs * steps_per_epoch + 1):
        epoch = step // steps_per_epoch
        expected = 0.004 * (1 + math.cos(math.pi * epoch / epochs)) / 2
        assert float(schedule(step)) == pytest.approx(expected, rel=1e-6, abs=1e-9), step  # float32
    per_step = steps.make_schedule(cifar.CifarConfig(epochs=epochs, lr=0.004, schedule_unit="step"),
                                   epochs * steps_per_epoch)
    if steps_per_epoch > 1:
        assert float(per_step(1)) < float(schedule(1)) == pytest.approx(0.004, rel=1e-6)
