"""Tokens/s delivered into Python beside the same loader in Rust alone.

    python -m prior_loader.bench --mix mix.toml --steps 200 [--threads 2] [--dtype uint16] [--json]

Both runs read the same steps of the same mix with the same threads; the
ratio is what crossing into Python (numpy arrays, Batch objects) costs.
"""

import argparse
import json
import sys
import time

from . import Loader, Mix, PriorError
from ._native import rust_tokens_per_s


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m prior_loader.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--mix", required=True, help="the mix.toml to read")
    p.add_argument("--steps", type=int, default=100, help="batches per run (default 100)")
    p.add_argument("--start-step", type=int, default=0, help="first step (default 0)")
    p.add_argument("--threads", type=int, default=2, help="loader threads (default 2)")
    p.add_argument("--prefetch", type=int, default=8, help="batches made ahead (default 8)")
    p.add_argument("--dtype", default="int64", choices=["int64", "int32", "uint32", "uint16"])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    a = p.parse_args(argv)
    try:
        mix = Mix(a.mix)
        opts = dict(threads=a.threads, prefetch=a.prefetch, dtype=a.dtype)
        rust = rust_tokens_per_s(mix, a.steps, start_step=a.start_step, **opts)
        loader = Loader(mix, rank=0, world=1, start_step=a.start_step, end_step=a.start_step + a.steps, **opts)
        t0 = time.perf_counter()
        tokens = 0
        for batch in loader:
            tokens += batch.tokens.size
        python = tokens / (time.perf_counter() - t0)
    except PriorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    out = {
        "mix": a.mix,
        "steps": a.steps,
        "threads": a.threads,
        "dtype": a.dtype,
        "seq_len": mix.seq_len,
        "global_batch": mix.global_batch,
        "python_tokens_per_s": python,
        "rust_tokens_per_s": rust,
        "ratio": python / rust,
    }
    if a.json:
        print(json.dumps(out))
    else:
        print(
            f"{a.steps} steps of {mix.global_batch} x {mix.seq_len + 1} tokens, {a.threads} threads, {a.dtype}:\n"
            f"  into Python (numpy)  {python / 1e6:8.1f} M tokens/s\n"
            f"  in Rust alone        {rust / 1e6:8.1f} M tokens/s\n"
            f"  ratio                {python / rust:8.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
