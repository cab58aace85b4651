"""The authors' settings per experiment, each value with where it comes from.

One table, :data:`RECIPES`, keyed by ``(dataset, arch, algorithm, neuron)``
(``neuron``: ``"noisy"`` for the NSNN, ``"lif"`` for the DSNN), holds every row
of the paper's Table 4 (learning rate, batch per T, T, TET lambda) and what
Table 4 leaves open (epochs, sigma, schedule, neuron form, surrogate, norm,
loss, data settings). Each value is a :class:`Sourced` naming its source:
``"Table 4"``, ``"run_training.sh"``, a file of the authors' code
(genema/Noisy-Spiking-Neuron-Nets, HEAD 6a3c312), ``"paper Sec. 4.1"``, or
``"not published: our choice"``. Where the code and Table 4 disagree, Table 4
wins and the source text names the other value.

Beside the authors' rows, :data:`RECIPES` holds this project's small-scale
setting, Fashion-MNIST (28x28x1) at reduced width on a CPU (the paper has no
conv Fashion-MNIST run): its values are marked :data:`SMALL_SCALE` and its
recipes ``published=False``.

Table 4 prints "2/4" for T and "a/b" for the batch of the CIFAR rows: T = 2 is
the default and ``--timesteps 4`` picks the T = 4 batch
(:meth:`Recipe.batch_size`).

One data set is not the paper's: ``fashion_mnist_dvs`` (Fashion-MNIST seen by the
emulated event camera, :mod:`nsnn_jax.data.events.fashion_mnist_dvs`) runs the
event path offline on a CPU. Its values are this project's small-scale
setting, each source starting with :data:`SMALL_SCALE` (they sit beside the
authors' DVS-CIFAR values they differ from: T 4 instead of 10, frames of
34 x 34 event counts instead of 48 x 48 max-normalised bilinear ones, 10
epochs instead of 210, lr 0.001 for VGGSNN instead of 0.0003).

A combination Table 4 has no row for (e.g. ResNet-19 on CIFAR) gets a recipe
from :func:`get_recipe` too: the same shared values, and the learning rate,
batch and T of the nearest published row of the same data set, architecture
and neuron (else the command's own choice), marked "not published: our choice".

:func:`resolve` fills the settings left unset with a recipe's values; a value
given explicitly wins. The paper commands record the recipe's name and the
source of every resolved value in ``config.json``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, NamedTuple, Optional

__all__ = ["Sourced", "Recipe", "RECIPES", "ALGORITHMS", "NEURONS", "DATASETS", "GIVEN", "SMALL_SCALE",
           "get_recipe", "resolve", "recipe_name"]

ALGORITHMS = ("stbp", "tdbn", "tet")
NEURONS = ("noisy", "lif")
DATASETS = ("cifar10", "cifar100", "cifar10_dvs", "dvs_gesture", "fashion_mnist", "fashion_mnist_dvs")
GIVEN = "given"  # the source recorded for a value given explicitly that differs from the recipe's
# How every value of the small-scale settings (conv Fashion-MNIST, emulated event data; not the paper's)
# names its source.
SMALL_SCALE = "small-scale setting of this project, not the paper's"


class Sourced(NamedTuple):
    """A setting's value and where it comes from."""

    value: Any
    source: str


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The settings of one experiment.

    Attributes:
      name: ``"dataset/arch/algorithm/neuron"``.
      values: config field name -> :class:`Sourced` (``timesteps`` is the default T).
      batch_by_timesteps: T -> :class:`Sourced` batch size (Table 4's "a/b").
      published: whether Table 4 has this row.
    """

    name: str
    values: Mapping[str, Sourced]
    batch_by_timesteps: Mapping[int, Sourced]
    published: bool = True

    def batch_size(self, timesteps: int) -> Sourced:
        """The batch of ``timesteps``; for a T the table does not list, the default T's batch, so marked."""
        if timesteps in self.batch_by_timesteps:
            return self.batch_by_timesteps[timesteps]
        default = self.batch_by_timesteps[self.values["timesteps"].value]
        listed = "/".join(str(t) for t in sorted(self.batch_by_timesteps))
        return Sourced(default.value, f"not published: our choice (the T = {self.values['timesteps'].value} "
                                      f"batch; the recipe lists T = {listed})")


def recipe_name(dataset: str, arch: str, algorithm: str, neuron: str) -> str:
    return f"{dataset}/{arch}/{algorithm}/{neuron}"


# -- what every row of a data set shares ---------------------------------------------------

EPOCHS_SMALL = 10  # the epochs of the small-scale rows

_SHARED = {
    "schedule_unit": Sourced("epoch", "main_cifar10.py L188-191, L366-370: CosineAnnealingLR(T_max=epochs), "
                                      "stepped once per epoch"),
    "weight_decay": Sourced(0.0, "main_cifar10.py L49 (Adam, weight_decay 0; run_training.sh sets none)"),
    "firing": Sourced("reference", "models/NILIF.py: noise written into the state, then a Bernoulli draw on "
                                   "the CDF of the noisy potential; noise also at evaluation"),
    "surrogate": Sourced("erf", "paper Sec. 4 and models/LIF.py: ERF surrogate 1/sqrt(pi) exp(-x^2) "
                                "(used by --neuron lif only)"),
    "surrogate_alpha": Sourced(1.0, "main_cifar10.py L46: --alpha 1.0"),
    "width": Sourced(1.0, "paper Table 5 (7B-Net: Fang et al. 2021): the published channel counts"),
}

_CIFAR_SHARED = {
    "sigma": Sourced(0.3, "paper Sec. 4.1 (0.3 for CIFAR-10/100); run_training.sh L15"),
    "autoaugment": Sourced(True, "dataset_utils.py L64-72: crop, flip, AutoAugment(CIFAR10), paper A.2.1"),
    "tet_lambda": Sourced(0.05, "Table 4 (TET rows of CIFAR-10/100)"),
}

_SHARED_BY_DATASET = {
    "cifar10": {
        **_CIFAR_SHARED,
        "epochs": Sourced(300, "run_training.sh L15 (Table 4 gives no epochs)"),
        "normalization": Sourced("authors", "dataset_utils.py L64-72: mean (0.4914, 0.4822, 0.4465), "
                                            "std (0.2023, 0.1994, 0.2010)"),
    },
    "cifar100": {
        **_CIFAR_SHARED,
        "epochs": Sourced(300, "not published: our choice (run_training.sh L15's CIFAR-10 value; the code has "
                               "no CIFAR-100)"),
        "normalization": Sourced("authors", "not published: our choice (the code has no CIFAR-100; the paper "
                                            "says z-score)"),
    },
    "cifar10_dvs": {
        "epochs": Sourced(210, "run_training.sh L16"),
        "sigma": Sourced(0.2, "paper Sec. 4.1 (0.2 for DVS-CIFAR); run_training.sh L16"),
        "timesteps": Sourced(10, "Table 4 (T = 10); main_dvs-cifar10.py L190 sets net.T = 10"),
        "tet_lambda": Sourced(0.001, "Table 4 (TET rows of DVS-CIFAR)"),
        "size": Sourced(48, "paper A.2.1; step3-dvscifar_process_2.py L12-18: Resize([48, 48])"),
        "frame_norm": Sourced("max", "step2-dvscifar_process_1.py L84-85: each frame divided by its max"),
        "resize": Sourced("bilinear", "step3-dvscifar_process_2.py L12-18: PIL Resize, bilinear"),
        "dvs_split": Sourced("9k1k", "paper A.2.1: 9k train / 1k test (step2-dvscifar_process_1.py L98-101 "
                                     "splits 70/30 per class: --dvs-split 70-30)"),
    },
    # Not the paper's: Fashion-MNIST through the emulated event camera, sized for a CPU. Beside each value,
    # the authors' DVS-CIFAR choice it stands in for.
    "fashion_mnist_dvs": {
        "epochs": Sourced(10, f"{SMALL_SCALE} (DVS-CIFAR: 210, run_training.sh L16)"),
        "sigma": Sourced(0.2, f"{SMALL_SCALE} (DVS-CIFAR's 0.2, paper Sec. 4.1)"),
        "timesteps": Sourced(4, f"{SMALL_SCALE} (DVS-CIFAR: T = 10, Table 4)"),
        "tet_lambda": Sourced(0.001, f"{SMALL_SCALE} (DVS-CIFAR's 0.001, Table 4)"),
        "size": Sourced(34, f"{SMALL_SCALE}: N-MNIST's 34 x 34 sensor, the 28 x 28 image centred (DVS-CIFAR: 48, "
                            "paper A.2.1)"),
        "frame_norm": Sourced("none", f"{SMALL_SCALE}: event counts (DVS-CIFAR: each frame divided by its max, "
                                      "step2-dvscifar_process_1.py L84-85)"),
        "resize": Sourced("bin", f"{SMALL_SCALE}: frames at the sensor size, nothing resized (DVS-CIFAR: "
                                 "bilinear, step3-dvscifar_process_2.py L12-18)"),
        "dvs_split": Sourced("60k10k", f"{SMALL_SCALE}: Fashion-MNIST's published 60k train / 10k test"),
    },
    "dvs_gesture": {
        "epochs": Sourced(200, "not published: our choice (no Table 4 row for DVS-Gesture)"),
        "sigma": Sourced(0.3, "paper Sec. 4.1 (0.3 for DVS-Gesture)"),
        "timesteps": Sourced(16, "paper Table 1 (T = 16)"),
        "tet_lambda": Sourced(0.05, "not published: our choice (no TET run on DVS-Gesture)"),
    },
    "fashion_mnist": {
        "epochs": Sourced(EPOCHS_SMALL, f"{SMALL_SCALE}: minutes per epoch on a CPU at width 0.125"),
        "width": Sourced(0.125, f"{SMALL_SCALE}: 1/8 of the published channels, trainable on a CPU"),
        "sigma": Sourced(0.3, f"{SMALL_SCALE}: the CIFAR value of paper Sec. 4.1"),
        "autoaugment": Sourced(False, f"{SMALL_SCALE}: AutoAugment's CIFAR-10 policy is for colour images; "
                                      "training augmentation is a random crop (2-pixel zero padding) and a "
                                      "horizontal flip"),
        "normalization": Sourced("dataset", f"{SMALL_SCALE}: z-scored with the training set's mean 0.2860 and "
                                            "std 0.3530 (nsnn_jax.data.idx.MEAN_STD)"),
        "tet_lambda": Sourced(0.05, f"{SMALL_SCALE}: the CIFAR value of Table 4"),
    },
}

_NORM_AND_LOSS = {
    "stbp": {
        "norm": Sourced("bn", "models/snn_modules.py: BatchNorm2d over B*T per channel (Seq2ANN)"),
        "loss": Sourced("per-step", "main_cifar10.py L288-291 (since b0edc8f, 2022-11-15): mean over t of "
                                    "CE(O_t, y); rate CE before"),
    },
    "tdbn": {
        "norm": Sourced("bn", "models/snn_modules.py: the authors' 'tdBN' is plain BatchNorm2d over B*T "
                              "(no alpha*V_th scaling in the repo; --norm tdbn is threshold-dependent BN)"),
        "loss": Sourced("per-step", "main_dvs-cifar10.py without --tet: mean over t of CE(O_t, y)"),
    },
    "tet": {
        "norm": Sourced("bn", "models/snn_modules.py: BatchNorm2d over B*T (the authors' TET runs use it too)"),
        "loss": Sourced("tet", "main_cifar10.py with --tet: TET loss (Deng et al. 2022)"),
    },
}

# -- Table 4 -----------------------------------------------------------------------------

# (dataset, arch, algorithm, neuron, lr, {T: batch}, note on the lr): Table 4 as printed
# ("ResNet-18" there is Tables 1 and 5's ResNet-18*).
_TABLE4 = [
    ("cifar10", "resnet18", "stbp", "lif", 0.01, {2: 256, 4: 256}, ""),
    ("cifar10", "resnet18", "tet", "lif", 0.01, {2: 256, 4: 256}, ""),
    ("cifar10", "cifarnet", "stbp", "lif", 0.004, {2: 256, 4: 256}, ""),
    ("cifar100", "resnet18", "stbp", "lif", 0.005, {2: 256, 4: 256}, ""),
    ("cifar100", "resnet18", "tet", "lif", 0.005, {2: 256, 4: 256}, ""),
    ("cifar100", "cifarnet", "stbp", "lif", 0.001, {2: 256, 4: 256}, ""),
    ("cifar10_dvs", "resnet19", "stbp", "lif", 0.0005, {10: 32}, ""),
    ("cifar10_dvs", "vggsnn", "tet", "lif", 0.0002, {10: 64}, ""),
    ("cifar10_dvs", "vggsnn", "tdbn", "lif", 0.0002, {10: 64}, ""),
    ("cifar10", "resnet18", "stbp", "noisy", 0.002, {2: 256, 4: 256},
     "; run_training.sh L15 trains this row at lr 0.003"),
    ("cifar10", "resnet18", "tet", "noisy", 0.002, {2: 256, 4: 256}, ""),
    ("cifar10", "cifarnet", "stbp", "noisy", 0.003, {2: 256, 4: 128}, ""),
    ("cifar100", "resnet18", "stbp", "noisy", 0.001, {2: 256, 4: 256}, ""),
    ("cifar100", "resnet18", "tet", "noisy", 0.001, {2: 256, 4: 256}, ""),
    ("cifar100", "cifarnet", "stbp", "noisy", 0.002, {2: 256, 4: 256}, ""),
    ("cifar10_dvs", "resnet19", "stbp", "noisy", 0.0005, {10: 20}, ""),
    ("cifar10_dvs", "vggsnn", "tet", "noisy", 0.0003, {10: 32}, ""),
    ("cifar10_dvs", "vggsnn", "tdbn", "noisy", 0.0003, {10: 32},
     "; run_training.sh L16 trains this row (lr 0.0003, batch 32, per-step CE)"),
]

# Learning rate, batch and T of the combinations with no published row and no published neighbour.
_OUR_CHOICE = {
    ("cifar", "resnet19"): (Sourced(0.003, "not published: our choice (run_training.sh at f1d13b0, Sep 2022, "
                                           "trained sresnet19 on CIFAR-10 at lr 0.003, batch 256, T 2)"), 256, 2),
    ("cifar", "vggsnn"): (Sourced(0.001, "not published: our choice (VGGSNN is DVS-only in the authors' code)"),
                          64, 4),
    ("cifar", "cifarnet"): (Sourced(0.003, "not published: our choice"), 256, 2),
    ("cifar", "resnet18"): (Sourced(0.002, "not published: our choice"), 256, 2),
    ("dvs", "vggsnn"): (Sourced(0.0003, "not published: our choice"), 32, 10),
    ("dvs", "resnet19"): (Sourced(0.0005, "not published: our choice"), 20, 10),
    ("dvs", "sevenb"): (Sourced(0.001, "not published: our choice (no Table 4 row for DVS-Gesture)"), 16, 16),
    ("small", "resnet18"): (Sourced(0.002, f"{SMALL_SCALE}: the NSNN CIFAR-10 ResNet-18* value of Table 4"),
                            128, 2),
    ("small", "resnet19"): (Sourced(0.003, f"{SMALL_SCALE}: run_training.sh's CIFAR-10 ResNet-19 value"), 128, 2),
    ("small", "vggsnn"): (Sourced(0.001, SMALL_SCALE), 128, 2),
}


# Learning rate and batch of the small-scale event setting, per (dataset, arch), for every algorithm and neuron.
_SMALL_SCALE_EVENT_ROWS = {
    ("fashion_mnist_dvs", "vggsnn"): (Sourced(0.001, f"{SMALL_SCALE}: Adam's usual 0.001 for short runs at reduced "
                                                     "--width, not tuned (DVS-CIFAR: 0.0003, Table 4)"),
                                      Sourced(32, f"{SMALL_SCALE} (DVS-CIFAR's 32, Table 4)")),
    ("fashion_mnist_dvs", "sevenb"): (Sourced(0.001, f"{SMALL_SCALE}: Adam's usual 0.001, not tuned (the paper "
                                                     "publishes no 7B-Net learning rate)"),
                                      Sourced(32, f"{SMALL_SCALE} (the paper publishes no 7B-Net batch)")),
}


# The authors' CIFARNet has no normalisation layer at all, whatever the algorithm.
_CIFARNET_NORM = Sourced("none", "models/snn.py CIFARNet: BasicConvLayer(norm_layer=False) since 8112be7 "
                                 "(2022-09-20); --norm bn gives their earlier form with BN")


def _shared(dataset: str, arch: str, algorithm: str) -> dict[str, Sourced]:
    values = {**_SHARED, **_SHARED_BY_DATASET[dataset], **_NORM_AND_LOSS[algorithm]}
    if arch == "cifarnet":
        values["norm"] = _CIFARNET_NORM
    return values


def _table4_recipe(dataset, arch, algorithm, neuron, lr, batches, note) -> Recipe:
    values = _shared(dataset, arch, algorithm)
    values["lr"] = Sourced(lr, "Table 4" + note)
    if len(batches) > 1:
        listed = "/".join(str(t) for t in sorted(batches))
        values["timesteps"] = Sourced(min(batches), f"Table 4 (T = {listed}; T = {min(batches)} by default)")
        batch_by_t = {t: Sourced(b, f"Table 4 (T = {t})") for t, b in batches.items()}
    else:
        batch_by_t = {t: Sourced(b, "Table 4") for t, b in batches.items()}
    if algorithm == "tet":
        values["tet_lambda"] = Sourced(values["tet_lambda"].value, "Table 4")
    if neuron == "lif":
        values["sigma"] = Sourced(values["sigma"].value, values["sigma"].source + " (the DSNN has no noise; used by --surrogate match only)")
    return Recipe(recipe_name(dataset, arch, algorithm, neuron), values, batch_by_t)


# -- this project's small-scale setting (not in the paper) ----------------------------------

# (dataset, arch, algorithm, neuron, lr, {T: batch}): the conv classifier of the small-scale runs, NSNN and
# DSNN at the learning rates of their CIFAR-10 CIFARNet rows of Table 4, a batch of 128 and T = 2.
_SMALL_SCALE_ROWS = [
    ("fashion_mnist", "cifarnet", "stbp", "noisy", 0.003, {2: 128}),
    ("fashion_mnist", "cifarnet", "stbp", "lif", 0.004, {2: 128}),
]


def _small_scale_recipe(dataset, arch, algorithm, neuron, lr, batches) -> Recipe:
    values = _shared(dataset, arch, algorithm)
    values["lr"] = Sourced(lr, f"{SMALL_SCALE}: the value of Table 4's CIFAR-10 {arch} {neuron} row")
    values["timesteps"] = Sourced(min(batches), f"{SMALL_SCALE}: T = 2 as Table 4's CIFAR rows by default")
    batch_by_t = {t: Sourced(b, SMALL_SCALE) for t, b in batches.items()}
    if neuron == "lif":
        values["sigma"] = Sourced(values["sigma"].value,
                                  values["sigma"].source + " (the DSNN has no noise; used by --surrogate match only)")
    return Recipe(recipe_name(dataset, arch, algorithm, neuron), values, batch_by_t, published=False)


RECIPES: dict[tuple[str, str, str, str], Recipe] = {
    **{row[:4]: _table4_recipe(*row) for row in _TABLE4},
    **{row[:4]: _small_scale_recipe(*row) for row in _SMALL_SCALE_ROWS},
}


def get_recipe(dataset: str, arch: str, algorithm: str, neuron: str) -> Recipe:
    """The recipe of ``(dataset, arch, algorithm, neuron)``.

    Table 4's row when it has one; otherwise the shared values of ``dataset``
    and ``algorithm`` with the learning rate, batch and T of the first
    published row of the same data set, architecture and neuron (``stbp``,
    ``tdbn``, ``tet`` in that order), else the small-scale setting's learning
    rate and batch (marked :data:`SMALL_SCALE`), else the command's own
    choice; all three marked "not published: our choice".

    Raises:
      ValueError: an unknown data set, algorithm or neuron, or an architecture
        with neither a row nor a choice for ``dataset``.
    """
    for name, value, known in (("dataset", dataset, DATASETS), ("algorithm", algorithm, ALGORITHMS),
                               ("neuron", neuron, NEURONS)):
        if value not in known:
            raise ValueError(f"No recipe for {name} {value!r}: expected one of {known}.")
    key = (dataset, arch, algorithm, neuron)
    if key in RECIPES:
        return RECIPES[key]
    name = recipe_name(*key)
    values = _shared(dataset, arch, algorithm)
    for other in ALGORITHMS:
        nearest = RECIPES.get((dataset, arch, other, neuron))
        if nearest is not None:
            note = f"not published: our choice (Table 4 has no {name}; the value of its row {nearest.name})"
            values["lr"] = Sourced(nearest.values["lr"].value, note)
            values["timesteps"] = Sourced(nearest.values["timesteps"].value, note)
            batch_by_t = {t: Sourced(b.value, note) for t, b in nearest.batch_by_timesteps.items()}
            return Recipe(name, values, batch_by_t, published=False)
    if (dataset, arch) in _SMALL_SCALE_EVENT_ROWS:
        lr, batch = _SMALL_SCALE_EVENT_ROWS[(dataset, arch)]
        values["lr"] = lr
        return Recipe(name, values, {values["timesteps"].value: batch}, published=False)
    group = {"cifar10": "cifar", "cifar100": "cifar", "fashion_mnist": "small"}.get(dataset, "dvs")
    if (group, arch) not in _OUR_CHOICE:
        raise ValueError(f"No recipe for architecture {arch!r} on {dataset}: expected one of "
                         f"{sorted({k[1] for k in RECIPES if k[0] == dataset} | {a for g, a in _OUR_CHOICE if g == group})}.")
    lr, batch, timesteps = _OUR_CHOICE[(group, arch)]
    chosen = SMALL_SCALE if group == "small" else "not published: our choice"
    values["lr"] = lr
    if "timesteps" not in values:  # DVS data sets fix T
        values["timesteps"] = Sourced(timesteps, chosen)
    batch_by_t = {values["timesteps"].value: Sourced(batch, chosen)}
    return Recipe(name, values, batch_by_t, published=False)


def resolve(recipe: Recipe, given: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The settings of ``recipe`` with the values in ``given`` winning.

    Args:
      recipe: the recipe.
      given: setting -> value for the settings the caller has, ``None`` where
        unset; settings the recipe does not know pass through.

    Returns:
      ``(values, sources)``: every setting of ``given`` resolved (those the
      recipe knows and ``given`` leaves ``None`` take the recipe's value; the
      batch follows the resolved T), and the source of each value the recipe
      knows: the recipe's source where it was used or given equal, else
      :data:`GIVEN`.
    """
    values, sources = dict(given), {}

    def take(name: str, sourced: Optional[Sourced]) -> None:
        if name not in values or sourced is None:
            return
        if values[name] is None:
            values[name] = sourced.value
            sources[name] = sourced.source
        else:
            sources[name] = sourced.source if values[name] == sourced.value else GIVEN

    for name, sourced in recipe.values.items():
        take(name, sourced)
    if values.get("timesteps") is not None:
        take("batch_size", recipe.batch_size(int(values["timesteps"])))
    return values, sources
