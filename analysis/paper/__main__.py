"""``python -m analysis.paper --scale small|paper --out DIR``: every figure and table of the paper, regenerated.

``--scale small`` trains (or reuses the finished runs in ``DIR/runs``, and
resumes unfinished ones) everything the paper's figures need at a size this
CPU can afford: the 64-hidden-unit MLP and a reduced-width conv net on
Fashion-MNIST, the sine forecaster of A.2.3, event data emulated from
Fashion-MNIST; then runs the analyses (``analysis.fano``, ``analysis.jpsth``,
``analysis.robustness``, reused when their JSON exists) and writes
``DIR/report.md``, ``DIR/report.json`` and one PNG per figure. Each section
states the paper's claim, the measured numbers (mean +- std over seeds) and a
verdict by the rule of :mod:`analysis.paper.verdict`.

``--scale paper`` runs the Table 1 rows (the recipes) x ``--seeds`` on the
full data sets from ``--data-dir`` and collects the finished runs into Table
1's layout beside the paper's numbers; without data it names what is missing
and where it looked; on a CPU-only machine it lists the commands and an
estimated time instead of starting (``--force`` starts anyway).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import time
from typing import Optional, Sequence

from analysis.paper import plan as plan_lib
from analysis.paper import report, runner, sections, table1
from analysis.paper import verdict as verdict_lib


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m analysis.paper", description=__doc__.splitlines()[0],
                                epilog=verdict_lib.RULE, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--scale", choices=plan_lib.SCALES, default="small",
                   help="small: this CPU, Fashion-MNIST and the sine task; paper: Table 1 on the full data sets")
    p.add_argument("--out", required=True, help="output folder (runs, analyses, figures, report); a rerun reuses it")
    p.add_argument("--quick", action="store_true",
                   help="small scale with 1 seed, fewer noise levels, epochs, samples and trials (minutes)")
    p.add_argument("--seeds", type=int, default=None,
                   help="training seeds per setting (default: 3; 1 with --quick)")
    p.add_argument("--data-dir", default=None,
                   help="small: the folder of the four Fashion-MNIST IDX files (default: the system copy "
                        "/usr/share/datasets/fashion-mnist, then the cache); paper: the root of the data sets")
    p.add_argument("--tiny", action="store_true",
                   help="test-sized settings (a few images, 2 epochs, tiny nets) for checking the pipeline; "
                        "the numbers mean nothing")
    p.add_argument("--in-process", action="store_true",
                   help="run each step's module in this process instead of a subprocess (saves the start-up)")
    p.add_argument("--force", action="store_true", help="--scale paper: start training even on a CPU-only machine")
    return p


def command_text(argv: Sequence[str]) -> str:
    return "python -m analysis.paper " + " ".join(shlex.quote(a) for a in argv)


def folder_record(settings: plan_lib.Settings) -> dict:
    """What ``OUT/plan.json`` records of a small-scale reproduction: every setting."""
    return {"scale": settings.name, "seeds": settings.seeds, "settings": dataclasses.asdict(settings)}


def check_folder(out: str, record: dict) -> None:
    """``OUT/plan.json`` records the settings; a folder of other settings is refused (its runs would not fit).

    Run names carry only some settings (e.g. not the epochs), so the whole
    record is compared: a finished run of other settings is never reused.
    """
    path = os.path.join(out, "plan.json")
    record = json.loads(json.dumps(record))  # tuples as lists, as read back
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        if saved != record:
            raise SystemExit(f"error: {out} holds a reproduction with other settings ({saved}); "
                             f"give another --out for {record}")
    os.makedirs(out, exist_ok=True)
    with open(path, "w") as f:
        json.dump(record, f)


def subset_data(out: str, data_dir: Optional[str], train: Optional[int], test: Optional[int]) -> Optional[str]:
    """A folder with the first ``train`` / ``test`` Fashion-MNIST images (IDX files), made once; or ``data_dir``."""
    if not train and not test:
        return data_dir
    from nsnn_jax.data import idx

    folder = os.path.join(out, "data", f"fashion_mnist-{train or 'all'}-{test or 'all'}")
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
             "t10k-labels-idx1-ubyte.gz")
    if all(os.path.exists(os.path.join(folder, n)) for n in names):
        return folder
    data = idx.load_idx_dataset("fashion_mnist", data_dir=data_dir)
    os.makedirs(folder, exist_ok=True)
    for name, array in zip(names, (data.train_x[:train], data.train_y[:train], data.test_x[:test], data.test_y[:test])):
        idx.write_idx(os.path.join(folder, name), array.astype("uint8"))
    print(f"[paper] wrote the first {train} train / {test} test Fashion-MNIST images to {folder}", file=sys.stderr)
    return folder


def small(args, argv) -> dict:
    settings = plan_lib.settings_for(args.quick, args.tiny, args.seeds)
    check_folder(args.out, folder_record(settings))
    start, date = time.perf_counter(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        data_dir = subset_data(args.out, args.data_dir, settings.train_images, settings.test_images)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"error: Fashion-MNIST: {error}") from error
    plan = plan_lib.build(settings, args.out, data_dir)
    for note in plan.notes:
        print(f"[paper] note: {note}", file=sys.stderr)
    trains = sum(s.kind == "train" for s in plan.steps)
    print(f"[paper] {settings.name}: {len(plan.steps)} steps ({trains} training runs), {settings.seeds} seed(s), "
          f"out {args.out}", file=sys.stderr)
    steps = runner.Runner(args.out, plan.steps, in_process=args.in_process)
    status = steps.run()
    built = sections.build_all(plan, args.out)
    counts = {k: sum(v == k for v in status.values()) for k in ("trained", "resumed", "ran", "reused", "failed")}
    header = {"scale": settings.name, "seeds": settings.seeds, "date": date, "command": command_text(argv),
              "elapsed_s": time.perf_counter() - start, "rule": verdict_lib.RULE, "step_counts": counts,
              "steps": status, "step_wall_s": steps.seconds, "train_seconds": runner_seconds(args.out, plan, status),
              "settings": {k: v for k, v in vars(settings).items()}}
    md, js = report.write(args.out, header, built, plan.notes)
    for s in built:
        print(f"{s['key']:12s} {s['verdict']}")
    print(f"wrote {md} and {js}")
    return {**header, "sections": {s["key"]: s for s in built}}


def runner_seconds(out: str, plan, status: dict) -> dict:
    """Seconds per trained run (from its metrics), for estimating a larger reproduction."""
    from train.common import rundir

    seconds = {}
    for step in plan.steps:
        if step.kind == "train" and status.get(step.name) != "failed":
            try:
                seconds[step.name] = sum(r.get("seconds", 0.0) for r in rundir.read_metrics(plan.run_dir(step.name)))
            except OSError:
                pass
    return seconds


def paper(args, argv) -> dict:
    seeds = args.seeds or 3
    found, missing = table1.find_data(args.data_dir)
    entries = table1.rows(seeds)
    for dataset, looked in missing.items():
        print(f"[paper] missing {dataset}: looked for {', '.join(looked)}", file=sys.stderr)
    runnable = [e for e in entries if e["key"][0] in found]
    steps = []
    for e in runnable:
        steps.append(plan_lib.Step("train", e["name"], e["module"],
                                   tuple(e["args"] + ["--data-dir", found[e["key"][0]]])))
    import jax

    backend = jax.default_backend()
    lines = [f"python -m {s.module} {' '.join(runner.command_line(args.out, s))}" for s in steps]
    hours = sum(e["cpu_hours"] for e in runnable)
    started = False
    os.makedirs(args.out, exist_ok=True)
    if runnable and (backend != "cpu" or args.force):
        runner.Runner(args.out, steps, in_process=args.in_process).run()
        started = True
    elif runnable:
        print(f"[paper] this machine has no accelerator (JAX backend {backend!r}): not starting {len(steps)} runs "
              f"(about {hours:,.0f} CPU hours by the CPU throughput of benchmarks/README.md); the commands:",
              file=sys.stderr)
        for line in lines:
            print(line)
    table = table1.collect(args.out, entries)
    payload = {"scale": "paper", "seeds": seeds, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "command": command_text(argv), "backend": backend, "started": started,
               "missing": missing, "found": found, "commands": lines, "estimated_cpu_hours": hours,
               "table1": {"header": table1.HEADER, "rows": table}}
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(payload, f, indent=2)
    md = ["# Reproducing the paper: Table 1", "", f"Command: `{payload['command']}`  ", f"Date: {payload['date']}", ""]
    if missing:
        md += ["Missing data (not run):", ""] + [f"- {d}: looked for {', '.join(p)}" for d, p in missing.items()] + [""]
    if lines and not started:
        md += [f"Not started on this CPU-only machine (about {hours:,.0f} CPU hours); the commands:", "", "```"]
        md += lines + ["```", ""]
    md += ["| " + " | ".join(table1.HEADER) + " |", "|" + "---|" * len(table1.HEADER)]
    md += ["| " + " | ".join(row) + " |" for row in table]
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print(f"wrote {os.path.join(args.out, 'report.md')} and report.json")
    if not found:
        print("error: no data set of Table 1 found under --data-dir "
              f"{args.data_dir!r}: " + "; ".join(f"{d}: looked for {', '.join(p)}" for d, p in missing.items()),
              file=sys.stderr)
        raise SystemExit(1)
    return payload


def main(argv: Optional[Sequence[str]] = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = build_parser()
    args = p.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        p.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.scale == "paper" and (args.quick or args.tiny):
        p.error("--quick and --tiny are settings of --scale small")
    return paper(args, argv) if args.scale == "paper" else small(args, argv)


if __name__ == "__main__":
    main()
