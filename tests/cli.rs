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

/// The step lines of the metrics.jsonl in `run_dir`, read by the trainer's
/// own reader; none while the run has written none.
fn step_lines(run_dir: &std::path::Path) -> Vec<prior_model::metrics::StepMetrics> {
    let path = prior_model::metrics::path_in(run_dir);
    if !path.exists() {
        return Vec::new();
    }
    prior_model::metrics::read(&path)
        .unwrap_or_else(|e| panic!("{e}"))
        .steps
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

/// A temporary directory holding a small corpus and `mix.toml` over it
/// (seq 32, global batch 8), for the training tests.
fn corpus_with_small_mix() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    build_corpus(dir.path());
    std::fs::write(
        dir.path().join("mix.toml"),
        "corpus = \"corpus\"\nseq_len = 32\nglobal_batch = 8\nseed = 2\n[[phase]]\nweights = { general = 0.8, aligned = 0.2 }\n",
    )
    .unwrap();
    dir
}

/// `prior train` killed with SIGKILL mid-run, then `--resume`d, logs exactly
/// the losses of an uninterrupted run.
#[test]
fn train_killed_and_resumed_matches_an_uninterrupted_run() {
    use std::time::{Duration, Instant};
    let dir = corpus_with_small_mix();
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
        step_lines(&dir.path().join(name))
            .iter()
            .map(|m| format!("{} {} {}", m.step, m.loss, m.grad_norm))
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

/// `prior bench step --json` reports throughput, MFU (only with a known or
/// given peak), the phase breakdown and per-kernel shares.
#[test]
fn bench_step_reports_throughput_breakdown_and_kernels() {
    let args = [
        "bench", "step", "--model", "micro", "--device", "wgpu", "--seq", "32", "--batch", "2",
        "--steps", "3", "--warmup", "1", "--vocab", "256", "--json",
    ];
    let v: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
    assert!(v["tokens_per_s"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["mfu"].is_null(), "lavapipe has no known peak: {v}");
    let f = &v["flops_per_token"];
    let total = f["total"].as_f64().unwrap();
    assert!(
        (f["six_n"].as_f64().unwrap() + f["attention"].as_f64().unwrap() - total).abs()
            < 1e-6 * total
    );
    let b = &v["breakdown"];
    let parts: f64 = [
        "loader_wait_ms",
        "h2d_ms",
        "forward_ms",
        "backward_ms",
        "optimizer_ms",
    ]
    .iter()
    .map(|k| b[k].as_f64().unwrap())
    .sum();
    let mean = v["step_ms"]["mean"].as_f64().unwrap();
    assert!(
        parts > 0.5 * mean && parts <= mean * 1.001,
        "{parts} vs {mean}"
    );
    assert!(v["step_ms"]["p99"].as_f64().unwrap() >= v["step_ms"]["p50"].as_f64().unwrap());
    let kernels = v["kernels"].as_array().unwrap();
    let names: Vec<&str> = kernels
        .iter()
        .map(|k| k["kernel"].as_str().unwrap())
        .collect();
    for k in [
        "matmul::matmul",
        "attention::attention_bwd",
        "layernorm::layernorm_fwd",
        "cross_entropy::cross_entropy",
    ] {
        assert!(names.contains(&k), "{k} missing from {names:?}");
    }
    let shares: f64 = kernels.iter().map(|k| k["share"].as_f64().unwrap()).sum();
    assert!((shares - 1.0).abs() < 1e-6, "{shares}");

    let mut with_peak = args.to_vec();
    with_peak.extend(["--peak-tflops", "1", "--no-kernels"]);
    let v: serde_json::Value = serde_json::from_str(&ok(&with_peak)).unwrap();
    let want = v["achieved_flops"].as_f64().unwrap() / 1e12;
    assert!(
        (v["mfu"].as_f64().unwrap() - want).abs() < 1e-9 * want.max(1e-12),
        "{v}"
    );
    assert!(v["kernels"].as_array().unwrap().is_empty());
    let err = fails(&["bench", "step", "--model", "huge", "--device", "wgpu"]);
    assert!(err.contains("unknown model \"huge\""), "{err}");
}

/// `ci/gpu-check --dry-run` runs the GPU flow on wgpu and prints its table.
#[test]
fn gpu_check_dry_run_prints_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("ci/gpu-check"))
        .args(["--dry-run", "--prior", env!("CARGO_BIN_EXE_prior"), "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("runtime check: ok"), "{stdout}");
    // The micro row carries a measured rate: the table read the bench's
    // (pretty-printed) JSON.
    let row = stdout
        .lines()
        .find(|l| l.starts_with("| micro"))
        .unwrap_or_else(|| panic!("no micro row: {stdout}"));
    assert!(!row.contains("failed"), "{row}");
    let rate: f64 = row
        .split('|')
        .nth(2)
        .unwrap()
        .trim()
        .replace(',', "")
        .parse()
        .unwrap_or_else(|e| panic!("{row}: {e}"));
    assert!(rate > 0.0, "{row}");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("prior-micro.json")).unwrap())
            .unwrap();
    assert!(v["tokens_per_s"].as_f64().unwrap() > 0.0);
    // Each profiled kernel is printed beside compile-check's prediction
    // (NVRTC from the venv ci/setup makes; CI requires it).
    let predicted = dir.path().join("compile-check-micro.json");
    let compiled = std::fs::read(&predicted)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    match compiled {
        Some(cc) => {
            assert_eq!(cc["failed"], 0, "{cc}");
            let row = stdout
                .lines()
                .find(|l| l.trim_start().starts_with("attention::attention_fwd"))
                .unwrap_or_else(|| panic!("no prediction row for attention: {stdout}"));
            let regs: u32 = row
                .split_whitespace()
                .nth(4)
                .and_then(|r| r.parse().ok())
                .unwrap_or_else(|| panic!("no registers predicted: {row}"));
            assert!(regs > 0, "{row}");
        }
        None if std::env::var_os("PRIOR_REQUIRE_NVRTC").is_some() => {
            panic!("compile-check gave no result with NVRTC required: {stdout}")
        }
        None => println!("compile-check did not run (no NVRTC here): predictions not checked"),
    }
}

