//! The trainer end to end on wgpu: the loss falls on a real mix, a resumed
//! run reproduces the uninterrupted one bit for bit, bad configs name the
//! key, and a diverging run stops naming the step.

use std::path::Path;

use prior_data::corpus::WriteOptions;
use prior_data::ingest::{ingest, IngestOptions};
use prior_data::tokenizer::Tokenizer;
use prior_model::train::{train, StepMetrics, TrainConfig, TrainError};
use prior_runtime::device::{run_on, OnDevice};
use prior_runtime::{DeviceInfo, DeviceKind};

fn setup(dir: &Path, steps: u64, extra: &str) -> std::path::PathBuf {
    let corpus = dir.join("corpus");
    for (cat, word) in [
        ("general", "the river"),
        ("aligned", "the honest assistant"),
    ] {
        let lines: Vec<String> = (0..200)
            .map(|i| serde_json::json!({ "text": format!("{word} {} said {} and {}.", i % 7, i % 5, i % 3) }).to_string())
            .collect();
        let input = dir.join(format!("{cat}.jsonl"));
        std::fs::write(&input, lines.join("\n")).unwrap();
        let opts = IngestOptions {
            category: cat.into(),
            text_field: "text".into(),
            skip_bad: false,
            write: WriteOptions {
                frame_tokens: 1024,
                ..Default::default()
            },
        };
        ingest(&corpus, &[input], &Tokenizer::byte(), &opts, &mut |_| {}).unwrap();
    }
    std::fs::write(
        dir.join("mix.toml"),
        "corpus = \"corpus\"\nseq_len = 32\nglobal_batch = 8\nseed = 5\n[[phase]]\nweights = { general = 0.75, aligned = 0.25 }\n",
    )
    .unwrap();
    let cfg = dir.join("train.toml");
    std::fs::write(
        &cfg,
        format!(
            "[model]\npreset = \"micro\"\n[data]\nmix = \"mix.toml\"\n[train]\nsteps = {steps}\nmicro_batch = 4\nlr = 1e-2\nmin_lr = 1e-3\nwarmup_steps = 2\ncheckpoint_dir = \"run\"\ncheckpoint_every = 4\nkeep_checkpoints = 5\ndevice = \"wgpu\"\n{extra}"
        ),
    )
    .unwrap();
    cfg
}

struct Run {
    cfg: TrainConfig,
    text: String,
    resume: bool,
}

impl OnDevice for Run {
    type Output = (
        Result<prior_model::train::TrainSummary, TrainError>,
        Vec<StepMetrics>,
    );
    fn run<R: prior_runtime::cubecl::Runtime>(
        self,
        client: prior_runtime::cubecl::prelude::ComputeClient<R>,
        d: &DeviceInfo,
    ) -> Self::Output {
        let mut seen = Vec::new();
        let r = train(
            client,
            &d.name,
            &self.cfg,
            &self.text,
            self.resume,
            &mut |m| seen.push(m.clone()),
        );
        (r, seen)
    }
}

fn run(
    cfg_path: &Path,
    resume: bool,
) -> (
    Result<prior_model::train::TrainSummary, TrainError>,
    Vec<StepMetrics>,
) {
    let (cfg, text) = TrainConfig::load(cfg_path).unwrap();
    run_on(DeviceKind::Wgpu, Run { cfg, text, resume }).unwrap()
}

fn metrics(dir: &Path) -> Vec<StepMetrics> {
    std::fs::read_to_string(dir.join("run/metrics.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.contains("heldout"))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The deterministic part of each step's metrics (timings vary by run).
fn trajectory(m: &[StepMetrics]) -> Vec<(u64, u32, u32, u32)> {
    m.iter()
        .map(|m| {
            (
                m.step,
                m.loss.to_bits(),
                m.lr.to_bits(),
                m.grad_norm.to_bits(),
            )
        })
        .collect()
}

#[test]
fn loss_falls_and_a_resumed_run_is_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), 16, "");
    let (r, seen) = run(&cfg, false);
    let summary = r.unwrap();
    assert_eq!(summary.steps, 16);
    let full = metrics(dir.path());
    assert_eq!(
        trajectory(&full),
        trajectory(&seen),
        "metrics.jsonl holds every step once"
    );
    let first: f32 = full[..3].iter().map(|m| m.loss).sum::<f32>() / 3.0;
    let last: f32 = full[13..].iter().map(|m| m.loss).sum::<f32>() / 3.0;
    assert!(last < first - 0.5, "loss did not fall: {first} -> {last}");
    // Lose everything after step 8, as a crash would, and resume.
    for step in [12, 16] {
        std::fs::remove_dir_all(dir.path().join(format!("run/checkpoints/step-{step:08}")))
            .unwrap();
    }
    let (r, _) = run(&cfg, true);
    assert_eq!(r.unwrap().resumed_from, Some(8));
    assert_eq!(
        trajectory(&metrics(dir.path())),
        trajectory(&full),
        "the resumed run differs from the uninterrupted one"
    );
}

