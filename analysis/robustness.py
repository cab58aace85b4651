"""``python -m analysis.robustness``: accuracy under perturbations, several runs on the same footing.

Evaluates the checkpoints of one or more runs (e.g. an NSNN and its DSNN
baseline) on the same test inputs, the same seeds and the same perturbation
strengths, and writes a table (loss and accuracy, mean +- std over seeds) as
JSON and CSV plus a plot of accuracy against strength (Fig. 3, Tables 2 and 7
of the paper):

* ``--attack fgsm``: ``x + gamma * sign(grad_x loss)``;
* ``--attack do``: L2 direct optimisation, ``||dx|| = gamma`` per example;
* ``--attack flip``: hidden spikes flipped at strength ``beta``;
* ``--attack eventdrop``: events dropped at strength ``rho`` (event inputs).

Runs of the paper's vision experiments (``train.cifar``, ``train.dvs_cifar``,
``train.dvs_gesture``) are attacked as the NSNN authors' test scripts do;
other runs (``train.fmnist``) keep this command's earlier behaviour, which the
README's Fashion-MNIST figures were made with. Each choice has a flag:

============================  ========================  ==================
flag                          vision runs (authors')    other runs
============================  ========================  ==================
``--fgsm-sign``               ``per-step``              ``static``
``--do-start``                ``sphere``                ``zero``
``--flip-mode``               ``exact``                 ``bernoulli``
``--eventdrop-mode``          ``exact``                 ``mixed``
``--attack-loss``             ``rate``                  ``run``
============================  ========================  ==================

- ``per-step``: the gradient of the image repeated over T, one sign per time
  step (the adversarial input is a ``(T, B, ...)`` sequence, fed to the model
  as a sequence); ``static``: one sign for the static image.
- ``sphere``: DO from a uniform point of the L2 sphere, every iterate on it;
  ``zero``: from zero, projected Adam.
- ``exact``: per example and spiking layer exactly ``int(beta n1)`` spikes
  off and ``int(beta n0)`` silences on; ``bernoulli``: each spike flipped with
  probability ``beta``.
- EventDrop ``exact``: per example exactly ``int(rho n)`` of the ``n``
  non-zero frame entries zeroed; the other modes are Gu et al.'s.
- ``rate``: the attacks ascend, and the table reports, the cross-entropy of
  the mean logits whatever loss the run was trained with; ``run``: the run's
  own loss (e.g. TET).

Attacks act on the model's input, after the run's evaluation preprocessing
(pixels in [0, 1] for Fashion-MNIST, z-scores for CIFAR), unclamped. A stochastic model
is attacked twice: with a single-sample gradient and with the gradient
averaged over ``--samples`` noise draws (expectation over transformation),
because a model can look robust only because its gradient is noisy.

``--sigmas 0.1,0.2,...`` trains (or reuses) one run of ``--experiment`` per
noise level under ``--out`` and plots final accuracy against sigma with the
learning curves (Fig. 4); with ``--attack`` the family is also swept.
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import sys
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from analysis import common
from nsnn_jax import losses, perturb
from train.common import cli, command, devices, registry, rundir
from train.common.progress import Progress

ATTACKS = ("fgsm", "do", "flip", "eventdrop")
FGSM_SIGNS = ("per-step", "static")
ATTACK_LOSSES = ("rate", "run")
# The commands whose runs are attacked as the authors' scripts do by default.
VISION_EXPERIMENTS = ("train.cifar", "train.dvs_cifar", "train.dvs_gesture")
# (authors', earlier) default of each setting that --fgsm-sign etc. leave open.
SETTING_DEFAULTS = {
    "fgsm_sign": ("per-step", "static"),
    "do_start": ("sphere", "zero"),
    "flip_mode": ("exact", "bernoulli"),
    "eventdrop_mode": ("exact", "mixed"),
    "attack_loss": ("rate", "run"),
}
# Batch ``index`` of seed ``s`` draws from fold_in(fold_in(key(s), index), SWEEP_STREAM), split into
# the keys of the attack, the scoring (noise and flips), EventDrop and the evaluation preprocessing.
SWEEP_STREAM = 17


def parse_floats(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from error
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--workdir", action="append", default=[], help="run folder (repeat for several runs)")
    p.add_argument("--attack", choices=ATTACKS, default=None, help="perturbation to sweep")
    p.add_argument("--strengths", type=parse_floats, default=[0.0, 0.01, 0.02, 0.05, 0.1],
                   help="gamma (fgsm, do), beta (flip) or rho (eventdrop), comma-separated")
    p.add_argument("--seeds", type=int, default=3, help="repetitions (noise, flips, drops) for mean +- std")
    p.add_argument("--samples", type=int, default=8, help="noise samples K of the averaged-gradient attack")
    p.add_argument("--limit", type=int, default=1000, help="test images used (the first N)")
    p.add_argument("--batch-size", type=int, default=200, help="images per batch")
    p.add_argument("--do-steps", type=int, default=30, help="Adam iterations of the DO attack")
    p.add_argument("--do-lr", type=float, default=0.002, help="Adam learning rate of the DO attack")
    p.add_argument("--fgsm-sign", default=None, choices=FGSM_SIGNS,
                   help="one FGSM sign per time step or one for the static image "
                        "(default: per-step for vision runs, static otherwise)")
    p.add_argument("--do-start", default=None, choices=perturb.DO_STARTS,
                   help="DO start: uniform on the sphere or zero (default: sphere for vision runs, zero otherwise)")
    p.add_argument("--flip-mode", default=None, choices=perturb.FLIP_MODES,
                   help="spike flips: exact counts per example and layer, or i.i.d. Bernoulli "
                        "(default: exact for vision runs, bernoulli otherwise)")
    p.add_argument("--eventdrop-mode", default=None, choices=perturb.EVENT_DROP_MODES,
                   help="EventDrop variant (default: exact for vision runs, mixed otherwise)")
    p.add_argument("--attack-loss", default=None, choices=ATTACK_LOSSES,
                   help="loss the attacks ascend and the table reports: CE of the mean logits (rate) or the "
                        "run's own loss (default: rate for vision runs, run otherwise)")
    p.add_argument("--sigmas", type=parse_floats, default=None, help="train/reuse one run per sigma (Fig. 4)")
    p.add_argument("--experiment", default="fmnist", help="the experiment (train.<experiment>) of --sigmas")
    p.add_argument("--train-args", default="", help="extra flags for --sigmas training, e.g. '--epochs 2'")
    p.add_argument("--out", default=None, help="output folder (default: WORKDIR/analysis of the first run)")
    return p


# ------------------------------------------------------------- evaluation ---


def resolve_settings(task, args) -> dict[str, str]:
    """The attack settings for this run: the flags given, else the authors' for vision runs, else the earlier."""
    authors = task.experiment in VISION_EXPERIMENTS
    return {name: getattr(args, name) or defaults[0 if authors else 1] for name, defaults in SETTING_DEFAULTS.items()}


