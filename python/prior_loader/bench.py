"""Tokens/s delivered into Python beside the same loader in Rust alone.

    python -m prior_loader.bench --mix mix.toml --steps 200 [--threads 2] [--dtype uint16] [--repeats 3] [--json]

Both runs read the same steps of the same mix with the same threads and
dtype; their ratio is what crossing into Python (numpy arrays, Batch
objects) costs. The runs alternate (Rust, Python, Rust, ...) and each rate
is the median of --repeats runs, so a busy moment of a shared machine
lands on one run, not on one side. The single-thread raw zstd rate of the
same frames (median of three) is the bar both are bound by.
"""

import argparse
import json
import statistics
import sys
import time

from . import Loader, Mix, PriorError
from ._native import raw_zstd_tokens_per_s, rust_tokens_per_s


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m prior_loader.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--mix", required=True, help="the mix.toml to read")
    p.add_argument("--steps", type=int, default=100, help="batches per run (default 100)")
    p.add_argument("--start-step", type=int, default=0, help="first step (default 0)")
    p.add_argument("--threads", type=int, default=2, help="loader threads (default 2)")
    p.add_argument("--prefetch", type=int, default=8, help="batches made ahead (default 8)")
    p.add_argument("--dtype", default="int64", choices=["int64", "int32", "uint32", "uint16"])
    p.add_argument("--repeats", type=int, default=3, help="runs of each side; medians reported (default 3)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    a = p.parse_args(argv)
    if a.steps < 1 or a.repeats < 1:
        p.error("--steps and --repeats must be at least 1")
    try:
        mix = Mix(a.mix)
        opts = dict(threads=a.threads, prefetch=a.prefetch, dtype=a.dtype)
        rust_runs, python_runs = [], []
        for _ in range(a.repeats):
            rust_runs.append(rust_tokens_per_s(mix, a.steps, start_step=a.start_step, **opts))
            loader = Loader(mix, rank=0, world=1, start_step=a.start_step, end_step=a.start_step + a.steps, **opts)
            t0 = time.perf_counter()
            tokens = 0
            for batch in loader:
                tokens += batch.tokens.size
            python_runs.append(tokens / (time.perf_counter() - t0))
            del loader
        budget = min(max(tokens, 1 << 24), 1 << 28)
        raw = statistics.median(raw_zstd_tokens_per_s(mix, budget) for _ in range(3))
    except PriorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    python, rust = statistics.median(python_runs), statistics.median(rust_runs)
    out = {
        "mix": a.mix,
        "steps": a.steps,
        "threads": a.threads,
        "dtype": a.dtype,
        "repeats": a.repeats,
        "seq_len": mix.seq_len,
        "global_batch": mix.global_batch,
        "python_tokens_per_s": python,
        "rust_tokens_per_s": rust,
        "raw_zstd_tokens_per_s": raw,
        "ratio": python / rust,
        "rust_over_raw_zstd": rust / raw,
        "python_runs": python_runs,
        "rust_runs": rust_runs,
    }
    if a.json:
        print(json.dumps(out))
    else:
        print(
            f"{a.steps} steps of {mix.global_batch} x {mix.seq_len + 1} tokens, {a.threads} threads, {a.dtype}"
            f" (medians of {a.repeats} runs):\n"
            f"  into Python (numpy)  {python / 1e6:8.1f} M tokens/s\n"
            f"  in Rust alone        {rust / 1e6:8.1f} M tokens/s\n"
            f"  raw zstd, 1 thread   {raw / 1e6:8.1f} M tokens/s\n"
            f"  Python / Rust        {python / rust:8.3f}\n"
            f"  Rust / raw zstd      {rust / raw:8.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
