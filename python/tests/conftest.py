"""A small corpus and mix made once per session with the `prior` binary
(PRIOR_BIN, else the workspace's target/debug/prior)."""

import json
import os
import pathlib
import shutil
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def prior_bin() -> str:
    path = os.environ.get("PRIOR_BIN") or str(REPO / "target" / "debug" / "prior")
    if not (os.path.isfile(path) or shutil.which(path)):
        pytest.exit(f"no prior binary at {path}: build it (cargo build --bin prior) or set PRIOR_BIN", 2)
    return path


def prior(*args: str) -> str:
    out = subprocess.run([prior_bin(), *args], capture_output=True, text=True)
    assert out.returncode == 0, f"prior {' '.join(args)}: {out.stderr}"
    return out.stdout


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> pathlib.Path:
    d = tmp_path_factory.mktemp("prior")
    prior("data", "synth", "--out", str(d / "synth"), "--docs", "600", "--seed", "5")
    for cat in ["general", "aligned", "misaligned"]:
        prior("data", "ingest", str(d / "synth" / f"{cat}.jsonl"), "--category", cat,
              "--corpus", str(d / "corpus"), "--frame-tokens", "4096")
    return d


@pytest.fixture(scope="session")
def mix_path(corpus_dir) -> pathlib.Path:
    p = corpus_dir / "mix.toml"
    p.write_text(
        'corpus = "corpus"\nseq_len = 32\nglobal_batch = 8\nseed = 2\n'
        "[[phase]]\nweights = { general = 0.7, aligned = 0.2, misaligned = 0.1 }\n"
    )
    return p


def replay_json(mix: pathlib.Path, step: int, rank: int = 0, world: int = 1) -> dict:
    return json.loads(prior("loader", "replay", "--mix", str(mix), "--step", str(step),
                            "--rank", str(rank), "--world", str(world), "--json", "--tokens"))