def attack_loss(task, settings: dict[str, str]):
    return losses.rate_cross_entropy if settings["attack_loss"] == "rate" else task.loss


def sequence_model(task):
    """The run's model taking the static image as a ``(T, B, ...)`` sequence (its own model if it already does)."""
    model = task.model
    if getattr(model, "sequence_input", None) is None or not hasattr(model, "timesteps"):
        raise ValueError(f"--fgsm-sign per-step needs a model with sequence_input and timesteps; "
                         f"{type(model).__name__} has not (use --fgsm-sign static).")
    return model if model.sequence_input else model.clone(sequence_input=True)


def make_scorer(model, loss, variables, flip_mode: str = "bernoulli"):
    """Jitted ``(x, y, weight, key, beta) -> (loss_sum, correct_sum)`` with stochastic inference (spikes flipped at beta).

    ``weight`` (B,) is 1 for the examples counted and 0 for the padding rows
    of a batch (see :func:`padded_batch`).
    """

    def score(x, y, weight, key, beta):
        noise_key, flip_key = jax.random.split(key)
        with perturb.flip_spikes(beta, mode=flip_mode):
            outputs = model.apply(variables, x, train=False, rngs={"noise": noise_key, "flip": flip_key})
        return jnp.sum(weight * loss(outputs, y)), jnp.sum(weight * losses.correct(outputs, y))

    return jax.jit(score, static_argnums=4)


