"""``python -m benchmarks.bitstream | dieharder -g 200 -a``: the hash16 sampler's raw words on stdout.

Writes :func:`nsnn_jax.sampling.counter_bits` output as raw little-endian
uint32 to stdout for a battery of statistical tests (``scripts/dieharder.sh``).
The stream is what the sampler draws over a run: consecutive draws of
``--chunk-words`` words, each with its own key ``fold_in(key(seed), i)`` (a
layer's draw at one step), the counter running from 0 in each. It runs until
``--megabytes`` are written (0: until the reader closes the pipe); progress goes
to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Optional, Sequence

import jax
import numpy as np

from nsnn_jax import sampling


def stream(seed: int, chunk_words: int):
    """Yields the stream's chunks, ``(chunk_words,)`` uint32 NumPy arrays, forever."""
    base = jax.random.key(seed)
    draw = jax.jit(lambda key: sampling.counter_bits(key, chunk_words))
    index = 0
    while True:
        yield np.asarray(draw(jax.random.fold_in(base, index)), dtype="<u4")
        index += 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="seed of the base key")
    parser.add_argument("--chunk-words", type=int, default=1 << 20, help="words per key (one draw)")
    parser.add_argument("--megabytes", type=float, default=0.0, help="stop after this many MB (0: never)")
    args = parser.parse_args(argv)
    if not 1 <= args.chunk_words < 1 << 32:
        parser.error(f"--chunk-words must be in [1, 2^32), got {args.chunk_words}")
    if args.megabytes < 0:
        parser.error(f"--megabytes must be >= 0, got {args.megabytes}")
    limit = int(args.megabytes * 2**20)
    out = sys.stdout.buffer
    written, start, reported = 0, time.perf_counter(), 0
    try:
        for chunk in stream(args.seed, args.chunk_words):
            data = chunk.tobytes()
            if limit and written + len(data) > limit:
                data = data[: limit - written]
            out.write(data)
            written += len(data)
            if written - reported >= 256 * 2**20:
                reported = written
                print(f"bitstream: {written / 2**20:.0f} MB in {time.perf_counter() - start:.0f} s",
                      file=sys.stderr, flush=True)
            if limit and written >= limit:
                break
        out.flush()
    except BrokenPipeError:  # the reader had enough; keep the exit flush from raising again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