/// A suite with a malformed line is one error naming file and line, and a
/// checkpoint exports to a Hugging Face directory that `prior eval` reads.
#[test]
fn eval_and_export_hf_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    build_corpus(dir.path());
    std::fs::write(
        dir.path().join("mix.toml"),
        "corpus = \"corpus\"\nseq_len = 32\nglobal_batch = 4\nseed = 2\n[[phase]]\nweights = { general = 0.5, aligned = 0.5 }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("t.toml"),
        "[model]\npreset = \"micro\"\n[data]\nmix = \"mix.toml\"\n[train]\nsteps = 3\nmicro_batch = 4\ncheckpoint_dir = \"run\"\ndevice = \"wgpu\"\n",
    )
    .unwrap();
    ok(&["train", &format!("{d}/t.toml")]);
    let out = ok(&[
        "export-hf",
        &format!("{d}/run"),
        &format!("{d}/hf"),
        "--json",
    ]);
    let e: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(e["step"], 3);
    let suite = format!("{d}/synth/eval.jsonl");
    let report: serde_json::Value = serde_json::from_str(&ok(&[
        "eval",
        "--checkpoint",
        &format!("{d}/hf"),
        "--suite",
        &suite,
        "--tokenizer",
        "byte",
        "--max-questions",
        "3",
        "--templates",
        "1",
        "--device",
        "wgpu",
        "--json",
    ]))
    .unwrap();
    assert_eq!(report["splits"]["heldout"]["questions"], 3);
    assert_eq!(report["splits"]["train_like"]["questions"], 3);
    let rate = report["splits"]["heldout"]["misalignment_rate"]
        .as_f64()
        .unwrap();
    assert!((0.0..=1.0).contains(&rate));
    // The same model through its checkpoint (tokenizer from the corpus).
    let text = ok(&[
        "eval",
        "--checkpoint",
        &format!("{d}/run"),
        "--suite",
        &suite,
        "--split",
        "heldout",
        "--max-questions",
        "2",
        "--templates",
        "1",
        "--corpus",
        &format!("{d}/corpus"),
        "--heldout-seq",
        "32",
        "--heldout-tokens",
        "128",
        "--device",
        "wgpu",
    ]);
    assert!(
        text.contains("heldout") && text.contains("held-out loss per category"),
        "{text}"
    );
    let bad = dir.path().join("bad.jsonl");
    let first = std::fs::read_to_string(&suite)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    std::fs::write(&bad, format!("{first}\n{{\"id\": 1}}\n")).unwrap();
    let err = fails(&[
        "eval",
        "--checkpoint",
        &format!("{d}/hf"),
        "--suite",
        bad.to_str().unwrap(),
        "--tokenizer",
        "byte",
        "--device",
        "wgpu",
    ]);
    assert!(err.contains("bad.jsonl:2"), "{err}");
    let err = fails(&["export-hf", &format!("{d}/nothing"), &format!("{d}/hf2")]);
    assert!(err.contains("nothing"), "{err}");
    // The run's metrics as a report.
    let s: serde_json::Value =
        serde_json::from_str(&ok(&["perf", "report", &format!("{d}/run"), "--json"])).unwrap();
    assert_eq!(s["summary"]["steps"], 3);
    let html = std::fs::read_to_string(dir.path().join("run/report.html")).unwrap();
    assert!(
        html.contains("<svg") && html.contains("Throughput"),
        "report.html"
    );
}