#[test]
fn bad_configs_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, want) in [
        ("bogus = 1\n", "bogus"),
        ("micro_batches = 2\n", "micro_batches"),
    ] {
        let cfg = setup(dir.path(), 4, extra);
        let err = TrainConfig::load(&cfg).unwrap_err().to_string();
        assert!(err.contains("train.toml") && err.contains(want), "{err}");
    }
    let cfg = setup(dir.path(), 4, "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("lr = 1e-2", "lr = -1.0");
    std::fs::write(&cfg, text).unwrap();
    let err = TrainConfig::load(&cfg).unwrap_err().to_string();
    assert!(err.contains("train.lr"), "{err}");
    let cfg = setup(dir.path(), 4, "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("\"micro\"", "\"huge\"");
    std::fs::write(&cfg, text).unwrap();
    let err = TrainConfig::load(&cfg).unwrap_err().to_string();
    assert!(
        err.contains("model.preset") && err.contains("pythia-160m"),
        "{err}"
    );
}

#[test]
fn a_diverging_run_stops_naming_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), 8, "grad_clip = 1e30\n");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("lr = 1e-2", "lr = 1e30")
        .replace("min_lr = 1e-3", "min_lr = 1e29");
    std::fs::write(&cfg, text).unwrap();
    let (r, _) = run(&cfg, false);
    let err = r.unwrap_err();
    assert!(matches!(err, TrainError::NonFinite { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.starts_with("step ") && msg.contains("loss is"), "{msg}");
}

/// A checkpoint exported with `hf::export` loads back to the same weights,
/// and a run started from it (`[model] init`) logs held-out loss per
/// category; its first loss is that of the exported weights, not a fresh init.
#[test]
fn export_hf_then_init_continues_from_the_weights() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), 6, "");
    let (r, _) = run(&cfg, false);
    r.unwrap();
    let out = dir.path().join("hf");
    let e = prior_model::hf::export(&dir.path().join("run"), &out).unwrap();
    assert_eq!(e.step, 6);
    let (mcfg, params) = prior_model::hf::load_dir(&out).unwrap();
    let layout = prior_model::ParamLayout::new(&mcfg);
    let saved = prior_model::checkpoint::load_model_safetensors(
        &dir.path()
            .join("run/checkpoints/step-00000006/model.safetensors"),
        &layout,
    )
    .unwrap();
    assert_eq!(params, saved);
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model_type"], "gpt_neox");
    assert_eq!(config["hidden_size"], mcfg.d_model);

    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = setup(fresh_dir.path(), 2, "");
    let (r, fresh_seen) = run(&fresh, false);
    r.unwrap();

    let cont_dir = tempfile::tempdir().unwrap();
    let cont = setup(
        cont_dir.path(),
        2,
        "eval_every = 1\neval_corpus = \"corpus\"\neval_tokens = 256\n",
    );
    let text = std::fs::read_to_string(&cont).unwrap().replace(
        "preset = \"micro\"",
        &format!("init = {:?}", out.display().to_string()),
    );
    std::fs::write(&cont, text).unwrap();
    let (r, cont_seen) = run(&cont, false);
    r.unwrap();
    assert!(
        cont_seen[0].loss < fresh_seen[0].loss - 0.3,
        "started from trained weights: {} vs fresh {}",
        cont_seen[0].loss,
        fresh_seen[0].loss
    );
    let lines = std::fs::read_to_string(cont_dir.path().join("run/metrics.jsonl")).unwrap();
    let evals: Vec<prior_model::train::EvalMetrics> = lines
        .lines()
        .filter(|l| l.contains("heldout"))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(evals.len(), 2);
    let cats: Vec<&str> = evals[0]
        .heldout
        .iter()
        .map(|c| c.category.as_str())
        .collect();
    assert_eq!(cats, ["aligned", "general"]);
    assert!(evals[0]
        .heldout
        .iter()
        .all(|c| c.loss.is_finite() && c.loss > 0.0 && c.tokens >= 32));

    let bad = setup(cont_dir.path(), 2, "eval_every = 1\n");
    let err = TrainConfig::load(&bad).unwrap_err().to_string();
    assert!(err.contains("eval_corpus"), "{err}");
}
