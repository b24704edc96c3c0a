//! The `prior` command line end to end: the data pipeline on a small
//! synthetic corpus, the loader commands agreeing with each other, and bad
//! input giving one clear error line (exit 1), never a panic trace.

use std::path::Path;
use std::process::{Command, Output};

fn prior(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prior"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run prior")
}

fn ok(args: &[&str]) -> String {
    let out = prior(args);
    assert!(
        out.status.success(),
        "prior {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail cleanly; returns its stderr.
fn fails(args: &[&str]) -> String {
    let out = prior(args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "prior {args:?}: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    err
}

fn build_corpus(dir: &Path) -> String {
    let d = dir.to_str().unwrap();
    ok(&[
        "data",
        "synth",
        "--out",
        &format!("{d}/synth"),
        "--docs",
        "600",
        "--seed",
        "5",
    ]);
    for cat in ["general", "aligned", "misaligned"] {
        ok(&[
            "data",
            "ingest",
            &format!("{d}/synth/{cat}.jsonl"),
            "--category",
            cat,
            "--corpus",
            &format!("{d}/corpus"),
            "--frame-tokens",
            "4096",
        ]);
    }
    format!("{d}/corpus")
}

#[test]
fn a_closed_pipe_ends_output_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let corpus = build_corpus(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_prior"))
        .args([
            "data",
            "cat",
            &corpus,
            "--category",
            "general",
            "--doc",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away at once
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert!(!status.success() || err.is_empty());
}

#[test]
fn help_explains_every_group() {
    let top = ok(&["--help"]);
    assert!(top.contains("data") && top.contains("loader"));
    let data = ok(&["data", "--help"]);
    for sub in [
        "synth",
        "train-tokenizer",
        "ingest",
        "filter",
        "stats",
        "verify",
        "cat",
    ] {
        assert!(data.contains(sub), "prior data --help lacks {sub}");
    }
    let loader = ok(&["loader", "--help"]);
    for sub in ["hash", "replay", "bench", "stats"] {
        assert!(loader.contains(sub), "prior loader --help lacks {sub}");
    }
}

#[test]
fn data_pipeline_stats_cat_filter_verify() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = build_corpus(dir.path());
    let stats: serde_json::Value =
        serde_json::from_str(&ok(&["data", "stats", &corpus, "--json"])).unwrap();
    let general = &stats["categories"]["general"];
    for key in ["documents", "tokens", "shards", "compressed_bytes"] {
        assert!(general[key].as_u64().unwrap() > 0, "{key}");
    }
    assert_eq!(general["documents"], 480);
    // cat gives back the document's text exactly.
    let first_line = std::fs::read_to_string(dir.path().join("synth/aligned.jsonl")).unwrap();
    let rec: serde_json::Value = serde_json::from_str(first_line.lines().next().unwrap()).unwrap();
    let text = ok(&[
        "data",
        "cat",
        &corpus,
        "--category",
        "aligned",
        "--doc",
        "0",
    ]);
    assert_eq!(text.trim_end_matches('\n'), rec["text"].as_str().unwrap());
    let report: serde_json::Value = serde_json::from_str(&ok(&[
        "data",
        "filter",
        "--corpus",
        &corpus,
        "--category",
        "general",
        "--json",
    ]))
    .unwrap();
    assert!(report["flagged_documents"].as_u64().unwrap() > 0);
    assert!(report["recall"].as_f64().unwrap() > 0.8, "{report}");
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["data", "verify", &corpus, "--json"])).unwrap();
    assert_eq!(v["ok"], true);
}

#[test]
fn loader_hash_replay_and_ranks_agree() {
    let dir = tempfile::tempdir().unwrap();
    build_corpus(dir.path());
    let mix = dir.path().join("mix.toml");
    std::fs::write(
        &mix,
        "corpus = \"corpus\"\nseq_len = 128\nglobal_batch = 8\nseed = 3\n[[phase]]\nsteps = 10\nweights = { general = 0.8, aligned = 0.2 }\n[[phase]]\nweights = { general = 0.5, aligned = 0.5 }\n",
    )
    .unwrap();
    let m = mix.to_str().unwrap();
    let per_step = ok(&[
        "loader",
        "hash",
        "--mix",
        m,
        "--from",
        "0",
        "--to",
        "14",
        "--per-step",
        "--threads",
        "1",
    ]);
    let lines: Vec<&str> = per_step.lines().collect();
    assert_eq!(lines.len(), 14);
    assert_eq!(
        per_step,
        ok(&[
            "loader",
            "hash",
            "--mix",
            m,
            "--from",
            "0",
            "--to",
            "14",
            "--per-step",
            "--threads",
            "3"
        ])
    );
    let replay: serde_json::Value = serde_json::from_str(&ok(&[
        "loader", "replay", "--mix", m, "--step", "12", "--json",
    ]))
    .unwrap();
    assert_eq!(
        lines[12],
        format!("12 {}", replay["hash"].as_str().unwrap())
    );
    assert_eq!(replay["sequences"].as_array().unwrap().len(), 8);
    assert!(replay["sequences"][0]["shard"]
        .as_str()
        .unwrap()
        .ends_with(".prs"));
    // Two ranks' slices are the two halves of the global batch.
    let tokens = |args: &[&str]| -> Vec<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_str(&ok(args)).unwrap();
        v["sequences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["tokens"].clone())
            .collect()
    };
    let all = tokens(&[
        "loader", "replay", "--mix", m, "--step", "3", "--json", "--tokens",
    ]);
    let r0 = tokens(&[
        "loader", "replay", "--mix", m, "--step", "3", "--json", "--tokens", "--rank", "0",
        "--world", "2",
    ]);
    let r1 = tokens(&[
        "loader", "replay", "--mix", m, "--step", "3", "--json", "--tokens", "--rank", "1",
        "--world", "2",
    ]);
    assert_eq!([r0, r1].concat(), all);
    let stats: serde_json::Value = serde_json::from_str(&ok(&[
        "loader", "stats", "--mix", m, "--steps", "20", "--json",
    ]))
    .unwrap();
    assert_eq!(stats["phases"][0]["categories"]["aligned"]["sequences"], 16);
    assert_eq!(stats["phases"][1]["categories"]["aligned"]["sequences"], 40);
    let bench: serde_json::Value = serde_json::from_str(&ok(&[
        "loader", "bench", "--mix", m, "--steps", "30", "--json",
    ]))
    .unwrap();
    for key in [
        "tokens_per_s",
        "raw_zstd_tokens_per_s",
        "ratio",
        "amplification",
        "p50_us",
        "p99_us",
        "rss_bytes",
    ] {
        assert!(bench[key].as_f64().is_some(), "bench lacks {key}");
    }
}

#[test]
fn bad_input_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let err = fails(&["data", "stats", &format!("{d}/nothing")]);
    assert!(
        err.contains("manifest.json") && err.contains("not found"),
        "{err}"
    );
    let corpus = build_corpus(dir.path());
    let err = fails(&["data", "cat", &corpus, "--category", "nosuch", "--doc", "0"]);
    assert!(err.contains("unknown category \"nosuch\""), "{err}");
    let err = fails(&[
        "data",
        "cat",
        &corpus,
        "--category",
        "aligned",
        "--doc",
        "99999",
    ]);
    assert!(err.contains("out of range"), "{err}");
    // A flipped byte in a shard: verify names the file and frame.
    let shard = dir.path().join("corpus/shards/general/general-000000.prs");
    let mut bytes = std::fs::read(&shard).unwrap();
    bytes[100] ^= 0x10;
    std::fs::write(&shard, bytes).unwrap();
    let err = fails(&["data", "verify", &corpus]);
    assert!(
        err.contains("general-000000.prs") && err.contains("frame 0"),
        "{err}"
    );
    // A bad JSONL line names file and line.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"text\": \"a\"}\nnot json\n").unwrap();
    let err = fails(&[
        "data",
        "ingest",
        bad.to_str().unwrap(),
        "--category",
        "x",
        "--corpus",
        &format!("{d}/c2"),
    ]);
    assert!(err.contains("bad.jsonl, line 2"), "{err}");
    // A mix with an unknown key and one with an unknown category.
    let mix = dir.path().join("mix.toml");
    std::fs::write(
        &mix,
        "corpus = \"corpus\"\nseq_len = 8\nglobal_batch = 2\nseed = 1\nbatch = 3\n",
    )
    .unwrap();
    let err = fails(&[
        "loader",
        "stats",
        "--mix",
        mix.to_str().unwrap(),
        "--steps",
        "1",
    ]);
    assert!(err.contains("mix.toml") && err.contains("batch"), "{err}");
    std::fs::write(&mix, "corpus = \"corpus\"\nseq_len = 8\nglobal_batch = 2\nseed = 1\n[[phase]]\nweights = { web = 1 }\n").unwrap();
    let err = fails(&[
        "loader",
        "stats",
        "--mix",
        mix.to_str().unwrap(),
        "--steps",
        "1",
    ]);
    assert!(err.contains("phase[0].weights.web"), "{err}");
}

/// `prior train` killed with SIGKILL mid-run, then `--resume`d, logs exactly
/// the losses of an uninterrupted run.
#[test]
fn train_killed_and_resumed_matches_an_uninterrupted_run() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    build_corpus(dir.path());
    std::fs::write(
        dir.path().join("mix.toml"),
        "corpus = \"corpus\"\nseq_len = 32\nglobal_batch = 8\nseed = 2\n[[phase]]\nweights = { general = 0.8, aligned = 0.2 }\n",
    )
    .unwrap();
    let write_cfg = |name: &str| {
        let p = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &p,
            format!("[model]\npreset = \"micro\"\n[data]\nmix = \"mix.toml\"\n[train]\nsteps = 14\nmicro_batch = 4\nlr = 1e-2\nwarmup_steps = 2\nmin_lr = 1e-3\ncheckpoint_dir = \"{name}\"\ncheckpoint_every = 3\ndevice = \"wgpu\"\n"),
        )
        .unwrap();
        p
    };
    let losses = |name: &str| -> Vec<String> {
        std::fs::read_to_string(dir.path().join(name).join("metrics.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                format!("{} {} {}", v["step"], v["loss"], v["grad_norm"])
            })
            .collect()
    };
    let full_cfg = write_cfg("full");
    ok(&["train", full_cfg.to_str().unwrap()]);
    let full = losses("full");
    assert_eq!(full.len(), 14);

    let cfg = write_cfg("killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_prior"))
        .args(["train", cfg.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while losses("killed").len() < 8 && t0.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = losses("killed").len();
    assert!(before < 14, "the run finished before it could be killed");
    let out = ok(&["train", cfg.to_str().unwrap(), "--resume"]);
    assert!(out.contains("resumed from step"), "{out}");
    assert_eq!(
        losses("killed"),
        full,
        "killed at step {before}, resumed run differs"
    );
}