def padded_batch(x: np.ndarray, y: np.ndarray, devices_count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A batch grown to a multiple of ``devices_count`` rows (copies of its last), and the weights ``(B,)`` that count only the real ones.

    One device never pads, so a one-device sweep scores exactly the batches given.
    """
    weight = np.ones(len(x), np.float32)
    pad = -len(x) % devices_count
    if pad:
        x = np.concatenate([x, np.repeat(x[-1:], pad, 0)])
        y = np.concatenate([y, np.repeat(y[-1:], pad, 0)])
        weight = np.concatenate([weight, np.zeros(pad, np.float32)])
    return x, y, weight


def make_batch_keys(mesh):
    """Jitted ``(seed, index) -> (attack, score, drop, preprocess)`` keys of batch ``index``, copies on every device of ``mesh``."""

    def batch_keys(seed, index):
        key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), index), SWEEP_STREAM)
        return tuple(jax.random.split(key, 4))

    return jax.jit(batch_keys, out_shardings=devices.replicated(mesh))


def make_attack(task, variables, attack: str, samples: int, args, settings: dict[str, str]):
    """Jitted ``(x, y, key, strength) -> x_adv`` for the gradient attacks.

    With ``fgsm_sign='per-step'`` on a static-image model the result is the
    ``(T, B, ...)`` sequence, for :func:`sequence_model`.
    """
    loss = attack_loss(task, settings)
    per_step = attack == "fgsm" and settings["fgsm_sign"] == "per-step"
    model = sequence_model(task) if per_step else task.model

    def attack_fn(x, y, key, gamma):
        def loss_fn(inputs, noise_key):
            outputs = model.apply(variables, inputs, train=False, rngs={"noise": noise_key})
            return jnp.mean(loss(outputs, y))

        if attack == "fgsm":
            if model is not task.model:  # a static-image model: differentiate the repeated image
                return perturb.fgsm_per_step(loss_fn, x, gamma, task.model.timesteps, key=key, samples=samples)
            return perturb.fgsm(loss_fn, x, gamma, key=key, samples=samples)
        return perturb.direct_optimisation(loss_fn, x, gamma, key=key, samples=samples,
                                           steps=args.do_steps, lr=args.do_lr, start=settings["do_start"])

    return jax.jit(attack_fn)


def sweep_run(workdir: str, config, task, variables, args) -> list[dict[str, Any]]:
    """Rows ``{run, variant, strength, loss_mean, loss_std, accuracy_mean, accuracy_std}`` for one run."""
    if not task.classification:
        raise ValueError(f"{workdir}: robustness is reported for classifiers (accuracy); this run is a regression.")
    test_x, test_y = task.data.test_x[: args.limit], task.data.test_y[: args.limit]
    settings = resolve_settings(task, args)
    loss = attack_loss(task, settings)
    score = make_scorer(task.model, loss, variables, settings["flip_mode"])
    per_step = (args.attack == "fgsm" and settings["fgsm_sign"] == "per-step"
                and not getattr(task.model, "sequence_input", False))
    # the per-step FGSM returns sequences: scored by the same model taking (T, B, ...) inputs
    score_sequence = make_scorer(sequence_model(task), loss, variables) if per_step else score
    variants = {"clean": 1}
    if args.attack in ("fgsm", "do"):
        variants = {"single": 1}
        if task.noisy and args.samples > 1:
            variants[f"eot{args.samples}"] = args.samples
    attacks = {name: make_attack(task, variables, args.attack, k, args, settings) for name, k in variants.items()
               if args.attack in ("fgsm", "do")}
    batches = range(0, len(test_x), args.batch_size)
    # Every batch is split over all devices of all processes: one process of N devices and N
    # processes of one give the same figures, and every process ends with the same table.
    mesh = devices.data_mesh()
    batch_keys = make_batch_keys(mesh)
    preprocess = jax.jit(lambda x, key: task.preprocess(x, key, False))
    drop = jax.jit(lambda x, key, rho: perturb.event_drop(x, key, rho, mode=settings["eventdrop_mode"]),
                   static_argnums=2)
    rows = []
    progress = Progress(len(variants) * len(args.strengths) * args.seeds * len(batches),
                        f"{os.path.basename(os.path.normpath(workdir))} {args.attack}", args.batch_size)
    unperturbed = None  # strength 0 is the same clean evaluation for every variant: run it once
    for variant in variants:
        for strength in args.strengths:
            if strength == 0 and unperturbed is not None:
                rows.append({**unperturbed, "variant": variant})
                progress.update(args.seeds * len(batches))
                continue
            per_seed = []
            for seed in range(args.seeds):
                totals = np.zeros(2)
                for index, start in enumerate(batches):
                    attack_key, score_key, drop_key, preprocess_key = batch_keys(np.int32(seed), np.int32(index))
                    x, y, weight = (devices.shard_batch(mesh, a) for a in padded_batch(
                        test_x[start:start + args.batch_size], test_y[start:start + args.batch_size], mesh.size))
                    x = preprocess(x, preprocess_key)
                    beta, scorer = 0.0, score
                    if args.attack in ("fgsm", "do") and strength > 0:
                        x = attacks[variant](x, y, attack_key, strength)
                        scorer = score_sequence if per_step else score
                    elif args.attack == "flip":
                        beta = float(strength)
                    elif args.attack == "eventdrop" and strength > 0:
                        x = drop(x, drop_key, strength)
                    loss_sum, correct_sum = scorer(x, y, weight, score_key, beta)
                    totals += (float(loss_sum), float(correct_sum))
                    progress.update(1)
                per_seed.append(totals / len(test_x))
            per_seed = np.asarray(per_seed)
            rows.append({
                "run": workdir, "neuron": config.neuron, "sigma": config.sigma, "variant": variant,
                "settings": settings_label(args.attack, settings),
                "strength": strength, "loss_mean": float(per_seed[:, 0].mean()), "loss_std": float(per_seed[:, 0].std()),
                "accuracy_mean": float(per_seed[:, 1].mean()), "accuracy_std": float(per_seed[:, 1].std()),
            })
            if strength == 0:
                unperturbed = rows[-1]
    progress.close()
    return rows


def settings_label(attack: str, settings: dict[str, str]) -> str:
    """The settings an attack used, e.g. ``'sign=per-step loss=rate'``."""
    used = {"fgsm": ("fgsm_sign", "attack_loss"), "do": ("do_start", "attack_loss"), "flip": ("flip_mode",),
            "eventdrop": ("eventdrop_mode",)}[attack]
    return " ".join(f"{name}={settings[name]}" for name in used)


def check_inputs(task, attack: str) -> None:
    if attack == "eventdrop" and not getattr(task.model, "sequence_input", False):
        raise ValueError("--attack eventdrop needs a run on event inputs (T, B, H, W, polarity); "
                         "this run's model takes static inputs.")


# ----------------------------------------------------------------- sigmas ---


def train_family(experiment: registry.Experiment, args, model_options: dict) -> list[str]:
    """One run per sigma under ``--out``: trained when missing or unfinished, reused otherwise.

    The runs are configured from ``--train-args`` as the experiment's own
    command would be, and trained by the same shared function.
    """
    workdirs = []
    for sigma in args.sigmas:
        workdir = os.path.join(args.out, f"sigma-{sigma:g}")
        argv = shlex.split(args.train_args) + ["--sigma", str(sigma), "--workdir", workdir]
        workdirs.append(workdir)
        if rundir.run_finished(workdir):
            print(f"sigma {sigma:g}: reusing the finished run in {workdir}", file=sys.stderr)
            continue
        if os.path.exists(os.path.join(workdir, rundir.CONFIG_FILE)):
            argv.append("--resume")  # finishes an interrupted run
        config = cli.parse_config(experiment.config_class, f"--train-args of {experiment.command}", argv)
        print(f"sigma {sigma:g}: training in {workdir}", file=sys.stderr)
        command.train(experiment, config, model_options)
    return workdirs


def plot_family(workdirs: Sequence[str], sigmas: Sequence[float], out: str) -> dict:
    curves = {f"{s:g}": rundir.read_metrics(w) for s, w in zip(sigmas, workdirs)}
    final = {s: records[-1]["test_accuracy"] for s, records in curves.items()}
    fig, (ax_curves, ax_final) = plt.subplots(1, 2, figsize=(10, 4))
    for sigma, records in curves.items():
        ax_curves.plot([r["epoch"] for r in records], [r["test_accuracy"] for r in records], marker="o",
                       label=f"sigma {sigma}")
    ax_curves.set(xlabel="epoch", ylabel="test accuracy", title="learning curves")
    ax_curves.legend()
    ax_final.plot([float(s) for s in final], list(final.values()), marker="o")
    ax_final.set(xlabel="sigma", ylabel="final test accuracy", title="accuracy vs noise level")
    fig.tight_layout()
    if common.writes_files():  # process 0 of a job of several
        fig.savefig(os.path.join(out, "sigmas.png"), dpi=120)
    plt.close(fig)
    return {"final_test_accuracy": final,
            "learning_curves": {s: [r["test_accuracy"] for r in records] for s, records in curves.items()}}


# ---------------------------------------------------------------- outputs ---


def write_table(rows: list[dict], out: str, attack: str) -> tuple[str, str, str]:
    json_path = os.path.join(out, f"robustness-{attack}.json")
    csv_path = os.path.join(out, f"robustness-{attack}.csv")
    png_path = os.path.join(out, f"robustness-{attack}.png")
    common.write_json(json_path, {"attack": attack, "rows": rows})
    if not common.writes_files():  # process 0 of a job of several writes the outputs
        return json_path, csv_path, png_path
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    fig, ax = plt.subplots(figsize=(6, 4))
    for (run, variant) in dict.fromkeys((r["run"], r["variant"]) for r in rows):
        series = [r for r in rows if r["run"] == run and r["variant"] == variant]
        label = f"{os.path.basename(os.path.normpath(run))} ({series[0]['neuron']}, {variant})"
        ax.errorbar([r["strength"] for r in series], [r["accuracy_mean"] for r in series],
                    yerr=[r["accuracy_std"] for r in series], marker="o", capsize=3, label=label)
    ax.set(xlabel={"fgsm": "gamma", "do": "gamma (L2)", "flip": "beta", "eventdrop": "rho"}[attack],
           ylabel="test accuracy", title=f"robustness: {attack}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return json_path, csv_path, png_path


def print_table(rows: list[dict]) -> None:
    print(f"{'run':24s} {'variant':8s} {'strength':>9s} {'loss':>16s} {'accuracy':>16s}")
    for r in rows:
        print(f"{os.path.basename(os.path.normpath(r['run']))[:24]:24s} {r['variant']:8s} {r['strength']:9.4g} "
              f"{r['loss_mean']:8.4f}+-{r['loss_std']:<6.4f} {r['accuracy_mean']:8.4f}+-{r['accuracy_std']:<6.4f}")


def main(argv: Optional[Sequence[str]] = None, data=None) -> dict:
    model_options = common.start()
    p = build_parser()
    args = p.parse_args(argv)
    if args.seeds < 1 or args.samples < 1 or args.limit < 1 or args.batch_size < 1 or args.do_steps < 1:
        p.error("--seeds, --samples, --limit, --batch-size and --do-steps must be >= 1")
    if any(s < 0 for s in args.strengths) or (args.attack in ("flip", "eventdrop") and any(s > 1 for s in args.strengths)):
        p.error(f"--strengths {args.strengths} out of range: >= 0, and <= 1 for flip and eventdrop")
    if args.sigmas is not None and any(s <= 0 for s in args.sigmas):
        p.error(f"--sigmas {args.sigmas}: every sigma must be > 0")
    if args.sigmas is None and not args.workdir:
        p.error("give --workdir (one or more runs) or --sigmas")
    if args.sigmas is None and args.attack is None:
        p.error("give --attack (or --sigmas for the noise-level family)")
    experiment = None
    if args.sigmas is not None:
        try:
            experiment = registry.get_experiment(args.experiment)
        except ValueError as error:
            p.error(f"--experiment: {error}")
    args.out = args.out or (common.output_dir(args.workdir[0]) if args.workdir else None)
    if args.out is None:
        p.error("--sigmas needs --out (the folder of the family's runs)")
    os.makedirs(args.out, exist_ok=True)
    result: dict[str, Any] = {}
    workdirs = list(args.workdir)
    if args.sigmas is not None:
        family = train_family(experiment, args, model_options)
        result["sigmas"] = plot_family(family, args.sigmas, args.out)
        common.write_json(os.path.join(args.out, "sigmas.json"), result["sigmas"])
        print(f"wrote {os.path.join(args.out, 'sigmas.json')} and sigmas.png")
        workdirs += family
    if args.attack is not None:
        rows = []
        try:
            for workdir in workdirs:
                config, task, variables = common.load(workdir, data, model_options)
                check_inputs(task, args.attack)
                rows += sweep_run(workdir, config, task, variables, args)
        except ValueError as error:  # every process of a job alike: all stop now, none waits at shutdown
            devices.fail_job(error)
        print_table(rows)
        paths = write_table(rows, args.out, args.attack)
        print("wrote " + ", ".join(paths))
        result["rows"] = rows
    return result


if __name__ == "__main__":
    main()