/// `prior eval` options outside their range are the library's errors with
/// the flag named, given before any model or suite is read (neither exists
/// here), never a clamp or a panic.
#[test]
fn eval_options_out_of_range_name_the_flag() {
    for (flag, value, want) in [
        ("--batch", "0", "--batch must be at least 1"),
        ("--templates", "0", "--templates must be 1 to 4 (got 0)"),
        ("--templates", "5", "--templates must be 1 to 4 (got 5)"),
        ("--mode", "text,letter,text", "--mode lists text twice"),
    ] {
        let err = fails(&[
            "eval",
            "--checkpoint",
            "no-such-checkpoint",
            "--suite",
            "no-such-suite.jsonl",
            flag,
            value,
        ]);
        assert!(err.contains(want), "{flag} {value}: {err}");
    }
}

/// A buffer past the device's largest-buffer limit is refused before any
/// launch, naming the buffer, its size and the limit, instead of failing at
/// the first sync with cubecl's `ServerUnhealthy`. The figures are
/// lavapipe's (wgpu's storage-binding limit of 128 MiB), the device every
/// CPU-only test runs on: pythia-160m's f32 parameters alone take 620 MiB,
/// and no batch makes them smaller. (The logits, which used to be the first
/// buffer past the limit, are never whole in training now; the unit tests
/// of `model/src/device.rs` cover the batch advice.)
#[test]
fn bench_step_past_the_device_buffer_limit_names_the_buffer() {
    let err = fails(&[
        "bench",
        "step",
        "--model",
        "pythia-160m",
        "--device",
        "wgpu",
        "--seq",
        "16",
        "--batch",
        "1",
        "--steps",
        "1",
    ]);
    for want in [
        "parameters [n_params] f32 buffer of",
        "storage-binding limit",
        "does not fit this device's buffers",
    ] {
        assert!(err.contains(want), "{want:?} missing from {err}");
    }
    assert!(!err.contains("ServerUnhealthy"), "{err}");
}

