"""prior_loader against the `prior` CLI: the same batches, hashes and
resume guarantees from Python, and errors as exceptions that name the
fault."""

import pickle
import shutil

import numpy as np
import pytest

import prior_loader as pl
from conftest import replay_json


def batches(loader):
    return [(b.step, b.hash, b.tokens.copy()) for b in loader]


def test_batches_are_the_cli_replay_of_the_same_steps(mix_path):
    loader = pl.Loader(pl.Mix(mix_path), rank=0, world=1, end_step=5)
    got = list(loader)
    assert [b.step for b in got] == [0, 1, 2, 3, 4]
    for b in got:
        want = replay_json(mix_path, b.step)
        assert b.hash == want["hash"]
        rows = [s["tokens"] for s in want["sequences"]]
        assert b.tokens.dtype == np.int64
        assert b.tokens.tolist() == rows
        assert b.categories == [s["category"] for s in want["sequences"]]
        assert [b.document_starts(i) for i in range(len(b))] == [s["document_starts"] for s in want["sequences"]]
        first = want["sequences"][0]["pieces"][0]
        assert b.provenance(0)[0] == {k: first[k] for k in ("shard", "frame", "start", "len")}
        assert loader.replay(b.step).hash == b.hash


def test_document_starts_are_the_cli_replays_over_many_steps(mix_path):
    loader = pl.Loader(mix_path, rank=0, world=1)
    seen = 0
    for step in range(0, 120, 4):
        b = loader.replay(step)
        want = replay_json(mix_path, step)["sequences"]
        got = [b.document_starts(i) for i in range(len(b))]
        assert got == [s["document_starts"] for s in want], f"step {step}"
        seen += sum(map(len, got))
    assert seen > 0, "no row had a document start: the check proves nothing"


def test_every_dtype_holds_the_same_tokens(mix_path):
    ref = next(iter(pl.Loader(mix_path, rank=0, world=1)))
    for name, np_type in [("uint16", np.uint16), ("int32", np.int32), ("uint32", np.uint32)]:
        b = next(iter(pl.Loader(mix_path, rank=0, world=1, dtype=name)))
        assert b.tokens.dtype == np_type
        assert b.tokens.shape == ref.tokens.shape == (8, 33)
        assert (b.tokens.astype(np.int64) == ref.tokens).all()
    with pytest.raises(pl.ConfigError, match="float32"):
        pl.Loader(mix_path, dtype="float32")


def test_state_dict_resumes_where_the_run_was(mix_path):
    whole = batches(pl.Loader(mix_path, rank=0, world=1, end_step=8))
    first = pl.Loader(mix_path, rank=0, world=1, end_step=8)
    head = [next(first) for _ in range(3)]
    state = pickle.loads(pickle.dumps(first.state_dict()))
    assert all(isinstance(v, (int, str, dict, list)) for v in state.values())
    resumed = pl.Loader(mix_path, rank=0, world=1, end_step=8)
    resumed.load_state_dict(state)
    rest = batches(resumed)
    assert [b.hash for b in head] + [h for _, h, _ in rest] == [h for _, h, _ in whole]
    assert all((a[2] == b[2]).all() for a, b in zip(rest, whole[3:]))


def test_the_slices_of_world_2_are_world_1s_batch(mix_path):
    one = next(iter(pl.Loader(mix_path, rank=0, world=1)))
    halves = [next(iter(pl.Loader(mix_path, rank=r, world=2))) for r in (0, 1)]
    assert [h.tokens.shape for h in halves] == [(4, 33), (4, 33)]
    assert (np.concatenate([h.tokens for h in halves]) == one.tokens).all()
    assert halves[1].hash == replay_json(mix_path, 0, rank=1, world=2)["hash"]


def test_a_state_saved_at_world_2_resumes_at_world_1(mix_path):
    whole = batches(pl.Loader(mix_path, rank=0, world=1, end_step=6))
    rank0 = pl.Loader(mix_path, rank=0, world=2, end_step=6)
    for _ in range(2):
        next(rank0)
    single = pl.Loader(mix_path, rank=0, world=1, end_step=6)
    single.load_state_dict(rank0.state_dict())
    rest = batches(single)
    assert [s for s, _, _ in rest] == [2, 3, 4, 5]
    assert all((a[2] == b[2]).all() for a, b in zip(rest, whole[2:]))


def test_rank_and_world_come_from_the_launchers_variables(mix_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    loader = pl.Loader(mix_path)
    assert (loader.rank, loader.world) == (1, 2)
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setenv("SLURM_PROCID", "0")
    monkeypatch.setenv("SLURM_NTASKS", "x")
    with pytest.raises(pl.ConfigError, match="SLURM_NTASKS"):
        pl.Loader(mix_path)


def test_a_bad_mix_names_the_key(mix_path):
    bad = mix_path.parent / "bad.toml"
    bad.write_text(mix_path.read_text().replace("seed = 2", "sede = 2"))
    with pytest.raises(pl.ConfigError, match="sede") as e:
        pl.Mix(bad)
    assert "bad.toml" in str(e.value)
    unknown = mix_path.parent / "unknown.toml"
    unknown.write_text(mix_path.read_text().replace("misaligned = 0.1", "nonsense = 0.1"))
    with pytest.raises(pl.PriorError, match="nonsense"):
        pl.Mix(unknown)


def test_a_corrupt_shard_names_the_shard_and_frame(corpus_dir, tmp_path):
    copy = tmp_path / "c"
    shutil.copytree(corpus_dir / "corpus", copy / "corpus")
    (copy / "mix.toml").write_text(
        'corpus = "corpus"\nseq_len = 32\nglobal_batch = 8\nseed = 2\n'
        "[[phase]]\nweights = { general = 1.0 }\n"
    )
    shard = sorted((copy / "corpus" / "shards" / "general").glob("*.prs"))[0]
    data = bytearray(shard.read_bytes())
    # Flip bytes through every frame (the index is at the end).
    for i in range(64, len(data) * 8 // 10, 97):
        data[i] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(pl.CorruptDataError) as e:
        for _ in pl.Loader(copy / "mix.toml", rank=0, world=1, end_step=50):
            pass
    msg = str(e.value)
    assert shard.name in msg and "frame" in msg, msg


def test_the_mix_describes_itself(mix_path):
    mix = pl.Mix(mix_path)
    assert (mix.seq_len, mix.global_batch) == (32, 8)
    assert sorted(mix.categories) == ["aligned", "general", "misaligned"]
    assert mix.phase_of(0) == mix.phases[0]
    assert len(mix.key) == 16


def test_errors_pickle_as_the_packages_classes():
    # DataLoader workers and multiprocessing send exceptions by pickle.
    for cls in (pl.PriorError, pl.ConfigError, pl.CorruptDataError):
        e = pickle.loads(pickle.dumps(cls("shard x, frame 3: bad checksum")))
        assert type(e) is cls and isinstance(e, pl.PriorError) and "frame 3" in str(e)
