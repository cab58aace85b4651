"""``--scale paper``: the Table 1 rows (the recipes) x seeds on the full data sets, in Table 1's layout.

Data is looked for under ``--data-dir`` (one root):

* CIFAR-10: ``cifar-10-python.tar.gz`` or ``cifar-10-batches-py/`` (or a folder ``cifar10/`` holding either);
* CIFAR-100: ``cifar-100-python.tar.gz`` or ``cifar-100-python/`` (or ``cifar100/``);
* DVS-CIFAR: ``cifar10_dvs/`` (the recordings, one folder per class);
* DVS Gesture: ``dvs_gesture/`` (the IBM DvsGesture folder).
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

from train.common import recipes, rundir

# (dataset, arch, algorithm, neuron) -> {T: (mean, std) of the paper's Table 1, %}; std None where unpublished.
PAPER = {
    ("cifar10", "resnet18", "stbp", "lif"): {2: (93.18, 0.07), 4: (93.93, 0.11)},
    ("cifar10", "resnet18", "stbp", "noisy"): {2: (92.87, 0.04), 4: (93.77, 0.12)},
    ("cifar10", "cifarnet", "stbp", "lif"): {2: (91.88, 0.09), 4: (92.79, 0.14)},
    ("cifar10", "cifarnet", "stbp", "noisy"): {2: (93.90, 0.12), 4: (94.30, 0.08)},
    ("cifar10", "resnet18", "tet", "lif"): {2: (93.62, 0.02), 4: (94.09, 0.20)},
    ("cifar10", "resnet18", "tet", "noisy"): {2: (93.12, 0.07), 4: (94.14, 0.05)},
    ("cifar100", "resnet18", "stbp", "lif"): {2: (70.15, 0.14), 4: (70.88, 0.19)},
    ("cifar100", "resnet18", "stbp", "noisy"): {2: (69.57, 0.09), 4: (71.16, 0.40)},
    ("cifar100", "cifarnet", "stbp", "lif"): {2: (72.25, 0.08), 4: (72.94, 0.21)},
    ("cifar100", "cifarnet", "stbp", "noisy"): {2: (73.36, 0.14), 4: (74.17, 0.28)},
    ("cifar100", "resnet18", "tet", "lif"): {2: (71.72, 0.13), 4: (74.01, 0.43)},
    ("cifar100", "resnet18", "tet", "noisy"): {2: (71.34, 0.09), 4: (73.33, 0.03)},
    ("cifar10_dvs", "resnet19", "stbp", "lif"): {10: (71.74, 0.92)},
    ("cifar10_dvs", "resnet19", "stbp", "noisy"): {10: (74.30, 0.61)},
    ("cifar10_dvs", "vggsnn", "tdbn", "lif"): {10: (75.51, 0.49)},
    ("cifar10_dvs", "vggsnn", "tdbn", "noisy"): {10: (76.97, 0.10)},
    ("cifar10_dvs", "vggsnn", "tet", "lif"): {10: (78.26, 0.17)},
    ("cifar10_dvs", "vggsnn", "tet", "noisy"): {10: (79.52, 0.38)},
    ("dvs_gesture", "sevenb", "stbp", "lif"): {16: (95.84, 0.27)},
    ("dvs_gesture", "sevenb", "stbp", "noisy"): {16: (96.88, 0.28)},
}
COMMANDS = {"cifar10": "train.cifar", "cifar100": "train.cifar", "cifar10_dvs": "train.dvs_cifar",
            "dvs_gesture": "train.dvs_gesture"}
TRAIN_SIZE = {"cifar10": 50000, "cifar100": 50000, "cifar10_dvs": 9000, "dvs_gesture": 1176}
# Training images/s on this project's 2-core CPU, benchmarks/README.md (T = 2, B = 32): CIFARNet 10.3,
# ResNet-18* 11.9. Other architectures were not measured: taken as CIFARNet's. Cost taken as linear in T
# and, for 48x48 / 128x128 event frames, in the pixel count relative to 32x32.
CPU_IMAGES_PER_S = {"cifarnet": 10.3, "resnet18": 11.9}
FRAME_PIXELS = {"cifar10": 32 * 32, "cifar100": 32 * 32, "cifar10_dvs": 48 * 48, "dvs_gesture": 128 * 128}
LOOKED_FOR = {
    "cifar10": ("cifar-10-python.tar.gz", "cifar-10-batches-py", "cifar10"),
    "cifar100": ("cifar-100-python.tar.gz", "cifar-100-python", "cifar100"),
    "cifar10_dvs": ("cifar10_dvs",),
    "dvs_gesture": ("dvs_gesture",),
}


def find_data(data_dir: Optional[str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """``(found: dataset -> path to pass as --data-dir, missing: dataset -> paths looked at)``."""
    found, missing = {}, {}
    for dataset, names in LOOKED_FOR.items():
        candidates = [os.path.join(data_dir, n) for n in names] if data_dir else []
        hit = next((c for c in candidates if os.path.exists(c)), None)
        if hit is None:
            missing[dataset] = candidates or ["(no --data-dir given)"]
        else:
            # the loaders take the folder holding an archive, or the extracted folder itself
            found[dataset] = data_dir if hit.endswith(".tar.gz") else hit
    return found, missing


def rows(seeds: int) -> list[dict]:
    """One entry per (Table 1 row, T, seed): the command line (without --workdir) and its run name."""
    out = []
    for (dataset, arch, algorithm, neuron), by_t in PAPER.items():
        recipe = recipes.get_recipe(dataset, arch, algorithm, neuron)
        for t in by_t:
            for seed in range(seeds):
                name = f"table1-{dataset}-{arch}-{algorithm}-{neuron}-T{t}-seed{seed}"
                args = [] if dataset in ("cifar10_dvs", "dvs_gesture") else ["--dataset", dataset]
                args += ["--arch", arch, "--algorithm", algorithm, "--neuron", neuron, "--timesteps", str(t),
                         "--seed", str(seed)]
                epochs = recipe.values["epochs"].value
                rate = CPU_IMAGES_PER_S.get(arch, CPU_IMAGES_PER_S["cifarnet"]) * 2 / t * 1024 / FRAME_PIXELS[dataset]
                out.append({"key": (dataset, arch, algorithm, neuron), "timesteps": t, "seed": seed, "name": name,
                            "module": COMMANDS[dataset], "args": args, "epochs": epochs,
                            "cpu_hours": epochs * TRAIN_SIZE[dataset] / rate / 3600})
    return out


def collect(out: str, entries: list[dict]) -> list[list[str]]:
    """Table 1's layout: data set, NSNN?, algorithm, architecture, T, paper's accuracy, measured (mean +- std, runs)."""
    table = []
    seen = {}
    for e in entries:
        seen.setdefault((e["key"], e["timesteps"]), []).append(e)
    for (key, t), group in seen.items():
        dataset, arch, algorithm, neuron = key
        accuracies = []
        for e in group:
            workdir = os.path.join(out, "runs", e["name"])
            if rundir.run_finished(workdir):
                accuracies.append(100 * float(rundir.last_record(workdir)["test_accuracy"]))
        paper_mean, paper_std = PAPER[key][t]
        measured = "not run"
        if accuracies:
            measured = f"{np.mean(accuracies):.2f}" + (f" +- {np.std(accuracies, ddof=1):.2f}" if len(accuracies) > 1 else "")
            measured += f" ({len(accuracies)}/{len(group)} runs)"
        table.append([dataset, "yes" if neuron == "noisy" else "no", algorithm, arch, str(t),
                      f"{paper_mean:.2f} +- {paper_std:.2f}", measured])
    return table


HEADER = ["data set", "NSNN", "algorithm", "architecture", "T", "paper (%)", "measured (%)"]
