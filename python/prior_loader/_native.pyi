"""Type stubs of the Rust extension module (see python/src/lib.rs)."""

import os
from typing import Any, Dict, Iterator, List, Optional, Union

import numpy as np

__version__: str

class PriorError(Exception):
    """An error of prior's loader; the message names the file, key, shard or frame at fault."""

class CorruptDataError(PriorError):
    """A shard, frame or corpus manifest that is damaged, truncated or missing."""

class ConfigError(PriorError):
    """A mix file, argument or loader state that is not valid."""

class Mix:
    """A mix file (``mix.toml``) and the corpus it names, opened once."""

    def __init__(self, path: Union[str, os.PathLike]) -> None: ...
    @property
    def seq_len(self) -> int:
        """Tokens per sequence the model sees (rows hold one more)."""
    @property
    def global_batch(self) -> int:
        """Sequences per step, over all ranks."""
    @property
    def categories(self) -> List[str]:
        """The category names, in the mix's order."""
    @property
    def phases(self) -> List[str]:
        """The phase names, in order."""
    @property
    def key(self) -> str:
        """The mix key (hex) a loader state must match."""
    def phase_of(self, step: int) -> str:
        """The name of the phase step ``step`` (0-based) belongs to."""

class Batch:
    """One rank's slice of one step."""

    @property
    def step(self) -> int:
        """The step (0-based)."""
    @property
    def hash(self) -> str:
        """The hex hash ``prior loader hash --per-step`` prints for this step."""
    @property
    def phase(self) -> str:
        """The phase the step belongs to."""
    @property
    def tokens(self) -> np.ndarray:
        """``[global_batch / world, seq_len + 1]`` in the loader's dtype."""
    @property
    def categories(self) -> List[str]:
        """Each row's category name."""
    def document_starts(self, i: int) -> List[int]:
        """Positions in row ``i`` where a document starts."""
    def provenance(self, i: int) -> List[Dict[str, Any]]:
        """Row ``i``'s sources: dicts of ``shard``, ``frame``, ``start``, ``len``."""
    def __len__(self) -> int: ...

class Loader:
    """This rank's batches of a mix, in step order."""

    def __init__(
        self,
        mix: Union[Mix, str, os.PathLike],
        *,
        rank: Optional[int] = None,
        world: Optional[int] = None,
        start_step: int = 0,
        end_step: Optional[int] = None,
        threads: int = 2,
        prefetch: int = 8,
        dtype: str = "int64",
    ) -> None: ...
    @property
    def rank(self) -> int: ...
    @property
    def world(self) -> int: ...
    @property
    def mix(self) -> Mix: ...
    @property
    def delivered_tokens(self) -> int: ...
    def __iter__(self) -> Iterator[Batch]: ...
    def __next__(self) -> Batch: ...
    def replay(self, step: int) -> Batch:
        """Step ``step``'s batch for this rank, without moving the iteration."""
    def state_dict(self) -> Dict[str, Any]:
        """The state after the last batch served (ints and strings)."""
    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Continue after ``state`` (also one saved at another world size)."""

def rust_tokens_per_s(
    mix: Mix,
    steps: int,
    *,
    start_step: int = 0,
    threads: int = 2,
    prefetch: int = 8,
    dtype: str = "int64",
) -> float:
    """Tokens/s of the same loader consumed in Rust alone."""

def raw_zstd_tokens_per_s(mix: Mix, tokens: int) -> float:
    """Tokens/s of one thread only zstd-decompressing about ``tokens`` tokens of the mix's frames."""
