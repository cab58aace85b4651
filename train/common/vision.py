"""What the convolutional classification commands share (CIFAR, Fashion-MNIST, DVS-CIFAR10, DVS Gesture).

The settings left unset come from the recipe of ``(dataset, --arch,
--algorithm, --neuron)`` (:mod:`train.common.recipes`): the paper's Table 4
and the authors' code, each value with its source; a flag given wins.
``--algorithm`` is a preset of ``--norm`` and ``--loss`` and picks the recipe
row: ``stbp`` and ``tdbn`` are both BN over T*B with the per-step
cross-entropy (the authors' "tdBN" is plain BN; ``--norm tdbn`` gives the
threshold-dependent BN), ``tet`` is BN with the TET loss. ``--train-limit N``
and ``--test-limit N`` keep the first N samples of a split (:func:`limit_data`),
for tests and small-scale runs.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from typing import ClassVar, Optional

from nsnn_jax import losses, models
from nsnn_jax import neuron as neuron_lib
from nsnn_jax import surrogate as surrogate_lib
from nsnn_jax.data import Dataset
from nsnn_jax.models.blocks import NORMS
from train.common import recipes
from train.common.config import NEURONS, SCHEDULE_UNITS, TrainConfig, flag, option, recorded

ALGORITHMS = recipes.ALGORITHMS
LOSSES = ("per-step", "rate", "tet")
TABLE5_SUFFIX = "_table5"


def architectures(*paper_names: str) -> tuple[str, ...]:
    """``paper_names`` and, where registered, their Table 5 readings (``NAME_table5``)."""
    readings = tuple(name + TABLE5_SUFFIX for name in paper_names if name + TABLE5_SUFFIX in models.MODELS)
    return paper_names + readings


@dataclasses.dataclass
class VisionConfig(TrainConfig):
    """Settings of the conv-SNN commands.

    Subclasses add an ``arch`` field and set ``ARCHS`` (its choices), and
    either a ``dataset`` field or ``DATASET`` (the recipe's data set). Fields
    left ``None`` take the recipe's value at construction; :meth:`validate`
    only checks.
    """

    ARCHS: ClassVar[tuple[str, ...]] = ()
    DATASET: ClassVar[str] = ""

    algorithm: str = option("stbp", "recipe row and preset of --norm/--loss: stbp and tdbn: BN over T*B + "
                                    "per-step CE (the authors' tdBN is plain BN); tet: BN + TET loss", ALGORITHMS)
    norm: Optional[str] = option(None, "bn: BN over T*B (the authors'); tdbn: threshold-dependent BN "
                                       "(default: --algorithm's)", NORMS)
    loss: Optional[str] = option(None, "per-step: mean_t CE(O_t, y) (the authors'); rate: CE of the mean "
                                       "logits; tet: TET (default: --algorithm's)", LOSSES)
    tet_lambda: Optional[float] = option(None, "weight of TET's MSE term (--loss tet; default: the recipe)")
    tet_phi: float = option(1.0, "target of TET's MSE term (--loss tet)")
    width: Optional[float] = option(None, "channel multiplier of the architecture (1: as published; "
                                          "default: the recipe)")
    remat: bool = option(False, "recompute each block in the backward pass (memory for time)")
    train_limit: int = option(0, "train on the first N training samples only (0: all); tests and "
                                 "small-scale runs")
    test_limit: int = option(0, "evaluate on the first N test samples only (0: all); recorded, so restoring "
                                "and the analyses use the same samples")
    eval_only: bool = option(False, "only evaluate the checkpoint in --workdir (stochastic and deterministic)")
    checkpoint: str = option("final", "with --eval-only: the final checkpoint, or the best epoch's "
                                      "(selected on the test set)", ("final", "best"))
    epochs: Optional[int] = option(None, "training epochs (default: the recipe)")
    batch_size: Optional[int] = option(None, "global batch size, split over devices (default: the recipe's, "
                                             "for --timesteps)")
    lr: Optional[float] = option(None, "peak Adam learning rate, cosine decay to 0 (default: the recipe)")
    schedule_unit: Optional[str] = option(None, "cosine decay per epoch (the authors') or per step "
                                                "(default: the recipe)", SCHEDULE_UNITS)
    weight_decay: Optional[float] = option(None, "decoupled weight decay (AdamW) when > 0 (default: the recipe)")
    timesteps: Optional[int] = option(None, "simulation steps T (default: the recipe)")
    sigma: Optional[float] = option(None, "noise scale (Gaussian sigma; default: the recipe)")
    firing: Optional[str] = option(None, "reference: the authors' neuron (models/NILIF.py); membrane: eq. (2) "
                                         "(default: the recipe)", neuron_lib.FIRING_MODES)
    surrogate: Optional[str] = option(None, "surrogate of --neuron lif: a form, or 'match' (the twin of --noise "
                                            "at --sigma) (default: the recipe)",
                                      ("match",) + surrogate_lib.SURROGATES)
    surrogate_alpha: Optional[float] = option(None, "sharpness of an explicit --surrogate (default: the recipe)")
    recipe: str = recorded("the recipe the unset settings came from (dataset/arch/algorithm/neuron)", str)
    recipe_sources: dict = recorded("setting -> source of its value ('given': a flag that differs from the recipe)")

    def recipe_dataset(self) -> str:
        return getattr(self, "dataset", None) or self.DATASET

    def recipe_arch(self) -> str:
        """The architecture of the recipe row: a Table 5 reading (``NAME_table5``) trains as ``NAME``."""
        return self.arch.removesuffix(TABLE5_SUFFIX)

    def __post_init__(self) -> None:
        self.check_choice("arch", self.ARCHS)
        self.check_choice("algorithm", ALGORITHMS)
        self.check_choice("neuron", NEURONS)
        recipe = recipes.get_recipe(self.recipe_dataset(), self.recipe_arch(), self.algorithm, self.neuron)
        names = {field.name for field in dataclasses.fields(self)}
        given = {name: getattr(self, name) for name in (*recipe.values, "batch_size") if name in names}
        values, sources = recipes.resolve(recipe, given)
        for name, value in values.items():
            setattr(self, name, value)
        if not self.recipe:  # a rebuilt run keeps what it recorded
            self.recipe, self.recipe_sources = recipe.name, sources

    def validate(self) -> None:
        unset = [flag(field.name) for field in dataclasses.fields(self) if getattr(self, field.name) is None
                 and field.type.startswith("Optional") and field.name not in ("workdir", "data_dir", "cache_dir")]
        if unset:
            raise ValueError(f"{', '.join(unset)} unset: the recipe {self.recipe!r} has no value; give the flag.")
        self.check_choice("arch", self.ARCHS)
        self.check_choice("algorithm", ALGORITHMS)
        self.check_choice("norm", NORMS)
        self.check_choice("loss", LOSSES)
        super().validate()
        if not 0.0 <= self.tet_lambda <= 1.0:
            raise ValueError(f"{flag('tet_lambda')}={self.tet_lambda!r} is invalid: expected a weight in [0, 1].")
        if not self.width > 0:
            raise ValueError(f"{flag('width')}={self.width!r} is invalid: expected > 0.")
        for name in ("train_limit", "test_limit"):
            if getattr(self, name) < 0:
                raise ValueError(f"{flag(name)}={getattr(self, name)!r} is invalid: expected an integer >= 0 "
                                 "(0: all samples).")


def limit_data(config: VisionConfig, data: Dataset) -> Dataset:
    """``data`` cut to its first ``--train-limit`` training and ``--test-limit`` test samples (0: all).

    Raises:
      ValueError: a limit larger than the split it cuts.
    """
    cuts = {}
    for split, limit in (("train", config.train_limit), ("test", config.test_limit)):
        if not limit:
            continue
        available = len(getattr(data, f"{split}_y"))
        if limit > available:
            raise ValueError(f"{flag(split + '_limit')}={limit} exceeds the {available} {split} samples of the data.")
        cuts[f"{split}_x"] = getattr(data, f"{split}_x")[:limit]
        cuts[f"{split}_y"] = getattr(data, f"{split}_y")[:limit]
        print(f"{flag(split + '_limit')} {limit}: the first {limit} of the {available} {split} samples",
              file=sys.stderr)
    return data._replace(**cuts) if cuts else data


def make_loss(config: VisionConfig):
    """The per-example loss ``--loss`` names: per-step CE, rate-coded CE or TET (``--tet-lambda``, ``--tet-phi``)."""
    if config.loss == "tet":
        return functools.partial(losses.tet_loss, lam=config.tet_lambda, phi=config.tet_phi)
    if config.loss == "rate":
        return losses.rate_cross_entropy
    return losses.per_step_cross_entropy


def build_model(config: VisionConfig, classes: int, **model_options):
    """The ``config.arch`` network with the neuron, norm, width, remat and dtype the flags give.

    ``model_options`` (e.g. ``sequence_input``, or what the start-up chose)
    go to the constructor as they are.
    """
    return models.get_model(
        config.arch, outputs=classes, timesteps=config.timesteps, neuron=config.lif_params(),
        norm=config.norm, width=config.width, remat=config.remat,
        dtype=config.compute_dtype(), **model_options)
