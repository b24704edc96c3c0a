"""prior's loader as a PyTorch ``IterableDataset`` with ``state_dict``.

Importing ``prior_loader`` needs no torch; this module does. Each item is
one step's batch for this rank as ``{"input_ids", "labels"}`` int64
tensors of ``[global_batch / world, seq_len]``, so wrap it in a
``DataLoader`` with ``batch_size=None``. torchdata's ``StatefulDataLoader``
calls ``state_dict`` / ``load_state_dict`` on it.
"""

from typing import Any, Dict, Iterator, Optional

import torch
from torch.utils.data import IterableDataset, get_worker_info

from ._native import ConfigError, Loader, Mix


class PriorIterableDataset(IterableDataset):
    """``Loader(mix, **options)`` yielding ``{"input_ids", "labels"}`` tensors.

    prior decompresses with its own threads (``threads=``), so DataLoader
    workers are refused: ``num_workers`` must be 0.
    """

    def __init__(self, mix, **options: Any) -> None:
        super().__init__()
        options.setdefault("dtype", "int64")
        self._loader = Loader(mix if isinstance(mix, Mix) else Mix(mix), **options)

    @property
    def loader(self) -> Loader:
        """The underlying ``prior_loader.Loader``."""
        return self._loader

    def __iter__(self) -> Iterator[Dict[str, torch.Tensor]]:
        if get_worker_info() is not None:
            raise ConfigError(
                "PriorIterableDataset runs its own decompression threads (threads=); "
                "use DataLoader(num_workers=0, batch_size=None)"
            )
        for batch in self._loader:
            tokens = torch.from_numpy(batch.tokens)
            yield {"input_ids": tokens[:, :-1], "labels": tokens[:, 1:]}

    def state_dict(self) -> Dict[str, Any]:
        return self._loader.state_dict()

    def load_state_dict(self, state: Optional[Dict[str, Any]]) -> None:
        if state:
            self._loader.load_state_dict(state)
