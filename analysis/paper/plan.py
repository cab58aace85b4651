"""What a reproduction trains and analyses, per scale: named runs, analyses and their settings.

A :class:`Step` is one command, ``python -m MODULE ARGS``; its ``name`` is
the folder (runs, under ``OUT/runs``) or the key (analyses) by which a rerun
recognises it. :func:`build` turns a :class:`Settings` into the ordered steps
and the roles the report reads them by (e.g. the NSNN classifier at sigma 0.3,
seed 1).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

from train.common import registry

SCALES = ("small", "paper")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Sizes of one reproduction (the small scale, its ``--quick`` form, or the test-sized ``--tiny``)."""

    name: str
    seeds: int
    mlp_sigmas: tuple[float, ...]
    mlp_epochs: int
    classifier_sigmas: tuple[float, ...]   # Fig. 4 family
    conv_epochs: int
    conv_width: float
    sine_epochs: int
    sine_windows: tuple[int, int]          # train, test windows
    dvs_epochs: int
    dvs_width: float
    train_images: Optional[int]            # Fashion-MNIST training images (None: all)
    test_images: Optional[int]
    fano_samples: int
    fano_trials: int
    jpsth_trials: int
    robust_images: int
    robust_repeats: int                    # noise/flip/drop repetitions per trained model
    eot_samples: int
    do_steps: int
    fgsm_gammas: tuple[float, ...]
    do_gammas: tuple[float, ...]
    flip_betas: tuple[float, ...]
    eventdrop_rhos: tuple[float, ...]
    mlp_hidden: int = 64
    classifier_sigma: float = 0.3          # the NSNN of Figs. 3, 5, 6 (the paper's CIFAR sigma)
    sine_timesteps: int = 48
    sine_batch: int = 64
    jpsth_neurons: int = 16
    dvs_batch: int = 32
    conv_images: int = 0                   # conv and event nets: train on the first N images (0: all given)
    conv_test_images: int = 0              # ... and test on the first N (0: all given)
    dvs_images: int = 0                    # event nets: train on the first N images (0: as conv_images)
    dvs_test_images: int = 0               # ... and test on the first N (0: as conv_test_images)
    classifier: str = "conv"               # the classifier of Figs. 3-7: the conv net, or the MLP of Fig. 2B
    event_flip_betas: tuple[float, ...] = (0.0, 0.01, 0.02, 0.03, 0.04)  # Table 7 on the event net
    event_flip_images: int = 0             # test images of Table 7 (0: robust_images)
    conv_arch: str = "cifarnet"
    conv_timesteps: int = 2
    batch_size: int = 128


SMALL = Settings(
    name="small", seeds=3, mlp_sigmas=(0.05, 0.2, 0.5, 1.5), mlp_epochs=4,
    classifier_sigmas=(0.1, 0.3, 0.5, 1.0), conv_epochs=5, conv_width=0.125, conv_images=10000,
    conv_test_images=1000, dvs_images=2000, dvs_test_images=500, sine_epochs=40, sine_windows=(4096, 512),
    dvs_epochs=4, dvs_width=0.125,
    train_images=20000, test_images=2000, fano_samples=200, fano_trials=40, jpsth_trials=500,
    robust_images=200, robust_repeats=1, eot_samples=2, do_steps=5,
    fgsm_gammas=(0.0, 0.02, 0.05, 0.1), do_gammas=(0.0, 1.0),
    flip_betas=(0.0, 0.01, 0.02, 0.03, 0.04), eventdrop_rhos=(0.05, 0.25, 0.45, 0.65),
    event_flip_betas=(0.0, 0.02, 0.04), event_flip_images=100)

QUICK = dataclasses.replace(
    SMALL, name="small --quick", seeds=1, mlp_sigmas=(0.05, 0.3, 1.5), mlp_epochs=3,
    classifier_sigmas=(0.05, 0.3, 1.5), classifier="mlp", conv_epochs=1, conv_images=1000,
    conv_test_images=500, dvs_images=1000, dvs_test_images=500, sine_epochs=10, sine_windows=(2048, 256),
    dvs_epochs=1,
    train_images=6000, test_images=1000, fano_samples=200, fano_trials=30, jpsth_trials=200,
    robust_images=200, eot_samples=2, do_steps=5, fgsm_gammas=(0.0, 0.05, 0.1), do_gammas=(0.0, 1.0),
    event_flip_betas=(0.0, 0.02, 0.04), event_flip_images=100)

