"""``python -m benchmarks.conv``: forward + backward of conv layers, XLA vs matmul weight gradient.

Times ``jax.value_and_grad`` w.r.t. the input and the kernel of
``nsnn_jax.conv.conv2d`` (3x3, stride 1, SAME) with ``weight_grad='xla'`` and
``'shifted'``, interleaved in one process, for the layer shapes of a CIFAR
network at ``B * T = 128``; ``--formulations`` adds the two matmul
formulations that ``'shifted'`` chooses between (one product per kernel tap,
and im2col). Prints a table and a final JSON line with the speedups
(XLA time / shifted time).
"""

from __future__ import annotations

import argparse
import functools
import json
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from nsnn_jax import conv, cpu
from benchmarks.common import conv_engine, describe_devices, time_interleaved

# (H, W, C_in, C_out)
DEFAULT_LAYERS = "32x32x3x64,32x32x64x128,16x16x128x256"


def parse_layers(text: str) -> list[tuple[int, int, int, int]]:
    """``'32x32x3x64,16x16x128x256'`` -> ``[(32, 32, 3, 64), (16, 16, 128, 256)]``."""
    layers = []
    for item in text.split(","):
        dims = tuple(int(d) for d in item.lower().split("x"))
        if len(dims) != 4 or min(dims) < 1:
            raise ValueError(f"a layer is HxWxC_INxC_OUT with positive sizes, got {item!r}.")
        layers.append(dims)
    return layers


def make_step(batch: int, layer: tuple[int, int, int, int], mode: str, kernel_size: int, dtype, seed: int = 0):
    """A jitted ``value_and_grad`` of one conv layer w.r.t. (x, kernel), closed over fixed data.

    ``mode`` is a ``conv2d`` weight gradient, or ``'taps'``/``'im2col'`` to force
    one matmul formulation.
    """
    h, w, c_in, c_out = layer
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal((batch, h, w, c_in), np.float32)).astype(dtype)
    kernel = jnp.asarray(rng.standard_normal((kernel_size, kernel_size, c_in, c_out), np.float32)
                         / np.sqrt(kernel_size * kernel_size * c_in)).astype(dtype)
    cotangent = jnp.asarray(rng.standard_normal((batch, h, w, c_out), np.float32)).astype(dtype)
    pairs = conv.explicit_padding("SAME", (h, w), (kernel_size, kernel_size), (1, 1))

    def loss(x, kernel):
        y = conv.conv2d(x, kernel, (1, 1), pairs, mode)
        return jnp.sum(y.astype(jnp.float32) * cotangent.astype(jnp.float32))

    return functools.partial(jax.jit(jax.value_and_grad(loss, argnums=(0, 1))), x, kernel)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--layers", default=DEFAULT_LAYERS, help="comma-separated HxWxC_INxC_OUT")
    parser.add_argument("--batch-size", type=int, default=128, help="B (B * T of a spiking network)")
    parser.add_argument("--kernel", type=int, default=3, help="square kernel size")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="compute dtype")
    parser.add_argument("--formulations", action="store_true",
                        help="also time the per-tap and im2col formulations separately")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument("--steps", type=int, default=2, help="calls per round")
    args = parser.parse_args(argv)
    cpu.configure()
    if args.batch_size < 1 or args.kernel < 1 or args.rounds < 1 or args.steps < 1:
        parser.error("--batch-size, --kernel, --rounds and --steps must be >= 1")
    try:
        layers = parse_layers(args.layers)
    except ValueError as error:
        parser.error(f"--layers: {error}")
    dtype = jnp.dtype(args.dtype)
    modes = list(conv.WEIGHT_GRAD_MODES) + (list(conv.MATMUL_FORMULATIONS) if args.formulations else [])

    print(f"conv {args.kernel}x{args.kernel} stride 1 SAME, B={args.batch_size}, {args.dtype}, value_and_grad "
          f"w.r.t. x and kernel, {describe_devices()}")
    header = "".join(f"{m + ' ms':>12s}" for m in modes)
    print(f"{'layer HxWxCin->Cout':22s}{header}{'speedup':>9s}")
    rows = []
    for layer in layers:
        steps = {m: make_step(args.batch_size, layer, m, args.kernel, dtype) for m in modes}
        timings = time_interleaved(steps, rounds=args.rounds, steps_per_round=args.steps)
        ms = {m: 1e3 * timings[m]["median_s"] for m in modes}
        speedup = ms["xla"] / ms["shifted"]
        name = f"{layer[0]}x{layer[1]}x{layer[2]}->{layer[3]}"
        print(f"{name:22s}" + "".join(f"{ms[m]:12.1f}" for m in modes) + f"{speedup:9.2f}")
        rows.append({"layer": name, "ms": ms, "speedup": speedup})
    result = {
        "batch_size": args.batch_size,
        "kernel": args.kernel,
        "dtype": args.dtype,
        "conv_engine": conv_engine(),
        "layers": rows,
        "speedups": {row["layer"]: row["speedup"] for row in rows},
        # Layers differ by ~10x in cost, so the total is dominated by the big ones.
        "total_speedup": sum(r["ms"]["xla"] for r in rows) / sum(r["ms"]["shifted"] for r in rows),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