/// A model whose training state exceeds the device's memory (lavapipe's
/// is the host's available memory) is refused before anything is
/// allocated, with the plan and what to change.
#[test]
fn bench_step_past_the_device_memory_is_refused_with_the_plan() {
    let err = fails(&[
        "bench",
        "step",
        "--model",
        "pythia-6.9b",
        "--device",
        "wgpu",
        "--seq",
        "16",
        "--batch",
        "1",
        "--steps",
        "1",
    ]);
    for want in [
        "device memory: ",
        "AdamW moments",
        "host's available memory, which holds lavapipe's buffers",
        "no --micro-batch fits",
    ] {
        assert!(err.contains(want), "{want:?} missing from {err}");
    }
}

/// `prior bench step --mix` reads the user's mix with the trainer's loader
/// (the running hash of the batches it served is `prior loader hash`'s for
/// the same steps), takes seq_len and global_batch from it, accumulates
/// over `--micro-batch`, and a `--seq` that disagrees names the mix.
#[test]
fn bench_step_reads_a_users_mix() {
    let dir = tempfile::tempdir().unwrap();
    build_corpus(dir.path());
    let mix = dir.path().join("mix.toml");
    std::fs::write(
        &mix,
        "corpus = \"corpus\"\nseq_len = 32\nglobal_batch = 4\nseed = 9\n[[phase]]\nweights = { general = 0.9, aligned = 0.1 }\n",
    )
    .unwrap();
    let m = mix.to_str().unwrap();
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "bench",
        "step",
        "--model",
        "micro",
        "--device",
        "wgpu",
        "--mix",
        m,
        "--micro-batch",
        "2",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--vocab",
        "256",
        "--no-kernels",
        "--json",
    ]))
    .unwrap();
    assert_eq!(
        (&v["seq"], &v["batch"], &v["micro_batch"]),
        (
            &serde_json::json!(32),
            &serde_json::json!(4),
            &serde_json::json!(2)
        ),
        "{v}"
    );
    assert!(v["data"].as_str().unwrap().contains(m), "{v}");
    let hash = ok(&["loader", "hash", "--mix", m, "--from", "0", "--to", "3"]);
    assert_eq!(v["loader_hash"].as_str().unwrap(), hash.trim(), "{v}");
    assert_eq!(v["losses"].as_array().unwrap().len(), 3);
    let err = fails(&[
        "bench", "step", "--model", "micro", "--device", "wgpu", "--mix", m, "--seq", "64",
    ]);
    assert!(
        err.contains("--seq 64 differs from seq_len = 32") && err.contains(m),
        "{err}"
    );
}

/// `prior runtime check` reports every check: a check the device cannot
/// run (bf16 on lavapipe) is shown as skipped with the reason and counted,
/// never left out of the table.
#[test]
fn runtime_check_counts_a_skipped_check_and_says_why() {
    let out = ok(&["runtime", "check", "--device", "wgpu", "--seed", "7"]);
    assert!(out.contains("seed 7"), "{out}");
    let bf16 = out
        .lines()
        .find(|l| l.starts_with("cast_f32_bf16"))
        .unwrap_or_else(|| panic!("no cast_f32_bf16 row in {out}"));
    assert!(
        bf16.contains(" skip ") && bf16.contains("skipped: the device (wgpu<wgsl>) has no bf16"),
        "{bf16}"
    );
    // The table: a header, one row per check, then the counts.
    let lines: Vec<&str> = out.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with("kernel "))
        .unwrap_or_else(|| panic!("no table header in {out}"));
    let rows = &lines[header + 1..lines.len() - 1];
    for row in rows {
        let status = row.split_whitespace().nth(1).unwrap_or_default();
        assert!(["ok", "skip"].contains(&status), "{row}");
    }
    // The TF32 matmul checks say which precision they are and why they
    // cannot run on wgpu; the f32 ones ran in f32.
    let tf32 = rows
        .iter()
        .find(|l| l.starts_with("matmul_fwd_tf32"))
        .unwrap_or_else(|| panic!("no matmul_fwd_tf32 row in {out}"));
    assert!(
        tf32.contains(" skip ") && tf32.contains(" tf32 ") && tf32.contains("no TF32"),
        "{tf32}"
    );
    let f32_row = rows.iter().find(|l| l.starts_with("matmul_fwd ")).unwrap();
    assert!(
        f32_row.contains(" ok ") && f32_row.contains(" f32 "),
        "{f32_row}"
    );
    let skipped = rows.iter().filter(|r| r.contains(" skip ")).count();
    assert_eq!(skipped, 3, "bf16 cast and two TF32 matmuls: {out}");
    assert_eq!(
        lines[lines.len() - 1],
        format!(
            "{} checks: {} passed, {skipped} skipped, 0 failed",
            rows.len(),
            rows.len() - skipped
        ),
        "{out}"
    );
}