TINY = dataclasses.replace(
    QUICK, name="small --quick --tiny", mlp_sigmas=(0.2, 0.8), mlp_epochs=2, mlp_hidden=16,
    classifier_sigmas=(0.2,), classifier_sigma=0.2, classifier="conv", conv_test_images=0, conv_width=0.0625,
    sine_epochs=1, sine_windows=(32, 8),
    sine_timesteps=8, sine_batch=16, jpsth_neurons=4, dvs_width=0.0625, dvs_batch=16, conv_images=0,
    dvs_images=0, dvs_test_images=0,
    train_images=None, test_images=None, fano_samples=8, fano_trials=4, jpsth_trials=8, robust_images=16,
    do_steps=2, fgsm_gammas=(0.0, 0.1), do_gammas=(0.0, 1.0), flip_betas=(0.0, 0.02), event_flip_betas=(0.0, 0.02),
    eventdrop_rhos=(0.05, 0.45), batch_size=16)


def settings_for(quick: bool, tiny: bool, seeds: Optional[int]) -> Settings:
    """The small-scale settings: ``--tiny`` (tests), ``--quick`` or full, with ``--seeds`` overriding."""
    base = TINY if tiny else QUICK if quick else SMALL
    return dataclasses.replace(base, seeds=seeds) if seeds else base


@dataclasses.dataclass(frozen=True)
class Step:
    """One command of the plan.

    Attributes:
      kind: ``"train"`` (``--workdir OUT/runs/NAME`` is appended) or ``"analysis"``.
      name: the run folder name, or the analysis key.
      module: ``train.fmnist``, ``analysis.fano``, ...
      args: its flags.
      output: for an analysis, the JSON whose existence marks it done (relative to OUT).
      estimate_s: a first guess of its seconds, for the ETA before any step is measured.
    """

    kind: str
    name: str
    module: str
    args: tuple[str, ...]
    output: str = ""
    estimate_s: float = 30.0


def config_choices(experiment: str, field: str) -> tuple:
    """The choices of ``field`` of an experiment's config (empty when it has no such field)."""
    try:
        config_class = registry.get_experiment(experiment).config_class
    except ValueError:
        return ()
    for f in dataclasses.fields(config_class):
        if f.name == field:
            return tuple(f.metadata.get("choices", ()))
    return ()


def available() -> dict[str, bool]:
    """Which optional commands this checkout has: conv nets on Fashion-MNIST, emulated event data."""
    return {"conv": "fashion_mnist" in config_choices("cifar", "dataset"),
            "dvs": "fashion_mnist_dvs" in config_choices("dvs_cifar", "dataset")}


def _g(value: float) -> str:
    return f"{value:g}"


