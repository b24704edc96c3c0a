"""prior's loader from Python.

Exact, deterministic, replayable mixing of discourse categories, read
from prior's memory-mapped zstd shards by Rust threads::

    import prior_loader
    mix = prior_loader.Mix("mix.toml")
    loader = prior_loader.Loader(mix)          # rank/world from RANK/WORLD_SIZE
    for batch in loader:
        batch.tokens                            # numpy [global_batch / world, seq_len + 1]

A batch has the bits and the hash ``prior loader replay --json`` gives for
the same step; ``loader.state_dict()`` / ``load_state_dict()`` resume it,
also at another world size. ``prior_loader.torch`` holds the PyTorch
``IterableDataset`` (importing this package needs no torch).
"""

from ._native import (
    Batch,
    ConfigError,
    CorruptDataError,
    Loader,
    Mix,
    PriorError,
    __version__,
)

__all__ = [
    "Batch",
    "ConfigError",
    "CorruptDataError",
    "Loader",
    "Mix",
    "PriorError",
    "__version__",
]