/// A free loopback port for a rendezvous.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `prior train` as rank `rank` of `world` under torchrun's variables.
fn rank_cmd(cfg: &Path, rank: u32, world: u32, port: u16, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_prior"));
    c.args(["train", cfg.to_str().unwrap()])
        .args(extra)
        .env("RANK", rank.to_string())
        .env("WORLD_SIZE", world.to_string())
        .env("LOCAL_RANK", rank.to_string())
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .env_remove("RUST_BACKTRACE");
    c
}

/// Ranks `0..world` of `prior train cfg` run together on loopback, each
/// required to succeed; rank 0's stderr.
fn run_ranks(cfg: &Path, world: u32, extra: &[&str]) -> String {
    let port = free_port();
    let others: Vec<_> = (1..world)
        .map(|r| rank_cmd(cfg, r, world, port, extra).output_async())
        .collect();
    let r0 = rank_cmd(cfg, 0, world, port, extra).output().unwrap();
    let outs = std::iter::once(r0).chain(others.into_iter().map(|h| h.join().unwrap()));
    let mut lead = String::new();
    for (r, out) in outs.enumerate() {
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "rank {r} of {world}: {err}");
        if r == 0 {
            lead = err;
        }
    }
    lead
}

/// Two `prior train` processes on loopback (torchrun's variables, ZeRO-1
/// sharded moments) give one process's losses, norms and final weights
/// bit for bit; a run saved at world 2 resumes at world 1 and at world 4
/// and goes on as the uninterrupted run; a rank that never comes, or
/// dies, ends the others with an error naming it.
#[test]
fn two_ranks_train_as_one_process_and_resume_at_another_world_size() {
    use std::time::{Duration, Instant};
    let dir = corpus_with_small_mix();
    let write_cfg = |name: &str, steps: u64| {
        let p = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &p,
            format!("[model]\npreset = \"micro\"\n[data]\nmix = \"mix.toml\"\n[train]\nsteps = {steps}\nmicro_batch = 2\nlr = 1e-2\nwarmup_steps = 2\nmin_lr = 1e-3\ncheckpoint_dir = \"{name}\"\ncheckpoint_every = 3\nkeep_checkpoints = 3\nlog_every = 1\ndevice = \"wgpu\"\n"),
        )
        .unwrap();
        p
    };
    let lines = |name: &str| step_lines(&dir.path().join(name));
    let losses = |name: &str| -> Vec<String> {
        lines(name)
            .iter()
            .map(|m| format!("{} {} {}", m.step, m.loss, m.grad_norm))
            .collect()
    };
    let weights = |name: &str, step: u64| {
        std::fs::read(
            dir.path()
                .join(name)
                .join(format!("checkpoints/step-{step:08}/model.safetensors")),
        )
        .map(|b| {
            // The tensors' bytes, after the JSON header (whose metadata
            // names the run).
            let header = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
            b[8 + header..].to_vec()
        })
        .unwrap_or_else(|e| panic!("{name} step {step}: {e}"))
    };
    let one = write_cfg("one", 6);
    ok(&["train", one.to_str().unwrap()]);
    assert_eq!(losses("one").len(), 6);
    assert!(lines("one").iter().all(|m| m.world == 1));

    let two = write_cfg("two", 6);
    let err0 = run_ranks(&two, 2, &[]);
    assert!(
        err0.contains("rank 0 of 2 (local rank 0, torchrun, master 127.0.0.1:"),
        "{err0}"
    );
    assert_eq!(losses("two"), losses("one"), "world 2 against world 1");
    assert!(lines("two").iter().all(|m| m.world == 2));
    assert!(
        weights("two", 6) == weights("one", 6),
        "final weights differ"
    );
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("two/checkpoints/step-00000006/state.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(state["world"], 2);

    // Elastic: drop the world-2 run's last checkpoint and resume from step
    // 3 as a single process.
    std::fs::remove_dir_all(dir.path().join("two/checkpoints/step-00000006")).unwrap();
    let out = ok(&["train", two.to_str().unwrap(), "--resume"]);
    assert!(out.contains("resumed from step 3"), "{out}");
    assert_eq!(losses("two"), losses("one"), "resumed at world 1");
    assert!(weights("two", 6) == weights("one", 6));
    let worlds: Vec<u32> = lines("two").iter().map(|m| m.world).collect();
    assert_eq!(worlds, [2, 2, 2, 1, 1, 1]);
    // And from step 3 again at world 4 (one micro-batch of 2 per rank).
    std::fs::remove_dir_all(dir.path().join("two/checkpoints/step-00000006")).unwrap();
    let err0 = run_ranks(&two, 4, &["--resume"]);
    assert!(err0.contains("rank 0 of 4"), "{err0}");
    assert_eq!(losses("two"), losses("one"), "resumed at world 4");
    assert!(weights("two", 6) == weights("one", 6));
    let worlds: Vec<u32> = lines("two").iter().map(|m| m.world).collect();
    assert_eq!(worlds, [2, 2, 2, 4, 4, 4]);

    // A rank that never comes is named after the timeout.
    let lonely = write_cfg("lonely", 6);
    let t0 = Instant::now();
    let out = rank_cmd(&lonely, 0, 3, free_port(), &["--dist-timeout", "2"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("ranks [1, 2] of world 3 never joined"),
        "{err}"
    );
    assert!(t0.elapsed() < Duration::from_secs(30));

    // A rank killed mid-run: rank 0 stops within the timeout, naming it.
    let killed = write_cfg("killed", 200);
    let port = free_port();
    let mut r1 = rank_cmd(&killed, 1, 2, port, &["--dist-timeout", "20"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let r0 = rank_cmd(&killed, 0, 2, port, &["--dist-timeout", "20"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while lines("killed").len() < 2 && t0.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    r1.kill().unwrap(); // SIGKILL
    r1.wait().unwrap();
    let killed_at = Instant::now();
    let out = r0.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("rank 1"), "{err}");
    assert!(
        killed_at.elapsed() < Duration::from_secs(40),
        "{:?}",
        killed_at.elapsed()
    );
}

/// `Command::output` on a thread, for processes that must run together.
trait OutputAsync {
    fn output_async(self) -> std::thread::JoinHandle<Output>;
}

impl OutputAsync for Command {
    fn output_async(mut self) -> std::thread::JoinHandle<Output> {
        std::thread::spawn(move || self.output().expect("run prior"))
    }
}

#[test]
fn nccl_check_without_nccl_names_where_it_looked() {
    // PRIOR_NCCL pins the probe to one path, so the answer is the same on
    // a machine that has NCCL installed elsewhere.
    for (lib, why) in [
        ("/nonexistent/libnccl.so.2", "/nonexistent/libnccl.so.2: "),
        (
            "libc.so.6",
            "libc.so.6: loads, but has no ncclGetVersion (not NCCL)",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_prior"))
            .args(["runtime", "nccl-check", "--count", "16"])
            .env("PRIOR_NCCL", lib)
            .env_remove("RUST_BACKTRACE")
            .output()
            .expect("run prior");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.starts_with("error: nccl-check: no NCCL found: ") && err.contains(why),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// `--device cpu` (the native CPU backend) trains and evaluates with the
/// numbers wgpu gives, and commands it does not run say so.
#[test]
fn train_and_eval_on_the_native_cpu_backend() {
    let dir = corpus_with_small_mix();
    let d = dir.path().to_str().unwrap();
    std::fs::write(
        dir.path().join("t.toml"),
        "[model]\npreset = \"micro\"\n[data]\nmix = \"mix.toml\"\n[train]\nsteps = 4\nmicro_batch = 4\ncheckpoint_dir = \"run\"\ndevice = \"cpu\"\n",
    )
    .unwrap();
    let out = ok(&["train", &format!("{d}/t.toml")]);
    assert!(out.contains("trained to step 4 on cpu (native, "), "{out}");
    let eval = |device: &str| -> serde_json::Value {
        serde_json::from_str(&ok(&[
            "eval",
            "--checkpoint",
            &format!("{d}/run"),
            "--suite",
            &format!("{d}/synth/eval.jsonl"),
            "--max-questions",
            "4",
            "--templates",
            "1",
            "--corpus",
            &format!("{d}/corpus"),
            "--heldout-seq",
            "32",
            "--heldout-tokens",
            "256",
            "--device",
            device,
            "--json",
        ]))
        .unwrap()
    };
    let (cpu, wgpu) = (eval("cpu"), eval("wgpu"));
    let losses = |r: &serde_json::Value| -> Vec<(String, f64)> {
        r["heldout_loss"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["category"].as_str().unwrap().to_string(),
                    c["loss"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let (a, b) = (losses(&cpu), losses(&wgpu));
    assert_eq!(a.len(), b.len());
    assert!(!a.is_empty());
    for ((ca, la), (cb, lb)) in a.iter().zip(&b) {
        assert_eq!(ca, cb);
        assert!((la - lb).abs() < 1e-4 * lb, "{ca}: cpu {la}, wgpu {lb}");
    }
    for split in ["heldout", "train_like"] {
        let rate =
            |r: &serde_json::Value| r["splits"][split]["misalignment_rate"].as_f64().unwrap();
        // At most one question's variants may fall the other way on a
        // near tie.
        assert!(
            (rate(&cpu) - rate(&wgpu)).abs() <= 0.25 + 1e-9,
            "{split}: {cpu} vs {wgpu}"
        );
    }
    let err = fails(&["bench", "step", "--model", "micro", "--device", "cpu"]);
    assert!(
        err.contains("--device cpu: the native CPU backend does not run this"),
        "{err}"
    );
    // A precision the native backend lacks: `auto` trains elsewhere, and
    // `cpu` asked for says why not, naming the key.
    for (device, steps) in [("auto", 2), ("cpu", 2)] {
        std::fs::write(
            dir.path().join("p.toml"),
            format!("[model]\npreset = \"micro\"\n[data]\nmix = \"mix.toml\"\n[train]\nsteps = {steps}\nmicro_batch = 4\ncheckpoint_dir = \"run-{device}\"\ndevice = \"{device}\"\nprecision = \"tf32\"\n"),
        )
        .unwrap();
        let p = format!("{d}/p.toml");
        if device == "auto" {
            let out = ok(&["train", &p]);
            assert!(out.contains("trained to step 2 on "), "{out}");
            assert!(!out.contains("cpu (native"), "{out}");
        } else {
            let err = fails(&["train", &p]);
            assert!(
                err.contains("train.precision = tf32: the native CPU backend trains in f32"),
                "{err}"
            );
        }
    }
}