class Plan:
    """The steps of a small-scale reproduction and the roles the report reads them by.

    Args:
      settings: the sizes.
      out: the output folder.
      data_dir: the Fashion-MNIST folder the runs read (``None``: the default search).
      have: :func:`available`.
    """

    def __init__(self, settings: Settings, out: str, data_dir: Optional[str], have: dict[str, bool]):
        self.settings, self.out, self.data_dir, self.have = settings, out, data_dir, have
        self.steps: list[Step] = []
        self.roles: dict[str, dict] = {}
        self.notes: list[str] = []
        self._build()

    # -- runs ----------------------------------------------------------------------------

    def _add(self, step: Step) -> Step:
        if all(s.name != step.name for s in self.steps):
            self.steps.append(step)
        return step

    def _data_args(self) -> list[str]:
        return ["--data-dir", self.data_dir] if self.data_dir else []

    def mlp(self, neuron: str, sigma: float, seed: int) -> str:
        s = self.settings
        name = f"mlp{s.mlp_hidden}-{neuron}-s{_g(sigma)}-seed{seed}"
        args = ["--hidden", str(s.mlp_hidden), "--epochs", str(s.mlp_epochs), "--batch-size", str(s.batch_size),
                "--neuron", neuron, "--sigma", _g(sigma), "--seed", str(seed), *self._data_args()]
        images = s.train_images or 60000
        self._add(Step("train", name, "train.fmnist", tuple(args), estimate_s=12 + s.mlp_epochs * images / 8000))
        return name

    def conv(self, neuron: str, sigma: float, seed: int) -> str:
        s = self.settings
        limit = f"-n{s.conv_images}" if s.conv_images else ""
        name = f"conv-{s.conv_arch}-w{_g(s.conv_width)}{limit}-{neuron}-s{_g(sigma)}-seed{seed}"
        args = ["--dataset", "fashion_mnist", "--arch", s.conv_arch, "--width", _g(s.conv_width),
                "--epochs", str(s.conv_epochs), "--timesteps", str(s.conv_timesteps),
                "--batch-size", str(s.batch_size), "--neuron", neuron, "--sigma", _g(sigma), "--seed", str(seed),
                "--train-limit", str(s.conv_images), "--test-limit", str(s.conv_test_images), *self._data_args()]
        images = s.conv_images or s.train_images or 60000
        self._add(Step("train", name, "train.cifar", tuple(args), estimate_s=20 + s.conv_epochs * images / 500))
        return name

    def classifier(self, neuron: str, sigma: float, seed: int) -> str:
        """The classifier of Figs. 3-7: the conv net where the checkout has it, else the MLP."""
        if self.have["conv"] and self.settings.classifier == "conv":
            return self.conv(neuron, sigma, seed)
        return self.mlp(neuron, sigma, seed)

    def sine(self, seed: int) -> str:
        s = self.settings
        name = f"sine-32-16-T{s.sine_timesteps}-seed{seed}"
        args = ["--epochs", str(s.sine_epochs), "--train-windows", str(s.sine_windows[0]),
                "--test-windows", str(s.sine_windows[1]), "--timesteps", str(s.sine_timesteps), "--batch-size", str(s.sine_batch),
                "--seed", str(seed)]
        self._add(Step("train", name, "train.sine", tuple(args),
                       estimate_s=12 + s.sine_epochs * s.sine_windows[0] / 3000))
        return name

    def dvs(self, neuron: str, seed: int) -> str:
        s = self.settings
        train_images, test_images = s.dvs_images or s.conv_images, s.dvs_test_images or s.conv_test_images
        limit = f"-n{train_images}" if train_images else ""
        name = f"dvs-fmnist-w{_g(s.dvs_width)}{limit}-{neuron}-seed{seed}"
        args = ["--dataset", "fashion_mnist_dvs", "--width", _g(s.dvs_width), "--epochs", str(s.dvs_epochs),
                "--batch-size", str(s.dvs_batch), "--neuron", neuron, "--seed", str(seed),
                "--train-limit", str(train_images), "--test-limit", str(test_images), *self._data_args(),
                "--cache-dir", os.path.join(self.out, "cache")]
        images = train_images or s.train_images or 60000
        self._add(Step("train", name, "train.dvs_cifar", tuple(args), estimate_s=30 + s.dvs_epochs * images / 300))
        return name

    def run_dir(self, name: str) -> str:
        return os.path.join(self.out, "runs", name)

    # -- analyses ------------------------------------------------------------------------

    def _analysis(self, name: str, module: str, args: list[str], output: str, estimate_s: float) -> str:
        self._add(Step("analysis", name, module, tuple(args), output=output, estimate_s=estimate_s))
        return name

    def fano(self, run: str) -> str:
        s = self.settings
        return self._analysis(f"fano/{run}", "analysis.fano",
                              ["--workdir", self.run_dir(run), "--samples", str(s.fano_samples),
                               "--trials", str(s.fano_trials)],
                              os.path.join("runs", run, "analysis", "fano.json"), 15 + s.fano_samples * s.fano_trials / 2000)

    def jpsth(self, run: str) -> str:
        s = self.settings
        return self._analysis(f"jpsth/{run}", "analysis.jpsth",
                              ["--workdir", self.run_dir(run), "--neurons", str(s.jpsth_neurons),
                               "--trials", str(s.jpsth_trials)],
                              os.path.join("runs", run, "analysis", "jpsth.json"), 15)

    def robustness(self, key: str, attack: str, runs: list[str], strengths, images: int = 0) -> str:
        s = self.settings
        images = images or s.robust_images
        args = [a for run in runs for a in ("--workdir", self.run_dir(run))]
        folder = os.path.join("analysis", key)
        args += ["--attack", attack, "--strengths", ",".join(_g(x) for x in strengths),
                 "--seeds", str(s.robust_repeats), "--samples", str(s.eot_samples), "--limit", str(images),
                 "--do-steps", str(s.do_steps), "--out", os.path.join(self.out, folder)]
        cost = len(runs) * len(strengths) * images / 400 * (s.eot_samples if attack in ("fgsm", "do") else 1)
        if attack == "do":
            cost *= s.do_steps / 4
        return self._analysis(key, "analysis.robustness", args, os.path.join(folder, f"robustness-{attack}.json"),
                              15 + cost)

    # -- the whole plan ------------------------------------------------------------------

    def _build(self) -> None:
        s = self.settings
        seeds = range(s.seeds)
        roles = self.roles
        roles["mlp"] = {neuron: {_g(sigma): [self.mlp(neuron, sigma, k) for k in seeds] for sigma in s.mlp_sigmas}
                        for neuron in ("noisy", "lif")}
        sigmas = s.classifier_sigmas
        roles["classifier_sigmas"] = {_g(sigma): [self.classifier("noisy", sigma, k) for k in seeds]
                                      for sigma in sigmas}
        nsnn = [self.classifier("noisy", s.classifier_sigma, k) for k in seeds]
        dsnn = [self.classifier("lif", s.classifier_sigma, k) for k in seeds]
        conv = self.have["conv"] and s.classifier == "conv"
        roles["classifier"] = {"noisy": nsnn, "lif": dsnn, "kind": f"conv {s.conv_arch} x{_g(s.conv_width)}" if conv
                               else f"MLP {s.mlp_hidden}"}
        if self.have["conv"] and not conv:
            self.notes.append(f"{s.name}: the classifier of Figs. 3-7 is the {s.mlp_hidden}-hidden-unit MLP of Fig. 2B "
                              "(the conv net is trained at --scale small without --quick)")
        elif not self.have["conv"]:
            self.notes.append("train.cifar does not accept --dataset fashion_mnist in this checkout: the classifier "
                              f"of Figs. 3-7 is the {s.mlp_hidden}-hidden-unit MLP")
        sine = [self.sine(k) for k in seeds]
        roles["sine"] = sine
        if self.have["dvs"]:
            roles["dvs"] = {"noisy": [self.dvs("noisy", k) for k in seeds], "lif": [self.dvs("lif", k) for k in seeds]}
        else:
            roles["dvs"] = None
            self.notes.append("train.dvs_cifar does not accept --dataset fashion_mnist_dvs in this checkout: "
                              "Table 2 (EventDrop) is not measured and Table 7 uses the classifier")
        roles["fano_classifier"] = [self.fano(run) for run in nsnn]
        roles["fano_sine"] = [self.fano(run) for run in sine]
        roles["jpsth_sine"] = [self.jpsth(run) for run in sine]
        roles["jpsth_classifier"] = [self.jpsth(run) for run in nsnn]
        roles["fgsm"] = self.robustness("fig3-fgsm", "fgsm", nsnn + dsnn, s.fgsm_gammas)
        roles["do"] = self.robustness("fig3-do", "do", nsnn + dsnn, s.do_gammas)
        roles["flip_classifier"] = self.robustness("fig6-flip", "flip", nsnn + dsnn, s.flip_betas)
        if roles["dvs"]:
            events = roles["dvs"]["noisy"] + roles["dvs"]["lif"]
            roles["eventdrop"] = self.robustness("table2-eventdrop", "eventdrop", events, s.eventdrop_rhos)
            roles["flip_dvs"] = self.robustness("table7-flip", "flip", events, s.event_flip_betas,
                                                s.event_flip_images)
        else:
            roles["eventdrop"] = roles["flip_dvs"] = None
        # training first, then the analyses (a step's inputs always come before it)
        self.steps.sort(key=lambda step: step.kind != "train")


def build(settings: Settings, out: str, data_dir: Optional[str], have: Optional[dict] = None) -> Plan:
    """The plan of a small-scale reproduction (``have`` defaults to :func:`available`)."""
    return Plan(settings, out, data_dir, available() if have is None else have)
