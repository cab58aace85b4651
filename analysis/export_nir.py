"""``python -m analysis.export_nir --workdir DIR``: the trained network as a NIR graph (``.nir`` file).

Writes the deterministic limit of the run's latest checkpoint, batch norm
folded, with the neuron's noise law in each spiking node's metadata
(:mod:`nsnn_jax.interop.nir`), to ``--out`` (default
``DIR/analysis/network.nir``). The graph takes inputs as the model does after
the run's evaluation preprocessing (normalisation). It then reads the file back
into nsnn_jax and checks, on ``--check`` test samples, that the imported
network gives the same deterministic outputs; the summary goes to
``DIR/analysis/export_nir.json``. Needs the ``nir`` package (extra ``interop``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from analysis import common
from nsnn_jax.interop import nir as nsnn_nir


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--workdir", required=True, help="run folder written by a train.* command")
    p.add_argument("--out", default=None, help="the .nir file to write (default DIR/analysis/network.nir)")
    p.add_argument("--dt", type=float, default=1.0,
                   help="the graph's time step; snnTorch's NIR reader assumes 1e-4")
    p.add_argument("--check", type=int, default=8, help="test samples to check the written graph on (0: none)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> dict:
    p = parser()
    args = p.parse_args(argv)
    if not args.dt > 0 or args.check < 0:
        p.error(f"need --dt > 0 and --check >= 0, got {args.dt} and {args.check}")
    _, task, variables = common.load(args.workdir)
    model = task.model
    count = max(1, min(args.check, len(task.data.test_x)))
    inputs = task.preprocess(jnp.asarray(task.data.test_x[:count]), jax.random.key(0), False)
    sequence = bool(getattr(model, "sequence_input", False))
    sample_shape = tuple(inputs.shape[2:] if sequence else inputs.shape[1:])
    try:
        graph = nsnn_nir.export(model, variables, dt=args.dt, input_shape=sample_shape)
    except (ValueError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from error
    graph.metadata["experiment"] = task.experiment
    graph.metadata["input"] = "inputs as the model takes them after the run's evaluation preprocessing"

    folder = os.path.join(args.workdir, "analysis")
    os.makedirs(folder, exist_ok=True)
    out = args.out or os.path.join(folder, "network.nir")
    try:
        nsnn_nir.write(out, graph)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from error
    result = {"workdir": args.workdir, "nir": out, "dt": args.dt, "model": type(model).__name__,
              "input_shape": list(sample_shape), "nodes": {k: type(n).__name__ for k, n in graph.nodes.items()}}
    if args.check:
        imported, imported_vars = nsnn_nir.import_graph(out)
        expected = np.asarray(model.apply(variables, inputs, deterministic=True))
        lead = 2 if sequence else 1
        if len(graph.nodes["input"].input_type["input"]) == 1:  # the graph takes flat samples
            inputs = inputs.reshape(inputs.shape[:lead] + (-1,))
        got = np.asarray(imported.apply(imported_vars, inputs, deterministic=True))
        result["checked_samples"] = count
        result["max_abs_output_difference"] = float(np.max(np.abs(expected - got)))
        if task.classification:
            result["same_predictions"] = bool(np.array_equal(expected.mean(0).argmax(-1),
                                                             got.mean(0).argmax(-1)))
    path = os.path.join(folder, "export_nir.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    if args.check:
        print(f"read back: max |output difference| {result['max_abs_output_difference']:.3g} over "
              f"{count} test samples", file=sys.stderr)
    print(f"wrote {out} and {path}")
    return result


if __name__ == "__main__":
    main()
