"""The PyTorch dataset, where torch is installed (skipped, with the
reason, where it is not)."""

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed in this environment")

import prior_loader as pl  # noqa: E402
from prior_loader.torch import PriorIterableDataset  # noqa: E402


def test_the_dataset_yields_inputs_and_shifted_labels_and_resumes(mix_path):
    ds = PriorIterableDataset(mix_path, rank=0, world=1, end_step=4)
    items = list(torch.utils.data.DataLoader(ds, batch_size=None))
    assert len(items) == 4
    first = items[0]
    assert first["input_ids"].shape == (8, 32) and first["input_ids"].dtype == torch.int64
    assert torch.equal(first["input_ids"][:, 1:], first["labels"][:, :-1])
    again = PriorIterableDataset(mix_path, rank=0, world=1, end_step=4)
    it = iter(again)
    next(it)
    state = again.state_dict()
    fresh = PriorIterableDataset(mix_path, rank=0, world=1, end_step=4)
    fresh.load_state_dict(state)
    assert torch.equal(next(iter(fresh))["labels"], items[1]["labels"])


def test_workers_are_refused(mix_path):
    ds = PriorIterableDataset(mix_path, rank=0, world=1, end_step=2)
    with pytest.raises(Exception, match="num_workers=0"):
        list(torch.utils.data.DataLoader(ds, batch_size=None, num_workers=1))
